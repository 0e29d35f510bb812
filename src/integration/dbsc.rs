//! The session layer's side of Device Bound Session Credentials (feature
//! `dbsc`; see [`crate::dbsc`]): the registration and refresh endpoints,
//! the bound cookie's check on every request of a bound session, and the
//! headers that offer registration and prime the next challenge.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::data::LayerData;
use super::{RequestHead, ResponseHead, SessionLayer};
use crate::clock::unix_millis;
use crate::cookie::{CookieConfig, IncomingCookies};
use crate::dbsc::tokens::{self, Kind};
use crate::dbsc::{
    header, proof, DbscConfig, DeviceAlgorithm, BOUND_COOKIE_SKEW, BROWSER_REFRESH_LEAD,
};
use crate::error::{Error, RejectionKind};
use crate::session::{Binding, DeviceKey, SaveOutcome, Session};

/// How long past a challenge's expiry its use is remembered: twice the
/// skew allowed between servers' clocks, so that no server whose clock is
/// behind still takes it for unused.
const NONCE_GRACE_MS: u64 = 10_000;

/// The longest `Sec-Secure-Session-Id` read: binding ids are 22 characters.
const MAX_ID_LEN: usize = 64;

/// The header that offers registration.
pub(crate) const REGISTRATION: &str = "Secure-Session-Registration";
/// The header that carries a challenge.
pub(crate) const CHALLENGE: &str = "Secure-Session-Challenge";

/// A layer's DBSC settings, checked, with the bound cookie's configuration.
pub(crate) struct Dbsc {
    config: DbscConfig,
    bound: CookieConfig,
    attributes: String,
    /// Responses of signed-in, unbound sessions so far: every
    /// `offer_every`-th carries an offer.
    responses: AtomicU64,
}

/// What a request's bound cookie says of its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoundCheck {
    /// The session is not bound (or DBSC is off): nothing to check.
    Unbound,
    /// A valid bound cookie for the session, expiring then (Unix ms).
    Valid { exp_ms: u64 },
}

/// How a DBSC endpoint loads the request's session.
enum Loaded {
    Session(Box<Session<LayerData>>),
    /// No session cookie, or one that does not open (expired, revoked,
    /// tampered): logged by the manager.
    None,
    /// The revocation store could not be asked, or the token may open in
    /// a moment: a key this server has not loaded yet, a clock behind the
    /// sealer's.
    Unavailable,
    /// A revoked token sealed moments ago: most likely one a login or a
    /// renewal replaced while this request was in flight (the browser's
    /// next try carries the new one).
    Replaced,
}

impl Dbsc {
    pub(crate) fn new(config: DbscConfig, cookies: &CookieConfig) -> Result<Dbsc, Error> {
        config.validate().map_err(Error::Config)?;
        let name = config
            .bound_cookie_name
            .clone()
            .unwrap_or_else(|| format!("{}-bound", cookies.name()));
        if name == cookies.name() {
            return Err(Error::Config(
                "dbsc bound cookie name must differ from the session cookie's".into(),
            ));
        }
        let bound = cookies
            .clone()
            .with_name(name)
            .with_persistent(true)
            .with_max_chunks(1);
        bound
            .validate()
            .map_err(|e| Error::Config(format!("dbsc bound cookie: {e}")))?;
        let attributes = bound.attributes();
        Ok(Dbsc {
            config,
            bound,
            attributes,
            responses: AtomicU64::new(0),
        })
    }

    /// Whether this request is for one of the layer's DBSC endpoints.
    pub(crate) fn is_endpoint(&self, request: &RequestHead<'_>) -> bool {
        request.method == "POST"
            && (request.path == self.config.registration_path
                || request.path == self.config.refresh_path)
    }

    /// Checks the bound cookie of a request whose session is bound;
    /// `Err` with the reason (for the logs) when it is missing or not
    /// valid for this session.
    pub(crate) fn check_bound(
        &self,
        layer: &SessionLayer,
        binding: Option<&Binding>,
        incoming: &IncomingCookies,
        now: SystemTime,
    ) -> Result<BoundCheck, &'static str> {
        let Some(binding) = binding else {
            return Ok(BoundCheck::Unbound);
        };
        let Some(token) = incoming.token() else {
            return Err(if incoming.is_malformed() {
                "bound cookie malformed"
            } else {
                "no bound cookie"
            });
        };
        let manager = layer.manager();
        let checked = tokens::open(
            manager.keyring(),
            token,
            manager.config().purpose(),
            Kind::Bound,
            &binding.id,
            now,
            tokens::Leeway {
                skew: BOUND_COOKIE_SKEW,
                grace: BOUND_COOKIE_SKEW,
            },
        )?;
        Ok(BoundCheck::Valid {
            exp_ms: checked.exp_ms,
        })
    }

    /// The headers a response of `session` carries: an offer to register
    /// (after a login, or on one response in `offer_every` of a signed-in
    /// session not bound yet), or the next refresh challenge (for a bound
    /// session whose bound cookie nears its end).
    pub(crate) fn decorate(
        &self,
        layer: &SessionLayer,
        head: &mut ResponseHead,
        session: &Session<LayerData>,
        logged_in: bool,
        bound: BoundCheck,
        now: SystemTime,
    ) {
        if session.is_destroyed() || session.id().is_empty() || session.subject().is_none() {
            return;
        }
        let manager = layer.manager();
        let purpose = manager.config().purpose();
        match (session.binding(), bound) {
            (None, _) => {
                let every = u64::from(self.config.offer_every);
                // Not again while the login's offer may still be answered:
                // Chromium would register twice, with two keys.
                let outstanding = now
                    .duration_since(session.created())
                    .map_or(true, |age| age < self.config.challenge_lifetime);
                let due = logged_in
                    || (every > 0
                        && !outstanding
                        && self
                            .responses
                            .fetch_add(1, Ordering::Relaxed)
                            .is_multiple_of(every));
                if !due {
                    return;
                }
                match tokens::seal_challenge(
                    manager.keyring(),
                    purpose,
                    Kind::Registration,
                    session.id(),
                    now,
                    self.config.challenge_lifetime,
                ) {
                    Ok(challenge) => {
                        crate::metrics::dbsc("offered");
                        head.headers.push((
                            REGISTRATION,
                            header::offer(
                                &self.config.algorithms,
                                &self.config.registration_path,
                                &challenge,
                            ),
                        ));
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "could not seal a DBSC registration challenge; no offer")
                    }
                }
            }
            (Some(binding), BoundCheck::Valid { exp_ms }) => {
                self.prime_if_due(layer, head, &binding.id, exp_ms, now);
            }
            (Some(_), BoundCheck::Unbound) => {}
        }
    }

    /// Adds the next refresh challenge when the bound cookie expiring at
    /// `exp_ms` will be refreshed within a challenge's lifetime.
    fn prime_if_due(
        &self,
        layer: &SessionLayer,
        head: &mut ResponseHead,
        id: &str,
        exp_ms: u64,
        now: SystemTime,
    ) {
        let window = BROWSER_REFRESH_LEAD + self.config.challenge_lifetime;
        let left = exp_ms.saturating_sub(unix_millis(now));
        if u128::from(left) > window.as_millis() {
            return;
        }
        if let Some(challenge) = self.refresh_challenge(layer, id, now) {
            head.headers
                .push((CHALLENGE, header::challenge(&challenge, id)));
        }
    }

    fn refresh_challenge(&self, layer: &SessionLayer, id: &str, now: SystemTime) -> Option<String> {
        let manager = layer.manager();
        tokens::seal_challenge(
            manager.keyring(),
            manager.config().purpose(),
            Kind::Refresh,
            id,
            now,
            self.config.challenge_lifetime,
        )
        .map_err(|error| tracing::error!(error = %error, "could not seal a DBSC refresh challenge"))
        .ok()
    }

    /// The registration path.
    pub(crate) fn registration_path(&self) -> &str {
        &self.config.registration_path
    }

    /// The request's bound cookie, read once per request.
    pub(crate) fn read_bound(&self, request: &RequestHead<'_>) -> IncomingCookies {
        self.bound.read(request.cookies.iter().copied())
    }

    /// The `Set-Cookie` that removes the bound cookie.
    pub(crate) fn removal(&self) -> String {
        self.bound.remove(&IncomingCookies::default())[0].clone()
    }

    /// `POST registration_path`.
    pub(crate) async fn register(
        &self,
        layer: &SessionLayer,
        request: &RequestHead<'_>,
        incoming: &IncomingCookies,
    ) -> ResponseHead {
        let refuse = |status: u16, reason: &str| refused("registration_refused", status, reason);
        let manager = layer.manager();
        let now = manager.now();
        let Some(jwt) = request.secure_session_response.and_then(header::parse_item) else {
            return refuse(400, "no well-formed Secure-Session-Response header");
        };
        let proof = match proof::parse(jwt, &self.config.algorithms) {
            Ok(proof) => proof,
            Err(error) => return refuse(400, error.0),
        };
        let Some(key) = proof.jwk.clone() else {
            return refuse(400, "registration proof has no jwk");
        };
        let origin = match self.origin(request) {
            Some(origin) => origin,
            None => return refuse(400, "no valid Host header for the session's origin"),
        };
        let mut session = match load(layer, incoming).await {
            Loaded::Session(session) => session,
            Loaded::None => return refuse(401, "no valid session to bind"),
            Loaded::Unavailable => return refuse(
                503,
                "the session cannot be read now (store down, or a key or clock not yet in step)",
            ),
            Loaded::Replaced => {
                return refuse(
                    401,
                    "the session's token was just replaced (a login or renewal in flight)",
                )
            }
        };
        if session.subject().is_none() {
            return refuse(401, "the session is not signed in");
        }
        let purpose = manager.config().purpose();
        let checked = match tokens::open(
            manager.keyring(),
            &proof.jti,
            purpose,
            Kind::Registration,
            session.id(),
            now,
            // A challenge another server sealed, with a clock a little ahead.
            tokens::Leeway {
                skew: BOUND_COOKIE_SKEW,
                grace: Duration::ZERO,
            },
        ) {
            Ok(checked) => checked,
            Err(reason) => return refuse(400, &format!("challenge refused: {reason}")),
        };
        if let Some(existing) = session.binding() {
            if existing.key != key {
                return refuse(
                    403,
                    "the session is bound to another device key; re-registration refused",
                );
            }
        }
        if let Err(error) = proof.verify(jwt, &key) {
            return refuse(400, error.0);
        }
        match use_nonce(layer, &checked).await {
            Ok(true) => {}
            Ok(false) => return refuse(400, "challenge already used"),
            Err(()) => return refuse(503, "revocation store unavailable"),
        }
        // One binding per session id, even for registrations that race
        // (two offers answered at once): the second is refused, and
        // Chromium keeps the first.
        if session.binding().is_none() {
            // Held as long as the challenge could be used: after that the
            // session id is renewed (or the registration failed and a new
            // offer names the same id again).
            let until =
                crate::clock::from_unix_millis(checked.exp_ms.saturating_add(NONCE_GRACE_MS));
            match use_once(layer, &format!("dbsc-bind:{}", session.id()), until).await {
                Ok(true) => {}
                Ok(false) => return refuse(400, "the session was bound by another registration"),
                Err(()) => return refuse(503, "revocation store unavailable"),
            }
        }
        let id = match session.binding() {
            Some(existing) => existing.id.clone(),
            None => match crate::b64::random::<16>() {
                Some(id) => id,
                None => return refuse(500, "no randomness for a binding id"),
            },
        };
        if session.binding().is_none() {
            // Also renews the session id: every token sealed before the
            // binding, unbound, is revoked.
            session.bind(Binding {
                id: id.clone(),
                key,
            });
        }
        let mut head = match self.save(layer, &mut session, incoming, now).await {
            Ok(head) => head,
            Err(status) => return answer(status, None),
        };
        if let Err(status) = self.grant_bound(layer, &mut head, &id, request, now) {
            return answer(status, None);
        }
        let scope_specification: Vec<_> = self
            .config
            .scope_exclude
            .iter()
            .map(|path| json!({"type": "exclude", "domain": host_of(&origin), "path": path}))
            .collect();
        let instructions = json!({
            "session_identifier": id,
            "refresh_url": self.config.refresh_path,
            "continue": true,
            "scope": {
                "origin": origin,
                "include_site": false,
                "scope_specification": scope_specification,
            },
            "credentials": [{
                "type": "cookie",
                "name": self.bound.name(),
                "attributes": self.attributes,
            }],
        });
        head.replace_body = Some(Cow::Owned(instructions.to_string()));
        tracing::info!(alg = %proof.alg, binding = %id, "DBSC session registered: bound to the device's key");
        crate::metrics::dbsc("registered");
        head
    }

    /// `POST refresh_path`.
    pub(crate) async fn refresh(
        &self,
        layer: &SessionLayer,
        request: &RequestHead<'_>,
        incoming: &IncomingCookies,
    ) -> ResponseHead {
        let refuse = |status: u16, reason: &str| refused("refresh_refused", status, reason);
        let manager = layer.manager();
        let now = manager.now();
        let Some(id) = request
            .secure_session_id
            .and_then(header::parse_item)
            .filter(|id| id.len() <= MAX_ID_LEN)
        else {
            return refuse(400, "no well-formed Sec-Secure-Session-Id header");
        };
        let end = |reason: &str| {
            tracing::info!(
                reason,
                binding = id,
                "DBSC refresh: the session is over; continue:false"
            );
            crate::metrics::dbsc("ended");
            // No cookie is touched: the session cookie may already be a
            // newer session's (a login while this refresh was in flight),
            // and so may the bound cookie, which every binding names alike.
            // Ordinary requests remove an expired or invalid session cookie.
            answer(
                200,
                Some(json!({"session_identifier": id, "continue": false}).to_string()),
            )
        };
        let mut session = match load(layer, incoming).await {
            Loaded::Session(session) => session,
            Loaded::None => {
                return end("no valid session cookie (none, expired, revoked or not ours)")
            }
            Loaded::Unavailable => return refuse(503, "the session cannot be read now (store down, or a key or clock not yet in step); the browser retries"),
            Loaded::Replaced => return refuse(503, "the session's token was just replaced (a login or renewal in flight); the browser retries with the new one"),
        };
        let Some(binding) = session.binding().filter(|b| b.id == id).cloned() else {
            return end("the session is not bound under this id");
        };
        let challenge_again = |reason: &str| {
            tracing::info!(reason, binding = id, "DBSC refresh: challenge sent");
            crate::metrics::dbsc("challenged");
            let mut head = answer(403, None);
            if let Some(challenge) = self.refresh_challenge(layer, id, now) {
                head.headers
                    .push((CHALLENGE, header::challenge(&challenge, id)));
            }
            head
        };
        let Some(raw) = request.secure_session_response else {
            return challenge_again("no proof yet");
        };
        let Some(jwt) = header::parse_item(raw) else {
            return refuse(400, "Secure-Session-Response is not well-formed");
        };
        let alg = match binding.key {
            DeviceKey::Ec { .. } => DeviceAlgorithm::Es256,
            DeviceKey::Rsa { .. } => DeviceAlgorithm::Rs256,
        };
        let proof = match proof::parse(jwt, &[alg]) {
            Ok(proof) => proof,
            Err(error) => return refuse(400, error.0),
        };
        if proof.jwk.as_ref().is_some_and(|jwk| *jwk != binding.key) {
            return refuse(400, "proof carries another device's key");
        }
        let checked = match tokens::open(
            manager.keyring(),
            &proof.jti,
            manager.config().purpose(),
            Kind::Refresh,
            id,
            now,
            // A challenge another server sealed, with a clock a little ahead.
            tokens::Leeway {
                skew: BOUND_COOKIE_SKEW,
                grace: Duration::ZERO,
            },
        ) {
            Ok(checked) => checked,
            Err(reason) => return challenge_again(&format!("challenge refused: {reason}")),
        };
        if let Err(error) = proof.verify(jwt, &binding.key) {
            return refuse(400, error.0);
        }
        match use_nonce(layer, &checked).await {
            Ok(true) => {}
            Ok(false) => return challenge_again("challenge already used"),
            Err(()) => return refuse(503, "revocation store unavailable"),
        }
        let mut head = match self.save(layer, &mut session, incoming, now).await {
            Ok(head) => head,
            Err(status) => return answer(status, None),
        };
        if let Err(status) = self.grant_bound(layer, &mut head, id, request, now) {
            return answer(status, None);
        }
        tracing::debug!(binding = id, "DBSC refresh: bound cookie renewed");
        crate::metrics::dbsc("refreshed");
        head
    }

    /// Seals the session again when it needs it (a binding, a re-issue
    /// under a new key); the cookies to set, or the status to answer.
    async fn save(
        &self,
        layer: &SessionLayer,
        session: &mut Session<LayerData>,
        incoming: &IncomingCookies,
        now: SystemTime,
    ) -> Result<ResponseHead, u16> {
        let manager = layer.manager();
        match manager.save_at(session, now).await {
            Ok(SaveOutcome::Seal { token, expires, .. }) => {
                if let Some(old) = incoming.token() {
                    manager.forget_token(old);
                }
                let max_age = expires.duration_since(now).unwrap_or(Duration::ZERO);
                layer
                    .cookies()
                    .write(&token, max_age, incoming)
                    .map(|set_cookies| ResponseHead {
                        set_cookies,
                        ..ResponseHead::default()
                    })
                    .map_err(|error| {
                        tracing::error!(error = %error, "session too large for its cookies");
                        500
                    })
            }
            Ok(_) => Ok(ResponseHead::default()),
            Err(Error::Store(error)) => {
                tracing::error!(error = %error, "revocation store unavailable while saving a DBSC session");
                Err(503)
            }
            Err(error) => {
                tracing::error!(error = %error, "could not save a DBSC session");
                Err(500)
            }
        }
    }

    /// Answers 200 with a fresh bound cookie for the binding `id` (and the
    /// next challenge, when it will be refreshed within one's lifetime).
    fn grant_bound(
        &self,
        layer: &SessionLayer,
        head: &mut ResponseHead,
        id: &str,
        request: &RequestHead<'_>,
        now: SystemTime,
    ) -> Result<(), u16> {
        let manager = layer.manager();
        let lifetime = self.config.bound_cookie_lifetime;
        let token = tokens::seal_bound(
            manager.keyring(),
            manager.config().purpose(),
            id,
            now,
            lifetime,
        )
        .map_err(|error| {
            tracing::error!(error = %error, "could not seal a bound cookie");
            500u16
        })?;
        let incoming = self.bound.read(request.cookies.iter().copied());
        let set_cookies = self
            .bound
            .write(&token, lifetime, &incoming)
            .map_err(|error| {
                tracing::error!(error = %error, "bound cookie too large");
                500u16
            })?;
        head.set_cookies.extend(set_cookies);
        head.replace_status = Some(200);
        head.no_store = true;
        let exp_ms = unix_millis(now)
            .saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
        self.prime_if_due(layer, head, id, exp_ms, now);
        Ok(())
    }

    /// The site's origin: configured, or `https://` and the `Host`.
    fn origin(&self, request: &RequestHead<'_>) -> Option<String> {
        if let Some(origin) = &self.config.origin {
            return Some(origin.clone());
        }
        request
            .host
            .filter(|host| header::is_host(host))
            .map(|host| format!("https://{host}"))
    }
}

/// The host of an `https://host[:port]` origin, without the port.
fn host_of(origin: &str) -> &str {
    let authority = origin.strip_prefix("https://").unwrap_or(origin);
    match authority.rfind(':') {
        Some(i) if !authority.ends_with(']') => &authority[..i],
        _ => authority,
    }
}

/// A response the layer answers by itself.
fn answer(status: u16, body: Option<String>) -> ResponseHead {
    ResponseHead {
        replace_status: Some(status),
        replace_body: body.map(Cow::Owned),
        no_store: true,
        ..ResponseHead::default()
    }
}

/// The request's session, for an endpoint.
async fn load(layer: &SessionLayer, incoming: &IncomingCookies) -> Loaded {
    let Some(token) = incoming.token() else {
        return Loaded::None;
    };
    let loaded = layer
        .manager()
        .load_with(token, |verified| {
            Some(LayerData::Token(std::sync::Arc::clone(verified)))
        })
        .await;
    match loaded {
        Ok(session) => Loaded::Session(Box::new(session)),
        Err(rejection) => match rejection.kind() {
            RejectionKind::StoreUnavailable
            | RejectionKind::UnknownKey
            | RejectionKind::NotYetValid => Loaded::Unavailable,
            RejectionKind::Revoked
                if rejection.issued_at().is_some_and(|iat| {
                    iat.saturating_add(super::REPLACED_WINDOW_SECS)
                        >= crate::clock::unix_seconds(layer.manager().now())
                }) =>
            {
                Loaded::Replaced
            }
            _ => Loaded::None,
        },
    }
}

/// Records a challenge's one-time value as used; `Err` when the store is
/// down.
async fn use_nonce(layer: &SessionLayer, checked: &tokens::Checked) -> Result<bool, ()> {
    let Some(nonce) = checked.nonce.as_deref() else {
        return Ok(false);
    };
    let until = crate::clock::from_unix_millis(checked.exp_ms.saturating_add(NONCE_GRACE_MS));
    use_once(layer, &format!("dbsc:{nonce}"), until).await
}

/// Records `value` in the store until `until`: `true` the first time.
async fn use_once(layer: &SessionLayer, value: &str, until: SystemTime) -> Result<bool, ()> {
    layer
        .manager()
        .store()
        .use_nonce(value, until)
        .await
        .map_err(|error| tracing::error!(error = %error, "revocation store unavailable while recording a DBSC value"))
}

/// A registration or refresh refused: logged with its reason, counted
/// under `event` (`registration_refused` or `refresh_refused`), and
/// answered with `status` alone.
fn refused(event: &'static str, status: u16, reason: &str) -> ResponseHead {
    tracing::info!(event, reason, status, "DBSC request refused");
    crate::metrics::dbsc(event);
    answer(status, None)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_origin() {
        assert_eq!(host_of("https://example.com"), "example.com");
        assert_eq!(host_of("https://localhost:8443"), "localhost");
        assert_eq!(host_of("https://[::1]:8443"), "[::1]");
        assert_eq!(host_of("https://[::1]"), "[::1]");
    }
}

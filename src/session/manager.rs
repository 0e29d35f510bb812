//! [`SessionManager`]: loads and checks tokens (through the token cache),
//! saves and seals sessions, records revocations, and [`SaveOutcome`], what
//! a save tells the client.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::config::{SessionConfig, StoreFailurePolicy};
use super::flash::Flash;
use super::token_cache::{Ticket, TokenCache, TokenCacheStats, TokenText, Verified};
use super::value::{Generations, Lifecycle, ResealReason, Session};
use super::wire::{new_sid, WireIn, WireOut, FORMAT_V1, FORMAT_VERSION, SESSION_TYP};
use crate::clock::{from_unix_millis, unix_millis, unix_seconds, Clock};
use crate::error::{Error, Rejection, RejectionKind, SealError, StoreError};
use crate::jwe::{OpenOptions, SealOptions};
use crate::keyring::{KeyState, Keyring};
use crate::revocation::{CheckOutcome, IntoRevocationStore, RevocationStore, SubjectState};
use crate::wipe::{Wiped, WipingBuffer};

/// What to send back after [`SessionManager::save`].
#[must_use = "the client must get the new token, or its cookie removed"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// Nothing: the client's token stays as it is (or there is none).
    Unchanged,
    /// Send this new token.
    Seal {
        /// The compact JWE.
        token: String,
        /// Its idle deadline (for a persistent cookie's `Max-Age`).
        expires: SystemTime,
        /// Why it was sealed.
        reason: ResealReason,
    },
    /// Remove the client's token (the session was destroyed).
    Remove,
}

/// What a session knows of its subject's generations, for the next seal.
struct GenerationsHeld {
    sub: Option<Arc<str>>,
    /// The subject is the one of the token the client holds.
    same_subject: bool,
    generations: Option<Generations>,
    observed: Option<SubjectState>,
}

/// What the caller of [`SessionManager::load_step`] already knows of the
/// token's cache entry.
pub(crate) enum Known<'t> {
    /// Nothing: the load asks the cache.
    Nothing,
    /// The caller asked the cache, with the cookie's bytes, and `hit` is its
    /// answer; `text` is the token it holds, shared (a hit's own, or the
    /// cookie's checked and copied once), for the entry a miss keeps.
    Asked {
        hit: Option<Arc<Verified>>,
        text: &'t TokenText,
    },
}

/// How far [`SessionManager::load_step`] got.
pub(crate) enum LoadStep<'t, T, R> {
    /// The whole load, the session already where the caller places it.
    Done(Result<R, Rejection>),
    /// Everything but the store's check, which does not answer at once.
    Store(PendingLoad<'t, T>),
}

/// A verified and checked token, waiting for the store's check.
pub(crate) struct PendingLoad<'t, T> {
    token: HeldToken<'t>,
    wire: Arc<Verified>,
    key_state: KeyState,
    opened: Opened,
    checked: Checked<T>,
}

/// The token a pending load is about.
enum HeldToken<'t> {
    Borrowed(&'t str),
    Shared(TokenText),
}

impl HeldToken<'_> {
    fn as_str(&self) -> &str {
        match self {
            HeldToken::Borrowed(token) => token,
            HeldToken::Shared(text) => text.as_str(),
        }
    }
}

impl<T> PendingLoad<'_, T> {
    /// The same load, holding `text` (the token it is about, shared)
    /// instead of borrowing it: to wait for the store beyond the borrow.
    pub(crate) fn holding(self, text: &TokenText) -> PendingLoad<'static, T> {
        debug_assert_eq!(self.token.as_str(), text.as_str());
        PendingLoad {
            token: HeldToken::Shared(Arc::clone(text)),
            wire: self.wire,
            key_state: self.key_state,
            opened: self.opened,
            checked: self.checked,
        }
    }
}

/// Where a load's verified token came from.
#[derive(Clone, Copy)]
enum Opened {
    /// The token cache.
    Cached,
    /// Opened by this load, with the cache's ticket for the token taken
    /// before the open ([`TokenCache::insert_unless_forgotten`]). A hit
    /// takes none: it would only be read to keep a token already kept.
    Now(Ticket),
}

/// What the checks before the store's give: the data, and the deadlines.
struct Checked<T> {
    data: T,
    idle: u64,
    absolute: u64,
}

/// Loads, checks and saves sessions; shared by every request.
///
/// ```
/// use std::sync::Arc;
/// use jwe_session::{Key, KeyAlgorithm, Keyring};
/// use jwe_session::revocation::MemoryStore;
/// use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jwe_session::Error> {
/// let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
/// let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
///
/// // Login: a new session id and lifetime, with a subject.
/// let mut session = manager.start(SessionMap::default());
/// session.login("alice");
/// session.insert("theme", "dark")?;
/// let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
///
/// // A later request.
/// let session = manager.load::<SessionMap>(&token).await?;
/// assert_eq!(session.subject(), Some("alice"));
/// assert_eq!(session.get::<String>("theme")?.as_deref(), Some("dark"));
/// # Ok(())
/// # }
/// ```
pub struct SessionManager {
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    config: SessionConfig,
    clock: Arc<dyn Clock>,
    seal_options: SealOptions,
    open_options: OpenOptions,
    cache: TokenCache,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("keyring", &self.keyring)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager over `keyring`, keeping revocations in `store` (each by
    /// value or in an `Arc`). Fails only on a configuration that
    /// [`SessionConfig::validate`] refuses.
    pub fn new(
        keyring: impl Into<Arc<Keyring>>,
        store: impl IntoRevocationStore,
        config: SessionConfig,
    ) -> Result<SessionManager, Error> {
        config.validate()?;
        let keyring = keyring.into();
        // Tokens this manager seals live up to the absolute timeout (and
        // the leeway) after their key stops sealing: the keyring's `prune`
        // keeps retired keys that long.
        keyring.keep_retired_keys_for(config.absolute_timeout().saturating_add(config.leeway()));
        Ok(SessionManager {
            keyring,
            store: store.into_revocation_store(),
            open_options: OpenOptions::new().with_max_len(config.max_token_len()),
            cache: TokenCache::new(config.token_cache_bytes()),
            config,
            clock: crate::clock::system(),
            seal_options: SealOptions::new().with_typ(SESSION_TYP),
        })
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> SessionManager {
        self.clock = clock;
        self
    }

    /// The keyring (rotate it anywhere; the next request sees it).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The revocation store.
    pub fn store(&self) -> &Arc<dyn RevocationStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Drops `token` from the token cache, if it is there. For a token the
    /// client will not send again: after a logout, so the session's
    /// decrypted contents leave memory at once, or after a new token
    /// replaced it. Nothing else changes: a token that was valid stays
    /// valid (only slower to load next time), a revoked one stays revoked.
    /// The integrations call this whenever they send a new token or remove
    /// the cookie.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring};
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwe_session::Error> {
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
    /// # let mut session = manager.start(SessionMap::default());
    /// # session.login("alice");
    /// # let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
    /// let mut session = manager.load::<SessionMap>(&token).await?;
    /// assert_eq!(manager.token_cache_stats().entries, 1);
    /// session.destroy();
    /// assert_eq!(manager.save(&mut session).await?, SaveOutcome::Remove);
    /// manager.forget_token(&token);
    /// assert_eq!(manager.token_cache_stats().entries, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn forget_token(&self, token: &str) {
        self.cache.forget(token);
    }

    /// The token cache's entry for a token, as the request's cookie bytes
    /// give it (for [`load_step`](Self::load_step)'s [`Known::Asked`]).
    pub(crate) fn cached(&self, token: &[u8]) -> Option<Arc<Verified>> {
        self.cache.get(token)
    }

    /// The token cache's size, capacity, hits and misses.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring};
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::session::{SessionConfig, SessionManager};
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    /// let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
    /// let stats = manager.token_cache_stats();
    /// assert_eq!((stats.entries, stats.bytes, stats.hits, stats.misses), (0, 0, 0, 0));
    /// assert_eq!(stats.capacity, 8 * 1024 * 1024);
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    pub fn token_cache_stats(&self) -> TokenCacheStats {
        self.cache.stats()
    }

    /// The current time by this manager's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// A new, empty session starting now. It is sealed only once it has
    /// data or a subject.
    pub fn start<T>(&self, data: T) -> Session<T> {
        self.start_at(data, self.clock.now())
    }

    /// A new session starting at `now`.
    pub fn start_at<T>(&self, data: T, now: SystemTime) -> Session<T> {
        Session::unsealed(data, unix_millis(now), self.deadlines(now))
    }

    fn deadlines(&self, now: SystemTime) -> (u64, u64, u64) {
        let now = unix_seconds(now);
        let abs_exp = now.saturating_add(self.config.absolute_timeout().as_secs());
        let exp = now
            .saturating_add(self.config.idle_timeout().as_secs())
            .min(abs_exp);
        (now, exp, abs_exp)
    }

    /// Opens and checks a session token now.
    pub async fn load<T: DeserializeOwned>(&self, token: &str) -> Result<Session<T>, Rejection> {
        self.load_at(token, self.clock.now()).await
    }

    /// Opens and checks a session token as of `now`: decryption, purpose,
    /// format, deadlines, data type, then revocation (one store round trip).
    pub async fn load_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Session<T>, Rejection> {
        self.load_logged(token, now, |verified| {
            serde_json::from_str::<T>(&verified.data).ok()
        })
        .await
    }

    /// [`load`](SessionManager::load), and for a [`SessionMap`](super::SessionMap) also keeps
    /// the decoded map in the token cache: the next request with the same
    /// token shares it (copy on write) instead of decoding the JSON again.
    /// Other data types are decoded on every load, as with `load`. (The
    /// integrations share the same cache through `load_with`, keeping the
    /// verified entry and decoding in the handle.)
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring};
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwe_session::Error> {
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
    /// let mut session = manager.start(SessionMap::default());
    /// session.insert("theme", "dark")?;
    /// let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
    ///
    /// // Decoded once; the second load clones the cached map.
    /// let first = manager.load_cached::<SessionMap>(&token).await?;
    /// let second = manager.load_cached::<SessionMap>(&token).await?;
    /// assert_eq!(first.data(), second.data());
    /// assert_eq!(manager.token_cache_stats().entries, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn load_cached<T: DeserializeOwned + 'static>(
        &self,
        token: &str,
    ) -> Result<Session<T>, Rejection> {
        let now = self.clock.now();
        self.load_logged(token, now, |verified| verified.data_as::<T>())
            .await
    }

    /// Loads a token now, handing the verified entry itself to `decode`
    /// (the integrations keep it, and decode the data lazily).
    pub(crate) async fn load_with<T>(
        &self,
        token: &str,
        decode: impl FnOnce(&Arc<Verified>) -> Option<T>,
    ) -> Result<Session<T>, Rejection> {
        let now = self.clock.now();
        self.load_logged(token, now, decode).await
    }

    async fn load_logged<T>(
        &self,
        token: &str,
        now: SystemTime,
        decode: impl FnOnce(&Arc<Verified>) -> Option<T>,
    ) -> Result<Session<T>, Rejection> {
        match self.load_step(token, Known::Nothing, now, decode, |session| session) {
            LoadStep::Done(result) => result,
            LoadStep::Store(pending) => self.load_pending(pending).await,
        }
    }

    /// A load as far as it goes without waiting: all of it when the token
    /// has no subject or the store answers at once (as the memory store
    /// does), else everything but the store's check, which
    /// [`load_pending`](Self::load_pending) finishes. The integrations call
    /// it directly, so that the request path of a cached token with a
    /// memory store has no future to poll or to move the session through.
    /// `place` puts a loaded session where the caller keeps it (the
    /// integrations' shared cell), so that it is not moved again on its
    /// way out: a `Session` is a few hundred bytes, copied at every move.
    pub(crate) fn load_step<'t, T, R>(
        &self,
        token: &'t str,
        known: Known<'_>,
        now: SystemTime,
        decode: impl FnOnce(&Arc<Verified>) -> Option<T>,
        place: impl FnOnce(Session<T>) -> R,
    ) -> LoadStep<'t, T, R> {
        // One reading of the clock's time, in milliseconds, for the checks
        // below and, on the shared system clock, the key's last-use stamp.
        let now_ms = unix_millis(now);
        let system_now = crate::clock::is_system(&self.clock).then_some(now_ms / 1000);
        let (wire, key_state, opened) = match self.verify(token, known, system_now) {
            Ok(verified) => verified,
            Err(rejection) => {
                let result = Err(rejection);
                self.concluded::<T>(&result);
                return LoadStep::Done(result.map(place));
            }
        };
        let checked = match self.check_before_store(&wire, now_ms, decode) {
            Ok(checked) => checked,
            Err(rejection) => {
                let result = Err(rejection);
                self.conclude::<T>(token, opened, wire, &result);
                return LoadStep::Done(result.map(place));
            }
        };
        let pending = PendingLoad {
            token: HeldToken::Borrowed(token),
            wire,
            key_state,
            opened,
            checked,
        };
        // Only a session with a subject can have been revoked: an anonymous
        // one costs no round trip.
        let answer = match pending.wire.sub.as_deref() {
            None => None,
            // A store in memory answers at once, with no future to box.
            Some(sub) => match crate::metrics::timed_now("check", || {
                self.store.check_now(sub, &pending.wire.sid)
            }) {
                Some(answer) => Some(answer),
                None => return LoadStep::Store(pending),
            },
        };
        LoadStep::Done(self.finish_load(pending, answer).map(place))
    }

    /// Finishes a load that waits for the store's check.
    pub(crate) async fn load_pending<T>(
        &self,
        pending: PendingLoad<'_, T>,
    ) -> Result<Session<T>, Rejection> {
        // Pending only with a subject to ask about.
        let answer = match pending.wire.sub.as_deref() {
            Some(sub) => {
                Some(crate::metrics::timed("check", self.store.check(sub, &pending.wire.sid)).await)
            }
            None => None,
        };
        self.finish_load(pending, answer)
    }

    /// The end of a load, with the store's `answer` (`None`: no subject).
    fn finish_load<T>(
        &self,
        pending: PendingLoad<'_, T>,
        answer: Option<Result<CheckOutcome, StoreError>>,
    ) -> Result<Session<T>, Rejection> {
        let PendingLoad {
            token,
            wire,
            key_state,
            opened,
            checked,
        } = pending;
        let result = self.check_store_answer(&wire, key_state, checked, answer);
        self.conclude(token.as_str(), opened, wire, &result);
        result
    }

    /// Keeps in the cache only a token whose whole load succeeded, and
    /// drops a kept one that fails a check now; then counts and logs.
    /// (The result is borrowed, not passed through: the session is not
    /// copied on its way out.)
    fn conclude<T>(
        &self,
        token: &str,
        opened: Opened,
        wire: Arc<Verified>,
        result: &Result<Session<T>, Rejection>,
    ) {
        match (result, opened) {
            (Ok(_), Opened::Now(ticket)) => self.cache.insert_unless_forgotten(wire, ticket),
            (Err(_), Opened::Cached) => self.cache.remove(token),
            _ => {}
        }
        self.concluded(result);
    }

    /// Counts a load's outcome, and logs a rejection.
    fn concluded<T>(&self, result: &Result<Session<T>, Rejection>) {
        crate::metrics::load(match result {
            Ok(_) => "ok",
            Err(rejection) => rejection.kind().as_str(),
        });
        if let Err(rejection) = result {
            tracing::info!(
                kind = rejection.kind().as_str(),
                reason = rejection.reason(),
                kid = rejection.kid().unwrap_or("-"),
                "session rejected"
            );
        }
    }

    /// The checks of a verified token that need no store: the deadlines
    /// against `now`, and the data type.
    fn check_before_store<T>(
        &self,
        wire: &Arc<Verified>,
        now_ms: u64,
        decode: impl FnOnce(&Arc<Verified>) -> Option<T>,
    ) -> Result<Checked<T>, Rejection> {
        let reject = |kind, reason| Rejection::new(kind, reason).with_kid(&wire.kid);
        let now_s = now_ms / 1000;
        let leeway = self.config.leeway().as_secs();
        let created_s = wire.created_ms / 1000;
        if created_s > now_s.saturating_add(leeway) || wire.iat > now_s.saturating_add(leeway) {
            return Err(reject(RejectionKind::NotYetValid, "sealed in the future"));
        }
        // Deadlines as sealed, never later than what the configuration
        // allows now (a shortened timeout applies to live sessions too).
        let absolute = wire
            .abs_exp
            .min(created_s.saturating_add(self.config.absolute_timeout().as_secs()));
        if now_ms >= dies_at_ms(absolute, leeway) {
            return Err(reject(
                RejectionKind::ExpiredAbsolute,
                "absolute deadline passed",
            ));
        }
        let idle = wire.exp.min(
            wire.iat
                .saturating_add(self.config.idle_timeout().as_secs()),
        );
        if now_ms >= dies_at_ms(idle, leeway) {
            return Err(reject(RejectionKind::ExpiredIdle, "idle deadline passed"));
        }
        let data = decode(wire).ok_or_else(|| {
            reject(
                RejectionKind::Malformed,
                "session data does not fit the expected type",
            )
        })?;
        Ok(Checked {
            data,
            idle,
            absolute,
        })
    }

    /// Revocation, from the store's `answer` (`None`: the token has no
    /// subject, so nothing to ask), then the session.
    fn check_store_answer<T>(
        &self,
        wire: &Arc<Verified>,
        key_state: KeyState,
        checked: Checked<T>,
        answer: Option<Result<CheckOutcome, StoreError>>,
    ) -> Result<Session<T>, Rejection> {
        let reject = |kind, reason| Rejection::new(kind, reason).with_kid(&wire.kid);
        let mut observed = None;
        let mut stale = false;
        match answer {
            None => {}
            Some(Ok(outcome)) => {
                if outcome.session_revoked {
                    return Err(reject(RejectionKind::Revoked, "session id revoked")
                        .with_issued_at(wire.iat));
                }
                let state = outcome.subject;
                let revoked = match wire.sgen {
                    Some(sgen) => sgen < state.generation,
                    // Format 1 carries no generation: its creation time
                    // against the latest revocation, that millisecond
                    // included.
                    None => wire.created_ms <= state.revoked_at_ms,
                };
                if revoked {
                    return Err(reject(RejectionKind::Revoked, "subject's sessions revoked")
                        .with_issued_at(wire.iat));
                }
                stale = wire.dgen.unwrap_or(0) < state.data_generation;
                observed = Some(state);
            }
            Some(Err(error)) => match self.config.store_failure() {
                StoreFailurePolicy::FailClosed => {
                    tracing::warn!(error = %error, "revocation store unavailable; failing closed");
                    return Err(reject(
                        RejectionKind::StoreUnavailable,
                        "revocation store unavailable",
                    ));
                }
                StoreFailurePolicy::FailOpen => {
                    tracing::warn!(
                        error = %error,
                        "revocation store unavailable; failing OPEN as configured: revoked sessions are accepted"
                    );
                }
            },
        }
        let Checked {
            data,
            idle,
            absolute,
        } = checked;
        let generations = wire
            .sgen
            .zip(wire.dgen)
            .map(|(sgen, dgen)| Generations { sgen, dgen });
        Ok(Session {
            sid: wire.sid.clone(),
            sub: wire.sub.clone(),
            created_ms: wire.created_ms,
            iat: wire.iat,
            exp: idle.min(absolute),
            abs_exp: absolute,
            data,
            changed: false,
            data_changed: false,
            lifecycle: Lifecycle::Active,
            opened: Some((wire.kid.clone(), key_state)),
            opened_sub: wire.sub.clone(),
            generations,
            observed,
            format: wire.version,
            stale,
            flashes_in: wire.flashes.clone(),
            binding: wire.binding.clone(),
            flashes_out: Vec::new(),
            flashes_changed: false,
        })
    }

    /// What does not change between two requests with the same token:
    /// decryption, purpose and format, from the token cache when it holds
    /// the token and the keyring still holds the key that opened it (the
    /// key's state is read from the keyring each time). Says whether it
    /// came from the cache.
    /// `system_now`: the request's time in Unix seconds when this manager
    /// reads the shared system clock, for the key's last-use stamp
    /// ([`Keyring::state_of`]).
    fn verify(
        &self,
        token: &str,
        known: Known<'_>,
        system_now: Option<u64>,
    ) -> Result<(Arc<Verified>, KeyState, Opened), Rejection> {
        let (cached, text) = match known {
            Known::Nothing => (self.cache.get(token), None),
            Known::Asked { hit, text } => (hit, Some(text)),
        };
        if self.config.token_cache_bytes() > 0 {
            crate::metrics::token_cache(cached.is_some());
        }
        if let Some(verified) = cached {
            if let Some(state) = self
                .keyring
                .state_of(&verified.kid, &verified.key, system_now)
            {
                return Ok((verified, state, Opened::Cached));
            }
            // The key that opened it left the keyring (or was replaced):
            // open it again, which says why it fails.
            self.cache.remove(token);
        }
        // Before the open: a logout's forget_token while this load opens
        // the token keeps it out of the cache.
        let ticket = self.cache.ticket(token);
        let opened = self.keyring.open_with(token, &self.open_options)?;
        let reject = |kind, reason| Rejection::new(kind, reason).with_kid(opened.kid());
        if opened.header().typ() != Some(SESSION_TYP) {
            return Err(reject(
                RejectionKind::WrongPurpose,
                "header typ is not a session's",
            ));
        }
        let wire: WireIn<'_> = serde_json::from_slice(opened.plaintext()).map_err(|_| {
            reject(
                RejectionKind::WrongPurpose,
                "payload is not a session of a known format",
            )
        })?;
        if wire.v != FORMAT_VERSION && wire.v != FORMAT_V1 {
            return Err(reject(
                RejectionKind::WrongPurpose,
                "unsupported session format version",
            ));
        }
        // Format 2 carries both generations exactly when it has a subject;
        // format 1 never does.
        let has_generations = match (wire.sgen.is_some(), wire.dgen.is_some()) {
            (true, true) => true,
            (false, false) => false,
            _ => {
                return Err(reject(
                    RejectionKind::WrongPurpose,
                    "payload is not a session of a known format",
                ))
            }
        };
        if has_generations != (wire.v == FORMAT_VERSION && wire.sub.is_some())
            || (wire.v == FORMAT_V1 && !wire.fl.is_empty())
        {
            return Err(reject(
                RejectionKind::WrongPurpose,
                "payload is not a session of a known format",
            ));
        }
        if wire.aud != self.config.purpose() {
            return Err(reject(
                RejectionKind::WrongPurpose,
                "audience is another purpose",
            ));
        }
        let verified = Arc::new(Verified {
            token: match text {
                Some(text) => Some(Arc::clone(text)),
                None if self.cache.is_on() => Some(Arc::new(Wiped::new(token.to_owned()))),
                None => None,
            },
            kid: Arc::from(opened.kid()),
            key: opened.key().clone(),
            version: wire.v,
            sid: Arc::from(&*wire.sid),
            sub: wire.sub.as_deref().map(Arc::from),
            sgen: wire.sgen,
            dgen: wire.dgen,
            flashes: wire.fl,
            binding: wire.dbsc.map(Arc::new),
            created_ms: wire.created_ms,
            iat: wire.iat,
            exp: wire.exp,
            abs_exp: wire.abs_exp,
            data: Wiped::new(wire.data.get().to_owned()),
            map: std::sync::OnceLock::new(),
        });
        Ok((verified, opened.key_state(), Opened::Now(ticket)))
    }

    /// Decides what the client needs after a request, seals when needed,
    /// and records revocations ([`Session::renew`], [`Session::destroy`]).
    pub async fn save<T: Serialize>(&self, session: &mut Session<T>) -> Result<SaveOutcome, Error> {
        self.save_at(session, self.clock.now()).await
    }

    /// Whether [`save_at`](Self::save_at) would do anything at `now`: a
    /// session that is neither destroyed nor renewed, and that needs no
    /// new seal, is left as it is (`SaveOutcome::Unchanged`) with nothing
    /// to wait for.
    pub(crate) fn save_needed<T>(&self, session: &Session<T>, now: SystemTime) -> bool {
        !matches!(session.lifecycle, Lifecycle::Active)
            || session.reseal_reason_at(now, &self.config).is_some()
    }

    /// [`save`](SessionManager::save) as of `now`.
    pub async fn save_at<T: Serialize>(
        &self,
        session: &mut Session<T>,
        now: SystemTime,
    ) -> Result<SaveOutcome, Error> {
        // The integrations skip this call on the same test: one rule.
        if !self.save_needed(session, now) {
            return Ok(SaveOutcome::Unchanged);
        }
        // The id the client holds, to revoke once the renewed session is
        // sealed, with the deadline it had. Only a session with a subject
        // is ever revoked: an anonymous one holds nothing a login inherits.
        let mut replaced = None;
        // Only a destroyed or renewed session needs it: no copy on the
        // request path of a session that stays as it is.
        let opened_sub = match session.lifecycle {
            Lifecycle::Active => None,
            _ => session.opened_sub.clone(),
        };
        match &session.lifecycle {
            Lifecycle::Destroyed { renewed_from } => {
                if let Some(sub) = opened_sub.as_deref() {
                    let until = self.keep_until(session.abs_exp);
                    if let Some(old_sid) = renewed_from {
                        crate::metrics::timed(
                            "revoke_session",
                            self.store.revoke_session(sub, old_sid, until),
                        )
                        .await?;
                    }
                    // Empty after a renew in this request: that id was
                    // never drawn, nor sent.
                    if !session.is_new() && !session.sid.is_empty() {
                        crate::metrics::timed(
                            "revoke_session",
                            self.store.revoke_session(sub, &session.sid, until),
                        )
                        .await?;
                    }
                }
                return Ok(SaveOutcome::Remove);
            }
            Lifecycle::Renewed { old_sid, restart } => {
                replaced = old_sid
                    .clone()
                    .zip(opened_sub.clone())
                    .map(|(sid, sub)| (sub, sid, self.keep_until(session.abs_exp)));
                if *restart {
                    let (_, _, abs_exp) = self.deadlines(now);
                    session.created_ms = unix_millis(now);
                    session.abs_exp = abs_exp;
                }
            }
            Lifecycle::Active => {}
        }
        let Some(reason) = session.reseal_reason_at(now, &self.config) else {
            return Ok(SaveOutcome::Unchanged);
        };
        let refreshed = matches!(
            reason,
            ResealReason::New | ResealReason::Changed | ResealReason::Renewed
        );
        // Read before any await: the session's data need not be `Sync`.
        let held = GenerationsHeld {
            sub: session.sub.clone(),
            same_subject: session.sub.is_some() && session.opened_sub == session.sub,
            generations: session.generations,
            observed: session.observed,
        };
        let generations = self.generations_for(held, refreshed).await?;
        // Slide the idle window; never past the absolute deadline.
        let (iat, exp, _) = self.deadlines(now);
        session.iat = iat;
        session.exp = exp.min(session.abs_exp);
        if session.sid.is_empty() {
            session.sid = Arc::from(new_sid()?);
        }
        // Unread messages stay, after them the new ones; restored if the
        // seal fails, so nothing is lost.
        let added = session.flashes_out.len();
        session.flashes_in.append(&mut session.flashes_out);
        let sealed = self.seal(session, generations).and_then(|(token, kid)| {
            // Never hand out a token this manager would refuse to open; and
            // refuse before revoking anything, so the client's token stays
            // good.
            if token.len() > self.config.max_token_len() {
                tracing::error!(
                    len = token.len(),
                    max = self.config.max_token_len(),
                    "session too large to seal; the client keeps its previous token"
                );
                return Err(Error::from(SealError::TooLarge {
                    len: token.len(),
                    max: self.config.max_token_len(),
                }));
            }
            Ok((token, kid))
        });
        if sealed.is_err() {
            let at = session.flashes_in.len() - added;
            session.flashes_out = session.flashes_in.split_off(at);
        }
        let (token, kid) = sealed?;
        if let Some((sub, old_sid, until)) = replaced {
            crate::metrics::timed(
                "revoke_session",
                self.store.revoke_session(&sub, &old_sid, until),
            )
            .await?;
        }
        session.changed = false;
        session.flashes_changed = false;
        session.lifecycle = Lifecycle::Active;
        session.opened = Some((Arc::from(kid), KeyState::Primary));
        session.opened_sub = session.sub.clone();
        session.generations = generations;
        session.format = FORMAT_VERSION;
        if refreshed {
            session.stale = false;
        }
        crate::metrics::reissue(reason.as_str());
        Ok(SaveOutcome::Seal {
            token,
            expires: session.expires(),
            reason,
        })
    }

    /// The generations a session's next token carries: none without a
    /// subject; the token's own while its subject stays (the data
    /// generation moved to the one its check saw when the data was
    /// `refreshed`); read from the store when the subject is new to the
    /// token (a login) or the token was of format 1.
    async fn generations_for(
        &self,
        held: GenerationsHeld,
        refreshed: bool,
    ) -> Result<Option<Generations>, StoreError> {
        let Some(sub) = held.sub.as_deref() else {
            return Ok(None);
        };
        match (held.same_subject, held.generations, held.observed) {
            (true, Some(held), Some(state)) => Ok(Some(Generations {
                sgen: held.sgen,
                dgen: if refreshed {
                    state.data_generation
                } else {
                    held.dgen
                },
            })),
            // The store was down at load and the layer fails open: keep them.
            (true, Some(held), None) => Ok(Some(held)),
            // A format 1 token that passed its check now: as of that check.
            (true, None, Some(state)) => Ok(Some(Generations {
                sgen: state.generation,
                dgen: state.data_generation,
            })),
            (_, _, _) => {
                let state = match crate::metrics::timed("subject", self.store.subject(sub)).await {
                    Ok(state) => state,
                    // Failing open, a login goes on while the store is down:
                    // sealed under the first generation, the session is
                    // refused once the store is back if the subject was
                    // ever revoked (a new login then), never accepted
                    // against a revocation.
                    Err(error) if self.config.store_failure() == StoreFailurePolicy::FailOpen => {
                        tracing::warn!(
                            error = %error,
                            "revocation store unavailable at login; failing OPEN as configured: the session may need a new login once the store is back"
                        );
                        SubjectState::default()
                    }
                    Err(error) => return Err(error),
                };
                Ok(Some(Generations {
                    sgen: state.generation,
                    dgen: state.data_generation,
                }))
            }
        }
    }

    /// The token, and the `kid` of the key that sealed it.
    fn seal<T: Serialize>(
        &self,
        session: &Session<T>,
        generations: Option<Generations>,
    ) -> Result<(String, String), Error> {
        self.seal_as(session, &session.sid, generations, &session.flashes_in)
    }

    /// Seals `session` with this id, generations and flash messages.
    fn seal_as<T: Serialize>(
        &self,
        session: &Session<T>,
        sid: &str,
        generations: Option<Generations>,
        flashes: &[Flash],
    ) -> Result<(String, String), Error> {
        let wire = WireOut {
            v: FORMAT_VERSION,
            aud: self.config.purpose(),
            sid,
            sub: session.sub.as_deref(),
            sgen: generations.map(|g| g.sgen),
            dgen: generations.map(|g| g.dgen),
            fl: flashes,
            dbsc: session.binding.as_deref(),
            created_ms: session.created_ms,
            iat: session.iat,
            exp: session.exp,
            abs_exp: session.abs_exp,
            data: &session.data,
        };
        // Room for a typical session up front; growth wipes what it leaves.
        let mut payload = WipingBuffer::with_capacity(1024);
        serde_json::to_writer(&mut payload, &wire).map_err(Error::from)?;
        self.keyring
            .seal_reporting(payload.as_bytes(), &self.seal_options, str::to_owned)
    }

    /// How long the session's next token would be if it were saved as it
    /// stands, when it fits the configured maximum
    /// ([`SessionConfig::max_token_len`]; under the integrations, what the
    /// cookies can carry); [`SealError::TooLarge`] when it does not. For a
    /// handler that stores something of unbounded size: check before
    /// answering, and refuse with a clear message instead of losing the
    /// change. It seals a trial token (a few microseconds) and changes
    /// nothing; the length counts the largest possible generations, so a
    /// session that fits here fits when saved.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Error, Key, KeyAlgorithm, Keyring, SealError, SessionConfig, session::SessionManager, SessionMap};
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// let config = SessionConfig::new().with_max_token_len(2_000);
    /// let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), config)?;
    /// let mut session = manager.start(SessionMap::default());
    /// session.insert("note", "short")?;
    /// assert!(manager.sealed_len(&session)? < 2_000);
    /// session.insert("note", "x".repeat(5_000))?;
    /// assert!(matches!(
    ///     manager.sealed_len(&session),
    ///     Err(Error::Seal(SealError::TooLarge { max: 2_000, .. }))
    /// ));
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    pub fn sealed_len<T: Serialize>(&self, session: &Session<T>) -> Result<usize, Error> {
        let sid = if session.sid.is_empty() {
            "AAAAAAAAAAAAAAAAAAAAAA"
        } else {
            &session.sid
        };
        let generations = session.sub.as_ref().map(|_| Generations {
            sgen: u64::MAX,
            dgen: u64::MAX,
        });
        let flashes: Vec<Flash> = session
            .flashes_in
            .iter()
            .chain(&session.flashes_out)
            .cloned()
            .collect();
        let (token, _) = self.seal_as(session, sid, generations, &flashes)?;
        if token.len() > self.config.max_token_len() {
            return Err(SealError::TooLarge {
                len: token.len(),
                max: self.config.max_token_len(),
            }
            .into());
        }
        Ok(token.len())
    }

    /// Revokes every session of `sub` that exists when it returns (log out
    /// everywhere, password change), on every server sharing the
    /// whatever their clocks. A session sealed at a login after it returns
    /// is valid.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, RejectionKind, SessionConfig, session::SessionManager, SessionMap};
    /// # use jwe_session::session::SaveOutcome;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwe_session::Error> {
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
    /// # async fn login(manager: &SessionManager) -> String {
    /// #     let mut session = manager.start(SessionMap::default());
    /// #     session.login("alice");
    /// #     let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await.unwrap() else { unreachable!() };
    /// #     token
    /// # }
    /// let before = login(&manager).await;
    /// manager.revoke_subject("alice").await?;
    /// let after = login(&manager).await;
    /// let refused = manager.load::<SessionMap>(&before).await.unwrap_err();
    /// assert_eq!(refused.kind(), RejectionKind::Revoked);
    /// assert!(manager.load::<SessionMap>(&after).await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn revoke_subject(&self, sub: &str) -> Result<(), StoreError> {
        self.revoke_subject_at(sub, self.clock.now()).await
    }

    /// [`revoke_subject`](SessionManager::revoke_subject) as of `now`.
    pub async fn revoke_subject_at(&self, sub: &str, now: SystemTime) -> Result<(), StoreError> {
        let until = self.subject_keep_until(now);
        crate::metrics::timed("revoke_subject", self.store.revoke_subject(sub, now, until))
            .await
            .map(drop)
    }

    /// Marks every session of `sub` that exists now stale: each loads with
    /// [`Session::is_stale`] set until its data is saved again, so the
    /// application reloads what it copied from its database (after a role
    /// or name change) without logging anyone out. Same reach as
    /// [`revoke_subject`](SessionManager::revoke_subject): every server
    /// sharing the store, whatever their clocks.
    pub async fn mark_stale(&self, sub: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        let until = self.subject_keep_until(now);
        crate::metrics::timed("mark_stale", self.store.mark_stale(sub, now, until))
            .await
            .map(drop)
    }

    /// Revokes one session of `sub` by id, for example from an
    /// administration page. `deadline` is the session's absolute deadline;
    /// the entry is kept as long as any token of the session can open.
    pub async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        deadline: SystemTime,
    ) -> Result<(), StoreError> {
        let until = self.keep_until(unix_seconds(deadline));
        crate::metrics::timed("revoke_session", self.store.revoke_session(sub, sid, until)).await
    }

    /// How long a revocation of a session whose deadline is `deadline`
    /// (Unix seconds) is kept: until no token of it opens on a server whose
    /// clock agrees ([`dies_at_ms`]), and one leeway more for a server whose
    /// clock runs behind.
    fn keep_until(&self, deadline: u64) -> SystemTime {
        let leeway = self.config.leeway().as_secs();
        let millis = dies_at_ms(deadline, leeway).saturating_add(leeway.saturating_mul(1000));
        from_unix_millis(millis)
    }

    /// How long a subject's revocation or stale mark made at `now` is
    /// kept: as long as a session sealed before it can open.
    fn subject_keep_until(&self, now: SystemTime) -> SystemTime {
        self.keep_until(unix_seconds(now).saturating_add(self.config.absolute_timeout().as_secs()))
    }
}

/// The first millisecond at which a token whose deadline is `deadline`
/// (Unix seconds) is refused, with `leeway` seconds: deadlines are whole
/// seconds, and a token is valid through the whole second of its deadline
/// plus the leeway. The time checks and the revocation stores' lifetimes
/// both come from here, so they agree to the millisecond.
fn dies_at_ms(deadline: u64, leeway: u64) -> u64 {
    deadline
        .saturating_add(leeway)
        .saturating_add(1)
        .saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::MemoryStore;
    use crate::session::{FlashLevel, SessionMap};
    use crate::ManualClock;
    use crate::{Key, KeyAlgorithm};
    use std::time::Duration;

    type Change = fn(&mut Session<SessionMap>);

    /// A login for alice, sealed (with a flash for the next request when
    /// `flash`): its token.
    async fn login(manager: &SessionManager, flash: bool) -> String {
        let mut login = manager.start(SessionMap::default());
        login.login("alice");
        if flash {
            login.flash(FlashLevel::Info, "welcome");
        }
        let SaveOutcome::Seal { token, .. } = manager.save(&mut login).await.unwrap() else {
            panic!("a login is sealed")
        };
        token
    }

    /// `change` applied to `session`; then `save_needed` and `save_at`'s
    /// answer, both as `needed` says.
    async fn check_agree(
        manager: &SessionManager,
        mut session: Session<SessionMap>,
        change: Change,
        now: SystemTime,
        what: &str,
        needed: bool,
    ) {
        change(&mut session);
        assert_eq!(manager.save_needed(&session, now), needed, "{what}");
        let saved = manager.save_at(&mut session, now).await.unwrap();
        assert_eq!(
            saved == SaveOutcome::Unchanged,
            !needed,
            "{what}: {saved:?}"
        );
    }

    /// The integrations skip `save_at` when `save_needed` says so (and
    /// `save_at` begins with it): it is false exactly when nothing is to be
    /// done, and then `save_at` answers `Unchanged`.
    #[tokio::test]
    async fn save_needed_is_false_exactly_when_save_at_changes_nothing() {
        let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
        let keyring = Arc::new(Keyring::with_clock(
            Key::generate(KeyAlgorithm::A256Kw).unwrap(),
            clock.clone(),
        ));
        let store = MemoryStore::new().with_clock(clock.clone());
        let manager = SessionManager::new(keyring.clone(), Arc::new(store), SessionConfig::new())
            .unwrap()
            .with_clock(clock.clone());
        let idle = manager.config().idle_timeout().as_secs();
        // (what, seconds later, change, whether anything is to be done)
        let cases: [(&str, u64, Change, bool); 9] = [
            ("untouched", 0, |_| {}, false),
            ("read only", 0, |s| drop(s.get::<u32>("n")), false),
            ("no flashes to take", 0, |s| drop(s.take_flashes()), false),
            ("refreshed, not stale", 0, |s| s.mark_refreshed(), false),
            (
                "a flash added",
                0,
                |s| s.flash(FlashLevel::Info, "saved"),
                true,
            ),
            ("changed", 0, |s| s.insert("n", 1).unwrap(), true),
            ("renewed", 0, |s| s.renew(), true),
            ("destroyed", 0, |s| s.destroy(), true),
            ("past the idle window's half", idle / 2 + 1, |_| {}, true),
        ];
        for (what, later, change, needed) in cases {
            // A login of its own each: a renewal or a logout revokes it.
            let token = login(&manager, false).await;
            clock.advance(Duration::from_secs(later));
            let now = manager.now();
            let session = manager.load::<SessionMap>(&token).await.unwrap();
            check_agree(&manager, session, change, now, what, needed).await;
        }
        // Flashes sealed by the previous request: taking them is a change.
        let token = login(&manager, true).await;
        let now = manager.now();
        for (what, change, needed) in [
            ("flashes left unread", (|_| {}) as Change, false),
            ("flashes taken", |s| drop(s.take_flashes()), true),
        ] {
            let session = manager.load::<SessionMap>(&token).await.unwrap();
            check_agree(&manager, session, change, now, what, needed).await;
        }
        // Opened under a key that is no longer the primary: sealed again.
        keyring.rotate().unwrap();
        let mut session = manager.load::<SessionMap>(&token).await.unwrap();
        assert!(manager.save_needed(&session, now), "a retired key");
        assert!(matches!(
            manager.save_at(&mut session, now).await.unwrap(),
            SaveOutcome::Seal { .. }
        ));
        // A new session: sealed once it holds something.
        let now = manager.now();
        for (what, change, needed) in [
            ("new and empty", (|_| {}) as Change, false),
            ("new with data", |s| s.insert("n", 1).unwrap(), true),
        ] {
            let session = manager.start(SessionMap::default());
            check_agree(&manager, session, change, now, what, needed).await;
        }
    }

    /// A cache hit stamps the key's last use by the keyring's clock: the
    /// manager lends its own reading only when both read the shared system
    /// clock, never a manual clock's time to a keyring on the system clock
    /// or the other way round.
    #[tokio::test]
    async fn a_cache_hit_stamps_the_key_by_the_keyring_clock() {
        let system_secs = || crate::clock::unix_seconds(SystemTime::now());
        // A keyring's clock behind the system's (a stamp lent by the
        // manager would be later), a manager's ahead (one it lent would be
        // later than the system's).
        let (behind, ahead) = (1_000_000_000, 2_000_000_000);
        let manual = |at| -> Arc<dyn Clock> { Arc::new(ManualClock::at_unix(at)) };
        // (what, the keyring's clock, the manager's clock)
        let cases = [
            ("both on the system clock", None, None),
            ("keyring on a manual clock", Some(manual(behind)), None),
            ("manager on a manual clock", None, Some(manual(ahead))),
        ];
        for (what, keyring_clock, manager_clock) in cases {
            let key = Key::generate(KeyAlgorithm::A256Kw).unwrap();
            let keyring = Arc::new(match &keyring_clock {
                Some(clock) => Keyring::with_clock(key, Arc::clone(clock)),
                None => Keyring::new(key),
            });
            let store = Arc::new(MemoryStore::new());
            let mut manager =
                SessionManager::new(keyring.clone(), store, SessionConfig::new()).unwrap();
            if let Some(clock) = &manager_clock {
                manager = manager.with_clock(Arc::clone(clock));
            }
            let token = login(&manager, false).await;
            let before = system_secs();
            for _ in 0..2 {
                manager.load::<SessionMap>(&token).await.unwrap();
            }
            let after = system_secs();
            assert!(manager.token_cache_stats().hits >= 1, "{what}: a cache hit");
            let stamped = crate::clock::unix_seconds(keyring.keys()[0].last_used().unwrap());
            if keyring_clock.is_some() {
                assert_eq!(stamped, behind, "{what}");
            } else {
                assert!((before..=after).contains(&stamped), "{what}: {stamped}");
            }
        }
    }
}

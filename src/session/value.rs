//! The [`Session<T>`] value: its claims and data, its lifecycle in a
//! request (login, renew, destroy), flash messages, and why it would be
//! sealed again ([`ResealReason`]). The manager opens and seals it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::binding::Binding;
use super::config::SessionConfig;
use super::flash::{Flash, FlashLevel};
use super::map::SessionMap;
use super::wire::FORMAT_VERSION;
use crate::clock::{from_unix_millis, from_unix_seconds, unix_seconds};
use crate::error::Error;
use crate::keyring::KeyState;
use crate::revocation::SubjectState;

/// Why a session is sealed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResealReason {
    /// A new session with data.
    New,
    /// The data or the subject changed.
    Changed,
    /// [`Session::renew`] was called.
    Renewed,
    /// The token was opened under a key that is not the primary.
    KeyNotPrimary,
    /// More than half of the idle window has passed.
    IdleHalfLife,
    /// The token was of an older payload format.
    FormatUpgrade,
    /// A flash message was added, or the ones the token carried were read.
    Flash,
}

impl ResealReason {
    /// The reason in a word or two, for logs and diagnostics pages.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResealReason::New => "new",
            ResealReason::Changed => "changed",
            ResealReason::Renewed => "renewed",
            ResealReason::KeyNotPrimary => "key_not_primary",
            ResealReason::IdleHalfLife => "idle_half_life",
            ResealReason::FormatUpgrade => "format_upgrade",
            ResealReason::Flash => "flash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lifecycle {
    Active,
    /// A new id; `old_sid` (the id the client holds) is revoked on save.
    /// With `restart`, the session also starts over: new creation time and
    /// absolute deadline (after a fresh login).
    Renewed {
        old_sid: Option<Arc<str>>,
        restart: bool,
    },
    /// Ended: the current id and, after a renew in the same request, the
    /// id the client holds are revoked on save.
    Destroyed {
        renewed_from: Option<Arc<str>>,
    },
}

/// A session with typed data `T`.
///
/// Read data with [`data`](Session::data); change it through
/// [`data_mut`](Session::data_mut) or [`set`](Session::set), which mark the
/// session changed so it is sealed again.
pub struct Session<T> {
    // Open to the session module: the manager builds a session from a
    // checked token and seals it back (manager.rs).
    // Shared with the token cache's entry: a cached load copies no text.
    pub(super) sid: Arc<str>,
    pub(super) sub: Option<Arc<str>>,
    pub(super) created_ms: u64,
    pub(super) iat: u64,
    pub(super) exp: u64,
    pub(super) abs_exp: u64,
    pub(super) data: T,
    pub(super) changed: bool,
    /// The data itself changed ([`data_mut`](Session::data_mut),
    /// [`set`](Session::set)), not only the subject or the id.
    pub(super) data_changed: bool,
    pub(super) lifecycle: Lifecycle,
    pub(super) opened: Option<(Arc<str>, KeyState)>,
    /// The subject of the token the client holds: its revocations are
    /// recorded under it.
    pub(super) opened_sub: Option<Arc<str>>,
    /// The token's generations (format 2, with a subject).
    pub(super) generations: Option<Generations>,
    /// The subject's state as the revocation check saw it.
    pub(super) observed: Option<SubjectState>,
    /// The payload format of the token the client holds.
    pub(super) format: u32,
    pub(super) stale: bool,
    /// Flash messages the client's token carries, not yet read.
    pub(super) flashes_in: Vec<Flash>,
    /// Flash messages added in this request, for the next one.
    pub(super) flashes_out: Vec<Flash>,
    /// The flash messages to send changed: added, or read.
    pub(super) flashes_changed: bool,
    /// The device binding (DBSC), once a browser registered one.
    pub(super) binding: Option<Arc<Binding>>,
}

/// What a token of a subject carries: the subject's generation when the
/// session was sealed at login, and its data generation when the data was
/// last saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Generations {
    pub(super) sgen: u64,
    pub(super) dgen: u64,
}

impl<T> fmt::Debug for Session<T> {
    /// Shows ids and times, never the data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("sub", &self.sub)
            .field("created_ms", &self.created_ms)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field("abs_exp", &self.abs_exp)
            .field("changed", &self.changed)
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

impl<T> Session<T> {
    /// The session id: 128 random bits, base64url. A new or renewed session
    /// has none (the empty string) until it is sealed.
    pub fn id(&self) -> &str {
        &self.sid
    }

    /// The subject (user), when signed in.
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// Sets the subject. Call [`renew`](Session::renew) too when this is a
    /// login or any change of privilege.
    pub fn set_subject(&mut self, sub: impl Into<String>) {
        self.sub = Some(Arc::from(sub.into()));
        self.changed = true;
    }

    /// Clears the subject.
    pub fn clear_subject(&mut self) {
        self.sub = None;
        self.changed = true;
    }

    /// When the session started (millisecond precision).
    pub fn created(&self) -> SystemTime {
        from_unix_millis(self.created_ms)
    }

    /// When the current token was sealed.
    pub fn issued_at(&self) -> SystemTime {
        from_unix_seconds(self.iat)
    }

    /// The idle deadline of the current token.
    pub fn expires(&self) -> SystemTime {
        from_unix_seconds(self.exp)
    }

    /// The absolute deadline: no token of this session lives past it.
    pub fn absolute_deadline(&self) -> SystemTime {
        from_unix_seconds(self.abs_exp)
    }

    /// The data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The data, for changing; marks the session changed.
    pub fn data_mut(&mut self) -> &mut T {
        self.changed = true;
        self.data_changed = true;
        &mut self.data
    }

    /// Replaces the data; marks the session changed.
    pub fn set(&mut self, data: T) {
        self.data = data;
        self.changed = true;
        self.data_changed = true;
    }

    /// The same session with its data passed through `f` (the integrations
    /// keep data untyped and show each handler the type it asks for).
    pub(crate) fn map_data<U>(self, f: impl FnOnce(T) -> U) -> Session<U> {
        Session {
            sid: self.sid,
            sub: self.sub,
            created_ms: self.created_ms,
            iat: self.iat,
            exp: self.exp,
            abs_exp: self.abs_exp,
            data: f(self.data),
            changed: self.changed,
            data_changed: self.data_changed,
            lifecycle: self.lifecycle,
            opened: self.opened,
            opened_sub: self.opened_sub,
            generations: self.generations,
            observed: self.observed,
            format: self.format,
            stale: self.stale,
            flashes_in: self.flashes_in,
            flashes_out: self.flashes_out,
            flashes_changed: self.flashes_changed,
            binding: self.binding,
        }
    }

    /// Whether the data changed since the flag was last taken; clears it.
    pub(crate) fn take_data_changed(&mut self) -> bool {
        std::mem::take(&mut self.data_changed)
    }

    /// Sets the flag back after [`take_data_changed`](Session::take_data_changed).
    pub(crate) fn restore_data_changed(&mut self, changed: bool) {
        self.data_changed |= changed;
    }

    /// Takes the data out.
    pub fn into_data(self) -> T {
        self.data
    }

    /// Whether the session came from no token (it is sealed only if it
    /// gets data or a subject).
    pub fn is_new(&self) -> bool {
        self.opened.is_none()
    }

    /// Whether the data or subject changed in this request.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// The `kid` of the key that sealed the token this session was opened
    /// from.
    pub fn kid(&self) -> Option<&str> {
        self.opened.as_ref().map(|(kid, _)| &**kid)
    }

    /// The state of that key when the token was opened.
    pub fn key_state(&self) -> Option<KeyState> {
        self.opened.as_ref().map(|(_, state)| *state)
    }

    /// Whether the subject's sessions were marked stale
    /// ([`SessionManager::mark_stale`](super::SessionManager::mark_stale)) since this session's data was last
    /// saved: the application should reload what it copied from its
    /// database (a name, a role) and save. Saving changed data, or
    /// [`mark_refreshed`](Session::mark_refreshed), clears the flag for this
    /// session.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionConfig, session::SessionManager, SessionMap};
    /// # use jwe_session::session::SaveOutcome;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwe_session::Error> {
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
    /// let mut session = manager.start(SessionMap::default());
    /// session.login("alice");
    /// session.insert("role", "editor")?;
    /// let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
    ///
    /// // An administrator changes alice's role.
    /// manager.mark_stale("alice").await?;
    ///
    /// let mut session = manager.load::<SessionMap>(&token).await?;
    /// assert!(session.is_stale());
    /// session.insert("role", "viewer")?; // reloaded from the database
    /// let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
    /// assert!(!manager.load::<SessionMap>(&token).await?.is_stale());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Adds a flash message for the next request that reads them (after a
    /// redirect, typically). It travels sealed in the token, like the data,
    /// so it needs no server-side storage; messages not yet read stay until
    /// they are, or until the session ends.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionConfig, session::SessionManager, SessionMap};
    /// # use jwe_session::session::{FlashLevel, SaveOutcome};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwe_session::Error> {
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new())?;
    /// // POST /profile: save, then redirect.
    /// let mut session = manager.start(SessionMap::default());
    /// session.flash(FlashLevel::Success, "Profile saved.");
    /// let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
    ///
    /// // GET /profile: shown once.
    /// let mut session = manager.load::<SessionMap>(&token).await?;
    /// let shown = session.take_flashes();
    /// assert_eq!(shown[0].text, "Profile saved.");
    /// let SaveOutcome::Seal { token, .. } = manager.save(&mut session).await? else { unreachable!() };
    ///
    /// // The next request: gone.
    /// assert!(manager.load::<SessionMap>(&token).await?.take_flashes().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn flash(&mut self, level: FlashLevel, text: impl Into<String>) {
        self.flashes_out.push(Flash {
            level,
            text: text.into(),
        });
        self.flashes_changed = true;
    }

    /// Takes the flash messages the request's token carried, oldest first;
    /// they are gone from the next token. Messages added in this request
    /// with [`flash`](Session::flash) are for the next request, not here.
    pub fn take_flashes(&mut self) -> Vec<Flash> {
        if self.flashes_in.is_empty() {
            return Vec::new();
        }
        self.flashes_changed = true;
        std::mem::take(&mut self.flashes_in)
    }

    /// The flash messages the request's token carried, without taking them.
    pub fn peek_flashes(&self) -> &[Flash] {
        &self.flashes_in
    }

    /// Says the data is current (after reloading it and finding nothing
    /// to change): the session is sealed again and is no longer stale. Does
    /// nothing when the session is not stale.
    pub fn mark_refreshed(&mut self) {
        if self.stale {
            self.changed = true;
        }
    }

    /// Gives the session a new id, keeping its data, creation time and
    /// absolute deadline, and revokes the old id when saved. Call it after
    /// any change of privilege, so that an id planted or seen before is
    /// worthless (session fixation). For a login use
    /// [`login`](Session::login), which also starts the lifetime over.
    ///
    /// It cannot fail: the new id is drawn when the session is sealed
    /// ([`id`](Session::id) is empty until then), as for a new session. On
    /// a session [destroyed](Session::destroy) in this request it does
    /// nothing: the session stays ended.
    pub fn renew(&mut self) {
        self.renew_inner(false);
    }

    /// A fresh authentication: a new id (the old one revoked when saved),
    /// the subject set, and a new creation time and absolute deadline.
    ///
    /// It cannot fail: the new id is drawn when the session is sealed. On a
    /// session [destroyed](Session::destroy) in this request it does
    /// nothing (logged at `warn`): the session stays ended, and the next
    /// request starts a new one.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionConfig, session::SessionManager, SessionMap};
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new()).unwrap();
    /// let mut session = manager.start(SessionMap::default());
    /// session.login("alice");
    /// assert_eq!(session.subject(), Some("alice"));
    /// assert!(session.is_renewed());
    /// ```
    pub fn login(&mut self, sub: impl Into<String>) {
        if self.renew_inner(true) {
            self.sub = Some(Arc::from(sub.into()));
        }
    }

    /// Marks the session renewed; `false` (and nothing done) when it was
    /// destroyed in this request.
    fn renew_inner(&mut self, restart: bool) -> bool {
        let client_sid = (!self.is_new()).then(|| self.sid.clone());
        match &mut self.lifecycle {
            Lifecycle::Destroyed { .. } => {
                tracing::warn!(
                    "login or renew on a session destroyed in the same request: ignored, the session stays ended"
                );
                return false;
            }
            // Renewed twice in one request: the first new id was never sent;
            // the id to revoke is still the client's.
            Lifecycle::Renewed { restart: again, .. } => *again |= restart,
            Lifecycle::Active => {
                self.lifecycle = Lifecycle::Renewed {
                    old_sid: client_sid,
                    restart,
                };
            }
        }
        // Drawn when sealed.
        self.sid = Arc::default();
        self.changed = true;
        true
    }

    /// Ends the session: its id is revoked when saved and the client's
    /// token removed (logout). Final for this request: a later
    /// [`renew`](Session::renew) or [`login`](Session::login) does nothing.
    pub fn destroy(&mut self) {
        let renewed_from = match &mut self.lifecycle {
            Lifecycle::Renewed { old_sid, .. } => old_sid.take(),
            Lifecycle::Destroyed { renewed_from } => renewed_from.take(),
            Lifecycle::Active => None,
        };
        self.lifecycle = Lifecycle::Destroyed { renewed_from };
    }

    /// The session's device binding, once a browser registered one
    /// (Device Bound Session Credentials).
    pub fn binding(&self) -> Option<&Binding> {
        self.binding.as_deref()
    }

    /// Binds the session to a device: it keeps `binding` from now on,
    /// across re-issue, renewal and login. The session id is renewed too
    /// (the old one revoked when saved), so that no token sealed before
    /// the binding, unbound, opens any more. Does nothing on a session
    /// destroyed in this request.
    #[cfg_attr(not(feature = "dbsc"), allow(dead_code))]
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn bind(&mut self, binding: Binding) {
        if self.renew_inner(false) {
            self.binding = Some(Arc::new(binding));
        }
    }

    /// Whether [`destroy`](Session::destroy) was called.
    pub fn is_destroyed(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Destroyed { .. })
    }

    /// Whether [`login`](Session::login) was called in this request.
    pub(crate) fn is_login(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Renewed { restart: true, .. })
    }

    /// Whether [`renew`](Session::renew) or [`login`](Session::login) was
    /// called.
    pub fn is_renewed(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Renewed { .. })
    }

    /// A session that belongs to no client, standing in for one taken out
    /// of a shared handle; never saved.
    pub(crate) fn detached(data: T) -> Session<T> {
        Session {
            lifecycle: Lifecycle::Destroyed { renewed_from: None },
            ..Session::unsealed(data, 0, (0, 0, 0))
        }
    }

    /// A session that came from no token: created at `created_ms`, with
    /// the deadlines `(iat, exp, abs_exp)`. Its id is drawn when it is
    /// first sealed: most requests without a session never get one, and
    /// need no randomness.
    pub(super) fn unsealed(
        data: T,
        created_ms: u64,
        (iat, exp, abs_exp): (u64, u64, u64),
    ) -> Session<T> {
        Session {
            sid: Arc::default(),
            sub: None,
            created_ms,
            iat,
            exp,
            abs_exp,
            data,
            changed: false,
            data_changed: false,
            lifecycle: Lifecycle::Active,
            opened: None,
            opened_sub: None,
            generations: None,
            observed: None,
            format: FORMAT_VERSION,
            stale: false,
            flashes_in: Vec::new(),
            flashes_out: Vec::new(),
            flashes_changed: false,
            binding: None,
        }
    }

    /// Why the session would be sealed again at `now`, if at all.
    pub fn reseal_reason_at(
        &self,
        now: SystemTime,
        config: &SessionConfig,
    ) -> Option<ResealReason> {
        if self.is_destroyed() {
            return None;
        }
        if self.is_renewed() {
            return Some(ResealReason::Renewed);
        }
        if self.is_new() {
            return (self.changed || self.flashes_changed).then_some(ResealReason::New);
        }
        if self.changed {
            return Some(ResealReason::Changed);
        }
        if self.flashes_changed {
            return Some(ResealReason::Flash);
        }
        if self.key_state() != Some(KeyState::Primary) {
            return Some(ResealReason::KeyNotPrimary);
        }
        if self.format != FORMAT_VERSION {
            return Some(ResealReason::FormatUpgrade);
        }
        let half_idle = config.idle_timeout().as_secs() / 2;
        if unix_seconds(now).saturating_sub(self.iat) > half_idle {
            return Some(ResealReason::IdleHalfLife);
        }
        None
    }
}

impl Session<SessionMap> {
    /// The value under `key`, decoded as `V`.
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>, Error> {
        self.data.get(key)
    }

    /// Stores `value` under `key`; marks the session changed.
    pub fn insert<V: Serialize>(&mut self, key: impl Into<String>, value: V) -> Result<(), Error> {
        self.data_mut().insert(key, value)
    }

    /// Removes the value under `key`; marks the session changed when there
    /// was one.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let removed = self.data.remove(key);
        if removed.is_some() {
            self.changed = true;
            self.data_changed = true;
        }
        removed
    }
}

//! Sessions: claims, idle and absolute lifetimes, sliding renewal,
//! re-issue under the current key, and revocation.
//!
//! A [`SessionManager`] turns tokens into [`Session`]s and back. It is
//! framework-agnostic: the axum and actix integrations only move its tokens
//! in and out of cookies.
//!
//! # What a token holds
//!
//! The payload is a JSON object:
//!
//! | member | meaning |
//! |---|---|
//! | `v` | format version (2; tokens of version 1 are still opened, and re-issued as 2) |
//! | `aud` | the purpose (by default `"session"`; integrations use the cookie name) |
//! | `sid` | the session id: 128 random bits, base64url |
//! | `sub` | the subject (the user), when signed in |
//! | `sgen` | with `sub`: the subject's generation when the session was sealed at login; a session of an older generation is revoked |
//! | `dgen` | with `sub`: the subject's data generation when the data was last saved; an older one makes the session [stale](Session::is_stale) |
//! | `created_ms` | when the session started, Unix milliseconds |
//! | `iat` | when this token was sealed, Unix seconds |
//! | `exp` | the idle deadline: never later than `abs_exp` |
//! | `abs_exp` | the absolute deadline: creation + absolute timeout |
//! | `data` | the application's data |
//! | `fl` | [flash messages](Session::flash) for the next request, when there are any |
//!
//! The protected header's `typ` is [`SESSION_TYP`]. Both `typ` and `aud` are
//! checked on open, so a token the same keyring sealed for another purpose is
//! refused.
//!
//! # Lifetimes
//!
//! Both deadlines are checked by the server on every open, with a leeway
//! (default 60 s) for clock skew across a fleet. A token is sealed again only
//! for a new session with data, when its data or subject changed, when it
//! was opened under a key that is not the primary, when more than half of
//! its idle window has passed, or after [`Session::renew`] (see
//! [`ResealReason`]). A re-sealed token keeps its `sid`, its creation time
//! and its absolute deadline: **re-issue never extends a session**.
//!
//! Time is compared to the millisecond, and one rule says when a token
//! dies: a token is refused from the first millisecond of the second after
//! its deadline plus the leeway. A revocation is kept until then, and one
//! more leeway for clocks that disagree across a fleet, so no revoked token
//! opens again in the last second of its life.
//!
//! # Revocation
//!
//! Only sessions with a subject are checked against the revocation store
//! (one round trip each); see [`revocation`](crate::revocation) for the
//! model. A logout revokes the session id; [`SessionManager::revoke_subject`]
//! ends every session of the subject that exists when it returns, on every
//! server sharing the store, whatever their clocks; a login after it is
//! accepted at once. [`SessionManager::mark_stale`] flags the subject's
//! sessions [stale](Session::is_stale) without logging anyone out.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::clock::{
    from_unix_millis, from_unix_seconds, unix_millis, unix_seconds, Clock, SystemClock,
};
use crate::error::{Error, Rejection, RejectionKind, SealError, StoreError};
use crate::jwe::{OpenOptions, SealOptions};
use crate::keyring::{KeyState, Keyring};
use crate::revocation::{IntoRevocationStore, RevocationStore, SubjectState};
use token_cache::TokenCache;
pub use token_cache::TokenCacheStats;
pub(crate) use token_cache::Verified;
use wire::{new_sid, WipingBuffer, WireIn, WireOut, FORMAT_V1};

mod config;
mod flash;
mod map;
mod token_cache;
mod wire;

pub use config::{
    SessionConfig, StoreFailurePolicy, DEFAULT_TOKEN_CACHE_BYTES, MAX_LEEWAY, MAX_TIMEOUT,
    MAX_TOKEN_CACHE_BYTES, MIN_TOKEN_CACHE_BYTES,
};
pub use flash::{Flash, FlashLevel};
pub use map::SessionMap;
pub use wire::{FORMAT_VERSION, SESSION_TYP};

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lifecycle {
    Active,
    /// A new id; `old_sid` (the id the client holds) is revoked on save.
    /// With `restart`, the session also starts over: new creation time and
    /// absolute deadline (after a fresh login).
    Renewed {
        old_sid: Option<String>,
        restart: bool,
    },
    /// Ended: the current id and, after a renew in the same request, the
    /// id the client holds are revoked on save.
    Destroyed {
        renewed_from: Option<String>,
    },
}

/// A session with typed data `T`.
///
/// Read data with [`data`](Session::data); change it through
/// [`data_mut`](Session::data_mut) or [`set`](Session::set), which mark the
/// session changed so it is sealed again.
pub struct Session<T> {
    sid: String,
    sub: Option<String>,
    created_ms: u64,
    iat: u64,
    exp: u64,
    abs_exp: u64,
    data: T,
    changed: bool,
    /// The data itself changed ([`data_mut`](Session::data_mut),
    /// [`set`](Session::set)), not only the subject or the id.
    data_changed: bool,
    lifecycle: Lifecycle,
    opened: Option<(String, KeyState)>,
    /// The subject of the token the client holds: its revocations are
    /// recorded under it.
    opened_sub: Option<String>,
    /// The token's generations (format 2, with a subject).
    generations: Option<Generations>,
    /// The subject's state as the revocation check saw it.
    observed: Option<SubjectState>,
    /// The payload format of the token the client holds.
    format: u32,
    stale: bool,
    /// Flash messages the client's token carries, not yet read.
    flashes_in: Vec<Flash>,
    /// Flash messages added in this request, for the next one.
    flashes_out: Vec<Flash>,
    /// The flash messages to send changed: added, or read.
    flashes_changed: bool,
}

/// What a token of a subject carries: the subject's generation when the
/// session was sealed at login, and its data generation when the data was
/// last saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generations {
    sgen: u64,
    dgen: u64,
}

/// What a session knows of its subject's generations, for the next seal.
struct GenerationsHeld {
    sub: Option<String>,
    /// The subject is the one of the token the client holds.
    same_subject: bool,
    generations: Option<Generations>,
    observed: Option<SubjectState>,
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
        self.sub = Some(sub.into());
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
        self.opened.as_ref().map(|(kid, _)| kid.as_str())
    }

    /// The state of that key when the token was opened.
    pub fn key_state(&self) -> Option<KeyState> {
        self.opened.as_ref().map(|(_, state)| *state)
    }

    /// Whether the subject's sessions were marked stale
    /// ([`SessionManager::mark_stale`]) since this session's data was last
    /// saved: the application should reload what it copied from its
    /// database (a name, a role) and save. Saving changed data, or
    /// [`mark_refreshed`](Session::mark_refreshed), clears the flag for this
    /// session.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionConfig, SessionManager, SessionMap};
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
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionConfig, SessionManager, SessionMap};
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
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionConfig, SessionManager, SessionMap};
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    /// # let manager = SessionManager::new(keyring, Arc::new(MemoryStore::new()), SessionConfig::new()).unwrap();
    /// let mut session = manager.start(SessionMap::default());
    /// session.login("alice");
    /// assert_eq!(session.subject(), Some("alice"));
    /// assert!(session.is_renewed());
    /// ```
    pub fn login(&mut self, sub: impl Into<String>) {
        if self.renew_inner(true) {
            self.sub = Some(sub.into());
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
        self.sid.clear();
        self.changed = true;
        true
    }

    /// Ends the session: its id is revoked when saved and the client's
    /// token removed (logout). Final for this request: a later
    /// [`renew`](Session::renew) or [`login`](Session::login) fails.
    pub fn destroy(&mut self) {
        let renewed_from = match &mut self.lifecycle {
            Lifecycle::Renewed { old_sid, .. } => old_sid.take(),
            Lifecycle::Destroyed { renewed_from } => renewed_from.take(),
            Lifecycle::Active => None,
        };
        self.lifecycle = Lifecycle::Destroyed { renewed_from };
    }

    /// Whether [`destroy`](Session::destroy) was called.
    pub fn is_destroyed(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Destroyed { .. })
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
    fn unsealed(data: T, created_ms: u64, (iat, exp, abs_exp): (u64, u64, u64)) -> Session<T> {
        Session {
            sid: String::new(),
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
        }
        removed
    }
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
        Ok(SessionManager {
            keyring: keyring.into(),
            store: store.into_revocation_store(),
            open_options: OpenOptions::new().with_max_len(config.max_token_len()),
            cache: TokenCache::new(config.token_cache_bytes()),
            config,
            clock: Arc::new(SystemClock),
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

    /// [`load`](SessionManager::load), and for a [`SessionMap`] also keeps
    /// the decoded map in the token cache: the next request with the same
    /// token shares it (copy on write) instead of decoding the JSON again.
    /// Other data types are decoded on every load, as with `load`. The
    /// integrations load this way.
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
        let result = self.load_inner(token, now, decode).await;
        if let Err(rejection) = &result {
            tracing::info!(
                kind = rejection.kind().as_str(),
                reason = rejection.reason(),
                kid = rejection.kid().unwrap_or("-"),
                "session rejected"
            );
        }
        result
    }

    /// Verifies the token (or finds it in the cache), then checks it. Only
    /// a token whose whole load succeeds is kept in the cache; a kept one
    /// that fails a check now is dropped from it.
    async fn load_inner<T>(
        &self,
        token: &str,
        now: SystemTime,
        decode: impl FnOnce(&Arc<Verified>) -> Option<T>,
    ) -> Result<Session<T>, Rejection> {
        let ticket = self.cache.ticket(token);
        let (wire, key_state, cached) = self.verify(token)?;
        let result = self.check(&wire, key_state, now, decode).await;
        match (&result, cached) {
            (Ok(_), false) => self.cache.insert_unless_forgotten(token, wire, ticket),
            (Err(_), true) => self.cache.remove(token),
            _ => {}
        }
        result
    }

    /// Everything that may change between two requests with the same
    /// token: the deadlines against `now`, the data type, revocation.
    async fn check<T>(
        &self,
        wire: &Arc<Verified>,
        key_state: KeyState,
        now: SystemTime,
        decode: impl FnOnce(&Arc<Verified>) -> Option<T>,
    ) -> Result<Session<T>, Rejection> {
        let reject = |kind, reason| Rejection::new(kind, reason).with_kid(&wire.kid);
        let now_s = unix_seconds(now);
        let now_ms = unix_millis(now);
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
        // Only a session with a subject can have been revoked: an anonymous
        // one costs no round trip.
        let mut observed = None;
        let mut stale = false;
        if let Some(sub) = wire.sub.as_deref() {
            match self.store.check(sub, &wire.sid).await {
                Ok(outcome) => {
                    if outcome.session_revoked {
                        return Err(reject(RejectionKind::Revoked, "session id revoked"));
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
                        return Err(reject(RejectionKind::Revoked, "subject's sessions revoked"));
                    }
                    stale = wire.dgen.unwrap_or(0) < state.data_generation;
                    observed = Some(state);
                }
                Err(error) => match self.config.store_failure() {
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
        }
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
            flashes_out: Vec::new(),
            flashes_changed: false,
        })
    }

    /// What does not change between two requests with the same token:
    /// decryption, purpose and format, from the token cache when it holds
    /// the token and the keyring still holds the key that opened it (the
    /// key's state is read from the keyring each time). Says whether it
    /// came from the cache.
    fn verify(&self, token: &str) -> Result<(Arc<Verified>, KeyState, bool), Rejection> {
        if let Some(verified) = self.cache.get(token) {
            if let Some(state) = self.keyring.state_of(&verified.kid, &verified.key) {
                return Ok((verified, state, true));
            }
            // The key that opened it left the keyring (or was replaced):
            // open it again, which says why it fails.
            self.cache.remove(token);
        }
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
            kid: opened.kid().to_owned(),
            key: opened.key().clone(),
            version: wire.v,
            sid: wire.sid,
            sub: wire.sub,
            sgen: wire.sgen,
            dgen: wire.dgen,
            flashes: wire.fl,
            created_ms: wire.created_ms,
            iat: wire.iat,
            exp: wire.exp,
            abs_exp: wire.abs_exp,
            data: zeroize::Zeroizing::new(wire.data.get().to_owned()),
            map: std::sync::OnceLock::new(),
        });
        Ok((verified, opened.key_state(), false))
    }

    /// Decides what the client needs after a request, seals when needed,
    /// and records revocations ([`Session::renew`], [`Session::destroy`]).
    pub async fn save<T: Serialize>(&self, session: &mut Session<T>) -> Result<SaveOutcome, Error> {
        self.save_at(session, self.clock.now()).await
    }

    /// [`save`](SessionManager::save) as of `now`.
    pub async fn save_at<T: Serialize>(
        &self,
        session: &mut Session<T>,
        now: SystemTime,
    ) -> Result<SaveOutcome, Error> {
        // The id the client holds, to revoke once the renewed session is
        // sealed, with the deadline it had. Only a session with a subject
        // is ever revoked: an anonymous one holds nothing a login inherits.
        let mut replaced = None;
        let opened_sub = session.opened_sub.clone();
        match &session.lifecycle {
            Lifecycle::Destroyed { renewed_from } => {
                if let Some(sub) = opened_sub.as_deref() {
                    let until = self.keep_until(session.abs_exp);
                    if let Some(old_sid) = renewed_from {
                        self.store.revoke_session(sub, old_sid, until).await?;
                    }
                    // Empty after a renew in this request: that id was
                    // never drawn, nor sent.
                    if !session.is_new() && !session.sid.is_empty() {
                        self.store.revoke_session(sub, &session.sid, until).await?;
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
            session.sid = new_sid()?;
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
            self.store.revoke_session(&sub, &old_sid, until).await?;
        }
        session.changed = false;
        session.flashes_changed = false;
        session.lifecycle = Lifecycle::Active;
        session.opened = Some((kid, KeyState::Primary));
        session.opened_sub = session.sub.clone();
        session.generations = generations;
        session.format = FORMAT_VERSION;
        if refreshed {
            session.stale = false;
        }
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
                let state = match self.store.subject(sub).await {
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
            .seal_reporting(&payload.0, &self.seal_options, str::to_owned)
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
    /// # use jwe_session::{Error, Key, KeyAlgorithm, Keyring, SealError, SessionConfig, SessionManager, SessionMap};
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
            session.sid.as_str()
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
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, RejectionKind, SessionConfig, SessionManager, SessionMap};
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
        self.store.revoke_subject(sub, now, until).await.map(drop)
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
        self.store.mark_stale(sub, now, until).await.map(drop)
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
        self.store.revoke_session(sub, sid, until).await
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

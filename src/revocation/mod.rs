//! Revocation: logging out one session, every session of a user, and
//! marking a user's sessions stale.
//!
//! # The model
//!
//! Everything a store keeps belongs to a *subject* (a signed-in user), under
//! one entry per subject:
//!
//! * a **generation**: "log out everywhere" ([`RevocationStore::revoke_subject`])
//!   moves it forward. A session sealed for the subject carries the
//!   generation it read when it was sealed at login; a session whose
//!   generation is older than the subject's is refused. No clock is
//!   compared: every session that exists when the revocation returns holds
//!   an older generation and is refused, on every server sharing the store,
//!   whatever their clocks; a login after it reads the new generation and is
//!   accepted at once.
//! * a **data generation**: [`RevocationStore::mark_stale`] moves it forward;
//!   a session whose data was saved under an older one loads flagged stale
//!   ([`SessionHandle::is_stale`](crate::SessionHandle::is_stale)), so the application
//!   reloads the data it copied from its database, without logging anyone
//!   out.
//! * the **revoked session ids** of the subject (logout), each with the
//!   time after which no token of that session can still open. At most
//!   [`MemoryStore::with_max_sessions_per_subject`] of them (100 by
//!   default) are kept per subject: one more revokes the subject instead
//!   (every session of that user ends), which is safe and bounded.
//!
//! A generation moves to `max(current + 1, now in Unix milliseconds)`, so it
//! never goes back even after an entry lapsed: the time is only a floor,
//! never compared with a token.
//!
//! Sessions without a subject cost no entry and no store round trip: an
//! anonymous session holds nothing a login could inherit (a login always
//! starts a new session id), so replacing or ending one need not revoke it,
//! and an anonymous client cannot grow the store.
//!
//! Every entry lapses when no token it could match is still alive, so the
//! stores never grow without bound. One check is one round trip: the
//! subject's entry, read whole.
//!
//! * [`MemoryStore`]: the embedded default, for one process.
//! * `RedisStore` (feature `redis`): shared by a fleet, on one Redis server
//!   or a Redis Cluster (one key per subject, so every operation is one slot).

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::StoreError;

mod memory;
pub use memory::MemoryStore;
#[cfg(feature = "internals")]
pub use memory::{DEFAULT_MAX_ENTRIES, DEFAULT_MAX_SESSIONS_PER_SUBJECT};

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};

/// What a store holds of one subject: its generations, and for tokens of
/// the first format the time of its latest revocation.
///
/// A subject that was never revoked nor marked stale has the default
/// (all zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubjectState {
    /// Sessions sealed under an older generation are revoked.
    pub generation: u64,
    /// Sessions whose data was saved under an older data generation are
    /// stale.
    pub data_generation: u64,
    /// When the subject was last revoked, in Unix milliseconds (0: never):
    /// tokens of format 1, which carry no generation, are revoked when
    /// created at or before it.
    pub revoked_at_ms: u64,
}

impl SubjectState {
    /// A subject's state, for stores written outside this crate.
    ///
    /// ```
    /// use jwe_session::revocation::SubjectState;
    /// let state = SubjectState::new(3, 1, 1_800_000_000_000);
    /// assert_eq!(state.generation, 3);
    /// assert_eq!(SubjectState::default().generation, 0);
    /// ```
    pub fn new(generation: u64, data_generation: u64, revoked_at_ms: u64) -> SubjectState {
        SubjectState {
            generation,
            data_generation,
            revoked_at_ms,
        }
    }

    /// The state after a revocation at `now_ms`: the generation moves
    /// forward (never back, even after the entry lapsed), and so does the
    /// time of the latest revocation.
    ///
    /// ```
    /// use jwe_session::revocation::SubjectState;
    /// let revoked = SubjectState::new(5, 0, 0).revoked(1_800_000_000_000);
    /// assert_eq!(revoked.generation, 1_800_000_000_000);
    /// assert_eq!(revoked.revoked(0).generation, 1_800_000_000_001);
    /// ```
    #[must_use]
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn revoked(self, now_ms: u64) -> SubjectState {
        SubjectState {
            generation: next_generation(self.generation, now_ms),
            revoked_at_ms: self.revoked_at_ms.max(now_ms),
            ..self
        }
    }

    /// The state after the subject's sessions were marked stale at
    /// `now_ms`.
    ///
    /// ```
    /// use jwe_session::revocation::SubjectState;
    /// let stale = SubjectState::default().marked_stale(1_800_000_000_000);
    /// assert_eq!(stale.data_generation, 1_800_000_000_000);
    /// assert_eq!(stale.generation, 0);
    /// ```
    #[must_use]
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn marked_stale(self, now_ms: u64) -> SubjectState {
        SubjectState {
            data_generation: next_generation(self.data_generation, now_ms),
            ..self
        }
    }
}

/// A generation after `current`: one more, and never less than the time.
/// The time only keeps generations moving forward after a store forgot a
/// lapsed entry; it is never compared with a token.
fn next_generation(current: u64, now_ms: u64) -> u64 {
    current.saturating_add(1).max(now_ms)
}

/// A store's answer for one session, in one round trip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The session id itself was revoked (logout, renewal).
    pub session_revoked: bool,
    /// The subject's state.
    pub subject: SubjectState,
}

impl CheckOutcome {
    /// An answer, for stores written outside this crate.
    ///
    /// ```
    /// use jwe_session::revocation::{CheckOutcome, SubjectState};
    /// let outcome = CheckOutcome::new(true, SubjectState::default());
    /// assert!(outcome.session_revoked);
    /// ```
    pub fn new(session_revoked: bool, subject: SubjectState) -> CheckOutcome {
        CheckOutcome {
            session_revoked,
            subject,
        }
    }
}

/// A revocation store passed by value or in an `Arc`: what
/// [`SessionLayer::builder`](crate::SessionLayer::builder) accepts, so that no
/// caller has to spell `Arc<dyn RevocationStore>`.
///
/// ```
/// use std::sync::Arc;
/// use jwe_session::revocation::{IntoRevocationStore, MemoryStore, RevocationStore};
///
/// let by_value = MemoryStore::new().into_revocation_store();
/// let shared = Arc::new(MemoryStore::new());
/// let by_arc = Arc::clone(&shared).into_revocation_store();
/// let erased: Arc<dyn RevocationStore> = shared;
/// let as_dyn = erased.into_revocation_store();
/// # let _ = (by_value, by_arc, as_dyn);
/// ```
pub trait IntoRevocationStore {
    /// The store, shared.
    fn into_revocation_store(self) -> Arc<dyn RevocationStore>;
}

/// Any store, and so an `Arc` of one (an `Arc` of a store is a store).
impl<S: RevocationStore> IntoRevocationStore for S {
    fn into_revocation_store(self) -> Arc<dyn RevocationStore> {
        Arc::new(self)
    }
}

/// Where revocations are kept.
///
/// Implementations must not block the async runtime, must answer
/// [`check`](RevocationStore::check) in one round trip to their backend,
/// and must make each call atomic: a check that starts after a revocation
/// returned sees it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use jwe_session::revocation::{MemoryStore, RevocationStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// let now = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
/// let until = now + Duration::from_secs(3600);
/// store.revoke_session("alice", "sid-1", until).await.unwrap();
/// assert!(store.check("alice", "sid-1").await.unwrap().session_revoked);
/// assert!(!store.check("alice", "sid-2").await.unwrap().session_revoked);
///
/// let before = store.subject("alice").await.unwrap();
/// let after = store.revoke_subject("alice", now, until).await.unwrap();
/// assert!(after.generation > before.generation);
/// # }
/// ```
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Revokes the session `sid` of subject `sub` until `until` (when no
    /// token of the session can open any more), after which the entry may
    /// be forgotten. A later call never shortens it. When the subject
    /// already holds its bound of revoked sessions, the store revokes the
    /// subject instead (see the module docs).
    async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        until: SystemTime,
    ) -> Result<(), StoreError>;

    /// Revokes every session of `sub` that exists now: moves its generation
    /// forward, and records `now` for tokens of format 1. The entry is kept
    /// at least until `until` (when every session sealed before now is past
    /// its deadlines). Returns the new state.
    async fn revoke_subject(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError>;

    /// Marks every session of `sub` that exists now stale: moves its data
    /// generation forward; the entry is kept at least until `until`.
    /// Returns the new state.
    async fn mark_stale(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError>;

    /// The subject's state, read when a session is sealed for it at login.
    async fn subject(&self, sub: &str) -> Result<SubjectState, StoreError>;

    /// Answers, in one round trip, whether the session `sid` of subject
    /// `sub` is revoked, with the subject's state.
    async fn check(&self, sub: &str, sid: &str) -> Result<CheckOutcome, StoreError>;

    /// Answers as [`check`](RevocationStore::check) would, at once, when
    /// the store can without waiting (it holds its state in this process);
    /// `None` otherwise, the default. The session manager asks this first
    /// on every request of a signed-in session, and awaits `check` only
    /// when it answers `None`: a store in memory answers with no future
    /// to box. An implementation that answers must answer exactly what
    /// `check` would.
    ///
    /// ```
    /// use jwe_session::revocation::{MemoryStore, RevocationStore};
    ///
    /// let store = MemoryStore::new();
    /// let outcome = store.check_now("alice", "sid-1").expect("in memory: answered at once");
    /// assert!(!outcome.unwrap().session_revoked);
    /// ```
    fn check_now(&self, sub: &str, sid: &str) -> Option<Result<CheckOutcome, StoreError>> {
        let _ = (sub, sid);
        None
    }

    /// Records that the one-time value `nonce` was used, until `until`:
    /// `true` the first time, `false` when it was recorded before (a
    /// replay). Device-bound sessions make their challenges single-use
    /// with it.
    ///
    /// The default records nothing and answers `true`: a store written
    /// outside this crate that does not implement it still works, with
    /// challenges that are short-lived but not single-use. [`MemoryStore`]
    /// and `RedisStore` (feature `redis`; one server or a cluster) record
    /// them.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use jwe_session::revocation::{MemoryStore, RevocationStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = MemoryStore::new();
    /// let until = SystemTime::now() + Duration::from_secs(60);
    /// assert!(store.use_nonce("n-1", until).await.unwrap());
    /// assert!(!store.use_nonce("n-1", until).await.unwrap());
    /// # }
    /// ```
    async fn use_nonce(&self, nonce: &str, until: SystemTime) -> Result<bool, StoreError> {
        let _ = (nonce, until);
        Ok(true)
    }
}

#[async_trait]
impl<S: RevocationStore + ?Sized> RevocationStore for std::sync::Arc<S> {
    async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).revoke_session(sub, sid, until).await
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        (**self).revoke_subject(sub, now, until).await
    }

    async fn mark_stale(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        (**self).mark_stale(sub, now, until).await
    }

    async fn subject(&self, sub: &str) -> Result<SubjectState, StoreError> {
        (**self).subject(sub).await
    }

    // Hands back the inner store's future as it is: an `Arc` of a store
    // (what `SessionLayer::builder(keyring, Arc::new(store))` holds) costs
    // no second boxed future on the check every request makes.
    fn check<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        sub: &'life1 str,
        sid: &'life2 str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<CheckOutcome, StoreError>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        (**self).check(sub, sid)
    }

    fn check_now(&self, sub: &str, sid: &str) -> Option<Result<CheckOutcome, StoreError>> {
        (**self).check_now(sub, sid)
    }

    async fn use_nonce(&self, nonce: &str, until: SystemTime) -> Result<bool, StoreError> {
        (**self).use_nonce(nonce, until).await
    }
}

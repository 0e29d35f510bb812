//! Revocation: logging out one session, and every session of a user.
//!
//! Revocation is by session id (`sid`), never by token: a session is sealed
//! many times over (sliding expiry, key rotation), and revoking one token
//! would leave its siblings valid. A subject's sessions are revoked together
//! by moving the subject's *epoch*: every session of that subject created
//! before the epoch fails.
//!
//! Every entry carries the time after which no token it could match is still
//! alive (the session's absolute deadline; for a subject, the epoch plus the
//! absolute lifetime), and the stores drop it then, so they never grow
//! without bound.
//!
//! * [`MemoryStore`]: the embedded default, for one process.
//! * [`RedisStore`] (feature `redis`): shared by a fleet.

use std::time::SystemTime;

use async_trait::async_trait;

use crate::clock::unix_millis;
use crate::error::StoreError;

mod memory;
pub use memory::MemoryStore;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};

/// What the store knows of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// Neither the session nor its subject was revoked.
    Valid,
    /// The session id was revoked (logout, `renew`).
    SessionRevoked,
    /// The subject's sessions created before some time were revoked, and
    /// this is one of them (log out everywhere, password change).
    SubjectRevoked,
}

impl RevocationStatus {
    /// Whether the session must be refused.
    pub fn is_revoked(self) -> bool {
        self != RevocationStatus::Valid
    }

    /// The answer of every store, from what it holds: whether the session
    /// id is revoked, and the subject's live epoch (Unix milliseconds;
    /// sessions created before it are revoked), if any.
    pub(crate) fn decide(
        session_revoked: bool,
        subject_epoch_ms: Option<u64>,
        created: SystemTime,
    ) -> RevocationStatus {
        if session_revoked {
            RevocationStatus::SessionRevoked
        } else if subject_epoch_ms.is_some_and(|epoch| unix_millis(created) < epoch) {
            RevocationStatus::SubjectRevoked
        } else {
            RevocationStatus::Valid
        }
    }
}

/// Where revocations are kept.
///
/// Implementations must not block the async runtime, and must answer
/// [`check`](RevocationStore::check) in one round trip to their backend.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use jwe_session::revocation::{MemoryStore, RevocationStatus, RevocationStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// let created = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
/// let until = created + Duration::from_secs(3600);
/// store.revoke_session("sid-1", until).await.unwrap();
/// assert_eq!(store.check("sid-1", None, created).await.unwrap(), RevocationStatus::SessionRevoked);
/// assert_eq!(store.check("sid-2", None, created).await.unwrap(), RevocationStatus::Valid);
/// # }
/// ```
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Revokes the session `sid` until `until` (its absolute deadline plus
    /// the leeway, when the session manager revokes),
    /// after which the entry may be forgotten.
    async fn revoke_session(&self, sid: &str, until: SystemTime) -> Result<(), StoreError>;

    /// Revokes every session of `sub` created before `before`, until
    /// `until` (when every such session is past its absolute deadline and
    /// the leeway).
    /// A later call never moves the epoch back.
    async fn revoke_subject(
        &self,
        sub: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), StoreError>;

    /// Answers, in one round trip, whether the session `sid` (of subject
    /// `sub`, created at `created`) is revoked.
    async fn check(
        &self,
        sid: &str,
        sub: Option<&str>,
        created: SystemTime,
    ) -> Result<RevocationStatus, StoreError>;
}

#[async_trait]
impl<S: RevocationStore + ?Sized> RevocationStore for std::sync::Arc<S> {
    async fn revoke_session(&self, sid: &str, until: SystemTime) -> Result<(), StoreError> {
        (**self).revoke_session(sid, until).await
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).revoke_subject(sub, before, until).await
    }

    async fn check(
        &self,
        sid: &str,
        sub: Option<&str>,
        created: SystemTime,
    ) -> Result<RevocationStatus, StoreError> {
        (**self).check(sid, sub, created).await
    }
}

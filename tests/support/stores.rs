//! A revocation store for tests: the memory store behind the trait's
//! defaults, so that it never answers a check at once (`check_now` is left
//! to its default) and every load of a session with a subject awaits it, as
//! with Redis; its session revocations can be made to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use jwe_session::revocation::{CheckOutcome, MemoryStore, RevocationStore, SubjectState};
use jwe_session::StoreError;

/// See the module.
#[derive(Debug, Default)]
pub struct AwaitedStore {
    inner: MemoryStore,
    revocations_down: AtomicBool,
}

impl AwaitedStore {
    /// `inner`, awaited.
    pub fn new(inner: MemoryStore) -> AwaitedStore {
        AwaitedStore {
            inner,
            revocations_down: AtomicBool::new(false),
        }
    }

    /// While `down`, `revoke_session` fails (a logout the store cannot
    /// record); everything else still works.
    pub fn set_revocations_down(&self, down: bool) {
        self.revocations_down.store(down, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl RevocationStore for AwaitedStore {
    async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        if self.revocations_down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("down for the test".into()));
        }
        self.inner.revoke_session(sub, sid, until).await
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        self.inner.revoke_subject(sub, now, until).await
    }

    async fn mark_stale(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        self.inner.mark_stale(sub, now, until).await
    }

    async fn subject(&self, sub: &str) -> Result<SubjectState, StoreError> {
        self.inner.subject(sub).await
    }

    async fn check(&self, sub: &str, sid: &str) -> Result<CheckOutcome, StoreError> {
        self.inner.check(sub, sid).await
    }
}

//! A request that read a session before a concurrent logout must not put
//! the token back into the cache after the logout forgot it (issue 10: a
//! logged-out session's contents leave memory at once, as SECURITY.md says).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use jwe_session::revocation::{CheckOutcome, MemoryStore, RevocationStore, SubjectState};
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
use jwe_session::{Key, KeyAlgorithm, Keyring, StoreError};
use support::manager::token_of;
use tokio::sync::Notify;

/// A memory store whose checks wait at a gate, after reading their answer,
/// while it is closed.
struct Gated {
    inner: MemoryStore,
    closed: AtomicBool,
    arrived: Notify,
    open: Notify,
}

#[async_trait::async_trait]
impl RevocationStore for Gated {
    async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
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
        // The answer is read before the gate: the request saw the session
        // valid, then took its time.
        let answer = self.inner.check(sub, sid).await;
        if self.closed.load(Ordering::SeqCst) {
            self.arrived.notify_one();
            self.open.notified().await;
        }
        answer
    }
}

#[tokio::test]
async fn a_load_that_overlaps_a_logout_does_not_cache_the_token_again() {
    let store = Arc::new(Gated {
        inner: MemoryStore::new(),
        closed: AtomicBool::new(false),
        arrived: Notify::new(),
        open: Notify::new(),
    });
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let manager =
        Arc::new(SessionManager::new(keyring, store.clone(), SessionConfig::new()).unwrap());
    let mut session = manager.start(SessionMap::default());
    session.login("alice");
    session.insert("secret", "hunter2").unwrap();
    let token = token_of(manager.save(&mut session).await.unwrap());
    assert_eq!(manager.token_cache_stats().entries, 0);

    // Request A opens the token (not cached yet) and waits on the store.
    store.closed.store(true, Ordering::SeqCst);
    let slow = {
        let manager = manager.clone();
        let token = token.clone();
        tokio::spawn(async move { manager.load_cached::<SessionMap>(&token).await.is_ok() })
    };
    store.arrived.notified().await;
    store.closed.store(false, Ordering::SeqCst);

    // Request B logs out meanwhile, and forgets the token, as the
    // integrations do.
    let mut session = manager.load_cached::<SessionMap>(&token).await.unwrap();
    session.destroy();
    assert_eq!(
        manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    manager.forget_token(&token);
    assert_eq!(manager.token_cache_stats().entries, 0);

    // A finishes: it began before the logout and succeeds, but the token
    // must not be back in the cache.
    store.open.notify_one();
    assert!(slow.await.unwrap());
    assert_eq!(
        manager.token_cache_stats().entries,
        0,
        "a logged-out token came back into the cache"
    );
    assert!(manager.load_cached::<SessionMap>(&token).await.is_err());
}

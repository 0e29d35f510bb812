//! What the benchmarks share: the typical session they all measure, and a
//! way to run a future that never waits without an executor.
#![allow(dead_code)] // each benchmark uses part of it

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use std::sync::Arc;

use jwe_session::revocation::MemoryStore;
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager};
use jwe_session::{Keyring, SessionMap};
use serde_json::json;

/// Application data for a typical session: with the claims, about 250
/// bytes of JSON.
pub fn typical_data() -> SessionMap {
    let mut map = SessionMap::default();
    map.insert("theme", "dark").unwrap();
    map.insert("locale", "en-GB").unwrap();
    map.insert("role", "editor").unwrap();
    map.insert("cart", json!([1042, 77, 3051])).unwrap();
    map.insert("flash", "Saved.").unwrap();
    map
}

/// Runs a future that never waits (the memory store never does) to
/// completion without an executor, so no runtime cost is measured.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the measured future waited"),
    }
}

/// A manager over `keyring` with its own memory store.
pub fn manager(keyring: &Arc<Keyring>, config: SessionConfig) -> SessionManager {
    SessionManager::new(Arc::clone(keyring), Arc::new(MemoryStore::new()), config).unwrap()
}

/// A fresh token of a typical session of `alice@example.com`, sealed by
/// `manager`.
pub fn typical_token(manager: &SessionManager) -> String {
    let mut session = manager.start(typical_data());
    session.set_subject("alice@example.com");
    match ready(manager.save(&mut session)).unwrap() {
        SaveOutcome::Seal { token, .. } => token,
        _ => unreachable!("a session with data is sealed"),
    }
}

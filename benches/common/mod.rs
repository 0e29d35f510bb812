//! What the benchmarks share: the typical and large sessions they measure
//! (also read by the josekit comparison in `compat/benches/josekit.rs`),
//! and a way to run a future that never waits without an executor.
#![allow(dead_code)] // each benchmark uses part of it

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::revocation::MemoryStore;
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager};
use jwe_session::{Keyring, SessionMap};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

/// Application data for a large session: with the claims, about 2 KiB.
pub fn large_data() -> SessionMap {
    let mut map = typical_data();
    let recent: Vec<Value> = (0..24)
        .map(|i| json!({"path": format!("/projects/{i}/settings"), "at": 1_767_225_600 + i}))
        .collect();
    map.insert("recent", recent).unwrap();
    map.insert("draft", "x".repeat(560)).unwrap();
    map
}

/// The claims as jwe-session writes them (same members, same order).
#[derive(Serialize, Deserialize)]
pub struct Claims<D> {
    pub v: u32,
    pub aud: String,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub created_ms: u64,
    pub iat: u64,
    pub exp: u64,
    pub abs_exp: u64,
    pub data: D,
}

pub fn claims(data: SessionMap) -> Claims<SessionMap> {
    let now = unix_seconds();
    Claims {
        v: 1,
        aud: "session".to_owned(),
        sid: URL_SAFE_NO_PAD.encode([7u8; 16]),
        sub: Some("alice@example.com".to_owned()),
        created_ms: now * 1000,
        iat: now,
        exp: now + 1800,
        abs_exp: now + 43_200,
        data,
    }
}

pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The payload sizes: name, data, plaintext bytes (claims included).
pub fn sizes() -> Vec<(&'static str, SessionMap, Vec<u8>)> {
    [("250B", typical_data()), ("2KiB", large_data())]
        .into_iter()
        .map(|(name, data)| {
            let payload = serde_json::to_vec(&claims(data.clone())).unwrap();
            eprintln!("payload {name}: {} bytes of JSON", payload.len());
            (name, data, payload)
        })
        .collect()
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

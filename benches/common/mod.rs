//! What the benchmarks share: the typical session they all measure, and a
//! way to run a future that never waits without an executor.
#![allow(dead_code)] // each benchmark uses part of it

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use jwe_session::SessionMap;
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

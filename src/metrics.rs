//! What the library counts, through the `metrics` crate's facade (feature
//! `metrics`); nothing at all without the feature. The application installs
//! the recorder (a Prometheus exporter, say); names and labels:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `jwe_session_loads_total` | counter | `outcome`: `ok`, or the rejection kind (`malformed`, `unknown_key`, `decrypt_failed`, `expired_idle`, `revoked`, `store_unavailable`, ...) |
//! | `jwe_session_reissues_total` | counter | `reason`: `new`, `changed`, `renewed`, `key_not_primary`, `idle_half_life`, `format_upgrade`, `flash` |
//! | `jwe_session_token_cache_total` | counter | `result`: `hit`, `miss` |
//! | `jwe_session_store_seconds` | histogram | `op`: `check`, `subject`, `revoke_session`, `revoke_subject`, `mark_stale` |
//! | `jwe_session_key_promotions_total` | counter | none: a new primary (rotation, promotion, a reload that changed it) |
//! | `jwe_session_key_reload_failures_total` | counter | none: a key file that could not be read or was refused |
//! | `jwe_session_dbsc_total` | counter | `event` (feature `dbsc`): `offered`, `registered`, `registration_refused`, `challenged`, `refreshed`, `refresh_refused`, `ended`, `unbound_request` |

#[cfg(feature = "metrics")]
mod on {
    use std::time::Duration;

    pub(crate) fn load(outcome: &'static str) {
        metrics::counter!("jwe_session_loads_total", "outcome" => outcome).increment(1);
    }

    pub(crate) fn reissue(reason: &'static str) {
        metrics::counter!("jwe_session_reissues_total", "reason" => reason).increment(1);
    }

    pub(crate) fn token_cache(hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        metrics::counter!("jwe_session_token_cache_total", "result" => result).increment(1);
    }

    pub(crate) fn store(op: &'static str, took: Duration) {
        metrics::histogram!("jwe_session_store_seconds", "op" => op).record(took.as_secs_f64());
    }

    pub(crate) fn key_promoted() {
        metrics::counter!("jwe_session_key_promotions_total").increment(1);
    }

    pub(crate) fn key_reload_failed() {
        metrics::counter!("jwe_session_key_reload_failures_total").increment(1);
    }

    #[cfg_attr(not(feature = "dbsc"), allow(dead_code))]
    pub(crate) fn dbsc(event: &'static str) {
        metrics::counter!("jwe_session_dbsc_total", "event" => event).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod on {
    pub(crate) fn load(_outcome: &'static str) {}
    pub(crate) fn reissue(_reason: &'static str) {}
    pub(crate) fn token_cache(_hit: bool) {}
    pub(crate) fn key_promoted() {}
    pub(crate) fn key_reload_failed() {}
    #[cfg_attr(not(feature = "dbsc"), allow(dead_code))]
    pub(crate) fn dbsc(_event: &'static str) {}
}

#[cfg_attr(not(feature = "dbsc"), allow(unused_imports))]
pub(crate) use on::dbsc;
#[cfg(feature = "metrics")]
use on::store;
pub(crate) use on::{key_promoted, key_reload_failed, load, reissue, token_cache};

/// Times a store call (`op`), recording how long it took.
#[cfg(feature = "metrics")]
pub(crate) async fn timed<T>(op: &'static str, call: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let result = call.await;
    store(op, started.elapsed());
    result
}

/// Without the feature, the store call alone: no clock read on the request
/// path for a figure nobody records.
#[cfg(not(feature = "metrics"))]
pub(crate) async fn timed<T>(_op: &'static str, call: impl std::future::Future<Output = T>) -> T {
    call.await
}

/// [`timed`] for a store call answered at once
/// ([`RevocationStore::check_now`](crate::revocation::RevocationStore::check_now)),
/// recorded only when it did answer (`Some`): otherwise the awaited call
/// that follows is the one timed.
#[cfg(feature = "metrics")]
pub(crate) fn timed_now<T>(op: &'static str, call: impl FnOnce() -> Option<T>) -> Option<T> {
    let started = std::time::Instant::now();
    let result = call();
    if result.is_some() {
        store(op, started.elapsed());
    }
    result
}

/// Without the feature, the call alone.
#[cfg(not(feature = "metrics"))]
pub(crate) fn timed_now<T>(_op: &'static str, call: impl FnOnce() -> Option<T>) -> Option<T> {
    call()
}

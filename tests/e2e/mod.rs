//! The end-to-end suite: one list of scenarios, run over a real TCP socket
//! with a real HTTP client against every demo server and revocation store.
//!
//! A test target plugs a framework in with one function and one macro call
//! (it must also declare `mod support;`, for the Redis harness):
//!
//! ```ignore
//! mod e2e;
//! mod support;
//!
//! fn launch_axum(config: e2e::LaunchConfig) -> e2e::BoxFuture<'static, e2e::Server> {
//!     Box::pin(async move {
//!         // build the app over config.keyring, config.store, config.dyn_clock(),
//!         // serve it on 127.0.0.1:0 in the background, then:
//!         config.serving(address, move || task.abort())
//!     })
//! }
//!
//! e2e::suite!("axum", launch_axum);
//! ```
//!
//! The macro defines `memory_<scenario>` and `redis_<scenario>` tests for
//! every scenario in [`scenarios`] (and `redis_store_down`).
#![allow(dead_code)] // each target uses what it needs

pub mod harness;
pub mod jar;
pub mod scenarios;

#[allow(unused_imports)] // for the launchers of every target
pub use harness::{BoxFuture, Launch, LaunchConfig, Launcher, Response, Server};
#[allow(unused_imports)]
pub use jar::{Jar, SetCookie, SESSION};

/// Whether `name` is the session cookie or one of its chunks.
pub fn is_session_cookie(name: &str) -> bool {
    name == SESSION
        || name
            .strip_prefix(SESSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// The protected header of a compact JWE, decoded without a key.
pub fn jwe_header(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let first = token.split('.').next().expect("a compact JWE");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .unwrap_or_else(|e| panic!("JWE header is not base64url ({e}): {first:?}"));
    serde_json::from_slice(&bytes).expect("JWE header is JSON")
}

/// The `kid` in a compact JWE's protected header.
pub fn jwe_kid(token: &str) -> String {
    jwe_header(token)["kid"]
        .as_str()
        .expect("JWE header has a kid")
        .to_owned()
}

/// Defines every end-to-end test for one framework:
/// `suite!("name", launch_fn);`.
macro_rules! suite {
    ($framework:expr, $launch:expr) => {
        $crate::e2e::suite!(@both $framework, $launch;
            login_and_me: memory_login_and_me, redis_login_and_me;
            cookie_attributes: memory_cookie_attributes, redis_cookie_attributes;
            counter_updates: memory_counter_updates, redis_counter_updates;
            rotation: memory_rotation, redis_rotation;
            logout: memory_logout, redis_logout;
            logout_everywhere: memory_logout_everywhere, redis_logout_everywhere;
            logout_everywhere_race: memory_logout_everywhere_race, redis_logout_everywhere_race;
            page_shows_the_session: memory_page_shows_the_session, redis_page_shows_the_session;
            expiry: memory_expiry, redis_expiry;
            tampered_cookie: memory_tampered_cookie, redis_tampered_cookie;
            cross_site_post_refused: memory_cross_site_post_refused, redis_cross_site_post_refused;
            chunking: memory_chunking, redis_chunking;
            concurrent_rotations: memory_concurrent_rotations, redis_concurrent_rotations;
            metrics: memory_metrics, redis_metrics;
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn redis_store_down() {
            if let Some(launcher) = $crate::e2e::Launcher::redis($framework, $launch) {
                $crate::e2e::scenarios::store_down(&launcher).await;
            }
        }
    };
    (@both $framework:expr, $launch:expr; $($scenario:ident: $memory:ident, $redis:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $memory() {
                let launcher = $crate::e2e::Launcher::memory($framework, $launch);
                $crate::e2e::scenarios::$scenario(&launcher).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $redis() {
                if let Some(launcher) = $crate::e2e::Launcher::redis($framework, $launch) {
                    $crate::e2e::scenarios::$scenario(&launcher).await;
                }
            }
        )*
    };
}
pub(crate) use suite;

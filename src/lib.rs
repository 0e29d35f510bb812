//! Web sessions kept in browser cookies, sealed as JWE (RFC 7516 compact
//! serialization) under a keyring that rotates at runtime, for axum and
//! actix-web.
//!
//! # Where to start
//!
//! * [`Keyring`]: the keys. One primary seals, staged and retired keys only
//!   open; [`Keyring::from_env`] or [`Keyring::from_file`] loads them,
//!   [`Keyring::watch_file`] keeps them in sync with a key file,
//!   [`Keyring::rotate`] rotates in one call, and clones share the keys.
//! * [`SessionLayer`]: the session middleware, the same value for both
//!   frameworks (axum: `.layer(layer)`; actix-web: `.wrap(layer)`), built
//!   with [`SessionLayer::new`] or [`SessionLayer::builder`] from a keyring
//!   and a revocation store ([`revocation::MemoryStore`], or
//!   `revocation::RedisStore` for a fleet).
//! * [`SessionHandle<T>`]: the extractor handlers take, with the session's
//!   data as the handler's own type `T` (a [`SessionMap`] by default), and
//!   login, logout, log out everywhere and flash messages.
//! * [`RequireSession<T>`]: the extractor for routes that need a signed-in
//!   user (401, or a redirect to the login path); `Option<RequireSession<T>>`
//!   for pages that work either way.
//! * [`SessionConfig`], [`CookieConfig`], [`CsrfConfig`]: lifetimes, cookie
//!   attributes and the CSRF defence, each with safe defaults and readable
//!   from configuration files (`serde`).
//! * [`Error`]: what can go wrong; `?` in handlers answers a fitting status
//!   with a body that says nothing of the application.
//!
//! [`adapter`] is for authors of integrations with other frameworks.
//!
//! ```
//! use axum::{routing::post, Router};
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{Error, Key, KeyAlgorithm, Keyring, SessionHandle, SessionLayer};
//!
//! async fn visit(session: SessionHandle) -> Result<String, Error> {
//!     let n: u64 = session.get("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # fn main() -> Result<(), Error> {
//! // In production: Keyring::from_env("SESSION_KEYS")?.
//! let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
//! let app: Router = Router::new()
//!     .route("/visit", post(visit))
//!     .layer(SessionLayer::new(keyring.clone(), MemoryStore::new())?);
//! // Later, from an admin route or a timer: sessions under the old key are
//! // re-issued under the new one on their next request.
//! keyring.rotate()?;
//! # Ok(())
//! # }
//! ```
//!
//! The keyring also seals and opens any payload:
//!
//! ```
//! use jwe_session::{Key, KeyAlgorithm, Keyring, KeyState};
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
//! let token = keyring.seal(br#"{"sub":"alice"}"#)?;
//! keyring.rotate()?;
//! let opened = keyring.open(&token)?;
//! assert_eq!(opened.plaintext(), br#"{"sub":"alice"}"#);
//! assert_eq!(opened.key_state(), KeyState::Retired);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! * `axum`, `actix`: the integrations.
//! * `redis`: `revocation::RedisStore`, revocations shared by a fleet
//!   (Redis or Redis Cluster).
//! * `metrics`: loads, re-issues, token cache hits, store round trips and key
//!   promotions counted through the `metrics` crate's facade.
//! * `rsa`: `RSA-OAEP` and `RSA-OAEP-256` keys, through OpenSSL. The pure-Rust
//!   `rsa` crate is deliberately not used for decryption (RUSTSEC-2023-0071).
//! * `internals`: not part of the API and under no semver promise; the
//!   crate's own tests, benchmarks, fuzz targets and command-line tool use it.
#![forbid(unsafe_code)]
// Without `internals`, what only the crate's own tests and tools use is
// unreachable by design.
#![cfg_attr(not(feature = "internals"), allow(dead_code))]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Modules whose items an application reaches through the crate root
// only; with the `internals` feature (the crate's own tests, benchmarks,
// fuzz targets and command-line tool) they are public, under no semver
// promise.
pub mod adapter;
mod alg;
mod b64;
#[cfg(feature = "internals")]
pub mod clock;
#[cfg(not(feature = "internals"))]
mod clock;
#[cfg(feature = "internals")]
pub mod cookie;
#[cfg(not(feature = "internals"))]
mod cookie;
#[cfg(feature = "internals")]
pub mod csrf;
#[cfg(not(feature = "internals"))]
mod csrf;
mod error;
mod hashing;
// Without a framework feature, the extractors' helpers have no caller.
#[cfg(feature = "dbsc")]
pub mod dbsc;
#[cfg_attr(not(any(feature = "axum", feature = "actix")), allow(dead_code))]
mod integration;
#[cfg(feature = "internals")]
pub mod jwe;
#[cfg(not(feature = "internals"))]
mod jwe;
#[cfg(feature = "internals")]
pub mod key;
#[cfg(not(feature = "internals"))]
mod key;
mod key_state;
#[cfg(feature = "internals")]
pub mod keyring;
#[cfg(not(feature = "internals"))]
mod keyring;
mod metrics;
pub mod revocation;
#[cfg(feature = "internals")]
pub mod session;
#[cfg(not(feature = "internals"))]
mod session;
mod wipe;

#[cfg(feature = "internals")]
pub use alg::UnsupportedAlgorithm;
pub use alg::{ContentEncryption, KeyAlgorithm};
#[cfg(feature = "internals")]
pub use clock::SystemClock;
pub use clock::{Clock, ManualClock};
pub use cookie::{CookieConfig, SameSite};
pub use csrf::{CsrfConfig, CsrfGuard, SiteScheme};
#[cfg(feature = "dbsc")]
pub use dbsc::{DbscConfig, DeviceAlgorithm};
#[cfg(feature = "internals")]
pub use error::{DataError, KeyError, KeyProblem, RejectionKind};
pub use error::{Error, KeyringError, Rejection, SealError, StoreError};
#[cfg(feature = "actix")]
pub use integration::actix;
#[cfg(feature = "axum")]
pub use integration::axum;
pub use integration::{
    MissingSessionLayer, RequireSession, SessionHandle, SessionLayer, SessionLayerBuilder,
    SignInRequired,
};
pub use jwe::Opened;
#[cfg(feature = "internals")]
pub use jwe::{OpenOptions, SealOptions};
pub use key::Key;
pub use keyring::RotationPolicy;
#[cfg(feature = "internals")]
pub use keyring::{KeyEntry, KeySet};
pub use keyring::{KeyFileWatch, KeyInfo, KeyState, Keyring};
pub use session::{Flash, FlashLevel, SessionConfig, SessionMap, StoreFailurePolicy};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The key guide's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/keys.md")]
pub struct KeysGuideDoctests;

/// The session guide's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/sessions.md")]
pub struct SessionsGuideDoctests;

/// The integrations guide's Rust examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "axum", feature = "actix"))]
#[doc = include_str!("../docs/integrations.md")]
pub struct IntegrationsGuideDoctests;

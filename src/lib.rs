//! Web sessions kept in browser cookies, sealed as JWE (RFC 7516 compact
//! serialization) under a keyring that rotates at runtime.
//!
//! The crate is built in layers, each its own module:
//!
//! * [`key`]: one key — its `kid`, the one algorithm it is bound to, and its
//!   secret material (zeroized on drop, redacted in `Debug`, compared in
//!   constant time), with JWK import and export.
//! * [`keyring`]: the set of keys — one primary that seals, staged and retired
//!   keys that only open — swapped atomically and lock-free, rotated in one
//!   call, loaded from environment variables, JWK Sets or files.
//! * [`jwe`]: strict compact JWE sealing and opening for a small allowlist of
//!   algorithms, with one opaque error for everything after the header parses.
//! * [`session`]: sessions on top — claims, idle and absolute lifetimes,
//!   sliding renewal, re-issue under the primary key without extending the
//!   session, typed data ([`Session<T>`]) or a map ([`SessionMap`]).
//! * [`revocation`]: logging out one session or all of a user's, in memory
//!   ([`revocation::MemoryStore`]) or in Redis (feature `redis`).
//!
//! # Quick start
//!
//! ```
//! use jwe_session::{Key, KeyAlgorithm, Keyring, KeyState};
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! // A keyring with one fresh A256KW key (the default algorithm).
//! let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
//!
//! let token = keyring.seal(br#"{"sub":"alice"}"#)?;
//! let opened = keyring.open(&token)?;
//! assert_eq!(opened.plaintext(), br#"{"sub":"alice"}"#);
//! assert_eq!(opened.key_state(), KeyState::Primary);
//!
//! // Rotate: a new primary seals, the old one still opens.
//! keyring.rotate()?;
//! let opened = keyring.open(&token)?;
//! assert_eq!(opened.key_state(), KeyState::Retired);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! * `rsa`: `RSA-OAEP` and `RSA-OAEP-256` keys, through OpenSSL. The pure-Rust
//!   `rsa` crate is deliberately not used for decryption (RUSTSEC-2023-0071).
//! * `redis`: [`revocation::RedisStore`], revocations shared by a fleet.
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
pub mod revocation;
#[cfg(feature = "internals")]
pub mod session;
#[cfg(not(feature = "internals"))]
mod session;
mod token_cache;

pub use alg::{ContentEncryption, KeyAlgorithm, UnsupportedAlgorithm};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cookie::{CookieConfig, SameSite};
pub use csrf::{CsrfConfig, CsrfGuard, SiteScheme};
#[cfg(feature = "internals")]
pub use error::KeyProblem;
pub use error::{
    DataError, Error, KeyError, KeyringError, Rejection, RejectionKind, SealError, StoreError,
};
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
#[cfg(feature = "internals")]
pub use keyring::{KeyEntry, KeySet};
pub use keyring::{KeyInfo, KeyState, Keyring};
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

//! Sessions: claims, idle and absolute lifetimes, sliding renewal,
//! re-issue under the current key, and revocation.
//!
//! A [`SessionManager`] turns tokens into [`Session`]s and back. It is
//! framework-agnostic: the axum and actix integrations only move its tokens
//! in and out of cookies.
//!
//! # What a token holds
//!
//! The payload is a JSON object:
//!
//! | member | meaning |
//! |---|---|
//! | `v` | format version (2; tokens of version 1 are still opened, and re-issued as 2) |
//! | `aud` | the purpose (by default `"session"`; integrations use the cookie name) |
//! | `sid` | the session id: 128 random bits, base64url |
//! | `sub` | the subject (the user), when signed in |
//! | `sgen` | with `sub`: the subject's generation when the session was sealed at login; a session of an older generation is revoked |
//! | `dgen` | with `sub`: the subject's data generation when the data was last saved; an older one makes the session [stale](Session::is_stale) |
//! | `created_ms` | when the session started, Unix milliseconds |
//! | `iat` | when this token was sealed, Unix seconds |
//! | `exp` | the idle deadline: never later than `abs_exp` |
//! | `abs_exp` | the absolute deadline: creation + absolute timeout |
//! | `data` | the application's data |
//! | `fl` | [flash messages](Session::flash) for the next request, when there are any |
//! | `dbsc` | the session's device binding (its id and the device's public key), once a browser registered one |
//!
//! The protected header's `typ` is [`SESSION_TYP`]. Both `typ` and `aud` are
//! checked on open, so a token the same keyring sealed for another purpose is
//! refused.
//!
//! # Lifetimes
//!
//! Both deadlines are checked by the server on every open, with a leeway
//! (default 60 s) for clock skew across a fleet. A token is sealed again only
//! for a new session with data, when its data or subject changed, when it
//! was opened under a key that is not the primary, when more than half of
//! its idle window has passed, or after [`Session::renew`] (see
//! [`ResealReason`]). A re-sealed token keeps its `sid`, its creation time
//! and its absolute deadline: **re-issue never extends a session**.
//!
//! Time is compared to the millisecond, and one rule says when a token
//! dies: a token is refused from the first millisecond of the second after
//! its deadline plus the leeway. A revocation is kept until then, and one
//! more leeway for clocks that disagree across a fleet, so no revoked token
//! opens again in the last second of its life.
//!
//! # Revocation
//!
//! Only sessions with a subject are checked against the revocation store
//! (one round trip each); see [`revocation`](crate::revocation) for the
//! model. A logout revokes the session id; [`SessionManager::revoke_subject`]
//! ends every session of the subject that exists when it returns, on every
//! server sharing the store, whatever their clocks; a login after it is
//! accepted at once. [`SessionManager::mark_stale`] flags the subject's
//! sessions [stale](Session::is_stale) without logging anyone out.

mod binding;
mod config;
mod flash;
mod manager;
mod map;
mod token_cache;
mod value;
mod wire;

pub use binding::Binding;
#[cfg_attr(
    not(any(feature = "dbsc", feature = "internals")),
    allow(unused_imports)
)]
pub use binding::DeviceKey;
pub use config::{SessionConfig, StoreFailurePolicy};
pub use flash::{Flash, FlashLevel};
pub(crate) use manager::{Known, LoadStep, PendingLoad};
pub use manager::{SaveOutcome, SessionManager};
pub use map::SessionMap;
pub(crate) use token_cache::{TokenText, Verified};
pub use value::Session;

// Named nowhere else in the crate: without `internals` this module is
// private, and these re-exports are only its public paths under it.
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use config::{
    DEFAULT_TOKEN_CACHE_BYTES, MAX_LEEWAY, MAX_TIMEOUT, MAX_TOKEN_CACHE_BYTES,
    MIN_TOKEN_CACHE_BYTES,
};
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use token_cache::TokenCacheStats;
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use value::ResealReason;
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use wire::{FORMAT_VERSION, SESSION_TYP};

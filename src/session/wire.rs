//! The token's payload as sealed and opened (its members are listed in
//! the [module documentation](super)), the header `typ`, session ids, and
//! the buffer a payload is written into.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::binding::Binding;
use super::flash::Flash;
use crate::b64;
use crate::error::{Error, SealError};

/// The payload format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 2;

/// The first payload format: no generations; still opened, and re-issued
/// in the current format.
pub(super) const FORMAT_V1: u32 = 1;

/// The protected header `typ` of session tokens.
pub const SESSION_TYP: &str = "jwe-session";

/// The payload as sealed.
#[derive(Serialize)]
pub(super) struct WireOut<'a, D> {
    pub(super) v: u32,
    pub(super) aud: &'a str,
    pub(super) sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sgen: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dgen: Option<u64>,
    #[serde(skip_serializing_if = "<[Flash]>::is_empty")]
    pub(super) fl: &'a [Flash],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dbsc: Option<&'a Binding>,
    pub(super) created_ms: u64,
    pub(super) iat: u64,
    pub(super) exp: u64,
    pub(super) abs_exp: u64,
    pub(super) data: &'a D,
}

/// The payload as opened: the claims, and the data left as JSON text so it
/// is decoded once, into the application's type, after the claims pass.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireIn<'a> {
    pub(super) v: u32,
    #[serde(borrow)]
    pub(super) aud: Cow<'a, str>,
    // Borrowed from the plaintext where they hold no escape: the cache
    // entry's shared copies are made from them directly.
    #[serde(borrow)]
    pub(super) sid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) sub: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) sgen: Option<u64>,
    #[serde(default)]
    pub(super) dgen: Option<u64>,
    #[serde(default)]
    pub(super) fl: Vec<Flash>,
    #[serde(default)]
    pub(super) dbsc: Option<Binding>,
    pub(super) created_ms: u64,
    pub(super) iat: u64,
    pub(super) exp: u64,
    pub(super) abs_exp: u64,
    #[serde(borrow)]
    pub(super) data: &'a RawValue,
}

/// A fresh session id: 128 random bits, base64url.
pub(super) fn new_sid() -> Result<String, Error> {
    b64::random::<16>().ok_or(Error::Seal(SealError::Random))
}

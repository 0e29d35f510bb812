//! A session's device binding (Device Bound Session Credentials): the
//! binding's id, which the browser knows as its DBSC session identifier,
//! and the device's public key, as the browser sent it at registration.
//!
//! The binding travels sealed in the session token like the data, so it
//! needs no server-side storage and survives re-issue, key rotation,
//! [`renew`](super::Session::renew) and [`login`](super::Session::login).
//! Only the `dbsc` feature verifies with it; without that feature it is
//! kept as it is.

use serde::{Deserialize, Serialize};

/// A session's device binding.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The binding's id: 128 random bits, base64url; the DBSC session
    /// identifier. It stays the same across re-issue and renewal, while
    /// the session id changes.
    pub id: String,
    /// The device's public key.
    pub key: DeviceKey,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("id", &self.id)
            .field("key", &self.key.kty())
            .finish()
    }
}

/// A device's public key as a JWK's members (base64url, as the browser
/// sent them; checked again when used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty", deny_unknown_fields)]
pub enum DeviceKey {
    /// An elliptic-curve key (P-256, for ES256).
    #[serde(rename = "EC")]
    Ec {
        /// The curve: `P-256`.
        crv: String,
        /// The point's x coordinate.
        x: String,
        /// The point's y coordinate.
        y: String,
    },
    /// An RSA key (for RS256).
    #[serde(rename = "RSA")]
    Rsa {
        /// The modulus.
        n: String,
        /// The public exponent.
        e: String,
    },
}

impl DeviceKey {
    /// The key type: `"EC"` or `"RSA"`.
    pub fn kty(&self) -> &'static str {
        match self {
            DeviceKey::Ec { .. } => "EC",
            DeviceKey::Rsa { .. } => "RSA",
        }
    }

    /// The bytes the key adds to a token, roughly: for the cache's weight.
    pub(crate) fn text_len(&self) -> usize {
        match self {
            DeviceKey::Ec { crv, x, y } => crv.len() + x.len() + y.len(),
            DeviceKey::Rsa { n, e } => n.len() + e.len(),
        }
    }
}

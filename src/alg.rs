//! The algorithm allowlist.

use std::fmt;

/// A key management algorithm (the JWE header's `alg`).
///
/// Only this allowlist is supported. `none`, `RSA1_5`, the PBES2 family,
/// the ECDH-ES family and anything else are refused wherever they appear.
///
/// ```
/// use jwe_session::KeyAlgorithm;
/// assert_eq!("A256KW".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::A256Kw);
/// assert_eq!(KeyAlgorithm::A128GcmKw.name(), "A128GCMKW");
/// assert!("RSA1_5".parse::<KeyAlgorithm>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// Direct use of a shared key as the content encryption key.
    Dir,
    /// AES Key Wrap (RFC 3394) with a 128-bit key.
    A128Kw,
    /// AES Key Wrap with a 192-bit key.
    A192Kw,
    /// AES Key Wrap with a 256-bit key: the default.
    A256Kw,
    /// AES-GCM key wrapping with a 128-bit key.
    A128GcmKw,
    /// AES-GCM key wrapping with a 192-bit key.
    A192GcmKw,
    /// AES-GCM key wrapping with a 256-bit key.
    A256GcmKw,
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (feature `rsa`).
    RsaOaep,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (feature `rsa`).
    RsaOaep256,
}

impl KeyAlgorithm {
    /// Every supported key management algorithm.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) const ALL: [KeyAlgorithm; 9] = [
        KeyAlgorithm::Dir,
        KeyAlgorithm::A128Kw,
        KeyAlgorithm::A192Kw,
        KeyAlgorithm::A256Kw,
        KeyAlgorithm::A128GcmKw,
        KeyAlgorithm::A192GcmKw,
        KeyAlgorithm::A256GcmKw,
        KeyAlgorithm::RsaOaep,
        KeyAlgorithm::RsaOaep256,
    ];

    /// The registered JOSE name, as it appears in headers and JWKs.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Dir => "dir",
            KeyAlgorithm::A128Kw => "A128KW",
            KeyAlgorithm::A192Kw => "A192KW",
            KeyAlgorithm::A256Kw => "A256KW",
            KeyAlgorithm::A128GcmKw => "A128GCMKW",
            KeyAlgorithm::A192GcmKw => "A192GCMKW",
            KeyAlgorithm::A256GcmKw => "A256GCMKW",
            KeyAlgorithm::RsaOaep => "RSA-OAEP",
            KeyAlgorithm::RsaOaep256 => "RSA-OAEP-256",
        }
    }

    /// Looks an algorithm up by its registered name (case-sensitive).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        KeyAlgorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The length in bytes of a symmetric key for this algorithm, `None` for
    /// `dir` (which depends on the content encryption) and RSA.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn symmetric_key_len(self) -> Option<usize> {
        match self {
            KeyAlgorithm::A128Kw | KeyAlgorithm::A128GcmKw => Some(16),
            KeyAlgorithm::A192Kw | KeyAlgorithm::A192GcmKw => Some(24),
            KeyAlgorithm::A256Kw | KeyAlgorithm::A256GcmKw => Some(32),
            KeyAlgorithm::Dir | KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256 => None,
        }
    }

    /// Whether this algorithm uses an RSA key (and so needs the `rsa` feature).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256)
    }

    /// Whether this is an AES-GCM key wrap (its header carries `iv` and
    /// `tag`).
    pub(crate) fn is_gcm_kw(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::A128GcmKw | KeyAlgorithm::A192GcmKw | KeyAlgorithm::A256GcmKw
        )
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::from_name(name)
            .ok_or_else(|| UnsupportedAlgorithm(name.chars().take(32).collect()))
    }
}

/// A content encryption algorithm (the JWE header's `enc`): AES-GCM only.
///
/// ```
/// use jwe_session::ContentEncryption;
/// assert_eq!(ContentEncryption::A192Gcm.key_len(), 24);
/// assert_eq!(ContentEncryption::from_name("A128GCM"), Some(ContentEncryption::A128Gcm));
/// assert_eq!(ContentEncryption::from_name("A128CBC-HS256"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentEncryption {
    /// AES-GCM with a 128-bit key.
    A128Gcm,
    /// AES-GCM with a 192-bit key.
    A192Gcm,
    /// AES-GCM with a 256-bit key: the default.
    A256Gcm,
}

impl ContentEncryption {
    /// Every supported content encryption.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) const ALL: [ContentEncryption; 3] = [
        ContentEncryption::A128Gcm,
        ContentEncryption::A192Gcm,
        ContentEncryption::A256Gcm,
    ];

    /// The registered JOSE name.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            ContentEncryption::A128Gcm => "A128GCM",
            ContentEncryption::A192Gcm => "A192GCM",
            ContentEncryption::A256Gcm => "A256GCM",
        }
    }

    /// Looks a content encryption up by its registered name (case-sensitive).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        ContentEncryption::ALL
            .into_iter()
            .find(|enc| enc.name() == name)
    }

    /// The content encryption key length in bytes.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn key_len(self) -> usize {
        match self {
            ContentEncryption::A128Gcm => 16,
            ContentEncryption::A192Gcm => 24,
            ContentEncryption::A256Gcm => 32,
        }
    }

    /// The content encryption whose key is `len` bytes long.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn for_key_len(len: usize) -> Option<Self> {
        match len {
            16 => Some(ContentEncryption::A128Gcm),
            24 => Some(ContentEncryption::A192Gcm),
            32 => Some(ContentEncryption::A256Gcm),
            _ => None,
        }
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ContentEncryption {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ContentEncryption::from_name(name)
            .ok_or_else(|| UnsupportedAlgorithm(name.chars().take(32).collect()))
    }
}

/// An algorithm name outside the allowlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm {0:?}")]
pub struct UnsupportedAlgorithm(pub(crate) String);

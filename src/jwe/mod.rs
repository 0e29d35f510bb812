//! Compact JWE (RFC 7516) sealing and opening, strictly.
//!
//! Parsing refuses anything this crate would not have produced itself:
//!
//! * a token longer than [`OpenOptions::max_len`] (default 8 KiB), before
//!   anything is decoded;
//! * anything but exactly five `.`-separated parts;
//! * base64url that is not canonical and unpadded (`=`, `+`, `/`,
//!   whitespace, non-zero trailing bits);
//! * a protected header that is not one JSON object, repeats a member, lacks
//!   `alg` or `enc` as strings, or carries anything beyond `alg`, `enc`,
//!   `kid`, `typ`, `cty` (and `iv`, `tag` for AES-GCM key wrapping) — in
//!   particular `zip`, `crit`, and the key-carrying `jwk`, `jku`, `x5u`,
//!   `x5c`, `x5t`, `x5t#S256`;
//! * an `alg` or `enc` outside the allowlist.
//!
//! Past the header, every failure — the key's bound algorithm differs, an IV
//! that is not 12 bytes or a tag that is not 16, a `dir` token with an
//! encrypted key, a wrapped key of the wrong length, a failed unwrap or
//! authentication — is the one [`RejectionKind::DecryptFailed`], with the
//! precise reason kept for logs (RFC 7516 §11.5).
//!
//! [`RejectionKind::DecryptFailed`]: crate::RejectionKind::DecryptFailed

// header: the protected header and its parsers; prepared: headers written
// once per key; open and seal: the two directions; cipher: AES-GCM and
// RSA-OAEP underneath.
mod cipher;
mod header;
mod open;
mod prepared;
mod seal;

pub use open::{OpenOptions, Opened};
pub use seal::SealOptions;
#[cfg(feature = "internals")]
pub use {
    header::Header,
    open::{open_with_key, parse, Parsed, DEFAULT_MAX_TOKEN_LEN},
    seal::seal,
};

pub(crate) use open::{decrypt, parse_known};
pub(crate) use prepared::HeaderCache;
pub(crate) use seal::seal_cached;

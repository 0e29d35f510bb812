//! Canonical unpadded base64url, the only encoding JWE compact serialization uses.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random bytes from the operating system, base64url; `None` when it
/// has no randomness to give.
pub(crate) fn random<const N: usize>() -> Option<String> {
    use rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; N];
    OsRng.try_fill_bytes(&mut bytes).ok()?;
    Some(encode(&bytes))
}

/// Decodes canonical unpadded base64url: no `=`, no `+` or `/`, no
/// whitespace, and no non-zero trailing bits.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_canonical_forms() {
        assert_eq!(decode("AQ").unwrap(), vec![1]);
        assert!(decode("AQ==").is_err(), "padding");
        assert!(decode("AR").is_err(), "non-zero trailing bits");
        assert!(decode("A Q").is_err(), "whitespace");
        assert!(decode("+/8").is_err(), "standard alphabet");
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
    }
}

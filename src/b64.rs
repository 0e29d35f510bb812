//! Canonical unpadded base64url, the only encoding JWE compact serialization uses.
//!
//! Every encoding and decoding in the crate goes through here, on
//! `base64-simd` (SSSE3, AVX2 or NEON, picked at run time, with a portable
//! fallback): base64 of the ciphertext costs as much as AES-GCM on a 2 KiB
//! session. Its strict mode is as strict as the `base64` crate's
//! `URL_SAFE_NO_PAD`: no `=`, no `+` or `/`, no whitespace, no length of 1
//! modulo 4, and no non-zero trailing bits. The tests below compare the two
//! on every short string of a small alphabet and on long ones spoiled at
//! each position, and the fuzz target `header_parse` checks the token parser
//! (every part decoded here) against its own independent decoder.

use base64_simd::{Out, URL_SAFE_NO_PAD};

use crate::wipe::Wipe;

/// Text that is not canonical unpadded base64url, or a buffer too short for
/// what it decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// Appends the unpadded base64url of `bytes` to `out`.
pub(crate) fn encode_append(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_append(bytes, out);
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
/// whitespace, and no non-zero trailing bits. On failure the bytes decoded
/// so far are wiped before the buffer is freed, so a secret that fails
/// halfway leaves nothing behind.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let mut bytes = Vec::new();
    match URL_SAFE_NO_PAD.decode_append(text, &mut bytes) {
        Ok(()) => Ok(bytes),
        Err(_) => {
            // What was decoded sits in the spare capacity: wiped with it.
            bytes.wipe();
            Err(DecodeError)
        }
    }
}

/// Decodes canonical unpadded base64url into the front of `buf`, returning
/// how many bytes it wrote; an error when the text is not canonical or
/// `buf` is too short (never a panic).
pub(crate) fn decode_slice(text: &str, buf: &mut [u8]) -> Result<usize, DecodeError> {
    let len = URL_SAFE_NO_PAD
        .decoded_length(text.as_bytes())
        .map_err(|_| DecodeError)?;
    let buf = buf.get_mut(..len).ok_or(DecodeError)?;
    URL_SAFE_NO_PAD
        .decode(text.as_bytes(), Out::from_slice(buf))
        .map(|decoded| decoded.len())
        .map_err(|_| DecodeError)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as REFERENCE;
    use base64::Engine as _;
    use rand_core::{OsRng, RngCore};

    use super::*;

    #[test]
    fn refuses_non_canonical_forms() {
        assert_eq!(decode("AQ").unwrap(), vec![1]);
        assert!(decode("AQ==").is_err(), "padding");
        assert!(decode("AR").is_err(), "non-zero trailing bits");
        assert!(decode("A Q").is_err(), "whitespace");
        assert!(decode("+/8").is_err(), "standard alphabet");
        assert!(decode("AAAAA").is_err(), "a length of 1 modulo 4");
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    /// The same verdict and the same bytes as the `base64` crate's strict
    /// decoder, for one text; the bytes again through `decode_slice`.
    fn agrees(text: &str) {
        let ours = decode(text);
        let reference = REFERENCE.decode(text.as_bytes());
        assert_eq!(ours.as_deref().ok(), reference.as_deref().ok(), "{text:?}");
        let mut buf = [0u8; 64];
        if text.len() <= 80 {
            let sliced = decode_slice(text, &mut buf).map(|n| buf[..n].to_vec());
            assert_eq!(
                sliced.ok().as_deref(),
                reference.as_deref().ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn agrees_with_the_base64_crate_on_every_short_text() {
        // Every text of up to 5 characters over an alphabet that has the
        // canonical and non-canonical last characters, padding, the
        // standard alphabet's two, whitespace and a non-ASCII byte.
        let alphabet = [
            "A", "B", "Q", "g", "w", "_", "-", "8", "9", "=", "+", "/", " ", "é",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for text in &texts {
                for c in alphabet {
                    next.push(format!("{text}{c}"));
                }
            }
            for text in &next {
                agrees(text);
            }
            texts = next;
        }
    }

    #[test]
    fn agrees_with_the_base64_crate_on_long_texts_and_single_flaws() {
        // Long enough for every SIMD path (32- and 64-byte blocks) and the
        // scalar tail, then each position spoiled in turn.
        let mut bytes = [0u8; 300];
        for len in [
            1, 2, 3, 31, 32, 33, 47, 48, 64, 95, 96, 97, 191, 192, 250, 300,
        ] {
            OsRng.fill_bytes(&mut bytes[..len]);
            let text = REFERENCE.encode(&bytes[..len]);
            assert_eq!(decode(&text).unwrap(), &bytes[..len]);
            assert_eq!(encode(&bytes[..len]), text);
            let mut appended = String::from("x.");
            encode_append(&bytes[..len], &mut appended);
            assert_eq!(appended, format!("x.{text}"));
            for at in 0..text.len() {
                for bad in [b'=', b'+', b'/', b' ', b'.', 0x80, b'A'] {
                    let mut spoiled = text.as_bytes().to_vec();
                    spoiled[at] = bad;
                    if let Ok(spoiled) = String::from_utf8(spoiled) {
                        agrees(&spoiled);
                    }
                }
            }
            agrees(&format!("{text}A"));
            agrees(&format!("{text}="));
        }
    }

    #[test]
    fn decode_slice_refuses_a_short_buffer_without_panicking() {
        let mut buf = [0u8; 2];
        assert_eq!(decode_slice("AQID", &mut buf), Err(DecodeError));
        let mut buf = [0u8; 3];
        assert_eq!(decode_slice("AQID", &mut buf), Ok(3));
        assert_eq!(buf, [1, 2, 3]);
    }
}

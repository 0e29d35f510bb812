//! The token's payload as sealed and opened (its members are listed in
//! the [module documentation](super)), the header `typ`, session ids, and
//! the buffer a payload is written into.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::Zeroize;

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

/// A write buffer that wipes what was written to it: when it grows (a
/// plain `Vec` would free its old allocation, session data and all,
/// unwiped) and when it is dropped. Only the bytes written are wiped, not
/// the whole capacity: the rest never held anything, and wiping is done a
/// byte at a time (volatile writes), so a 1 KiB buffer holding a 250-byte
/// payload costs a quarter of the time.
pub(super) struct WipingBuffer(pub(super) Vec<u8>);

impl WipingBuffer {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        WipingBuffer(Vec::with_capacity(capacity))
    }
}

impl Drop for WipingBuffer {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl WipingBuffer {
    /// Appends `bytes`; growth wipes the buffer it leaves.
    #[inline]
    fn append(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            self.grow(needed);
        }
        self.0.extend_from_slice(bytes);
    }

    #[cold]
    fn grow(&mut self, needed: usize) {
        let mut grown = Vec::with_capacity(needed.max(self.0.capacity() * 2));
        grown.extend_from_slice(&self.0);
        let mut old = std::mem::replace(&mut self.0, grown);
        old.as_mut_slice().zeroize();
    }
}

// serde_json writes a value in many small pieces (each quote, key and
// punctuation): `write_all` is overridden so that each is one inlined
// append, not the default loop around `write`.
impl std::io::Write for WipingBuffer {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.append(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.append(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fresh session id: 128 random bits, base64url.
pub(super) fn new_sid() -> Result<String, Error> {
    b64::random::<16>().ok_or(Error::Seal(SealError::Random))
}

#[cfg(test)]
mod tests {
    use super::WipingBuffer;
    use std::io::Write as _;

    #[test]
    fn wiping_buffer_grows_without_losing_bytes() {
        let mut buffer = WipingBuffer::with_capacity(4);
        let mut expected = Vec::new();
        for i in 0..200u8 {
            let chunk = vec![i; usize::from(i % 7) + 1];
            buffer.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        assert_eq!(&buffer.0[..], &expected[..]);
        assert!(buffer.0.capacity() >= expected.len());
    }
}

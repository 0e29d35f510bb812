//! Byte and text buffers wiped, whole allocation, when they are dropped:
//! [`Wiped`] for a buffer filled once, [`WipingBuffer`] for one written
//! piece by piece, which also wipes the allocation it leaves when it grows.
//!
//! `zeroize::Zeroizing<Vec<u8>>` and `Zeroizing<String>` wipe one byte at a
//! time: `Vec<Z>`'s `Zeroize` cannot know its elements are bytes, so it
//! writes each with a volatile write of its own. On a 2 KiB session that
//! was a fifth of an uncached open. [`Wipe`] wipes the same bytes (the
//! contents and the spare capacity) through `zeroize`'s slice wipe: one fill
//! and one optimization barrier.

use std::ops::Deref;

use zeroize::Zeroize;

/// A buffer that [`Wiped`] can wipe in bulk.
pub(crate) trait Wipe: Default {
    /// Overwrites every byte of the allocation, contents and spare capacity,
    /// with zeros, and leaves the buffer empty.
    fn wipe(&mut self);
}

/// Zeroes the contents and the spare capacity, in bulk; the length stays.
fn zero(bytes: &mut Vec<u8>) {
    bytes.as_mut_slice().zeroize();
    bytes.spare_capacity_mut().zeroize();
}

impl Wipe for Vec<u8> {
    fn wipe(&mut self) {
        zero(self);
        self.clear();
    }
}

impl Wipe for String {
    fn wipe(&mut self) {
        // The same allocation, as bytes: `into_bytes` neither copies nor
        // reallocates.
        std::mem::take(self).into_bytes().wipe();
    }
}

/// A `Vec<u8>` or `String` wiped when dropped (see the [module](self)).
pub(crate) struct Wiped<T: Wipe>(T);

impl<T: Wipe> Wiped<T> {
    pub(crate) fn new(inner: T) -> Self {
        Wiped(inner)
    }

    /// Takes the buffer out, unwiped: the caller is now responsible for it.
    pub(crate) fn into_inner(mut self) -> T {
        std::mem::take(&mut self.0)
    }
}

impl<T: Wipe> Drop for Wiped<T> {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl<T: Wipe> Deref for Wiped<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl Wiped<Vec<u8>> {
    /// The bytes, to change in place. No `DerefMut`: a buffer that grew
    /// would free its old allocation unwiped.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

/// A write buffer for a payload serialized piece by piece: what was written
/// is wiped when the buffer grows (a plain `Vec` would free its old
/// allocation, session data and all, unwiped) and when it is dropped.
pub(crate) struct WipingBuffer(Wiped<Vec<u8>>);

impl WipingBuffer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        WipingBuffer(Wiped::new(Vec::with_capacity(capacity)))
    }

    /// What was written.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Appends `bytes`; growth wipes the allocation it leaves.
    #[inline]
    fn append(&mut self, bytes: &[u8]) {
        let buffer = &mut self.0 .0;
        if buffer.len() + bytes.len() > buffer.capacity() {
            Self::grow(buffer, buffer.len() + bytes.len());
        }
        buffer.extend_from_slice(bytes);
    }

    #[cold]
    fn grow(buffer: &mut Vec<u8>, needed: usize) {
        let mut grown = Vec::with_capacity(needed.max(buffer.capacity() * 2));
        grown.extend_from_slice(buffer);
        std::mem::replace(buffer, grown).wipe();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contents_are_zeroed_and_the_buffer_left_empty() {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0xa5; 40]);
        zero(&mut bytes);
        assert_eq!(bytes, [0u8; 40], "every byte written with zero");
        bytes.wipe();
        assert!(bytes.is_empty());
        assert!(
            bytes.capacity() >= 64,
            "the allocation is kept until dropped"
        );

        let mut text = String::from("secret session data");
        text.wipe();
        assert!(text.is_empty());
    }

    #[test]
    fn a_wiped_buffer_reads_and_hands_over_its_contents() {
        let mut held = Wiped::new(b"abc".to_vec());
        held.as_mut_slice()[0] = b'x';
        assert_eq!(&held[..], b"xbc");
        assert_eq!(held.into_inner(), b"xbc");
        let text = Wiped::new(String::from("{}"));
        assert_eq!(text.as_str(), "{}");
        assert_eq!(text.into_inner(), "{}");
    }

    #[test]
    fn wiping_buffer_grows_without_losing_bytes() {
        use std::io::Write as _;
        let mut buffer = WipingBuffer::with_capacity(4);
        let mut expected = Vec::new();
        for i in 0..200u8 {
            let chunk = vec![i; usize::from(i % 7) + 1];
            buffer.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        assert_eq!(buffer.as_bytes(), &expected[..]);
        assert!(buffer.0.capacity() >= expected.len());
    }
}

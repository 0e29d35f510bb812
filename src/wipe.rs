//! Byte and text buffers wiped, whole allocation, when they are dropped.
//!
//! `zeroize::Zeroizing<Vec<u8>>` and `Zeroizing<String>` wipe one byte at a
//! time: `Vec<Z>`'s `Zeroize` cannot know its elements are bytes, so it
//! wipes each with its own write and optimization barrier. On a 2 KiB
//! session that was a fifth of an uncached open. [`Wiped`] wipes the same
//! bytes (the contents and the spare capacity) through `zeroize`'s slice
//! wipe: one fill and one optimization barrier.

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
#[derive(Default)]
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

impl<T: Wipe + Clone> Clone for Wiped<T> {
    fn clone(&self) -> Self {
        Wiped(self.0.clone())
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
        assert_eq!(held.clone().into_inner(), b"xbc");
        let text = Wiped::new(String::from("{}"));
        assert_eq!(text.as_str(), "{}");
        assert_eq!(text.into_inner(), "{}");
    }
}

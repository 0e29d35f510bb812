//! The ciphers under the tokens: AES-GCM for content and for AES-GCM key
//! wrapping, and RSA-OAEP (feature `rsa`).

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Nonce, Tag};
use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm, AesGcm, KeyInit};
#[cfg(feature = "rsa")]
use zeroize::Zeroizing;

#[cfg(feature = "rsa")]
use crate::alg::KeyAlgorithm;
use crate::error::SealError;

type Aes192Gcm = AesGcm<aes::Aes192, U12>;

pub(super) const IV_LEN: usize = 12;
pub(super) const TAG_LEN: usize = 16;

pub(super) fn gcm_seal(
    key: &[u8],
    iv: &[u8; IV_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; TAG_LEN], SealError> {
    fn run<C: AeadInOut + KeyInit>(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SealError> {
        let cipher = C::new_from_slice(key).map_err(|_| SealError::Cipher)?;
        let nonce = <&Nonce<C>>::try_from(iv).map_err(|_| SealError::Cipher)?;
        let tag = cipher
            .encrypt_inout_detached(nonce, aad, buffer.into())
            .map_err(|_| SealError::Cipher)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }
    #[cfg(feature = "ring")]
    if let Some(algorithm) = ring_algorithm(key.len()) {
        return ring_gcm::seal(algorithm, key, iv, aad, buffer).ok_or(SealError::Cipher);
    }
    match key.len() {
        16 => run::<Aes128Gcm>(key, iv, aad, buffer),
        24 => run::<Aes192Gcm>(key, iv, aad, buffer),
        32 => run::<Aes256Gcm>(key, iv, aad, buffer),
        _ => Err(SealError::Cipher),
    }
}

/// `ring`'s AES-GCM for the key lengths it has (128 and 256 bits; AES-192
/// stays with the RustCrypto crates).
#[cfg(feature = "ring")]
fn ring_algorithm(key_len: usize) -> Option<&'static ring::aead::Algorithm> {
    match key_len {
        16 => Some(&ring::aead::AES_128_GCM),
        32 => Some(&ring::aead::AES_256_GCM),
        _ => None,
    }
}

/// AES-GCM through `ring` (feature `ring`): its assembly (AES-NI with
/// aggregated carry-less multiplication for GHASH) is faster per byte than
/// the RustCrypto crates' on processors without VAES. Constant time like
/// them; unlike them, `ring` does not wipe its expanded key schedule when
/// the key object is dropped (it lives on the stack for one call here).
#[cfg(feature = "ring")]
mod ring_gcm {
    use ring::aead::{Aad, Algorithm, LessSafeKey, Nonce, Tag, UnboundKey};

    use super::{IV_LEN, TAG_LEN};

    pub(super) fn seal(
        algorithm: &'static Algorithm,
        key: &[u8],
        iv: &[u8; IV_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        let key = LessSafeKey::new(UnboundKey::new(algorithm, key).ok()?);
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*iv), Aad::from(aad), buffer)
            .ok()?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Some(out)
    }

    pub(super) fn open(
        algorithm: &'static Algorithm,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Option<()> {
        let key = LessSafeKey::new(UnboundKey::new(algorithm, key).ok()?);
        let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
        let tag = Tag::try_from(tag).ok()?;
        key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, buffer, 0..)
            .ok()?;
        Some(())
    }
}

pub(super) fn gcm_open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8],
) -> Result<(), ()> {
    fn run<C: AeadInOut + KeyInit>(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Result<(), ()> {
        let cipher = C::new_from_slice(key).map_err(|_| ())?;
        let nonce = <&Nonce<C>>::try_from(iv).map_err(|_| ())?;
        let tag = <&Tag<C>>::try_from(tag).map_err(|_| ())?;
        cipher
            .decrypt_inout_detached(nonce, aad, buffer.into(), tag)
            .map_err(|_| ())
    }
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(());
    }
    #[cfg(feature = "ring")]
    if let Some(algorithm) = ring_algorithm(key.len()) {
        return ring_gcm::open(algorithm, key, iv, aad, buffer, tag).ok_or(());
    }
    match key.len() {
        16 => run::<Aes128Gcm>(key, iv, aad, buffer, tag),
        24 => run::<Aes192Gcm>(key, iv, aad, buffer, tag),
        32 => run::<Aes256Gcm>(key, iv, aad, buffer, tag),
        _ => Err(()),
    }
}

#[cfg(feature = "rsa")]
fn oaep_digest(alg: KeyAlgorithm) -> openssl::hash::MessageDigest {
    if alg == KeyAlgorithm::RsaOaep256 {
        openssl::hash::MessageDigest::sha256()
    } else {
        openssl::hash::MessageDigest::sha1()
    }
}

#[cfg(feature = "rsa")]
pub(super) fn rsa_oaep_decrypt(
    pkey: &openssl::pkey::PKey<openssl::pkey::Private>,
    alg: KeyAlgorithm,
    input: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    // RFC 8017 §7.1.2: the ciphertext is exactly as long as the modulus.
    // OpenSSL reads it as a number, so one whose leading zero byte was cut
    // off would decrypt the same: another token would open.
    if input.len() != pkey.size() {
        return None;
    }
    let mut decrypter = openssl::encrypt::Decrypter::new(pkey).ok()?;
    decrypter
        .set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
        .ok()?;
    decrypter.set_rsa_oaep_md(oaep_digest(alg)).ok()?;
    decrypter.set_rsa_mgf1_md(oaep_digest(alg)).ok()?;
    let len = decrypter.decrypt_len(input).ok()?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let written = decrypter.decrypt(input, &mut out).ok()?;
    out.truncate(written);
    Some(out)
}

#[cfg(feature = "rsa")]
pub(super) fn rsa_oaep_encrypt(
    pkey: &openssl::pkey::PKey<openssl::pkey::Private>,
    alg: KeyAlgorithm,
    input: &[u8],
) -> Result<Vec<u8>, SealError> {
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut encrypter = openssl::encrypt::Encrypter::new(pkey)?;
        encrypter.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)?;
        encrypter.set_rsa_oaep_md(oaep_digest(alg))?;
        encrypter.set_rsa_mgf1_md(oaep_digest(alg))?;
        let mut out = vec![0u8; encrypter.encrypt_len(input)?];
        let written = encrypter.encrypt(input, &mut out)?;
        out.truncate(written);
        Ok(out)
    };
    run().map_err(|_| SealError::Cipher)
}

//! Sealing: the options and [`seal`].

use aes_kw::KeyInit as _;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

#[cfg(feature = "rsa")]
use super::cipher::rsa_oaep_encrypt;
use super::cipher::{gcm_seal, IV_LEN};
use super::prepared::{HeaderCache, PreparedHeader};
use crate::alg::KeyAlgorithm;
use crate::b64;
use crate::error::SealError;
use crate::key::{Key, Material};

/// Options for sealing.
///
/// ```
/// use jwe_session::SealOptions;
/// let options = SealOptions::new().with_typ("session+jwe");
/// assert_eq!(options.typ(), Some("session+jwe"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealOptions {
    typ: Option<String>,
    cty: Option<String>,
}

impl SealOptions {
    /// No `typ`, no `cty`.
    pub fn new() -> Self {
        SealOptions::default()
    }

    /// Sets the protected header's `typ` (default: none). Printable ASCII
    /// without `"` or `\`, 1 to 64 characters; anything else makes sealing
    /// fail.
    pub fn with_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Whether `value` can be written as a `typ` or `cty`: printable ASCII
    /// without `"` or `\`, 1 to 64 characters.
    ///
    /// ```
    /// use jwe_session::SealOptions;
    /// assert!(SealOptions::is_writable("jwe-session"));
    /// assert!(!SealOptions::is_writable("a \"quoted\" type"));
    /// assert!(!SealOptions::is_writable(""));
    /// ```
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn is_writable(value: &str) -> bool {
        let allowed = |b: u8| b.is_ascii_graphic() && b != b'"' && b != b'\\';
        !value.is_empty() && value.len() <= 64 && value.bytes().all(allowed)
    }

    /// Sets the protected header's `cty` (default: none). Same rules as
    /// `typ`.
    pub fn with_cty(mut self, cty: impl Into<String>) -> Self {
        self.cty = Some(cty.into());
        self
    }

    /// The `typ` to write, if any.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `cty` to write, if any.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }
}

/// Seals `plaintext` under `key` as a compact JWE.
///
/// ```
/// use jwe_session::{jwe, Key, KeyAlgorithm, SealOptions};
/// let key = Key::generate(KeyAlgorithm::Dir).unwrap();
/// let token = jwe::seal(&key, b"hi", &SealOptions::new()).unwrap();
/// assert_eq!(token.split('.').count(), 5);
/// ```
pub fn seal(key: &Key, plaintext: &[u8], options: &SealOptions) -> Result<String, SealError> {
    let header = PreparedHeader::new(key, options)?;
    seal_prepared(key, plaintext, &header)
}

/// [`seal`] with the header prepared once per key (the keyring's path).
pub(crate) fn seal_cached(
    key: &Key,
    plaintext: &[u8],
    options: &SealOptions,
    cache: &HeaderCache,
) -> Result<String, SealError> {
    let header = cache.get(key, options)?;
    seal_prepared(key, plaintext, &header)
}

/// The length of `len` bytes in unpadded base64url.
pub(super) fn encoded_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

fn seal_prepared(
    key: &Key,
    plaintext: &[u8],
    header: &PreparedHeader,
) -> Result<String, SealError> {
    let enc = key.enc();
    let cek_len = enc.key_len();
    // Everything random this token needs, from the OS in one call: the
    // content IV, then a fresh content key, then the key wrap's IV.
    let mut random = Zeroizing::new([0u8; IV_LEN + 32 + IV_LEN]);
    let fresh_cek = key.alg() != KeyAlgorithm::Dir;
    let gcm_kw = key.alg().is_gcm_kw();
    let need = IV_LEN + if fresh_cek { cek_len } else { 0 } + if gcm_kw { IV_LEN } else { 0 };
    OsRng
        .try_fill_bytes(&mut random[..need])
        .map_err(|_| SealError::Random)?;
    let (iv, rest) = random.split_at(IV_LEN);
    let (fresh, kw_iv) = rest.split_at(cek_len);
    let iv: &[u8; IV_LEN] = iv.try_into().map_err(|_| SealError::Cipher)?;

    let mut encrypted_key = Vec::new();
    let mut kw_tag = None;
    let cek: &[u8] = match (key.alg(), key.material()) {
        (KeyAlgorithm::Dir, Material::Symmetric(secret)) => secret,
        (
            KeyAlgorithm::A128Kw | KeyAlgorithm::A192Kw | KeyAlgorithm::A256Kw,
            Material::Symmetric(kek),
        ) => {
            // Exactly the wrapped length: aes-kw writes into the front of
            // a larger buffer, and the token carries all of this one.
            encrypted_key = vec![0u8; cek_len + 8];
            let wrapped = match kek.len() {
                16 => aes_kw::KwAes128::new_from_slice(&kek[..])
                    .map(|k| k.wrap_key(fresh, &mut encrypted_key).map(|_| ())),
                24 => aes_kw::KwAes192::new_from_slice(&kek[..])
                    .map(|k| k.wrap_key(fresh, &mut encrypted_key).map(|_| ())),
                _ => aes_kw::KwAes256::new_from_slice(&kek[..])
                    .map(|k| k.wrap_key(fresh, &mut encrypted_key).map(|_| ())),
            };
            match wrapped {
                Ok(Ok(())) => fresh,
                _ => return Err(SealError::Cipher),
            }
        }
        (
            KeyAlgorithm::A128GcmKw | KeyAlgorithm::A192GcmKw | KeyAlgorithm::A256GcmKw,
            Material::Symmetric(kek),
        ) => {
            let kw_iv: &[u8; IV_LEN] = kw_iv[..IV_LEN].try_into().map_err(|_| SealError::Cipher)?;
            encrypted_key = fresh.to_vec();
            kw_tag = Some(gcm_seal(kek, kw_iv, b"", &mut encrypted_key)?);
            fresh
        }
        #[cfg(feature = "rsa")]
        (KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256, Material::Rsa(pkey)) => {
            encrypted_key = rsa_oaep_encrypt(pkey, key.alg(), fresh)?;
            fresh
        }
        _ => return Err(SealError::Cipher),
    };

    let mut token = String::with_capacity(
        header.json_open.len() * 4 / 3
            + 80
            + encoded_len(encrypted_key.len())
            + encoded_len(plaintext.len())
            + 48,
    );
    match (&header.encoded, kw_tag) {
        (Some(encoded), None) => token.push_str(encoded),
        (_, kw_tag) => {
            let mut json = String::with_capacity(header.json_open.len() + 64);
            json.push_str(&header.json_open);
            if let Some(kw_tag) = kw_tag {
                json.push_str(",\"iv\":\"");
                b64::encode_append(&kw_iv[..IV_LEN], &mut json);
                json.push_str("\",\"tag\":\"");
                b64::encode_append(&kw_tag, &mut json);
                json.push('"');
            }
            json.push('}');
            b64::encode_append(json.as_bytes(), &mut token);
        }
    }
    let mut buffer = plaintext.to_vec();
    let tag = gcm_seal(cek, iv, token.as_bytes(), &mut buffer)?;
    for part in [&encrypted_key[..], &iv[..], &buffer, &tag] {
        token.push('.');
        b64::encode_append(part, &mut token);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwe::{parse, OpenOptions};

    #[test]
    fn header_values_cannot_inject_members() {
        let key = Key::generate(KeyAlgorithm::A128Kw).unwrap();
        for bad in [
            "x\",\"cty\":\"injected",
            "back\\slash",
            "",
            "sp ace",
            &"t".repeat(65),
        ] {
            let typ = seal(&key, b"p", &SealOptions::new().with_typ(bad));
            assert_eq!(typ, Err(SealError::InvalidHeader("typ")), "{bad:?}");
            let cty = seal(&key, b"p", &SealOptions::new().with_cty(bad));
            assert_eq!(cty, Err(SealError::InvalidHeader("cty")), "{bad:?}");
        }
        let token = seal(
            &key,
            b"p",
            &SealOptions::new().with_typ("a+b/c").with_cty("JWT"),
        )
        .unwrap();
        let parsed = parse(&token, &OpenOptions::new()).unwrap();
        assert_eq!(parsed.header().typ(), Some("a+b/c"));
        assert_eq!(parsed.header().cty(), Some("JWT"));
    }
}

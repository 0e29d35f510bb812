//! Opening: the options, splitting and decoding a token ([`parse`]), and
//! decrypting it with a key ([`open_with_key`], and the keyring's path).

use std::fmt;
use std::sync::Weak;

use aes_kw::KeyInit as _;
#[cfg(feature = "rsa")]
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

#[cfg(feature = "rsa")]
use super::cipher::rsa_oaep_decrypt;
use super::cipher::{gcm_open, IV_LEN, TAG_LEN};
use super::header::{parse_header, parse_header_fast, Header};
use crate::alg::KeyAlgorithm;
use crate::b64;
use crate::error::{Rejection, RejectionKind};
use crate::key::{Key, Material};
use crate::key_state::KeyState;
use crate::wipe::Wiped;

/// The default cap on a token's length, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// Options for opening.
///
/// ```
/// use jwe_session::OpenOptions;
/// assert_eq!(OpenOptions::new().max_len(), 8192);
/// assert_eq!(OpenOptions::new().with_max_len(4096).max_len(), 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    max_len: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }
}

impl OpenOptions {
    /// The defaults: tokens up to 8 KiB.
    pub fn new() -> Self {
        OpenOptions::default()
    }

    /// Sets the longest token accepted, in bytes (default 8192).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The longest token accepted, in bytes.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }
}

/// A token split and decoded, with its header checked, not yet decrypted.
///
/// ```
/// use jwe_session::{jwe, Key, KeyAlgorithm, Keyring, OpenOptions};
/// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A128Kw).unwrap());
/// let token = keyring.seal(b"hello").unwrap();
/// let parsed = jwe::parse(&token, &OpenOptions::new()).unwrap();
/// assert_eq!(parsed.header().alg(), KeyAlgorithm::A128Kw);
/// assert!(jwe::parse("a.b.c", &OpenOptions::new()).is_err());
/// ```
pub struct Parsed<'t> {
    header: Header,
    header_b64: &'t str,
    encrypted_key: Vec<u8>,
    iv: Short,
    ciphertext: Wiped<Vec<u8>>,
    tag: Short,
}

/// A short part (an IV, a tag) decoded without allocating: its bytes when
/// it has at most 24 of them, and its decoded length whatever it is.
#[derive(Clone, Copy)]
struct Short {
    bytes: [u8; 24],
    len: usize,
}

impl Short {
    /// The bytes, when there are exactly `len` of them.
    fn exactly(&self, len: usize) -> Option<&[u8]> {
        (self.len == len).then(|| &self.bytes[..len])
    }
}

/// Decodes canonical unpadded base64url, like [`b64::decode`], into a
/// [`Short`]. A longer part is decoded the usual way, to check it and learn
/// its length.
fn decode_short(text: &str) -> Result<Short, ()> {
    let mut short = Short {
        bytes: [0; 24],
        len: 0,
    };
    // 32 characters decode to at most 24 bytes.
    if text.len() <= 32 {
        short.len = b64::decode_slice(text, &mut short.bytes).map_err(|_| ())?;
    } else {
        short.len = b64::decode(text).map_err(|_| ())?.len();
    }
    Ok(short)
}

impl Parsed<'_> {
    /// The checked protected header.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }
}

impl fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// A token opened by a [`Keyring`](crate::Keyring).
pub struct Opened {
    header: Header,
    plaintext: Wiped<Vec<u8>>,
    key_state: KeyState,
    key: Weak<Key>,
}

impl Opened {
    pub(crate) fn new(
        header: Header,
        plaintext: Wiped<Vec<u8>>,
        key_state: KeyState,
        key: Weak<Key>,
    ) -> Self {
        Opened {
            header,
            plaintext,
            key_state,
            key,
        }
    }

    /// The key that opened the token (weak: it may have left the keyring).
    pub(crate) fn key(&self) -> &Weak<Key> {
        &self.key
    }

    /// The decrypted payload (wiped when `Opened` is dropped).
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// The protected header.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The id of the key that opened the token.
    pub fn kid(&self) -> &str {
        self.header.kid().unwrap_or_default()
    }

    /// The state of that key at the time of opening: anything but
    /// [`KeyState::Primary`] means the token should be re-sealed.
    pub fn key_state(&self) -> KeyState {
        self.key_state
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("header", &self.header)
            .field("key_state", &self.key_state)
            .field(
                "plaintext",
                &format_args!("[{} bytes]", self.plaintext.len()),
            )
            .finish()
    }
}

/// Splits, decodes and checks a compact token, without decrypting it.
pub fn parse<'t>(token: &'t str, options: &OpenOptions) -> Result<Parsed<'t>, Rejection> {
    parse_known(token, options, |_| None)
}

/// [`parse`], with `known` asked first for the header of an encoded
/// protected header this crate wrote itself (see
/// [`HeaderCache::lookup`](super::HeaderCache::lookup)): such a header
/// decodes and parses, to exactly that, so both are skipped.
pub(crate) fn parse_known<'t>(
    token: &'t str,
    options: &OpenOptions,
    known: impl FnOnce(&str) -> Option<Header>,
) -> Result<Parsed<'t>, Rejection> {
    if token.len() > options.max_len {
        return Err(Rejection::malformed(
            "token longer than the configured maximum",
        ));
    }
    // The four dots found by memchr, a vector at a time: the ciphertext
    // part is most of a token.
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(d1), Some(d2), Some(d3), Some(d4), None) = (
        dots.next(),
        dots.next(),
        dots.next(),
        dots.next(),
        dots.next(),
    ) else {
        return Err(Rejection::malformed("not exactly five parts"));
    };
    // A dot is one byte of ASCII: every bound is a character boundary.
    let (h, k, i, c, t) = (
        &token[..d1],
        &token[d1 + 1..d2],
        &token[d2 + 1..d3],
        &token[d3 + 1..d4],
        &token[d4 + 1..],
    );
    let not_b64 = || Rejection::malformed("part is not canonical base64url");
    let known = known(h);
    // The header is decoded first into a buffer on the stack when it fits.
    let mut stack = [0u8; 384];
    let heap;
    let header_bytes: &[u8] = if known.is_some() {
        &[]
    } else if h.len() <= 512 {
        let len = b64::decode_slice(h, &mut stack).map_err(|_| not_b64())?;
        &stack[..len]
    } else {
        heap = b64::decode(h).map_err(|_| not_b64())?;
        &heap
    };
    let encrypted_key = if k.is_empty() {
        Vec::new()
    } else {
        b64::decode(k).map_err(|_| not_b64())?
    };
    let iv = decode_short(i).map_err(|()| not_b64())?;
    let ciphertext = Wiped::new(b64::decode(c).map_err(|_| not_b64())?);
    let tag = decode_short(t).map_err(|()| not_b64())?;
    let header = match known {
        Some(header) => header,
        None => match parse_header_fast(header_bytes) {
            Some(header) => header,
            None => parse_header(header_bytes)?,
        },
    };
    Ok(Parsed {
        header,
        header_b64: h,
        encrypted_key,
        iv,
        ciphertext,
        tag,
    })
}

/// Opens a token with one given key, outside any keyring.
///
/// The header's `alg` must be the key's; a `kid`, when the header has one,
/// must be the key's too. The header may lack a `kid` here (as RFC 7516's
/// examples do); a [`Keyring`](crate::Keyring) always requires one.
///
/// ```
/// use jwe_session::{jwe, Key, KeyAlgorithm, OpenOptions, SealOptions};
/// let key = Key::generate(KeyAlgorithm::A256GcmKw).unwrap();
/// let token = jwe::seal(&key, b"data", &SealOptions::new()).unwrap();
/// let (header, plaintext) = jwe::open_with_key(&token, &key, &OpenOptions::new()).unwrap();
/// assert_eq!(&plaintext[..], b"data");
/// assert_eq!(header.kid(), Some(key.kid()));
/// ```
pub fn open_with_key(
    token: &str,
    key: &Key,
    options: &OpenOptions,
) -> Result<(Header, Zeroizing<Vec<u8>>), Rejection> {
    let parsed = parse(token, options)?;
    if let Some(kid) = parsed.header.kid() {
        if kid != key.kid() {
            return Err(
                Rejection::new(RejectionKind::UnknownKey, "kid is not the given key's")
                    .with_kid(kid),
            );
        }
    }
    let (header, plaintext) = decrypt(parsed, key)?;
    Ok((header, Zeroizing::new(plaintext.into_inner())))
}

/// Decrypts a parsed token with the key its `kid` named, in place.
pub(crate) fn decrypt(
    parsed: Parsed<'_>,
    key: &Key,
) -> Result<(Header, Wiped<Vec<u8>>), Rejection> {
    let header = &parsed.header;
    let fail = |reason| Rejection::decrypt(reason).with_kid(key.kid());
    if header.alg != key.alg() {
        return Err(fail("alg is not the one the key is bound to"));
    }
    if header.alg == KeyAlgorithm::Dir && header.enc != key.enc() {
        return Err(fail("enc is not the one the dir key is bound to"));
    }
    let Some(iv) = parsed.iv.exactly(IV_LEN) else {
        return Err(fail("IV is not 12 bytes"));
    };
    let Some(tag) = parsed.tag.exactly(TAG_LEN) else {
        return Err(fail("authentication tag is not 16 bytes"));
    };
    // The buffer stays here and is wiped on drop: never moved, so no copy
    // of an unwrapped key is left behind.
    let mut buffer = Zeroizing::new([0u8; 32]);
    let cek = unwrap_cek(&parsed, key, &mut buffer).map_err(fail)?;
    let Parsed {
        header,
        header_b64,
        mut ciphertext,
        ..
    } = parsed;
    gcm_open(
        cek,
        iv,
        header_b64.as_bytes(),
        ciphertext.as_mut_slice(),
        tag,
    )
    .map_err(|()| fail("content authentication failed"))?;
    Ok((header, ciphertext))
}

/// The content encryption key: the `dir` key itself, or one unwrapped into
/// the caller's `cek` buffer.
fn unwrap_cek<'a>(
    parsed: &Parsed<'_>,
    key: &'a Key,
    cek: &'a mut [u8; 32],
) -> Result<&'a [u8], &'static str> {
    let cek_len = parsed.header.enc.key_len();
    let ek = &parsed.encrypted_key;
    match (key.alg(), key.material()) {
        (KeyAlgorithm::Dir, Material::Symmetric(secret)) => {
            if !ek.is_empty() {
                return Err("dir token carries an encrypted key");
            }
            Ok(secret)
        }
        (
            KeyAlgorithm::A128Kw | KeyAlgorithm::A192Kw | KeyAlgorithm::A256Kw,
            Material::Symmetric(kek),
        ) => {
            if ek.len() != cek_len + 8 {
                return Err("wrapped key length does not match enc");
            }
            // The exact length checked above and an output of exactly
            // `cek_len`: aes-kw accepts a larger output and would leave
            // its tail as it was.
            let out = &mut cek[..cek_len];
            let unwrapped = match kek.len() {
                16 => aes_kw::KwAes128::new_from_slice(&kek[..])
                    .map(|k| k.unwrap_key(ek, out).map(|_| ())),
                24 => aes_kw::KwAes192::new_from_slice(&kek[..])
                    .map(|k| k.unwrap_key(ek, out).map(|_| ())),
                _ => aes_kw::KwAes256::new_from_slice(&kek[..])
                    .map(|k| k.unwrap_key(ek, out).map(|_| ())),
            };
            match unwrapped {
                Ok(Ok(())) => Ok(&cek[..cek_len]),
                _ => Err("key unwrap failed"),
            }
        }
        (
            KeyAlgorithm::A128GcmKw | KeyAlgorithm::A192GcmKw | KeyAlgorithm::A256GcmKw,
            Material::Symmetric(kek),
        ) => {
            if ek.len() != cek_len {
                return Err("wrapped key length does not match enc");
            }
            let decode = |value: &Option<String>, len| {
                value
                    .as_deref()
                    .and_then(|text| decode_short(text).ok())
                    .filter(|short| short.len == len)
            };
            let iv = decode(&parsed.header.iv, IV_LEN).ok_or("key wrap iv is not 12 bytes")?;
            let tag = decode(&parsed.header.tag, TAG_LEN).ok_or("key wrap tag is not 16 bytes")?;
            cek[..cek_len].copy_from_slice(ek);
            gcm_open(
                kek,
                &iv.bytes[..IV_LEN],
                b"",
                &mut cek[..cek_len],
                &tag.bytes[..TAG_LEN],
            )
            .map_err(|()| "key unwrap failed")?;
            Ok(&cek[..cek_len])
        }
        #[cfg(feature = "rsa")]
        (KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256, Material::Rsa(pkey)) => {
            // RFC 7516 §11.5: on any failure carry on with a random key, so
            // the failure shows only as the content's authentication failing.
            match rsa_oaep_decrypt(pkey, key.alg(), ek) {
                Some(unwrapped) if unwrapped.len() == cek_len => {
                    cek[..cek_len].copy_from_slice(&unwrapped);
                }
                _ => OsRng.fill_bytes(&mut cek[..cek_len]),
            }
            Ok(&cek[..cek_len])
        }
        _ => Err("key material does not fit its algorithm"),
    }
}

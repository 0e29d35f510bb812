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

use std::fmt;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use rand_core::{OsRng, RngCore};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::alg::{ContentEncryption, KeyAlgorithm};
use crate::b64;
use crate::error::{Rejection, RejectionKind, SealError};
use crate::key::{Key, Material};
use crate::keyring::KeyState;

type Aes192Gcm = AesGcm<aes::Aes192, U12>;

/// The default cap on a token's length, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

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

    /// Sets the protected header's `cty` (default: none). Same rules as
    /// `typ`.
    pub fn with_cty(mut self, cty: impl Into<String>) -> Self {
        self.cty = Some(cty.into());
        self
    }

    /// The `typ` to write, if any.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `cty` to write, if any.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }
}

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
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

/// A token's protected header, after strict parsing.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    alg: KeyAlgorithm,
    enc: ContentEncryption,
    kid: Option<String>,
    typ: Option<String>,
    cty: Option<String>,
    iv: Option<String>,
    tag: Option<String>,
    json: Map<String, Value>,
}

impl Header {
    /// The key management algorithm.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The content encryption.
    pub fn enc(&self) -> ContentEncryption {
        self.enc
    }

    /// The key id, when present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` member, when present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `cty` member, when present.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }

    /// The header as the JSON object it was.
    pub fn to_json(&self) -> &Map<String, Value> {
        &self.json
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("kid", &self.kid)
            .field("typ", &self.typ)
            .field("cty", &self.cty)
            .finish_non_exhaustive()
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
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl Parsed<'_> {
    /// The checked protected header.
    pub fn header(&self) -> &Header {
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
    plaintext: Zeroizing<Vec<u8>>,
    key_state: KeyState,
}

impl Opened {
    pub(crate) fn new(header: Header, plaintext: Zeroizing<Vec<u8>>, key_state: KeyState) -> Self {
        Opened {
            header,
            plaintext,
            key_state,
        }
    }

    /// The decrypted payload (wiped when `Opened` is dropped).
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// Takes the payload out.
    pub fn into_plaintext(self) -> Zeroizing<Vec<u8>> {
        self.plaintext
    }

    /// The protected header.
    pub fn header(&self) -> &Header {
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
    if token.len() > options.max_len {
        return Err(Rejection::malformed(
            "token longer than the configured maximum",
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(k), Some(i), Some(c), Some(t), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Rejection::malformed("not exactly five parts"));
    };
    let decode = |part: &str| {
        b64::decode(part).map_err(|_| Rejection::malformed("part is not canonical base64url"))
    };
    let header_bytes = decode(h)?;
    let encrypted_key = decode(k)?;
    let iv = decode(i)?;
    let ciphertext = decode(c)?;
    let tag = decode(t)?;
    let header = parse_header(&header_bytes)?;
    Ok(Parsed {
        header,
        header_b64: h,
        encrypted_key,
        iv,
        ciphertext,
        tag,
    })
}

/// A JSON object whose members are collected in order, refusing duplicates.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut out = Map::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    if out.contains_key(&name) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    out.insert(name, value);
                }
                Ok(StrictObject(out))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

fn parse_header(bytes: &[u8]) -> Result<Header, Rejection> {
    let StrictObject(json) = serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().starts_with("duplicate member") {
            Rejection::malformed("header repeats a member")
        } else {
            Rejection::malformed("header is not one JSON object")
        }
    })?;
    let mut alg = None;
    let mut enc = None;
    let mut header = Header {
        alg: KeyAlgorithm::A256Kw,
        enc: ContentEncryption::A256Gcm,
        kid: None,
        typ: None,
        cty: None,
        iv: None,
        tag: None,
        json: Map::new(),
    };
    // The algorithms first, so the reason logged for a foreign token names
    // them rather than one of their parameters (`p2s`, `epk`, ...).
    if let Some(Value::String(alg)) = json.get("alg") {
        if KeyAlgorithm::from_name(alg).is_none() {
            return Err(Rejection::malformed("alg not supported"));
        }
    }
    if let Some(Value::String(enc)) = json.get("enc") {
        if ContentEncryption::from_name(enc).is_none() {
            return Err(Rejection::malformed("enc not supported"));
        }
    }
    for (name, value) in &json {
        let text = || match value {
            Value::String(text) => Ok(text.clone()),
            _ => Err(Rejection::malformed("header member is not a string")),
        };
        match name.as_str() {
            "alg" => alg = Some(text()?),
            "enc" => enc = Some(text()?),
            "kid" => header.kid = Some(text()?),
            "typ" => header.typ = Some(text()?),
            "cty" => header.cty = Some(text()?),
            "iv" => header.iv = Some(text()?),
            "tag" => header.tag = Some(text()?),
            "zip" => return Err(Rejection::malformed("compression (zip) refused")),
            "crit" => return Err(Rejection::malformed("critical extensions (crit) refused")),
            "jwk" | "jku" | "x5u" | "x5c" | "x5t" | "x5t#S256" => {
                return Err(Rejection::malformed(
                    "keys named or carried by the token refused",
                ))
            }
            _ => return Err(Rejection::malformed("unknown header member")),
        }
    }
    let alg = alg.ok_or_else(|| Rejection::malformed("header has no alg"))?;
    let enc = enc.ok_or_else(|| Rejection::malformed("header has no enc"))?;
    header.alg =
        KeyAlgorithm::from_name(&alg).ok_or_else(|| Rejection::malformed("alg not supported"))?;
    header.enc = ContentEncryption::from_name(&enc)
        .ok_or_else(|| Rejection::malformed("enc not supported"))?;
    let gcm_kw = matches!(
        header.alg,
        KeyAlgorithm::A128GcmKw | KeyAlgorithm::A192GcmKw | KeyAlgorithm::A256GcmKw
    );
    if gcm_kw != (header.iv.is_some() && header.tag.is_some())
        || (!gcm_kw && (header.iv.is_some() || header.tag.is_some()))
    {
        return Err(Rejection::malformed(
            "iv and tag belong to AES-GCM key wrapping only",
        ));
    }
    header.json = json;
    Ok(header)
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
    let plaintext = decrypt(&parsed, key)?;
    Ok((parsed.header, plaintext))
}

/// Decrypts a parsed token with the key its `kid` named.
pub(crate) fn decrypt(parsed: &Parsed<'_>, key: &Key) -> Result<Zeroizing<Vec<u8>>, Rejection> {
    let header = &parsed.header;
    let fail = |reason| Rejection::decrypt(reason).with_kid(key.kid());
    if header.alg != key.alg() {
        return Err(fail("alg is not the one the key is bound to"));
    }
    if header.alg == KeyAlgorithm::Dir && header.enc != key.enc() {
        return Err(fail("enc is not the one the dir key is bound to"));
    }
    if parsed.iv.len() != IV_LEN {
        return Err(fail("IV is not 12 bytes"));
    }
    if parsed.tag.len() != TAG_LEN {
        return Err(fail("authentication tag is not 16 bytes"));
    }
    let cek = unwrap_cek(parsed, key).map_err(fail)?;
    let mut buffer = Zeroizing::new(parsed.ciphertext.clone());
    gcm_open(
        &cek,
        &parsed.iv,
        parsed.header_b64.as_bytes(),
        &mut buffer,
        &parsed.tag,
    )
    .map_err(|()| fail("content authentication failed"))?;
    Ok(buffer)
}

fn unwrap_cek(parsed: &Parsed<'_>, key: &Key) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let cek_len = parsed.header.enc.key_len();
    let ek = &parsed.encrypted_key;
    match (key.alg(), key.material()) {
        (KeyAlgorithm::Dir, Material::Symmetric(secret)) => {
            if !ek.is_empty() {
                return Err("dir token carries an encrypted key");
            }
            Ok(Zeroizing::new(secret.to_vec()))
        }
        (
            KeyAlgorithm::A128Kw | KeyAlgorithm::A192Kw | KeyAlgorithm::A256Kw,
            Material::Symmetric(kek),
        ) => {
            if ek.len() != cek_len + 8 {
                return Err("wrapped key length does not match enc");
            }
            let mut cek = Zeroizing::new(vec![0u8; cek_len]);
            let unwrapped = match kek.len() {
                16 => aes_kw::KekAes128::try_from(&kek[..]).map(|k| k.unwrap(ek, &mut cek)),
                24 => aes_kw::KekAes192::try_from(&kek[..]).map(|k| k.unwrap(ek, &mut cek)),
                _ => aes_kw::KekAes256::try_from(&kek[..]).map(|k| k.unwrap(ek, &mut cek)),
            };
            match unwrapped {
                Ok(Ok(())) => Ok(cek),
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
                    .and_then(|text| b64::decode(text).ok())
                    .filter(|bytes| bytes.len() == len)
            };
            let iv = decode(&parsed.header.iv, IV_LEN).ok_or("key wrap iv is not 12 bytes")?;
            let tag = decode(&parsed.header.tag, TAG_LEN).ok_or("key wrap tag is not 16 bytes")?;
            let mut cek = Zeroizing::new(ek.clone());
            gcm_open(kek, &iv, b"", &mut cek, &tag).map_err(|()| "key unwrap failed")?;
            Ok(cek)
        }
        #[cfg(feature = "rsa")]
        (KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256, Material::Rsa(pkey)) => {
            // RFC 7516 §11.5: on any failure carry on with a random key, so
            // the failure shows only as the content's authentication failing.
            match rsa_oaep_decrypt(pkey, key.alg(), ek) {
                Some(cek) if cek.len() == cek_len => Ok(cek),
                _ => {
                    let mut cek = Zeroizing::new(vec![0u8; cek_len]);
                    OsRng.fill_bytes(&mut cek);
                    Ok(cek)
                }
            }
        }
        _ => Err("key material does not fit its algorithm"),
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
    for (name, value) in [("typ", options.typ()), ("cty", options.cty())] {
        if let Some(value) = value {
            let allowed = |b: u8| b.is_ascii_graphic() && b != b'"' && b != b'\\';
            if value.is_empty() || value.len() > 64 || !value.bytes().all(allowed) {
                return Err(SealError::InvalidHeader(name));
            }
        }
    }
    let enc = key.enc();
    let (cek, encrypted_key, kw_params) = wrap_new_cek(key, enc)?;
    let mut header = String::with_capacity(160);
    header.push_str("{\"alg\":\"");
    header.push_str(key.alg().name());
    header.push_str("\",\"enc\":\"");
    header.push_str(enc.name());
    header.push_str("\",\"kid\":");
    header.push_str(&Value::String(key.kid().to_owned()).to_string());
    for (name, value) in [("typ", options.typ()), ("cty", options.cty())] {
        if let Some(value) = value {
            header.push_str(",\"");
            header.push_str(name);
            header.push_str("\":\"");
            header.push_str(value);
            header.push('"');
        }
    }
    if let Some((iv, tag)) = kw_params {
        header.push_str(",\"iv\":\"");
        header.push_str(&b64::encode(&iv));
        header.push_str("\",\"tag\":\"");
        header.push_str(&b64::encode(&tag));
        header.push('"');
    }
    header.push('}');
    let header_b64 = b64::encode(header.as_bytes());

    let mut iv = [0u8; IV_LEN];
    OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|_| SealError::Random)?;
    let mut buffer = plaintext.to_vec();
    let tag = gcm_seal(&cek, &iv, header_b64.as_bytes(), &mut buffer)?;

    let mut token =
        String::with_capacity(header_b64.len() + (buffer.len() + encrypted_key.len()) * 4 / 3 + 48);
    token.push_str(&header_b64);
    token.push('.');
    token.push_str(&b64::encode(&encrypted_key));
    token.push('.');
    token.push_str(&b64::encode(&iv));
    token.push('.');
    token.push_str(&b64::encode(&buffer));
    token.push('.');
    token.push_str(&b64::encode(&tag));
    Ok(token)
}

type WrappedCek = (
    Zeroizing<Vec<u8>>,
    Vec<u8>,
    Option<([u8; IV_LEN], [u8; TAG_LEN])>,
);

fn wrap_new_cek(key: &Key, enc: ContentEncryption) -> Result<WrappedCek, SealError> {
    let fresh = || -> Result<Zeroizing<Vec<u8>>, SealError> {
        let mut cek = Zeroizing::new(vec![0u8; enc.key_len()]);
        OsRng
            .try_fill_bytes(&mut cek)
            .map_err(|_| SealError::Random)?;
        Ok(cek)
    };
    match (key.alg(), key.material()) {
        (KeyAlgorithm::Dir, Material::Symmetric(secret)) => {
            Ok((Zeroizing::new(secret.to_vec()), Vec::new(), None))
        }
        (
            KeyAlgorithm::A128Kw | KeyAlgorithm::A192Kw | KeyAlgorithm::A256Kw,
            Material::Symmetric(kek),
        ) => {
            let cek = fresh()?;
            let mut ek = vec![0u8; cek.len() + 8];
            let wrapped = match kek.len() {
                16 => aes_kw::KekAes128::try_from(&kek[..]).map(|k| k.wrap(&cek, &mut ek)),
                24 => aes_kw::KekAes192::try_from(&kek[..]).map(|k| k.wrap(&cek, &mut ek)),
                _ => aes_kw::KekAes256::try_from(&kek[..]).map(|k| k.wrap(&cek, &mut ek)),
            };
            match wrapped {
                Ok(Ok(())) => Ok((cek, ek, None)),
                _ => Err(SealError::Cipher),
            }
        }
        (
            KeyAlgorithm::A128GcmKw | KeyAlgorithm::A192GcmKw | KeyAlgorithm::A256GcmKw,
            Material::Symmetric(kek),
        ) => {
            let cek = fresh()?;
            let mut iv = [0u8; IV_LEN];
            OsRng
                .try_fill_bytes(&mut iv)
                .map_err(|_| SealError::Random)?;
            let mut ek = cek.to_vec();
            let tag = gcm_seal(kek, &iv, b"", &mut ek)?;
            Ok((cek, ek, Some((iv, tag))))
        }
        #[cfg(feature = "rsa")]
        (KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256, Material::Rsa(pkey)) => {
            let cek = fresh()?;
            let ek = rsa_oaep_encrypt(pkey, key.alg(), &cek)?;
            Ok((cek, ek, None))
        }
        _ => Err(SealError::Cipher),
    }
}

fn gcm_seal(
    key: &[u8],
    iv: &[u8; IV_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; TAG_LEN], SealError> {
    fn run<C: AeadInPlace + KeyInit>(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SealError> {
        let cipher = C::new_from_slice(key).map_err(|_| SealError::Cipher)?;
        let tag = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(iv), aad, buffer)
            .map_err(|_| SealError::Cipher)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }
    match key.len() {
        16 => run::<Aes128Gcm>(key, iv, aad, buffer),
        24 => run::<Aes192Gcm>(key, iv, aad, buffer),
        32 => run::<Aes256Gcm>(key, iv, aad, buffer),
        _ => Err(SealError::Cipher),
    }
}

fn gcm_open(key: &[u8], iv: &[u8], aad: &[u8], buffer: &mut [u8], tag: &[u8]) -> Result<(), ()> {
    fn run<C: AeadInPlace + KeyInit>(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Result<(), ()> {
        let cipher = C::new_from_slice(key).map_err(|_| ())?;
        cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(iv),
                aad,
                buffer,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| ())
    }
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(());
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
fn rsa_oaep_decrypt(
    pkey: &openssl::pkey::PKey<openssl::pkey::Private>,
    alg: KeyAlgorithm,
    input: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
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
fn rsa_oaep_encrypt(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::KeyAlgorithm;

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

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

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::alg::{ContentEncryption, KeyAlgorithm};
use crate::b64;
use crate::error::{Rejection, RejectionKind, SealError};
use crate::key::{Key, Material};
use crate::key_state::KeyState;

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

    /// Whether `value` can be written as a `typ` or `cty`: printable ASCII
    /// without `"` or `\`, 1 to 64 characters.
    ///
    /// ```
    /// use jwe_session::SealOptions;
    /// assert!(SealOptions::is_writable("jwe-session"));
    /// assert!(!SealOptions::is_writable("a \"quoted\" type"));
    /// assert!(!SealOptions::is_writable(""));
    /// ```
    pub fn is_writable(value: &str) -> bool {
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
#[derive(Clone)]
pub struct Header {
    alg: KeyAlgorithm,
    enc: ContentEncryption,
    kid: Option<Arc<str>>,
    typ: Option<Arc<str>>,
    cty: Option<Arc<str>>,
    iv: Option<String>,
    tag: Option<String>,
    /// The members in the order the token had them, for `to_json`.
    order: [Member; 7],
    members: u8,
    /// Built on first use: opening never needs it.
    json: OnceLock<Map<String, Value>>,
}

/// The members a header may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Alg,
    Enc,
    Kid,
    Typ,
    Cty,
    Iv,
    Tag,
}

impl Member {
    fn from_name(name: &str) -> Option<Member> {
        Some(match name {
            "alg" => Member::Alg,
            "enc" => Member::Enc,
            "kid" => Member::Kid,
            "typ" => Member::Typ,
            "cty" => Member::Cty,
            "iv" => Member::Iv,
            "tag" => Member::Tag,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Member::Alg => "alg",
            Member::Enc => "enc",
            Member::Kid => "kid",
            Member::Typ => "typ",
            Member::Cty => "cty",
            Member::Iv => "iv",
            Member::Tag => "tag",
        }
    }
}

impl PartialEq for Header {
    /// Every member is one of these fields, a string, and `alg` and `enc`
    /// map one to one to their names: equal fields are equal JSON objects.
    fn eq(&self, other: &Header) -> bool {
        self.alg == other.alg
            && self.enc == other.enc
            && self.kid == other.kid
            && self.typ == other.typ
            && self.cty == other.cty
            && self.iv == other.iv
            && self.tag == other.tag
    }
}

impl Eq for Header {}

impl Header {
    /// A header with nothing read yet, for the parsers to fill in.
    fn blank(members: u8) -> Header {
        Header {
            alg: KeyAlgorithm::A256Kw,
            enc: ContentEncryption::A256Gcm,
            kid: None,
            typ: None,
            cty: None,
            iv: None,
            tag: None,
            order: [Member::Alg; 7],
            members,
            json: OnceLock::new(),
        }
    }

    /// Whether `iv` and `tag` are both present for AES-GCM key wrapping,
    /// and both absent for every other algorithm.
    fn key_wrap_params_fit(&self) -> bool {
        if self.alg.is_gcm_kw() {
            self.iv.is_some() && self.tag.is_some()
        } else {
            self.iv.is_none() && self.tag.is_none()
        }
    }

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
        self.json.get_or_init(|| {
            let mut json = Map::new();
            for &member in &self.order[..usize::from(self.members)] {
                let value = match member {
                    Member::Alg => Some(self.alg.name()),
                    Member::Enc => Some(self.enc.name()),
                    Member::Kid => self.kid.as_deref(),
                    Member::Typ => self.typ.as_deref(),
                    Member::Cty => self.cty.as_deref(),
                    Member::Iv => self.iv.as_deref(),
                    Member::Tag => self.tag.as_deref(),
                };
                if let Some(value) = value {
                    json.insert(member.name().to_owned(), Value::String(value.to_owned()));
                }
            }
            json
        })
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
    iv: Short,
    ciphertext: Zeroizing<Vec<u8>>,
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
    // decode_slice wants room for (len + 3) / 4 * 3 bytes: 24 fits 32 chars.
    if text.len() <= 32 {
        short.len = URL_SAFE_NO_PAD
            .decode_slice(text.as_bytes(), &mut short.bytes)
            .map_err(|_| ())?;
    } else {
        short.len = b64::decode(text).map_err(|_| ())?.len();
    }
    Ok(short)
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
    key: Weak<Key>,
}

impl Opened {
    pub(crate) fn new(
        header: Header,
        plaintext: Zeroizing<Vec<u8>>,
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
    parse_known(token, options, |_| None)
}

/// [`parse`], with `known` asked first for the header of an encoded
/// protected header this crate wrote itself (see [`HeaderCache::lookup`]):
/// such a header decodes and parses, to exactly that, so both are skipped.
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
    let not_b64 = || Rejection::malformed("part is not canonical base64url");
    let known = known(h);
    // The header is decoded first into a buffer on the stack when it fits.
    let mut stack = [0u8; 384];
    let heap;
    let header_bytes: &[u8] = if known.is_some() {
        &[]
    } else if h.len() <= 512 {
        let len = URL_SAFE_NO_PAD
            .decode_slice(h.as_bytes(), &mut stack)
            .map_err(|_| not_b64())?;
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
    let ciphertext = Zeroizing::new(b64::decode(c).map_err(|_| not_b64())?);
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

/// A string borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The header members of a header that breaks no rule, in order; anything
/// else (not an object, a repeated or unknown member, a value that is not a
/// string) fails, and the full parser then says why.
struct FastHeader<'a>([Option<(Member, Cow<'a, str>)>; 7], u8);

impl<'de> Deserialize<'de> for FastHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FastVisitor;
        impl<'de> Visitor<'de> for FastVisitor {
            type Value = FastHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastHeader<'de>, A::Error> {
                let mut out = FastHeader(Default::default(), 0);
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    let member = Member::from_name(&name)
                        .ok_or_else(|| serde::de::Error::custom("unknown"))?;
                    let Text(value) = map.next_value::<Text<'de>>()?;
                    let count = usize::from(out.1);
                    if count == 7
                        || out.0[..count]
                            .iter()
                            .any(|m| m.as_ref().is_some_and(|(seen, _)| *seen == member))
                    {
                        return Err(serde::de::Error::custom("duplicate"));
                    }
                    out.0[count] = Some((member, value));
                    out.1 += 1;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(FastVisitor)
    }
}

/// The header of a token that breaks no rule, parsed without building a
/// JSON tree; `None` for anything else, which [`parse_header`] then refuses
/// with its precise reason. Whatever this accepts, `parse_header` accepts
/// too, with an equal result.
fn parse_header_fast(bytes: &[u8]) -> Option<Header> {
    let FastHeader(members, count) = serde_json::from_slice(bytes).ok()?;
    let mut header = Header::blank(count);
    let (mut alg, mut enc) = (None, None);
    for (i, (member, value)) in members.into_iter().flatten().enumerate() {
        header.order[i] = member;
        match member {
            Member::Alg => alg = Some(KeyAlgorithm::from_name(&value)?),
            Member::Enc => enc = Some(ContentEncryption::from_name(&value)?),
            Member::Kid => header.kid = Some(Arc::from(value)),
            Member::Typ => header.typ = Some(Arc::from(value)),
            Member::Cty => header.cty = Some(Arc::from(value)),
            Member::Iv => header.iv = Some(value.into_owned()),
            Member::Tag => header.tag = Some(value.into_owned()),
        }
    }
    header.alg = alg?;
    header.enc = enc?;
    if !header.key_wrap_params_fit() {
        return None;
    }
    Some(header)
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
    let mut header = Header::blank(0);
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
            "kid" => header.kid = Some(Arc::from(text()?)),
            "typ" => header.typ = Some(Arc::from(text()?)),
            "cty" => header.cty = Some(Arc::from(text()?)),
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
    if !header.key_wrap_params_fit() {
        return Err(Rejection::malformed(
            "iv and tag belong to AES-GCM key wrapping only",
        ));
    }
    header.json = OnceLock::from(json);
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
    decrypt(parsed, key)
}

/// Decrypts a parsed token with the key its `kid` named, in place.
pub(crate) fn decrypt(
    parsed: Parsed<'_>,
    key: &Key,
) -> Result<(Header, Zeroizing<Vec<u8>>), Rejection> {
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
    gcm_open(cek, iv, header_b64.as_bytes(), &mut ciphertext, tag)
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
            let out = &mut cek[..cek_len];
            let unwrapped = match kek.len() {
                16 => aes_kw::KekAes128::try_from(&kek[..]).map(|k| k.unwrap(ek, out)),
                24 => aes_kw::KekAes192::try_from(&kek[..]).map(|k| k.unwrap(ek, out)),
                _ => aes_kw::KekAes256::try_from(&kek[..]).map(|k| k.unwrap(ek, out)),
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

/// A protected header prepared once for a key and seal options: the JSON
/// up to (not including) its closing brace, and the whole header encoded
/// when it never changes (every algorithm but AES-GCM key wrapping, whose
/// header carries a fresh IV and tag).
#[derive(Debug, Clone)]
pub(crate) struct PreparedHeader {
    json_open: String,
    encoded: Option<String>,
    /// What opening a token with this header parses it to (for AES-GCM key
    /// wrapping, with the IV and tag left to fill in); set when cached.
    parsed: Option<Header>,
}

/// The IV and tag given to the prepared header of AES-GCM key wrapping,
/// to parse it once; each token has its own.
const KW_PARAMS_PLACEHOLDER: &str =
    ",\"iv\":\"AAAAAAAAAAAAAAAA\",\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA\"}";

impl PreparedHeader {
    fn new(key: &Key, options: &SealOptions) -> Result<PreparedHeader, SealError> {
        for (name, value) in [("typ", options.typ()), ("cty", options.cty())] {
            if value.is_some_and(|value| !SealOptions::is_writable(value)) {
                return Err(SealError::InvalidHeader(name));
            }
        }
        let mut json = String::with_capacity(160);
        json.push_str("{\"alg\":\"");
        json.push_str(key.alg().name());
        json.push_str("\",\"enc\":\"");
        json.push_str(key.enc().name());
        json.push_str("\",\"kid\":");
        json.push_str(&Value::String(key.kid().to_owned()).to_string());
        for (name, value) in [("typ", options.typ()), ("cty", options.cty())] {
            if let Some(value) = value {
                json.push_str(",\"");
                json.push_str(name);
                json.push_str("\":\"");
                json.push_str(value);
                json.push('"');
            }
        }
        let encoded = (!key.alg().is_gcm_kw()).then(|| {
            let mut whole = String::with_capacity(json.len() + 1);
            whole.push_str(&json);
            whole.push('}');
            b64::encode(whole.as_bytes())
        });
        Ok(PreparedHeader {
            json_open: json,
            encoded,
            parsed: None,
        })
    }

    /// Parses the header, by the same parser that opens tokens, so a token
    /// with this header opens to exactly what [`header_of`] gives.
    ///
    /// [`header_of`]: PreparedHeader::header_of
    fn with_parsed(mut self) -> PreparedHeader {
        let mut whole = self.json_open.clone();
        whole.push_str(if self.encoded.is_some() {
            "}"
        } else {
            KW_PARAMS_PLACEHOLDER
        });
        self.parsed = parse_header_fast(whole.as_bytes());
        self
    }

    /// The header `encoded` parses to, when it is this one (for AES-GCM key
    /// wrapping: this one with any IV and tag of the right form).
    fn header_of(&self, encoded: &str) -> Option<Header> {
        let parsed = self.parsed.as_ref()?;
        if let Some(mine) = &self.encoded {
            return (mine == encoded).then(|| parsed.clone());
        }
        // `,"iv":"<16 chars>","tag":"<22 chars>"}` after the fixed part.
        let tail_len = KW_PARAMS_PLACEHOLDER.len();
        let len = self.json_open.len() + tail_len;
        if encoded.len() != encoded_len(len) {
            return None;
        }
        let mut stack = [0u8; 384];
        let decoded = stack.get_mut(..len + 2)?;
        let n = URL_SAFE_NO_PAD
            .decode_slice(encoded.as_bytes(), decoded)
            .ok()?;
        let (open, tail) = decoded[..n].split_at_checked(self.json_open.len())?;
        if open != self.json_open.as_bytes() {
            return None;
        }
        let tail = std::str::from_utf8(tail).ok()?;
        let iv = tail.strip_prefix(",\"iv\":\"")?;
        let (iv, rest) = iv.split_at_checked(16)?;
        let tag = rest.strip_prefix("\",\"tag\":\"")?;
        let (tag, rest) = tag.split_at_checked(22)?;
        let b64url = |text: &str| {
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if rest != "\"}" || !b64url(iv) || !b64url(tag) {
            return None;
        }
        let mut header = parsed.clone();
        header.iv = Some(iv.to_owned());
        header.tag = Some(tag.to_owned());
        Some(header)
    }
}

/// Headers prepared for one key, for the first two seal options seen (a
/// keyring seals with one or two: its own and its session manager's).
#[derive(Debug, Default)]
pub(crate) struct HeaderCache {
    slots: [OnceLock<(SealOptions, PreparedHeader)>; 2],
}

impl HeaderCache {
    /// The header `encoded` parses to, when it is one this cache prepared.
    pub(crate) fn lookup(&self, encoded: &str) -> Option<Header> {
        self.slots
            .iter()
            .filter_map(OnceLock::get)
            .find_map(|(_, prepared)| prepared.header_of(encoded))
    }

    fn get(&self, key: &Key, options: &SealOptions) -> Result<Cow<'_, PreparedHeader>, SealError> {
        for slot in &self.slots {
            match slot.get() {
                Some((seen, header)) if seen == options => return Ok(Cow::Borrowed(header)),
                Some(_) => continue,
                None => {
                    let header = PreparedHeader::new(key, options)?.with_parsed();
                    let _ = slot.set((options.clone(), header.clone()));
                    return Ok(Cow::Owned(header));
                }
            }
        }
        PreparedHeader::new(key, options).map(Cow::Owned)
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
fn encoded_len(len: usize) -> usize {
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
            encrypted_key = vec![0u8; cek_len + 8];
            let wrapped =
                match kek.len() {
                    16 => aes_kw::KekAes128::try_from(&kek[..])
                        .map(|k| k.wrap(fresh, &mut encrypted_key)),
                    24 => aes_kw::KekAes192::try_from(&kek[..])
                        .map(|k| k.wrap(fresh, &mut encrypted_key)),
                    _ => aes_kw::KekAes256::try_from(&kek[..])
                        .map(|k| k.wrap(fresh, &mut encrypted_key)),
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
                URL_SAFE_NO_PAD.encode_string(&kw_iv[..IV_LEN], &mut json);
                json.push_str("\",\"tag\":\"");
                URL_SAFE_NO_PAD.encode_string(kw_tag, &mut json);
                json.push('"');
            }
            json.push('}');
            URL_SAFE_NO_PAD.encode_string(json.as_bytes(), &mut token);
        }
    }
    let mut buffer = plaintext.to_vec();
    let tag = gcm_seal(cek, iv, token.as_bytes(), &mut buffer)?;
    for part in [&encrypted_key[..], &iv[..], &buffer, &tag] {
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(part, &mut token);
    }
    Ok(token)
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

    #[test]
    fn prepared_headers_open_to_what_parsing_gives() {
        for alg in [
            KeyAlgorithm::Dir,
            KeyAlgorithm::A128Kw,
            KeyAlgorithm::A256Kw,
            KeyAlgorithm::A128GcmKw,
            KeyAlgorithm::A256GcmKw,
        ] {
            for kid in ["k1", "kid \"quoted\" é"] {
                let Ok(key) = Key::generate(alg).unwrap().with_kid(kid) else {
                    continue;
                };
                let cache = HeaderCache::default();
                for options in [
                    SealOptions::new(),
                    SealOptions::new().with_typ("jwe-session").with_cty("JWT"),
                ] {
                    for _ in 0..2 {
                        let token = seal_cached(&key, b"payload", &options, &cache).unwrap();
                        let h = token.split('.').next().unwrap();
                        let known = cache.lookup(h).expect("a prepared header");
                        let parsed = parse(&token, &OpenOptions::new()).unwrap();
                        assert!(known == *parsed.header(), "{alg:?} {kid}");
                        assert_eq!(known.to_json(), parsed.header().to_json());
                        assert_eq!(
                            known.to_json().keys().collect::<Vec<_>>(),
                            parsed.header().to_json().keys().collect::<Vec<_>>()
                        );
                        let (_, plaintext) =
                            open_with_key(&token, &key, &OpenOptions::new()).unwrap();
                        assert_eq!(&plaintext[..], b"payload");
                        // Any other header is parsed the long way.
                        let mut other = h.to_owned();
                        other.pop();
                        assert!(cache.lookup(&other).is_none());
                        assert!(cache.lookup(&format!("{h}A")).is_none());
                    }
                }
            }
        }
    }

    #[test]
    fn the_fast_header_parser_accepts_only_what_the_strict_one_does_alike() {
        let cases = [
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","typ":"jwe-session"}"#,
            r#"{"kid":"k\u00e9","enc":"A128GCM","alg":"dir","cty":"JWT"}"#,
            r#" { "alg" : "A128GCMKW", "enc":"A256GCM", "iv":"AAAAAAAAAAAAAAAA", "tag":"AAAAAAAAAAAAAAAAAAAAAA" } "#,
            r#"{"\u0061lg":"dir","enc":"A256GCM"}"#,
            r#"{"alg":"dir","enc":"A256GCM","alg":"dir"}"#,
            r#"{"alg":"dir","enc":"A256GCM","kid":7}"#,
            r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#,
            r#"{"alg":"dir","enc":"A256GCM","iv":"AAAAAAAAAAAAAAAA"}"#,
            r#"{"alg":"A128GCMKW","enc":"A256GCM","iv":"AAAAAAAAAAAAAAAA"}"#,
            r#"{"alg":"none","enc":"A256GCM"}"#,
            r#"{"alg":"dir","enc":"A128CBC-HS256"}"#,
            r#"{"alg":"dir"}"#,
            r#"{"alg":"dir","enc":"A256GCM"} x"#,
            r#"["alg","dir"]"#,
            r#"{"alg":"dir","enc":"A256GCM","kid":null}"#,
        ];
        for case in cases {
            let strict = parse_header(case.as_bytes());
            match parse_header_fast(case.as_bytes()) {
                Some(fast) => {
                    let strict = strict.unwrap_or_else(|e| panic!("{case}: {e:?}"));
                    assert!(fast == strict, "{case}");
                    assert_eq!(fast.to_json(), strict.to_json(), "{case}");
                    assert_eq!(
                        fast.to_json().keys().collect::<Vec<_>>(),
                        strict.to_json().keys().collect::<Vec<_>>(),
                        "{case}"
                    );
                }
                None => assert!(strict.is_err(), "{case}"),
            }
        }
    }
}

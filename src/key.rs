//! One key: its `kid`, the one algorithm it is bound to, and its secret
//! material.
//!
//! Secret bytes live in [`zeroize::Zeroizing`] buffers and are wiped when the
//! key is dropped; RSA keys live in OpenSSL, which clears private components
//! when it frees them. `Debug` never prints material, and equality is
//! constant time.

use std::fmt;

use rand_core::{OsRng, RngCore};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::alg::{ContentEncryption, KeyAlgorithm};
use crate::b64;
use crate::error::{KeyError, KeyProblem};

/// The longest `kid` accepted, in bytes.
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) const MAX_KID_LEN: usize = 256;

/// The smallest RSA modulus accepted, in bits.
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) const MIN_RSA_BITS: u32 = 2048;

/// A key bound to exactly one algorithm (RFC 8725 §3.1).
///
/// A `dir` key is bound to its content encryption too (chosen by its length).
/// Key-wrapping and RSA keys open tokens of any AES-GCM content encryption
/// and seal with `A256GCM`.
///
/// ```
/// use jwe_session::{ContentEncryption, Key, KeyAlgorithm};
///
/// # fn main() -> Result<(), jwe_session::KeyError> {
/// let key = Key::generate(KeyAlgorithm::A256Kw)?.with_kid("2026-11")?;
/// assert_eq!(key.kid(), "2026-11");
/// assert_eq!(key.alg(), KeyAlgorithm::A256Kw);
/// assert_eq!(key.enc(), ContentEncryption::A256Gcm);
/// // Debug shows what the key is, never what it holds.
/// assert!(format!("{key:?}").contains("redacted"));
///
/// let dir = Key::symmetric("legacy", KeyAlgorithm::Dir, &[7u8; 16])?;
/// assert_eq!(dir.enc(), ContentEncryption::A128Gcm);
/// # Ok(())
/// # }
/// ```
pub struct Key {
    kid: String,
    alg: KeyAlgorithm,
    enc: ContentEncryption,
    material: Material,
}

pub(crate) enum Material {
    Symmetric(Zeroizing<Vec<u8>>),
    #[cfg(feature = "rsa")]
    Rsa(openssl::pkey::PKey<openssl::pkey::Private>),
}

impl Key {
    /// Generates a key for `alg` from the operating system's random number
    /// generator, with a random `kid`. A `dir` key gets `A256GCM`; RSA keys
    /// (feature `rsa`) have 2048 bits.
    pub fn generate(alg: KeyAlgorithm) -> Result<Key, KeyError> {
        match alg {
            KeyAlgorithm::Dir => Key::generate_dir(ContentEncryption::A256Gcm),
            KeyAlgorithm::RsaOaep | KeyAlgorithm::RsaOaep256 => generate_rsa(random_kid()?, alg),
            _ => {
                let len = alg.symmetric_key_len().unwrap_or(32);
                let secret = random_secret(len)?;
                Key::symmetric(&random_kid()?, alg, &secret)
            }
        }
    }

    /// Generates a `dir` key for the content encryption `enc`, with a random
    /// `kid`.
    ///
    /// ```
    /// use jwe_session::{ContentEncryption, Key, KeyAlgorithm};
    /// let key = Key::generate_dir(ContentEncryption::A128Gcm).unwrap();
    /// assert_eq!((key.alg(), key.enc()), (KeyAlgorithm::Dir, ContentEncryption::A128Gcm));
    /// ```
    pub fn generate_dir(enc: ContentEncryption) -> Result<Key, KeyError> {
        let kid = random_kid()?;
        let secret = random_secret(enc.key_len())?;
        Key::symmetric(&kid, KeyAlgorithm::Dir, &secret)
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Result<Key, KeyError> {
        let kid = kid.into();
        check_kid(&kid)?;
        self.kid = kid;
        Ok(self)
    }

    /// A symmetric key from its bytes. For `dir` the length picks the
    /// content encryption (16, 24 or 32 bytes); for the key-wrapping
    /// algorithms it must match the algorithm. All-zero keys are refused.
    pub fn symmetric(kid: &str, alg: KeyAlgorithm, secret: &[u8]) -> Result<Key, KeyError> {
        check_kid(kid)?;
        let problem = |p| KeyError::new(Some(kid), p);
        let enc = match alg {
            KeyAlgorithm::Dir => ContentEncryption::for_key_len(secret.len()).ok_or_else(|| {
                problem(KeyProblem::WrongLength {
                    alg: alg.name().to_owned(),
                    expected: "16, 24 or 32",
                    actual: secret.len(),
                })
            })?,
            _ => match alg.symmetric_key_len() {
                Some(len) if len == secret.len() => ContentEncryption::A256Gcm,
                Some(len) => {
                    return Err(problem(KeyProblem::WrongLength {
                        alg: alg.name().to_owned(),
                        expected: len_text(len),
                        actual: secret.len(),
                    }))
                }
                None => return Err(problem(KeyProblem::WrongKeyType("oct".to_owned()))),
            },
        };
        if bool::from(secret.ct_eq(&vec![0u8; secret.len()])) {
            return Err(problem(KeyProblem::AllZero));
        }
        Ok(Key {
            kid: kid.to_owned(),
            alg,
            enc,
            material: Material::Symmetric(Zeroizing::new(secret.to_vec())),
        })
    }

    /// Imports a private JWK (RFC 7517) given as JSON text.
    ///
    /// `kid` and `alg` are required. A `dir` key may say `"alg":"dir"` or
    /// name its content encryption (`"alg":"A128GCM"`, as RFC 7520 §5.6 does).
    ///
    /// ```
    /// use jwe_session::{Key, KeyAlgorithm};
    /// let key = Key::from_jwk(r#"{"kty":"oct","kid":"k1","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"}"#).unwrap();
    /// assert_eq!(key.alg(), KeyAlgorithm::A128Kw);
    ///
    /// let err = Key::from_jwk(r#"{"kty":"oct","kid":"k2","alg":"A256KW","k":"GawgguFyGrWKav7AX4VKUg"}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "key \"k2\": A256KW needs a key of 32 bytes, this one has 16");
    /// ```
    pub fn from_jwk(json: &str) -> Result<Key, KeyError> {
        let value = WipedJson(
            serde_json::from_str(json).map_err(|_| KeyError::new(None, KeyProblem::NotJson))?,
        );
        match &value.0 {
            Value::Object(map) => Key::from_jwk_object(map),
            _ => Err(KeyError::new(None, KeyProblem::NotJson)),
        }
    }

    /// Imports a private JWK given as a parsed JSON object.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn from_jwk_object(jwk: &Map<String, Value>) -> Result<Key, KeyError> {
        let JwkHead {
            kid,
            alg,
            dir_enc,
            kty,
        } = jwk_head(jwk)?;
        let problem = |p| KeyError::new(Some(kid), p);
        match (kty, alg.is_rsa()) {
            ("oct", false) => {
                let secret = Zeroizing::new(member_bytes(jwk, "k").map_err(problem)?);
                let key = Key::symmetric(kid, alg, &secret)?;
                if let Some(enc) = dir_enc {
                    if enc != key.enc {
                        return Err(problem(KeyProblem::WrongLength {
                            alg: enc.name().to_owned(),
                            expected: len_text(enc.key_len()),
                            actual: secret.len(),
                        }));
                    }
                }
                Ok(key)
            }
            ("RSA", true) => rsa_from_jwk(kid, alg, jwk),
            (other, _) => Err(problem(KeyProblem::WrongKeyType(
                other.chars().take(16).collect(),
            ))),
        }
    }

    /// Whether the private JWK `jwk` is this very key: a JWK that imports
    /// ([`Key::from_jwk_object`]) into a key with the same `kid`, algorithm
    /// (and for `dir` content encryption) and secret material, compared in
    /// constant time. Reading it costs a base64url decoding, where importing
    /// an RSA key costs OpenSSL's full key check (about 70 ms for 2048 bits,
    /// 0.5 s for 4096): a reloaded key file reuses the keys it already had
    /// this way ([`Keyring::reload_from_file`](crate::Keyring::reload_from_file)).
    /// A key checked when it was imported or generated stays checked; other
    /// material is imported, and checked, as new.
    pub(crate) fn is_jwk_of(&self, jwk: &Map<String, Value>) -> bool {
        let Ok(head) = jwk_head(jwk) else {
            return false;
        };
        if head.kid != self.kid
            || head.alg != self.alg
            || head.dir_enc.is_some_and(|enc| enc != self.enc)
        {
            return false;
        }
        match (&self.material, head.kty) {
            (Material::Symmetric(secret), "oct") => member_bytes(jwk, "k")
                .map(Zeroizing::new)
                .is_ok_and(|k| bool::from(k.ct_eq(secret))),
            #[cfg(feature = "rsa")]
            (Material::Rsa(pkey), "RSA") => rsa_is_jwk_of(pkey, jwk),
            _ => false,
        }
    }

    /// The `kid`, algorithm and content encryption the private JWK `jwk`
    /// would import with, after every check [`Key::from_jwk_object`] makes
    /// but OpenSSL's RSA key check (the consistency of the private
    /// components, primality tests included), which is what costs: for
    /// listing a key file. Nothing here may seal or open.
    pub(crate) fn describe_jwk(
        jwk: &Map<String, Value>,
    ) -> Result<(String, KeyAlgorithm, ContentEncryption), KeyError> {
        let head = jwk_head(jwk)?;
        if head.kty == "RSA" && head.alg.is_rsa() {
            #[cfg(feature = "rsa")]
            {
                rsa_members(head.kid, jwk)?;
                return Ok((head.kid.to_owned(), head.alg, ContentEncryption::A256Gcm));
            }
        }
        // Everything else imports cheaply (and fails as an import would).
        let key = Key::from_jwk_object(jwk)?;
        Ok((key.kid.clone(), key.alg, key.enc))
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one key management algorithm this key may be used with.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The content encryption this key seals with: for `dir` the one it is
    /// bound to, otherwise `A256GCM`.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn enc(&self) -> ContentEncryption {
        self.enc
    }

    /// A fresh key of the same algorithm (and for `dir` the same content
    /// encryption, for RSA the same modulus size) with a random `kid`.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn generate_like(&self) -> Result<Key, KeyError> {
        match &self.material {
            Material::Symmetric(_) if self.alg == KeyAlgorithm::Dir => Key::generate_dir(self.enc),
            Material::Symmetric(_) => Key::generate(self.alg),
            #[cfg(feature = "rsa")]
            Material::Rsa(pkey) => {
                let bits = pkey.bits().max(MIN_RSA_BITS);
                rsa_generate_bits(random_kid()?, self.alg, bits)
            }
        }
    }

    /// Exports the key as a private JWK (JSON text, in a buffer wiped on
    /// drop). It carries the secret: store it like one.
    ///
    /// ```
    /// use jwe_session::{Key, KeyAlgorithm};
    /// let key = Key::generate(KeyAlgorithm::A192GcmKw).unwrap();
    /// let again = Key::from_jwk(&key.to_jwk()).unwrap();
    /// assert_eq!(key, again);
    /// ```
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn to_jwk(&self) -> Zeroizing<String> {
        // Sized up front: growing would free buffers holding the secret
        // without wiping them.
        let mut out = Zeroizing::new(String::with_capacity(self.jwk_capacity()));
        self.write_jwk(&mut out, &[]);
        out
    }

    /// More than the length of the private JWK text, with room for the
    /// keyring's extra members.
    pub(crate) fn jwk_capacity(&self) -> usize {
        let material = match &self.material {
            Material::Symmetric(secret) => secret.len() * 2,
            #[cfg(feature = "rsa")]
            Material::Rsa(pkey) => pkey.size() * 8,
        };
        // The kid may grow sixfold when JSON-escaped (\u00XX).
        256 + self.kid.len() * 6 + material
    }

    /// Writes the private JWK, with `extra` members (already-encoded JSON
    /// values) after the standard ones.
    pub(crate) fn write_jwk(&self, out: &mut String, extra: &[(&str, String)]) {
        let kid = Value::String(self.kid.clone()).to_string();
        match &self.material {
            Material::Symmetric(secret) => {
                let k = Zeroizing::new(b64::encode(secret));
                out.push_str("{\"kty\":\"oct\",\"kid\":");
                out.push_str(&kid);
                out.push_str(",\"alg\":\"");
                out.push_str(self.alg.name());
                out.push_str("\",\"use\":\"enc\",\"k\":\"");
                out.push_str(&k);
                out.push('"');
            }
            #[cfg(feature = "rsa")]
            Material::Rsa(pkey) => {
                out.push_str("{\"kty\":\"RSA\",\"kid\":");
                out.push_str(&kid);
                out.push_str(",\"alg\":\"");
                out.push_str(self.alg.name());
                out.push_str("\",\"use\":\"enc\"");
                if let Ok(rsa) = pkey.rsa() {
                    let parts = [
                        ("n", Some(rsa.n())),
                        ("e", Some(rsa.e())),
                        ("d", Some(rsa.d())),
                        ("p", rsa.p()),
                        ("q", rsa.q()),
                        ("dp", rsa.dmp1()),
                        ("dq", rsa.dmq1()),
                        ("qi", rsa.iqmp()),
                    ];
                    for (name, value) in parts {
                        if let Some(value) = value {
                            let bytes = Zeroizing::new(value.to_vec());
                            let encoded = Zeroizing::new(b64::encode(&bytes));
                            out.push_str(",\"");
                            out.push_str(name);
                            out.push_str("\":\"");
                            out.push_str(&encoded);
                            out.push('"');
                        }
                    }
                }
            }
        }
        for (name, value) in extra {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            out.push_str(value);
        }
        out.push('}');
    }

    pub(crate) fn material(&self) -> &Material {
        &self.material
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("material", &"[redacted]")
            .finish()
    }
}

impl PartialEq for Key {
    /// Constant time in the secret material.
    fn eq(&self, other: &Key) -> bool {
        let same_secret = match (&self.material, &other.material) {
            (Material::Symmetric(a), Material::Symmetric(b)) => bool::from(a.ct_eq(b)),
            #[cfg(feature = "rsa")]
            (Material::Rsa(a), Material::Rsa(b)) => {
                match (a.private_key_to_der(), b.private_key_to_der()) {
                    (Ok(a), Ok(b)) => {
                        let (a, b) = (Zeroizing::new(a), Zeroizing::new(b));
                        bool::from(a.ct_eq(&b))
                    }
                    _ => false,
                }
            }
            #[cfg(feature = "rsa")]
            _ => false,
        };
        same_secret & (self.kid == other.kid) & (self.alg == other.alg) & (self.enc == other.enc)
    }
}

impl Eq for Key {}

/// Parsed JSON holding key material: every string in it is wiped on drop.
pub(crate) struct WipedJson(pub(crate) Value);

impl Drop for WipedJson {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            match value {
                Value::String(text) => zeroize::Zeroize::zeroize(text),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// Fills a fresh secret buffer from the operating system's RNG.
pub(crate) fn random_secret(len: usize) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut secret = Zeroizing::new(vec![0u8; len]);
    OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|_| KeyError::new(None, KeyProblem::Random))?;
    Ok(secret)
}

/// A random `kid`: 12 random bytes, base64url (16 characters).
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) fn random_kid() -> Result<String, KeyError> {
    b64::random::<12>().ok_or_else(|| KeyError::new(None, KeyProblem::Random))
}

/// A key length the algorithms accept, as the text of an error.
fn len_text(len: usize) -> &'static str {
    match len {
        16 => "16",
        24 => "24",
        _ => "32",
    }
}

/// What a private JWK says before its material, checked: `kid`, the
/// algorithm it is bound to, `use`/`key_ops`, `kty`.
struct JwkHead<'a> {
    kid: &'a str,
    alg: KeyAlgorithm,
    /// For a `dir` key named by its content encryption (`"alg":"A128GCM"`).
    dir_enc: Option<ContentEncryption>,
    kty: &'a str,
}

fn jwk_head(jwk: &Map<String, Value>) -> Result<JwkHead<'_>, KeyError> {
    let kid = match jwk.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.as_str(),
        Some(Value::String(_)) | None => return Err(KeyError::new(None, KeyProblem::MissingKid)),
        Some(_) => return Err(KeyError::new(None, KeyProblem::InvalidMember("kid"))),
    };
    check_kid(kid)?;
    let problem = |p| KeyError::new(Some(kid), p);
    let alg_name = match jwk.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        None => return Err(problem(KeyProblem::MissingAlg)),
        Some(_) => return Err(problem(KeyProblem::InvalidMember("alg"))),
    };
    let (alg, dir_enc) = match (
        KeyAlgorithm::from_name(alg_name),
        ContentEncryption::from_name(alg_name),
    ) {
        (Some(alg), _) => (alg, None),
        (None, Some(enc)) => (KeyAlgorithm::Dir, Some(enc)),
        (None, None) => {
            return Err(problem(KeyProblem::UnsupportedAlg(
                alg_name.chars().take(32).collect(),
            )))
        }
    };
    check_use(jwk).map_err(problem)?;
    let kty = match jwk.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        None => return Err(problem(KeyProblem::MissingMember("kty"))),
        Some(_) => return Err(problem(KeyProblem::InvalidMember("kty"))),
    };
    Ok(JwkHead {
        kid,
        alg,
        dir_enc,
        kty,
    })
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    if kid.is_empty() {
        return Err(KeyError::new(None, KeyProblem::MissingKid));
    }
    if kid.len() > MAX_KID_LEN || kid.chars().any(char::is_control) {
        return Err(KeyError::new(None, KeyProblem::InvalidMember("kid")));
    }
    Ok(())
}

fn check_use(jwk: &Map<String, Value>) -> Result<(), KeyProblem> {
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "enc" => {}
        Some(Value::String(_)) => return Err(KeyProblem::WrongUse),
        Some(_) => return Err(KeyProblem::InvalidMember("use")),
    }
    match jwk.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) => {
            let allowed = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];
            if ops
                .iter()
                .any(|op| op.as_str().is_some_and(|op| allowed.contains(&op)))
            {
                Ok(())
            } else {
                Err(KeyProblem::WrongUse)
            }
        }
        Some(_) => Err(KeyProblem::InvalidMember("key_ops")),
    }
}

fn member_bytes(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyProblem> {
    match jwk.get(name) {
        Some(Value::String(text)) => b64::decode(text).map_err(|_| KeyProblem::InvalidMember(name)),
        None => Err(KeyProblem::MissingMember(name)),
        Some(_) => Err(KeyProblem::InvalidMember(name)),
    }
}

#[cfg(not(feature = "rsa"))]
fn rsa_from_jwk(kid: &str, _alg: KeyAlgorithm, _jwk: &Map<String, Value>) -> Result<Key, KeyError> {
    Err(KeyError::new(Some(kid), KeyProblem::RsaFeatureDisabled))
}

#[cfg(not(feature = "rsa"))]
fn generate_rsa(kid: String, _alg: KeyAlgorithm) -> Result<Key, KeyError> {
    Err(KeyError::new(Some(&kid), KeyProblem::RsaFeatureDisabled))
}

#[cfg(feature = "rsa")]
fn generate_rsa(kid: String, alg: KeyAlgorithm) -> Result<Key, KeyError> {
    rsa_generate_bits(kid, alg, MIN_RSA_BITS)
}

#[cfg(feature = "rsa")]
fn rsa_generate_bits(kid: String, alg: KeyAlgorithm, bits: u32) -> Result<Key, KeyError> {
    let rsa = openssl::rsa::Rsa::generate(bits)
        .map_err(|_| KeyError::new(Some(&kid), KeyProblem::Random))?;
    let pkey = openssl::pkey::PKey::from_rsa(rsa)
        .map_err(|_| KeyError::new(Some(&kid), KeyProblem::InvalidRsaKey))?;
    Ok(Key {
        kid,
        alg,
        enc: ContentEncryption::A256Gcm,
        material: Material::Rsa(pkey),
    })
}

/// The members of a private RSA JWK, in the order OpenSSL takes them.
#[cfg(feature = "rsa")]
const RSA_MEMBERS: [&str; 8] = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];

/// The members of a private RSA JWK as big-endian bytes (wiped on drop),
/// each present, valid base64url and not empty, with a modulus of at least
/// [`MIN_RSA_BITS`] bits.
#[cfg(feature = "rsa")]
fn rsa_members(kid: &str, jwk: &Map<String, Value>) -> Result<[Zeroizing<Vec<u8>>; 8], KeyError> {
    let problem = |p| KeyError::new(Some(kid), p);
    let mut members: [Zeroizing<Vec<u8>>; 8] = Default::default();
    for (name, bytes) in RSA_MEMBERS.into_iter().zip(&mut members) {
        *bytes = Zeroizing::new(member_bytes(jwk, name).map_err(problem)?);
        if bytes.is_empty() {
            return Err(problem(KeyProblem::InvalidMember(name)));
        }
        if name == "n" {
            let bits = match bytes.iter().position(|&b| b != 0) {
                Some(first) => {
                    (bytes.len() - first - 1) * 8 + (8 - bytes[first].leading_zeros() as usize)
                }
                None => 0,
            };
            let bits = u32::try_from(bits).unwrap_or(u32::MAX);
            if bits < MIN_RSA_BITS {
                return Err(problem(KeyProblem::RsaTooSmall { bits }));
            }
        }
    }
    Ok(members)
}

/// Whether `jwk` holds the private components of `pkey`, every one
/// compared in constant time (leading zero bytes aside).
#[cfg(feature = "rsa")]
fn rsa_is_jwk_of(
    pkey: &openssl::pkey::PKey<openssl::pkey::Private>,
    jwk: &Map<String, Value>,
) -> bool {
    let Ok(rsa) = pkey.rsa() else {
        return false;
    };
    let ours = [
        Some(rsa.n()),
        Some(rsa.e()),
        Some(rsa.d()),
        rsa.p(),
        rsa.q(),
        rsa.dmp1(),
        rsa.dmq1(),
        rsa.iqmp(),
    ];
    let mut same = subtle::Choice::from(1);
    for (name, ours) in RSA_MEMBERS.into_iter().zip(ours) {
        let (Some(ours), Ok(theirs)) = (ours, member_bytes(jwk, name)) else {
            return false;
        };
        let (ours, theirs) = (Zeroizing::new(ours.to_vec()), Zeroizing::new(theirs));
        let start = theirs.iter().position(|&b| b != 0).unwrap_or(theirs.len());
        same &= theirs[start..].ct_eq(&ours);
    }
    bool::from(same)
}

#[cfg(all(test, feature = "rsa"))]
thread_local! {
    /// How many RSA keys this thread has imported (checked), for tests.
    pub(crate) static RSA_IMPORTS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[cfg(feature = "rsa")]
fn rsa_from_jwk(kid: &str, alg: KeyAlgorithm, jwk: &Map<String, Value>) -> Result<Key, KeyError> {
    use openssl::bn::BigNum;

    #[cfg(test)]
    RSA_IMPORTS.with(|n| n.set(n.get() + 1));
    let problem = |p| KeyError::new(Some(kid), p);
    let members = rsa_members(kid, jwk)?;
    let mut numbers = Vec::with_capacity(members.len());
    for (name, bytes) in RSA_MEMBERS.into_iter().zip(&members) {
        numbers
            .push(BigNum::from_slice(bytes).map_err(|_| problem(KeyProblem::InvalidMember(name)))?);
    }
    let [n, e, d, p, q, dp, dq, qi]: [BigNum; 8] = numbers
        .try_into()
        .map_err(|_| problem(KeyProblem::InvalidRsaKey))?;
    let rsa = openssl::rsa::Rsa::from_private_components(n, e, d, p, q, dp, dq, qi)
        .map_err(|_| problem(KeyProblem::InvalidRsaKey))?;
    if !rsa.check_key().unwrap_or(false) {
        return Err(problem(KeyProblem::InvalidRsaKey));
    }
    let pkey =
        openssl::pkey::PKey::from_rsa(rsa).map_err(|_| problem(KeyProblem::InvalidRsaKey))?;
    Ok(Key {
        kid: kid.to_owned(),
        alg,
        enc: ContentEncryption::A256Gcm,
        material: Material::Rsa(pkey),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_B64: &str = "GawgguFyGrWKav7AX4VKUg";

    fn oct(kid: &str, alg: &str, k: &str) -> String {
        format!(r#"{{"kty":"oct","kid":"{kid}","alg":"{alg}","k":"{k}"}}"#)
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Key::from_jwk(&oct("k", "A128KW", SECRET_B64)).unwrap();
        let secret = b64::decode(SECRET_B64).unwrap();
        let debug = format!("{key:?} {key:#?}");
        assert!(debug.contains("redacted"));
        assert!(!debug.contains(SECRET_B64));
        // No rendering of the bytes either, in decimal or hex.
        assert!(!debug.contains(&format!("{secret:?}")));
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.to_lowercase().contains(&hex));
    }

    #[test]
    fn refuses_bad_keys_naming_the_kid_without_material() {
        let cases = [
            (oct("short", "A256KW", SECRET_B64), "needs a key of 32 bytes"),
            (oct("zero", "A128KW", "AAAAAAAAAAAAAAAAAAAAAA"), "all zero"),
            (oct("odd", "dir", "AAEC"), "16, 24 or 32"),
            (oct("none", "none", SECRET_B64), "unsupported \"alg\""),
            (oct("rsa15", "RSA1_5", SECRET_B64), "unsupported \"alg\""),
            (oct("pbes", "PBES2-HS256+A128KW", SECRET_B64), "unsupported \"alg\""),
            (oct("padded", "A128KW", "GawgguFyGrWKav7AX4VKUg=="), "\"k\" is not valid"),
            (
                r#"{"kty":"oct","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"}"#.to_owned(),
                "missing \"kid\"",
            ),
            (
                r#"{"kty":"oct","kid":"noalg","k":"GawgguFyGrWKav7AX4VKUg"}"#.to_owned(),
                "missing \"alg\"",
            ),
            (
                r#"{"kty":"oct","kid":"sig","alg":"A128KW","use":"sig","k":"GawgguFyGrWKav7AX4VKUg"}"#
                    .to_owned(),
                "do not allow encryption",
            ),
            (
                r#"{"kty":"EC","kid":"ec","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"}"#.to_owned(),
                "does not fit",
            ),
            (oct("gcm", "A256GCM", SECRET_B64), "A256GCM needs a key of 32 bytes"),
        ];
        for (jwk, expected) in cases {
            let err = Key::from_jwk(&jwk).unwrap_err().to_string();
            assert!(err.contains(expected), "{jwk}: {err}");
            assert!(!err.contains(SECRET_B64), "{err}");
            if let Some(kid) = serde_json::from_str::<Value>(&jwk).unwrap()["kid"].as_str() {
                assert!(err.contains(kid), "{err} should name {kid}");
            }
        }
    }

    #[test]
    fn exported_jwk_text_never_reallocates() {
        for alg in KeyAlgorithm::ALL {
            let Ok(key) = Key::generate(alg) else {
                continue; // RSA without the feature
            };
            let key = key.with_kid("k\"\\é/<>").unwrap();
            let expected = String::with_capacity(key.jwk_capacity()).capacity();
            assert_eq!(key.to_jwk().capacity(), expected, "{alg}");
        }
    }

    #[test]
    fn dir_key_may_name_its_content_encryption() {
        let key = Key::from_jwk(&oct("d", "A128GCM", SECRET_B64)).unwrap();
        assert_eq!(key.alg(), KeyAlgorithm::Dir);
        assert_eq!(key.enc(), ContentEncryption::A128Gcm);
        let key = Key::from_jwk(&oct("d", "dir", SECRET_B64)).unwrap();
        assert_eq!(key.enc(), ContentEncryption::A128Gcm);
    }

    #[test]
    fn jwk_round_trip_and_equality() {
        for alg in KeyAlgorithm::ALL.into_iter().filter(|a| !a.is_rsa()) {
            let key = Key::generate(alg).unwrap();
            let again = Key::from_jwk(&key.to_jwk()).unwrap();
            assert_eq!(key, again, "{alg}");
            let other = Key::generate(alg).unwrap().with_kid(key.kid()).unwrap();
            assert_ne!(key, other, "{alg}");
        }
    }

    #[cfg(feature = "rsa")]
    #[test]
    fn rsa_keys_round_trip_and_small_ones_are_refused() {
        let key = Key::generate(KeyAlgorithm::RsaOaep256).unwrap();
        let again = Key::from_jwk(&key.to_jwk()).unwrap();
        assert_eq!(key, again);
        let debug = format!("{key:?}");
        assert!(!debug.contains("BEGIN") && debug.contains("redacted"));

        let small = openssl::rsa::Rsa::generate(1024).unwrap();
        let b = |n: &openssl::bn::BigNumRef| b64::encode(&n.to_vec());
        let jwk = serde_json::json!({
            "kty": "RSA", "kid": "small", "alg": "RSA-OAEP",
            "n": b(small.n()), "e": b(small.e()), "d": b(small.d()),
            "p": b(small.p().unwrap()), "q": b(small.q().unwrap()),
            "dp": b(small.dmp1().unwrap()), "dq": b(small.dmq1().unwrap()),
            "qi": b(small.iqmp().unwrap()),
        });
        let err = Key::from_jwk(&jwk.to_string()).unwrap_err();
        assert_eq!(err.problem(), &KeyProblem::RsaTooSmall { bits: 1024 });
        assert!(err.to_string().contains("small"));
    }
}

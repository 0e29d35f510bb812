//! Published test vectors (RFC 7516 Appendix A, RFC 7520 Section 5), from
//! `tests/data/*.json`. Vectors marked `open` must decrypt to the published
//! plaintext exactly; vectors marked `reject` use an algorithm outside the
//! allowlist and must be refused as malformed, even by a keyring that holds
//! a key under the header's `kid`.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{
    jwe, ContentEncryption, Key, KeyAlgorithm, KeyState, Keyring, OpenOptions, Rejection,
    RejectionKind,
};
use serde_json::{Map, Value};

struct Vector {
    file: String,
    key: Map<String, Value>,
    protected_header: Map<String, Value>,
    compact: String,
    plaintext: String,
    expect: String,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn load_all() -> Vec<Vector> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files.iter().map(|path| parse_vector(path)).collect()
}

fn parse_vector(path: &Path) -> Vector {
    let text = std::fs::read_to_string(path).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let field = |name: &str| -> &Value {
        value
            .get(name)
            .unwrap_or_else(|| panic!("{}: no {name}", path.display()))
    };
    Vector {
        file: path.file_name().unwrap().to_string_lossy().into_owned(),
        key: field("key").as_object().unwrap().clone(),
        protected_header: field("protected_header").as_object().unwrap().clone(),
        compact: field("compact").as_str().unwrap().to_owned(),
        plaintext: field("plaintext").as_str().unwrap().to_owned(),
        expect: field("expect").as_str().unwrap().to_owned(),
    }
}

fn load(file: &str) -> Vector {
    parse_vector(&data_dir().join(file))
}

/// The vector's JWK with `kid` and `alg` set (added where the published JWK
/// lacks them, or `alg` replaced by an allowed one).
fn jwk_with(vector: &Vector, kid: &str, alg: &str) -> Map<String, Value> {
    let mut jwk = vector.key.clone();
    jwk.insert("kid".into(), Value::String(kid.into()));
    jwk.insert("alg".into(), Value::String(alg.into()));
    jwk
}

fn import(vector: &Vector, kid: &str, alg: &str) -> Key {
    Key::from_jwk_object(&jwk_with(vector, kid, alg))
        .unwrap_or_else(|e| panic!("{}: key import failed: {e}", vector.file))
}

fn header_kid(vector: &Vector) -> Option<String> {
    vector
        .protected_header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Opens an `open` vector with its own key, directly and (when the header
/// names a kid) through a keyring holding only that key.
fn assert_opens(vector: &Vector, key: Key) {
    assert_eq!(vector.expect, "open", "{}", vector.file);
    let (header, plaintext) = jwe::open_with_key(&vector.compact, &key, &OpenOptions::new())
        .unwrap_or_else(|e| panic!("{}: {:?}", vector.file, e));
    assert_eq!(
        &plaintext[..],
        vector.plaintext.as_bytes(),
        "{}: plaintext differs",
        vector.file
    );
    assert_eq!(
        Value::Object(header.to_json().clone()),
        Value::Object(vector.protected_header.clone()),
        "{}: header",
        vector.file
    );
    assert_eq!(header.alg(), key.alg(), "{}", vector.file);

    if let Some(kid) = header_kid(vector) {
        let keyring = Keyring::new(key);
        let opened = keyring
            .open(&vector.compact)
            .unwrap_or_else(|e| panic!("{}: keyring: {:?}", vector.file, e));
        assert_eq!(opened.plaintext(), vector.plaintext.as_bytes());
        assert_eq!(opened.kid(), kid);
        assert_eq!(opened.key_state(), KeyState::Primary);
    }
}

/// A reject vector must be refused as malformed, by a keyring that holds
/// `key` (so the refusal is not merely "unknown kid"), and directly with
/// `open_with_key`. The reason must be one of `reasons`.
fn assert_rejected(vector: &Vector, key: Key, reasons: &[&str]) {
    assert_eq!(vector.expect, "reject", "{}", vector.file);
    let check = |rejection: &Rejection, how: &str| {
        assert_eq!(
            rejection.kind(),
            RejectionKind::Malformed,
            "{} ({how}): {:?}",
            vector.file,
            rejection
        );
        assert!(
            reasons.iter().any(|r| rejection.reason().contains(r)),
            "{} ({how}): reason {:?} is none of {:?}",
            vector.file,
            rejection.reason(),
            reasons
        );
    };
    let err = jwe::open_with_key(&vector.compact, &key, &OpenOptions::new()).unwrap_err();
    check(&err, "open_with_key");
    let err = jwe::parse(&vector.compact, &OpenOptions::new()).unwrap_err();
    check(&err, "parse");

    if let Some(kid) = header_kid(vector) {
        assert_eq!(
            key.kid(),
            kid,
            "{}: the keyring must hold the kid",
            vector.file
        );
    }
    let keyring = Keyring::new(key);
    // The key is usable: a token it seals opens.
    let token = keyring.seal(b"sanity").unwrap();
    assert_eq!(keyring.open(&token).unwrap().plaintext(), b"sanity");
    let err = keyring.open(&vector.compact).unwrap_err();
    check(&err, "keyring");
}

/// A key the vector's `kid` names, of an allowed algorithm, for vectors
/// whose own key cannot be imported (EC, password).
fn stand_in_key(vector: &Vector) -> Key {
    let key = Key::generate(KeyAlgorithm::A256Kw).unwrap();
    match header_kid(vector) {
        Some(kid) => key.with_kid(kid).unwrap(),
        None => key,
    }
}

#[test]
fn every_vector_is_present_and_consistent() {
    let expected = [
        ("rfc7516_a1.json", "open"),
        ("rfc7516_a2.json", "reject"),
        ("rfc7516_a3.json", "reject"),
        ("rfc7520_5_1.json", "reject"),
        ("rfc7520_5_2.json", "open"),
        ("rfc7520_5_3.json", "reject"),
        ("rfc7520_5_4.json", "reject"),
        ("rfc7520_5_5.json", "reject"),
        ("rfc7520_5_6.json", "open"),
        ("rfc7520_5_7.json", "reject"),
        ("rfc7520_5_8.json", "open"),
        ("rfc7520_5_9.json", "reject"),
    ];
    let vectors = load_all();
    let found: Vec<(&str, &str)> = vectors
        .iter()
        .map(|v| (v.file.as_str(), v.expect.as_str()))
        .collect();
    assert_eq!(found, expected);
    for vector in &vectors {
        // The compact form's first part decodes to the published header.
        let first = vector.compact.split('.').next().unwrap();
        let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", vector.file));
        assert_eq!(
            decoded,
            Value::Object(vector.protected_header.clone()),
            "{}",
            vector.file
        );
        assert_eq!(vector.compact.split('.').count(), 5, "{}", vector.file);
    }
}

#[test]
fn rfc7520_5_6_dir_a128gcm_opens() {
    let vector = load("rfc7520_5_6.json");
    // The published JWK names its content encryption as its alg.
    let key = Key::from_jwk_object(&vector.key).unwrap();
    assert_eq!(key.alg(), KeyAlgorithm::Dir);
    assert_eq!(key.enc(), ContentEncryption::A128Gcm);
    assert_opens(&vector, key);
    // The same key written with "alg":"dir" opens it too.
    assert_opens(
        &vector,
        import(&vector, "77c7e2b8-6e13-45cf-8672-617b5b45243a", "dir"),
    );
}

#[test]
fn rfc7520_5_8_a128kw_a128gcm_opens() {
    let vector = load("rfc7520_5_8.json");
    let key = Key::from_jwk_object(&vector.key).unwrap();
    assert_eq!(key.alg(), KeyAlgorithm::A128Kw);
    assert_opens(&vector, key);
}

#[cfg(feature = "rsa")]
#[test]
fn rfc7520_5_2_rsa_oaep_a256gcm_opens() {
    let vector = load("rfc7520_5_2.json");
    let key = Key::from_jwk_object(&vector.key).unwrap();
    assert_eq!(key.alg(), KeyAlgorithm::RsaOaep);
    assert_opens(&vector, key);
}

#[cfg(feature = "rsa")]
#[test]
fn rfc7516_a1_rsa_oaep_a256gcm_opens_with_key() {
    let vector = load("rfc7516_a1.json");
    assert!(header_kid(&vector).is_none());
    let key = import(&vector, "rfc7516-a1", "RSA-OAEP");
    assert_opens(&vector, import(&vector, "rfc7516-a1", "RSA-OAEP"));
    // A keyring always needs a kid to pick the key.
    let err = Keyring::new(key).open(&vector.compact).unwrap_err();
    assert_eq!(err.kind(), RejectionKind::Malformed);
    assert!(err.reason().contains("kid"), "{}", err.reason());
}

#[cfg(feature = "rsa")]
#[test]
fn rfc7516_a1_key_bound_to_rsa_oaep_256_does_not_open_it() {
    let vector = load("rfc7516_a1.json");
    let key = import(&vector, "rfc7516-a1", "RSA-OAEP-256");
    let err = jwe::open_with_key(&vector.compact, &key, &OpenOptions::new()).unwrap_err();
    assert_eq!(err.kind(), RejectionKind::DecryptFailed);
}

#[test]
fn rfc7516_a2_rsa1_5_is_rejected() {
    let vector = load("rfc7516_a2.json");
    #[cfg(feature = "rsa")]
    let key = import(&vector, "rfc7516-a2", "RSA-OAEP");
    #[cfg(not(feature = "rsa"))]
    let key = stand_in_key(&vector);
    assert_rejected(&vector, key, &["alg not supported"]);
}

#[test]
fn rfc7516_a3_a128cbc_hs256_is_rejected() {
    let vector = load("rfc7516_a3.json");
    let key = import(&vector, "rfc7516-a3", "A128KW");
    assert_rejected(&vector, key, &["enc not supported"]);
}

#[test]
fn rfc7520_5_1_rsa1_5_is_rejected() {
    let vector = load("rfc7520_5_1.json");
    #[cfg(feature = "rsa")]
    let key = import(&vector, "frodo.baggins@hobbiton.example", "RSA-OAEP");
    #[cfg(not(feature = "rsa"))]
    let key = stand_in_key(&vector);
    assert_rejected(&vector, key, &["alg not supported"]);
}

#[test]
fn rfc7520_5_3_pbes2_is_rejected() {
    let vector = load("rfc7520_5_3.json");
    // The header carries p2s and p2c, PBES2's own members: refusing them as
    // unknown members or refusing the alg are both the right refusal.
    assert_rejected(
        &vector,
        stand_in_key(&vector),
        &["alg not supported", "unknown header member"],
    );
}

#[test]
fn rfc7520_5_4_ecdh_es_a128kw_is_rejected() {
    let vector = load("rfc7520_5_4.json");
    // The header carries epk, ECDH-ES's own member.
    assert_rejected(
        &vector,
        stand_in_key(&vector),
        &["alg not supported", "unknown header member"],
    );
}

#[test]
fn rfc7520_5_5_ecdh_es_is_rejected() {
    let vector = load("rfc7520_5_5.json");
    assert_rejected(
        &vector,
        stand_in_key(&vector),
        &["alg not supported", "unknown header member"],
    );
}

#[test]
fn rfc7520_5_7_a256gcmkw_a128cbc_hs256_is_rejected() {
    let vector = load("rfc7520_5_7.json");
    let key = Key::from_jwk_object(&vector.key).unwrap();
    assert_eq!(key.alg(), KeyAlgorithm::A256GcmKw);
    assert_rejected(&vector, key, &["enc not supported"]);
}

#[test]
fn rfc7520_5_9_zip_is_rejected() {
    let vector = load("rfc7520_5_9.json");
    let key = Key::from_jwk_object(&vector.key).unwrap();
    // The very same key opens §5.8, which differs only by the lack of zip.
    let plain = load("rfc7520_5_8.json");
    let keyring = Keyring::new(Key::from_jwk_object(&vector.key).unwrap());
    assert_eq!(
        keyring.open(&plain.compact).unwrap().plaintext(),
        plain.plaintext.as_bytes()
    );
    assert_rejected(&vector, key, &["zip"]);
}

#[test]
fn every_reject_vector_is_rejected_as_malformed_by_a_keyring() {
    // A sweep over all files, so a vector added later is covered too.
    for vector in load_all().iter().filter(|v| v.expect == "reject") {
        let keyring = Keyring::new(stand_in_key(vector));
        let err = keyring.open(&vector.compact).unwrap_err();
        assert_eq!(err.kind(), RejectionKind::Malformed, "{}", vector.file);
    }
}

//! Interoperability with josekit (an independent, OpenSSL-based JOSE
//! implementation): tokens sealed here open there, and tokens sealed there
//! (with a `kid`) open here through a keyring, for every supported pair.
//! Keys cross over as the JWK `Key::to_jwk` exports.
//!
//! In its own package (`compat/`, its own workspace) because josekit turns
//! on serde_json's `preserve_order`, which must not reach the main crate's
//! tests and benchmarks. jwe-session is built with `rsa` here.

use josekit::jwe::{
    JweDecrypter, JweEncrypter, JweHeader, A128GCMKW, A128KW, A192GCMKW, A192KW, A256GCMKW, A256KW,
};
use josekit::jwk::Jwk;
use jwe_session::{
    jwe, ContentEncryption, Key, KeyAlgorithm, KeyState, Keyring, OpenOptions, SealOptions,
};

fn payloads() -> Vec<Vec<u8>> {
    vec![
        br#"{"sub":"alice","roles":["admin"],"exp":1700000000}"#.to_vec(),
        b"x".to_vec(),
        (0..=255u8).collect(),
        "s\u{e9}ssion \u{2013} \u{1f36a}".as_bytes().to_vec(),
        vec![0x5a; 3000],
    ]
}

fn josekit_jwk(key: &Key) -> Jwk {
    Jwk::from_bytes(key.to_jwk().as_bytes()).expect("josekit reads our JWK")
}

fn decrypter(key: &Key) -> Box<dyn JweDecrypter> {
    let jwk = josekit_jwk(key);
    let result: Result<Box<dyn JweDecrypter>, josekit::JoseError> = match key.alg() {
        KeyAlgorithm::Dir => josekit::jwe::Dir
            .decrypter_from_jwk(&jwk)
            .map(|d| Box::new(d) as _),
        KeyAlgorithm::A128Kw => A128KW.decrypter_from_jwk(&jwk).map(|d| Box::new(d) as _),
        KeyAlgorithm::A192Kw => A192KW.decrypter_from_jwk(&jwk).map(|d| Box::new(d) as _),
        KeyAlgorithm::A256Kw => A256KW.decrypter_from_jwk(&jwk).map(|d| Box::new(d) as _),
        KeyAlgorithm::A128GcmKw => A128GCMKW.decrypter_from_jwk(&jwk).map(|d| Box::new(d) as _),
        KeyAlgorithm::A192GcmKw => A192GCMKW.decrypter_from_jwk(&jwk).map(|d| Box::new(d) as _),
        KeyAlgorithm::A256GcmKw => A256GCMKW.decrypter_from_jwk(&jwk).map(|d| Box::new(d) as _),
        KeyAlgorithm::RsaOaep => josekit::jwe::RSA_OAEP
            .decrypter_from_jwk(&jwk)
            .map(|d| Box::new(d) as _),
        KeyAlgorithm::RsaOaep256 => josekit::jwe::RSA_OAEP_256
            .decrypter_from_jwk(&jwk)
            .map(|d| Box::new(d) as _),
        other => panic!("no josekit decrypter for {other}"),
    };
    result.unwrap_or_else(|e| panic!("{}: {e}", key.alg()))
}

fn encrypter(key: &Key) -> Box<dyn JweEncrypter> {
    let jwk = josekit_jwk(key);
    let result: Result<Box<dyn JweEncrypter>, josekit::JoseError> = match key.alg() {
        KeyAlgorithm::Dir => josekit::jwe::Dir
            .encrypter_from_jwk(&jwk)
            .map(|e| Box::new(e) as _),
        KeyAlgorithm::A128Kw => A128KW.encrypter_from_jwk(&jwk).map(|e| Box::new(e) as _),
        KeyAlgorithm::A192Kw => A192KW.encrypter_from_jwk(&jwk).map(|e| Box::new(e) as _),
        KeyAlgorithm::A256Kw => A256KW.encrypter_from_jwk(&jwk).map(|e| Box::new(e) as _),
        KeyAlgorithm::A128GcmKw => A128GCMKW.encrypter_from_jwk(&jwk).map(|e| Box::new(e) as _),
        KeyAlgorithm::A192GcmKw => A192GCMKW.encrypter_from_jwk(&jwk).map(|e| Box::new(e) as _),
        KeyAlgorithm::A256GcmKw => A256GCMKW.encrypter_from_jwk(&jwk).map(|e| Box::new(e) as _),
        KeyAlgorithm::RsaOaep => josekit::jwe::RSA_OAEP
            .encrypter_from_jwk(&jwk)
            .map(|e| Box::new(e) as _),
        KeyAlgorithm::RsaOaep256 => josekit::jwe::RSA_OAEP_256
            .encrypter_from_jwk(&jwk)
            .map(|e| Box::new(e) as _),
        other => panic!("no josekit encrypter for {other}"),
    };
    result.unwrap_or_else(|e| panic!("{}: {e}", key.alg()))
}

/// Seals with jwe-session (both `jwe::seal` and `Keyring::seal`), opens with
/// josekit.
fn us_to_josekit(key: Key) {
    let alg = key.alg();
    let enc = key.enc();
    let kid = key.kid().to_owned();
    let decrypter = decrypter(&key);
    let keyring = Keyring::new(Key::from_jwk(&key.to_jwk()).unwrap());
    for payload in payloads() {
        let direct = jwe::seal(&key, &payload, &SealOptions::new().with_typ("JWE")).unwrap();
        let ringed = keyring.seal(&payload).unwrap();
        for token in [direct, ringed] {
            let (plaintext, header) = josekit::jwe::deserialize_compact(&token, &*decrypter)
                .unwrap_or_else(|e| panic!("{alg}/{enc}: josekit refused our token: {e}"));
            assert_eq!(plaintext, payload, "{alg}/{enc}");
            assert_eq!(header.algorithm(), Some(alg.name()));
            assert_eq!(header.content_encryption(), Some(enc.name()));
            assert_eq!(header.key_id(), Some(kid.as_str()));
        }
    }
}

/// Seals with josekit (header with `kid` and `enc`), opens with a
/// jwe-session keyring holding the key (and with `open_with_key`).
fn josekit_to_us(key: Key, enc: ContentEncryption) {
    let alg = key.alg();
    let kid = key.kid().to_owned();
    let encrypter = encrypter(&key);
    let keyring = Keyring::new(Key::from_jwk(&key.to_jwk()).unwrap());
    for payload in payloads() {
        let mut header = JweHeader::new();
        header.set_content_encryption(enc.name());
        header.set_key_id(kid.clone());
        let token = josekit::jwe::serialize_compact(&payload, &header, &*encrypter)
            .unwrap_or_else(|e| panic!("{alg}/{enc}: josekit could not seal: {e}"));
        let opened = keyring
            .open(&token)
            .unwrap_or_else(|e| panic!("{alg}/{enc}: we refused josekit's token: {e:?}"));
        assert_eq!(opened.plaintext(), &payload[..], "{alg}/{enc}");
        assert_eq!(opened.kid(), kid);
        assert_eq!(opened.key_state(), KeyState::Primary);
        assert_eq!(opened.header().alg(), alg);
        assert_eq!(opened.header().enc(), enc);
        let (_, plaintext) = jwe::open_with_key(&token, &key, &OpenOptions::new()).unwrap();
        assert_eq!(&plaintext[..], &payload[..]);
    }
}

const WRAPPING: [KeyAlgorithm; 6] = [
    KeyAlgorithm::A128Kw,
    KeyAlgorithm::A192Kw,
    KeyAlgorithm::A256Kw,
    KeyAlgorithm::A128GcmKw,
    KeyAlgorithm::A192GcmKw,
    KeyAlgorithm::A256GcmKw,
];

#[test]
fn dir_every_enc_us_to_josekit() {
    for enc in ContentEncryption::ALL {
        us_to_josekit(Key::generate_dir(enc).unwrap());
    }
}

#[test]
fn dir_every_enc_josekit_to_us() {
    for enc in ContentEncryption::ALL {
        josekit_to_us(Key::generate_dir(enc).unwrap(), enc);
    }
}

#[test]
fn aes_kw_us_to_josekit() {
    for alg in &WRAPPING[..3] {
        us_to_josekit(Key::generate(*alg).unwrap());
    }
}

#[test]
fn aes_kw_every_enc_josekit_to_us() {
    for alg in &WRAPPING[..3] {
        for enc in ContentEncryption::ALL {
            josekit_to_us(Key::generate(*alg).unwrap(), enc);
        }
    }
}

#[test]
fn aes_gcm_kw_us_to_josekit() {
    for alg in &WRAPPING[3..] {
        us_to_josekit(Key::generate(*alg).unwrap());
    }
}

#[test]
fn aes_gcm_kw_every_enc_josekit_to_us() {
    for alg in &WRAPPING[3..] {
        for enc in ContentEncryption::ALL {
            josekit_to_us(Key::generate(*alg).unwrap(), enc);
        }
    }
}

#[test]
fn imported_keys_interoperate_too() {
    // Keys that come in as JWKs (not generated here) behave the same.
    let key = Key::from_jwk(
        r#"{"kty":"oct","kid":"imported","alg":"A128KW","use":"enc","k":"GZy6sIZ6wl9NJOKB-jnmVQ"}"#,
    )
    .unwrap();
    us_to_josekit(Key::from_jwk(&key.to_jwk()).unwrap());
    josekit_to_us(key, ContentEncryption::A192Gcm);
}

#[test]
fn josekit_token_under_another_key_with_the_same_kid_is_refused() {
    for alg in WRAPPING {
        let ours = Key::generate(alg).unwrap();
        let theirs = Key::generate(alg).unwrap().with_kid(ours.kid()).unwrap();
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_key_id(ours.kid());
        let token = josekit::jwe::serialize_compact(b"x", &header, &*encrypter(&theirs)).unwrap();
        let err = Keyring::new(ours).open(&token).unwrap_err();
        assert_eq!(
            err.kind(),
            jwe_session::RejectionKind::DecryptFailed,
            "{alg}"
        );
    }
}

mod rsa {
    use super::*;

    #[test]
    fn rsa_oaep_both_ways() {
        let key = Key::generate(KeyAlgorithm::RsaOaep).unwrap();
        us_to_josekit(Key::from_jwk(&key.to_jwk()).unwrap());
        for enc in ContentEncryption::ALL {
            josekit_to_us(Key::from_jwk(&key.to_jwk()).unwrap(), enc);
        }
    }

    #[test]
    fn rsa_oaep_256_both_ways() {
        let key = Key::generate(KeyAlgorithm::RsaOaep256).unwrap();
        us_to_josekit(Key::from_jwk(&key.to_jwk()).unwrap());
        for enc in ContentEncryption::ALL {
            josekit_to_us(Key::from_jwk(&key.to_jwk()).unwrap(), enc);
        }
    }

    #[test]
    fn rsa_oaep_key_does_not_open_rsa_oaep_256_tokens() {
        // The same RSA key pair, bound once to each algorithm: a token
        // josekit sealed with RSA-OAEP-256 must not open under the key bound
        // to RSA-OAEP, even though the kid matches.
        let key256 = Key::generate(KeyAlgorithm::RsaOaep256).unwrap();
        let jwk = key256.to_jwk().replace("\"RSA-OAEP-256\"", "\"RSA-OAEP\"");
        let key1 = Key::from_jwk(&jwk).unwrap();
        assert_eq!(key1.alg(), KeyAlgorithm::RsaOaep);
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_key_id(key256.kid());
        let token = josekit::jwe::serialize_compact(b"x", &header, &*encrypter(&key256)).unwrap();
        assert!(Keyring::new(key256).open(&token).is_ok());
        let err = Keyring::new(key1).open(&token).unwrap_err();
        assert_eq!(err.kind(), jwe_session::RejectionKind::DecryptFailed);
    }
}

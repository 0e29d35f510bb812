//! No secret ever shows: not in `Debug` of keys, keyrings, key sets or
//! opened tokens, not in errors about bad keys, and a `Rejection`'s
//! `Display` says only its kind.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwe_session::{
    jwe, ContentEncryption, Error, Key, KeyAlgorithm, Keyring, OpenOptions, Rejection,
    RejectionKind,
};
use serde_json::Value;

/// Every rendering of a secret that must never appear: its base64url and
/// standard base64, lowercase and uppercase hex (plain and `{:x?}`-style),
/// and the decimal `{:?}` of its bytes (also a long prefix of each).
fn renderings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![
        URL_SAFE_NO_PAD.encode(secret),
        STANDARD.encode(secret),
        hex.clone(),
        hex.to_uppercase(),
        format!("{secret:?}"),
        format!("{secret:x?}"),
        format!("{secret:02x?}"),
        format!("{:?}", secret.to_vec()),
    ];
    // Long prefixes catch partial or truncated renderings.
    let prefixes: Vec<String> = out
        .iter()
        .filter(|r| r.len() >= 24)
        .map(|r| {
            let cut = r.len().min(24);
            r[..cut].trim_end_matches([',', ' ']).to_owned()
        })
        .collect();
    out.extend(prefixes);
    out
}

fn assert_no_secret(text: &str, secrets: &[Vec<u8>], what: &str) {
    for secret in secrets {
        for rendering in renderings(secret) {
            assert!(
                !text.contains(&rendering),
                "{what} shows a secret ({rendering}): {text}"
            );
        }
    }
}

/// The secret members of a key's exported JWK, decoded.
fn secrets_of(key: &Key) -> Vec<Vec<u8>> {
    let jwk: Value = serde_json::from_str(&key.to_jwk()).unwrap();
    ["k", "d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .filter_map(|name| jwk.get(*name).and_then(Value::as_str))
        .map(|text| URL_SAFE_NO_PAD.decode(text).unwrap())
        .collect()
}

fn keys() -> Vec<Key> {
    let mut keys: Vec<Key> = ContentEncryption::ALL
        .into_iter()
        .map(|enc| Key::generate_dir(enc).unwrap())
        .collect();
    for alg in KeyAlgorithm::ALL {
        if alg.is_rsa() && cfg!(not(feature = "rsa")) {
            continue;
        }
        if alg != KeyAlgorithm::Dir {
            keys.push(Key::generate(alg).unwrap());
        }
    }
    // A key with known, recognisable bytes.
    keys.push(Key::symmetric("known", KeyAlgorithm::A128Kw, &[0xab; 16]).unwrap());
    keys
}

#[test]
fn key_debug_shows_no_secret() {
    for key in keys() {
        let secrets = secrets_of(&key);
        assert!(!secrets.is_empty());
        for text in [format!("{key:?}"), format!("{key:#?}")] {
            assert_no_secret(&text, &secrets, "Debug of Key");
            assert!(text.contains(key.kid()), "{text}");
        }
    }
}

#[test]
fn keyring_keyset_and_entries_debug_show_no_secret() {
    let mut all_secrets = Vec::new();
    let mut keys = keys().into_iter();
    let keyring = Keyring::new(keys.next().unwrap());
    for key in keys {
        all_secrets.extend(secrets_of(&key));
        keyring.stage(key).unwrap();
    }
    keyring.rotate().unwrap();
    let snapshot = keyring.snapshot();
    for entry in snapshot.iter() {
        all_secrets.extend(secrets_of(entry.key()));
    }
    for (what, text) in [
        ("Keyring", format!("{keyring:?}")),
        ("Keyring", format!("{keyring:#?}")),
        ("KeySet", format!("{:?}", *snapshot)),
        ("KeySet", format!("{:#?}", *snapshot)),
    ] {
        assert_no_secret(&text, &all_secrets, what);
    }
    for entry in snapshot.iter() {
        assert_no_secret(&format!("{entry:#?}"), &all_secrets, "KeyEntry");
    }
}

#[test]
fn opened_debug_shows_no_secret_nor_plaintext() {
    for key in keys() {
        let secrets = secrets_of(&key);
        let keyring = Keyring::new(key);
        let plaintext = br#"{"sub":"alice","csrf":"s3cr3t-t0ken-value-123456"}"#;
        let token = keyring.seal(plaintext).unwrap();
        let opened = keyring.open(&token).unwrap();
        let text = format!("{opened:?} {opened:#?}");
        assert_no_secret(&text, &secrets, "Debug of Opened");
        assert!(!text.contains("s3cr3t-t0ken"), "{text}");
        assert_no_secret(&text, &[plaintext.to_vec()], "Debug of Opened");

        // Nor does the parsed token's Debug.
        let parsed = jwe::parse(&token, &OpenOptions::new()).unwrap();
        assert_no_secret(&format!("{parsed:?}"), &secrets, "Debug of Parsed");
    }
}

#[test]
fn errors_for_bad_keys_never_contain_the_key_material() {
    let k16 = [0x3cu8; 16];
    let k16_b64 = URL_SAFE_NO_PAD.encode(k16);
    let k32 = [0x4du8; 32];
    let k32_b64 = URL_SAFE_NO_PAD.encode(k32);
    let jwks = [
        // Wrong length for the algorithm.
        format!(r#"{{"kty":"oct","kid":"a","alg":"A256KW","k":"{k16_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"A128GCMKW","k":"{k32_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"A128GCM","k":"{k32_b64}"}}"#),
        // Algorithms off the allowlist.
        format!(r#"{{"kty":"oct","kid":"a","alg":"HS256","k":"{k32_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"none","k":"{k32_b64}"}}"#),
        // Missing or odd members.
        format!(r#"{{"kty":"oct","alg":"A256KW","k":"{k32_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","k":"{k32_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"A256KW","use":"sig","k":"{k32_b64}"}}"#),
        format!(r#"{{"kty":"RSA","kid":"a","alg":"A256KW","k":"{k32_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"A256KW","k":"{k32_b64}="}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"A256KW","k":" {k32_b64}"}}"#),
        format!(r#"{{"kty":"oct","kid":"a","alg":"A256KW","k":"{k32_b64}","#),
        format!(r#"["{k32_b64}"]"#),
    ];
    for jwk in &jwks {
        let err = Key::from_jwk(jwk).unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert_no_secret(&text, &[k16.to_vec(), k32.to_vec()], "key error");
        }
        // The same through a JWK Set and the crate's Error.
        let set = format!(r#"{{"keys":[{jwk}]}}"#);
        let err = Keyring::from_jwk_set(&set).unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert_no_secret(&text, &[k16.to_vec(), k32.to_vec()], "key set error");
            assert!(!text.contains(&k32_b64[..16]), "{text}");
        }
    }

    // From raw bytes.
    for (alg, bytes) in [
        (KeyAlgorithm::A256Kw, &k16[..]),
        (KeyAlgorithm::A128Kw, &k32[..]),
        (KeyAlgorithm::Dir, &k32[..20]),
        (KeyAlgorithm::RsaOaep, &k32[..]),
    ] {
        let err = Key::symmetric("raw", alg, bytes).unwrap_err();
        let wrapped = Error::from(err.clone());
        for text in [
            err.to_string(),
            format!("{err:?}"),
            wrapped.to_string(),
            format!("{wrapped:?}"),
        ] {
            assert_no_secret(&text, &[bytes.to_vec()], "Key::symmetric error");
            assert!(text.contains("raw"), "{text}");
        }
    }
}

#[cfg(feature = "rsa")]
#[test]
fn errors_for_bad_rsa_keys_never_contain_the_key_material() {
    let key = Key::generate(KeyAlgorithm::RsaOaep).unwrap();
    let secrets = secrets_of(&key);
    let mut jwk: serde_json::Map<String, Value> = serde_json::from_str(&key.to_jwk()).unwrap();
    // Break the key: dq set to dp, so the CRT values are inconsistent.
    let dp = jwk["dp"].clone();
    jwk.insert("dq".into(), dp);
    let err = Key::from_jwk_object(&jwk).unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert_no_secret(&text, &secrets, "RSA key error");
    }
    // A wrong kty for the RSA alg.
    jwk.insert("kty".into(), "oct".into());
    let err = Key::from_jwk_object(&jwk).unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"), &secrets, "RSA key error");
}

fn rejections() -> Vec<(Rejection, String)> {
    let keyring = Keyring::new(
        Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid("kid-that-must-not-leak")
            .unwrap(),
    );
    let token = keyring.seal(b"x").unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}.{}.{}",
        parts[0],
        parts[1],
        parts[2],
        parts[3],
        URL_SAFE_NO_PAD.encode([0u8; 16])
    );
    let mut ciphertext = parts[3].as_bytes().to_vec();
    ciphertext[0] = if ciphertext[0] == b'A' { b'B' } else { b'A' };
    let altered = format!(
        "{}.{}.{}.{}.{}",
        parts[0],
        parts[1],
        parts[2],
        String::from_utf8(ciphertext).unwrap(),
        parts[4]
    );
    let stranger = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    let strangers_token = stranger.seal(b"y").unwrap();
    // At least two different rejections of every kind.
    vec![
        (keyring.open("a.b.c").unwrap_err(), "a.b.c".to_owned()),
        (keyring.open(&tampered).unwrap_err(), tampered.clone()),
        (keyring.open(&altered).unwrap_err(), altered.clone()),
        (stranger.open(&token).unwrap_err(), token.clone()),
        (
            keyring.open(&strangers_token).unwrap_err(),
            strangers_token.clone(),
        ),
        (
            keyring.open(&format!("{token}=")).unwrap_err(),
            format!("{token}="),
        ),
    ]
}

#[test]
fn rejection_display_is_generic() {
    let mut kinds = Vec::new();
    let all = rejections();
    for (i, (rejection, token)) in all.iter().enumerate() {
        let kind = rejection.kind();
        kinds.push(kind);
        let shown = rejection.to_string();
        assert!(shown.contains(kind.as_str()), "{shown}");
        // Only the kind: not the reason, the kid, nor any of the token.
        assert!(!shown.contains(rejection.reason()), "{shown}");
        assert!(!shown.contains("kid-that-must-not-leak"), "{shown}");
        for part in token.split('.').filter(|p| p.len() >= 4) {
            assert!(!shown.contains(part), "{shown}");
        }
        // The same for the crate's Error wrapping it.
        assert_eq!(Error::from(rejection.clone()).to_string(), shown);
        // And every other rejection of the same kind displays the same.
        let others: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(j, (r, _))| *j != i && r.kind() == kind)
            .map(|(_, (r, _))| r.to_string())
            .collect();
        assert!(!others.is_empty(), "a second {kind:?} to compare with");
        for other in others {
            assert_eq!(shown, other);
        }
    }
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    assert_eq!(
        kinds,
        vec![
            RejectionKind::DecryptFailed,
            RejectionKind::Malformed,
            RejectionKind::UnknownKey
        ]
    );
    // Kinds that differ display differently, and the text names nothing else.
    let shown: Vec<String> = rejections().iter().map(|(r, _)| r.to_string()).collect();
    for text in &shown {
        let without_kind = ["malformed", "unknown_key", "decrypt_failed"]
            .iter()
            .fold(text.clone(), |t, k| t.replace(k, ""));
        assert!(without_kind.len() <= 24, "{text}");
    }
}

/// Issue 10: `SessionMap::get` on a type mismatch displayed `invalid type:
/// string "hunter2", expected u64`. No error about session data echoes a
/// value from the session, in `Display`, `Debug` or its source chain.
#[test]
fn session_data_errors_do_not_echo_session_values() {
    use jwe_session::session::SessionMap;
    use std::error::Error as _;

    fn rendered(error: &Error) -> String {
        let mut text = format!("{error} {error:?}");
        let mut source = error.source();
        while let Some(inner) = source {
            text.push_str(&format!(" {inner} {inner:?}"));
            source = inner.source();
        }
        text
    }

    let mut map = SessionMap::default();
    map.insert("pin", "hunter2").unwrap();
    map.insert("list", vec!["hunter3", "hunter4"]).unwrap();
    map.insert("object", serde_json::json!({"hunter5": 1}))
        .unwrap();
    map.insert("number", 424_242).unwrap();
    let errors = [
        map.get::<u64>("pin").unwrap_err(),
        map.get::<Vec<u64>>("list").unwrap_err(),
        map.get::<String>("object").unwrap_err(),
        map.get::<String>("number").unwrap_err(),
        map.get::<bool>("list").unwrap_err(),
    ];
    for error in &errors {
        let text = rendered(error);
        for value in ["hunter", "424242", "424_242"] {
            assert!(!text.contains(value), "{value} echoed: {text}");
        }
        assert!(text.contains("does not fit the expected type"), "{text}");
    }
}

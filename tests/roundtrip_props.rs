//! Property tests: arbitrary JSON payloads round-trip through seal and open
//! for every algorithm, and arbitrary input never makes `Keyring::open`
//! panic or succeed.
//!
//! Keys are generated once per test, outside the property loop (RSA key
//! generation is slow), and the runners are deterministic in their case
//! count but not seeded, like `proptest!`.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{
    jwe, ContentEncryption, Key, KeyAlgorithm, KeyState, Keyring, OpenOptions, RejectionKind,
};
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Keys for `algs`, each with a keyring that accepts long tokens (the
/// payloads can exceed the default 8 KiB once encrypted).
fn rings(keys: Vec<Key>) -> Vec<(Key, Keyring)> {
    keys.into_iter()
        .map(|key| {
            let ring = Keyring::new(Key::from_jwk(&key.to_jwk()).unwrap())
                .with_open_options(OpenOptions::new().with_max_len(1 << 20));
            (key, ring)
        })
        .collect()
}

fn symmetric_keys() -> Vec<Key> {
    let mut keys: Vec<Key> = ContentEncryption::ALL
        .into_iter()
        .map(|enc| Key::generate_dir(enc).unwrap())
        .collect();
    for alg in KeyAlgorithm::ALL {
        if !alg.is_rsa() && alg != KeyAlgorithm::Dir {
            keys.push(Key::generate(alg).unwrap());
        }
    }
    keys
}

fn round_trip_json(keys: Vec<Key>, cases: u32) {
    let rings = rings(keys);
    let default_ring_limit = OpenOptions::new().max_len();
    runner(cases)
        .run(&json_value(), |value| {
            let bytes = serde_json::to_vec(&value).unwrap();
            for (key, ring) in &rings {
                let token = ring.seal(&bytes).unwrap();
                let opened = ring.open(&token).unwrap();
                prop_assert_eq!(opened.plaintext(), &bytes[..], "{}", key.alg());
                prop_assert_eq!(opened.key_state(), KeyState::Primary);
                prop_assert_eq!(opened.kid(), key.kid());
                // Still JSON. (Not compared as a `Value`: serde_json's
                // default float parsing is not exactly round-trip.)
                prop_assert!(serde_json::from_slice::<Value>(opened.plaintext()).is_ok());

                // The same through `jwe::seal` / `jwe::open_with_key`.
                let token = jwe::seal(key, &bytes, &Default::default()).unwrap();
                let options = OpenOptions::new().with_max_len(1 << 20);
                let (header, plaintext) = jwe::open_with_key(&token, key, &options).unwrap();
                prop_assert_eq!(&plaintext[..], &bytes[..]);
                prop_assert_eq!(header.alg(), key.alg());
                prop_assert_eq!(header.enc(), key.enc());

                // Under the default cap, a token either opens or is refused
                // for its length, nothing else.
                let strict = jwe::open_with_key(&token, key, &OpenOptions::new());
                if token.len() <= default_ring_limit {
                    prop_assert!(strict.is_ok());
                } else {
                    let err = strict.unwrap_err();
                    prop_assert_eq!(err.kind(), RejectionKind::Malformed);
                    prop_assert!(err.reason().contains("longer"));
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn json_payloads_round_trip_every_symmetric_algorithm() {
    round_trip_json(symmetric_keys(), 96);
}

#[cfg(feature = "rsa")]
#[test]
fn json_payloads_round_trip_rsa() {
    let keys = vec![
        Key::generate(KeyAlgorithm::RsaOaep).unwrap(),
        Key::generate(KeyAlgorithm::RsaOaep256).unwrap(),
    ];
    round_trip_json(keys, 16);
}

#[test]
fn binary_payloads_round_trip() {
    let rings = rings(symmetric_keys());
    runner(64)
        .run(&prop::collection::vec(any::<u8>(), 0..3000), |bytes| {
            for (_, ring) in &rings {
                let token = ring.seal(&bytes).unwrap();
                let opened = ring.open(&token).unwrap();
                prop_assert_eq!(opened.plaintext(), &bytes[..]);
            }
            Ok(())
        })
        .unwrap();
}

fn all_rings() -> Vec<(Key, Keyring)> {
    #[allow(unused_mut)]
    let mut keys = symmetric_keys();
    #[cfg(feature = "rsa")]
    keys.push(Key::generate(KeyAlgorithm::RsaOaep256).unwrap());
    rings(keys)
}

#[test]
fn arbitrary_bytes_as_tokens_are_refused_without_panic() {
    let rings = all_rings();
    runner(512)
        .run(&prop::collection::vec(any::<u8>(), 0..600), |bytes| {
            let text = String::from_utf8_lossy(&bytes);
            for (_, ring) in &rings {
                prop_assert!(ring.open(&text).is_err());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_strings_are_refused_without_panic() {
    let rings = all_rings();
    runner(512)
        .run(&any::<String>(), |text| {
            for (_, ring) in &rings {
                prop_assert!(ring.open(&text).is_err());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_ascii_with_four_dots_is_refused_without_panic() {
    let rings = all_rings();
    let part = "[ -\\-/-~]{0,40}"; // printable ASCII without '.'
    let b64_part = "[A-Za-z0-9_-]{0,60}";
    let strategy = prop_oneof![
        prop::collection::vec(part, 5),
        prop::collection::vec(b64_part, 5),
    ];
    runner(1024)
        .run(&strategy, |parts| {
            let token = parts.join(".");
            prop_assert_eq!(token.matches('.').count(), 4);
            for (_, ring) in &rings {
                prop_assert!(ring.open(&token).is_err());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn real_header_with_arbitrary_parts_is_refused_as_decrypt_failed() {
    // With a genuine header (so the kid is known), random but canonical
    // remaining parts get past parsing and must fail as DecryptFailed.
    let rings = all_rings();
    let headers: Vec<String> = rings
        .iter()
        .map(|(_, ring)| {
            let token = ring.seal(b"x").unwrap();
            token.split('.').next().unwrap().to_owned()
        })
        .collect();
    let bytes = || prop::collection::vec(any::<u8>(), 0..300);
    let strategy = (
        bytes(),
        prop_oneof![Just(vec![0u8; 12]), prop::collection::vec(any::<u8>(), 12)],
        bytes(),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 16),
            prop::collection::vec(any::<u8>(), 0..20)
        ],
    );
    runner(256)
        .run(&strategy, |(ek, iv, ct, tag)| {
            for ((_, ring), header) in rings.iter().zip(&headers) {
                let token = [
                    header.clone(),
                    URL_SAFE_NO_PAD.encode(&ek),
                    URL_SAFE_NO_PAD.encode(&iv),
                    URL_SAFE_NO_PAD.encode(&ct),
                    URL_SAFE_NO_PAD.encode(&tag),
                ]
                .join(".");
                let err = ring.open(&token).unwrap_err();
                prop_assert_eq!(err.kind(), RejectionKind::DecryptFailed, "{:?}", err);
            }
            Ok(())
        })
        .unwrap();
}

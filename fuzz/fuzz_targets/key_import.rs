//! (d) Key input: the same bytes as a JWK (`Key::from_jwk`), a JWK Set
//! (`KeySet::from_jwk_set`, `Keyring::from_jwk_set`) and the value of a key
//! environment variable (`Keyring::from_env`: a JWK Set, or
//! `kid:base64url-secret` entries separated by commas). Asserted:
//!
//! * nothing panics;
//! * a key that loads exports (`to_jwk`) to a JWK that re-imports to an
//!   equal key and exports to the same text, and loads as a one-key JWK Set
//!   too;
//! * a JWK Set that loads exports (`to_jwk_set`) to one that re-imports to
//!   the same keys, states and times, and exports to the same text;
//!   `KeySet` and `Keyring` accept the same sets;
//! * the environment value loads exactly when an independent reading of the
//!   documented `kid:secret` format accepts it (entries trimmed, a
//!   non-empty kid of at most 256 bytes without control characters, a
//!   32-byte non-zero secret in canonical unpadded base64url, kids unique,
//!   the first the primary and the rest retired, all `A256KW`), with exactly
//!   those keys; a value starting with `{` loads exactly when it loads as a
//!   JWK Set.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwe_session::keyring::KeySet;
use jwe_session::{Key, KeyAlgorithm, KeyState, Keyring};
use libfuzzer_sys::fuzz_target;

/// The variable `Keyring::from_env` reads here; set for each input.
const VAR: &str = "JWE_SESSION_FUZZ_KEYS";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_000_000)
}

/// Two sets hold the same keys in the same order, states and times.
fn assert_same_set(a: &KeySet, b: &KeySet, times: bool) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x.kid(), y.kid());
        assert!(x.key() == y.key(), "{:?} != {:?}", x.key(), y.key());
        assert_eq!(x.state(), y.state(), "{}", x.kid());
        if times {
            assert_eq!(x.created(), y.created(), "{}", x.kid());
            assert_eq!(x.retired_at(), y.retired_at(), "{}", x.kid());
            assert_eq!(x.promote_at(), y.promote_at(), "{}", x.kid());
        }
    }
}

fn check_jwk(text: &str) {
    let Ok(key) = Key::from_jwk(text) else {
        return;
    };
    let exported = key.to_jwk();
    let again = Key::from_jwk(&exported)
        .unwrap_or_else(|e| panic!("an exported JWK does not re-import: {e}"));
    assert!(key == again, "{key:?} != {again:?}");
    assert_eq!(*again.to_jwk(), *exported);
    let set = KeySet::from_jwk_set(&format!("{{\"keys\":[{text}]}}"), now())
        .unwrap_or_else(|e| panic!("a JWK that loads does not load as a set: {e}"));
    assert_eq!(set.len(), 1);
    assert!(set.primary().key() == &key);
    assert_eq!(set.primary().state(), KeyState::Primary);
}

fn check_jwk_set(text: &str) {
    let set = KeySet::from_jwk_set(text, now());
    let ring = Keyring::from_jwk_set(text);
    assert_eq!(
        set.is_ok(),
        ring.is_ok(),
        "{:?} / {:?}",
        set.err(),
        ring.err()
    );
    let (Ok(set), Ok(ring)) = (set, ring) else {
        return;
    };
    let exported = set.to_jwk_set();
    let again = KeySet::from_jwk_set(&exported, now())
        .unwrap_or_else(|e| panic!("an exported JWK Set does not re-import: {e}"));
    assert_same_set(&set, &again, true);
    assert_eq!(*again.to_jwk_set(), *exported);
    // The keyring's view (due promotions applied) re-imports too.
    let snapshot = ring.snapshot();
    let again = KeySet::from_jwk_set(&ring.to_jwk_set(), now())
        .unwrap_or_else(|e| panic!("an exported keyring does not re-import: {e}"));
    assert_same_set(&snapshot, &again, true);
}

/// Canonical unpadded base64url.
fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// The `kid:secret` list as the documentation reads it.
fn read_env_list(value: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in value.split(',') {
        let (kid, secret) = entry.trim().split_once(':')?;
        let kid = kid.trim();
        if kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control) {
            return None;
        }
        let secret = b64url_decode(secret.trim())?;
        if secret.len() != 32 || secret.iter().all(|&b| b == 0) {
            return None;
        }
        if out.iter().any(|(k, _)| k == kid) {
            return None;
        }
        out.push((kid.to_owned(), secret));
    }
    Some(out)
}

fn check_env(text: &str) {
    if text.contains('\0') {
        return; // not a possible environment value
    }
    std::env::set_var(VAR, text);
    let loaded = Keyring::from_env(VAR);
    let value = text.trim();
    if value.starts_with('{') {
        let direct = Keyring::from_jwk_set(value);
        assert_eq!(loaded.is_ok(), direct.is_ok());
        if let (Ok(loaded), Ok(direct)) = (loaded, direct) {
            assert_same_set(&loaded.snapshot(), &direct.snapshot(), false);
        }
        return;
    }
    let expected = if value.is_empty() {
        None
    } else {
        read_env_list(value)
    };
    match (expected, loaded) {
        (None, Ok(ring)) => panic!(
            "from_env loads what the format refuses ({} keys): {text:?}",
            ring.snapshot().len()
        ),
        (Some(_), Err(e)) => panic!("from_env refuses what the format accepts ({e}): {text:?}"),
        (None, Err(_)) => {}
        (Some(entries), Ok(ring)) => {
            let set = ring.snapshot();
            assert_eq!(set.len(), entries.len());
            for (i, (entry, (kid, secret))) in set.iter().zip(&entries).enumerate() {
                assert_eq!(entry.kid(), kid);
                assert_eq!(entry.key().alg(), KeyAlgorithm::A256Kw);
                let key = Key::symmetric(kid, KeyAlgorithm::A256Kw, secret).unwrap();
                assert!(entry.key() == &key, "entry #{}", i + 1);
                let state = if i == 0 {
                    KeyState::Primary
                } else {
                    KeyState::Retired
                };
                assert_eq!(entry.state(), state);
            }
            let again = KeySet::from_jwk_set(&ring.to_jwk_set(), now())
                .unwrap_or_else(|e| panic!("an exported keyring does not re-import: {e}"));
            assert_same_set(&set, &again, true);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_jwk(&text);
    check_jwk_set(&text);
    check_env(&text);
});

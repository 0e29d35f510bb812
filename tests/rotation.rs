//! Rotation: old tokens keep opening as retired, new tokens carry the new
//! kid, removed keys stop opening, concurrent readers never see a failure
//! while the keyring rotates under them, the stage/promote flow works across
//! a fleet of keyrings, and keyrings load from the environment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{
    jwe, ContentEncryption, Key, KeyAlgorithm, KeyState, Keyring, KeyringError, OpenOptions,
    RejectionKind, SealOptions,
};
use serde_json::Value;

fn kid_of(token: &str) -> String {
    jwe::parse(token, &OpenOptions::new())
        .unwrap()
        .header()
        .kid()
        .unwrap()
        .to_owned()
}

fn rotation_cases() -> Vec<Key> {
    let mut keys = vec![
        Key::generate_dir(ContentEncryption::A128Gcm).unwrap(),
        Key::generate_dir(ContentEncryption::A192Gcm).unwrap(),
    ];
    for alg in KeyAlgorithm::ALL {
        if alg.is_rsa() && cfg!(not(feature = "rsa")) {
            continue;
        }
        keys.push(Key::generate(alg).unwrap());
    }
    keys
}

#[test]
fn rotate_retires_the_old_key_and_new_tokens_carry_the_new_kid() {
    for key in rotation_cases() {
        let alg = key.alg();
        let enc = key.enc();
        let old_kid = key.kid().to_owned();
        let keyring = Keyring::new(key);
        let old_token = keyring.seal(b"before").unwrap();
        assert_eq!(kid_of(&old_token), old_kid);
        assert_eq!(
            keyring.open(&old_token).unwrap().key_state(),
            KeyState::Primary
        );

        let new_kid = keyring.rotate().unwrap();
        assert_ne!(new_kid, old_kid, "{alg}");
        assert_eq!(keyring.primary_kid(), new_kid);

        let opened = keyring.open(&old_token).unwrap();
        assert_eq!(opened.plaintext(), b"before");
        assert_eq!(opened.key_state(), KeyState::Retired, "{alg}");
        assert_eq!(opened.kid(), old_kid);

        let new_token = keyring.seal(b"after").unwrap();
        assert_eq!(kid_of(&new_token), new_kid, "{alg}");
        let parsed = jwe::parse(&new_token, &OpenOptions::new()).unwrap();
        // Same algorithm (and for dir, same content encryption).
        assert_eq!(parsed.header().alg(), alg);
        assert_eq!(parsed.header().enc(), enc, "{alg}");
        let opened = keyring.open(&new_token).unwrap();
        assert_eq!(opened.plaintext(), b"after");
        assert_eq!(opened.key_state(), KeyState::Primary);

        let snapshot = keyring.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot.primary().kid(), new_kid);
        let retired = snapshot.get(&old_kid).unwrap();
        assert_eq!(retired.state(), KeyState::Retired);
        assert!(retired.retired_at().is_some());
    }
}

#[test]
fn removed_keys_stop_opening() {
    let keyring = Keyring::new(
        Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid("old")
            .unwrap(),
    );
    let old_token = keyring.seal(b"x").unwrap();
    // The primary cannot be removed.
    assert!(matches!(
        keyring.remove("old"),
        Err(KeyringError::PrimaryKey(_))
    ));
    assert!(keyring.open(&old_token).is_ok());

    let new_kid = keyring.rotate().unwrap();
    let new_token = keyring.seal(b"y").unwrap();
    keyring.remove("old").unwrap();

    let err = keyring.open(&old_token).unwrap_err();
    assert_eq!(err.kind(), RejectionKind::UnknownKey);
    assert_eq!(err.kid(), Some("old"));
    assert!(keyring.snapshot().get("old").is_none());
    assert_eq!(keyring.open(&new_token).unwrap().kid(), new_kid);
    assert!(matches!(
        keyring.remove("old"),
        Err(KeyringError::UnknownKid(_))
    ));
}

#[test]
fn snapshots_taken_before_a_change_do_not_change() {
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A128GcmKw).unwrap());
    let before = keyring.snapshot();
    let first = before.primary().kid().to_owned();
    keyring.rotate().unwrap();
    keyring.remove(&first).unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before.primary().kid(), first);
    assert_eq!(before.primary().state(), KeyState::Primary);
    assert_eq!(keyring.snapshot().len(), 1);
    assert_ne!(keyring.primary_kid(), first);
}

#[test]
fn readers_never_fail_during_a_thousand_rotations() {
    const READERS: usize = 4;
    const ROTATIONS: usize = 1000;
    const MAX_ITERATIONS: usize = 200_000;

    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let first_token = keyring.seal(b"from the start").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(READERS + 1));

    let readers: Vec<_> = (0..READERS)
        .map(|reader| {
            let keyring = Arc::clone(&keyring);
            let stop = Arc::clone(&stop);
            let start = Arc::clone(&start);
            let first_token = first_token.clone();
            thread::spawn(move || -> Result<usize, String> {
                start.wait();
                let mut iterations = 0;
                loop {
                    let payload = format!("reader {reader} iteration {iterations}");
                    let token = keyring
                        .seal(payload.as_bytes())
                        .map_err(|e| format!("seal failed: {e}"))?;
                    let opened = keyring
                        .open(&token)
                        .map_err(|e| format!("fresh token refused: {e} ({})", e.reason()))?;
                    if opened.plaintext() != payload.as_bytes() {
                        return Err("wrong plaintext".to_owned());
                    }
                    if opened.key_state() == KeyState::Staged {
                        return Err("opened under a staged key".to_owned());
                    }
                    keyring
                        .open(&first_token)
                        .map_err(|e| format!("first token refused: {e}"))?;
                    iterations += 1;
                    if stop.load(Ordering::Acquire) || iterations >= MAX_ITERATIONS {
                        return Ok(iterations);
                    }
                }
            })
        })
        .collect();

    start.wait();
    let mut kids = std::collections::HashSet::new();
    for _ in 0..ROTATIONS {
        kids.insert(keyring.rotate().unwrap());
    }
    stop.store(true, Ordering::Release);

    for reader in readers {
        let iterations = reader.join().expect("reader panicked").unwrap();
        assert!(iterations >= 1);
    }
    assert_eq!(kids.len(), ROTATIONS);
    let snapshot = keyring.snapshot();
    assert_eq!(snapshot.len(), ROTATIONS + 1);
    assert_eq!(
        snapshot
            .iter()
            .filter(|e| e.state() == KeyState::Primary)
            .count(),
        1
    );
    assert_eq!(
        keyring.open(&first_token).unwrap().key_state(),
        KeyState::Retired
    );
}

/// The staged key of a keyring's JWK Set export, as another process would
/// receive it.
fn staged_key_from_export(keyring: &Keyring) -> Key {
    let set: Value = serde_json::from_str(&keyring.to_jwk_set()).unwrap();
    let staged: Vec<&Value> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["x-state"] == "staged")
        .collect();
    assert_eq!(staged.len(), 1);
    Key::from_jwk_object(staged[0].as_object().unwrap()).unwrap()
}

#[test]
fn stage_and_promote_across_a_fleet() {
    // Two processes sharing one key set.
    let a = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    let b = Keyring::from_jwk_set(&a.to_jwk_set()).unwrap();
    let kid1 = a.primary_kid();
    assert_eq!(b.primary_kid(), kid1);

    // Stage a new key on A, distribute it to B through A's export.
    let next = Key::generate(KeyAlgorithm::A256Kw).unwrap();
    let kid2 = next.kid().to_owned();
    a.stage(next).unwrap();
    b.stage(staged_key_from_export(&a)).unwrap();
    // A reload from the export keeps the staged state.
    let c = Keyring::from_jwk_set(&a.to_jwk_set()).unwrap();
    assert_eq!(c.snapshot().get(&kid2).unwrap().state(), KeyState::Staged);

    // Staged keys never seal.
    let from_a = a.seal(b"a1").unwrap();
    let from_b = b.seal(b"b1").unwrap();
    assert_eq!(kid_of(&from_a), kid1);
    assert_eq!(kid_of(&from_b), kid1);

    // Promote on A only: A seals with kid2, B still with kid1, and each
    // opens the other's tokens.
    a.promote(&kid2).unwrap();
    let from_a2 = a.seal(b"a2").unwrap();
    let from_b2 = b.seal(b"b2").unwrap();
    assert_eq!(kid_of(&from_a2), kid2);
    assert_eq!(kid_of(&from_b2), kid1);
    for (ring, name) in [(&a, "A"), (&b, "B")] {
        for (token, plaintext) in [
            (&from_a, &b"a1"[..]),
            (&from_b, b"b1"),
            (&from_a2, b"a2"),
            (&from_b2, b"b2"),
        ] {
            let opened = ring.open(token).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(opened.plaintext(), plaintext);
        }
    }
    assert_eq!(a.open(&from_b2).unwrap().key_state(), KeyState::Retired);
    assert_eq!(b.open(&from_a2).unwrap().key_state(), KeyState::Staged);

    // Promote on B too: both seal with kid2, everything still opens.
    b.promote(&kid2).unwrap();
    let from_b3 = b.seal(b"b3").unwrap();
    assert_eq!(kid_of(&from_b3), kid2);
    for ring in [&a, &b] {
        for token in [&from_a, &from_b, &from_a2, &from_b2, &from_b3] {
            assert!(ring.open(token).is_ok());
        }
        assert_eq!(ring.primary_kid(), kid2);
        assert_eq!(
            ring.snapshot().get(&kid1).unwrap().state(),
            KeyState::Retired
        );
    }
}

#[test]
fn staging_a_different_key_under_an_existing_kid_is_refused() {
    let a = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    let clash = Key::generate(KeyAlgorithm::A256Kw)
        .unwrap()
        .with_kid(a.primary_kid())
        .unwrap();
    assert!(matches!(a.stage(clash), Err(KeyringError::DuplicateKid(_))));
    assert!(matches!(
        a.promote("nobody"),
        Err(KeyringError::UnknownKid(_))
    ));
}

// ---------------------------------------------------------------------------
// From the environment. Tests run in parallel in one process, so every call
// gets a variable of its own: a counter, not only the label, makes the name
// unique (two tests once both used "ENV_JWKS", and one read the other's keys).

fn var_name(label: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("JWE_SESSION_TEST_{label}_{}_{n}", std::process::id())
}

fn secret_b64(byte: u8) -> String {
    URL_SAFE_NO_PAD.encode([byte; 32])
}

#[test]
fn from_env_list_format() {
    let var = var_name("ENV_LIST");
    let (s1, s2) = (secret_b64(0x21), secret_b64(0x42));
    std::env::set_var(&var, format!("2026-11:{s1},2026-10:{s2}"));
    let keyring = Keyring::from_env(&var).unwrap();
    std::env::remove_var(&var);

    assert_eq!(keyring.primary_kid(), "2026-11");
    let snapshot = keyring.snapshot();
    assert_eq!(snapshot.len(), 2);
    assert_eq!(snapshot.get("2026-10").unwrap().state(), KeyState::Retired);
    assert_eq!(snapshot.primary().key().alg(), KeyAlgorithm::A256Kw);

    // Tokens sealed elsewhere with the same secrets open here.
    for (kid, byte, state) in [
        ("2026-11", 0x21u8, KeyState::Primary),
        ("2026-10", 0x42, KeyState::Retired),
    ] {
        let key = Key::symmetric(kid, KeyAlgorithm::A256Kw, &[byte; 32]).unwrap();
        let token = jwe::seal(&key, b"hello", &SealOptions::new()).unwrap();
        let opened = keyring.open(&token).unwrap();
        assert_eq!(opened.plaintext(), b"hello");
        assert_eq!(opened.key_state(), state);
    }
    assert_eq!(kid_of(&keyring.seal(b"x").unwrap()), "2026-11");
}

#[test]
fn from_env_jwk_set_format() {
    let var = var_name("ENV_JWKS");
    let source = Keyring::new(
        Key::generate(KeyAlgorithm::A128GcmKw)
            .unwrap()
            .with_kid("first")
            .unwrap(),
    );
    let old = source.seal(b"old").unwrap();
    source.rotate().unwrap();
    std::env::set_var(&var, source.to_jwk_set().as_str());
    let keyring = Keyring::from_env(&var).unwrap();
    std::env::remove_var(&var);

    assert_eq!(keyring.primary_kid(), source.primary_kid());
    let opened = keyring.open(&old).unwrap();
    assert_eq!(opened.plaintext(), b"old");
    assert_eq!(opened.key_state(), KeyState::Retired);
    let new = keyring.seal(b"new").unwrap();
    assert_eq!(source.open(&new).unwrap().plaintext(), b"new");
}

#[test]
fn from_env_unset_is_an_error_naming_the_variable() {
    let var = var_name("ENV_UNSET");
    std::env::remove_var(&var);
    let err = Keyring::from_env(&var).unwrap_err();
    assert!(matches!(&err, KeyringError::Env { var: v, .. } if *v == var));
    let text = err.to_string();
    assert!(text.contains(&var), "{text}");
    assert!(text.contains("not set"), "{text}");
}

#[test]
fn from_env_empty_is_an_error_naming_the_variable() {
    for (suffix, value) in [("EMPTY", ""), ("BLANK", "  \t ")] {
        let var = var_name(&format!("ENV_{suffix}"));
        std::env::set_var(&var, value);
        let err = Keyring::from_env(&var).unwrap_err();
        std::env::remove_var(&var);
        let text = err.to_string();
        assert!(text.contains(&var), "{text}");
        assert!(text.contains("empty"), "{text}");
    }
}

#[test]
fn from_env_errors_never_contain_the_secret() {
    let good = secret_b64(0x5a);
    let short = URL_SAFE_NO_PAD.encode([0x6b; 16]);
    let jwk_secret = URL_SAFE_NO_PAD.encode([0x7c; 16]);
    let cases = [
        ("BAD_LEN", format!("a:{good},b:{short}"), "#2"),
        ("PADDED", format!("a:{good}="), "#1"),
        ("NO_KID", format!("a:{good},{short}"), "#2"),
        ("DUP", format!("a:{good},a:{good}"), "#2"),
        (
            "ZERO",
            format!("z:{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            "#1",
        ),
        (
            "JWKS",
            format!(r#"{{"keys":[{{"kty":"oct","kid":"j","alg":"A256KW","k":"{jwk_secret}"}}]}}"#),
            "\"j\"",
        ),
        (
            "JWKS_ALG",
            format!(r#"{{"keys":[{{"kty":"oct","kid":"j","alg":"HS256","k":"{good}"}}]}}"#),
            "\"j\"",
        ),
    ];
    for (name, value, mention) in cases {
        let var = var_name(&format!("ENV_ERR_{name}"));
        std::env::set_var(&var, &value);
        let err = Keyring::from_env(&var).unwrap_err();
        std::env::remove_var(&var);
        let shown = err.to_string();
        assert!(shown.contains(mention), "{name}: {shown}");
        for text in [shown, format!("{err:?}")] {
            assert!(text.contains(&var), "{name}: {text}");
            for secret in [&good, &short, &jwk_secret] {
                assert!(!text.contains(secret.as_str()), "{name}: {text}");
                // Nor a long piece of it.
                assert!(!text.contains(&secret[..12]), "{name}: {text}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Scheduled promotion (`promote_at`), with an injected clock.

mod scheduled {
    use super::*;
    use jwe_session::{Clock, ManualClock};
    use std::time::Duration;

    const T0: u64 = 1_800_000_000;

    fn keyring_at(clock: &Arc<ManualClock>, kid: &str) -> Keyring {
        let key = Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid(kid)
            .unwrap();
        Keyring::with_clock(key, clock.clone())
    }

    fn staged(kid: &str) -> Key {
        Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid(kid)
            .unwrap()
    }

    /// Another process loading `keyring`'s export, on the same clock.
    fn fleet_member(keyring: &Keyring, clock: &Arc<ManualClock>) -> Keyring {
        let mut other = Keyring::from_jwk_set(&keyring.to_jwk_set()).unwrap();
        other.set_clock(clock.clone());
        other
    }

    #[test]
    fn every_process_switches_at_the_scheduled_time() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        let at = clock.now() + Duration::from_secs(600);
        a.promote_at("k2", at).unwrap();
        assert_eq!(a.snapshot().get("k2").unwrap().promote_at(), Some(at));
        let b = fleet_member(&a, &clock);
        assert_eq!(b.snapshot().get("k2").unwrap().promote_at(), Some(at));

        let before = [a.seal(b"a1").unwrap(), b.seal(b"b1").unwrap()];
        clock.advance(Duration::from_secs(599));
        for ring in [&a, &b] {
            assert_eq!(ring.primary_kid(), "k1");
            assert_eq!(kid_of(&ring.seal(b"x").unwrap()), "k1");
        }

        clock.advance(Duration::from_secs(1));
        let after = [a.seal(b"a2").unwrap(), b.seal(b"b2").unwrap()];
        for ring in [&a, &b] {
            assert_eq!(ring.primary_kid(), "k2");
            for token in &after {
                assert_eq!(kid_of(token), "k2");
                assert_eq!(ring.open(token).unwrap().key_state(), KeyState::Primary);
            }
            for token in &before {
                assert_eq!(ring.open(token).unwrap().key_state(), KeyState::Retired);
            }
            let set = ring.snapshot();
            assert_eq!(set.get("k1").unwrap().retired_at(), Some(clock.now()));
            assert_eq!(set.get("k2").unwrap().promote_at(), None);
        }
        // The export no longer schedules anything.
        assert!(!a.to_jwk_set().contains("x-promote-at"));
    }

    #[test]
    fn an_open_sees_the_promotion_without_a_seal() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        let old = a.seal(b"old").unwrap();
        a.stage(staged("k2")).unwrap();
        a.promote_at("k2", clock.now() + Duration::from_secs(60))
            .unwrap();
        assert_eq!(a.open(&old).unwrap().key_state(), KeyState::Primary);
        clock.advance(Duration::from_secs(60));
        assert_eq!(a.open(&old).unwrap().key_state(), KeyState::Retired);
    }

    #[test]
    fn only_staged_keys_can_be_scheduled() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        let at = clock.now();
        assert!(matches!(
            a.promote_at("k1", at),
            Err(KeyringError::NotStaged(kid)) if kid == "k1"
        ));
        assert!(matches!(
            a.promote_at("nobody", at),
            Err(KeyringError::UnknownKid(kid)) if kid == "nobody"
        ));
        a.rotate().unwrap();
        assert!(matches!(
            a.promote_at("k1", at),
            Err(KeyringError::NotStaged(_))
        ));
    }

    #[test]
    fn retiring_or_promoting_by_hand_cancels_the_schedule() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        a.promote_at("k2", clock.now() + Duration::from_secs(60))
            .unwrap();
        a.retire("k2").unwrap();
        clock.advance(Duration::from_secs(120));
        assert_eq!(a.primary_kid(), "k1");
        assert_eq!(a.snapshot().get("k2").unwrap().promote_at(), None);

        a.stage(staged("k3")).unwrap();
        a.promote_at("k3", clock.now() + Duration::from_secs(60))
            .unwrap();
        a.promote("k3").unwrap();
        a.stage(staged("k4")).unwrap();
        clock.advance(Duration::from_secs(120));
        assert_eq!(a.primary_kid(), "k3", "the old schedule is gone");
        assert_eq!(a.snapshot().get("k3").unwrap().promote_at(), None);
        let export = a.to_jwk_set();
        assert!(!export.contains("x-promote-at"), "{}", export.as_str());
        let reloaded = fleet_member(&a, &clock);
        assert_eq!(reloaded.primary_kid(), "k3");
    }

    #[test]
    fn several_schedules_apply_in_order() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        a.stage(staged("k3")).unwrap();
        a.promote_at("k3", clock.now() + Duration::from_secs(200))
            .unwrap();
        a.promote_at("k2", clock.now() + Duration::from_secs(100))
            .unwrap();
        clock.advance(Duration::from_secs(150));
        assert_eq!(a.primary_kid(), "k2");
        clock.advance(Duration::from_secs(100));
        assert_eq!(a.primary_kid(), "k3");
        let set = a.snapshot();
        assert_eq!(set.get("k1").unwrap().state(), KeyState::Retired);
        assert_eq!(set.get("k2").unwrap().state(), KeyState::Retired);
    }

    #[test]
    fn readers_never_fail_while_a_promotion_comes_due() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let keyring = Arc::new(keyring_at(&clock, "k1"));
        keyring.stage(staged("k2")).unwrap();
        keyring
            .promote_at("k2", clock.now() + Duration::from_secs(1))
            .unwrap();
        let start = Arc::new(Barrier::new(5));
        let advanced = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let keyring = Arc::clone(&keyring);
                let start = Arc::clone(&start);
                let advanced = Arc::clone(&advanced);
                thread::spawn(move || {
                    start.wait();
                    // Until 100 rounds after the clock passed the time.
                    let mut after = 0;
                    let mut last = String::new();
                    while after < 100 {
                        if advanced.load(Ordering::Acquire) {
                            after += 1;
                        }
                        let token = keyring.seal(b"x").unwrap();
                        last = kid_of(&token);
                        assert_eq!(keyring.open(&token).unwrap().plaintext(), b"x");
                    }
                    last
                })
            })
            .collect();
        start.wait();
        clock.advance(Duration::from_secs(1));
        advanced.store(true, Ordering::Release);
        for reader in readers {
            assert_eq!(reader.join().unwrap(), "k2");
        }
        assert_eq!(keyring.primary_kid(), "k2");
        let set = keyring.snapshot();
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("k1").unwrap().state(), KeyState::Retired);
    }

    #[test]
    fn a_bad_schedule_in_a_jwk_set_is_refused() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        a.stage(staged("k3")).unwrap();
        a.retire("k3").unwrap();
        let export = || -> Value { serde_json::from_str(&a.to_jwk_set()).unwrap() };

        for bad in [
            Value::from("soon"),
            Value::from(-1),
            Value::from(1e12),
            Value::from(u64::MAX),
        ] {
            let mut set = export();
            set["keys"][1]["x-promote-at"] = bad.clone();
            let refused = Keyring::from_jwk_set(&set.to_string())
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains("x-promote-at") && refused.contains("k2"),
                "{bad}: {refused}"
            );
        }
        // On a retired key: refused, naming it.
        let mut set = export();
        set["keys"][2]["x-promote-at"] = T0.into();
        let refused = Keyring::from_jwk_set(&set.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("k3") && refused.contains("staged"),
            "{refused}"
        );
        // On the first key, the primary already: nothing to do.
        let mut set = export();
        set["keys"][0]["x-promote-at"] = T0.into();
        let loaded = Keyring::from_jwk_set(&set.to_string()).unwrap();
        assert_eq!(loaded.primary_kid(), "k1");
        assert_eq!(loaded.snapshot().get("k1").unwrap().promote_at(), None);
    }

    #[test]
    fn a_change_applies_a_due_promotion_first() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        a.promote_at("k2", clock.now() + Duration::from_secs(60))
            .unwrap();
        clock.advance(Duration::from_secs(60));
        // No seal or open since the time: k2 is the primary all the same.
        assert!(matches!(a.remove("k2"), Err(KeyringError::PrimaryKey(_))));
        assert!(matches!(a.retire("k2"), Err(KeyringError::PrimaryKey(_))));
        a.stage(staged("k3")).unwrap();
        a.promote("k3").unwrap();
        let set = a.snapshot();
        assert_eq!(a.primary_kid(), "k3", "the manual promotion wins, after");
        assert_eq!(set.get("k2").unwrap().state(), KeyState::Retired);
        assert_eq!(set.get("k1").unwrap().state(), KeyState::Retired);
    }

    #[test]
    fn a_time_within_a_second_promotes_at_its_end() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        a.promote_at("k2", clock.now() + Duration::from_millis(59_500))
            .unwrap();
        clock.advance(Duration::from_secs(59));
        assert_eq!(a.primary_kid(), "k1");
        clock.advance(Duration::from_secs(1));
        assert_eq!(a.primary_kid(), "k2");
    }

    #[test]
    fn reloading_with_a_due_promotion_never_deadlocks() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let a = keyring_at(&clock, "k1");
        a.stage(staged("k2")).unwrap();
        a.promote_at("k2", clock.now() + Duration::from_secs(1))
            .unwrap();
        let b = fleet_member(&a, &clock);
        clock.advance(Duration::from_secs(1));
        // On another thread, so that a deadlock fails the test instead of
        // hanging it.
        let (done, finished) = std::sync::mpsc::channel();
        thread::spawn(move || {
            a.replace_with(&a);
            a.replace_with(&b);
            b.replace_with(&a);
            let _ = done.send((a.primary_kid(), b.primary_kid()));
        });
        let kids = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("no deadlock");
        assert_eq!(kids, ("k2".to_owned(), "k2".to_owned()));
    }
}

/// Issue 12: a keyring behind a session layer keeps retired keys as long as
/// that layer's sessions can live (absolute timeout + leeway), so the
/// library's `prune` cannot log anyone out, even with a `max_age` shorter
/// than the sessions; `remove` is the way to drop a key at once.
#[test]
fn prune_keeps_retired_keys_for_the_layers_session_lifetime() {
    use jwe_session::revocation::MemoryStore;
    use jwe_session::{Clock, ManualClock, SessionConfig, SessionLayer};
    use std::time::Duration;

    const HOUR: u64 = 3600;
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let first = Key::generate(KeyAlgorithm::A256Kw).unwrap();
    let old_kid = first.kid().to_owned();
    let keyring = Keyring::with_clock(first, clock.clone());
    let day = SessionConfig::new()
        .with_idle_timeout(Duration::from_secs(HOUR))
        .with_absolute_timeout(Duration::from_secs(24 * HOUR));
    let _layer = SessionLayer::builder(keyring.clone(), MemoryStore::new())
        .config(day)
        .build()
        .unwrap();
    keyring.rotate().unwrap();

    // 13 h after the rotation: past the default floor (12 h + 60 s), within
    // the layer's sessions (24 h + 60 s). Kept, whatever max_age says.
    clock.advance(Duration::from_secs(13 * HOUR));
    assert!(keyring
        .prune(clock.now(), Duration::from_secs(HOUR))
        .is_empty());
    assert!(keyring.keys().iter().any(|key| key.kid() == old_kid));

    // Once no session sealed under it can be alive: pruned.
    clock.advance(Duration::from_secs(11 * HOUR + 61));
    assert_eq!(
        keyring.prune(clock.now(), Duration::from_secs(HOUR)),
        vec![old_kid]
    );
}

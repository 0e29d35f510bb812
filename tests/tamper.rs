//! A tamper matrix: every change to a sealed token — a flipped bit (in the
//! decoded bytes and in the text), a dropped or added byte, an emptied part,
//! a part swapped in from another token under the same key — is refused by
//! `Keyring::open`, for every algorithm. Never `Ok`, never a panic.

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{ContentEncryption, Key, KeyAlgorithm, Keyring, RejectionKind};

const PART_NAMES: [&str; 5] = ["header", "encrypted key", "iv", "ciphertext", "tag"];

fn split(token: &str) -> Vec<String> {
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 5);
    parts
}

fn join(parts: &[String]) -> String {
    parts.join(".")
}

fn with_part(parts: &[String], index: usize, value: String) -> String {
    let mut parts = parts.to_vec();
    parts[index] = value;
    join(&parts)
}

fn decode(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).unwrap()
}

fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Every tampered variant of `token`, each labelled, none equal to `token`
/// or to `other` (both genuine).
fn variants(token: &str, other: &str) -> Vec<(String, String)> {
    let parts = split(token);
    let other_parts = split(other);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |label: String, variant: String| {
        if variant != token && variant != other {
            out.push((label, variant));
        }
    };
    for (index, name) in PART_NAMES.iter().enumerate() {
        let bytes = decode(&parts[index]);

        // A bit flipped in the decoded bytes, re-encoded canonically: one
        // bit in every byte (walking through the bit positions), and every
        // bit of the first and last bytes.
        let mut flips: BTreeSet<(usize, u8)> = BTreeSet::new();
        for i in 0..bytes.len() {
            flips.insert((i, (i % 8) as u8));
        }
        if !bytes.is_empty() {
            for bit in 0..8 {
                flips.insert((0, bit));
                flips.insert((bytes.len() - 1, bit));
            }
        }
        for (i, bit) in flips {
            let mut changed = bytes.clone();
            changed[i] ^= 1 << bit;
            push(
                format!("{name}: decoded byte {i} bit {bit} flipped"),
                with_part(&parts, index, encode(&changed)),
            );
        }

        // A bit flipped at the text level, in every character (two bits:
        // one that usually stays in the alphabet, one that may leave it).
        for (i, c) in parts[index].char_indices() {
            for mask in [0x01u8, 0x20] {
                let flipped = char::from(c as u8 ^ mask);
                let mut text = parts[index].clone();
                text.replace_range(i..i + 1, &flipped.to_string());
                push(
                    format!("{name}: text char {i} xor {mask:#x}"),
                    with_part(&parts, index, text),
                );
            }
        }

        // Truncated: the last decoded byte dropped.
        if !bytes.is_empty() {
            push(
                format!("{name}: truncated"),
                with_part(&parts, index, encode(&bytes[..bytes.len() - 1])),
            );
        }

        // Extended: a byte appended.
        for extra in [0x00u8, 0xff] {
            let mut longer = bytes.clone();
            longer.push(extra);
            push(
                format!("{name}: extended with {extra:#04x}"),
                with_part(&parts, index, encode(&longer)),
            );
        }

        // Emptied.
        push(
            format!("{name}: emptied"),
            with_part(&parts, index, String::new()),
        );

        // Swapped in from another token under the same key.
        push(
            format!("{name}: swapped from another token"),
            with_part(&parts, index, other_parts[index].clone()),
        );
    }
    // Every part but one swapped in from the other token.
    for keep in 0..5 {
        let mut mixed = other_parts.clone();
        mixed[keep] = parts[keep].clone();
        push(
            format!("all but {} swapped", PART_NAMES[keep]),
            join(&mixed),
        );
    }
    out
}

fn tamper_matrix(key: Key) {
    let alg = key.alg();
    let enc = key.enc();
    let keyring = Keyring::new(key);
    // Two tokens of equal length under the same key.
    let first = keyring.seal(br#"{"sub":"alice","admin":false}"#).unwrap();
    let second = keyring.seal(br#"{"sub":"mallory","admin":true}"#).unwrap();
    assert_eq!(
        keyring.open(&first).unwrap().plaintext(),
        br#"{"sub":"alice","admin":false}"#
    );
    assert_eq!(
        keyring.open(&second).unwrap().plaintext(),
        br#"{"sub":"mallory","admin":true}"#
    );

    let mut tried = 0usize;
    for (token, other) in [(&first, &second), (&second, &first)] {
        for (label, variant) in variants(token, other) {
            match keyring.open(&variant) {
                Ok(opened) => panic!(
                    "{alg}/{enc}: tampered token opened ({label}): {} bytes",
                    opened.plaintext().len()
                ),
                Err(rejection) => {
                    // The refusal is one of the three kinds, and a refusal
                    // that got past the header names a key.
                    assert!(
                        matches!(
                            rejection.kind(),
                            RejectionKind::Malformed
                                | RejectionKind::UnknownKey
                                | RejectionKind::DecryptFailed
                        ),
                        "{alg}: {label}: {:?}",
                        rejection.kind()
                    );
                    if rejection.kind() == RejectionKind::DecryptFailed {
                        assert!(rejection.kid().is_some(), "{alg}: {label}");
                    }
                }
            }
            tried += 1;
        }
    }
    assert!(tried > 200, "{alg}/{enc}: only {tried} variants");

    // The originals still open: nothing above changed the keyring.
    assert!(keyring.open(&first).is_ok());

    // A keyring that lacks the key: UnknownKey, naming the token's kid.
    let kid = jwe_session::jwe::parse(&first, &jwe_session::OpenOptions::new())
        .unwrap()
        .header()
        .kid()
        .unwrap()
        .to_owned();
    let stranger = Keyring::new(key_like(alg, enc));
    let err = stranger.open(&first).unwrap_err();
    assert_eq!(err.kind(), RejectionKind::UnknownKey, "{alg}/{enc}");
    assert_eq!(err.kid(), Some(kid.as_str()));
}

fn key_like(alg: KeyAlgorithm, enc: ContentEncryption) -> Key {
    if alg == KeyAlgorithm::Dir {
        Key::generate_dir(enc).unwrap()
    } else {
        Key::generate(alg).unwrap()
    }
}

#[test]
fn tamper_dir_every_enc() {
    for enc in ContentEncryption::ALL {
        tamper_matrix(Key::generate_dir(enc).unwrap());
    }
}

#[test]
fn tamper_a128kw() {
    tamper_matrix(Key::generate(KeyAlgorithm::A128Kw).unwrap());
}

#[test]
fn tamper_a192kw() {
    tamper_matrix(Key::generate(KeyAlgorithm::A192Kw).unwrap());
}

#[test]
fn tamper_a256kw() {
    tamper_matrix(Key::generate(KeyAlgorithm::A256Kw).unwrap());
}

#[test]
fn tamper_a128gcmkw() {
    tamper_matrix(Key::generate(KeyAlgorithm::A128GcmKw).unwrap());
}

#[test]
fn tamper_a192gcmkw() {
    tamper_matrix(Key::generate(KeyAlgorithm::A192GcmKw).unwrap());
}

#[test]
fn tamper_a256gcmkw() {
    tamper_matrix(Key::generate(KeyAlgorithm::A256GcmKw).unwrap());
}

#[cfg(feature = "rsa")]
#[test]
fn tamper_rsa_oaep() {
    tamper_matrix(Key::generate(KeyAlgorithm::RsaOaep).unwrap());
}

#[cfg(feature = "rsa")]
#[test]
fn tamper_rsa_oaep_256() {
    tamper_matrix(Key::generate(KeyAlgorithm::RsaOaep256).unwrap());
}

#[test]
fn every_algorithm_is_covered() {
    // A new algorithm added to the allowlist must get a row above.
    let covered = [
        "dir",
        "A128KW",
        "A192KW",
        "A256KW",
        "A128GCMKW",
        "A192GCMKW",
        "A256GCMKW",
        "RSA-OAEP",
        "RSA-OAEP-256",
    ];
    let all: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(all, covered);
}

#[test]
fn gcm_kw_header_iv_and_tag_are_tamper_evident() {
    // The key-wrap iv and tag live in the protected header; changing either
    // (even to well-formed values) must be refused.
    for alg in [
        KeyAlgorithm::A128GcmKw,
        KeyAlgorithm::A192GcmKw,
        KeyAlgorithm::A256GcmKw,
    ] {
        let keyring = Keyring::new(Key::generate(alg).unwrap());
        let token = keyring.seal(b"payload").unwrap();
        let parts = split(&token);
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&decode(&parts[0])).unwrap();
        for member in ["iv", "tag"] {
            let mut bytes = decode(header[member].as_str().unwrap());
            bytes[0] ^= 0x80;
            let mut changed = header.clone();
            changed.insert(member.into(), encode(&bytes).into());
            let new_header = encode(serde_json::to_string(&changed).unwrap().as_bytes());
            let variant = with_part(&parts, 0, new_header);
            let err = keyring.open(&variant).unwrap_err();
            assert_eq!(err.kind(), RejectionKind::DecryptFailed, "{alg} {member}");
        }
    }
}

/// Found by the `open_tokens` fuzz target: an RSA-OAEP encrypted key whose
/// leading zero byte is cut off (one token in 256 has one) still opened,
/// because OpenSSL reads the ciphertext as a number. RFC 8017 §7.1.2 wants
/// it exactly as long as the modulus; a shorter (or longer) one is refused.
#[cfg(feature = "rsa")]
#[test]
fn an_rsa_encrypted_key_one_byte_short_is_refused() {
    for alg in [KeyAlgorithm::RsaOaep, KeyAlgorithm::RsaOaep256] {
        let keyring = Keyring::new(Key::generate(alg).unwrap());
        // Seal until the encrypted key starts with a zero byte (1 in 256).
        let (token, ek) = (0..20_000)
            .map(|_| {
                let token = keyring.seal(b"payload").unwrap();
                let ek = decode(&split(&token)[1]);
                (token, ek)
            })
            .find(|(_, ek)| ek[0] == 0)
            .expect("an encrypted key with a leading zero byte");
        assert!(keyring.open(&token).is_ok());
        let parts = split(&token);
        for (what, changed) in [
            ("one byte short", ek[1..].to_vec()),
            ("one zero byte more", [&[0u8][..], &ek].concat()),
        ] {
            let variant = with_part(&parts, 1, encode(&changed));
            let err = keyring.open(&variant).unwrap_err();
            assert_eq!(err.kind(), RejectionKind::DecryptFailed, "{alg} {what}");
        }
    }
}

//! (a) Real tokens of every algorithm, mutated: whatever opens must be
//! byte-identical to a token the server sealed (data/tokens.tsv), and open
//! to what was sealed, under the key that sealed it. Nothing panics.
//!
//! The inputs are opened by a keyring holding every fixed key, whose primary
//! is the key the token names (so the primary's header cache, the path most
//! real tokens take, is exercised), and by `jwe::open_with_key` with that
//! key (the uncached parser). Besides libFuzzer's byte mutations, a custom
//! mutator takes the input or one of the known tokens, decodes one of its
//! five parts and mutates its bytes, drops its first byte or adds a leading
//! zero byte, or swaps in the same part of another real token, and encodes
//! the result again canonically: byte mutations of base64url text rarely
//! give canonical base64url.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{jwe, Key, KeyState, Keyring, OpenOptions, Opened};
use jwe_session_fuzz::{keyring, known_tokens, KnownToken, KIDS};
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

struct Fixture {
    known: HashMap<&'static str, KnownToken>,
    /// Every fixed key, by kid.
    keys: HashMap<&'static str, Key>,
    /// One keyring per fixed key as the primary, every key in each.
    rings: HashMap<&'static str, Keyring>,
    /// The known tokens in a fixed order, for the part-swapping mutation.
    tokens: Vec<&'static str>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let known = known_tokens();
        let keys: HashMap<_, _> = KIDS
            .iter()
            .map(|&kid| (kid, jwe_session_fuzz::key(kid)))
            .collect();
        let rings: HashMap<_, _> = KIDS.iter().map(|&kid| (kid, keyring(kid, &[]))).collect();
        let mut tokens: Vec<&'static str> = known.keys().copied().collect();
        tokens.sort_unstable();
        // The committed tokens must open, every one under every keyring:
        // stale data (new keys without new tokens) fails here, not silently.
        for token in &tokens {
            let expected = &known[token];
            for (primary, ring) in &rings {
                let opened = ring.open(token).unwrap_or_else(|e| {
                    panic!("data/tokens.tsv: a token of {} does not open ({e:?}): regenerate the corpus", expected.kid)
                });
                check_opened(&opened, expected, *primary == expected.kid);
            }
        }
        Fixture {
            known,
            keys,
            rings,
            tokens,
        }
    })
}

fn check_opened(opened: &Opened, expected: &KnownToken, primary: bool) {
    assert_eq!(opened.kid(), expected.kid);
    assert_eq!(opened.plaintext(), &expected.plaintext[..]);
    let state = if primary {
        KeyState::Primary
    } else {
        KeyState::Retired
    };
    assert_eq!(opened.key_state(), state);
}

/// The known token `token` is, or a panic: a token that opens and is not
/// byte-identical to one the server sealed is the finding this target is
/// for.
fn expect_known<'f>(f: &'f Fixture, token: &str, how: &str) -> &'f KnownToken {
    match f.known.get(token) {
        Some(known) => known,
        None => {
            panic!("{how} opened a token that is not byte-identical to any sealed token:\n{token}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    // The kid the token names, to pick the keyring and key. A token that
    // does not parse, or names no fixed key, goes to the first keyring.
    let kid = jwe::parse(token, &OpenOptions::new())
        .ok()
        .and_then(|parsed| parsed.header().kid().map(str::to_owned));
    let kid = kid
        .as_deref()
        .and_then(|kid| KIDS.iter().copied().find(|&k| k == kid))
        .unwrap_or(KIDS[0]);

    if let Ok(opened) = f.rings[kid].open(token) {
        let known = expect_known(f, token, "Keyring::open");
        check_opened(&opened, known, known.kid == kid);
    }
    if let Ok((header, plaintext)) = jwe::open_with_key(token, &f.keys[kid], &OpenOptions::new()) {
        let known = expect_known(f, token, "jwe::open_with_key");
        assert_eq!(known.kid, kid);
        assert_eq!(header.kid(), Some(kid));
        assert_eq!(&plaintext[..], &known.plaintext[..]);
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    if seed % 4 != 0 {
        if let Some(len) = mutate_part(data, size, max_size, seed) {
            return len;
        }
    }
    fuzzer_mutate(data, size, max_size)
});

/// Mutates one part of a five-part token in its decoded form: its bytes
/// mutated, its first byte dropped, a zero byte put first, or the same part
/// of a known token swapped in. The token is the input, or one of the known
/// tokens: libFuzzer keeps only the seeds that add coverage, and a token
/// whose RSA encrypted key starts with a zero byte adds none, yet is the
/// one to drop that byte from. `None` when the input is not five parts of
/// canonical base64url or the result would not fit.
fn mutate_part(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> Option<usize> {
    let tokens = &fixture().tokens;
    let mut rng = Rng(u64::from(seed) | 1 << 40);
    let text = if rng.below(8) == 0 {
        tokens[rng.below(tokens.len())]
    } else {
        std::str::from_utf8(&data[..size]).ok()?
    };
    let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    if parts.len() != 5 {
        return None;
    }
    let which = rng.below(5);
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[which]).ok()?;
    match rng.below(16) {
        0 | 1 => {
            let donor = tokens[rng.below(tokens.len())];
            bytes = URL_SAFE_NO_PAD.decode(donor.split('.').nth(which)?).ok()?;
        }
        // The same number written with one byte less or more (RSA
        // ciphertexts are big-endian numbers of a fixed length).
        2 => {
            if bytes.is_empty() {
                return None;
            }
            bytes.remove(0);
        }
        3 => bytes.insert(0, 0),
        _ => {
            let len = bytes.len();
            let room = len * 2 + 32;
            bytes.resize(room, 0);
            let len = fuzzer_mutate(&mut bytes, len, room);
            bytes.truncate(len);
        }
    }
    parts[which] = URL_SAFE_NO_PAD.encode(&bytes);
    let out = parts.join(".");
    if out.len() > max_size {
        return None;
    }
    data[..out.len()].copy_from_slice(out.as_bytes());
    Some(out.len())
}

/// xorshift64, for the mutator's choices from libFuzzer's seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

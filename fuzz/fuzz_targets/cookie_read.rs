//! (c) Arbitrary `Cookie` headers through the cookie reader and chunk
//! reassembly (`CookieConfig::read`), and the writer's chunks read back.
//!
//! Input: three bytes of configuration (most chunks, cookie size, name),
//! then header values separated by `\n`. Asserted:
//!
//! * nothing panics;
//! * a token read is never empty, never longer than the configuration's
//!   `max_token_len()`, ASCII, and never comes with `is_malformed()`;
//! * the result is the one an independent reading of the documented rules
//!   gives (pairs split at `;`, ASCII whitespace trimmed, names compared
//!   exactly, `NAME` or `NAME.0` … `NAME.15` without leading zeros,
//!   contiguous chunks from 0, at most `max_chunks`, no repeats, no mix of
//!   the single cookie and chunks, values ASCII);
//! * a token of the base64url alphabet and dots, written by
//!   `CookieConfig::write` (every `name=value` within the cookie size), reads
//!   back identical, alone and next to the fuzzed headers when those carry
//!   no session cookie; one too long for the configuration is `TooLarge`;
//! * writing over the fuzzed request removes exactly the session cookies it
//!   carried that the new token does not use.
#![no_main]

use std::collections::BTreeSet;
use std::time::Duration;

use jwe_session::cookie::{CookieConfig, IncomingCookies};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["__Host-session", "s", "__Secure-sid", "session_v2"];

fn config(bytes: [u8; 3]) -> CookieConfig {
    let config = CookieConfig::new()
        .with_max_chunks(1 + usize::from(bytes[0] % 16))
        .with_cookie_size(256 + usize::from(bytes[1]) * 15)
        .with_name(NAMES[usize::from(bytes[2]) % NAMES.len()]);
    config.validate().expect("a valid configuration");
    config
}

/// What the documented rules read from these headers: (token, present
/// names, malformed).
fn model(config: &CookieConfig, headers: &[&[u8]]) -> (Option<String>, BTreeSet<String>, bool) {
    let name = config.name().as_bytes();
    let mut single: Vec<Vec<u8>> = Vec::new();
    let mut chunks: Vec<Option<Vec<Vec<u8>>>> = vec![None; 16];
    let mut present = BTreeSet::new();
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (n, v) = pair.split_at(eq);
            let (n, v) = (n.trim_ascii(), v[1..].trim_ascii());
            let index = if n == name {
                None
            } else {
                let Some(suffix) = n.strip_prefix(name).and_then(|s| s.strip_prefix(b".")) else {
                    continue;
                };
                let Ok(text) = std::str::from_utf8(suffix) else {
                    continue;
                };
                let canonical = text.len() == 1 || !text.starts_with('0');
                match text.parse::<u8>() {
                    Ok(i) if i < 16 && canonical && text.bytes().all(|b| b.is_ascii_digit()) => {
                        Some(usize::from(i))
                    }
                    _ => continue,
                }
            };
            present.insert(String::from_utf8(n.to_vec()).unwrap());
            match index {
                None => single.push(v.to_vec()),
                Some(i) => chunks[i].get_or_insert_with(Vec::new).push(v.to_vec()),
            }
        }
    }
    let values = single
        .iter()
        .chain(chunks.iter().flatten().flatten())
        .collect::<Vec<_>>();
    let non_ascii = values.iter().any(|v| !v.is_ascii());
    let used: Vec<usize> = (0..16).filter(|&i| chunks[i].is_some()).collect();
    let repeated = single.len() > 1 || chunks.iter().flatten().any(|c| c.len() > 1);
    let token = if non_ascii || repeated {
        None
    } else if single.len() == 1 && used.is_empty() {
        Some(single[0].clone())
    } else if single.is_empty()
        && !used.is_empty()
        && used.iter().enumerate().all(|(n, &i)| n == i)
        && used.len() <= config.max_chunks()
    {
        Some(
            used.iter()
                .flat_map(|&i| chunks[i].as_ref().unwrap()[0].clone())
                .collect(),
        )
    } else {
        None
    };
    let token = token
        .filter(|t| !t.is_empty() && t.len() <= config.max_token_len())
        .map(|t| String::from_utf8(t).unwrap());
    let malformed = token.is_none() && !present.is_empty();
    (token, present, malformed)
}

fn observed(
    config: &CookieConfig,
    incoming: &IncomingCookies,
) -> (Option<String>, BTreeSet<String>, bool) {
    (
        incoming.token().map(str::to_owned),
        incoming.present(config).collect(),
        incoming.is_malformed(),
    )
}

/// The `name=value` of each `Set-Cookie` value.
fn pairs(set_cookies: &[String]) -> Vec<&str> {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let config = config([a, b, c]);
    let headers: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();

    let incoming = config.read(headers.iter().copied());
    let seen = observed(&config, &incoming);
    if let Some(token) = incoming.token() {
        assert!(!token.is_empty() && token.is_ascii());
        assert!(token.len() <= config.max_token_len());
        assert!(!incoming.is_malformed());
    }
    assert_eq!(seen, model(&config, &headers));

    // A token from the input: the base64url alphabet and dots, of a length
    // up to a little over what the configuration carries: short, near that
    // cap, or anywhere.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let cap = config.max_token_len();
    let wide = usize::from(a) << 8 | usize::from(b ^ c);
    let len = match (c >> 2) % 4 {
        0 => wide % 512,
        1 => (cap - 32) + wide % 64,
        _ => wide % (cap + 64),
    };
    let token: String = (0..len.max(1))
        .map(|i| {
            let byte = rest.get(i % rest.len().max(1)).copied().unwrap_or(0);
            ALPHABET[(usize::from(byte) + i / rest.len().max(1)) % ALPHABET.len()] as char
        })
        .collect();

    match config.write(&token, Duration::from_secs(60), &IncomingCookies::default()) {
        Err(too_large) => {
            assert!(token.len() > config.max_token_len(), "{too_large}");
            assert!(too_large.needed > config.max_chunks());
        }
        Ok(set) => {
            assert!(token.len() <= config.max_token_len());
            let written = pairs(&set);
            assert!(!written.is_empty() && written.len() <= config.max_chunks());
            for pair in &written {
                assert!(
                    pair.len() <= 256 + usize::from(b) * 15,
                    "{} bytes",
                    pair.len()
                );
            }
            let header = written.join("; ");
            let back = config.read([header.as_bytes()]);
            assert_eq!(back.token(), Some(token.as_str()));
            assert!(!back.is_malformed());
            // Next to unrelated cookies, in any header.
            if seen.1.is_empty() {
                let mut all = headers.clone();
                all.push(header.as_bytes());
                let back = config.read(all.iter().copied());
                assert_eq!(back.token(), Some(token.as_str()));
            }
            // Over the fuzzed request: removals for exactly the stale names.
            let set = config
                .write(&token, Duration::from_secs(60), &incoming)
                .expect("fits");
            let names: BTreeSet<&str> = written
                .iter()
                .map(|p| p.split('=').next().unwrap())
                .collect();
            let removed: BTreeSet<&str> = pairs(&set[written.len()..])
                .iter()
                .map(|p| p.split('=').next().unwrap())
                .collect();
            let stale: BTreeSet<&str> = seen
                .1
                .iter()
                .map(String::as_str)
                .filter(|n| !names.contains(n))
                .collect();
            assert_eq!(removed, stale);
            assert!(set[written.len()..].iter().all(|c| c.contains("Max-Age=0")));
        }
    }
});

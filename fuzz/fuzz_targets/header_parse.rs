//! (b) The token and header parser against an independent reading of the
//! documented rules (src/jwe.rs module docs, tests/parse_rules.rs):
//!
//! * at most the configured length, before anything else;
//! * exactly five `.`-separated parts, each canonical unpadded base64url
//!   (alphabet `A-Z a-z 0-9 - _`, no `=`, no whitespace, length not 1 mod 4,
//!   unused trailing bits zero);
//! * the protected header one JSON object (RFC 8259: whitespace around
//!   tokens is space, tab, CR, LF only; no BOM; strings valid UTF-8 without
//!   raw control characters; escapes `\" \\ \/ \b \f \n \r \t \uXXXX`,
//!   surrogates paired) whose members are all strings, named `alg`, `enc`,
//!   `kid`, `typ`, `cty`, `iv`, `tag`, none repeated (compared after
//!   unescaping);
//! * `alg` and `enc` present and in the allowlist (case-sensitive);
//! * `iv` and `tag` both present for AES-GCM key wrapping, both absent
//!   otherwise.
//!
//! The reader below is written from those rules alone, with its own
//! base64url decoder and JSON reader; the library's parser is never called
//! for it. Each input is tried twice: as a whole token, and as the bytes of
//! a protected header inside an otherwise well-formed token. The library
//! must accept exactly what the reader accepts, with the same members, and
//! `Keyring::open` (whose header cache recognizes the headers its primary
//! wrote without parsing them) must refuse as `Malformed` exactly the tokens
//! the reader refuses (or that lack a `kid`), as `UnknownKey` those naming
//! another key, and otherwise open them or fail as `DecryptFailed`.
#![no_main]

use std::sync::OnceLock;

use jwe_session::{jwe, Keyring, OpenOptions, RejectionKind};
use jwe_session_fuzz::keyring;
use libfuzzer_sys::fuzz_target;

const MAX_LEN: usize = 8192;

const ALGS: [&str; 9] = [
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
const ENCS: [&str; 3] = ["A128GCM", "A192GCM", "A256GCM"];
const MEMBERS: [&str; 7] = ["alg", "enc", "kid", "typ", "cty", "iv", "tag"];
/// The keys in the keyrings below (the RSA keys are left out: they would
/// only make the target slower).
const SYMMETRIC_KIDS: [&str; 9] = [
    "dir-A128GCM",
    "dir-A192GCM",
    "dir-A256GCM",
    "A128KW",
    "A192KW",
    "A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
];

/// A header the rules accept: its members, in order, unescaped.
#[derive(Debug)]
struct Accepted {
    members: Vec<(String, String)>,
}

impl Accepted {
    fn get(&self, name: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------
// The independent reader.

fn b64url_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    } as u32)
}

/// Canonical unpadded base64url.
fn b64url_decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        acc = (acc << 6) | b64url_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // The bits left over are the unused trailing bits: zero.
    (acc == 0).then_some(out)
}

struct Json {
    chars: Vec<char>,
    at: usize,
}

impl Json {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: char) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut n = 0;
        for _ in 0..4 {
            n = n * 16 + self.next()?.to_digit(16)?;
        }
        Some(n)
    }

    /// A string, the opening quote next.
    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Some(out),
                '\\' => match self.next()? {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let unit = self.hex4()?;
                        let code = match unit {
                            0xD800..=0xDBFF => {
                                self.expect('\\')?;
                                self.expect('u')?;
                                let low = self.hex4()?;
                                if !(0xDC00..=0xDFFF).contains(&low) {
                                    return None;
                                }
                                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                            }
                            0xDC00..=0xDFFF => return None,
                            _ => unit,
                        };
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                },
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }
}

/// The protected header's bytes, read by the rules.
fn read_header(bytes: &[u8]) -> Option<Accepted> {
    // Outside strings JSON is ASCII, so the whole text being UTF-8 is the
    // same as every string being UTF-8.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut json = Json {
        chars: text.chars().collect(),
        at: 0,
    };
    let mut members: Vec<(String, String)> = Vec::new();
    json.skip_ws();
    json.expect('{')?;
    json.skip_ws();
    if json.peek() == Some('}') {
        json.next();
    } else {
        loop {
            json.skip_ws();
            let name = json.string()?;
            json.skip_ws();
            json.expect(':')?;
            json.skip_ws();
            // Every allowed member is a string: any other value refuses the
            // header, whatever follows.
            let value = json.string()?;
            if !MEMBERS.contains(&name.as_str()) || members.iter().any(|(n, _)| *n == name) {
                return None;
            }
            members.push((name, value));
            json.skip_ws();
            match json.next()? {
                ',' => continue,
                '}' => break,
                _ => return None,
            }
        }
    }
    json.skip_ws();
    if json.peek().is_some() {
        return None;
    }
    let header = Accepted { members };
    let alg = header.get("alg")?;
    let enc = header.get("enc")?;
    if !ALGS.contains(&alg) || !ENCS.contains(&enc) {
        return None;
    }
    let gcm_kw = alg.ends_with("GCMKW");
    let (iv, tag) = (header.get("iv").is_some(), header.get("tag").is_some());
    if (iv, tag) != (gcm_kw, gcm_kw) {
        return None;
    }
    Some(header)
}

/// A whole compact token, read by the rules.
fn read_token(token: &str, max_len: usize) -> Option<Accepted> {
    if token.len() > max_len {
        return None;
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 5 {
        return None;
    }
    let mut decoded = Vec::with_capacity(5);
    for part in &parts {
        decoded.push(b64url_decode(part.as_bytes())?);
    }
    read_header(&decoded[0])
}

fn b64url_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The comparison.

struct Rings {
    /// Primary A256GCMKW: the header cache reads the IV and tag it does not
    /// know in advance.
    gcm_kw: Keyring,
    /// Primary A256KW: the header cache compares whole encoded headers.
    kw: Keyring,
}

fn rings() -> &'static Rings {
    static RINGS: OnceLock<Rings> = OnceLock::new();
    RINGS.get_or_init(|| Rings {
        gcm_kw: keyring("A256GCMKW", &SYMMETRIC_KIDS),
        kw: keyring("A256KW", &SYMMETRIC_KIDS),
    })
}

fn check(token: &str) {
    let expected = read_token(token, MAX_LEN);
    let options = OpenOptions::new().with_max_len(MAX_LEN);
    match (&expected, jwe::parse(token, &options)) {
        (None, Ok(parsed)) => panic!(
            "the library accepts a token the rules refuse: {:?}\n{token}",
            parsed.header()
        ),
        (Some(accepted), Err(rejection)) => panic!(
            "the library refuses a token the rules accept ({rejection:?}): {accepted:?}\n{token}"
        ),
        (None, Err(rejection)) => assert_eq!(rejection.kind(), RejectionKind::Malformed),
        (Some(accepted), Ok(parsed)) => {
            let header = parsed.header();
            assert_eq!(Some(header.alg().name()), accepted.get("alg"));
            assert_eq!(Some(header.enc().name()), accepted.get("enc"));
            assert_eq!(header.kid(), accepted.get("kid"));
            assert_eq!(header.typ(), accepted.get("typ"));
            assert_eq!(header.cty(), accepted.get("cty"));
            let json = header.to_json();
            assert_eq!(json.len(), accepted.members.len(), "{json:?}");
            for (name, value) in &accepted.members {
                assert_eq!(
                    json.get(name).and_then(|v| v.as_str()),
                    Some(value.as_str())
                );
            }
        }
    }
    // The length cap is checked first and exactly.
    if !token.is_empty() && token.len() <= MAX_LEN {
        let tight = OpenOptions::new().with_max_len(token.len() - 1);
        let rejection = jwe::parse(token, &tight).expect_err("longer than the cap");
        assert_eq!(rejection.kind(), RejectionKind::Malformed);
    }

    let rings = rings();
    for ring in [&rings.gcm_kw, &rings.kw] {
        let outcome = ring.open(token);
        let kid = expected.as_ref().map(|a| a.get("kid"));
        match (kid, outcome) {
            (None | Some(None), Ok(_)) => panic!("Keyring::open opened a malformed token\n{token}"),
            (None | Some(None), Err(rejection)) => {
                assert_eq!(rejection.kind(), RejectionKind::Malformed, "{rejection:?}")
            }
            (Some(Some(kid)), outcome) => {
                let known = SYMMETRIC_KIDS.contains(&kid);
                match outcome {
                    Ok(opened) => {
                        assert!(known);
                        assert_eq!(opened.kid(), kid);
                        let accepted = expected.as_ref().unwrap();
                        let header = opened.header();
                        assert_eq!(Some(header.alg().name()), accepted.get("alg"));
                        assert_eq!(Some(header.enc().name()), accepted.get("enc"));
                        assert_eq!(header.typ(), accepted.get("typ"));
                        assert_eq!(header.cty(), accepted.get("cty"));
                    }
                    Err(rejection) => {
                        let kind = if known {
                            RejectionKind::DecryptFailed
                        } else {
                            RejectionKind::UnknownKey
                        };
                        assert_eq!(rejection.kind(), kind, "{rejection:?}\n{token}");
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        check(token);
    }
    // The input as a protected header, with a 12-byte IV and a 16-byte tag.
    let token = format!(
        "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
        b64url_encode(data)
    );
    check(&token);
});

//! Writes the fuzzing fixtures and seed corpora (docs/fuzzing.md):
//!
//! * `fuzz/data/keys.json`: one fixed test key per supported algorithm (kept
//!   as it is unless `--new-keys` is given);
//! * `fuzz/data/tokens.tsv`: tokens sealed under those keys, which the
//!   `open_tokens` target compares against;
//! * `fuzz/corpus/<target>/`: the seed corpus of every target, replaced
//!   whole.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus            # new tokens, same keys
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus -- --new-keys
//! ```
//!
//! Sealing is randomized (IVs, content keys), so every run writes different
//! tokens; the other seeds are fixed.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{jwe, ContentEncryption, Key, KeyAlgorithm, SealOptions};
use jwe_session_fuzz::{typ_cty_options, KIDS};

/// What the tokens are sealed over: a typical session, an empty payload, a
/// larger one.
fn plaintexts() -> Vec<(&'static str, Vec<u8>)> {
    let session = br#"{"sid":"Kq4fE5n0sDq3W1mZ8yH2xA","sub":"alice","iat":1795000000,"exp":1795001800,"abs":1795043200,"data":{"theme":"dark","n":3}}"#;
    let mut large = Vec::new();
    large.extend_from_slice(br#"{"sub":"bob","note":""#);
    large.extend(std::iter::repeat_n(b'x', 600));
    large.extend_from_slice(br#""}"#);
    vec![
        ("alice", br#"{"sub":"alice"}"#.to_vec()),
        ("session", session.to_vec()),
        ("empty", Vec::new()),
        ("large", large),
    ]
}

fn main() {
    let new_keys = std::env::args().skip(1).any(|a| a == "--new-keys");
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = fuzz.join("data");
    fs::create_dir_all(&data).unwrap();

    let keys = if new_keys {
        let keys = generate_keys();
        let mut json = String::from("{\"keys\":[");
        for (i, key) in keys.iter().enumerate() {
            json.push_str(if i == 0 { "\n  " } else { ",\n  " });
            json.push_str(&key.to_jwk());
        }
        json.push_str("\n]}\n");
        fs::write(data.join("keys.json"), json).unwrap();
        keys
    } else {
        KIDS.iter().map(|kid| jwe_session_fuzz::key(kid)).collect()
    };

    // Tokens: every key, every plaintext, default options; the typ/cty
    // options once per key; and for RSA one token whose encrypted key
    // starts with a zero byte (one real token in 256 does), so that
    // mutations can try the same number written shorter.
    let mut tokens: Vec<(String, &str, Vec<u8>, String)> = Vec::new();
    for key in &keys {
        let slug = key.kid().to_ascii_lowercase();
        for (name, plaintext) in plaintexts() {
            let token = jwe::seal(key, &plaintext, &SealOptions::new()).unwrap();
            tokens.push((format!("{slug}-{name}"), key.kid(), plaintext, token));
        }
        let (_, plaintext) = &plaintexts()[0];
        let token = jwe::seal(key, plaintext, &typ_cty_options()).unwrap();
        tokens.push((
            format!("{slug}-typ-cty"),
            key.kid(),
            plaintext.clone(),
            token,
        ));
        if key.alg().is_rsa() {
            let token = (0..100_000)
                .map(|_| jwe::seal(key, plaintext, &SealOptions::new()).unwrap())
                .find(|t| {
                    let ek = URL_SAFE_NO_PAD
                        .decode(t.split('.').nth(1).unwrap())
                        .unwrap();
                    ek[0] == 0
                })
                .expect("an encrypted key with a leading zero byte");
            tokens.push((
                format!("{slug}-ek-leading-zero"),
                key.kid(),
                plaintext.clone(),
                token,
            ));
        }
    }
    let mut tsv = String::new();
    for (_, kid, plaintext, token) in &tokens {
        writeln!(tsv, "{kid}\t{}\t{token}", URL_SAFE_NO_PAD.encode(plaintext)).unwrap();
    }
    fs::write(data.join("tokens.tsv"), tsv).unwrap();

    let corpus = fuzz.join("corpus");
    let token_seeds: Vec<(String, Vec<u8>)> = tokens
        .iter()
        .map(|(name, _, _, token)| (name.clone(), token.clone().into_bytes()))
        .collect();
    write_corpus(&corpus.join("open_tokens"), &token_seeds);
    write_corpus(
        &corpus.join("header_parse"),
        &header_seeds(&tokens, &token_seeds),
    );
    write_corpus(&corpus.join("cookie_read"), &cookie_seeds(&tokens));
    write_corpus(&corpus.join("key_import"), &key_seeds(&keys));
    println!(
        "wrote {} keys, {} tokens and the seed corpora under {}",
        keys.len(),
        tokens.len(),
        fuzz.display()
    );
}

fn generate_keys() -> Vec<Key> {
    KIDS.iter()
        .map(|&kid| {
            let key = match kid.strip_prefix("dir-") {
                Some(enc) => Key::generate_dir(enc.parse::<ContentEncryption>().unwrap()),
                None => Key::generate(kid.parse::<KeyAlgorithm>().unwrap()),
            };
            key.unwrap().with_kid(kid).unwrap()
        })
        .collect()
}

fn write_corpus(dir: &Path, seeds: &[(String, Vec<u8>)]) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        let path = dir.join(name);
        assert!(!path.exists(), "two seeds named {name}");
        fs::write(path, bytes).unwrap();
    }
}

fn seed(name: &str, bytes: impl AsRef<[u8]>) -> (String, Vec<u8>) {
    (name.to_owned(), bytes.as_ref().to_vec())
}

/// `header_parse`: whole tokens (one of each kind), the decoded headers of
/// real tokens, and headers for each documented rule.
fn header_seeds(
    tokens: &[(String, &str, Vec<u8>, String)],
    token_seeds: &[(String, Vec<u8>)],
) -> Vec<(String, Vec<u8>)> {
    // Whole tokens: one of each key, and with typ and cty for the two
    // keyrings' primaries (whose header caches know those headers).
    let mut out: Vec<(String, Vec<u8>)> = token_seeds
        .iter()
        .filter(|(name, _)| {
            name.ends_with("-alice") || name == "a256gcmkw-typ-cty" || name == "a256kw-typ-cty"
        })
        .map(|(name, bytes)| (format!("token-{name}"), bytes.clone()))
        .collect();
    for (name, _, _, token) in tokens
        .iter()
        .filter(|(name, ..)| name.ends_with("-typ-cty"))
    {
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        out.push((format!("header-{name}"), header));
    }
    let rules: &[(&str, &str)] = &[
        ("min", r#"{"alg":"A256KW","enc":"A256GCM"}"#),
        (
            "spaces",
            " {\t\"alg\" : \"dir\" ,\r\n\"enc\":\"A128GCM\" , \"kid\":\"d\" }\n",
        ),
        (
            "escapes",
            r#"{"\u0061lg":"A128KW","enc":"A192\u0047CM","kid":"\ud83d\ude00\n\"\\\/"}"#,
        ),
        (
            "unicode-kid",
            "{\"alg\":\"A192KW\",\"enc\":\"A256GCM\",\"kid\":\"clé-ü\u{1F511}\"}",
        ),
        (
            "gcmkw",
            r#"{"alg":"A128GCMKW","enc":"A256GCM","kid":"A128GCMKW","iv":"AAAAAAAAAAAAAAAA","tag":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
        ),
        (
            "gcmkw-no-tag",
            r#"{"alg":"A256GCMKW","enc":"A256GCM","kid":"A256GCMKW","iv":"AAAAAAAAAAAAAAAA"}"#,
        ),
        (
            "iv-without-gcmkw",
            r#"{"alg":"A256KW","enc":"A256GCM","iv":"AAAAAAAAAAAAAAAA","tag":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
        ),
        (
            "typ-cty",
            r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"RSA-OAEP-256","typ":"session+jwe","cty":"json"}"#,
        ),
        (
            "duplicate",
            r#"{"alg":"A256KW","alg":"A256KW","enc":"A256GCM","kid":"k1"}"#,
        ),
        (
            "duplicate-escaped",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"a","k\u0069d":"b"}"#,
        ),
        ("no-alg", r#"{"enc":"A256GCM","kid":"k1"}"#),
        ("no-enc", r#"{"alg":"A256KW","kid":"k1"}"#),
        ("alg-none", r#"{"alg":"none","enc":"A256GCM","kid":"k1"}"#),
        (
            "alg-lowercase",
            r#"{"alg":"a256kw","enc":"A256GCM","kid":"k1"}"#,
        ),
        (
            "enc-cbc",
            r#"{"alg":"A256KW","enc":"A128CBC-HS256","kid":"k1"}"#,
        ),
        (
            "zip",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","zip":"DEF"}"#,
        ),
        (
            "crit",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","crit":["exp"],"exp":1}"#,
        ),
        (
            "jwk",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","jwk":{"kty":"oct","k":"AAAA"}}"#,
        ),
        (
            "x5t-s256",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","x5t#S256":"AAAA"}"#,
        ),
        (
            "unknown",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","foo":1}"#,
        ),
        ("kid-number", r#"{"alg":"A256KW","enc":"A256GCM","kid":1}"#),
        ("typ-null", r#"{"alg":"A256KW","enc":"A256GCM","typ":null}"#),
        ("array", r#"[{"alg":"A256KW","enc":"A256GCM","kid":"k1"}]"#),
        ("string", r#""{\"alg\":\"A256KW\",\"enc\":\"A256GCM\"}""#),
        (
            "trailing",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1"}x"#,
        ),
        (
            "trailing-comma",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1",}"#,
        ),
        (
            "lone-surrogate",
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"\ud800"}"#,
        ),
        (
            "control-char",
            "{\"alg\":\"A256KW\",\"enc\":\"A256GCM\",\"kid\":\"a\u{1}b\"}",
        ),
        ("bom", "\u{feff}{\"alg\":\"A256KW\",\"enc\":\"A256GCM\"}"),
        ("empty-object", "{}"),
        ("empty", ""),
    ];
    for (name, header) in rules {
        out.push((format!("rule-{name}"), header.as_bytes().to_vec()));
    }
    // Tokens breaking the structural rules.
    let token = &tokens[0].3;
    let parts: Vec<&str> = token.split('.').collect();
    out.push(seed("token-four-parts", parts[..4].join(".")));
    out.push(seed("token-six-parts", format!("{token}.")));
    out.push(seed(
        "token-padded",
        format!("{}=.{}", parts[0], parts[1..].join(".")),
    ));
    out.push(seed(
        "token-plus-slash",
        token.replace('-', "+").replace('_', "/"),
    ));
    out.push(seed("token-empty-parts", "...."));
    out
}

/// `cookie_read`: three bytes of configuration (max chunks, cookie size,
/// name), then `Cookie` header values separated by newlines.
fn cookie_seeds(tokens: &[(String, &str, Vec<u8>, String)]) -> Vec<(String, Vec<u8>)> {
    // Configuration bytes (fuzz_targets/cookie_read.rs): most chunks 1 + b0
    // % 16, cookie size 256 + 15 * b1, name (b2 % 4; 0 is __Host-session,
    // 1 is s) and the written token's length (b2 / 4 % 4: 0 short, 1 near
    // the cap, else anywhere).
    let config = |chunks: u8, size: u8, name: u8| vec![chunks, size, name];
    let with = |cfg: Vec<u8>, header: &str| {
        let mut bytes = cfg;
        bytes.extend_from_slice(header.as_bytes());
        bytes
    };
    let token = &tokens.iter().find(|t| t.0.ends_with("large")).unwrap().3;
    let mut chunked = String::new();
    for (i, chunk) in token.as_bytes().chunks(300).enumerate() {
        if i > 0 {
            chunked.push_str("; ");
        }
        write!(
            chunked,
            "__Host-session.{i}={}",
            std::str::from_utf8(chunk).unwrap()
        )
        .unwrap();
    }
    vec![
        seed("single", with(config(3, 255, 0), "__Host-session=abc.def")),
        seed(
            "others",
            with(config(3, 255, 0), "a=1; theme=dark; __Host-session=t; b"),
        ),
        seed(
            "chunks",
            with(
                config(3, 255, 0),
                "__Host-session.0=ab; __Host-session.1=cd",
            ),
        ),
        seed(
            "chunks-unordered",
            with(
                config(3, 255, 0),
                "x=y\n__Host-session.1=cd\n__Host-session.0=ab",
            ),
        ),
        seed(
            "chunk-gap",
            with(config(3, 255, 0), "__Host-session.0=a; __Host-session.2=c"),
        ),
        seed(
            "chunk-repeat",
            with(config(3, 255, 0), "__Host-session.0=a; __Host-session.0=b"),
        ),
        seed(
            "single-and-chunk",
            with(config(3, 255, 0), "__Host-session=a; __Host-session.0=b"),
        ),
        seed(
            "not-chunks",
            with(
                config(3, 255, 0),
                "__Host-session.00=a; __Host-session.x=b; __Host-session.16=c; __Host-session=ok",
            ),
        ),
        seed(
            "percent-name",
            with(
                config(3, 255, 0),
                "%5F%5FHost-session=evil; __Host-sessionX=3",
            ),
        ),
        seed("empty-value", with(config(3, 255, 0), "__Host-session=")),
        seed(
            "non-ascii",
            with(config(3, 255, 0), "theme=\u{e9}; __Host-session=caf\u{e9}"),
        ),
        seed(
            "separators",
            with(config(3, 255, 0), ";;  __Host-session=t ;; a=b;"),
        ),
        seed(
            "too-many-chunks",
            with(
                config(1, 255, 0),
                "__Host-session.0=a; __Host-session.1=b; __Host-session.2=c",
            ),
        ),
        seed("small-name", with(config(15, 0, 5), "s.0=a; s.1=b; s.15=z")),
        seed(
            "real-token",
            with(config(3, 255, 4), &format!("__Host-session={token}")),
        ),
        seed("real-token-chunked", with(config(3, 255, 8), &chunked)),
        seed("empty", config(0, 0, 0)),
    ]
}

/// `key_import`: the fixed keys as JWKs, JWK Sets, and `kid:secret` lists.
fn key_seeds(keys: &[Key]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    // One RSA JWK (each costs an OpenSSL key check per import).
    for key in keys.iter().filter(|k| k.kid() != "RSA-OAEP") {
        out.push((
            format!("jwk-{}", key.kid().to_ascii_lowercase()),
            key.to_jwk().as_bytes().to_vec(),
        ));
    }
    let jwk = |i: usize| keys[i].to_jwk().to_string();
    out.push(seed(
        "set-symmetric",
        format!("{{\"keys\":[{},{},{}]}}", jwk(5), jwk(0), jwk(8)),
    ));
    out.push(seed(
        "set-states",
        format!(
            "{{\"keys\":[{},{},{}]}}",
            with_members(&jwk(5), r#""x-state":"primary","x-created":1790000000"#),
            with_members(
                &jwk(6),
                r#""x-state":"staged","x-created":1790000001,"x-promote-at":4102444800"#
            ),
            with_members(
                &jwk(2),
                r#""x-state":"retired","x-created":1700000000,"x-retired":1790000000"#
            ),
        ),
    ));
    out.push(seed(
        "set-promote-due",
        format!(
            "{{\"keys\":[{},{}]}}",
            jwk(4),
            with_members(&jwk(3), r#""x-state":"staged","x-promote-at":1"#)
        ),
    ));
    out.push(seed(
        "set-duplicate-kid",
        format!("{{\"keys\":[{},{}]}}", jwk(5), jwk(5)),
    ));
    out.push(seed("set-rsa", format!("{{\"keys\":[{}]}}", jwk(10))));
    out.push(seed("set-empty", r#"{"keys":[]}"#));
    out.push(seed(
        "jwk-dir-named-by-enc",
        r#"{"kty":"oct","kid":"d","alg":"A128GCM","k":"GawgguFyGrWKav7AX4VKUg"}"#,
    ));
    out.push(seed(
        "jwk-key-ops",
        r#"{"kty":"oct","kid":"o","alg":"A128KW","key_ops":["wrapKey","unwrapKey"],"k":"GawgguFyGrWKav7AX4VKUg"}"#,
    ));
    out.push(seed(
        "jwk-use-sig",
        r#"{"kty":"oct","kid":"s","alg":"A128KW","use":"sig","k":"GawgguFyGrWKav7AX4VKUg"}"#,
    ));
    out.push(seed(
        "env-one",
        "2026-11:q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U",
    ));
    out.push(seed(
        "env-two",
        "2026-11:q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U,2026-10:RO3xWPKcmRd-KZZpIrGOs5VNXdtfwKlkJCBfS3hOL8A",
    ));
    out.push(seed(
        "env-spaces",
        " a : q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U ,\tb:RO3xWPKcmRd-KZZpIrGOs5VNXdtfwKlkJCBfS3hOL8A\n",
    ));
    out.push(seed(
        "env-duplicate",
        "a:q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U,a:RO3xWPKcmRd-KZZpIrGOs5VNXdtfwKlkJCBfS3hOL8A",
    ));
    out.push(seed(
        "env-padded",
        "a:q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U=",
    ));
    out.push(seed(
        "env-zero",
        "z:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ));
    out.push(seed(
        "env-empty-kid",
        ":q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U",
    ));
    out.push(seed("env-json", format!("  {{\"keys\":[{}]}}", jwk(5))));
    out
}

/// A JWK with extra members (already-encoded JSON) before its closing brace.
fn with_members(jwk: &str, members: &str) -> String {
    format!("{},{members}}}", jwk.strip_suffix('}').unwrap())
}

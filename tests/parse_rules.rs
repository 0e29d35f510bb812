//! The strict parsing rules, one test each.
//!
//! Crafted tokens are built here from their pieces with the same AES-GCM and
//! AES Key Wrap crates the library depends on, so each crafted token is
//! valid in every respect except the one rule under test: a refusal then
//! proves that rule works, and the asserted `reason()` shows which check
//! fired. Header failures are `Malformed`; everything after the header
//! parses is `DecryptFailed`.

use aes_gcm::aead::array::ArraySize;
use aes_gcm::aead::consts::{U12, U16, U8};
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use aes_kw::{KwAes128, KwAes192, KwAes256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwe_session::{
    jwe, ContentEncryption, Key, KeyAlgorithm, KeyState, Keyring, OpenOptions, Rejection,
    RejectionKind, SealOptions,
};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// Crafting tokens from pieces.

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// Deterministic, non-zero key bytes.
fn secret(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 1)
        .collect()
}

fn gcm_run<C: AeadInOut + KeyInit>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let cipher = C::new_from_slice(key).unwrap();
    let mut buffer = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(iv.try_into().unwrap(), aad, (&mut buffer[..]).into())
        .unwrap();
    (buffer, tag.to_vec())
}

fn gcm_nonce<N: ArraySize>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    match key.len() {
        16 => gcm_run::<AesGcm<aes::Aes128, N>>(key, iv, aad, plaintext),
        24 => gcm_run::<AesGcm<aes::Aes192, N>>(key, iv, aad, plaintext),
        32 => gcm_run::<AesGcm<aes::Aes256, N>>(key, iv, aad, plaintext),
        other => panic!("no AES-GCM with a {other}-byte key"),
    }
}

/// Genuine AES-GCM (ciphertext, 16-byte tag), for IVs of 8, 12 or 16 bytes.
fn gcm(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match iv.len() {
        8 => gcm_nonce::<U8>(key, iv, aad, plaintext),
        12 => gcm_nonce::<U12>(key, iv, aad, plaintext),
        16 => gcm_nonce::<U16>(key, iv, aad, plaintext),
        other => panic!("no AES-GCM with a {other}-byte IV here"),
    }
}

fn aes_kw_wrap(kek: &[u8], cek: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; cek.len() + 8];
    match kek.len() {
        16 => KwAes128::new_from_slice(kek)
            .unwrap()
            .wrap_key(cek, &mut out),
        24 => KwAes192::new_from_slice(kek)
            .unwrap()
            .wrap_key(cek, &mut out),
        _ => KwAes256::new_from_slice(kek)
            .unwrap()
            .wrap_key(cek, &mut out),
    }
    .unwrap();
    out
}

fn header_text(header: &Map<String, Value>) -> String {
    serde_json::to_string(header).unwrap()
}

fn compact(header_b64: &str, ek: &[u8], iv: &[u8], ct: &[u8], tag: &[u8]) -> String {
    format!(
        "{header_b64}.{}.{}.{}.{}",
        b64(ek),
        b64(iv),
        b64(ct),
        b64(tag)
    )
}

/// A token whose content is genuinely encrypted under `cek` with `iv`, the
/// header's base64url as AAD.
fn craft(header: &str, ek: &[u8], iv: &[u8], cek: &[u8], plaintext: &[u8]) -> String {
    let header_b64 = b64(header.as_bytes());
    let (ct, tag) = gcm(cek, iv, header_b64.as_bytes(), plaintext);
    compact(&header_b64, ek, iv, &ct, &tag)
}

const IV: [u8; 12] = [3; 12];
const PLAINTEXT: &[u8] = br#"{"sub":"alice"}"#;

/// A symmetric key whose bytes the test knows.
struct Fixture {
    alg: KeyAlgorithm,
    kid: String,
    secret: Vec<u8>,
}

impl Fixture {
    fn new(alg: KeyAlgorithm, kid: &str) -> Fixture {
        Fixture {
            alg,
            kid: kid.to_owned(),
            secret: secret(alg.symmetric_key_len().unwrap(), 11),
        }
    }

    fn dir(enc: ContentEncryption, kid: &str) -> Fixture {
        Fixture {
            alg: KeyAlgorithm::Dir,
            kid: kid.to_owned(),
            secret: secret(enc.key_len(), 29),
        }
    }

    fn key(&self) -> Key {
        Key::symmetric(&self.kid, self.alg, &self.secret).unwrap()
    }

    fn keyring(&self) -> Keyring {
        Keyring::new(self.key())
    }

    fn header(&self, enc: ContentEncryption) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("alg".into(), self.alg.name().into());
        header.insert("enc".into(), enc.name().into());
        header.insert("kid".into(), self.kid.clone().into());
        header
    }

    /// The encrypted key for `cek`; AES-GCM key wrapping adds its iv and tag
    /// to `header`.
    fn wrap(&self, cek: &[u8], header: &mut Map<String, Value>) -> Vec<u8> {
        match self.alg {
            KeyAlgorithm::Dir => Vec::new(),
            KeyAlgorithm::A128Kw | KeyAlgorithm::A192Kw | KeyAlgorithm::A256Kw => {
                aes_kw_wrap(&self.secret, cek)
            }
            _ => {
                let kw_iv = [9u8; 12];
                let (ek, tag) = gcm(&self.secret, &kw_iv, b"", cek);
                header.insert("iv".into(), b64(&kw_iv).into());
                header.insert("tag".into(), b64(&tag).into());
                ek
            }
        }
    }

    fn cek(&self, enc: ContentEncryption) -> Vec<u8> {
        if self.alg == KeyAlgorithm::Dir {
            self.secret.clone()
        } else {
            secret(enc.key_len(), 71)
        }
    }

    /// A fully valid token, with `extra` header members added.
    fn token_with(&self, enc: ContentEncryption, extra: &[(&str, Value)]) -> String {
        let mut header = self.header(enc);
        for (name, value) in extra {
            header.insert((*name).into(), value.clone());
        }
        let cek = self.cek(enc);
        let ek = self.wrap(&cek, &mut header);
        craft(&header_text(&header), &ek, &IV, &cek, PLAINTEXT)
    }

    fn token(&self, enc: ContentEncryption) -> String {
        self.token_with(enc, &[])
    }
}

fn symmetric_fixtures() -> Vec<(Fixture, Vec<ContentEncryption>)> {
    let mut out = Vec::new();
    for enc in ContentEncryption::ALL {
        out.push((Fixture::dir(enc, "dir-key"), vec![enc]));
    }
    for alg in [
        KeyAlgorithm::A128Kw,
        KeyAlgorithm::A192Kw,
        KeyAlgorithm::A256Kw,
        KeyAlgorithm::A128GcmKw,
        KeyAlgorithm::A192GcmKw,
        KeyAlgorithm::A256GcmKw,
    ] {
        out.push((
            Fixture::new(alg, "wrap-key"),
            ContentEncryption::ALL.to_vec(),
        ));
    }
    out
}

/// The CEK the content is encrypted under when the wrapped CEK is `len`
/// bytes: that very CEK when AES-GCM can use it.
fn content_cek(len: usize) -> Vec<u8> {
    if [16, 24, 32].contains(&len) {
        secret(len, 3)
    } else {
        secret(32, 3)
    }
}

// ---------------------------------------------------------------------------
// Assertions.

fn refused(keyring: &Keyring, token: &str) -> Rejection {
    match keyring.open(token) {
        Ok(opened) => panic!(
            "token opened ({} bytes) but must be refused: {token:.120}",
            opened.plaintext().len()
        ),
        Err(rejection) => rejection,
    }
}

fn assert_malformed(rejection: &Rejection, reason: &str) {
    assert_eq!(rejection.kind(), RejectionKind::Malformed, "{rejection:?}");
    assert!(
        rejection.reason().contains(reason),
        "reason {:?} should mention {reason:?}",
        rejection.reason()
    );
}

fn assert_decrypt_failed(rejection: &Rejection, reason: &str) {
    assert_eq!(
        rejection.kind(),
        RejectionKind::DecryptFailed,
        "{rejection:?}"
    );
    assert!(
        rejection.reason().contains(reason),
        "reason {:?} should mention {reason:?}",
        rejection.reason()
    );
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn a256kw() -> Fixture {
    Fixture::new(KeyAlgorithm::A256Kw, "k1")
}

/// A real token with its header replaced by `header` (raw JSON text),
/// everything else kept.
fn reheaded(token: &str, header: &str) -> String {
    let mut p = parts(token);
    p[0] = b64(header.as_bytes());
    p.join(".")
}

// ---------------------------------------------------------------------------
// The crafting itself is sound: crafted tokens open.

#[test]
fn crafted_tokens_open_for_every_symmetric_algorithm_and_enc() {
    for (fixture, encs) in symmetric_fixtures() {
        let keyring = fixture.keyring();
        for enc in encs {
            let opened = keyring
                .open(&fixture.token(enc))
                .unwrap_or_else(|e| panic!("{}/{enc}: {e:?}", fixture.alg));
            assert_eq!(opened.plaintext(), PLAINTEXT);
            assert_eq!(opened.header().enc(), enc);
        }
    }
}

// ---------------------------------------------------------------------------
// Structure and length.

#[test]
fn exactly_five_parts() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let token = keyring.seal(PLAINTEXT).unwrap();
    assert!(keyring.open(&token).is_ok());
    let p = parts(&token);

    let four = p[..4].join(".");
    assert_malformed(&refused(&keyring, &four), "five parts");
    let four_dropping_key = [&p[0][..], &p[2], &p[3], &p[4]].join(".");
    assert_malformed(&refused(&keyring, &four_dropping_key), "five parts");
    for six in [
        format!("{token}."),
        format!("{token}.AA"),
        format!("{}.{}", p[0], p[1..].join(".")).replacen('.', "..", 1),
    ] {
        assert_malformed(&refused(&keyring, &six), "five parts");
    }
    for few in ["", ".", "....", "a.b.c"] {
        let rejection = refused(&keyring, few);
        assert_eq!(rejection.kind(), RejectionKind::Malformed, "{few:?}");
    }
}

/// Genuine tokens of exactly `len` bytes, each with the keyring that opens it.
fn token_of_len(len: usize) -> (Keyring, String) {
    for pad in 0..4 {
        let kid = format!("len{}", "x".repeat(pad));
        let key = Key::symmetric(&kid, KeyAlgorithm::Dir, &secret(32, 5)).unwrap();
        let base = jwe::seal(&key, b"", &SealOptions::new()).unwrap().len();
        let approx = (len - base) * 3 / 4;
        for n in approx.saturating_sub(8)..approx + 8 {
            let token = jwe::seal(&key, &vec![b'a'; n], &SealOptions::new()).unwrap();
            if token.len() == len {
                return (Keyring::new(key), token);
            }
        }
    }
    panic!("no token of {len} bytes");
}

#[test]
fn length_cap_default_8_kib_is_checked_before_decoding() {
    assert_eq!(OpenOptions::new().max_len(), 8192);
    let (keyring, at_cap) = token_of_len(8192);
    assert!(
        keyring.open(&at_cap).is_ok(),
        "a token of exactly 8192 bytes opens"
    );

    let (keyring, over) = token_of_len(8193);
    assert_malformed(&refused(&keyring, &over), "longer");

    // Before anything is decoded or split: junk of the same length is
    // refused for its length, not for its base64url or its parts.
    let junk = format!("{}.!!!!.!!!!.!!!!.!!!!", "*".repeat(8193 - 20));
    assert_eq!(junk.len(), 8193);
    assert_malformed(&refused(&keyring, &junk), "longer");
    assert_malformed(&refused(&keyring, &"=".repeat(8193)), "longer");
    assert_malformed(&refused(&keyring, &"=".repeat(1 << 20)), "longer");
    // One byte less is judged on its merits.
    let rejection = refused(&keyring, &junk[1..]);
    assert!(!rejection.reason().contains("longer"), "{rejection:?}");
}

#[test]
fn length_cap_is_configurable_per_keyring() {
    let fixture = a256kw();
    let token = fixture.keyring().seal(&[b'z'; 7000]).unwrap();
    assert!(token.len() > 8192);
    assert_malformed(&refused(&fixture.keyring(), &token), "longer");

    let roomy = fixture
        .keyring()
        .with_open_options(OpenOptions::new().with_max_len(16 * 1024));
    assert_eq!(roomy.open(&token).unwrap().plaintext(), &[b'z'; 7000][..]);

    let exact = fixture
        .keyring()
        .with_open_options(OpenOptions::new().with_max_len(token.len()));
    assert!(exact.open(&token).is_ok());
    let short = fixture
        .keyring()
        .with_open_options(OpenOptions::new().with_max_len(token.len() - 1));
    assert_malformed(&refused(&short, &token), "longer");

    let small = fixture.keyring().seal(PLAINTEXT).unwrap();
    let tight = fixture
        .keyring()
        .with_open_options(OpenOptions::new().with_max_len(100));
    assert!(small.len() > 100);
    assert_malformed(&refused(&tight, &small), "longer");

    // The same cap for `jwe::open_with_key` through its options.
    let err = jwe::open_with_key(
        &small,
        &fixture.key(),
        &OpenOptions::new().with_max_len(small.len() - 1),
    )
    .unwrap_err();
    assert_malformed(&err, "longer");
}

// ---------------------------------------------------------------------------
// Canonical unpadded base64url.

/// A fixture whose sealed header's base64url satisfies `wanted`, found by
/// varying the kid.
fn fixture_whose_header(wanted: impl Fn(&str) -> bool) -> (Fixture, String) {
    let stems = ["", "~~~???", "???~~~", ">>>", "~?~?~?"];
    for stem in stems {
        for pad in 0..6 {
            let kid = format!("{}{stem}", "k".repeat(pad + 1));
            let fixture = a256kw_with_kid(&kid);
            let token = fixture.keyring().seal(PLAINTEXT).unwrap();
            if wanted(&parts(&token)[0]) {
                return (fixture, token);
            }
        }
    }
    panic!("no kid gives such a header");
}

fn a256kw_with_kid(kid: &str) -> Fixture {
    Fixture::new(KeyAlgorithm::A256Kw, kid)
}

#[test]
fn base64url_padding_is_refused() {
    let (fixture, token) = fixture_whose_header(|h| !h.len().is_multiple_of(4));
    let keyring = fixture.keyring();
    assert!(keyring.open(&token).is_ok());
    let mut p = parts(&token);
    // Re-encode the header, and the 16-byte tag, with padding.
    let padded_header = URL_SAFE.encode(unb64(&p[0]));
    assert!(padded_header.ends_with('='));
    let mut q = p.clone();
    q[0] = padded_header;
    assert_malformed(&refused(&keyring, &q.join(".")), "base64url");

    let padded_tag = URL_SAFE.encode(unb64(&p[4]));
    assert!(padded_tag.ends_with("=="));
    p[4] = padded_tag;
    assert_malformed(&refused(&keyring, &p.join(".")), "base64url");
}

#[test]
fn base64url_standard_alphabet_plus_and_slash_are_refused() {
    let (fixture, token) = fixture_whose_header(|h| h.contains('-') && h.contains('_'));
    let keyring = fixture.keyring();
    assert!(keyring.open(&token).is_ok());
    let p = parts(&token);
    let header = unb64(&p[0]);
    // Standard-alphabet base64 of the same bytes, without padding.
    let standard = STANDARD.encode(&header).trim_end_matches('=').to_owned();
    assert!(standard.contains('+') && standard.contains('/'));
    for (from, to) in [('-', "+"), ('_', "/")] {
        let mut q = p.clone();
        q[0] = p[0].replace(from, to);
        assert_malformed(&refused(&keyring, &q.join(".")), "base64url");
    }
    let mut q = p.clone();
    q[0] = standard;
    assert_malformed(&refused(&keyring, &q.join(".")), "base64url");
}

#[test]
fn base64url_whitespace_is_refused() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let token = keyring.seal(PLAINTEXT).unwrap();
    let p = parts(&token);
    for (index, at, ws) in [
        (0, 4, " "),
        (0, 0, " "),
        (1, 8, "\n"),
        (2, 16, "\n"),
        (3, 2, "\t"),
        (4, 22, "\r\n"),
        (0, p[0].len(), " "),
    ] {
        let mut q = p.clone();
        q[index].insert_str(at, ws);
        assert_malformed(&refused(&keyring, &q.join(".")), "base64url");
    }
    assert_malformed(&refused(&keyring, &format!("{token}\n")), "base64url");
    assert_malformed(&refused(&keyring, &format!(" {token}")), "base64url");
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The same part with the last character's unused low bits set.
fn with_trailing_bits(part: &str) -> String {
    assert!(!part.len().is_multiple_of(4), "no unused bits in {part}");
    let last = *part.as_bytes().last().unwrap();
    let value = ALPHABET.iter().position(|&c| c == last).unwrap();
    let changed = ALPHABET[value | 1] as char;
    let mut out = part[..part.len() - 1].to_owned();
    out.push(changed);
    out
}

#[test]
fn base64url_non_zero_trailing_bits_are_refused() {
    let (fixture, token) = fixture_whose_header(|h| !h.len().is_multiple_of(4));
    let keyring = fixture.keyring();
    assert!(keyring.open(&token).is_ok());
    let p = parts(&token);
    for index in [0, 4] {
        let mut q = p.clone();
        q[index] = with_trailing_bits(&p[index]);
        assert_ne!(q[index], p[index]);
        // A lax decoder would give the very same bytes back.
        assert_eq!(
            base64::engine::GeneralPurpose::new(
                &base64::alphabet::URL_SAFE,
                base64::engine::GeneralPurposeConfig::new()
                    .with_encode_padding(false)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            )
            .decode(&q[index])
            .unwrap(),
            unb64(&p[index])
        );
        assert_malformed(&refused(&keyring, &q.join(".")), "base64url");
    }
}

// ---------------------------------------------------------------------------
// The header: one JSON object, no repeats, strings where strings belong.

#[test]
fn header_json_array_is_refused() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let header = format!(
        "[{}]",
        header_text(&fixture.header(ContentEncryption::A256Gcm))
    );
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let token = craft(
        &header,
        &fixture.wrap(&cek, &mut Map::new()),
        &IV,
        &cek,
        PLAINTEXT,
    );
    assert_malformed(&refused(&keyring, &token), "one JSON object");
}

#[test]
fn header_json_string_and_other_values_are_refused() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut Map::new());
    let as_string = Value::String(header_text(&fixture.header(ContentEncryption::A256Gcm)));
    for header in [
        as_string.to_string(),
        "null".to_owned(),
        "42".to_owned(),
        "".to_owned(),
        "{".to_owned(),
    ] {
        let token = craft(&header, &ek, &IV, &cek, PLAINTEXT);
        assert_malformed(&refused(&keyring, &token), "one JSON object");
    }
}

#[test]
fn header_trailing_garbage_is_refused() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut Map::new());
    let good = header_text(&fixture.header(ContentEncryption::A256Gcm));
    assert!(keyring
        .open(&craft(&good, &ek, &IV, &cek, PLAINTEXT))
        .is_ok());
    for header in [
        format!("{good}x"),
        format!("{good}{{}}"),
        format!("{good}{good}"),
        format!("{good},"),
        format!("{good}\u{0}"),
    ] {
        let token = craft(&header, &ek, &IV, &cek, PLAINTEXT);
        assert_malformed(&refused(&keyring, &token), "one JSON object");
    }
}

#[test]
fn header_duplicate_members_are_refused() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut Map::new());
    for header in [
        r#"{"alg":"A256KW","alg":"A256KW","enc":"A256GCM","kid":"k1"}"#,
        r#"{"alg":"dir","alg":"A256KW","enc":"A256GCM","kid":"k1"}"#,
        r#"{"alg":"A256KW","enc":"A256GCM","kid":"other","kid":"k1"}"#,
        r#"{"alg":"A256KW","enc":"A128GCM","enc":"A256GCM","kid":"k1"}"#,
    ] {
        let token = craft(header, &ek, &IV, &cek, PLAINTEXT);
        assert_malformed(&refused(&keyring, &token), "repeats a member");
    }
}

fn assert_member_must_be_string(member: &str) {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    for value in [
        json!(1),
        json!(["x"]),
        json!({"x": 1}),
        json!(null),
        json!(true),
    ] {
        let token = fixture.token_with(ContentEncryption::A256Gcm, &[(member, value.clone())]);
        assert_malformed(&refused(&keyring, &token), "not a string");
    }
}

#[test]
fn header_alg_must_be_a_string() {
    assert_member_must_be_string("alg");
}

#[test]
fn header_enc_must_be_a_string() {
    assert_member_must_be_string("enc");
}

#[test]
fn header_kid_must_be_a_string() {
    assert_member_must_be_string("kid");
}

#[test]
fn header_needs_alg_and_enc_from_the_allowlist() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut Map::new());
    for (header, reason) in [
        (r#"{"enc":"A256GCM","kid":"k1"}"#, "no alg"),
        (r#"{"alg":"A256KW","kid":"k1"}"#, "no enc"),
        (
            r#"{"alg":"none","enc":"A256GCM","kid":"k1"}"#,
            "alg not supported",
        ),
        (
            r#"{"alg":"a256kw","enc":"A256GCM","kid":"k1"}"#,
            "alg not supported",
        ),
        (
            r#"{"alg":"RSA1_5","enc":"A256GCM","kid":"k1"}"#,
            "alg not supported",
        ),
        (
            r#"{"alg":"A256KW","enc":"A128CBC-HS256","kid":"k1"}"#,
            "enc not supported",
        ),
        (
            r#"{"alg":"A256KW","enc":"a256gcm","kid":"k1"}"#,
            "enc not supported",
        ),
        (
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","foo":1}"#,
            "unknown header member",
        ),
        (
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","epk":{}}"#,
            "unknown header member",
        ),
    ] {
        let token = craft(header, &ek, &IV, &cek, PLAINTEXT);
        assert_malformed(&refused(&keyring, &token), reason);
    }
}

#[test]
fn header_iv_and_tag_only_with_aes_gcm_key_wrapping() {
    let fixture = a256kw();
    let token = fixture.token_with(
        ContentEncryption::A256Gcm,
        &[("iv", b64(&[1; 12]).into()), ("tag", b64(&[1; 16]).into())],
    );
    assert_malformed(&refused(&fixture.keyring(), &token), "AES-GCM key wrapping");

    let gcmkw = Fixture::new(KeyAlgorithm::A256GcmKw, "g1");
    let good = gcmkw.token(ContentEncryption::A256Gcm);
    assert!(gcmkw.keyring().open(&good).is_ok());
    let mut header: Map<String, Value> = serde_json::from_slice(&unb64(&parts(&good)[0])).unwrap();
    header.remove("tag");
    let token = reheaded(&good, &header_text(&header));
    assert_malformed(&refused(&gcmkw.keyring(), &token), "AES-GCM key wrapping");
}

// ---------------------------------------------------------------------------
// Key selection and binding.

#[test]
fn kid_must_name_a_key_in_the_ring() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    // Valid under the very key bytes, but named "elsewhere".
    let stranger = Fixture {
        kid: "elsewhere".into(),
        ..a256kw()
    };
    let token = stranger.token(ContentEncryption::A256Gcm);
    let rejection = refused(&keyring, &token);
    assert_eq!(rejection.kind(), RejectionKind::UnknownKey);
    assert_eq!(rejection.kid(), Some("elsewhere"));
    // The stranger's own ring opens it: only the kid was wrong.
    assert!(stranger.keyring().open(&token).is_ok());

    // No kid at all: a keyring cannot choose a key.
    let mut header = fixture.header(ContentEncryption::A256Gcm);
    header.remove("kid");
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut header);
    let token = craft(&header_text(&header), &ek, &IV, &cek, PLAINTEXT);
    assert_malformed(&refused(&keyring, &token), "kid");
    assert!(jwe::open_with_key(&token, &fixture.key(), &OpenOptions::new()).is_ok());

    // Near misses of the kid do not match.
    for kid in ["K1", "k1 ", " k1", "k", "k1\u{200b}"] {
        let near = Fixture {
            kid: kid.into(),
            ..a256kw()
        };
        let rejection = refused(&keyring, &near.token(ContentEncryption::A256Gcm));
        assert_eq!(rejection.kind(), RejectionKind::UnknownKey, "{kid:?}");
    }
}

#[test]
fn header_alg_must_be_the_keys_bound_alg() {
    // The keyring holds an A256KW key. A token that is entirely valid under
    // A256GCMKW with the same key bytes and kid is refused.
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let impostor = Fixture {
        alg: KeyAlgorithm::A256GcmKw,
        ..a256kw()
    };
    let token = impostor.token(ContentEncryption::A256Gcm);
    assert!(jwe::open_with_key(&token, &impostor.key(), &OpenOptions::new()).is_ok());
    let rejection = refused(&keyring, &token);
    assert_decrypt_failed(&rejection, "alg is not the one");
    assert_eq!(rejection.kid(), Some("k1"));

    // And as `dir`, using the key bytes directly as the CEK.
    let as_dir = Fixture {
        alg: KeyAlgorithm::Dir,
        ..a256kw()
    };
    let token = as_dir.token(ContentEncryption::A256Gcm);
    assert!(jwe::open_with_key(&token, &as_dir.key(), &OpenOptions::new()).is_ok());
    assert_decrypt_failed(&refused(&keyring, &token), "alg is not the one");

    // A real token re-headed with another alg and the same kid.
    let real = keyring.seal(PLAINTEXT).unwrap();
    for alg in ["A128KW", "A192KW", "dir"] {
        let token = reheaded(
            &real,
            &format!(r#"{{"alg":"{alg}","enc":"A256GCM","kid":"k1"}}"#),
        );
        assert_decrypt_failed(&refused(&keyring, &token), "alg is not the one");
    }
}

#[test]
fn dir_header_enc_must_be_the_keys_enc() {
    // A dir key of 32 bytes is bound to A256GCM. Tokens under its first 16
    // or 24 bytes with A128GCM / A192GCM are refused.
    let fixture = Fixture::dir(ContentEncryption::A256Gcm, "d1");
    let keyring = fixture.keyring();
    assert!(keyring
        .open(&fixture.token(ContentEncryption::A256Gcm))
        .is_ok());
    for enc in [ContentEncryption::A128Gcm, ContentEncryption::A192Gcm] {
        let short = Fixture {
            secret: fixture.secret[..enc.key_len()].to_vec(),
            ..Fixture::dir(enc, "d1")
        };
        let token = short.token(enc);
        assert!(short.keyring().open(&token).is_ok());
        assert_decrypt_failed(&refused(&keyring, &token), "enc is not the one");
    }
}

#[test]
fn zip_is_refused() {
    let fixture = Fixture::new(KeyAlgorithm::A128Kw, "z1");
    for value in [json!("DEF"), json!(""), json!(1)] {
        let token = fixture.token_with(ContentEncryption::A256Gcm, &[("zip", value)]);
        assert_malformed(&refused(&fixture.keyring(), &token), "zip");
    }
}

#[test]
fn crit_is_refused() {
    let fixture = a256kw();
    let keyring = fixture.keyring();
    let cek = fixture.cek(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut Map::new());
    for header in [
        r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","crit":[]}"#,
        r#"{"alg":"A256KW","crit":["exp"],"enc":"A256GCM","exp":1,"kid":"k1"}"#,
        r#"{"alg":"A256KW","crit":["b64"],"enc":"A256GCM","kid":"k1"}"#,
    ] {
        let token = craft(header, &ek, &IV, &cek, PLAINTEXT);
        assert_malformed(&refused(&keyring, &token), "crit");
    }
}

fn assert_key_member_refused(member: &str, value: Value) {
    for (fixture, encs) in symmetric_fixtures() {
        let token = fixture.token_with(encs[0], &[(member, value.clone())]);
        assert_malformed(
            &refused(&fixture.keyring(), &token),
            "keys named or carried",
        );
    }
}

#[test]
fn jwk_header_is_refused() {
    assert_key_member_refused(
        "jwk",
        json!({"kty": "oct", "k": b64(&secret(32, 11)), "alg": "A256KW"}),
    );
}

#[test]
fn jku_header_is_refused() {
    assert_key_member_refused("jku", json!("https://attacker.example/jwks.json"));
}

#[test]
fn x5u_header_is_refused() {
    assert_key_member_refused("x5u", json!("https://attacker.example/cert.pem"));
}

#[test]
fn x5c_header_is_refused() {
    assert_key_member_refused("x5c", json!(["MIIBszCCAVmgAwIBAgIUJ"]));
}

#[test]
fn x5t_headers_are_refused() {
    assert_key_member_refused("x5t", json!(b64(&[7; 20])));
    assert_key_member_refused("x5t#S256", json!(b64(&[7; 32])));
}

// ---------------------------------------------------------------------------
// Sizes, after the header parses.

#[test]
fn iv_must_be_exactly_12_bytes() {
    for (fixture, encs) in symmetric_fixtures() {
        let keyring = fixture.keyring();
        let enc = encs[0];
        let mut header = fixture.header(enc);
        let cek = fixture.cek(enc);
        let ek = fixture.wrap(&cek, &mut header);
        let text = header_text(&header);
        // Genuine AES-GCM under 8- and 16-byte IVs: a lax implementation
        // that takes any IV length would open these.
        for iv in [vec![5u8; 8], vec![5u8; 16]] {
            let token = craft(&text, &ek, &iv, &cek, PLAINTEXT);
            assert_decrypt_failed(&refused(&keyring, &token), "IV is not 12 bytes");
        }
        let good = craft(&text, &ek, &IV, &cek, PLAINTEXT);
        assert!(keyring.open(&good).is_ok());
        let p = parts(&good);
        for len in [0usize, 11, 13] {
            let mut q = p.clone();
            q[2] = b64(&vec![3u8; len]);
            assert_decrypt_failed(&refused(&keyring, &q.join(".")), "IV is not 12 bytes");
        }
    }
}

#[test]
fn tag_must_be_exactly_16_bytes() {
    for (fixture, encs) in symmetric_fixtures() {
        let keyring = fixture.keyring();
        let good = fixture.token(encs[0]);
        assert!(keyring.open(&good).is_ok());
        let p = parts(&good);
        let tag = unb64(&p[4]);
        // Truncated GCM tags (genuine prefixes of the real tag), longer
        // tags, and none.
        let mut candidates: Vec<Vec<u8>> = (0..16).map(|n| tag[..n].to_vec()).collect();
        candidates.push([&tag[..], &[0]].concat());
        candidates.push([&tag[..], &tag[..]].concat());
        for candidate in candidates {
            let mut q = p.clone();
            q[4] = b64(&candidate);
            assert_decrypt_failed(&refused(&keyring, &q.join(".")), "tag is not 16 bytes");
        }
    }
}

#[test]
fn dir_with_an_encrypted_key_is_refused() {
    for enc in ContentEncryption::ALL {
        let fixture = Fixture::dir(enc, "d1");
        let keyring = fixture.keyring();
        let header = header_text(&fixture.header(enc));
        // Content genuinely encrypted under the dir key; a lax
        // implementation that ignored the encrypted key would open it.
        for ek in [
            vec![1u8],
            vec![7u8; 24],
            aes_kw_wrap(&[9; 32], &fixture.secret),
        ] {
            let token = craft(&header, &ek, &IV, &fixture.secret, PLAINTEXT);
            assert_decrypt_failed(&refused(&keyring, &token), "dir token carries");
        }
        let token = craft(&header, &[], &IV, &fixture.secret, PLAINTEXT);
        assert!(keyring.open(&token).is_ok());
    }
}

#[test]
fn key_wrap_encrypted_key_must_be_cek_length_plus_8() {
    for alg in [
        KeyAlgorithm::A128Kw,
        KeyAlgorithm::A192Kw,
        KeyAlgorithm::A256Kw,
    ] {
        let fixture = Fixture::new(alg, "w1");
        let keyring = fixture.keyring();
        for enc in ContentEncryption::ALL {
            let header = header_text(&fixture.header(enc));
            // Genuine wraps of CEKs of the wrong size, and odd lengths.
            for bad in [0usize, 8, 16, 24, 32, 40]
                .into_iter()
                .filter(|&n| n != enc.key_len())
            {
                let ek = if bad == 0 {
                    Vec::new()
                } else {
                    aes_kw_wrap(&fixture.secret, &secret(bad, 3))
                };
                let token = craft(&header, &ek, &IV, &content_cek(bad), PLAINTEXT);
                assert_decrypt_failed(&refused(&keyring, &token), "wrapped key length");
            }
            let good = fixture.token(enc);
            let p = parts(&good);
            let ek = unb64(&p[1]);
            assert_eq!(ek.len(), enc.key_len() + 8);
            for changed in [ek[..ek.len() - 1].to_vec(), [&ek[..], &[0]].concat()] {
                let mut q = p.clone();
                q[1] = b64(&changed);
                assert_decrypt_failed(&refused(&keyring, &q.join(".")), "wrapped key length");
            }
        }
    }
}

#[test]
fn aes_gcm_key_wrap_encrypted_key_must_be_cek_length() {
    for alg in [
        KeyAlgorithm::A128GcmKw,
        KeyAlgorithm::A192GcmKw,
        KeyAlgorithm::A256GcmKw,
    ] {
        let fixture = Fixture::new(alg, "g1");
        let keyring = fixture.keyring();
        for enc in ContentEncryption::ALL {
            for bad in [0usize, 8, 16, 24, 32, 40]
                .into_iter()
                .filter(|&n| n != enc.key_len())
            {
                let mut header = fixture.header(enc);
                let ek = fixture.wrap(&secret(bad, 3), &mut header);
                let token = craft(
                    &header_text(&header),
                    &ek,
                    &IV,
                    &content_cek(bad),
                    PLAINTEXT,
                );
                assert_decrypt_failed(&refused(&keyring, &token), "wrapped key length");
            }
        }
    }
}

#[test]
fn cek_length_must_match_enc() {
    // A128KW wraps a 16-byte CEK and the content is genuinely A128GCM under
    // it, but the header says A256GCM (and A192GCM): a lax implementation
    // that picked the cipher by CEK length would open these.
    let fixture = Fixture::new(KeyAlgorithm::A128Kw, "c1");
    let keyring = fixture.keyring();
    let cek = secret(16, 44);
    for claimed in [ContentEncryption::A256Gcm, ContentEncryption::A192Gcm] {
        let header = header_text(&fixture.header(claimed));
        let token = craft(
            &header,
            &aes_kw_wrap(&fixture.secret, &cek),
            &IV,
            &cek,
            PLAINTEXT,
        );
        assert_decrypt_failed(&refused(&keyring, &token), "wrapped key length");
    }
    let honest = header_text(&fixture.header(ContentEncryption::A128Gcm));
    let token = craft(
        &honest,
        &aes_kw_wrap(&fixture.secret, &cek),
        &IV,
        &cek,
        PLAINTEXT,
    );
    assert!(keyring.open(&token).is_ok());

    // The same with AES-GCM key wrapping.
    let fixture = Fixture::new(KeyAlgorithm::A128GcmKw, "c2");
    let keyring = fixture.keyring();
    let mut header = fixture.header(ContentEncryption::A256Gcm);
    let ek = fixture.wrap(&cek, &mut header);
    let token = craft(&header_text(&header), &ek, &IV, &cek, PLAINTEXT);
    assert_decrypt_failed(&refused(&keyring, &token), "wrapped key length");
}

#[test]
fn aes_gcm_key_wrap_header_iv_and_tag_sizes() {
    let fixture = Fixture::new(KeyAlgorithm::A256GcmKw, "g1");
    let keyring = fixture.keyring();
    let good = fixture.token(ContentEncryption::A256Gcm);
    let header: Map<String, Value> = serde_json::from_slice(&unb64(&parts(&good)[0])).unwrap();
    for (member, value, reason) in [
        ("iv", b64(&[9; 11]), "key wrap iv is not 12 bytes"),
        ("iv", b64(&[9; 16]), "key wrap iv is not 12 bytes"),
        (
            "iv",
            format!("{}=", b64(&[9; 12])),
            "key wrap iv is not 12 bytes",
        ),
        ("tag", b64(&[1; 12]), "key wrap tag is not 16 bytes"),
        (
            "tag",
            "not base64!".to_owned(),
            "key wrap tag is not 16 bytes",
        ),
    ] {
        let mut changed = header.clone();
        changed.insert(member.into(), value.into());
        let token = reheaded(&good, &header_text(&changed));
        assert_decrypt_failed(&refused(&keyring, &token), reason);
    }
}

#[test]
fn failures_after_the_header_are_all_decrypt_failed() {
    // Wrong key bytes under the right kid: unwrap or authentication fails,
    // and the kind is the same DecryptFailed as every size check.
    for (fixture, encs) in symmetric_fixtures() {
        let wrong = Fixture {
            secret: secret(fixture.secret.len(), 200),
            alg: fixture.alg,
            kid: fixture.kid.clone(),
        };
        let token = wrong.token(encs[0]);
        let rejection = refused(&fixture.keyring(), &token);
        assert_eq!(
            rejection.kind(),
            RejectionKind::DecryptFailed,
            "{}: {rejection:?}",
            fixture.alg
        );
        assert!(
            rejection.reason().contains("unwrap") || rejection.reason().contains("authentication"),
            "{rejection:?}"
        );
    }
}

#[test]
fn typ_and_cty_are_accepted_and_reported() {
    let fixture = a256kw();
    let token = fixture.token_with(
        ContentEncryption::A256Gcm,
        &[("typ", json!("session+jwe")), ("cty", json!("json"))],
    );
    let opened = fixture.keyring().open(&token).unwrap();
    assert_eq!(opened.header().typ(), Some("session+jwe"));
    assert_eq!(opened.header().cty(), Some("json"));
    assert_eq!(opened.key_state(), KeyState::Primary);
}

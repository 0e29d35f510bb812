//! Micro-benchmarks: jwe-session against its peers and against a floor.
//!
//! `cargo bench --bench micro [--features rsa] [-- FILTER]`; the tables in
//! `docs/benchmarks.md` come from `scripts/bench-table.py`, which reads
//! criterion's results under `target/criterion`, and josekit's from
//! `compat/target/criterion` (`cargo bench --manifest-path compat/Cargo.toml
//! --bench josekit`: josekit is benchmarked in its own workspace, since it
//! turns on serde_json's `preserve_order`, which applications do not get).
//!
//! For each algorithm pair (`dir`+`A256GCM`, `A256KW`+`A256GCM`,
//! `A256GCMKW`+`A256GCM`) and each payload size (a typical session of about
//! 250 bytes of JSON, a large one of about 2 KiB):
//!
//! * `jwe/{seal,open}/SIZE`: the JWE operation alone, on the same plaintext
//!   bytes: jwe-session's `Keyring::seal_with`/`Keyring::open` (josekit's
//!   `serialize_compact`/`deserialize_compact` in `compat/`), the `cookie`
//!   crate's private jar (AES-256-GCM whatever the pair: it has no key wrapping) and the
//!   floor (below).
//! * `session/{save,load}/SIZE`: the full session path: jwe-session's
//!   `SessionManager::save` of a changed session and `SessionManager::load`
//!   (open, claims and deadline checks, data decoded into a `SessionMap`,
//!   memory revocation check); the private jar with serde_json, as
//!   actix-session's cookie store does; and the floor with serde_json.
//! * `parts`: a keyring snapshot, the memory revocation check, and (feature
//!   `rsa`) an RSA-OAEP-256 open.
//!
//! The floor is the least a correct implementation must do with the same
//! crates: fresh randomness from the OS in one call, the key wrap, a header
//! written and read by serde_json, base64url, AES-GCM in place. No strict
//! parsing, no allowlist, no zeroizing, no keyring.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use aes_kw::KwAes256;
use base64_simd::{Out, URL_SAFE_NO_PAD};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use jwe_session::adapter::{self, Admission, RequestHead};
use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
use jwe_session::SessionLayer;
use jwe_session::{Key, KeyAlgorithm, Keyring, SealOptions};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use common::{claims, sizes, unix_seconds, Claims};

// ---------------------------------------------------------------------------
// Inputs

/// The algorithm pairs compared.
const PAIRS: [(KeyAlgorithm, &str); 3] = [
    (KeyAlgorithm::Dir, "dir+A256GCM"),
    (KeyAlgorithm::A256Kw, "A256KW+A256GCM"),
    (KeyAlgorithm::A256GcmKw, "A256GCMKW+A256GCM"),
];

fn secret_of(key: &Key) -> Vec<u8> {
    let jwk: Value = serde_json::from_str(&key.to_jwk()).unwrap();
    URL_SAFE_NO_PAD
        .decode_to_vec(jwk["k"].as_str().unwrap())
        .unwrap()
}

// ---------------------------------------------------------------------------
// The floor

struct FloorKey {
    alg: KeyAlgorithm,
    kid: String,
    secret: Vec<u8>,
}

#[derive(Serialize)]
struct FloorHeaderOut<'a> {
    alg: &'a str,
    enc: &'a str,
    kid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iv: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
}

#[derive(Deserialize)]
struct FloorHeaderIn<'a> {
    #[serde(borrow)]
    alg: &'a str,
    #[serde(borrow)]
    kid: &'a str,
    #[serde(borrow, default)]
    iv: Option<&'a str>,
    #[serde(borrow, default)]
    tag: Option<&'a str>,
}

fn floor_seal(key: &FloorKey, plaintext: &[u8]) -> String {
    // Everything random this seal needs, in one call: IV, CEK, wrap IV.
    let mut random = [0u8; 12 + 32 + 12];
    let need = match key.alg {
        KeyAlgorithm::Dir => 12,
        KeyAlgorithm::A256Kw => 44,
        _ => 56,
    };
    OsRng.fill_bytes(&mut random[..need]);
    let (iv, rest) = random.split_at(12);
    let (cek, kw_iv) = rest.split_at(32);
    let mut encrypted_key = [0u8; 40];
    let (cek, encrypted_key, kw_iv, kw_tag) = match key.alg {
        KeyAlgorithm::Dir => (&key.secret[..], &encrypted_key[..0], None, None),
        KeyAlgorithm::A256Kw => {
            let kek = KwAes256::new_from_slice(&key.secret).unwrap();
            kek.wrap_key(cek, &mut encrypted_key).unwrap();
            (cek, &encrypted_key[..], None, None)
        }
        _ => {
            let kek = Aes256Gcm::new_from_slice(&key.secret).unwrap();
            encrypted_key[..32].copy_from_slice(cek);
            let tag = kek
                .encrypt_inout_detached(
                    kw_iv.try_into().unwrap(),
                    b"",
                    (&mut encrypted_key[..32]).into(),
                )
                .unwrap();
            (
                cek,
                &encrypted_key[..32],
                Some(URL_SAFE_NO_PAD.encode_to_string(kw_iv)),
                Some(URL_SAFE_NO_PAD.encode_to_string(tag)),
            )
        }
    };
    let header = serde_json::to_vec(&FloorHeaderOut {
        alg: key.alg.name(),
        enc: "A256GCM",
        kid: &key.kid,
        iv: kw_iv.as_deref(),
        tag: kw_tag.as_deref(),
    })
    .unwrap();
    let mut token = String::with_capacity((header.len() + plaintext.len() + 100) * 4 / 3 + 8);
    URL_SAFE_NO_PAD.encode_append(&header, &mut token);
    let aad_len = token.len();
    let mut buffer = plaintext.to_vec();
    let tag = Aes256Gcm::new_from_slice(cek)
        .unwrap()
        .encrypt_inout_detached(
            iv.try_into().unwrap(),
            token.as_bytes(),
            (&mut buffer[..]).into(),
        )
        .unwrap();
    debug_assert_eq!(aad_len, token.len());
    for part in [encrypted_key, iv, &buffer, &tag] {
        token.push('.');
        URL_SAFE_NO_PAD.encode_append(part, &mut token);
    }
    token
}

fn floor_open(key: &FloorKey, token: &str) -> Option<Vec<u8>> {
    let mut parts = token.split('.');
    let (h, k, i, c, t) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let header_bytes = URL_SAFE_NO_PAD.decode_to_vec(h).ok()?;
    let header: FloorHeaderIn = serde_json::from_slice(&header_bytes).ok()?;
    if header.kid != key.kid || header.alg != key.alg.name() {
        return None;
    }
    let mut cek = [0u8; 32];
    match key.alg {
        KeyAlgorithm::Dir => cek.copy_from_slice(&key.secret),
        KeyAlgorithm::A256Kw => {
            let mut wrapped = [0u8; 40];
            decode_exactly(k, &mut wrapped)?;
            let kek = KwAes256::new_from_slice(&key.secret).ok()?;
            kek.unwrap_key(&wrapped, &mut cek).ok()?;
        }
        _ => {
            let (mut kw_iv, mut kw_tag) = ([0u8; 12], [0u8; 16]);
            decode_exactly(header.iv?, &mut kw_iv)?;
            decode_exactly(header.tag?, &mut kw_tag)?;
            decode_exactly(k, &mut cek)?;
            Aes256Gcm::new_from_slice(&key.secret)
                .ok()?
                .decrypt_inout_detached(
                    (&kw_iv).into(),
                    b"",
                    (&mut cek[..]).into(),
                    (&kw_tag).into(),
                )
                .ok()?;
        }
    }
    let (mut iv, mut tag) = ([0u8; 12], [0u8; 16]);
    decode_exactly(i, &mut iv)?;
    decode_exactly(t, &mut tag)?;
    let mut buffer = URL_SAFE_NO_PAD.decode_to_vec(c).ok()?;
    Aes256Gcm::new_from_slice(&cek)
        .ok()?
        .decrypt_inout_detached(
            (&iv).into(),
            h.as_bytes(),
            (&mut buffer[..]).into(),
            (&tag).into(),
        )
        .ok()?;
    Some(buffer)
}

/// Decodes base64url of exactly `out.len()` bytes into `out`.
fn decode_exactly(text: &str, out: &mut [u8]) -> Option<()> {
    (URL_SAFE_NO_PAD.decoded_length(text.as_bytes()).ok()? == out.len())
        .then(|| {
            URL_SAFE_NO_PAD
                .decode(text.as_bytes(), Out::from_slice(out))
                .ok()
        })
        .flatten()
        .map(|_| ())
}

/// The floor of the session path: claims and data written and read by
/// serde_json, around the floor JWE.
fn floor_session_seal(key: &FloorKey, claims: &Claims<&SessionMap>) -> String {
    let payload = serde_json::to_vec(claims).unwrap();
    floor_seal(key, &payload)
}

fn floor_session_open(key: &FloorKey, token: &str) -> Option<Claims<SessionMap>> {
    let payload = floor_open(key, token)?;
    let claims: Claims<SessionMap> = serde_json::from_slice(&payload).ok()?;
    let now = unix_seconds();
    (claims.v >= 1 && claims.aud == "session" && now <= claims.exp && now <= claims.abs_exp)
        .then_some(claims)
}

// ---------------------------------------------------------------------------
// The cookie crate's private jar

fn cookie_seal(key: &cookie::Key, value: String) -> String {
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(key).add(cookie::Cookie::new("id", value));
    jar.get("id").unwrap().value().to_owned()
}

fn cookie_open(key: &cookie::Key, sealed: &str) -> Option<cookie::Cookie<'static>> {
    let jar = cookie::CookieJar::new();
    let cookie = cookie::Cookie::new("id", sealed.to_owned());
    jar.private(key).decrypt(cookie)
}

// ---------------------------------------------------------------------------
// The benchmarks

struct Fixture {
    name: &'static str,
    keyring: Arc<Keyring>,
    floor: FloorKey,
    /// Opens every token it loads (the token cache off), like the floor.
    manager: SessionManager,
    /// The default configuration: a token loaded before is cached.
    cached: SessionManager,
}

fn fixtures() -> Vec<Fixture> {
    PAIRS
        .iter()
        .map(|&(alg, name)| {
            let key = Key::generate(alg).unwrap();
            let secret = secret_of(&key);
            let kid = key.kid().to_owned();
            let keyring = Arc::new(Keyring::new(key));
            let manager = common::manager(&keyring, SessionConfig::new().with_token_cache_bytes(0));
            let cached = common::manager(&keyring, SessionConfig::new());
            Fixture {
                cached,
                name,
                floor: FloorKey { alg, kid, secret },
                keyring,
                manager,
            }
        })
        .collect()
}

fn session_options() -> SealOptions {
    SealOptions::new().with_typ("jwe-session")
}

fn bench_jwe(c: &mut Criterion) {
    let fixtures = fixtures();
    let cookie_key = cookie::Key::generate();
    let options = session_options();
    for (size, _, payload) in sizes() {
        let text = String::from_utf8(payload.clone()).unwrap();

        let mut group = c.benchmark_group(format!("jwe/seal/{size}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for f in &fixtures {
            group.bench_with_input(BenchmarkId::new("jwe-session", f.name), f, |b, f| {
                b.iter(|| f.keyring.seal_with(black_box(&payload), &options).unwrap())
            });
            group.bench_with_input(BenchmarkId::new("floor", f.name), f, |b, f| {
                b.iter(|| floor_seal(&f.floor, black_box(&payload)))
            });
            group.bench_with_input(BenchmarkId::new("cookie-private", f.name), f, |b, _| {
                b.iter(|| cookie_seal(&cookie_key, black_box(&text).clone()))
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("jwe/open/{size}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for f in &fixtures {
            let token = f.keyring.seal_with(&payload, &options).unwrap();
            assert_eq!(f.keyring.open(&token).unwrap().plaintext(), &payload[..]);
            group.bench_with_input(BenchmarkId::new("jwe-session", f.name), &token, |b, t| {
                b.iter(|| f.keyring.open(black_box(t)).unwrap())
            });
            let floor = floor_seal(&f.floor, &payload);
            assert_eq!(floor_open(&f.floor, &floor).unwrap(), payload);
            group.bench_with_input(BenchmarkId::new("floor", f.name), &floor, |b, t| {
                b.iter(|| floor_open(&f.floor, black_box(t)).unwrap())
            });
            let sealed = cookie_seal(&cookie_key, text.clone());
            assert_eq!(cookie_open(&cookie_key, &sealed).unwrap().value(), text);
            group.bench_with_input(
                BenchmarkId::new("cookie-private", f.name),
                &sealed,
                |b, t| b.iter(|| cookie_open(&cookie_key, black_box(t)).unwrap()),
            );
        }
        group.finish();
    }
}

fn bench_session(c: &mut Criterion) {
    let fixtures = fixtures();
    let cookie_key = cookie::Key::generate();
    for (size, data, payload) in sizes() {
        let mut group = c.benchmark_group(format!("session/save/{size}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for f in &fixtures {
            let mut session = f.manager.start(data.clone());
            session.set_subject("alice@example.com");
            group.bench_function(BenchmarkId::new("jwe-session", f.name), |b| {
                b.iter(|| {
                    let _ = session.data_mut(); // a changed session is sealed again
                    match common::ready(f.manager.save(&mut session)).unwrap() {
                        SaveOutcome::Seal { token, .. } => token,
                        _ => unreachable!(),
                    }
                })
            });
            let plain = claims(data.clone());
            let borrowed = Claims {
                v: plain.v,
                aud: plain.aud.clone(),
                sid: plain.sid.clone(),
                sub: plain.sub.clone(),
                created_ms: plain.created_ms,
                iat: plain.iat,
                exp: plain.exp,
                abs_exp: plain.abs_exp,
                data: &data,
            };
            group.bench_function(BenchmarkId::new("floor", f.name), |b| {
                b.iter(|| floor_session_seal(&f.floor, black_box(&borrowed)))
            });
            group.bench_function(BenchmarkId::new("cookie-private", f.name), |b| {
                b.iter(|| {
                    let json = serde_json::to_string(black_box(&borrowed)).unwrap();
                    cookie_seal(&cookie_key, json)
                })
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("session/load/{size}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for f in &fixtures {
            let mut session = f.manager.start(data.clone());
            session.set_subject("alice@example.com");
            let SaveOutcome::Seal { token, .. } =
                common::ready(f.manager.save(&mut session)).unwrap()
            else {
                unreachable!()
            };
            group.bench_function(BenchmarkId::new("jwe-session", f.name), |b| {
                b.iter(|| common::ready(f.manager.load::<SessionMap>(black_box(&token))).unwrap())
            });
            // The same token again, as a browser sends it: from the token cache.
            group.bench_function(BenchmarkId::new("jwe-session-cached", f.name), |b| {
                b.iter(|| {
                    common::ready(f.cached.load_cached::<SessionMap>(black_box(&token))).unwrap()
                })
            });
            // The floor opens the very payload bytes jwe-session sealed
            // (its format, generations and all), so both parse the same JSON.
            let same_bytes = f.keyring.open(&token).unwrap().plaintext().to_vec();
            let floor = floor_seal(&f.floor, &same_bytes);
            assert!(floor_session_open(&f.floor, &floor).is_some());
            group.bench_function(BenchmarkId::new("floor", f.name), |b| {
                b.iter(|| floor_session_open(&f.floor, black_box(&floor)).unwrap())
            });
            let sealed = cookie_seal(&cookie_key, String::from_utf8(payload.clone()).unwrap());
            group.bench_function(BenchmarkId::new("cookie-private", f.name), |b| {
                b.iter(|| {
                    let cookie = cookie_open(&cookie_key, black_box(&sealed)).unwrap();
                    serde_json::from_str::<Claims<SessionMap>>(cookie.value()).unwrap()
                })
            });
        }
        group.finish();
    }
}

fn bench_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("parts");

    // The framework-independent request path the axum and actix adapters
    // share: CSRF check, cookie read, session load, then the save decision
    // (nothing to send back here), for a GET with a valid 250 B session.
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let service = SessionLayer::builder(keyring, Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let token = common::typical_token(service.manager());
    let cookie = format!(
        "theme=dark; {}={token}; _ga=GA1.2.3",
        service.cookies().name()
    );
    let head = RequestHead {
        method: "GET",
        host: Some("example.com"),
        cookies: vec![cookie.as_bytes()],
        ..RequestHead::default()
    };
    group.bench_function("request path: begin + finish (A256KW, 250B)", |b| {
        b.iter(|| {
            let Admission::Proceed(active) =
                common::ready(adapter::begin(&service, black_box(&head)))
            else {
                unreachable!()
            };
            let response = common::ready(adapter::finish(&service, active));
            assert!(response.set_cookies.is_empty());
            response
        })
    });
    group.bench_function("request path: session load only (A256KW, 250B)", |b| {
        b.iter(|| {
            common::ready(
                service
                    .manager()
                    .load_cached::<SessionMap>(black_box(&token)),
            )
            .unwrap()
        })
    });
    // The same with the token cache off: every request opens its token.
    let uncached = SessionLayer::builder(
        Arc::clone(service.manager().keyring()),
        Arc::new(MemoryStore::new()),
    )
    .config(SessionConfig::new().with_token_cache_bytes(0))
    .build()
    .unwrap();
    group.bench_function("request path, token cache off: begin + finish", |b| {
        b.iter(|| {
            let Admission::Proceed(active) =
                common::ready(adapter::begin(&uncached, black_box(&head)))
            else {
                unreachable!()
            };
            common::ready(adapter::finish(&uncached, active))
        })
    });
    // The worst case for the cache: every token new to it (each made, not
    // timed, just before its load), so each load opens its token and
    // inserts it, evicting others once the cache (1 MiB, about 500 tokens)
    // is full.
    let small = common::manager(
        service.manager().keyring(),
        SessionConfig::new().with_token_cache_bytes(1024 * 1024),
    );
    let new_token = || common::typical_token(&small);
    group.bench_function("session load, token cache miss (A256KW, 250B)", |b| {
        b.iter_batched(
            new_token,
            |token| common::ready(small.load_cached::<SessionMap>(&token)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    assert_eq!(small.token_cache_stats().hits, 0);
    group.bench_function("request path: cookie read only", |b| {
        b.iter(|| {
            service
                .cookies()
                .read(black_box(&head).cookies.iter().copied())
        })
    });

    // What one call for randomness costs (a getrandom system call): a seal
    // used to make up to three, it makes one.
    for len in [12usize, 56] {
        group.bench_function(format!("OsRng, {len} bytes in one call"), |b| {
            let mut buffer = [0u8; 56];
            b.iter(|| OsRng.fill_bytes(black_box(&mut buffer[..len])))
        });
    }

    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    for _ in 0..3 {
        keyring.rotate().unwrap();
    }
    group.bench_function("keyring snapshot (4 keys)", |b| {
        b.iter(|| black_box(&keyring).snapshot())
    });

    let created = SystemTime::now() - Duration::from_secs(60);
    let until = SystemTime::now() + Duration::from_secs(3600);
    let empty = MemoryStore::new();
    group.bench_function("memory check (empty store)", |b| {
        b.iter(|| common::ready(empty.check(black_box("alice"), black_box("sid-valid"))).unwrap())
    });
    let full = MemoryStore::new();
    for i in 0..100_000 {
        // 10 revoked sessions each for 10,000 users.
        common::ready(full.revoke_session(
            &format!("user-{}", i % 10_000),
            &format!("sid-{i}"),
            until,
        ))
        .unwrap();
    }
    for i in 0..10_000 {
        common::ready(full.revoke_subject(&format!("other-{i}"), created, until)).unwrap();
    }
    group.bench_function("memory check (110k entries)", |b| {
        b.iter(|| common::ready(full.check(black_box("user-7"), black_box("sid-valid"))).unwrap())
    });

    #[cfg(feature = "rsa")]
    {
        let key = Key::generate(KeyAlgorithm::RsaOaep256).unwrap();
        let keyring = Keyring::new(key);
        let payload = serde_json::to_vec(&claims(common::typical_data())).unwrap();
        let token = keyring.seal_with(&payload, &session_options()).unwrap();
        group.bench_function("RSA-OAEP-256 (2048) open, 250B", |b| {
            b.iter(|| keyring.open(black_box(&token)).unwrap())
        });
        group.bench_function("RSA-OAEP-256 (2048) seal, 250B", |b| {
            b.iter(|| keyring.seal_with(black_box(&payload), &session_options()))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_jwe, bench_session, bench_parts
}
criterion_main!(benches);

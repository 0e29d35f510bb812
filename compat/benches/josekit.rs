//! josekit doing the JWE operations of `benches/micro.rs` (`jwe/seal/SIZE`,
//! `jwe/open/SIZE`, same pairs, same plaintext bytes), for the josekit
//! column of `docs/benchmarks.md`.
//!
//! `cargo bench --manifest-path compat/Cargo.toml --bench josekit`, then
//! `python3 scripts/bench-table.py`, which takes josekit's figures from
//! `compat/target/criterion` and everything else from the main workspace's
//! run. jwe-session is measured here too (same groups, same names), so that
//! this run alone gives a ratio; the tables use the main workspace's
//! figures for it, built as applications build it.
//!
//! In its own package because josekit turns on serde_json's
//! `preserve_order`, which must not reach the main crate's benchmarks.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use josekit::jwe::{JweDecrypter, JweEncrypter, JweHeader};
use jwe_session::{Key, KeyAlgorithm, Keyring, SealOptions};
use serde_json::Value;

/// The algorithm pairs compared, as in `benches/micro.rs`.
const PAIRS: [(KeyAlgorithm, &str); 3] = [
    (KeyAlgorithm::Dir, "dir+A256GCM"),
    (KeyAlgorithm::A256Kw, "A256KW+A256GCM"),
    (KeyAlgorithm::A256GcmKw, "A256GCMKW+A256GCM"),
];

struct Fixture {
    name: &'static str,
    keyring: Keyring,
    encrypter: Box<dyn JweEncrypter>,
    decrypter: Box<dyn JweDecrypter>,
    header: JweHeader,
}

fn secret_of(key: &Key) -> Vec<u8> {
    let jwk: Value = serde_json::from_str(&key.to_jwk()).unwrap();
    URL_SAFE_NO_PAD
        .decode(jwk["k"].as_str().unwrap().as_bytes())
        .unwrap()
}

fn fixtures() -> Vec<Fixture> {
    use josekit::jwe::{Dir, A256GCMKW, A256KW};
    PAIRS
        .iter()
        .map(|&(alg, name)| {
            let key = Key::generate(alg).unwrap();
            let secret = secret_of(&key);
            let (encrypter, decrypter): (Box<dyn JweEncrypter>, Box<dyn JweDecrypter>) = match alg {
                KeyAlgorithm::Dir => (
                    Box::new(Dir.encrypter_from_bytes(&secret).unwrap()),
                    Box::new(Dir.decrypter_from_bytes(&secret).unwrap()),
                ),
                KeyAlgorithm::A256Kw => (
                    Box::new(A256KW.encrypter_from_bytes(&secret).unwrap()),
                    Box::new(A256KW.decrypter_from_bytes(&secret).unwrap()),
                ),
                _ => (
                    Box::new(A256GCMKW.encrypter_from_bytes(&secret).unwrap()),
                    Box::new(A256GCMKW.decrypter_from_bytes(&secret).unwrap()),
                ),
            };
            let mut header = JweHeader::new();
            header.set_content_encryption("A256GCM");
            header.set_key_id(key.kid());
            header.set_token_type("jwe-session");
            Fixture {
                name,
                keyring: Keyring::new(key),
                encrypter,
                decrypter,
                header,
            }
        })
        .collect()
}

fn bench_jwe(c: &mut Criterion) {
    let fixtures = fixtures();
    let options = SealOptions::new().with_typ("jwe-session");
    for (size, _, payload) in common::sizes() {
        let mut group = c.benchmark_group(format!("jwe/seal/{size}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for f in &fixtures {
            group.bench_with_input(BenchmarkId::new("josekit", f.name), f, |b, f| {
                b.iter(|| {
                    josekit::jwe::serialize_compact(black_box(&payload), &f.header, &*f.encrypter)
                        .unwrap()
                })
            });
            group.bench_with_input(BenchmarkId::new("jwe-session", f.name), f, |b, f| {
                b.iter(|| f.keyring.seal_with(black_box(&payload), &options).unwrap())
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("jwe/open/{size}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for f in &fixtures {
            let jose = josekit::jwe::serialize_compact(&payload, &f.header, &*f.encrypter).unwrap();
            // Each opens the other's token: the comparison is of equals.
            assert_eq!(f.keyring.open(&jose).unwrap().plaintext(), &payload[..]);
            group.bench_with_input(BenchmarkId::new("josekit", f.name), &jose, |b, t| {
                b.iter(|| josekit::jwe::deserialize_compact(black_box(t), &*f.decrypter).unwrap())
            });
            let ours = f.keyring.seal_with(&payload, &options).unwrap();
            let (opened, _) = josekit::jwe::deserialize_compact(&ours, &*f.decrypter).unwrap();
            assert_eq!(opened, payload);
            group.bench_with_input(BenchmarkId::new("jwe-session", f.name), &ours, |b, t| {
                b.iter(|| f.keyring.open(black_box(t)).unwrap())
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    // As in benches/micro.rs.
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_jwe
}
criterion_main!(benches);

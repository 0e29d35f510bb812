//! What loading keys costs: importing an RSA key (its private components
//! and OpenSSL's full key check, primality tests included), reloading a
//! key file whose keys are already loaded (as a watched key file does), and
//! describing a key file without importing it (`keyring list`).
//!
//! `cargo bench --bench keys --features rsa`

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use jwe_session::{Key, KeySet, Keyring};
use openssl::bn::BigNumRef;
use serde_json::json;

/// A private JWK (RSA-OAEP-256) of a fresh key of `bits` bits.
fn rsa_jwk(kid: &str, bits: u32) -> String {
    let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
    let b = |n: &BigNumRef| URL_SAFE_NO_PAD.encode(n.to_vec());
    json!({
        "kty": "RSA", "kid": kid, "alg": "RSA-OAEP-256", "use": "enc",
        "n": b(rsa.n()), "e": b(rsa.e()), "d": b(rsa.d()),
        "p": b(rsa.p().unwrap()), "q": b(rsa.q().unwrap()),
        "dp": b(rsa.dmp1().unwrap()), "dq": b(rsa.dmq1().unwrap()),
        "qi": b(rsa.iqmp().unwrap()),
    })
    .to_string()
}

fn bench_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys");
    let jwk_2048 = rsa_jwk("rsa-2048", 2048);
    let jwk_4096 = rsa_jwk("rsa-4096", 4096);
    group.bench_function("import RSA key, 2048 bits (Key::from_jwk)", |b| {
        b.iter(|| Key::from_jwk(black_box(&jwk_2048)).unwrap())
    });
    group.bench_function("import RSA key, 4096 bits (Key::from_jwk)", |b| {
        b.iter(|| Key::from_jwk(black_box(&jwk_4096)).unwrap())
    });

    // A key file with both, loaded once, then reloaded unchanged.
    let set = format!(r#"{{"keys":[{jwk_2048},{jwk_4096}]}}"#);
    let dir = std::env::temp_dir().join(format!("jwe-session-bench-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.json");
    std::fs::write(&path, &set).unwrap();
    let keyring = Keyring::from_file(&path).unwrap();
    group.bench_function(
        "reload an unchanged key file, RSA 2048 + 4096 (Keyring::reload_from_file)",
        |b| b.iter(|| keyring.reload_from_file(black_box(&path)).unwrap()),
    );
    group.bench_function("load the same key file (Keyring::from_file)", |b| {
        b.iter(|| Keyring::from_file(black_box(&path)).unwrap())
    });
    group.bench_function("read the same key set (KeySet::from_jwk_set)", |b| {
        b.iter(|| KeySet::from_jwk_set(black_box(&set), std::time::SystemTime::now()).unwrap())
    });
    group.bench_function(
        "describe the same key set, for listing (KeySet::describe_jwk_set)",
        |b| {
            b.iter(|| {
                KeySet::describe_jwk_set(black_box(&set), std::time::SystemTime::now()).unwrap()
            })
        },
    );
    std::fs::remove_dir_all(&dir).unwrap();
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_keys
}
criterion_main!(benches);

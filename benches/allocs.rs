//! Heap allocations per operation, counted by a wrapping global allocator
//! (`cargo bench --bench allocs`). Counts, not timings: they are the same on
//! every machine and for every run, so they show what a change did to the
//! allocations of the request path exactly.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use jwe_session::adapter::{self, Admission, RequestHead};
use jwe_session::revocation::MemoryStore;
use jwe_session::session::{SessionConfig, SessionMap};
use jwe_session::SessionLayer;
use jwe_session::{Key, KeyAlgorithm, Keyring, SealOptions};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not freed yet.
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (reallocations included) per call of `f`, over 1000 calls.
fn count<R>(mut f: impl FnMut() -> R) -> f64 {
    for _ in 0..10 {
        drop(f());
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        drop(std::hint::black_box(f()));
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1000.0
}

fn main() {
    println!("| operation (250 B session) | dir+A256GCM | A256KW+A256GCM | A256GCMKW+A256GCM |");
    println!("|---|---:|---:|---:|");
    let algs = [
        KeyAlgorithm::Dir,
        KeyAlgorithm::A256Kw,
        KeyAlgorithm::A256GcmKw,
    ];
    let mut rows: Vec<(&str, Vec<f64>)> = [
        "Keyring::seal_with",
        "Keyring::open",
        "SessionManager::save (changed)",
        "SessionManager::load (token cache off)",
        "SessionManager::load_cached, cached token",
        "request path: begin + finish, token cache off",
        "request path: begin + finish, cached token",
    ]
    .into_iter()
    .map(|name| (name, Vec::new()))
    .collect();
    for alg in algs {
        let keyring = Arc::new(Keyring::new(Key::generate(alg).unwrap()));
        let options = SealOptions::new().with_typ("jwe-session");
        let manager = common::manager(&keyring, SessionConfig::new().with_token_cache_bytes(0));
        let cached = common::manager(&keyring, SessionConfig::new());
        let mut session = manager.start(common::typical_data());
        session.set_subject("alice@example.com");
        let token = common::typical_token(&manager);
        let payload = keyring.open(&token).unwrap().plaintext().to_vec();
        rows[0]
            .1
            .push(count(|| keyring.seal_with(&payload, &options).unwrap()));
        rows[1].1.push(count(|| keyring.open(&token).unwrap()));
        rows[2].1.push(count(|| {
            let _ = session.data_mut();
            common::ready(manager.save(&mut session)).unwrap()
        }));
        rows[3].1.push(count(|| {
            common::ready(manager.load::<SessionMap>(&token)).unwrap()
        }));
        rows[4].1.push(count(|| {
            common::ready(cached.load_cached::<SessionMap>(&token)).unwrap()
        }));

        for (row, cache) in [(5, 0), (6, SessionConfig::new().token_cache_bytes())] {
            let service = SessionLayer::builder(Arc::clone(&keyring), Arc::new(MemoryStore::new()))
                .config(SessionConfig::new().with_token_cache_bytes(cache))
                .build()
                .unwrap();
            rows[row].1.push(request_path(&service));
        }
    }
    for (name, counts) in rows {
        let cells: Vec<String> = counts.iter().map(|c| format!("{c:.1}")).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!();
    println!(
        "Memory held by the token cache, per cached token: {} bytes",
        bytes_per_cached_token()
    );
    println!(
        "Memory held by an empty token cache of the default capacity: {} bytes",
        bytes_of_empty_cache()
    );
}

/// Allocations of one request with a valid session and nothing to send back.
fn request_path(service: &SessionLayer) -> f64 {
    let token = common::typical_token(service.manager());
    let cookie = format!("{}={token}", service.cookies().name());
    let head = RequestHead {
        method: "GET",
        host: Some("example.com"),
        cookies: vec![cookie.as_bytes()],
        ..RequestHead::default()
    };
    count(|| {
        let Admission::Proceed(active) = common::ready(adapter::begin(service, &head)) else {
            unreachable!()
        };
        common::ready(adapter::finish(service, active))
    })
}

/// Bytes the token cache holds per typical session token (`A256KW`),
/// from 1,000 loads of distinct tokens: everything else a load allocates is
/// freed again.
fn bytes_per_cached_token() -> i64 {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let manager = common::manager(&keyring, SessionConfig::new());
    let tokens: Vec<String> = (0..1000).map(|_| common::typical_token(&manager)).collect();
    let before = LIVE.load(Ordering::Relaxed);
    for token in &tokens {
        drop(common::ready(manager.load_cached::<SessionMap>(token)).unwrap());
    }
    assert_eq!(manager.token_cache_stats().entries, tokens.len());
    (LIVE.load(Ordering::Relaxed) - before) / tokens.len() as i64
}

/// Bytes a manager with the default token cache holds before any load, less
/// those of one with the cache off.
fn bytes_of_empty_cache() -> i64 {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let held = |config: SessionConfig| {
        let before = LIVE.load(Ordering::Relaxed);
        let manager = common::manager(&keyring, config);
        let held = LIVE.load(Ordering::Relaxed) - before;
        drop(manager);
        held
    };
    held(SessionConfig::new()) - held(SessionConfig::new().with_token_cache_bytes(0))
}

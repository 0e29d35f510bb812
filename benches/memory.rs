//! The real resident memory of a server holding many cached sessions
//! (`cargo bench --bench memory`): for 10,000 and 100,000 distinct sessions
//! of about 250 bytes and about 2 KiB, each in a fresh process (this
//! program runs itself once per configuration, so no freed memory of an
//! earlier one is counted or reused), the process's resident set size
//! (`VmRSS` of `/proc/self/status`) before and after every session's token
//! was loaded once through the token cache, as a browser's first request
//! does; beside it, what the cache charged against its byte budget
//! (`TokenCacheStats::bytes`).
//!
//! Each session is sealed, loaded with `load_cached::<SessionMap>` (so the
//! decoded map is kept too, the most an entry holds) and its token dropped:
//! only what the cache keeps stays resident. The cache is given its largest
//! budget (1 GiB), so nothing is evicted unless that budget is reached, which
//! the report then says.

mod common;

use std::process::Command;
use std::sync::Arc;

use jwe_session::session::{SaveOutcome, SessionConfig, SessionMap};
use jwe_session::{Key, KeyAlgorithm, Keyring};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// One configuration, in this process: prints one table row.
fn measure(size: &str, count: usize) {
    let data = match size {
        "250B" => common::typical_data(),
        _ => common::large_data(),
    };
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let manager = common::manager(
        &keyring,
        SessionConfig::new().with_token_cache_bytes(jwe_session::session::MAX_TOKEN_CACHE_BYTES),
    );
    // Warm the allocator and the code paths with one session, then measure.
    let mut token_len = 0;
    let one = |i: usize, token_len: &mut usize| {
        let mut session = manager.start(data.clone());
        session.set_subject(format!("user{i}@example.com"));
        let SaveOutcome::Seal { token, .. } = common::ready(manager.save(&mut session)).unwrap()
        else {
            unreachable!("a session with data is sealed")
        };
        *token_len = token.len();
        let loaded = common::ready(manager.load_cached::<SessionMap>(&token)).unwrap();
        drop(loaded);
    };
    one(usize::MAX, &mut token_len);
    let before = rss_kib();
    for i in 0..count {
        one(i, &mut token_len);
    }
    let after = rss_kib();
    let stats = manager.token_cache_stats();
    let added = (after.saturating_sub(before)) * 1024;
    println!(
        "| {size} | {count} | {} | {token_len} | {:.1} MiB | {} B | {:.1} MiB | {} B | {:.2} |",
        stats.entries,
        added as f64 / (1024.0 * 1024.0),
        added / stats.entries.max(1) as u64,
        stats.bytes as f64 / (1024.0 * 1024.0),
        stats.bytes / stats.entries.max(1) as u64,
        added as f64 / stats.bytes.max(1) as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--one") {
        let size = args.get(at + 1).map(String::as_str).unwrap_or("250B");
        let count = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        measure(size, count);
        return;
    }
    println!(
        "Resident memory of a process holding cached sessions (A256KW, each in a fresh process):"
    );
    println!();
    println!("| payload | sessions loaded | entries cached | token chars | resident memory added | per entry | the cache's byte budget used | per entry | resident / budget |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let me = std::env::current_exe().unwrap();
    for size in ["250B", "2KiB"] {
        for count in [10_000usize, 100_000] {
            let status = Command::new(&me)
                .args(["--one", size, &count.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "the measuring process failed");
        }
    }
}

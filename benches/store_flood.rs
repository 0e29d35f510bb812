//! Session checks against a `MemoryStore` at capacity, idle and under a
//! flood of revocations (issue 10; docs/benchmarks.md, "The revocation
//! store under a flood").
//!
//! The store is filled to its bound with live entries (10,000 subjects with
//! 99 revoked sessions each, their lifetimes spread over the next 100
//! seconds of a manual clock). Then one thread checks sessions, timing each
//! check, first with the store idle, then while a second thread revokes as
//! fast as it can: new sessions of random subjects (some collapse a
//! subject, some are refused while the store is full), subjects, stale
//! marks, and moves the clock forward a millisecond per revocation so
//! entries lapse and are purged as it goes. Bounded: a fixed number of
//! checks per phase.
//!
//! `cargo bench --bench store_flood` prints p50, p90, p99 and p99.9 of both
//! phases and their ratio (target: p99 under the flood within 2x idle).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::{Clock, ManualClock};

const SUBJECTS: usize = 10_000;
const SESSIONS_PER_SUBJECT: usize = 99;
const CAPACITY: usize = SUBJECTS * (SESSIONS_PER_SUBJECT + 1);
const CHECKS: usize = 1_000_000;
const T0: u64 = 1_800_000_000;

/// A small, fast, deterministic generator (xorshift), so both phases check
/// the same mix of sessions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fill(store: &MemoryStore, clock: &ManualClock) {
    let now = clock.now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for subject in 0..SUBJECTS {
        for session in 0..SESSIONS_PER_SUBJECT {
            let until = now + Duration::from_millis(1_000 + rng.below(99_000) as u64);
            common::ready(store.revoke_session(
                &format!("user-{subject}"),
                &format!("sid-{subject}-{session}"),
                until,
            ))
            .expect("room while filling");
        }
    }
    assert_eq!(store.len(), CAPACITY, "filled to capacity");
}

/// Times `CHECKS` checks; the latencies, in nanoseconds.
fn checks(store: &MemoryStore) -> Vec<u64> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let names: Vec<(String, String)> = (0..4096)
        .map(|_| {
            let subject = rng.below(SUBJECTS);
            (
                format!("user-{subject}"),
                format!("sid-{subject}-{}", rng.below(SESSIONS_PER_SUBJECT + 20)),
            )
        })
        .collect();
    let mut latencies = Vec::with_capacity(CHECKS);
    for i in 0..CHECKS {
        let (sub, sid) = &names[i % names.len()];
        let start = Instant::now();
        let outcome = common::ready(store.check(sub, sid)).expect("a check");
        let elapsed = start.elapsed();
        std::hint::black_box(outcome);
        latencies.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
    latencies
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Checks while a second thread floods the store with revocations; adds
/// the latencies, and answers the flood's revocations, refusals and
/// seconds.
fn flood_phase(
    store: &Arc<MemoryStore>,
    clock: &Arc<ManualClock>,
    latencies: &mut Vec<u64>,
) -> (u64, u64, f64) {
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let (store, clock, flooding) = (store.clone(), clock.clone(), flooding.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(0x1234_5678_9abc_def1 ^ clock.unix_millis());
            let (mut revocations, mut refused) = (0u64, 0u64);
            while flooding.load(Ordering::Relaxed) {
                clock.advance(Duration::from_millis(1));
                let now = clock.now();
                let subject = format!("user-{}", rng.below(SUBJECTS * 2));
                let keep = now + Duration::from_secs(100);
                let result = match rng.below(100) {
                    0 => common::ready(store.revoke_subject(&subject, now, keep)).map(drop),
                    1 => common::ready(store.mark_stale(&subject, now, keep)).map(drop),
                    _ => common::ready(store.revoke_session(
                        &subject,
                        &format!("flood-{revocations}"),
                        now + Duration::from_millis(1_000 + rng.below(99_000) as u64),
                    )),
                };
                revocations += 1;
                refused += u64::from(result.is_err());
            }
            (revocations, refused)
        })
    };
    let started = Instant::now();
    latencies.extend(checks(store));
    let seconds = started.elapsed().as_secs_f64();
    flooding.store(false, Ordering::Relaxed);
    let (revocations, refused) = flood.join().expect("the flood thread");
    (revocations, refused, seconds)
}

fn main() {
    // `cargo test --benches` runs benchmarks without `--bench`: keep that
    // quick.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("store_flood: run with `cargo bench --bench store_flood`");
        return;
    }
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = Arc::new(
        MemoryStore::new()
            .with_clock(clock.clone())
            .with_max_entries(CAPACITY),
    );
    let started = Instant::now();
    fill(&store, &clock);
    println!(
        "filled {} entries in {:.1} s",
        store.len(),
        started.elapsed().as_secs_f64()
    );

    // Interleaved: idle, flood, idle, flood, so neither phase has the
    // machine's warm-up or a quieter moment to itself.
    let (mut idle, mut flooded) = (Vec::new(), Vec::new());
    let (mut revocations, mut refused, mut seconds) = (0u64, 0u64, 0f64);
    for _ in 0..2 {
        idle.extend(checks(&store));
        let (n, r, s) = flood_phase(&store, &clock, &mut flooded);
        revocations += n;
        refused += r;
        seconds += s;
    }
    idle.sort_unstable();
    flooded.sort_unstable();

    println!(
        "flood: {revocations} revocations in {seconds:.1} s ({:.0}/s), {refused} refused (store full), {} entries at the end, {} refusals counted by the store",
        revocations as f64 / seconds,
        store.len(),
        store.refused_when_full()
    );
    println!(
        "| checks ({} each) | p50 | p90 | p99 | p99.9 | max |",
        2 * CHECKS
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, sorted) in [("idle, at capacity", &idle), ("under the flood", &flooded)] {
        println!(
            "| {name} | {} ns | {} ns | {} ns | {} ns | {} ns |",
            percentile(sorted, 0.5),
            percentile(sorted, 0.9),
            percentile(sorted, 0.99),
            percentile(sorted, 0.999),
            sorted[sorted.len() - 1]
        );
    }
    let ratio = percentile(&flooded, 0.99) as f64 / percentile(&idle, 0.99) as f64;
    println!(
        "p99 under the flood / idle: {ratio:.2} (target at most 2.00: {})",
        if ratio <= 2.0 { "met" } else { "NOT met" }
    );
}

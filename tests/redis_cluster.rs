//! `RedisStore` on a Redis Cluster: a real local cluster of three masters
//! (`redis-server --cluster-enabled yes` on loopback ports, joined with
//! `redis-cli --cluster create`), started by each test.
//!
//! * `cluster_runs_the_revocation_suite`: the scenarios of the revocation
//!   suites (log out everywhere in one millisecond over subjects spread on
//!   every master, logout of sibling tokens, renewal, subject revocation,
//!   stale marks seen by a second server, the per-subject bound) and what
//!   one check and one write cost (one command each, on one node).
//! * `a_dead_master_fails_closed_for_its_subjects_only_then_recovers`: one
//!   master frozen (`SIGSTOP`) then resumed, then killed and restarted on
//!   its port with its cluster config file; meanwhile its subjects fail
//!   closed within the timeout and the others go on.
#![cfg(feature = "redis")]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jwe_session::revocation::{RedisStore, RevocationStore};
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
use jwe_session::{Clock, Key, KeyAlgorithm, Keyring, ManualClock, RejectionKind, StoreError};
use support::RedisCluster;

const T0: u64 = 1_800_000_000;

/// The store's bound on each command; a dead master fails its requests
/// within it.
const TIMEOUT: Duration = Duration::from_millis(500);

/// What the tests measured, to stderr even when they pass.
fn report(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "redis_cluster: {line}");
}

fn cluster_store(
    cluster: &RedisCluster,
    prefix: &str,
    clock: Arc<dyn Clock>,
    bound: usize,
) -> RedisStore {
    RedisStore::cluster_builder(cluster.urls())
        .key_prefix(prefix)
        .timeout(TIMEOUT)
        .max_sessions_per_subject(bound)
        .clock(clock)
        .build()
        .expect("cluster store")
}

fn keyring(clock: Arc<dyn Clock>) -> Arc<Keyring> {
    Arc::new(Keyring::with_clock(
        Key::generate(KeyAlgorithm::A256Kw).unwrap(),
        clock,
    ))
}

fn manager(
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    clock: Arc<dyn Clock>,
) -> SessionManager {
    SessionManager::new(keyring, store, SessionConfig::new())
        .unwrap()
        .with_clock(clock)
}

async fn login(manager: &SessionManager, user: &str) -> String {
    let mut session = manager.start(SessionMap::default());
    session.login(user);
    match manager.save(&mut session).await.unwrap() {
        SaveOutcome::Seal { token, .. } => token,
        other => panic!("login did not seal: {other:?}"),
    }
}

async fn touch(manager: &SessionManager, token: &str, value: u32) -> String {
    let mut session = manager.load::<SessionMap>(token).await.unwrap();
    session.insert("n", value).unwrap();
    match manager.save(&mut session).await.unwrap() {
        SaveOutcome::Seal { token, .. } => token,
        other => panic!("change did not seal: {other:?}"),
    }
}

async fn logout(manager: &SessionManager, token: &str) {
    let mut session = manager.load::<SessionMap>(token).await.unwrap();
    session.destroy();
    assert_eq!(
        manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
}

async fn kind(manager: &SessionManager, token: &str) -> Option<RejectionKind> {
    manager
        .load::<SessionMap>(token)
        .await
        .err()
        .map(|r| r.kind())
}

/// A clock to the millisecond, moved by the test.
#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// The `calls` of each command in `names`, summed over the nodes
/// (`INFO commandstats`).
fn calls(cluster: &RedisCluster, names: &[&str]) -> HashMap<String, u64> {
    let mut total: HashMap<String, u64> = names.iter().map(|n| (n.to_string(), 0)).collect();
    for i in 0..3 {
        let info = cluster.command(i, &["INFO", "commandstats"]);
        for line in info.text().lines() {
            let Some((name, stats)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            if let Some(sum) = total.get_mut(name) {
                let n = stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                *sum += n;
            }
        }
    }
    total
}

// ---- the revocation suite on a cluster ---------------------------------------

/// 2,000 rounds of "seal two sessions for one subject, revoke, load both,
/// log in again", all in one millisecond, over 500 subjects: none survives,
/// every login after a revocation is accepted, and the subjects' keys are
/// spread over the three masters (each key on the master of its slot).
async fn log_out_everywhere_in_one_millisecond(cluster: &RedisCluster) {
    let clock: Arc<TestClock> = Arc::new(TestClock(AtomicU64::new(T0 * 1000 + 417)));
    let store = cluster_store(cluster, "ms:", clock.clone(), 100);
    let manager = manager(keyring(clock.clone()), Arc::new(store.clone()), clock);
    let (mut survivors, mut refused_after) = (0, 0);
    for round in 0..2_000 {
        let user = format!("user-{}", round % 500);
        let first = login(&manager, &user).await;
        let second = login(&manager, &user).await;
        manager.revoke_subject(&user).await.unwrap();
        survivors += usize::from(kind(&manager, &first).await.is_none());
        survivors += usize::from(kind(&manager, &second).await.is_none());
        let again = login(&manager, &user).await;
        refused_after += usize::from(kind(&manager, &again).await.is_some());
    }
    assert_eq!(survivors, 0, "sessions that survived log out everywhere");
    assert_eq!(refused_after, 0, "logins after the revocation refused");

    // One key per subject, each on the master that serves its slot.
    let sizes: Vec<i64> = (0..3).map(|i| cluster.dbsize(i)).collect();
    assert_eq!(sizes.iter().sum::<i64>(), 500, "keys per node: {sizes:?}");
    assert!(
        sizes.iter().all(|&n| n >= 100),
        "keys not spread over the three masters: {sizes:?}"
    );
    let mut per_node = [0i64; 3];
    for n in 0..500 {
        let key = store.subject_key(&format!("user-{n}"));
        let node = cluster.node_of(&key);
        assert_eq!(cluster.command(node, &["EXISTS", &key]).int(), 1, "{key}");
        per_node[node] += 1;
    }
    assert_eq!(per_node.to_vec(), sizes, "DBSIZE against CLUSTER KEYSLOT");
    report(&format!("500 subjects' keys per master: {sizes:?}"));
}

async fn logout_revokes_every_sibling_token(cluster: &RedisCluster) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = cluster_store(cluster, "t1:", clock.clone(), 100);
    let node = manager(keyring(clock.clone()), Arc::new(store), clock.clone());
    let older = login(&node, "alice").await;
    clock.advance(Duration::from_secs(5));
    let newer = touch(&node, &older, 1).await;
    clock.advance(Duration::from_secs(5));
    let newest = touch(&node, &newer, 2).await;
    let other = login(&node, "alice").await;
    logout(&node, &newer).await;
    for token in [&older, &newer, &newest] {
        assert_eq!(kind(&node, token).await, Some(RejectionKind::Revoked));
    }
    assert_eq!(kind(&node, &other).await, None, "another session stays");
}

async fn renew_revokes_the_old_id(cluster: &RedisCluster) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = cluster_store(cluster, "t2:", clock.clone(), 100);
    let node = manager(keyring(clock.clone()), Arc::new(store), clock);
    let before = login(&node, "alice").await;
    let mut session = node.load::<SessionMap>(&before).await.unwrap();
    session.renew();
    let SaveOutcome::Seal { token: after, .. } = node.save(&mut session).await.unwrap() else {
        panic!("renew did not seal");
    };
    assert_eq!(kind(&node, &before).await, Some(RejectionKind::Revoked));
    assert_eq!(kind(&node, &after).await, None);
}

async fn revoking_a_subject_ends_its_older_sessions_only(cluster: &RedisCluster) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = Arc::new(cluster_store(cluster, "t3:", clock.clone(), 100));
    let node = manager(keyring(clock.clone()), store.clone(), clock.clone());
    let alice_1 = login(&node, "alice").await;
    let alice_2 = login(&node, "alice").await;
    let bob = login(&node, "bob").await;
    clock.advance(Duration::from_secs(1));
    node.revoke_subject("alice").await.unwrap();
    assert_eq!(kind(&node, &alice_1).await, Some(RejectionKind::Revoked));
    assert_eq!(kind(&node, &alice_2).await, Some(RejectionKind::Revoked));
    assert_eq!(kind(&node, &bob).await, None);
    let alice_3 = login(&node, "alice").await;
    assert_eq!(kind(&node, &alice_3).await, None);
    // A later revocation never moves the generation back.
    let before = store.subject("alice").await.unwrap();
    let after = store
        .revoke_subject(
            "alice",
            clock.now() - Duration::from_secs(100),
            clock.now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        after.generation > before.generation,
        "{before:?} -> {after:?}"
    );
    assert_eq!(kind(&node, &alice_3).await, Some(RejectionKind::Revoked));
}

/// `mark_stale` on one server (its own cluster connection) flags every
/// session of the subject on the other, logs nobody out; a revocation still
/// ends them all.
async fn stale_marks_are_seen_by_a_second_server(cluster: &RedisCluster) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let keys = keyring(clock.clone());
    let a = manager(
        keys.clone(),
        Arc::new(cluster_store(cluster, "stale:", clock.clone(), 100)),
        clock.clone(),
    );
    let b = manager(
        keys,
        Arc::new(cluster_store(cluster, "stale:", clock.clone(), 100)),
        clock.clone(),
    );
    let first = login(&a, "alice").await;
    let second = login(&b, "alice").await;
    let bob = login(&a, "bob").await;
    for token in [&first, &second, &bob] {
        assert!(!a.load::<SessionMap>(token).await.unwrap().is_stale());
    }
    b.mark_stale("alice").await.unwrap();
    let mut session = a.load::<SessionMap>(&first).await.unwrap();
    assert!(session.is_stale(), "marked on b, seen on a");
    assert!(b.load::<SessionMap>(&second).await.unwrap().is_stale());
    assert!(!b.load::<SessionMap>(&bob).await.unwrap().is_stale());
    let after = login(&a, "alice").await;
    assert!(!a.load::<SessionMap>(&after).await.unwrap().is_stale());
    session.insert("role", "viewer").unwrap();
    let SaveOutcome::Seal {
        token: refreshed, ..
    } = a.save(&mut session).await.unwrap()
    else {
        panic!("not saved");
    };
    assert!(!b.load::<SessionMap>(&refreshed).await.unwrap().is_stale());
    a.revoke_subject("alice").await.unwrap();
    for token in [&first, &second, &refreshed, &after] {
        assert_eq!(kind(&b, token).await, Some(RejectionKind::Revoked));
    }
    assert_eq!(kind(&b, &bob).await, None);
}

/// A bound of 4 revoked sessions per subject: the fifth logout revokes the
/// subject, and the subject's hash never holds more than 4 `s:` fields.
async fn one_subject_holds_a_bounded_number_of_revocations(cluster: &RedisCluster) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = cluster_store(cluster, "bound:", clock.clone(), 4);
    let key = store.subject_key("alice");
    let owner = cluster.node_of(&key);
    let node = manager(keyring(clock.clone()), Arc::new(store), clock);
    let bystander = login(&node, "alice").await;
    for i in 0..5 {
        let token = login(&node, "alice").await;
        logout(&node, &token).await;
        assert_eq!(kind(&node, &token).await, Some(RejectionKind::Revoked));
        if i < 4 {
            assert_eq!(kind(&node, &bystander).await, None);
        }
        let fields = cluster.command(owner, &["HKEYS", &key]);
        let support::Reply::Array(fields) = fields else {
            panic!("HKEYS: {fields:?}");
        };
        let sessions = fields.iter().filter(|f| f.text().starts_with("s:")).count();
        assert!(sessions <= 4, "{sessions} revoked sessions held");
    }
    assert_eq!(kind(&node, &bystander).await, Some(RejectionKind::Revoked));
    let after = login(&node, "alice").await;
    assert_eq!(kind(&node, &after).await, None);
}

/// One check is one `HMGET`; one write is one `EVALSHA` (the script whole
/// only where a node lacks it): one command on one node, never a second
/// key or slot.
async fn one_command_per_check_and_per_write(cluster: &RedisCluster) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = cluster_store(cluster, "rt:", clock.clone(), 100);
    let until = clock.now() + Duration::from_secs(60);
    // Every node gets the session script once, whole.
    let mut seen = [false; 3];
    for n in 0.. {
        let sub = format!("warm-{n}");
        seen[cluster.node_of(&store.subject_key(&sub))] = true;
        store.revoke_session(&sub, "s", until).await.unwrap();
        if seen.iter().all(|&s| s) {
            break;
        }
    }
    let names = ["hmget", "evalsha", "eval"];
    let before = calls(cluster, &names);
    for n in 0..300 {
        store
            .check(&format!("user-{n}"), "sid")
            .await
            .expect("check");
    }
    let middle = calls(cluster, &names);
    for n in 0..300 {
        store
            .revoke_session(&format!("user-{n}"), "sid", until)
            .await
            .expect("revoke");
    }
    let after = calls(cluster, &names);
    let delta = |a: &HashMap<String, u64>, b: &HashMap<String, u64>, n: &str| b[n] - a[n];
    assert_eq!(delta(&before, &middle, "hmget"), 300, "one HMGET a check");
    assert_eq!(delta(&before, &middle, "evalsha"), 0);
    assert_eq!(delta(&before, &middle, "eval"), 0);
    assert_eq!(
        delta(&middle, &after, "evalsha"),
        300,
        "one EVALSHA a write"
    );
    assert_eq!(delta(&middle, &after, "eval"), 0, "no script sent whole");
    assert_eq!(delta(&middle, &after, "hmget"), 0);
    for n in 0..300 {
        assert!(
            store
                .check(&format!("user-{n}"), "sid")
                .await
                .unwrap()
                .session_revoked
        );
    }
}

/// Device-bound sessions' challenges: each used once across the fleet,
/// their keys spread over the masters.
async fn one_time_values_are_used_once(cluster: &RedisCluster) {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_unix(2_000_000_000));
    let a = cluster_store(cluster, "nonce:", clock.clone(), 100);
    let b = cluster_store(cluster, "nonce:", clock.clone(), 100);
    let until = clock.now() + Duration::from_secs(60);
    let mut nodes = std::collections::HashSet::new();
    for i in 0..60 {
        let value = format!("v{i}");
        assert!(a.use_nonce(&value, until).await.unwrap(), "{value}");
        assert!(
            !b.use_nonce(&value, until).await.unwrap(),
            "{value}: replay"
        );
        nodes.insert(cluster.node_of(&format!("nonce:nonce:{value}")));
    }
    assert!(nodes.len() > 1, "the values spread over the masters");
}

/// The two tests each start a cluster of three servers, and one of them
/// measures how long requests take: one at a time, so that neither's load
/// (2,000 rounds, three more servers starting) shows in the other's times.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn cluster_runs_the_revocation_suite() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    report(&format!("suite: cluster up in {:?}", started.elapsed()));
    let step = Instant::now();
    log_out_everywhere_in_one_millisecond(&cluster).await;
    report(&format!(
        "suite: 2,000 rounds of log out everywhere in {:?}",
        step.elapsed()
    ));
    logout_revokes_every_sibling_token(&cluster).await;
    renew_revokes_the_old_id(&cluster).await;
    revoking_a_subject_ends_its_older_sessions_only(&cluster).await;
    stale_marks_are_seen_by_a_second_server(&cluster).await;
    one_subject_holds_a_bounded_number_of_revocations(&cluster).await;
    one_command_per_check_and_per_write(&cluster).await;
    one_time_values_are_used_once(&cluster).await;
    report(&format!("suite: done in {:?}", started.elapsed()));
}

// ---- a master dies and comes back --------------------------------------------

/// How long a request took, and what it answered.
async fn timed(manager: &SessionManager, token: &str) -> (Option<RejectionKind>, Duration) {
    let start = Instant::now();
    let answer = kind(manager, token).await;
    (answer, start.elapsed())
}

#[tokio::test]
async fn a_dead_master_fails_closed_for_its_subjects_only_then_recovers() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    report(&format!("restart: cluster up in {:?}", started.elapsed()));
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = Arc::new(cluster_store(&cluster, "node:", clock.clone(), 100));
    let node = manager(keyring(clock.clone()), store.clone(), clock.clone());

    // One subject on each master; a live and a logged-out token of each.
    let mut subjects: [Option<String>; 3] = [None, None, None];
    for n in 0.. {
        let sub = format!("user-{n}");
        let owner = cluster.node_of(&store.subject_key(&sub));
        subjects[owner].get_or_insert(sub);
        if subjects.iter().all(Option::is_some) {
            break;
        }
    }
    let subjects: Vec<String> = subjects.into_iter().map(Option::unwrap).collect();
    let mut live = Vec::new();
    let mut gone = Vec::new();
    for sub in &subjects {
        live.push(login(&node, sub).await);
        let token = login(&node, sub).await;
        logout(&node, &token).await;
        gone.push(token);
    }
    for k in 0..3 {
        assert_eq!(kind(&node, &live[k]).await, None);
        assert_eq!(kind(&node, &gone[k]).await, Some(RejectionKind::Revoked));
    }

    let victim = 1;
    // Bounded by the timeout, not hung: a generous margin over it, for a
    // loaded machine (the times themselves are reported, not judged).
    let bound = TIMEOUT + Duration::from_secs(3);

    // Frozen (SIGSTOP): its connections stay open and nothing answers, so
    // only the timeout ends a request for it.
    cluster.pause_node(victim);
    let (mut slowest_failure, mut slowest_success) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        for (k, token) in live.iter().enumerate() {
            let (answer, took) = timed(&node, token).await;
            if k == victim {
                assert_eq!(answer, Some(RejectionKind::StoreUnavailable), "frozen");
                slowest_failure = slowest_failure.max(took);
            } else {
                assert_eq!(answer, None, "frozen: subject on master {k}");
                slowest_success = slowest_success.max(took);
            }
        }
    }
    let start = Instant::now();
    let revoked = node.revoke_subject(&subjects[victim]).await;
    assert!(
        matches!(revoked, Err(StoreError::Unavailable(_))),
        "frozen: {revoked:?}"
    );
    slowest_failure = slowest_failure.max(start.elapsed());
    report(&format!(
        "restart: a frozen master's subjects failed closed in {slowest_failure:?} at most (timeout {TIMEOUT:?}), the others answered in {slowest_success:?} at most"
    ));
    assert!(
        slowest_failure < bound,
        "a request for the frozen master took {slowest_failure:?}"
    );
    assert!(
        slowest_success < bound,
        "a request for a live master took {slowest_success:?}"
    );
    cluster.resume_node(victim);
    let resumed = Instant::now();
    let mut attempts = 0;
    while kind(&node, &live[victim]).await.is_some() {
        attempts += 1;
        assert!(attempts < 100, "the store did not recover after SIGCONT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kind(&node, &gone[victim]).await,
        Some(RejectionKind::Revoked)
    );
    report(&format!(
        "restart: answered again {:?} after SIGCONT",
        resumed.elapsed()
    ));
    // Before killing it, the others clear the failure they flagged while
    // it was frozen (after twice the node timeout).
    let deadline = Instant::now() + Duration::from_secs(15);
    while (0..3)
        .filter(|&i| i != victim)
        .any(|i| cluster.flags_failed(i, victim))
    {
        assert!(Instant::now() < deadline, "still flagged as failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.wait_until_ok(Duration::from_secs(15));

    // Killed.
    cluster.stop_node(victim);
    let killed = Instant::now();
    let (mut slowest_failure, mut slowest_success) = (Duration::ZERO, Duration::ZERO);
    // Twice: at once, and again once the other masters flag it as failed.
    for phase in ["just killed", "flagged as failed"] {
        if phase == "flagged as failed" {
            let deadline = Instant::now() + Duration::from_secs(15);
            while !(0..3)
                .filter(|&i| i != victim)
                .all(|i| cluster.flags_failed(i, victim))
            {
                assert!(
                    Instant::now() < deadline,
                    "the dead master was never flagged"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for i in (0..3).filter(|&i| i != victim) {
                assert_eq!(cluster.state(i), "ok", "node {i} with a master down");
            }
            report(&format!(
                "restart: the dead master flagged as failed after {:?}",
                killed.elapsed()
            ));
        }
        for _ in 0..10 {
            for k in 0..3 {
                let (answer, took) = timed(&node, &live[k]).await;
                let (answer_gone, took_gone) = timed(&node, &gone[k]).await;
                if k == victim {
                    assert_eq!(answer, Some(RejectionKind::StoreUnavailable), "{phase}");
                    assert_eq!(
                        answer_gone,
                        Some(RejectionKind::StoreUnavailable),
                        "{phase}"
                    );
                    slowest_failure = slowest_failure.max(took).max(took_gone);
                } else {
                    assert_eq!(answer, None, "{phase}: subject on master {k}");
                    assert_eq!(answer_gone, Some(RejectionKind::Revoked), "{phase}");
                    slowest_success = slowest_success.max(took).max(took_gone);
                }
            }
        }
        let start = Instant::now();
        let revoked = node.revoke_subject(&subjects[victim]).await;
        assert!(
            matches!(revoked, Err(StoreError::Unavailable(_))),
            "{phase}: {revoked:?}"
        );
        slowest_failure = slowest_failure.max(start.elapsed());
        // Writes for the other masters go on.
        let other = (victim + 1) % 3;
        let extra = login(&node, &subjects[other]).await;
        logout(&node, &extra).await;
        assert_eq!(kind(&node, &extra).await, Some(RejectionKind::Revoked));
    }
    assert!(
        slowest_failure < bound,
        "a request for the dead master took {slowest_failure:?}"
    );
    assert!(
        slowest_success < bound,
        "a request for a live master took {slowest_success:?}"
    );
    report(&format!(
        "restart: while down, requests for its subjects failed closed in {slowest_failure:?} at most (timeout {TIMEOUT:?}), the others answered in {slowest_success:?} at most"
    ));

    // Back on its port with its cluster config file: the same node, the
    // same slots, no data (persistence is off).
    cluster.restart_node(victim);
    let restarted = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        if kind(&node, &live[victim]).await.is_none() {
            break;
        }
        assert!(attempts < 100, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report(&format!(
        "restart: recovered {:?} after the restart, on attempt {attempts} (100 ms apart)",
        restarted.elapsed()
    ));
    for k in (0..3).filter(|&k| k != victim) {
        assert_eq!(kind(&node, &live[k]).await, None);
        assert_eq!(kind(&node, &gone[k]).await, Some(RejectionKind::Revoked));
    }
    // Without persistence the restarted master forgot its revocations: the
    // logged-out token opens again (docs/sessions.md: enable AOF).
    assert_eq!(
        kind(&node, &gone[victim]).await,
        None,
        "a master restarted without persistence keeps no revocation"
    );
    // Writes work again (the node lost its scripts: sent whole once).
    logout(&node, &gone[victim]).await;
    assert_eq!(
        kind(&node, &gone[victim]).await,
        Some(RejectionKind::Revoked)
    );
    clock.advance(Duration::from_secs(1));
    node.revoke_subject(&subjects[victim]).await.unwrap();
    assert_eq!(
        kind(&node, &live[victim]).await,
        Some(RejectionKind::Revoked)
    );
    cluster.wait_until_ok(Duration::from_secs(10));
    report(&format!("restart: done in {:?}", started.elapsed()));
}

//! One acceptance suite for every revocation store: the in-memory store and
//! Redis (a real `redis-server` started on a free loopback port).

mod support;

use std::sync::Arc;
use std::time::Duration;

use jwe_session::revocation::{MemoryStore, RevocationStore, SubjectState};
use jwe_session::session::{
    SaveOutcome, SessionConfig, SessionManager, SessionMap, StoreFailurePolicy,
};
use jwe_session::{Clock, Key, KeyAlgorithm, Keyring, ManualClock, RejectionKind};
use support::RedisServer;

const T0: u64 = 1_800_000_000;

type MakeStore<'a> = &'a dyn Fn(Arc<ManualClock>) -> Arc<dyn RevocationStore>;

fn memory(clock: Arc<ManualClock>) -> Arc<dyn RevocationStore> {
    Arc::new(MemoryStore::new().with_clock(clock))
}

#[cfg(feature = "redis")]
fn redis_store(url: &str, prefix: &str, clock: Arc<ManualClock>) -> Arc<dyn RevocationStore> {
    Arc::new(
        jwe_session::revocation::RedisStore::builder(url)
            .key_prefix(prefix)
            .timeout(Duration::from_millis(500))
            .clock(clock)
            .build()
            .expect("redis store"),
    )
}

struct Node {
    manager: SessionManager,
}

struct World {
    clock: Arc<ManualClock>,
    keyring: Arc<Keyring>,
}

impl World {
    fn new() -> World {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let keyring = Arc::new(Keyring::with_clock(
            Key::generate(KeyAlgorithm::A256Kw).unwrap(),
            clock.clone(),
        ));
        World { clock, keyring }
    }

    fn node(&self, store: Arc<dyn RevocationStore>) -> Node {
        self.node_with(store, SessionConfig::new())
    }

    fn node_with(&self, store: Arc<dyn RevocationStore>, config: SessionConfig) -> Node {
        Node {
            manager: SessionManager::new(self.keyring.clone(), store, config)
                .unwrap()
                .with_clock(self.clock.clone()),
        }
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

impl Node {
    async fn login(&self, user: &str) -> String {
        let mut session = self.manager.start(SessionMap::default());
        session.renew();
        session.set_subject(user);
        match self.manager.save(&mut session).await.unwrap() {
            SaveOutcome::Seal { token, .. } => token,
            other => panic!("login did not seal: {other:?}"),
        }
    }

    async fn touch(&self, token: &str, value: u32) -> String {
        let mut session = self.manager.load::<SessionMap>(token).await.unwrap();
        session.insert("n", value).unwrap();
        match self.manager.save(&mut session).await.unwrap() {
            SaveOutcome::Seal { token, .. } => token,
            other => panic!("change did not seal: {other:?}"),
        }
    }

    async fn logout(&self, token: &str) {
        let mut session = self.manager.load::<SessionMap>(token).await.unwrap();
        session.destroy();
        assert_eq!(
            self.manager.save(&mut session).await.unwrap(),
            SaveOutcome::Remove
        );
    }

    async fn kind(&self, token: &str) -> Option<RejectionKind> {
        self.manager
            .load::<SessionMap>(token)
            .await
            .err()
            .map(|r| r.kind())
    }
}

// ---- the suite -------------------------------------------------------------

async fn logout_revokes_every_sibling_token(make: MakeStore<'_>) {
    let world = World::new();
    let node = world.node(make(world.clock.clone()));
    let older = node.login("alice").await;
    world.advance(5);
    let newer = node.touch(&older, 1).await;
    world.advance(5);
    let newest = node.touch(&newer, 2).await;
    let other = node.login("alice").await; // another session of the same user
    node.logout(&newer).await;
    for token in [&older, &newer, &newest] {
        assert_eq!(node.kind(token).await, Some(RejectionKind::Revoked));
    }
    assert_eq!(
        node.kind(&other).await,
        None,
        "another session of the user stays valid"
    );
}

async fn renew_revokes_the_old_id(make: MakeStore<'_>) {
    let world = World::new();
    let node = world.node(make(world.clock.clone()));
    let before = node.login("alice").await;
    let mut session = node.manager.load::<SessionMap>(&before).await.unwrap();
    session.renew();
    let SaveOutcome::Seal { token: after, .. } = node.manager.save(&mut session).await.unwrap()
    else {
        panic!("renew did not seal");
    };
    assert_eq!(node.kind(&before).await, Some(RejectionKind::Revoked));
    assert_eq!(node.kind(&after).await, None);
}

async fn revoking_a_subject_ends_its_older_sessions_only(make: MakeStore<'_>) {
    let world = World::new();
    let node = world.node(make(world.clock.clone()));
    let alice_1 = node.login("alice").await;
    let alice_2 = node.login("alice").await;
    let bob = node.login("bob").await;
    world.advance(1);
    node.manager.revoke_subject("alice").await.unwrap();
    assert_eq!(node.kind(&alice_1).await, Some(RejectionKind::Revoked));
    assert_eq!(node.kind(&alice_2).await, Some(RejectionKind::Revoked));
    assert_eq!(node.kind(&bob).await, None);
    let alice_3 = node.login("alice").await; // logs in again afterwards
    assert_eq!(node.kind(&alice_3).await, None);
    // A later revocation never moves the generation back.
    let store = node.manager.store();
    let before = store.subject("alice").await.unwrap();
    let after = store
        .revoke_subject(
            "alice",
            world.clock.now() - Duration::from_secs(100),
            world.clock.now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        after.generation > before.generation,
        "{before:?} -> {after:?}"
    );
    assert!(after.revoked_at_ms >= before.revoked_at_ms);
    assert_eq!(node.kind(&alice_3).await, Some(RejectionKind::Revoked));
}

/// `lapses_by_clock`: the store forgets entries by the injected clock (Redis
/// forgets by its own; its TTLs are checked in `ttls_are_set_on_every_key`).
async fn entries_end_when_nothing_they_match_is_alive(make: MakeStore<'_>, lapses_by_clock: bool) {
    let world = World::new();
    let store = make(world.clock.clone());
    let now = world.clock.now();
    store
        .revoke_session("u0", "s1", now + Duration::from_secs(100))
        .await
        .unwrap();
    let revoked = store
        .revoke_subject("u1", now, now + Duration::from_secs(200))
        .await
        .unwrap();
    assert!(store.check("u0", "s1").await.unwrap().session_revoked);
    assert!(!store.check("u0", "s2").await.unwrap().session_revoked);
    assert_eq!(store.check("u1", "s2").await.unwrap().subject, revoked);
    // An entry already past its time revokes nothing.
    store
        .revoke_session("u2", "s-dead", now - Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!store.check("u2", "s-dead").await.unwrap().session_revoked);
    // Each lapses at its time, to the millisecond.
    world.clock.advance(Duration::from_millis(99_999));
    assert!(store.check("u0", "s1").await.unwrap().session_revoked);
    world.clock.advance(Duration::from_millis(1));
    assert!(!store.check("u0", "s1").await.unwrap().session_revoked);
    if !lapses_by_clock {
        return;
    }
    world.clock.advance(Duration::from_millis(99_999));
    assert_eq!(store.subject("u1").await.unwrap(), revoked);
    world.clock.advance(Duration::from_millis(1));
    assert_eq!(
        store.subject("u1").await.unwrap(),
        SubjectState::default(),
        "lapsed"
    );
}

// ---- in memory ---------------------------------------------------------------

#[tokio::test]
async fn memory_logout_revokes_every_sibling_token() {
    logout_revokes_every_sibling_token(&memory).await;
}

#[tokio::test]
async fn memory_renew_revokes_the_old_id() {
    renew_revokes_the_old_id(&memory).await;
}

#[tokio::test]
async fn memory_revoking_a_subject_ends_its_older_sessions_only() {
    revoking_a_subject_ends_its_older_sessions_only(&memory).await;
}

#[tokio::test]
async fn memory_entries_end_when_nothing_they_match_is_alive() {
    entries_end_when_nothing_they_match_is_alive(&memory, true).await;
}

#[tokio::test]
async fn memory_a_shorter_revocation_never_cuts_a_longer_one() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = MemoryStore::new().with_clock(clock.clone());
    let now = clock.now();
    store
        .revoke_session("u", "s", now + Duration::from_secs(100))
        .await
        .unwrap();
    store
        .revoke_session("u", "s", now + Duration::from_secs(10))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(50));
    assert!(store.check("u", "s").await.unwrap().session_revoked);
}

#[tokio::test]
async fn memory_store_purges_expired_entries_and_stays_bounded() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    // Room for one subject with two revoked sessions.
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_entries(3);
    let now = clock.now();
    for sid in ["a", "b"] {
        store
            .revoke_session("u", sid, now + Duration::from_secs(10))
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 3);
    // Full of live entries: refuses rather than forget a revocation, and
    // counts the refusal.
    let full = store
        .revoke_session("u", "c", now + Duration::from_secs(10))
        .await;
    assert!(
        matches!(full, Err(jwe_session::StoreError::Full(3))),
        "{full:?}"
    );
    let full = store
        .revoke_session("v", "d", now + Duration::from_secs(10))
        .await;
    assert!(
        matches!(full, Err(jwe_session::StoreError::Full(_))),
        "{full:?}"
    );
    assert_eq!(store.refused_when_full(), 2);
    assert!(store.check("u", "a").await.unwrap().session_revoked);
    // Once they expire they are purged and room is made.
    clock.advance(Duration::from_secs(11));
    assert!(!store.check("u", "a").await.unwrap().session_revoked);
    store
        .revoke_session("v", "d", clock.now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(store.len(), 2, "one subject, one session");
}

// ---- one-time values (device-bound sessions' challenges) ----------------------

/// A value is used once: the first `use_nonce` says so, every later one
/// (from this store or another sharing its backend) refuses it, and other
/// values are independent.
async fn one_time_values_are_used_once(
    make: &dyn Fn(Arc<ManualClock>) -> Arc<dyn RevocationStore>,
) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let (a, b) = (make(clock.clone()), make(clock.clone()));
    let until = clock.now() + Duration::from_secs(60);
    let tag = format!("{:?}", std::time::SystemTime::now());
    for i in 0..50 {
        let value = format!("nonce-{tag}-{i}");
        assert!(
            a.use_nonce(&value, until).await.unwrap(),
            "{value}: first use"
        );
        assert!(
            !a.use_nonce(&value, until).await.unwrap(),
            "{value}: replay"
        );
        assert!(
            !b.use_nonce(&value, until).await.unwrap(),
            "{value}: replay elsewhere"
        );
    }
}

#[tokio::test]
async fn memory_one_time_values_are_used_once() {
    // One process: both "servers" share the store, on the test's clock (on
    // the system clock, values held until T0 + 60 s would count as lapsed
    // once the real date passes T0).
    let store = std::sync::OnceLock::<Arc<dyn RevocationStore>>::new();
    one_time_values_are_used_once(&|clock| Arc::clone(store.get_or_init(|| memory(clock)))).await;
}

#[tokio::test]
async fn memory_one_time_values_lapse_and_are_bounded() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_nonces(1_000);
    let until = clock.now() + Duration::from_secs(60);
    assert!(store.use_nonce("n", until).await.unwrap());
    clock.advance(Duration::from_secs(60));
    assert!(
        store
            .use_nonce("n", until + Duration::from_secs(60))
            .await
            .unwrap(),
        "lapsed: a new use"
    );
    // Full of live values, the store refuses rather than forget one (a
    // forgotten value could be used twice).
    let until = clock.now() + Duration::from_secs(60);
    let mut refused = None;
    for i in 0..1_001 {
        if let Err(error) = store.use_nonce(&format!("v{i}"), until).await {
            refused = Some((i, error));
            break;
        }
    }
    let (at, error) = refused.expect("a bound");
    assert!(matches!(error, jwe_session::StoreError::Full(_)), "{error}");
    assert!(at <= 1_000, "refused at {at}");
    assert!(!store.use_nonce("v0", until).await.unwrap(), "still held");
    // Once they lapse there is room again.
    clock.advance(Duration::from_secs(61));
    assert!(store
        .use_nonce("after", clock.now() + Duration::from_secs(60))
        .await
        .unwrap());
}

// ---- Redis -------------------------------------------------------------------

#[cfg(feature = "redis")]
mod redis_store {
    use super::*;

    fn with_server() -> Option<RedisServer> {
        RedisServer::start()
    }

    #[tokio::test]
    async fn redis_one_time_values_are_used_once() {
        let Some(server) = with_server() else { return };
        one_time_values_are_used_once(&|clock| redis_store(&server.url(), "t0:", clock)).await;
    }

    #[tokio::test]
    async fn redis_logout_revokes_every_sibling_token() {
        let Some(server) = with_server() else { return };
        logout_revokes_every_sibling_token(&|clock| redis_store(&server.url(), "t1:", clock)).await;
    }

    #[tokio::test]
    async fn redis_renew_revokes_the_old_id() {
        let Some(server) = with_server() else { return };
        renew_revokes_the_old_id(&|clock| redis_store(&server.url(), "t2:", clock)).await;
    }

    #[tokio::test]
    async fn redis_revoking_a_subject_ends_its_older_sessions_only() {
        let Some(server) = with_server() else { return };
        revoking_a_subject_ends_its_older_sessions_only(&|clock| {
            redis_store(&server.url(), "t3:", clock)
        })
        .await;
    }

    #[tokio::test]
    async fn redis_entries_end_when_nothing_they_match_is_alive() {
        let Some(server) = with_server() else { return };
        entries_end_when_nothing_they_match_is_alive(
            &|clock| redis_store(&server.url(), "t4:", clock),
            false,
        )
        .await;
    }

    #[tokio::test]
    async fn revocation_is_seen_by_a_second_server_sharing_redis() {
        let Some(server) = with_server() else { return };
        let world = World::new();
        // Two processes: their own keyrings (same keys) and their own store clients.
        let keys = world.keyring.to_jwk_set();
        let second_keyring = Arc::new(Keyring::from_jwk_set(&keys).unwrap());
        let a = world.node(redis_store(&server.url(), "app:", world.clock.clone()));
        let b = Node {
            manager: SessionManager::new(
                second_keyring,
                redis_store(&server.url(), "app:", world.clock.clone()),
                SessionConfig::new(),
            )
            .unwrap()
            .with_clock(world.clock.clone()),
        };
        let token = a.login("alice").await;
        let other = a.login("alice").await;
        assert_eq!(b.kind(&token).await, None);
        b.logout(&token).await;
        assert_eq!(a.kind(&token).await, Some(RejectionKind::Revoked));
        world.advance(1);
        a.manager.revoke_subject("alice").await.unwrap();
        assert_eq!(b.kind(&other).await, Some(RejectionKind::Revoked));
    }

    #[tokio::test]
    async fn ttls_are_set_on_every_key() {
        let Some(server) = with_server() else { return };
        let world = World::new();
        let node = world.node(redis_store(&server.url(), "ttl:", world.clock.clone()));
        let token = node.login("alice").await;
        let sid = node
            .manager
            .load::<SessionMap>(&token)
            .await
            .unwrap()
            .id()
            .to_owned();
        node.logout(&token).await;
        // The subject's entry lives until no token of the session can open
        // (12 h + 60 s + the rest of that second), and one leeway more for
        // servers whose clocks run behind.
        let pttl = |key: &str| -> i64 {
            server
                .command(&["PTTL", key])
                .trim_start_matches(':')
                .parse()
                .unwrap()
        };
        let deadline = (12 * 3600 + 60 + 1 + 60) * 1000;
        let ttl = pttl("ttl:subject:alice");
        assert!(ttl > deadline - 5_000 && ttl <= deadline, "PTTL {ttl}");
        let until = server.command(&["HGET", "ttl:subject:alice", &format!("s:{sid}")]);
        assert_eq!(until, "$13", "bulk string of a 13-digit millisecond time");
        // A subject revocation keeps it as long.
        world.advance(1);
        node.manager.revoke_subject("alice").await.unwrap();
        let ttl = pttl("ttl:subject:alice");
        assert!(ttl > deadline - 5_000 && ttl <= deadline, "PTTL {ttl}");
        // Its revoked sessions are covered by the generation and dropped.
        assert_eq!(
            server.command(&["HLEN", "ttl:subject:alice"]),
            ":2",
            "g and e are left"
        );
    }

    /// 0.1 kept a subject's epoch as a string under `{prefix}sub:{sub}`;
    /// the hash of this release lives under another name, so keys left by
    /// 0.1 during an upgrade never make a check fail (WRONGTYPE).
    #[tokio::test]
    async fn keys_left_by_the_previous_release_do_not_break_checks() {
        let Some(server) = with_server() else { return };
        let world = World::new();
        let node = world.node(redis_store(&server.url(), "up:", world.clock.clone()));
        assert_eq!(
            server.command(&["SET", "up:sub:alice", "1800000000000"]),
            "+OK"
        );
        assert_eq!(server.command(&["SET", "up:sid:x", "1"]), "+OK");
        let token = node.login("alice").await;
        assert_eq!(node.kind(&token).await, None);
        node.logout(&token).await;
        assert_eq!(node.kind(&token).await, Some(RejectionKind::Revoked));
    }

    #[tokio::test]
    async fn a_shorter_revocation_never_cuts_a_longer_one() {
        let Some(server) = with_server() else { return };
        let world = World::new();
        let store = redis_store(&server.url(), "keep:", world.clock.clone());
        let now = world.clock.now();
        store
            .revoke_session("u", "s", now + Duration::from_secs(100))
            .await
            .unwrap();
        store
            .revoke_session("u", "s", now + Duration::from_secs(10))
            .await
            .unwrap();
        let pttl: i64 = server
            .command(&["PTTL", "keep:subject:u"])
            .trim_start_matches(':')
            .parse()
            .unwrap();
        assert!(pttl > 95_000 && pttl <= 100_000, "PTTL {pttl}");
        world.clock.advance(Duration::from_secs(50));
        assert!(store.check("u", "s").await.unwrap().session_revoked);
    }

    #[tokio::test]
    async fn redis_down_fails_closed_then_recovers_after_restart() {
        let Some(mut server) = with_server() else {
            return;
        };
        let world = World::new();
        let node = world.node(redis_store(&server.url(), "down:", world.clock.clone()));
        let lenient = world.node_with(
            redis_store(&server.url(), "down:", world.clock.clone()),
            SessionConfig::new().with_store_failure(StoreFailurePolicy::FailOpen),
        );
        let token = node.login("alice").await;
        assert_eq!(node.kind(&token).await, None);

        server.stop();
        assert_eq!(
            node.kind(&token).await,
            Some(RejectionKind::StoreUnavailable)
        );
        assert_eq!(
            lenient.kind(&token).await,
            None,
            "fail-open accepts while the store is down"
        );
        assert!(node.manager.revoke_subject("alice").await.is_err());
        // A login while the store is down: refused failing closed (its
        // generation cannot be read), sealed failing open.
        let mut session = node.manager.start(SessionMap::default());
        session.login("alice");
        assert!(node.manager.save(&mut session).await.is_err());
        let while_down = lenient.login("alice").await;
        assert_eq!(lenient.kind(&while_down).await, None);

        server.restart();
        // The connection is remade on its own; allow a few attempts while
        // the client notices the new server.
        let mut recovered = false;
        for _ in 0..50 {
            if node.kind(&token).await.is_none() {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(recovered, "the store did not recover after Redis restarted");
        // alice was never revoked: the session sealed while down stays.
        assert_eq!(node.kind(&while_down).await, None);
        node.logout(&token).await;
        assert_eq!(node.kind(&token).await, Some(RejectionKind::Revoked));
    }
}

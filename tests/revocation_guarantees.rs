//! What revocation guarantees beyond the defects of `revocation_defects.rs`:
//! stale sessions, the per-subject bound, anonymous sessions that cost no
//! entry, and tokens of the first format.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jwe_session::jwe::SealOptions;
use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::session::{
    ResealReason, SaveOutcome, SessionConfig, SessionManager, SessionMap, SESSION_TYP,
};
use jwe_session::{Clock, Key, KeyAlgorithm, Keyring, ManualClock, RejectionKind};
use support::manager::{token_of, T0};

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

    /// A memory store on the world's clock. (A store on the system clock
    /// would drop, as lapsed, entries made at T0 once the real date passes
    /// T0 and their lifetime.)
    fn memory_store(&self) -> MemoryStore {
        MemoryStore::new().with_clock(self.clock.clone())
    }

    fn manager(&self, store: Arc<dyn RevocationStore>) -> SessionManager {
        SessionManager::new(self.keyring.clone(), store, SessionConfig::new())
            .unwrap()
            .with_clock(self.clock.clone())
    }
}

async fn login(manager: &SessionManager, user: &str, role: &str) -> String {
    let mut session = manager.start(SessionMap::default());
    session.login(user);
    session.insert("role", role).unwrap();
    token_of(manager.save(&mut session).await.unwrap())
}

// ---- stale sessions ----------------------------------------------------------

/// `mark_stale` flags every existing session of the subject on every server
/// sharing the store, logs nobody out, and saving reloaded data clears the
/// flag for that session only.
async fn stale_sessions_reload_without_logging_out(
    world: &World,
    make: &dyn Fn() -> Arc<dyn RevocationStore>,
) {
    let a = world.manager(make());
    let b = world.manager(make());
    let first = login(&a, "alice", "editor").await;
    let second = login(&b, "alice", "editor").await;
    let bob = login(&a, "bob", "editor").await;
    for token in [&first, &second, &bob] {
        assert!(!a.load::<SessionMap>(token).await.unwrap().is_stale());
    }

    b.mark_stale("alice").await.unwrap();
    let mut session = a.load::<SessionMap>(&first).await.unwrap();
    assert!(session.is_stale(), "marked on b, seen on a");
    assert!(b.load::<SessionMap>(&second).await.unwrap().is_stale());
    assert!(!b.load::<SessionMap>(&bob).await.unwrap().is_stale());
    let after = login(&a, "alice", "viewer").await;
    assert!(
        !a.load::<SessionMap>(&after).await.unwrap().is_stale(),
        "a login after the mark is fresh"
    );

    // Reloading the data and saving clears the flag for this session.
    session.insert("role", "viewer").unwrap();
    let refreshed = token_of(a.save(&mut session).await.unwrap());
    assert!(!b.load::<SessionMap>(&refreshed).await.unwrap().is_stale());
    assert!(b.load::<SessionMap>(&second).await.unwrap().is_stale());

    // A re-issue that changes nothing (half of the idle window passed)
    // keeps the flag.
    world.clock.advance(Duration::from_secs(16 * 60));
    let mut session = a.load::<SessionMap>(&second).await.unwrap();
    let reissued = a.save(&mut session).await.unwrap();
    let SaveOutcome::Seal { token, reason, .. } = reissued else {
        panic!("not re-issued: {reissued:?}");
    };
    assert_eq!(reason, ResealReason::IdleHalfLife);
    assert!(a.load::<SessionMap>(&token).await.unwrap().is_stale());
    // Finding nothing to change: mark_refreshed clears it.
    let mut session = a.load::<SessionMap>(&token).await.unwrap();
    session.mark_refreshed();
    let token = token_of(a.save(&mut session).await.unwrap());
    assert!(!a.load::<SessionMap>(&token).await.unwrap().is_stale());

    // Stale is not revoked: a revocation still ends them all.
    a.revoke_subject("alice").await.unwrap();
    for token in [&first, &second, &refreshed, &after, &token] {
        assert_eq!(
            b.load::<SessionMap>(token).await.unwrap_err().kind(),
            RejectionKind::Revoked
        );
    }
    assert!(b.load::<SessionMap>(&bob).await.is_ok());
}

#[tokio::test]
async fn stale_sessions_reload_without_logging_out_memory() {
    let world = World::new();
    let store: Arc<dyn RevocationStore> = Arc::new(world.memory_store());
    stale_sessions_reload_without_logging_out(&world, &|| store.clone()).await;
}

// ---- what a client can put in the store --------------------------------------

/// An unauthenticated client adds no entry: not by logging in over its
/// cookie, not by renewing or ending an anonymous session.
#[tokio::test]
async fn an_anonymous_client_cannot_add_store_entries() {
    let world = World::new();
    let store = Arc::new(world.memory_store());
    let manager = world.manager(store.clone());
    let mut session = manager.start(SessionMap::default());
    session.insert("count", 1).unwrap();
    let mut token = token_of(manager.save(&mut session).await.unwrap());
    for i in 0..1_000 {
        let mut session = manager.load::<SessionMap>(&token).await.unwrap();
        session.renew();
        session.insert("count", i).unwrap();
        token = token_of(manager.save(&mut session).await.unwrap());
        let mut session = manager.load::<SessionMap>(&token).await.unwrap();
        session.destroy();
        assert_eq!(
            manager.save(&mut session).await.unwrap(),
            SaveOutcome::Remove
        );
    }
    assert_eq!(store.len(), 0);
    // Logging in over an anonymous cookie, again and again, adds nothing
    // either: the anonymous session holds nothing the login inherits.
    for _ in 0..1_000 {
        let mut session = manager.load::<SessionMap>(&token).await.unwrap();
        session.login("mallory");
        let _ = token_of(manager.save(&mut session).await.unwrap());
    }
    assert_eq!(store.len(), 0);
}

/// One subject holds at most its bound of session revocations; one more
/// revokes the subject (every session of it ends) and frees its entries.
/// `held`: how many revoked sessions of alice the store holds.
async fn one_subject_holds_a_bounded_number_of_revocations(
    world: &World,
    store: Arc<dyn RevocationStore>,
    held: &dyn Fn() -> usize,
) {
    let manager = world.manager(store);
    let bystander = login(&manager, "alice", "editor").await;
    for i in 0..5 {
        let token = login(&manager, "alice", "editor").await;
        let mut session = manager.load::<SessionMap>(&token).await.unwrap();
        session.destroy();
        assert_eq!(
            manager.save(&mut session).await.unwrap(),
            SaveOutcome::Remove
        );
        assert_eq!(
            manager.load::<SessionMap>(&token).await.unwrap_err().kind(),
            RejectionKind::Revoked
        );
        if i < 4 {
            assert!(manager.load::<SessionMap>(&bystander).await.is_ok());
            assert_eq!(held(), i + 1, "after logout {i}");
        }
    }
    // Past the bound the subject's revoked sessions are freed.
    let len = held();
    assert!(len <= 4, "entries: {len}");
    assert_eq!(
        len, 0,
        "revoked sessions held after the subject's revocation"
    );
    // The fifth logout went past the bound of 4: the subject is revoked.
    assert_eq!(
        manager
            .load::<SessionMap>(&bystander)
            .await
            .unwrap_err()
            .kind(),
        RejectionKind::Revoked
    );
    let after = login(&manager, "alice", "editor").await;
    assert!(manager.load::<SessionMap>(&after).await.is_ok());
}

#[tokio::test]
async fn one_subject_holds_a_bounded_number_of_revocations_memory() {
    let world = World::new();
    let store = Arc::new(world.memory_store().with_max_sessions_per_subject(4));
    let counted = store.clone();
    // One entry for the subject, one per revoked session.
    one_subject_holds_a_bounded_number_of_revocations(&world, store, &|| {
        counted.len().saturating_sub(1)
    })
    .await;
}

// ---- the first format --------------------------------------------------------

/// A token of format 1 as the previous release sealed it.
fn v1_token(world: &World, sub: &str, created_s: u64) -> String {
    let exp = created_s + 1800;
    let abs = created_s + 12 * 3600;
    let payload = format!(
        r#"{{"v":1,"aud":"session","sid":"old-sid-{created_s}","sub":"{sub}","created_ms":{},"iat":{created_s},"exp":{exp},"abs_exp":{abs},"data":{{"n":1}}}}"#,
        created_s * 1000
    );
    world
        .keyring
        .seal_with(
            payload.as_bytes(),
            &SealOptions::new().with_typ(SESSION_TYP),
        )
        .unwrap()
}

#[tokio::test]
async fn tokens_of_the_first_format_open_and_are_reissued() {
    let world = World::new();
    let manager = world.manager(Arc::new(world.memory_store()));
    let old = v1_token(&world, "alice", T0);
    let mut session = manager.load::<SessionMap>(&old).await.unwrap();
    assert_eq!(session.subject(), Some("alice"));
    assert_eq!(session.get::<u32>("n").unwrap(), Some(1));
    let outcome = manager.save(&mut session).await.unwrap();
    let SaveOutcome::Seal { token, reason, .. } = outcome else {
        panic!("not re-issued: {outcome:?}");
    };
    assert_eq!(reason, ResealReason::FormatUpgrade);
    let reissued = manager.load::<SessionMap>(&token).await.unwrap();
    assert_eq!(reissued.id(), session.id());
    assert_eq!(reissued.created(), world.clock.now());
    assert_eq!(reissued.absolute_deadline(), session.absolute_deadline());
    // Re-issued once: the next save leaves it alone.
    let mut again = reissued;
    assert_eq!(
        manager.save(&mut again).await.unwrap(),
        SaveOutcome::Unchanged
    );

    // A revocation ends format 1 tokens created before it, that
    // millisecond included, and the re-issued ones.
    world.clock.advance(Duration::from_secs(1));
    let same_second = v1_token(&world, "alice", T0 + 1);
    manager.revoke_subject("alice").await.unwrap();
    for token in [&old, &token, &same_second] {
        assert_eq!(
            manager.load::<SessionMap>(token).await.unwrap_err().kind(),
            RejectionKind::Revoked
        );
    }
    world.clock.advance(Duration::from_secs(1));
    let later = v1_token(&world, "alice", T0 + 2);
    assert!(manager.load::<SessionMap>(&later).await.is_ok());
}

/// Format 2 carries both generations exactly when it has a subject.
#[tokio::test]
async fn generations_must_match_the_format_and_subject() {
    let world = World::new();
    let manager = world.manager(Arc::new(world.memory_store()));
    let exp = T0 + 600;
    let created = T0 * 1000;
    for (case, members) in [
        ("v2, subject, no generations", r#""v":2,"sub":"a""#),
        ("v2, subject, one generation", r#""v":2,"sub":"a","sgen":0"#),
        ("v2, no subject, generations", r#""v":2,"sgen":0,"dgen":0"#),
        (
            "v1 with generations",
            r#""v":1,"sub":"a","sgen":0,"dgen":0"#,
        ),
        (
            "v2, generation not a number",
            r#""v":2,"sub":"a","sgen":"0","dgen":0"#,
        ),
    ] {
        let payload = format!(
            r#"{{{members},"aud":"session","sid":"x","created_ms":{created},"iat":{T0},"exp":{exp},"abs_exp":{exp},"data":{{}}}}"#
        );
        let token = world
            .keyring
            .seal_with(
                payload.as_bytes(),
                &SealOptions::new().with_typ(SESSION_TYP),
            )
            .unwrap();
        let rejection = manager.load::<SessionMap>(&token).await.unwrap_err();
        assert_eq!(rejection.kind(), RejectionKind::WrongPurpose, "{case}");
    }
    let payload = format!(
        r#"{{"v":2,"sub":"a","sgen":0,"dgen":0,"aud":"session","sid":"x","created_ms":{created},"iat":{T0},"exp":{exp},"abs_exp":{exp},"data":{{}}}}"#
    );
    let token = world
        .keyring
        .seal_with(
            payload.as_bytes(),
            &SealOptions::new().with_typ(SESSION_TYP),
        )
        .unwrap();
    assert!(manager.load::<SessionMap>(&token).await.is_ok());
}

// ---- Redis -------------------------------------------------------------------

#[cfg(feature = "redis")]
mod redis_store {
    use super::*;
    use support::RedisServer;

    fn store(
        server: &RedisServer,
        prefix: &str,
        bound: usize,
        world: &World,
    ) -> Arc<dyn RevocationStore> {
        Arc::new(
            jwe_session::revocation::RedisStore::builder(server.url())
                .key_prefix(prefix)
                .max_sessions_per_subject(bound)
                .timeout(Duration::from_secs(5))
                .clock(world.clock.clone())
                .build()
                .expect("redis store"),
        )
    }

    #[tokio::test]
    async fn stale_sessions_reload_without_logging_out_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let world = World::new();
        stale_sessions_reload_without_logging_out(&world, &|| {
            store(&server, "stale:", 100, &world)
        })
        .await;
    }

    #[tokio::test]
    async fn one_subject_holds_a_bounded_number_of_revocations_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let number = |args: &[&str]| -> usize {
            server
                .command(args)
                .trim_start_matches(':')
                .parse()
                .unwrap()
        };
        // The hash's fields less g, d and e: one `s:` field per revoked
        // session.
        let held = || {
            let generations: usize = ["g", "d", "e"]
                .iter()
                .map(|field| number(&["HEXISTS", "bound:subject:alice", field]))
                .sum();
            number(&["HLEN", "bound:subject:alice"]) - generations
        };
        let world = World::new();
        one_subject_holds_a_bounded_number_of_revocations(
            &world,
            store(&server, "bound:", 4, &world),
            &held,
        )
        .await;
    }
}

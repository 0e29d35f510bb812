//! Regression tests for the revocation defects of issue 10, each named after
//! its defect. They use only the session manager's API as it was before the
//! fix (login, save, load, revoke), so each can be run against the old code
//! to see it fail there.
//!
//! * Log out everywhere missed sessions created in the same millisecond as
//!   the revocation, and sessions sealed by a server whose clock runs ahead.
//! * A logged-out token opened again during the last second of its life:
//!   the revocation lapsed at the deadline while the time checks accepted
//!   the whole second.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager, SessionMap};
use jwe_session::{Clock, Key, KeyAlgorithm, Keyring, RejectionKind};

const T0_MS: u64 = 1_800_000_000_000;

/// A clock to the millisecond, moved by the test.
#[derive(Debug)]
struct TestClock(AtomicU64);

impl TestClock {
    fn at_ms(ms: u64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicU64::new(ms)))
    }

    fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()))
}

fn manager(
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    clock: Arc<dyn Clock>,
    config: SessionConfig,
) -> SessionManager {
    SessionManager::new(keyring, store, config)
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

async fn logout(manager: &SessionManager, token: &str) {
    let mut session = manager.load::<SessionMap>(token).await.unwrap();
    session.destroy();
    assert_eq!(
        manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
}

async fn opens(manager: &SessionManager, token: &str) -> bool {
    manager.load::<SessionMap>(token).await.is_ok()
}

// ---- log out everywhere ------------------------------------------------------

/// 10,000 rounds of "seal two sessions for one subject, revoke, load both",
/// all in one millisecond: none survives, and a login right after each
/// revocation (still the same millisecond) is accepted.
/// `make` builds the store on the test's clock: a store on the system
/// clock would drop, as lapsed, entries made at T0 once the real date
/// passes T0 and their lifetime.
async fn log_out_everywhere_misses_no_session_of_the_same_millisecond(
    make: impl FnOnce(Arc<dyn Clock>) -> Arc<dyn RevocationStore>,
) {
    let clock = TestClock::at_ms(T0_MS + 417);
    let manager = manager(keyring(), make(clock.clone()), clock, SessionConfig::new());
    let mut survivors = 0;
    let mut refused_after = 0;
    for round in 0..10_000 {
        let user = format!("user-{}", round % 50);
        let first = login(&manager, &user).await;
        let second = login(&manager, &user).await;
        manager.revoke_subject(&user).await.unwrap();
        survivors += usize::from(opens(&manager, &first).await);
        survivors += usize::from(opens(&manager, &second).await);
        let again = login(&manager, &user).await;
        refused_after += usize::from(!opens(&manager, &again).await);
    }
    assert_eq!(survivors, 0, "sessions that survived log out everywhere");
    assert_eq!(refused_after, 0, "logins after the revocation refused");
}

#[tokio::test]
async fn log_out_everywhere_misses_no_session_of_the_same_millisecond_memory() {
    log_out_everywhere_misses_no_session_of_the_same_millisecond(|clock| {
        Arc::new(MemoryStore::new().with_clock(clock))
    })
    .await;
}

/// The same with the system clock, as the demos run.
#[tokio::test]
async fn log_out_everywhere_misses_no_session_on_the_system_clock() {
    let manager = SessionManager::new(
        keyring(),
        Arc::new(MemoryStore::new()),
        SessionConfig::new(),
    )
    .unwrap();
    let mut survivors = 0;
    for _ in 0..10_000 {
        let first = login(&manager, "alice").await;
        let second = login(&manager, "alice").await;
        manager.revoke_subject("alice").await.unwrap();
        survivors += usize::from(opens(&manager, &first).await);
        survivors += usize::from(opens(&manager, &second).await);
    }
    assert_eq!(survivors, 0);
    let after = login(&manager, "alice").await;
    assert!(opens(&manager, &after).await);
}

/// Two servers sharing one store, their clocks 2 s ahead and 2 s behind
/// (the leeway is 60 s): sessions sealed on either are refused by both
/// after either revokes, and a login afterwards works on both.
async fn log_out_everywhere_holds_across_skewed_clocks(
    make: &dyn Fn() -> Arc<dyn RevocationStore>,
) {
    let keys = keyring();
    let ahead = TestClock::at_ms(T0_MS + 2_000);
    let behind = TestClock::at_ms(T0_MS - 2_000);
    let servers = [
        manager(keys.clone(), make(), ahead.clone(), SessionConfig::new()),
        manager(keys.clone(), make(), behind.clone(), SessionConfig::new()),
    ];
    for (round, revoker) in [0usize, 1, 0, 1].into_iter().enumerate() {
        let user = format!("skew-{round}");
        let mut tokens = Vec::new();
        for server in &servers {
            tokens.push(login(server, &user).await);
            tokens.push(login(server, &user).await);
        }
        servers[revoker].revoke_subject(&user).await.unwrap();
        for server in &servers {
            for token in &tokens {
                assert!(
                    !opens(server, token).await,
                    "round {round}: a session survived log out everywhere"
                );
            }
        }
        for sealer in &servers {
            let after = login(sealer, &user).await;
            for server in &servers {
                assert!(
                    opens(server, &after).await,
                    "round {round}: login after refused"
                );
            }
        }
        // Time goes on for both.
        ahead.set_ms(ahead.0.load(Ordering::SeqCst) + 1_000);
        behind.set_ms(behind.0.load(Ordering::SeqCst) + 1_000);
    }
}

#[tokio::test]
async fn log_out_everywhere_holds_across_skewed_clocks_memory() {
    // The store on a test clock too (at T0, between the servers' clocks).
    let store: Arc<dyn RevocationStore> =
        Arc::new(MemoryStore::new().with_clock(TestClock::at_ms(T0_MS)));
    log_out_everywhere_holds_across_skewed_clocks(&|| store.clone()).await;
}

// ---- the last second of a token's life ---------------------------------------

/// A session whose idle window is its whole lifetime, so its token's `exp`
/// equals its absolute deadline; logged out (or its subject revoked) at
/// once. Around the last moment any token may open, `deadline + leeway`
/// (whole seconds), it never opens again: not at −1 ms, 0, +500 ms or
/// +999 ms, nor after. A token that was not revoked opens through that
/// whole last second and is refused from the next.
async fn a_revoked_token_never_opens_in_the_last_second_of_its_life(
    make: &dyn Fn(Arc<dyn Clock>) -> Arc<dyn RevocationStore>,
    by_subject: bool,
) {
    let clock = TestClock::at_ms(T0_MS + 250);
    // The store reads the same clock, so its entries lapse by it.
    let store = make(clock.clone());
    let config = SessionConfig::new()
        .with_idle_timeout(Duration::from_secs(600))
        .with_absolute_timeout(Duration::from_secs(600))
        .with_leeway(Duration::from_secs(5));
    let manager = manager(keyring(), store, clock.clone(), config);
    let revoked = login(&manager, "alice").await;
    let kept = login(&manager, "bob").await;
    let deadline_ms = {
        let session = manager.load::<SessionMap>(&revoked).await.unwrap();
        assert_eq!(session.expires(), session.absolute_deadline());
        let deadline = session.absolute_deadline() + Duration::from_secs(5);
        u64::try_from(deadline.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
    };
    if by_subject {
        manager.revoke_subject("alice").await.unwrap();
    } else {
        logout(&manager, &revoked).await;
    }
    for offset in [-1_000i64, -1, 0, 1, 500, 999, 1_000, 1_001, 60_000] {
        let at = deadline_ms.checked_add_signed(offset).unwrap();
        clock.set_ms(at);
        let rejection = manager.load::<SessionMap>(&revoked).await.err();
        assert!(
            rejection.is_some(),
            "the revoked token opened at deadline {offset:+} ms"
        );
        let kind = rejection.unwrap().kind();
        let expected = if offset < 1_000 {
            RejectionKind::Revoked
        } else {
            RejectionKind::ExpiredAbsolute
        };
        assert_eq!(kind, expected, "at deadline {offset:+} ms");
        assert_eq!(
            opens(&manager, &kept).await,
            offset < 1_000,
            "the live token at deadline {offset:+} ms"
        );
    }
}

fn memory_on(clock: Arc<dyn Clock>) -> Arc<dyn RevocationStore> {
    Arc::new(MemoryStore::new().with_clock(clock))
}

#[tokio::test]
async fn a_logged_out_token_never_opens_in_the_last_second_of_its_life_memory() {
    a_revoked_token_never_opens_in_the_last_second_of_its_life(&memory_on, false).await;
}

#[tokio::test]
async fn a_revoked_subjects_token_never_opens_in_the_last_second_of_its_life_memory() {
    a_revoked_token_never_opens_in_the_last_second_of_its_life(&memory_on, true).await;
}

// ---- Redis -------------------------------------------------------------------

#[cfg(feature = "redis")]
mod redis_store {
    use super::*;
    use support::RedisServer;

    fn store_on(
        server: &RedisServer,
        prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Arc<dyn RevocationStore> {
        Arc::new(
            jwe_session::revocation::RedisStore::builder(server.url())
                .key_prefix(prefix)
                // Thousands of calls on a loaded CI machine: a timeout
                // that only a hung server reaches.
                .timeout(Duration::from_secs(5))
                .clock(clock)
                .build()
                .expect("redis store"),
        )
    }

    #[tokio::test]
    async fn log_out_everywhere_misses_no_session_of_the_same_millisecond_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        log_out_everywhere_misses_no_session_of_the_same_millisecond(|clock| {
            store_on(&server, "ms:", clock)
        })
        .await;
    }

    /// Two servers, each with its own connection to one Redis, clocks ±2 s.
    #[tokio::test]
    async fn log_out_everywhere_holds_across_skewed_clocks_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        log_out_everywhere_holds_across_skewed_clocks(&|| {
            store_on(&server, "skew:", TestClock::at_ms(T0_MS))
        })
        .await;
    }

    #[tokio::test]
    async fn a_logged_out_token_never_opens_in_the_last_second_of_its_life_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        a_revoked_token_never_opens_in_the_last_second_of_its_life(
            &|clock| store_on(&server, "last:", clock),
            false,
        )
        .await;
    }

    #[tokio::test]
    async fn a_revoked_subjects_token_never_opens_in_the_last_second_of_its_life_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        a_revoked_token_never_opens_in_the_last_second_of_its_life(
            &|clock| store_on(&server, "lastsub:", clock),
            true,
        )
        .await;
    }
}

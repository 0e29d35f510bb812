//! The token cache changes what a load costs, never what it answers: every
//! check the cache could skip is tried here against a token that is cached.

use std::sync::Arc;
use std::time::Duration;

use jwe_session::revocation::MemoryStore;
use jwe_session::session::{
    ResealReason, SaveOutcome, Session, SessionConfig, SessionManager, SessionMap,
};
use jwe_session::{Key, KeyAlgorithm, KeyState, Keyring, RejectionKind};
use serde::{Deserialize, Serialize};

mod support;

use support::manager::{fixture, fixture_with, token_of, Fixture};

impl Fixture {
    async fn login(&self, user: &str) -> String {
        let mut session = self.manager.start(SessionMap::default());
        session.login(user);
        session.insert("theme", "dark").unwrap();
        self.seal(&mut session).await
    }

    async fn seal<T: Serialize>(&self, session: &mut Session<T>) -> String {
        token_of(self.manager.save(session).await.unwrap())
    }

    async fn load(&self, token: &str) -> Result<Session<SessionMap>, RejectionKind> {
        self.manager
            .load_cached::<SessionMap>(token)
            .await
            .map_err(|rejection| rejection.kind())
    }

    /// Logs `user` in and loads the token so that it is cached.
    async fn cached(&self, user: &str) -> String {
        let token = self.login(user).await;
        self.cache(&token).await;
        token
    }

    /// Loads `token` once so that it is cached, and checks that it is.
    async fn cache(&self, token: &str) {
        let before = self.manager.token_cache_stats();
        self.load(token).await.unwrap();
        self.load(token).await.unwrap();
        let after = self.manager.token_cache_stats();
        assert!(
            after.hits > before.hits,
            "the token is served from the cache"
        );
    }
}

#[tokio::test]
async fn a_second_load_is_served_from_the_cache() {
    let f = fixture();
    let token = f.login("alice").await;
    let first = f.load(&token).await.unwrap();
    let second = f.load(&token).await.unwrap();
    let stats = f.manager.token_cache_stats();
    assert_eq!((stats.entries, stats.hits, stats.misses), (1, 1, 1));
    assert_eq!(first.id(), second.id());
    assert_eq!(second.subject(), Some("alice"));
    assert_eq!(
        second.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(second.kid(), first.kid());
    // Plain `load` uses the cached claims too.
    assert!(f.manager.load::<SessionMap>(&token).await.is_ok());
    assert_eq!(f.manager.token_cache_stats().hits, 2);
}

#[tokio::test]
async fn only_tokens_whose_load_succeeds_are_kept() {
    let f = fixture();
    let token = f.login("alice").await;
    f.advance(30 * 60 + 61);
    assert_eq!(
        f.load(&token).await.unwrap_err(),
        RejectionKind::ExpiredIdle
    );
    assert_eq!(
        f.manager.token_cache_stats().entries,
        0,
        "an expired token is not kept"
    );

    let token = f.login("bob").await;
    let mut session = f.load(&token).await.unwrap();
    session.destroy();
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    f.manager.forget_token(&token);
    assert_eq!(f.load(&token).await.unwrap_err(), RejectionKind::Revoked);
    assert_eq!(
        f.manager.token_cache_stats().entries,
        0,
        "a revoked token is not kept"
    );
}

#[tokio::test]
async fn a_cached_token_still_expires() {
    let f = fixture();
    let token = f.cached("alice").await;
    f.advance(30 * 60 + 61); // past the idle deadline and the leeway
    assert_eq!(
        f.load(&token).await.unwrap_err(),
        RejectionKind::ExpiredIdle
    );
    assert_eq!(
        f.manager.token_cache_stats().entries,
        0,
        "dropped once it fails"
    );

    let f = fixture_with(
        SessionConfig::new()
            .with_idle_timeout(Duration::from_secs(3600))
            .with_absolute_timeout(Duration::from_secs(3600)),
    );
    let token = f.cached("bob").await;
    f.advance(3600 + 61);
    assert_eq!(
        f.load(&token).await.unwrap_err(),
        RejectionKind::ExpiredAbsolute
    );
}

#[tokio::test]
async fn a_cached_token_is_still_revoked() {
    let f = fixture();
    let token = f.cached("alice").await;
    // Log out through another copy of the session.
    let mut session = f.load(&token).await.unwrap();
    session.destroy();
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    assert_eq!(f.load(&token).await.unwrap_err(), RejectionKind::Revoked);

    // Log out everywhere.
    let token = {
        f.advance(1);
        f.login("bob").await
    };
    f.cache(&token).await;
    f.advance(1);
    f.manager.revoke_subject("bob").await.unwrap();
    assert_eq!(f.load(&token).await.unwrap_err(), RejectionKind::Revoked);
}

#[tokio::test]
async fn removing_the_key_fails_its_cached_tokens_at_once() {
    let f = fixture();
    let token = f.cached("alice").await;
    let old = f.keyring.primary_kid();
    f.keyring.rotate().unwrap();
    f.keyring.remove(&old).unwrap();
    assert_eq!(f.load(&token).await.unwrap_err(), RejectionKind::UnknownKey);
    assert_eq!(
        f.manager.token_cache_stats().entries,
        0,
        "the stale entry is dropped"
    );
}

#[tokio::test]
async fn a_cached_token_under_a_key_retired_since_is_reissued() {
    let f = fixture();
    let token = f.cached("alice").await;
    f.keyring.rotate().unwrap();
    let hits = f.manager.token_cache_stats().hits;
    let mut session = f.load(&token).await.unwrap();
    assert_eq!(f.manager.token_cache_stats().hits, hits + 1);
    assert_eq!(session.key_state(), Some(KeyState::Retired));
    match f.manager.save(&mut session).await.unwrap() {
        SaveOutcome::Seal {
            reason, token: new, ..
        } => {
            assert_eq!(reason, ResealReason::KeyNotPrimary);
            let reissued = f.load(&new).await.unwrap();
            assert_eq!(reissued.kid(), Some(f.keyring.primary_kid().as_str()));
            assert_eq!(reissued.id(), session.id());
        }
        other => panic!("expected a re-issue, got {other:?}"),
    }
}

#[tokio::test]
async fn a_scheduled_promotion_reaches_cached_tokens() {
    use jwe_session::Clock;
    let f = fixture();
    let token = f.cached("alice").await;
    let next = Key::generate(KeyAlgorithm::A256Kw)
        .unwrap()
        .with_kid("next")
        .unwrap();
    f.keyring.stage(next).unwrap();
    f.keyring
        .promote_at("next", f.clock.now() + Duration::from_secs(60))
        .unwrap();
    let session = f.load(&token).await.unwrap();
    assert_eq!(session.key_state(), Some(KeyState::Primary));
    f.advance(60);
    let hits = f.manager.token_cache_stats().hits;
    let session = f.load(&token).await.unwrap();
    assert_eq!(f.manager.token_cache_stats().hits, hits + 1);
    assert_eq!(session.key_state(), Some(KeyState::Retired));
}

#[tokio::test]
async fn a_different_key_under_the_same_kid_is_not_trusted() {
    let f = fixture();
    let token = f.cached("alice").await;
    let kid = f.keyring.primary_kid();

    // The same key reloaded (same material): the keyring keeps its key
    // object, so the token stays cached.
    let same = Keyring::from_jwk_set(&f.keyring.to_jwk_set()).unwrap();
    f.keyring.replace_with(&same);
    let hits = f.manager.token_cache_stats().hits;
    assert!(f.load(&token).await.is_ok());
    assert_eq!(f.manager.token_cache_stats().hits, hits + 1);

    // Other material under the same kid: the cached result must not count.
    let other = Keyring::new(
        Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid(kid)
            .unwrap(),
    );
    f.keyring.replace_with(&other);
    assert_eq!(
        f.load(&token).await.unwrap_err(),
        RejectionKind::DecryptFailed
    );
}

#[tokio::test]
async fn a_new_key_under_a_removed_kid_does_not_revive_cached_tokens() {
    let f = fixture();
    let token = f.cached("alice").await;
    let kid = f.keyring.primary_kid();
    f.keyring.rotate().unwrap();
    f.keyring.remove(&kid).unwrap();
    let other = Key::generate(KeyAlgorithm::A256Kw)
        .unwrap()
        .with_kid(kid)
        .unwrap();
    f.keyring.stage(other).unwrap();
    assert_eq!(
        f.load(&token).await.unwrap_err(),
        RejectionKind::DecryptFailed
    );
}

#[tokio::test]
async fn a_token_one_byte_off_is_not_a_hit() {
    let f = fixture();
    let token = f.cached("alice").await;
    let tag_start = token.rfind('.').unwrap() + 1;
    let ciphertext = token[..tag_start - 1].rfind('.').unwrap() + 1;
    // One byte in each of the four parts before the tag: the tag, which the
    // cache buckets by, stays, so these reach the byte-for-byte comparison
    // with the cached token. Then one byte of the tag itself.
    let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
    let mut positions = vec![0, dots[0] + 1, dots[1] + 1, ciphertext + 3];
    positions.push(token.len() - 1);
    for position in positions {
        let mut bytes = token.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(bytes).unwrap();
        assert!(f.load(&forged).await.is_err(), "byte {position} changed");
    }
    // A token with extra bytes around the cached one.
    assert!(f.load(&format!("{token}A")).await.is_err());
    assert!(f.load(&format!(" {token}")).await.is_err());
    assert!(f.load(&token).await.is_ok());
}

#[tokio::test]
async fn cached_data_is_copied_on_write() {
    let f = fixture();
    let token = f.cached("alice").await;
    let mut first = f.load(&token).await.unwrap();
    first.insert("theme", "light").unwrap();
    first.insert("extra", 1).unwrap();
    let mut second = f.load(&token).await.unwrap();
    assert_eq!(
        second.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(second.get::<u32>("extra").unwrap(), None);
    assert_eq!(second.data().len(), 1);
    assert_eq!(second.remove("theme"), Some(serde_json::json!("dark")));
    let mut third = f.load(&token).await.unwrap();
    assert_eq!(third.data().len(), 1);
    third.data_mut().clear();
    assert!(third.data().is_empty());
    let fourth = f.load(&token).await.unwrap();
    assert_eq!(
        fourth.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
}

/// Decoding this type is not repeatable: each decode takes a new number.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Numbered {
    theme: String,
    #[serde(skip, default = "next_number")]
    number: u64,
}

fn next_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn only_session_maps_are_kept_decoded() {
    let f = fixture();
    let token = f.cached("alice").await;
    // A type of the application's is decoded again on every load, as it
    // would be without the cache, even though the token is cached.
    let hits = f.manager.token_cache_stats().hits;
    let first = f.manager.load_cached::<Numbered>(&token).await.unwrap();
    let second = f.manager.load_cached::<Numbered>(&token).await.unwrap();
    assert_eq!(f.manager.token_cache_stats().hits, hits + 2);
    assert_eq!(first.data().theme, "dark");
    assert_ne!(first.data().number, second.data().number);
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Prefs {
    theme: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cart {
    items: Vec<u32>,
}

#[tokio::test]
async fn each_type_is_checked_against_the_cached_data() {
    let f = fixture();
    let token = f.cached("alice").await;
    // Another type that fits the data decodes; one that does not is refused.
    let prefs = f.manager.load_cached::<Prefs>(&token).await.unwrap();
    assert_eq!(prefs.data().theme, "dark");
    let refused = f.manager.load_cached::<Cart>(&token).await.unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::Malformed);
    let refused = f.manager.load::<Cart>(&token).await.unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::Malformed);
    // And the map is still there for its own type.
    assert!(f.load(&token).await.is_ok());
}

#[tokio::test]
async fn a_rejected_token_stays_rejected() {
    let f = fixture();
    let token = f.login("alice").await;
    // The same keyring under another purpose: refused, and again when asked twice.
    let manager = SessionManager::new(
        f.keyring.clone(),
        Arc::new(MemoryStore::new()),
        SessionConfig::new().with_purpose("admin"),
    )
    .unwrap()
    .with_clock(f.clock.clone());
    for _ in 0..2 {
        let kind = manager.load::<SessionMap>(&token).await.unwrap_err().kind();
        assert_eq!(kind, RejectionKind::WrongPurpose);
    }
    assert_eq!(manager.token_cache_stats().entries, 0);
    assert_eq!(manager.token_cache_stats().misses, 2);
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let f = fixture_with(SessionConfig::new().with_token_cache_bytes(0));
    let token = f.login("alice").await;
    for _ in 0..3 {
        assert_eq!(f.load(&token).await.unwrap().subject(), Some("alice"));
    }
    let stats = f.manager.token_cache_stats();
    assert_eq!(
        (stats.entries, stats.capacity, stats.hits, stats.misses),
        (0, 0, 0, 0)
    );
}

#[test]
fn an_absurd_capacity_is_refused_at_start_up() {
    let config = SessionConfig::new().with_token_cache_bytes(usize::MAX);
    let error = config.validate().unwrap_err();
    assert!(error.to_string().contains("token cache"), "{error}");
    let tiny = SessionConfig::new().with_token_cache_bytes(4096);
    let error = tiny.validate().unwrap_err();
    assert!(error.to_string().contains("64 KiB"), "{error}");
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    assert!(SessionManager::new(keyring, Arc::new(MemoryStore::new()), config).is_err());
    assert!(SessionConfig::new()
        .with_token_cache_bytes(jwe_session::session::MAX_TOKEN_CACHE_BYTES)
        .validate()
        .is_ok());
}

#[tokio::test]
async fn the_cache_stays_within_its_bytes() {
    let f = fixture_with(SessionConfig::new().with_token_cache_bytes(64 * 1024));
    for i in 0..200 {
        let token = f.login(&format!("user{i}")).await;
        assert!(f.load(&token).await.is_ok());
    }
    let stats = f.manager.token_cache_stats();
    assert!(stats.bytes <= 64 * 1024, "{stats:?}");
    // 1.5 to 2 KiB a token: a few dozen fit, not 200.
    assert!((16..=48).contains(&stats.entries), "{stats:?}");
    assert_eq!(stats.misses, 200);
}

#[tokio::test]
async fn a_large_session_weighs_more() {
    let f = fixture_with(SessionConfig::new().with_token_cache_bytes(1024 * 1024));
    let small = f.login("alice").await;
    f.cache(&small).await;
    let one = f.manager.token_cache_stats().bytes;
    let mut session = f.manager.start(SessionMap::default());
    session.login("bob");
    session.insert("draft", "x".repeat(6000)).unwrap();
    let large = f.seal(&mut session).await;
    f.cache(&large).await;
    let two = f.manager.token_cache_stats().bytes;
    // The 6,000 characters are held three times: base64url-encoded in the
    // token (8,000 bytes), as the data's text and as the decoded string
    // (6,000 each). (The cache used to charge four times the text instead
    // of what the decoded data holds, tests/token_cache_memory.rs.)
    assert!(two - one > 6000 * 4 / 3 + 2 * 6000, "{one} then {two}");
}

mod service {
    use super::*;
    use jwe_session::adapter::{self, Admission, RequestHead};
    use jwe_session::SessionLayer;

    async fn request(
        service: &SessionLayer,
        token: &str,
        handler: impl FnOnce(&jwe_session::SessionHandle<SessionMap>),
    ) -> Vec<String> {
        let cookie = format!("{}={token}", service.cookies().name());
        let head = RequestHead {
            method: "GET",
            host: Some("example.com"),
            cookies: vec![cookie.as_bytes()],
            ..RequestHead::default()
        };
        let Admission::Proceed(active) = adapter::begin(service, &head).await else {
            panic!("refused")
        };
        handler(&active.handle::<SessionMap>());
        adapter::finish(service, active).await.set_cookies
    }

    #[tokio::test]
    async fn a_token_the_response_replaces_or_removes_leaves_the_cache() {
        let f = fixture();
        // The store on the test's clock too: on the system clock, the
        // logout's revocation would count as lapsed once the real date
        // passes the fixture's.
        let store = Arc::new(MemoryStore::new().with_clock(f.clock.clone()));
        let service = SessionLayer::builder(f.keyring.clone(), store)
            .clock(f.clock.clone())
            .build()
            .unwrap();
        let manager = service.manager();
        let mut session = manager.start(SessionMap::default());
        session.login("alice");
        let token = match manager.save(&mut session).await.unwrap() {
            SaveOutcome::Seal { token, .. } => token,
            other => panic!("{other:?}"),
        };

        // Nothing to send back: the token stays cached.
        assert!(request(&service, &token, |_| {}).await.is_empty());
        assert!(request(&service, &token, |_| {}).await.is_empty());
        assert_eq!(manager.token_cache_stats().entries, 1);
        assert_eq!(manager.token_cache_stats().hits, 1);

        // New data: a new token is sent and the old one is forgotten.
        let sent = request(&service, &token, |handle| handle.insert("n", 1).unwrap()).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(manager.token_cache_stats().entries, 0);

        // Logout: the cookie is removed and the token is forgotten.
        assert!(request(&service, &token, |_| {}).await.is_empty());
        assert_eq!(manager.token_cache_stats().entries, 1);
        let sent = request(&service, &token, |handle| handle.destroy()).await;
        assert!(sent[0].contains("Max-Age=0"), "{sent:?}");
        assert_eq!(manager.token_cache_stats().entries, 0);

        // A revoked token that comes back is refused, left alone (a late
        // answer must not clear a newer cookie: tests/inflight_requests.rs)
        // and not kept.
        let sent = request(&service, &token, |_| {}).await;
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(manager.token_cache_stats().entries, 0);
    }
}

mod failing_store {
    use super::support::stores::AwaitedStore;
    use super::*;
    use jwe_session::adapter::{self, Admission, RequestHead};
    use jwe_session::SessionLayer;

    #[tokio::test]
    async fn a_logout_the_store_could_not_record_still_forgets_the_token() {
        let store = Arc::new(AwaitedStore::new(MemoryStore::new()));
        let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
        let service = SessionLayer::builder(keyring, store.clone())
            .build()
            .unwrap();
        let manager = service.manager();
        let mut session = manager.start(SessionMap::default());
        session.login("alice");
        let token = match manager.save(&mut session).await.unwrap() {
            SaveOutcome::Seal { token, .. } => token,
            other => panic!("{other:?}"),
        };
        let cookie = format!("{}={token}", service.cookies().name());
        let head = RequestHead {
            method: "GET",
            host: Some("example.com"),
            cookies: vec![cookie.as_bytes()],
            ..RequestHead::default()
        };
        let Admission::Proceed(active) = adapter::begin(&service, &head).await else {
            panic!("refused")
        };
        assert_eq!(manager.token_cache_stats().entries, 1);
        active.handle::<SessionMap>().destroy();
        store.set_revocations_down(true);
        let response = adapter::finish(&service, active).await;
        assert_eq!(response.replace_status, Some(503));
        assert!(response.set_cookies[0].contains("Max-Age=0"));
        assert_eq!(manager.token_cache_stats().entries, 0);
    }
}

/// Once `remove(kid)` has returned, no load that starts afterwards accepts a
/// token of that key, however many threads have it cached.
#[test]
fn no_load_after_a_key_is_removed_accepts_its_cached_tokens() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let f = fixture();
    let token = runtime.block_on(f.login("alice"));
    runtime.block_on(f.cache(&token));
    let manager = Arc::new(f.manager);
    let removed = Arc::new(AtomicBool::new(false));
    let start = Arc::new(std::sync::Barrier::new(5));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let manager = Arc::clone(&manager);
            let removed = Arc::clone(&removed);
            let start = Arc::clone(&start);
            let token = token.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                start.wait();
                let mut after = 0;
                while after < 200 {
                    let was_removed = removed.load(Ordering::Acquire);
                    let loaded = runtime.block_on(manager.load_cached::<SessionMap>(&token));
                    if was_removed {
                        after += 1;
                        let kind = loaded.map(|_| ()).unwrap_err().kind();
                        assert_eq!(kind, RejectionKind::UnknownKey);
                    }
                }
            })
        })
        .collect();
    start.wait();
    let old = f.keyring.primary_kid();
    f.keyring.rotate().unwrap();
    f.keyring.remove(&old).unwrap();
    removed.store(true, Ordering::Release);
    for reader in readers {
        reader.join().unwrap();
    }
    assert_eq!(manager.token_cache_stats().entries, 0);
}

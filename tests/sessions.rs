//! Session lifetimes, renewal and re-issue, with an injected clock.

use std::sync::Arc;
use std::time::Duration;

use jwe_session::clock::unix_seconds;
use jwe_session::revocation::MemoryStore;
use jwe_session::session::{
    ResealReason, SaveOutcome, SessionConfig, SessionManager, SessionMap, SESSION_TYP,
};
use jwe_session::{
    jwe, Clock, Key, KeyAlgorithm, KeyState, Keyring, OpenOptions, RejectionKind, SealOptions,
};
use serde::{Deserialize, Serialize};

const MIN: u64 = 60;

mod support;

use support::manager::{fixture, fixture_with, token_of, Fixture, T0};

impl Fixture {
    async fn login(&self, user: &str) -> String {
        let mut session = self.manager.start(SessionMap::default());
        session.renew();
        session.set_subject(user);
        token_of(self.manager.save(&mut session).await.unwrap())
    }

    async fn reject_kind(&self, token: &str) -> RejectionKind {
        self.manager
            .load::<SessionMap>(token)
            .await
            .unwrap_err()
            .kind()
    }
}

#[tokio::test]
async fn idle_timeout_is_enforced_with_leeway() {
    let f = fixture();
    let token = f.login("alice").await;
    f.advance(30 * MIN + 60); // exactly exp + leeway: still accepted
    assert!(f.manager.load::<SessionMap>(&token).await.is_ok());
    f.advance(1);
    assert_eq!(f.reject_kind(&token).await, RejectionKind::ExpiredIdle);
}

#[tokio::test]
async fn no_new_token_until_half_the_idle_window_has_passed() {
    let f = fixture();
    let token = f.login("alice").await;
    f.advance(15 * MIN);
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Unchanged
    );
    f.advance(1);
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    match f.manager.save(&mut session).await.unwrap() {
        SaveOutcome::Seal {
            reason, expires, ..
        } => {
            assert_eq!(reason, ResealReason::IdleHalfLife);
            assert_eq!(unix_seconds(expires), T0 + 15 * MIN + 1 + 30 * MIN);
        }
        other => panic!("expected a renewal, got {other:?}"),
    }
}

#[tokio::test]
async fn sliding_renewal_never_passes_the_absolute_deadline() {
    let f = fixture();
    let mut token = f.login("alice").await;
    let first = f.manager.load::<SessionMap>(&token).await.unwrap();
    let (sid, created, deadline) = (
        first.id().to_owned(),
        first.created(),
        first.absolute_deadline(),
    );
    assert_eq!(unix_seconds(deadline), T0 + 12 * 3600);
    // Use the session every 20 minutes: each request slides the idle window.
    loop {
        f.advance(20 * MIN);
        match f.manager.load::<SessionMap>(&token).await {
            Ok(mut session) => {
                assert_eq!(session.id(), sid);
                assert_eq!(session.created(), created);
                assert_eq!(session.absolute_deadline(), deadline);
                if let SaveOutcome::Seal {
                    token: next,
                    expires,
                    ..
                } = f.manager.save(&mut session).await.unwrap()
                {
                    assert!(expires <= deadline, "exp past the absolute deadline");
                    token = next;
                }
            }
            Err(rejection) => {
                assert_eq!(rejection.kind(), RejectionKind::ExpiredAbsolute);
                assert!(unix_seconds(f.clock.now()) > T0 + 12 * 3600 + 60);
                break;
            }
        }
        assert!(
            unix_seconds(f.clock.now()) < T0 + 13 * 3600,
            "session outlived its absolute timeout"
        );
    }
}

#[tokio::test]
async fn token_under_a_retired_key_is_reissued_without_extending_the_session() {
    let f = fixture();
    let token = f.login("alice").await;
    let old_kid = jwe::parse(&token, &OpenOptions::new())
        .unwrap()
        .header()
        .kid()
        .unwrap()
        .to_owned();
    f.advance(60);
    let new_kid = f.keyring.rotate().unwrap();
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    assert_eq!(session.kid(), Some(old_kid.as_str()));
    assert_eq!(session.key_state(), Some(KeyState::Retired));
    let (sid, created, deadline) = (
        session.id().to_owned(),
        session.created(),
        session.absolute_deadline(),
    );
    let outcome = f.manager.save(&mut session).await.unwrap();
    let SaveOutcome::Seal {
        token: reissued,
        reason,
        ..
    } = outcome
    else {
        panic!("expected a re-issue");
    };
    assert_eq!(reason, ResealReason::KeyNotPrimary);
    assert_eq!(
        jwe::parse(&reissued, &OpenOptions::new())
            .unwrap()
            .header()
            .kid(),
        Some(new_kid.as_str())
    );
    let again = f.manager.load::<SessionMap>(&reissued).await.unwrap();
    assert_eq!(again.id(), sid);
    assert_eq!(again.created(), created);
    assert_eq!(again.absolute_deadline(), deadline);
    assert_eq!(again.key_state(), Some(KeyState::Primary));
}

#[tokio::test]
async fn renew_gives_a_new_id_and_revokes_the_old_one() {
    let f = fixture();
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    let old = session.id().to_owned();
    session.renew();
    assert_ne!(session.id(), old);
    let renewed = token_of(f.manager.save(&mut session).await.unwrap());
    assert_eq!(f.reject_kind(&token).await, RejectionKind::Revoked);
    let now = f.manager.load::<SessionMap>(&renewed).await.unwrap();
    assert_eq!(now.subject(), Some("alice"));
}

#[tokio::test]
async fn destroy_revokes_and_removes() {
    let f = fixture();
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.destroy();
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    assert_eq!(f.reject_kind(&token).await, RejectionKind::Revoked);
}

#[tokio::test]
async fn a_new_session_without_data_is_never_sealed() {
    let f = fixture();
    let mut session = f.manager.start(SessionMap::default());
    assert!(session.is_new());
    assert_eq!(
        session.id(),
        "",
        "no id is drawn for a session never sealed"
    );
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Unchanged
    );
    assert_eq!(session.id(), "");
    session.insert("k", 1).unwrap();
    assert!(matches!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Seal {
            reason: ResealReason::New,
            ..
        }
    ));
    assert_eq!(session.id().len(), 22, "sealing draws a 128-bit id");
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
    total_cents: u64,
}

#[tokio::test]
async fn typed_sessions_round_trip_and_reseal_only_when_changed() {
    let f = fixture();
    let mut session = f.manager.start(Cart::default());
    session.data_mut().items.push("book".into());
    session.data_mut().total_cents = 1999;
    let token = token_of(f.manager.save(&mut session).await.unwrap());

    let mut loaded = f.manager.load::<Cart>(&token).await.unwrap();
    assert_eq!(loaded.data().items, vec!["book".to_owned()]);
    assert_eq!(
        f.manager.save(&mut loaded).await.unwrap(),
        SaveOutcome::Unchanged
    );
    loaded.data_mut().total_cents = 0;
    let SaveOutcome::Seal {
        token: changed,
        reason,
        ..
    } = f.manager.save(&mut loaded).await.unwrap()
    else {
        panic!("expected a reseal");
    };
    assert_eq!(reason, ResealReason::Changed);
    assert_eq!(
        f.manager
            .load::<Cart>(&changed)
            .await
            .unwrap()
            .data()
            .total_cents,
        0
    );

    // The same token read as another type is refused, not misread.
    let err = f.manager.load::<Vec<u8>>(&token).await.unwrap_err();
    assert_eq!(err.kind(), RejectionKind::Malformed);
    // Debug shows ids, never data.
    assert!(!format!("{loaded:?}").contains("book"));
}

#[tokio::test]
async fn tokens_for_another_purpose_are_refused() {
    let f = fixture();
    let token = f.login("alice").await;
    let store = Arc::new(MemoryStore::new().with_clock(f.clock.clone()));
    let other = SessionManager::new(
        f.keyring.clone(),
        store,
        SessionConfig::new().with_purpose("password-reset"),
    )
    .unwrap()
    .with_clock(f.clock.clone());
    assert_eq!(
        other.load::<SessionMap>(&token).await.unwrap_err().kind(),
        RejectionKind::WrongPurpose
    );

    // Sealed by the same keyring, but not as a session.
    let raw = f.keyring.seal(br#"{"sub":"alice"}"#).unwrap();
    assert_eq!(f.reject_kind(&raw).await, RejectionKind::WrongPurpose);
    // The session typ, but a future format version.
    let exp = T0 + 600;
    let future = format!(
        r#"{{"v":3,"aud":"session","sid":"x","created_ms":{},"iat":{T0},"exp":{exp},"abs_exp":{exp},"data":{{}}}}"#,
        T0 * 1000
    );
    let token = f
        .keyring
        .seal_with(future.as_bytes(), &SealOptions::new().with_typ(SESSION_TYP))
        .unwrap();
    let rejection = f.manager.load::<SessionMap>(&token).await.unwrap_err();
    assert_eq!(rejection.kind(), RejectionKind::WrongPurpose);
    assert!(rejection.reason().contains("version"));
}

#[tokio::test]
async fn tokens_sealed_in_the_future_are_not_yet_valid() {
    let f = fixture();
    f.advance(3600);
    let token = f.login("alice").await;
    f.clock.set_unix(T0 + 3600 - 60); // within leeway
    assert!(f.manager.load::<SessionMap>(&token).await.is_ok());
    f.clock.set_unix(T0 + 3600 - 61);
    assert_eq!(f.reject_kind(&token).await, RejectionKind::NotYetValid);
}

#[tokio::test]
async fn shortening_the_timeouts_applies_to_live_sessions() {
    let f = fixture();
    let token = f.login("alice").await;
    let store = Arc::new(MemoryStore::new().with_clock(f.clock.clone()));
    let strict = SessionManager::new(
        f.keyring.clone(),
        store,
        SessionConfig::new()
            .with_idle_timeout(Duration::from_secs(5 * MIN))
            .with_absolute_timeout(Duration::from_secs(3600)),
    )
    .unwrap()
    .with_clock(f.clock.clone());
    f.advance(6 * MIN + 1);
    assert_eq!(
        strict.load::<SessionMap>(&token).await.unwrap_err().kind(),
        RejectionKind::ExpiredIdle
    );
    assert!(f.manager.load::<SessionMap>(&token).await.is_ok());
}

#[test]
fn invalid_configurations_are_refused() {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let store = Arc::new(MemoryStore::new());
    let bad = [
        SessionConfig::new().with_idle_timeout(Duration::ZERO),
        SessionConfig::new().with_idle_timeout(Duration::from_secs(13 * 3600)),
        SessionConfig::new().with_leeway(Duration::from_secs(30 * 60)),
        SessionConfig::new().with_purpose(""),
    ];
    for config in bad {
        assert!(
            SessionManager::new(keyring.clone(), store.clone(), config.clone()).is_err(),
            "{config:?}"
        );
    }
}

#[tokio::test]
async fn session_map_helpers_track_changes() {
    let f = fixture();
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    assert_eq!(session.get::<u32>("count").unwrap(), None);
    assert!(session.remove("missing").is_none());
    assert!(!session.is_changed());
    session.insert("count", 2u32).unwrap();
    assert!(session.is_changed());
    let token = token_of(f.manager.save(&mut session).await.unwrap());
    let session = f.manager.load::<SessionMap>(&token).await.unwrap();
    assert_eq!(session.get::<u32>("count").unwrap(), Some(2));
    assert!(session.get::<String>("count").is_err());
}

#[tokio::test]
async fn renew_then_destroy_revokes_the_id_the_client_holds() {
    let f = fixture();
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.renew();
    session.destroy();
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    assert_eq!(f.reject_kind(&token).await, RejectionKind::Revoked);
}

#[tokio::test]
async fn destroy_is_final_for_the_request() {
    let f = fixture();
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.destroy();
    // Neither fails, and neither revives the session.
    session.renew();
    session.login("mallory");
    assert!(session.is_destroyed());
    assert_eq!(session.subject(), Some("alice"));
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    assert_eq!(f.reject_kind(&token).await, RejectionKind::Revoked);
}

#[tokio::test]
async fn renew_keeps_the_lifetime_and_login_starts_it_over() {
    let f = fixture();
    let token = f.login("alice").await;
    let first = f.manager.load::<SessionMap>(&token).await.unwrap();
    let (created, deadline) = (first.created(), first.absolute_deadline());
    f.advance(20 * MIN);
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.renew();
    let renewed_token = token_of(f.manager.save(&mut session).await.unwrap());
    let renewed = f.manager.load::<SessionMap>(&renewed_token).await.unwrap();
    assert_ne!(renewed.id(), first.id());
    assert_eq!(
        (renewed.created(), renewed.absolute_deadline()),
        (created, deadline)
    );

    f.advance(60);
    let mut session = f.manager.load::<SessionMap>(&renewed_token).await.unwrap();
    session.login("alice");
    let fresh = token_of(f.manager.save(&mut session).await.unwrap());
    let fresh = f.manager.load::<SessionMap>(&fresh).await.unwrap();
    assert_eq!(unix_seconds(fresh.created()), T0 + 21 * MIN);
    assert_eq!(
        unix_seconds(fresh.absolute_deadline()),
        T0 + 21 * MIN + 12 * 3600
    );
    assert_eq!(f.reject_kind(&renewed_token).await, RejectionKind::Revoked);
}

#[tokio::test]
async fn revocations_outlive_the_deadline_by_the_leeway() {
    let hour = Duration::from_secs(3600);
    let f = fixture_with(
        SessionConfig::new()
            .with_idle_timeout(hour)
            .with_absolute_timeout(hour),
    );
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.destroy();
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Remove
    );
    // Past the deadline but within the leeway the token passes the time
    // checks: the revocation must still hold.
    f.clock.set_unix(T0 + 3600 + 30);
    assert_eq!(f.reject_kind(&token).await, RejectionKind::Revoked);
    f.clock.set_unix(T0 + 3600 + 61);
    assert_eq!(f.reject_kind(&token).await, RejectionKind::ExpiredAbsolute);
}

#[tokio::test]
async fn a_session_too_large_to_seal_revokes_nothing() {
    let f = fixture_with(SessionConfig::new().with_max_token_len(1024));
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.renew();
    session.insert("note", "x".repeat(2000)).unwrap();
    let err = f.manager.save(&mut session).await.unwrap_err();
    assert!(
        matches!(
            err,
            jwe_session::Error::Seal(jwe_session::SealError::TooLarge { max: 1024, .. })
        ),
        "{err}"
    );
    // The renewal did not happen, so the client's token is still good.
    assert!(f.manager.load::<SessionMap>(&token).await.is_ok());
}

#[test]
fn the_service_binds_the_cookie_name_unless_a_purpose_is_set() {
    use jwe_session::SessionLayer;
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let build = |config: SessionConfig| {
        SessionLayer::builder(keyring.clone(), Arc::new(MemoryStore::new()))
            .config(config)
            .build()
            .unwrap()
    };
    let default = build(SessionConfig::new());
    assert_eq!(default.manager().config().purpose(), "__Host-session");
    // Set explicitly, even to the default's value: kept.
    let explicit = build(SessionConfig::new().with_purpose("session"));
    assert_eq!(explicit.manager().config().purpose(), "session");
    let other = build(SessionConfig::new().with_purpose("admin"));
    assert_eq!(other.manager().config().purpose(), "admin");
}

/// Issue 11: `login` and `renew` cannot fail; the new id is drawn when the
/// session is sealed (0.1 drew it at once, and returned a `Result` for the
/// random number generator and for a destroyed session).
#[tokio::test]
async fn login_and_renew_draw_the_new_id_when_sealing() {
    let f = fixture();
    let token = f.login("alice").await;
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    let before = session.id().to_owned();
    assert!(!before.is_empty());
    session.renew();
    assert_eq!(session.id(), "", "no id until sealed");
    session.login("bob");
    assert_eq!(session.id(), "");
    let renewed = token_of(f.manager.save(&mut session).await.unwrap());
    let after = session.id().to_owned();
    assert_eq!(after.len(), before.len());
    assert_ne!(after, before);
    let reopened = f.manager.load::<SessionMap>(&renewed).await.unwrap();
    assert_eq!(
        (reopened.id(), reopened.subject()),
        (after.as_str(), Some("bob"))
    );
    // The id the client held is revoked.
    assert_eq!(f.reject_kind(&token).await, RejectionKind::Revoked);
}

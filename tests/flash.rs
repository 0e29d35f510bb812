//! Issue 11: flash messages, set on one request and read (and removed) on
//! the next, for the session manager and both integrations.

mod support;

use jwe_session::session::{Flash, FlashLevel, ResealReason, SaveOutcome, SessionMap};
use support::manager::{fixture, token_of};

#[tokio::test]
async fn a_flash_is_read_once_on_a_later_request() {
    let f = fixture();
    let mut session = f.manager.start(SessionMap::default());
    session.flash(FlashLevel::Success, "Saved.");
    session.flash(FlashLevel::Warning, "Quota at 90 %.");
    assert!(
        session.take_flashes().is_empty(),
        "not on the request that set them"
    );
    let outcome = f.manager.save(&mut session).await.unwrap();
    let SaveOutcome::Seal { token, reason, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        reason,
        ResealReason::New,
        "an anonymous flash starts a session"
    );

    // A request that does not read them leaves them in place.
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    assert_eq!(session.peek_flashes().len(), 2);
    assert_eq!(
        f.manager.save(&mut session).await.unwrap(),
        SaveOutcome::Unchanged
    );

    // Read once, oldest first...
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    let shown = session.take_flashes();
    assert_eq!(
        shown,
        vec![
            Flash {
                level: FlashLevel::Success,
                text: "Saved.".into()
            },
            Flash {
                level: FlashLevel::Warning,
                text: "Quota at 90 %.".into()
            },
        ]
    );
    assert!(session.take_flashes().is_empty());
    let outcome = f.manager.save(&mut session).await.unwrap();
    let SaveOutcome::Seal { token, reason, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(reason, ResealReason::Flash);
    // ...and gone from the next token.
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    assert!(session.take_flashes().is_empty());
}

/// Unread messages survive a re-issue for another reason (rotation), and
/// new ones queue after them.
#[tokio::test]
async fn unread_flashes_survive_a_reissue() {
    let f = fixture();
    let mut session = f.manager.start(SessionMap::default());
    session.login("alice");
    session.flash(FlashLevel::Info, "one");
    let token = token_of(f.manager.save(&mut session).await.unwrap());
    f.keyring.rotate().unwrap();
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    session.flash(FlashLevel::Info, "two");
    let token = token_of(f.manager.save(&mut session).await.unwrap());
    let mut session = f.manager.load::<SessionMap>(&token).await.unwrap();
    let texts: Vec<String> = session.take_flashes().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["one", "two"]);
}

/// A flash that makes the session too large is not lost: the save fails,
/// and the message is still queued for the next try.
#[tokio::test]
async fn a_flash_that_does_not_fit_is_kept_for_the_next_save() {
    let f =
        support::manager::fixture_with(jwe_session::SessionConfig::new().with_max_token_len(1_000));
    let mut session = f.manager.start(SessionMap::default());
    session.flash(FlashLevel::Error, "x".repeat(2_000));
    assert!(f.manager.save(&mut session).await.is_err());
    assert!(f.manager.save(&mut session).await.is_err(), "still queued");
}

#[cfg(all(feature = "axum", feature = "actix"))]
mod frameworks {
    use std::sync::Arc;

    use jwe_session::revocation::MemoryStore;
    use jwe_session::session::{FlashLevel, SessionMap};
    use jwe_session::{Key, KeyAlgorithm, Keyring};
    use jwe_session::{SessionHandle, SessionLayer};

    fn service() -> SessionLayer {
        let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
        SessionLayer::builder(keyring, Arc::new(MemoryStore::new()))
            .build()
            .unwrap()
    }

    async fn save(session: SessionHandle<SessionMap>) -> &'static str {
        session.flash(FlashLevel::Success, "Saved.");
        "redirect"
    }

    async fn page(session: SessionHandle<SessionMap>) -> String {
        let texts: Vec<String> = session.take_flashes().into_iter().map(|m| m.text).collect();
        texts.join("|")
    }

    /// The cookie a response set, as a `Cookie` header value; `current`
    /// when it set none.
    fn next_cookie(set_cookies: &[String], current: &str) -> String {
        set_cookies
            .iter()
            .find(|c| c.starts_with("__Host-session="))
            .and_then(|c| c.split(';').next())
            .map_or_else(|| current.to_owned(), str::to_owned)
    }

    #[tokio::test]
    async fn axum_flash_shown_once() {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/save", get(save))
            .route("/page", get(page))
            .layer(service());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let mut cookie = String::new();
        let mut bodies = Vec::new();
        for path in ["/save", "/page", "/page"] {
            let response = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let set: Vec<String> = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            cookie = next_cookie(&set, &cookie);
            bodies.push(response.text().await.unwrap());
        }
        assert_eq!(bodies, ["redirect", "Saved.", ""]);
    }

    #[actix_web::test]
    async fn actix_flash_shown_once() {
        use actix_web::{test, web, App};
        let app = test::init_service(
            App::new()
                .wrap(service())
                .route("/save", web::get().to(save))
                .route("/page", web::get().to(page)),
        )
        .await;
        let mut cookie = String::new();
        let mut bodies = Vec::new();
        for path in ["/save", "/page", "/page"] {
            let mut request = test::TestRequest::get().uri(path);
            if !cookie.is_empty() {
                request = request.insert_header(("cookie", cookie.clone()));
            }
            let response = test::call_service(&app, request.to_request()).await;
            let set: Vec<String> = response
                .headers()
                .get_all("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            cookie = next_cookie(&set, &cookie);
            bodies.push(String::from_utf8(test::read_body(response).await.to_vec()).unwrap());
        }
        assert_eq!(bodies, ["redirect", "Saved.", ""]);
    }
}

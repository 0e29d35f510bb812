//! Issue 11: a session too large to seal. The handler can know before it
//! answers (`sealed_len`); when it does not check, the layer answers the
//! configured status (413 by default) with a JSON body and a clear log
//! line, and the client keeps its previous session. Today's behaviour was
//! an empty 500 after a handler that answered 200.

#![cfg(all(feature = "axum", feature = "actix"))]

use std::sync::Arc;

use jwe_session::revocation::MemoryStore;
use jwe_session::{Error, Key, KeyAlgorithm, Keyring, SealError, SessionMap};
use jwe_session::{SessionHandle, SessionLayer};

fn service(status: Option<u16>) -> SessionLayer {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let mut builder = SessionLayer::builder(keyring, Arc::new(MemoryStore::new()));
    if let Some(status) = status {
        builder = builder.too_large_status(status);
    }
    builder.build().unwrap()
}

/// Stores a note of `n` bytes, without checking.
async fn note(path: String, session: &SessionHandle<SessionMap>) -> Result<String, Error> {
    let n: usize = path.parse().unwrap_or(0);
    session.insert("note", "é".repeat(n / 2))?;
    Ok("stored".to_owned())
}

/// Stores a note of `n` bytes after checking that it fits.
async fn checked(path: String, session: &SessionHandle<SessionMap>) -> (u16, String) {
    let n: usize = path.parse().unwrap_or(0);
    let before = session.get::<String>("note").unwrap();
    session.insert("note", "é".repeat(n / 2)).unwrap();
    match session.sealed_len() {
        Ok(len) => (200, format!("fits in {len} bytes")),
        Err(Error::Seal(SealError::TooLarge { len, max })) => {
            // Put back what was there: the handler answers itself.
            match before {
                Some(before) => session.insert("note", before).unwrap(),
                None => drop(session.remove("note")),
            }
            (422, format!("{len} > {max}"))
        }
        Err(other) => panic!("{other}"),
    }
}

fn session_cookie(set_cookies: &[String]) -> Option<String> {
    set_cookies
        .iter()
        .filter(|c| c.starts_with("__Host-session"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .reduce(|a, b| format!("{a}; {b}"))
}

#[test]
fn the_status_must_be_an_error_status() {
    for bad in [200, 302, 399, 600] {
        let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
        let built = SessionLayer::builder(keyring, Arc::new(MemoryStore::new()))
            .too_large_status(bad)
            .build();
        assert!(built.is_err(), "{bad}");
    }
}

mod axum_side {
    use super::*;
    use axum::extract::Path;
    use axum::routing::get;
    use axum::Router;

    async fn note_route(
        Path(n): Path<String>,
        session: SessionHandle<SessionMap>,
    ) -> Result<String, Error> {
        note(n, &session).await
    }

    async fn checked_route(
        Path(n): Path<String>,
        session: SessionHandle<SessionMap>,
    ) -> (axum::http::StatusCode, String) {
        let (status, body) = checked(n, &session).await;
        (axum::http::StatusCode::from_u16(status).unwrap(), body)
    }

    async fn read(session: SessionHandle<SessionMap>) -> String {
        session
            .get::<String>("note")
            .unwrap()
            .map_or(0, |n| n.len())
            .to_string()
    }

    async fn serve(status: Option<u16>) -> String {
        let app = Router::new()
            .route("/note/{n}", get(note_route))
            .route("/checked/{n}", get(checked_route))
            .route("/read", get(read))
            .layer(service(status));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    async fn get_with(base: &str, path: &str, cookie: &str) -> (u16, Option<String>, String) {
        let response = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        (status, session_cookie(&set), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn unchecked_too_large_answers_413_and_keeps_the_old_session() {
        let base = serve(None).await;
        let (status, cookie, _) = get_with(&base, "/note/1000", "").await;
        assert_eq!(status, 200);
        let cookie = cookie.expect("a session cookie");
        let (status, set, body) = get_with(&base, "/note/30000", &cookie).await;
        assert_eq!(
            (status, body.as_str()),
            (413, r#"{"error":"session too large"}"#)
        );
        assert_eq!(set, None, "the client keeps its cookie");
        assert_eq!(get_with(&base, "/read", &cookie).await.2, "1000");
    }

    #[tokio::test]
    async fn the_status_is_configurable() {
        let base = serve(Some(507)).await;
        assert_eq!(get_with(&base, "/note/30000", "").await.0, 507);
    }

    #[tokio::test]
    async fn a_handler_can_check_before_it_answers() {
        let base = serve(None).await;
        let (status, cookie, body) = get_with(&base, "/checked/1000", "").await;
        assert_eq!(status, 200, "{body}");
        let cookie = cookie.unwrap();
        let (status, _, body) = get_with(&base, "/checked/30000", &cookie).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(get_with(&base, "/read", &cookie).await.2, "1000");
    }
}

mod actix_side {
    use super::*;
    use actix_web::{test, web, App, HttpResponse};

    async fn note_route(
        n: web::Path<String>,
        session: SessionHandle<SessionMap>,
    ) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::Ok().body(note(n.into_inner(), &session).await?))
    }

    async fn read(session: SessionHandle<SessionMap>) -> String {
        session
            .get::<String>("note")
            .unwrap()
            .map_or(0, |n| n.len())
            .to_string()
    }

    #[actix_web::test]
    async fn unchecked_too_large_answers_413_and_keeps_the_old_session() {
        let app = test::init_service(
            App::new()
                .wrap(service(None))
                .route("/note/{n}", web::get().to(note_route))
                .route("/read", web::get().to(read)),
        )
        .await;
        let call = |path: &'static str, cookie: Option<String>| {
            let app = &app;
            async move {
                let mut request = test::TestRequest::get().uri(path);
                if let Some(cookie) = cookie {
                    request = request.insert_header(("cookie", cookie));
                }
                let response = test::call_service(app, request.to_request()).await;
                let status = response.status().as_u16();
                let set: Vec<String> = response
                    .headers()
                    .get_all("set-cookie")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect();
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                (status, session_cookie(&set), body)
            }
        };
        let (status, cookie, _) = call("/note/1000", None).await;
        assert_eq!(status, 200);
        let cookie = cookie.unwrap();
        let (status, set, body) = call("/note/30000", Some(cookie.clone())).await;
        assert_eq!(
            (status, body.as_str()),
            (413, r#"{"error":"session too large"}"#)
        );
        assert_eq!(set, None);
        assert_eq!(call("/read", Some(cookie)).await.2, "1000");
    }
}

//! Issue 11: a required-session extractor (401, or a redirect to a
//! configured login path) and `Option<…>` extraction for pages that work
//! either way, identical in both frameworks.

#![cfg(all(feature = "axum", feature = "actix"))]

use std::sync::Arc;

use jwe_session::revocation::MemoryStore;
use jwe_session::{Key, KeyAlgorithm, Keyring, SessionMap};
use jwe_session::{RequireSession, SessionHandle, SessionLayer};

fn service(login_path: Option<&str>) -> SessionLayer {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let mut builder = SessionLayer::builder(keyring, Arc::new(MemoryStore::new()));
    if let Some(path) = login_path {
        builder = builder.login_path(path);
    }
    builder.build().unwrap()
}

/// The `name=value` of the session cookie a response set.
fn session_cookie(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// Who the page greets, through each extractor.
async fn private_page(session: RequireSession<SessionMap>) -> String {
    format!("private for {}", session.subject().unwrap_or_default())
}

async fn either_page(session: Option<RequireSession<SessionMap>>) -> String {
    match session {
        Some(session) => format!("hello {}", session.subject().unwrap_or_default()),
        None => "hello stranger".to_owned(),
    }
}

#[test]
fn a_login_path_must_stay_on_the_site() {
    for bad in [
        "login",
        "//evil.example",
        "/\\evil.example",
        "/log in",
        "https://evil.example/",
    ] {
        let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
        let built = SessionLayer::builder(keyring, Arc::new(MemoryStore::new()))
            .login_path(bad)
            .build();
        assert!(built.is_err(), "{bad}");
    }
}

mod axum_side {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    async fn login(session: SessionHandle<SessionMap>) -> &'static str {
        session.login("alice");
        "ok"
    }

    async fn visit(session: SessionHandle<SessionMap>) -> &'static str {
        session.insert("visited", true).unwrap();
        "ok"
    }

    async fn serve(login_path: Option<&str>) -> String {
        let app = Router::new()
            .route("/login", get(login))
            .route("/visit", get(visit))
            .route("/private", get(private_page))
            .route("/either", get(either_page))
            .layer(service(login_path));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    async fn get_with(
        base: &str,
        path: &str,
        cookie: Option<&str>,
    ) -> (u16, Option<String>, String) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = client.get(format!("{base}{path}"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    async fn cookie_from(base: &str, path: &str) -> String {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        session_cookie(&set)
    }

    #[tokio::test]
    async fn required_and_optional_sessions() {
        let base = serve(None).await;
        let (status, _, body) = get_with(&base, "/private", None).await;
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"error":"unauthorized"}"#)
        );
        assert_eq!(get_with(&base, "/either", None).await.2, "hello stranger");
        // An anonymous session is not signed in.
        let anonymous = cookie_from(&base, "/visit").await;
        assert_eq!(get_with(&base, "/private", Some(&anonymous)).await.0, 401);
        assert_eq!(
            get_with(&base, "/either", Some(&anonymous)).await.2,
            "hello stranger"
        );
        let alice = cookie_from(&base, "/login").await;
        assert_eq!(
            get_with(&base, "/private", Some(&alice)).await,
            (200, None, "private for alice".to_owned())
        );
        assert_eq!(
            get_with(&base, "/either", Some(&alice)).await.2,
            "hello alice"
        );
    }

    #[tokio::test]
    async fn a_login_path_redirects_instead() {
        let base = serve(Some("/login?next=private")).await;
        let (status, location, _) = get_with(&base, "/private", None).await;
        assert_eq!(status, 303);
        assert_eq!(location.as_deref(), Some("/login?next=private"));
        assert_eq!(get_with(&base, "/either", None).await.0, 200);
    }
}

mod actix_side {
    use super::*;
    use actix_web::{test, web, App};

    async fn login(session: SessionHandle<SessionMap>) -> &'static str {
        session.login("alice");
        "ok"
    }

    async fn visit(session: SessionHandle<SessionMap>) -> &'static str {
        session.insert("visited", true).unwrap();
        "ok"
    }

    macro_rules! app {
        ($login_path:expr) => {
            test::init_service(
                App::new()
                    .wrap(service($login_path))
                    .route("/login", web::get().to(login))
                    .route("/visit", web::get().to(visit))
                    .route("/private", web::get().to(private_page))
                    .route("/either", web::get().to(either_page)),
            )
            .await
        };
    }

    fn request(path: &str, cookie: Option<&str>) -> test::TestRequest {
        let mut request = test::TestRequest::get().uri(path);
        if let Some(cookie) = cookie {
            request = request.insert_header(("cookie", cookie));
        }
        request
    }

    #[actix_web::test]
    async fn required_and_optional_sessions() {
        let app = app!(None);
        let call = |path: &'static str, cookie: Option<String>| {
            let app = &app;
            async move {
                let response =
                    test::call_service(app, request(path, cookie.as_deref()).to_request()).await;
                let status = response.status().as_u16();
                let set: Vec<String> = response
                    .headers()
                    .get_all("set-cookie")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect();
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                (status, set, body)
            }
        };
        let (status, _, body) = call("/private", None).await;
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"error":"unauthorized"}"#)
        );
        assert_eq!(call("/either", None).await.2, "hello stranger");
        let anonymous = session_cookie(&call("/visit", None).await.1);
        assert_eq!(call("/private", Some(anonymous.clone())).await.0, 401);
        assert_eq!(call("/either", Some(anonymous)).await.2, "hello stranger");
        let alice = session_cookie(&call("/login", None).await.1);
        let (status, _, body) = call("/private", Some(alice.clone())).await;
        assert_eq!((status, body.as_str()), (200, "private for alice"));
        assert_eq!(call("/either", Some(alice)).await.2, "hello alice");
    }

    #[actix_web::test]
    async fn a_login_path_redirects_instead() {
        let app = app!(Some("/login?next=private"));
        let response = test::call_service(&app, request("/private", None).to_request()).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(
            response.headers().get("location").unwrap(),
            "/login?next=private"
        );
        let response = test::call_service(&app, request("/either", None).to_request()).await;
        assert_eq!(response.status().as_u16(), 200);
    }
}

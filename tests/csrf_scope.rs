//! Issue 11: the session layer checks CSRF only on requests that carry the
//! session cookie (a CORS-enabled API under the same router got 403 on
//! every cross-site POST), and `CsrfGuard` checks routes that want it
//! whatever cookies a request carries. Both frameworks.

#![cfg(all(feature = "axum", feature = "actix"))]

use std::sync::Arc;

use jwe_session::csrf::CsrfConfig;
use jwe_session::csrf::CsrfGuard;
use jwe_session::revocation::MemoryStore;
use jwe_session::{Key, KeyAlgorithm, Keyring, SessionMap};
use jwe_session::{SessionHandle, SessionLayer};

fn service() -> SessionLayer {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    SessionLayer::builder(keyring, Arc::new(MemoryStore::new()))
        .build()
        .unwrap()
}

async fn login(session: SessionHandle<SessionMap>) -> &'static str {
    session.login("alice");
    "in"
}

async fn api() -> &'static str {
    "api ran"
}

const EVIL: &str = "http://evil.example";

fn session_cookie(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

mod axum_side {
    use super::*;
    use axum::routing::{get, post};
    use axum::Router;

    async fn serve(app: Router) -> (String, reqwest::Client) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, reqwest::Client::new())
    }

    #[tokio::test]
    async fn the_session_layer_checks_only_requests_with_its_cookie() {
        let app = Router::new()
            .route("/login", get(login))
            .route("/api", post(api))
            .layer(service());
        let (base, client) = serve(app).await;
        let post_from = |origin: &'static str, cookie: Option<String>| {
            let mut request = client.post(format!("{base}/api")).header("origin", origin);
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(
            post_from(EVIL, None).await,
            200,
            "no session cookie: not checked"
        );
        let response = client.get(format!("{base}/login")).send().await.unwrap();
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let cookie = session_cookie(&set);
        assert_eq!(post_from(EVIL, Some(cookie.clone())).await, 403);
        // A malformed session cookie (a lone chunk) is checked too.
        assert_eq!(
            post_from(EVIL, Some("__Host-session.1=abc".to_owned())).await,
            403
        );
    }

    #[tokio::test]
    async fn the_guard_checks_every_unsafe_request() {
        let app = Router::new()
            .route("/transfer", post(api).get(api))
            .layer(CsrfGuard::new(CsrfConfig::same_host()));
        let (base, client) = serve(app).await;
        let status = |request: reqwest::RequestBuilder| async move {
            request.send().await.unwrap().status().as_u16()
        };
        let url = format!("{base}/transfer");
        assert_eq!(status(client.post(&url).header("origin", EVIL)).await, 403);
        assert_eq!(
            status(client.post(&url).header("sec-fetch-site", "cross-site")).await,
            403
        );
        assert_eq!(
            status(client.post(&url).header("origin", base.as_str())).await,
            200
        );
        assert_eq!(status(client.get(&url).header("origin", EVIL)).await, 200);
    }
}

mod actix_side {
    use super::*;
    use actix_web::{test, web, App};

    #[actix_web::test]
    async fn the_session_layer_checks_only_requests_with_its_cookie() {
        let app = test::init_service(
            App::new()
                .wrap(service())
                .route("/login", web::get().to(login))
                .route("/api", web::post().to(api)),
        )
        .await;
        let post_from = |cookie: Option<String>| {
            let mut request = test::TestRequest::post()
                .uri("/api")
                .insert_header(("host", "app.example"))
                .insert_header(("origin", EVIL));
            if let Some(cookie) = cookie {
                request = request.insert_header(("cookie", cookie));
            }
            request.to_request()
        };
        let response = test::call_service(&app, post_from(None)).await;
        assert_eq!(
            response.status().as_u16(),
            200,
            "no session cookie: not checked"
        );
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let cookie = session_cookie(&set);
        let response = test::call_service(&app, post_from(Some(cookie))).await;
        assert_eq!(response.status().as_u16(), 403);
    }

    /// The session layer takes the site's scheme from its cookie: with the
    /// default `Secure` cookie the site is https, and its own host's http
    /// origin is refused; with a plain-http cookie (a development site) it
    /// is accepted.
    #[actix_web::test]
    async fn the_site_scheme_comes_from_the_cookie() {
        use jwe_session::cookie::CookieConfig;
        for (secure, expected) in [(true, 403), (false, 200)] {
            let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
            let cookies = if secure {
                CookieConfig::new()
            } else {
                CookieConfig::new().with_name("session").with_secure(false)
            };
            let name = cookies.name().to_owned();
            let service: SessionLayer =
                SessionLayer::builder(keyring, Arc::new(MemoryStore::new()))
                    .cookies(cookies)
                    .build()
                    .unwrap();
            let app = test::init_service(
                App::new()
                    .wrap(service)
                    .route("/login", web::get().to(login))
                    .route("/api", web::post().to(api)),
            )
            .await;
            let response =
                test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
            let cookie = response
                .headers()
                .get_all("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned())
                .find(|c| c.starts_with(&format!("{name}=")))
                .and_then(|c| c.split(';').next().map(str::to_owned))
                .unwrap();
            let request = test::TestRequest::post()
                .uri("/api")
                .insert_header(("host", "app.example"))
                .insert_header(("origin", "http://app.example"))
                .insert_header(("cookie", cookie))
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(
                response.status().as_u16(),
                expected,
                "secure cookie: {secure}"
            );
        }
    }

    #[actix_web::test]
    async fn the_guard_checks_every_unsafe_request() {
        let app = test::init_service(
            App::new()
                .wrap(CsrfGuard::new(CsrfConfig::same_host()))
                .route("/transfer", web::post().to(api))
                .route("/transfer", web::get().to(api)),
        )
        .await;
        let call = |method: &str, origin: &str| {
            let request = match method {
                "POST" => test::TestRequest::post(),
                _ => test::TestRequest::get(),
            };
            request
                .uri("/transfer")
                .insert_header(("host", "app.example"))
                .insert_header(("origin", origin.to_owned()))
                .to_request()
        };
        for (method, origin, expected) in [
            ("POST", EVIL, 403),
            ("POST", "https://app.example", 200),
            // The site is https (the default): its http origin is foreign.
            ("POST", "http://app.example", 403),
            ("GET", EVIL, 200),
        ] {
            let response = test::call_service(&app, call(method, origin)).await;
            assert_eq!(response.status().as_u16(), expected, "{method} {origin}");
        }
    }
}

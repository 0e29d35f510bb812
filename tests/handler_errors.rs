//! Issue 11: `?` in handlers. A library error returned by a handler answers
//! with a status that fits it and a body with no internals, in both
//! frameworks; and a handler that extracts a session without the layer gets
//! a 500 whose body says nothing of the library.

#![cfg(all(feature = "axum", feature = "actix"))]

use std::sync::Arc;

use jwe_session::revocation::MemoryStore;
use jwe_session::SessionHandle;
use jwe_session::{Error, Key, KeyAlgorithm, Keyring, SealError, SessionMap, StoreError};

/// What each route's handler returns.
fn failure(which: &str) -> Error {
    match which {
        "store" => StoreError::Full(7).into(),
        "too-large" => SealError::TooLarge {
            len: 99_999,
            max: 15_928,
        }
        .into(),
        "data" => {
            let mut map = SessionMap::default();
            map.insert("pin", "hunter2").unwrap();
            map.get::<u64>("pin").unwrap_err()
        }
        _ => Error::Config("a configuration refused at run time".into()),
    }
}

const CASES: [(&str, u16, &str); 4] = [
    ("store", 503, r#"{"error":"service unavailable"}"#),
    ("too-large", 413, r#"{"error":"session too large"}"#),
    ("data", 500, r#"{"error":"internal server error"}"#),
    ("config", 500, r#"{"error":"internal server error"}"#),
];

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()))
}

fn assert_no_internals(body: &str) {
    for internal in [
        "hunter2",
        "jwe-session",
        "SessionLayer",
        "SessionMiddleware",
        "15928",
        "7 live",
    ] {
        assert!(!body.contains(internal), "{internal} in the body: {body}");
    }
}

mod axum_side {
    use super::*;
    use axum::extract::Path;
    use axum::routing::get;
    use axum::Router;
    use jwe_session::SessionLayer;

    async fn fails(
        Path(which): Path<String>,
        session: SessionHandle<SessionMap>,
    ) -> Result<String, Error> {
        session.insert("seen", true)?;
        Err(failure(&which))
    }

    async fn store_fails(_session: SessionHandle<SessionMap>) -> Result<String, StoreError> {
        Err(StoreError::Full(7))
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn errors_returned_with_question_mark_answer_a_fitting_status() {
        let layer = SessionLayer::new(keyring(), Arc::new(MemoryStore::new())).unwrap();
        let app = Router::new()
            .route("/fail/{which}", get(fails))
            .route("/store", get(store_fails))
            .layer(layer);
        let base = serve(app).await;
        let client = reqwest::Client::new();
        for (which, status, body) in CASES {
            let response = client
                .get(format!("{base}/fail/{which}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), status, "{which}");
            assert_eq!(
                response.headers()["content-type"],
                "application/json",
                "{which}"
            );
            let text = response.text().await.unwrap();
            assert_eq!(text, body, "{which}");
            assert_no_internals(&text);
        }
        let response = client.get(format!("{base}/store")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 503);
    }

    #[tokio::test]
    async fn a_missing_layer_answers_500_without_internals() {
        let app = Router::new().route("/fail/{which}", get(fails));
        let base = serve(app).await;
        let response = reqwest::get(format!("{base}/fail/x")).await.unwrap();
        assert_eq!(response.status().as_u16(), 500);
        assert_no_internals(&response.text().await.unwrap());
    }
}

mod actix_side {
    use super::*;
    use actix_web::{test, web, App, HttpResponse};
    use jwe_session::SessionLayer;

    async fn fails(
        which: web::Path<String>,
        session: SessionHandle<SessionMap>,
    ) -> Result<HttpResponse, Error> {
        session.insert("seen", true)?;
        Err(failure(&which))
    }

    async fn store_fails(_session: SessionHandle<SessionMap>) -> Result<HttpResponse, StoreError> {
        Err(StoreError::Full(7))
    }

    #[actix_web::test]
    async fn errors_returned_with_question_mark_answer_a_fitting_status() {
        let middleware = SessionLayer::new(keyring(), Arc::new(MemoryStore::new())).unwrap();
        let app = test::init_service(
            App::new()
                .wrap(middleware)
                .route("/fail/{which}", web::get().to(fails))
                .route("/store", web::get().to(store_fails)),
        )
        .await;
        for (which, status, body) in CASES {
            let request = test::TestRequest::get()
                .uri(&format!("/fail/{which}"))
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(response.status().as_u16(), status, "{which}");
            assert_eq!(
                response.headers().get("content-type").unwrap(),
                "application/json",
                "{which}"
            );
            let text = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
            assert_eq!(text, body, "{which}");
            assert_no_internals(&text);
        }
        let request = test::TestRequest::get().uri("/store").to_request();
        assert_eq!(
            test::call_service(&app, request).await.status().as_u16(),
            503
        );
    }

    #[actix_web::test]
    async fn a_missing_middleware_answers_500_without_internals() {
        let app = test::init_service(App::new().route("/fail/{which}", web::get().to(fails))).await;
        let request = test::TestRequest::get().uri("/fail/x").to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), 500);
        let text = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        assert_no_internals(&text);
    }
}

//! The jwe-session demo on axum: `cargo run --example axum --features axum`.
//!
//! Listens on `127.0.0.1:$PORT` (default 3000). Keys come from
//! `SESSION_KEYS_FILE` (a JWK Set file, reloaded within 2 s of a change)
//! or `SESSION_KEYS` (a JWK Set, or `kid:base64url-secret,...`); without
//! either a key is generated and sessions do not survive a restart.
//! `REDIS_URL` keeps revocations in Redis instead of memory. With
//! `TLS_CERT` and `TLS_KEY` (PEM files) it serves HTTPS, and with the
//! `dbsc` feature binds sessions to the browser's device
//! (`DBSC_BOUND_SECS`: the bound cookie's lifetime). The `/admin`
//! routes are for the demo only: a real application never exposes key
//! management over HTTP.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jwe_session::revocation::RevocationStore;
use jwe_session::{Clock, Error, Keyring, SessionMap};
use jwe_session::{SessionHandle, SessionLayer};
use serde::Deserialize;
use serde_json::{json, Value};

#[path = "demo/common.rs"]
mod common;

/// The application's shared state.
#[derive(Clone)]
struct Demo {
    keyring: Arc<Keyring>,
}

/// The demo's router, with the session layer on every route.
pub fn router(
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    clock: Option<Arc<dyn Clock>>,
) -> Result<Router, Error> {
    let mut builder = SessionLayer::builder(keyring.clone(), store);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let builder = common::with_dbsc(builder).map_err(|e| Error::Config(e.to_string()))?;
    let layer: SessionLayer = builder.build()?;
    let router = Router::new();
    #[cfg(feature = "metrics")]
    let router = {
        common::metrics();
        router.route("/metrics", get(metrics))
    };
    Ok(router
        .route("/", get(index))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/counter", post(counter))
        .route("/note", post(note))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .route("/admin/rotate", post(rotate))
        .route("/admin/keys", get(keys))
        .with_state(Demo { keyring })
        .layer(DefaultBodyLimit::max(common::MAX_FORM_BYTES))
        .layer(layer))
}

type Session = SessionHandle<SessionMap>;

fn reply(result: common::Reply) -> Response {
    let status = StatusCode::from_u16(result.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match result.body {
        common::Body::Json(value) => (status, Json(value)).into_response(),
        common::Body::Html(html) => (status, Html(html)).into_response(),
        common::Body::SeeOther(location) => Redirect::to(location).into_response(),
    }
}

/// The request's `Accept` header says it comes from a browser's form.
fn html(headers: &HeaderMap) -> bool {
    common::wants_html(headers.get(ACCEPT).and_then(|v| v.to_str().ok()))
}

async fn index(State(demo): State<Demo>, session: Session) -> Response {
    reply(common::index(&session, &demo.keyring))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Response {
    reply(common::login(&session, &form.username))
}

async fn me(session: Session) -> Response {
    reply(common::me(&session))
}

async fn counter(headers: HeaderMap, session: Session) -> Response {
    reply(common::counter(&session, html(&headers)))
}

#[derive(Deserialize)]
struct NoteForm {
    text: String,
}

async fn note(
    headers: HeaderMap,
    session: Session,
    form: Result<Form<NoteForm>, FormRejection>,
) -> Response {
    match form {
        Ok(Form(form)) => reply(common::note(&session, &form.text, html(&headers))),
        Err(rejection) => reply(common::bad_form(
            rejection.status() == StatusCode::PAYLOAD_TOO_LARGE,
        )),
    }
}

async fn logout(session: Session) -> Response {
    reply(common::logout(&session))
}

async fn logout_everywhere(session: Session) -> Response {
    reply(common::logout_everywhere(&session).await)
}

async fn rotate(State(demo): State<Demo>, headers: HeaderMap, session: Session) -> Response {
    reply(common::rotate(&session, &demo.keyring, html(&headers)))
}

/// `GET /metrics` (feature `metrics`).
#[cfg(feature = "metrics")]
async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            common::METRICS_CONTENT_TYPE,
        )],
        common::metrics_text(),
    )
}

async fn keys(State(demo): State<Demo>) -> Json<Value> {
    Json(json!(common::keys(&demo.keyring)))
}

/// Serves `app` over TLS until Ctrl-C: one task per connection, HTTP/1.1.
#[allow(dead_code)] // tests include this file for `router` only
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    acceptor: openssl::ssl::SslAcceptor,
) -> Result<(), Box<dyn std::error::Error>> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let acceptor = Arc::new(acceptor);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let acceptor = Arc::clone(&acceptor);
        let app = app.clone();
        tokio::spawn(async move {
            let ssl = match openssl::ssl::Ssl::new(acceptor.context()) {
                Ok(ssl) => ssl,
                Err(error) => return tracing::warn!(%error, "TLS setup failed"),
            };
            let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else {
                return;
            };
            if let Err(error) = std::pin::Pin::new(&mut stream).accept().await {
                return tracing::debug!(%error, %peer, "TLS handshake failed");
            }
            let service = hyper_util::service::TowerToHyperService::new(app);
            let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}

#[allow(dead_code)] // tests include this file for `router` only
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let setup = common::setup().await?;
    // Reloads the key file (SESSION_KEYS_FILE) while the server runs.
    let _key_watch = setup.key_watch;
    let app = router(setup.keyring, setup.store, None)?;
    let listener = tokio::net::TcpListener::bind(setup.address).await?;
    if let Some(tls) = &setup.tls {
        tracing::info!("listening on https://{}", listener.local_addr()?);
        return serve_tls(listener, app, common::tls_acceptor(tls)?.build()).await;
    }
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

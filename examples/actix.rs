//! The jwe-session demo on actix-web: `cargo run --example actix --features actix`.
//!
//! The same routes, port, environment variables and responses as the axum
//! demo (`examples/axum.rs`), so one script drives either. Listens on
//! `127.0.0.1:$PORT` (default 3000); keys from `SESSION_KEYS_FILE` (a JWK
//! Set file, reloaded within 2 s of a change) or `SESSION_KEYS` (generated
//! when neither is set: sessions then do not survive a restart);
//! `REDIS_URL` keeps revocations in Redis; `TLS_CERT` and `TLS_KEY` serve
//! HTTPS, with device-bound sessions under the `dbsc` feature. The `/admin`
//! routes are for the demo only.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jwe_session::revocation::RevocationStore;
use jwe_session::{Clock, Keyring, SessionMap};
use jwe_session::{SessionHandle, SessionLayer};
use serde::Deserialize;

#[path = "demo/common.rs"]
mod common;

type Session = SessionHandle<SessionMap>;

/// Starts the demo on `listener`; await (or spawn) the returned server.
pub fn serve(
    listener: TcpListener,
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    clock: Option<Arc<dyn Clock>>,
    workers: usize,
) -> Result<actix_web::dev::Server, Box<dyn std::error::Error>> {
    serve_with(listener, keyring, store, clock, workers, None)
}

/// [`serve`], over TLS when `tls` is given.
pub fn serve_with(
    listener: TcpListener,
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    clock: Option<Arc<dyn Clock>>,
    workers: usize,
    tls: Option<openssl::ssl::SslAcceptorBuilder>,
) -> Result<actix_web::dev::Server, Box<dyn std::error::Error>> {
    let mut builder = SessionLayer::builder(keyring.clone(), store);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let sessions = common::with_dbsc(builder)?.build()?;
    let keyring = web::Data::from(keyring);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(keyring.clone())
            .app_data(form_config())
            .wrap(sessions.clone())
            .configure(routes)
    })
    .workers(workers)
    .disable_signals();
    let server = match tls {
        Some(tls) => server.listen_openssl(listener, tls)?,
        None => server.listen(listener)?,
    }
    .run();
    Ok(server)
}

/// The same form limit as the axum demo, and the same JSON answers when a
/// form is too large or malformed.
fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(common::MAX_FORM_BYTES)
        .error_handler(|error, _request| {
            let too_large = matches!(
                error,
                actix_web::error::UrlencodedError::Overflow { .. }
                    | actix_web::error::UrlencodedError::UnknownLength
            );
            actix_web::error::InternalError::from_response(
                error,
                reply(common::bad_form(too_large)),
            )
            .into()
        })
}

/// The demo's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/login", web::post().to(login))
        .route("/me", web::get().to(me))
        .route("/counter", web::post().to(counter))
        .route("/note", web::post().to(note))
        .route("/logout", web::post().to(logout))
        .route("/logout-everywhere", web::post().to(logout_everywhere))
        .route("/admin/rotate", web::post().to(rotate))
        .route("/admin/keys", web::get().to(keys));
    #[cfg(feature = "metrics")]
    {
        common::metrics();
        config.route("/metrics", web::get().to(metrics));
    }
}

/// `GET /metrics` (feature `metrics`).
#[cfg(feature = "metrics")]
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(common::METRICS_CONTENT_TYPE)
        .body(common::metrics_text())
}

fn reply(result: common::Reply) -> HttpResponse {
    let status = StatusCode::from_u16(result.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match result.body {
        common::Body::Json(value) => HttpResponse::build(status).json(value),
        common::Body::Html(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        common::Body::SeeOther(location) => HttpResponse::SeeOther()
            .insert_header(("location", location))
            .finish(),
    }
}

/// The request's `Accept` header says it comes from a browser's form.
fn html(request: &HttpRequest) -> bool {
    common::wants_html(
        request
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )
}

async fn index(session: Session, keyring: web::Data<Keyring>) -> HttpResponse {
    reply(common::index(&session, &keyring))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
}

async fn login(session: Session, form: web::Form<LoginForm>) -> HttpResponse {
    reply(common::login(&session, &form.username))
}

async fn me(session: Session) -> HttpResponse {
    reply(common::me(&session))
}

async fn counter(request: HttpRequest, session: Session) -> HttpResponse {
    reply(common::counter(&session, html(&request)))
}

#[derive(Deserialize)]
struct NoteForm {
    text: String,
}

async fn note(request: HttpRequest, session: Session, form: web::Form<NoteForm>) -> HttpResponse {
    reply(common::note(&session, &form.text, html(&request)))
}

async fn logout(session: Session) -> HttpResponse {
    reply(common::logout(&session))
}

async fn logout_everywhere(session: Session) -> HttpResponse {
    reply(common::logout_everywhere(&session).await)
}

async fn rotate(
    request: HttpRequest,
    session: Session,
    keyring: web::Data<Keyring>,
) -> HttpResponse {
    reply(common::rotate(&session, &keyring, html(&request)))
}

async fn keys(keyring: web::Data<Keyring>) -> HttpResponse {
    HttpResponse::Ok().json(common::keys(&keyring))
}

#[allow(dead_code)] // tests include this file for `serve` only
#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let setup = common::setup().await?;
    // Reloads the key file (SESSION_KEYS_FILE) while the server runs.
    let _key_watch = setup.key_watch;
    let listener = TcpListener::bind(setup.address)?;
    let tls = match &setup.tls {
        Some(tls) => Some(common::tls_acceptor(tls)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{}", listener.local_addr()?);
    let server = serve_with(listener, setup.keyring, setup.store, None, 2, tls)?;
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        let _ = actix_web::rt::signal::ctrl_c().await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}

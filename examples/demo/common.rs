//! What the axum and actix demos share: configuration from the environment,
//! and the routes' behaviour, independent of the framework.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use jwe_session::revocation::{MemoryStore, RedisStore, RevocationStore};
use jwe_session::FlashLevel;
use jwe_session::SessionHandle;
use jwe_session::{Key, KeyAlgorithm, KeyFileWatch, Keyring, SessionMap};
use serde_json::{json, Value};

/// The longest note, in bytes of UTF-8: what the session cookies can hold
/// with room to spare (four cookies of 4,000 bytes carry a token of 15,928
/// bytes; a 9,000-byte note of plain text seals to about 12,500). A note
/// whose JSON escaping makes it larger still (control characters) is
/// refused by the sealed-size check.
pub const MAX_NOTE_BYTES: usize = 9_000;

/// The largest form body either demo accepts, in bytes: the same in both,
/// so the same request gets the same answer (a note of 9,000 bytes that
/// must all be percent-encoded takes 27,000).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The answer to a form body over [`MAX_FORM_BYTES`], or one that does not
/// parse.
pub fn bad_form(too_large: bool) -> Reply {
    if too_large {
        json(413, json!({"error": "request body too large"}))
    } else {
        json(400, json!({"error": "malformed form"}))
    }
}

/// What the demo needs to start.
pub struct Setup {
    /// `TLS_CERT` and `TLS_KEY` (PEM files): serve HTTPS, with device-bound
    /// sessions on (feature `dbsc`).
    pub tls: Option<Tls>,
    pub keyring: Arc<Keyring>,
    /// With `SESSION_KEYS_FILE`: keeps `keyring` in sync with the file.
    /// Keep it as long as the server runs; dropping it stops the reloads.
    pub key_watch: Option<KeyFileWatch>,
    pub store: Arc<dyn RevocationStore>,
    pub address: SocketAddr,
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Reads `PORT`, `SESSION_KEYS_FILE` or `SESSION_KEYS`, and
/// `REDIS_CLUSTER_URLS` (comma-separated node URLs) or `REDIS_URL`.
pub async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let (keyring, key_watch) = load_keys()?;
    let store: Arc<dyn RevocationStore> = match (
        std::env::var("REDIS_CLUSTER_URLS").ok(),
        std::env::var("REDIS_URL").ok(),
    ) {
        (Some(_), Some(_)) => {
            return Err("set REDIS_CLUSTER_URLS (a Redis Cluster) or REDIS_URL (one Redis server), not both".into());
        }
        (Some(urls), None) => {
            let nodes: Vec<&str> = urls
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .collect();
            if nodes.is_empty() {
                return Err("REDIS_CLUSTER_URLS is empty: give comma-separated node URLs, redis://host:port/".into());
            }
            tracing::info!(nodes = nodes.len(), "revocations in a Redis Cluster");
            Arc::new(RedisStore::new_cluster(nodes)?)
        }
        (None, Some(url)) => {
            tracing::info!("revocations in Redis");
            Arc::new(RedisStore::new(url)?)
        }
        (None, None) => {
            tracing::info!(
                "revocations in memory (set REDIS_URL for Redis, REDIS_CLUSTER_URLS for a Redis Cluster)"
            );
            Arc::new(MemoryStore::new())
        }
    };
    Ok(Setup {
        tls: tls()?,
        keyring: Arc::new(keyring),
        key_watch,
        store,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

/// The certificate chain and private key to serve HTTPS with, PEM files.
pub struct Tls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// `TLS_CERT` and `TLS_KEY`, both or neither.
fn tls() -> Result<Option<Tls>, Box<dyn std::error::Error>> {
    match (std::env::var_os("TLS_CERT"), std::env::var_os("TLS_KEY")) {
        (Some(cert), Some(key)) => Ok(Some(Tls {
            cert: cert.into(),
            key: key.into(),
        })),
        (None, None) => Ok(None),
        _ => Err("set both TLS_CERT and TLS_KEY (PEM files) to serve HTTPS, or neither".into()),
    }
}

/// Whether the demo serves HTTPS (`TLS_CERT` and `TLS_KEY` set); read by
/// the routers, which turn device-bound sessions on with it.
pub fn https() -> bool {
    std::env::var_os("TLS_CERT").is_some() && std::env::var_os("TLS_KEY").is_some()
}

/// Device-bound sessions for the layer when serving HTTPS (browsers offer
/// DBSC over HTTPS only). `DBSC_BOUND_SECS` sets the bound cookie's
/// lifetime (default 600).
pub fn with_dbsc(
    builder: jwe_session::SessionLayerBuilder,
) -> Result<jwe_session::SessionLayerBuilder, Box<dyn std::error::Error>> {
    if !https() {
        return Ok(builder);
    }
    let secs: u64 = match std::env::var("DBSC_BOUND_SECS") {
        Ok(secs) => secs
            .parse()
            .map_err(|_| format!("DBSC_BOUND_SECS={secs:?} is not a number of seconds"))?,
        Err(_) => 600,
    };
    tracing::info!(bound_cookie_secs = secs, "device-bound sessions (DBSC) on");
    Ok(builder.dbsc(
        jwe_session::DbscConfig::new().bound_cookie_lifetime(std::time::Duration::from_secs(secs)),
    ))
}

/// An OpenSSL acceptor for the certificate and key of `tls`.
pub fn tls_acceptor(
    tls: &Tls,
) -> Result<openssl::ssl::SslAcceptorBuilder, Box<dyn std::error::Error>> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder.set_certificate_chain_file(&tls.cert)?;
    builder.set_private_key_file(&tls.key, SslFiletype::PEM)?;
    builder.check_private_key()?;
    Ok(builder)
}

/// The keys: from the JWK Set file `SESSION_KEYS_FILE`, watched (reloaded
/// within 2 s of a change), when it is set (`SESSION_KEYS` is then
/// ignored); else from `SESSION_KEYS`; else a generated key.
fn load_keys() -> Result<(Keyring, Option<KeyFileWatch>), Box<dyn std::error::Error>> {
    if let Some(path) = std::env::var_os("SESSION_KEYS_FILE") {
        if std::env::var_os("SESSION_KEYS").is_some() {
            tracing::warn!("SESSION_KEYS_FILE is set: SESSION_KEYS is ignored");
        }
        let (keyring, watch) = Keyring::watch_file(&path)?;
        tracing::info!(
            path = %std::path::Path::new(&path).display(),
            primary = %keyring.primary_kid(),
            "keys from SESSION_KEYS_FILE, reloaded when it changes"
        );
        return Ok((keyring, Some(watch)));
    }
    let keyring = match std::env::var_os("SESSION_KEYS") {
        Some(_) => Keyring::from_env("SESSION_KEYS")?,
        None => {
            tracing::warn!(
                "neither SESSION_KEYS_FILE nor SESSION_KEYS is set: generated a key; sessions will not survive a restart"
            );
            Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?)
        }
    };
    Ok((keyring, None))
}

/// A framework-independent response.
pub struct Reply {
    pub status: u16,
    pub body: Body,
}

/// A response body.
pub enum Body {
    Json(Value),
    Html(String),
    SeeOther(&'static str),
}

fn json(status: u16, value: Value) -> Reply {
    Reply {
        status,
        body: Body::Json(value),
    }
}

fn see_other(location: &'static str) -> Reply {
    Reply {
        status: 303,
        body: Body::SeeOther(location),
    }
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Whether a request comes from a browser's form (its `Accept` header
/// asks for HTML): such requests get a redirect to the page with a flash
/// message; scripts get the JSON they always got.
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("text/html"))
}

/// For a browser, `reply` becomes a flash message on the page and a
/// redirect to it; for a script it stays as it is.
fn for_browser(
    session: &SessionHandle<SessionMap>,
    html: bool,
    reply: Reply,
    done: impl FnOnce(&Value) -> String,
) -> Reply {
    if !html {
        return reply;
    }
    if let Body::Json(value) = &reply.body {
        if reply.status == 200 {
            session.flash(FlashLevel::Success, done(value));
        } else {
            let error = value["error"].as_str().unwrap_or("the request failed");
            session.flash(FlashLevel::Error, error.to_owned());
        }
    }
    see_other("/")
}

fn time(at: std::time::SystemTime) -> String {
    unix_seconds(at).to_string()
}

/// Seconds since the Unix epoch (0 before it).
fn unix_seconds(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `GET /`: the session as the library sees it, the forms that act on it,
/// and the keyring. Everything shown is escaped.
pub fn index(session: &SessionHandle<SessionMap>, keyring: &Keyring) -> Reply {
    let flashes: String = session
        .take_flashes()
        .into_iter()
        .map(|message| {
            format!(
                "<p class=\"flash {}\">{}</p>\n",
                escape(&format!("{:?}", message.level).to_lowercase()),
                escape(&message.text)
            )
        })
        .collect();
    let signed_in = session.subject();
    let account = match &signed_in {
        Some(name) => format!(
            "<p>Signed in as {}</p>\n\
             <form method=\"post\" action=\"/logout\"><button>Log out</button></form>\n\
             <form method=\"post\" action=\"/logout-everywhere\"><button>Log out everywhere</button></form>",
            escape(name)
        ),
        None => "<form method=\"post\" action=\"/login\">\n\
                 <label>Username <input name=\"username\" required maxlength=\"64\"></label>\n\
                 <button>Log in</button></form>"
            .to_owned(),
    };
    let details = (|| {
        let s = session;
        let reseal = s.reissue_reason();
        if s.is_new() && reseal.is_none() {
            return "<p>No session yet: this response sets no cookie.</p>".to_owned();
        }
        let reissue = match reseal {
            Some(reason) => format!("yes ({reason})"),
            None => "no".to_owned(),
        };
        let data = s.with_data(SessionMap::clone);
        let rows = [
            ("session id", s.id()),
            (
                "subject",
                s.subject().unwrap_or_else(|| "(not signed in)".to_owned()),
            ),
            (
                "sealed under key",
                s.kid().unwrap_or_else(|| "-".to_owned()),
            ),
            (
                "key state",
                s.key_state()
                    .map_or("-".to_owned(), |state| state.to_string()),
            ),
            ("created (Unix s)", time(s.created())),
            ("idle deadline (Unix s)", time(s.expires())),
            ("absolute deadline (Unix s)", time(s.absolute_deadline())),
            ("stale", s.is_stale().to_string()),
            (
                "bound to this device (DBSC)",
                if s.is_bound() {
                    "yes: a copy of the session cookie does not work elsewhere".to_owned()
                } else {
                    "no".to_owned()
                },
            ),
            ("this response re-issues the cookie", reissue),
            (
                "counter",
                data.get::<Value>("count")
                    .ok()
                    .flatten()
                    .map_or("0".to_owned(), |count| count.to_string()),
            ),
            (
                "note (bytes)",
                data.get::<String>("note")
                    .ok()
                    .flatten()
                    .map_or(0, |note| note.len())
                    .to_string(),
            ),
        ];
        let rows: String = rows
            .iter()
            .map(|(name, value)| {
                format!(
                    "<tr><th>{}</th><td>{}</td></tr>\n",
                    escape(name),
                    escape(value)
                )
            })
            .collect();
        format!("<table class=\"session\">\n{rows}</table>")
    })();
    let keys: String = keys(keyring)
        .iter()
        .map(|key| {
            let field = |name: &str| escape(key[name].as_str().unwrap_or("-"));
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                field("kid"),
                field("alg"),
                field("state")
            )
        })
        .collect();
    let body = format!(
        "{flashes}{account}\n<h2>The session</h2>\n{details}\n\
         <form method=\"post\" action=\"/counter\"><button>Count</button></form>\n\
         <form method=\"post\" action=\"/note\"><label>Note <textarea name=\"text\" maxlength=\"{MAX_NOTE_BYTES}\"></textarea></label> <button>Save the note</button></form>\n\
         <h2>The keyring</h2>\n<table class=\"keys\">\n<tr><th>kid</th><th>alg</th><th>state</th></tr>\n{keys}</table>\n\
         <form method=\"post\" action=\"/admin/rotate\"><button>Rotate the keys</button></form>"
    );
    Reply {
        status: 200,
        body: Body::Html(format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>jwe-session demo</title></head>\n<body>\n<h1>jwe-session demo</h1>\n{body}\n</body></html>\n"
        )),
    }
}

/// `POST /login`
pub fn login(session: &SessionHandle<SessionMap>, username: &str) -> Reply {
    let username = username.trim();
    if username.is_empty()
        || username.chars().count() > 64
        || username.chars().any(char::is_control)
    {
        return json(
            400,
            json!({"error": "username must be 1 to 64 printable characters"}),
        );
    }
    // A fresh authentication: a new session id (the old one revoked) and a
    // new lifetime.
    session.login(username);
    see_other("/")
}

/// `GET /me`
pub fn me(session: &SessionHandle<SessionMap>) -> Reply {
    if session.is_new() {
        return json(401, json!({"error": "no session"}));
    }
    let s = session;
    json(
        200,
        json!({
            "sid": s.id(),
            "sub": s.subject(),
            "data": s.with_data(SessionMap::clone),
            "kid": s.kid(),
            "created": unix_seconds(s.created()),
            "expires": unix_seconds(s.expires()),
            "stale": s.is_stale(),
            "bound": s.is_bound(),
        }),
    )
}

/// `POST /counter`; a browser's form gets the page back with a message.
pub fn counter(session: &SessionHandle<SessionMap>, html: bool) -> Reply {
    let reply = count(session);
    for_browser(session, html, reply, |value| {
        format!("Counted: {}", value["count"])
    })
}

fn count(session: &SessionHandle<SessionMap>) -> Reply {
    let count = session
        .get::<u64>("count")
        .ok()
        .flatten()
        .unwrap_or(0)
        .saturating_add(1);
    match session.insert("count", count) {
        Ok(()) => json(200, json!({ "count": count })),
        Err(_) => json(500, json!({"error": "could not store the counter"})),
    }
}

/// `POST /note`; a browser's form gets the page back with a message.
pub fn note(session: &SessionHandle<SessionMap>, text: &str, html: bool) -> Reply {
    let reply = store_note(session, text);
    for_browser(session, html, reply, |value| {
        format!("Note saved ({} bytes)", value["length"])
    })
}

fn store_note(session: &SessionHandle<SessionMap>, text: &str) -> Reply {
    let length = text.len();
    if length > MAX_NOTE_BYTES {
        return json(413, json!({"error": "note longer than 9000 bytes"}));
    }
    let before = session.remove("note");
    if session.insert("note", text).is_err() {
        return json(500, json!({"error": "could not store the note"}));
    }
    // Checked before answering: a note the cookies cannot carry is refused
    // here, and the session keeps the note it had.
    if session.sealed_len().is_err() {
        session.remove("note");
        if let Some(before) = before {
            let _ = session.insert("note", before);
        }
        return json(
            413,
            json!({"error": "note too large for the session cookie"}),
        );
    }
    json(200, json!({ "length": length }))
}

/// `POST /logout`
pub fn logout(session: &SessionHandle<SessionMap>) -> Reply {
    session.destroy();
    see_other("/")
}

/// `POST /logout-everywhere`
pub async fn logout_everywhere(session: &SessionHandle<SessionMap>) -> Reply {
    match session.revoke_subject().await {
        Ok(()) => see_other("/"),
        Err(error) => {
            tracing::error!(error = %error, "could not revoke the subject's sessions");
            json(503, json!({"error": "revocation store unavailable"}))
        }
    }
}

/// `POST /admin/rotate` (demo only); a browser's form gets the page back
/// with a message.
pub fn rotate(session: &SessionHandle<SessionMap>, keyring: &Keyring, html: bool) -> Reply {
    let reply = rotate_keys(keyring);
    for_browser(session, html, reply, |value| {
        format!(
            "Rotated: the new primary key is {}",
            value["primary"].as_str().unwrap_or("?")
        )
    })
}

fn rotate_keys(keyring: &Keyring) -> Reply {
    match keyring.rotate() {
        Ok(kid) => json(200, json!({ "primary": kid })),
        Err(error) => {
            tracing::error!(error = %error, "rotation failed");
            json(500, json!({"error": "rotation failed"}))
        }
    }
}

/// `GET /admin/keys` (demo only): no secrets.
pub fn keys(keyring: &Keyring) -> Vec<Value> {
    keyring
        .keys()
        .iter()
        .map(|key| {
            json!({
                "kid": key.kid(),
                "alg": key.alg().to_string(),
                "state": key.state().to_string(),
                "seals": key.seal_count(),
                "opens": key.open_count(),
                "last_used": key.last_used().map(unix_seconds),
                "promote_at": key.promote_at().map(unix_seconds),
            })
        })
        .collect()
}

/// The Prometheus recorder for the library's metrics (feature `metrics`),
/// installed once per process, before the first request.
#[cfg(feature = "metrics")]
pub fn metrics() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|error| tracing::error!(error = %error, "no metrics recorder"))
                .ok()
        })
        .as_ref()
}

/// `GET /metrics` (feature `metrics`): the Prometheus text format.
#[cfg(feature = "metrics")]
pub fn metrics_text() -> String {
    metrics().map(|handle| handle.render()).unwrap_or_default()
}

/// The content type of the Prometheus text format.
#[cfg(feature = "metrics")]
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

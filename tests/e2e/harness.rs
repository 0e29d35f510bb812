//! Servers under test, how they are started, and a small HTTP client.
//!
//! A [`Launcher`] pairs one framework's [`Launch`] function with one
//! revocation store (memory, or a real `redis-server`). Each scenario asks
//! it for a fresh [`Server`]: a demo app listening on 127.0.0.1 with its own
//! keyring, manual clock and store, which the test can reach into.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwe_session::clock::unix_seconds;
use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::{Clock, Key, KeyAlgorithm, Keyring, ManualClock};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

use super::jar::{Jar, SetCookie, SESSION};
use crate::support::RedisServer;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts one framework's demo app: build its routes over `config.keyring`,
/// `config.store` and `config.clock` (passed to the app as its clock), serve
/// them on `127.0.0.1:0` in the background, and return
/// `config.serving(address, stop)`.
pub type Launch = fn(LaunchConfig) -> BoxFuture<'static, Server>;

/// What a [`Launch`] function gets.
pub struct LaunchConfig {
    /// The keyring (rotated by the tests and by `POST /admin/rotate`).
    pub keyring: Arc<Keyring>,
    /// The revocation store.
    pub store: Arc<dyn RevocationStore>,
    /// The clock the app must read time from.
    pub clock: Arc<ManualClock>,
    store_control: Option<Arc<dyn StoreControl>>,
}

impl LaunchConfig {
    /// The clock as the library's trait object, for `router(..., Some(clock))`.
    pub fn dyn_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The running server: the app listens on `address`; `stop` is called
    /// when the test is done with it (abort the task, stop the server).
    pub fn serving(self, address: SocketAddr, stop: impl FnOnce() + Send + 'static) -> Server {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("HTTP client");
        Server {
            base: format!("http://{address}"),
            address,
            keyring: self.keyring,
            store: self.store,
            clock: self.clock,
            http,
            store_control: self.store_control,
            stop: Mutex::new(Some(Box::new(stop))),
        }
    }
}

/// A revocation store the tests can take down and bring back.
pub trait StoreControl: Send + Sync {
    /// Stops the store's server (as a crash would).
    fn stop(&self);
    /// Starts it again and waits until it accepts connections.
    fn restart(&self);
}

impl StoreControl for Mutex<RedisServer> {
    fn stop(&self) {
        self.lock().unwrap_or_else(|e| e.into_inner()).stop();
    }

    fn restart(&self) {
        self.lock().unwrap_or_else(|e| e.into_inner()).restart();
    }
}

enum Backend {
    Memory,
    Redis(Arc<Mutex<RedisServer>>),
}

/// One framework × one revocation store.
pub struct Launcher {
    name: String,
    launch: Launch,
    backend: Backend,
}

static NEXT_PREFIX: AtomicU64 = AtomicU64::new(0);

/// A start time close to now, so nothing looks decades old or new.
fn now_ish() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

impl Launcher {
    /// `launch` with the in-memory store.
    pub fn memory(framework: &str, launch: Launch) -> Launcher {
        Launcher {
            name: format!("{framework}+memory"),
            launch,
            backend: Backend::Memory,
        }
    }

    /// `launch` with Redis: a `redis-server` of its own on a free port.
    /// `None` (with a message) when redis-server is missing outside CI.
    pub fn redis(framework: &str, launch: Launch) -> Option<Launcher> {
        let server = RedisServer::start()?;
        Some(Launcher {
            name: format!("{framework}+redis"),
            launch,
            backend: Backend::Redis(Arc::new(Mutex::new(server))),
        })
    }

    /// The framework and store, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh app: new keyring, new clock at about now, new store (for
    /// Redis, a new key prefix).
    pub async fn start(&self) -> Server {
        let clock = Arc::new(ManualClock::at_unix(now_ish()));
        let keyring = Arc::new(Keyring::with_clock(
            Key::generate(KeyAlgorithm::A256Kw).expect("generate a key"),
            clock.clone(),
        ));
        let (store, store_control): (Arc<dyn RevocationStore>, Option<Arc<dyn StoreControl>>) =
            match &self.backend {
                Backend::Memory => (Arc::new(MemoryStore::new().with_clock(clock.clone())), None),
                Backend::Redis(server) => {
                    let url = server.lock().unwrap_or_else(|e| e.into_inner()).url();
                    let prefix = format!(
                        "e2e:{}:{}:",
                        std::process::id(),
                        NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
                    );
                    let store = jwe_session::revocation::RedisStore::builder(url)
                        .clock(clock.clone())
                        .key_prefix(prefix)
                        .timeout(Duration::from_millis(500))
                        .build()
                        .expect("redis store");
                    (
                        Arc::new(store),
                        Some(server.clone() as Arc<dyn StoreControl>),
                    )
                }
            };
        (self.launch)(LaunchConfig {
            keyring,
            store,
            clock,
            store_control,
        })
        .await
    }
}

/// A demo app listening on 127.0.0.1, and handles into it.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The listening address.
    pub address: SocketAddr,
    /// The app's keyring.
    pub keyring: Arc<Keyring>,
    /// The app's revocation store.
    pub store: Arc<dyn RevocationStore>,
    /// The app's clock.
    pub clock: Arc<ManualClock>,
    http: reqwest::Client,
    store_control: Option<Arc<dyn StoreControl>>,
    #[allow(clippy::type_complexity)]
    stop: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(stop) = stop {
            stop();
        }
    }
}

impl Server {
    /// The app's time, in Unix seconds.
    pub fn now(&self) -> u64 {
        unix_seconds(self.clock.now())
    }

    /// Moves the app's clock forward.
    pub fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    /// A request to build.
    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        Request {
            server: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET path`.
    pub async fn get(&self, jar: &mut Jar, path: &str) -> Response {
        self.request(Method::GET, path).send(jar).await
    }

    /// `POST path` with an empty form.
    pub async fn post(&self, jar: &mut Jar, path: &str) -> Response {
        self.request(Method::POST, path).form(&[]).send(jar).await
    }

    /// `POST path` with a form.
    pub async fn post_form(&self, jar: &mut Jar, path: &str, fields: &[(&str, &str)]) -> Response {
        self.request(Method::POST, path)
            .form(fields)
            .send(jar)
            .await
    }

    /// `GET /me`.
    pub async fn me(&self, jar: &mut Jar) -> Response {
        self.get(jar, "/me").await
    }

    /// Logs `username` in from a new browser; checks the 303.
    pub async fn login(&self, username: &str) -> Jar {
        let mut jar = Jar::new();
        self.login_in(&mut jar, username).await;
        jar
    }

    /// Logs `username` in with `jar`; checks the 303 and the new cookie.
    pub async fn login_in(&self, jar: &mut Jar, username: &str) -> Response {
        let response = self
            .post_form(jar, "/login", &[("username", username)])
            .await;
        assert_eq!(response.status, 303, "login: {response:?}");
        assert_eq!(
            response.header("location"),
            Some("/"),
            "login: {response:?}"
        );
        assert!(
            response.sets(SESSION),
            "login set no session cookie: {response:?}"
        );
        response
    }

    /// Takes the revocation store down (Redis only).
    pub async fn stop_store(&self) {
        let control = self.store_control().clone();
        tokio::task::spawn_blocking(move || control.stop())
            .await
            .expect("stop the store");
    }

    /// Brings the revocation store back (Redis only).
    pub async fn restart_store(&self) {
        let control = self.store_control().clone();
        tokio::task::spawn_blocking(move || control.restart())
            .await
            .expect("restart the store");
    }

    /// Whether the store can be taken down.
    pub fn has_store_control(&self) -> bool {
        self.store_control.is_some()
    }

    fn store_control(&self) -> &Arc<dyn StoreControl> {
        self.store_control
            .as_ref()
            .expect("this server's revocation store cannot be stopped (use a Redis launcher)")
    }
}

/// A request being built.
pub struct Request<'a> {
    server: &'a Server,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Request<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.body = Some(body);
        self
    }

    /// Sends the request with `jar`'s cookies, and takes the response's
    /// cookies into `jar`.
    pub async fn send(self, jar: &mut Jar) -> Response {
        let url = format!("{}{}", self.server.base, self.path);
        let mut builder = self.server.http.request(self.method.clone(), &url);
        if let Some(cookies) = jar.cookie_header() {
            builder = builder.header("cookie", cookies);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = self.body {
            builder = builder
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {url}: {e}", self.method));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{} {url}: body: {e}", self.method));
        let raw: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
            .collect();
        jar.absorb(&raw);
        Response {
            request: format!("{} {}", self.method, self.path),
            status,
            set_cookies: raw.iter().map(|line| SetCookie::parse(line)).collect(),
            headers,
            body,
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A response, read whole.
pub struct Response {
    /// `METHOD /path`, for messages.
    pub request: String,
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: String,
    /// Every `Set-Cookie` line, parsed.
    pub set_cookies: Vec<SetCookie>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(300).collect();
        f.debug_struct("Response")
            .field("request", &self.request)
            .field("status", &self.status)
            .field(
                "set_cookies",
                &self
                    .set_cookies
                    .iter()
                    .map(|c| {
                        let raw: String = c.raw.chars().take(120).collect();
                        raw
                    })
                    .collect::<Vec<_>>(),
            )
            .field("body", &body)
            .finish()
    }
}

impl Response {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.request, self))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Set-Cookie` line for cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&SetCookie> {
        self.set_cookies.iter().find(|c| c.name == name)
    }

    /// Whether the response stores a value in cookie `name`.
    pub fn sets(&self, name: &str) -> bool {
        self.set_cookie(name).is_some_and(|c| !c.is_removal())
    }

    /// Whether the response deletes cookie `name`.
    pub fn removes(&self, name: &str) -> bool {
        self.set_cookie(name).is_some_and(SetCookie::is_removal)
    }

    /// Whether the response removes the session cookie (plain or any chunk).
    pub fn removes_session(&self) -> bool {
        self.set_cookies
            .iter()
            .any(|c| super::is_session_cookie(&c.name) && c.is_removal())
    }
}

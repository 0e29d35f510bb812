//! The two shop examples (`examples/shop_axum.rs`, `examples/shop_actix.rs`)
//! over real HTTP: one scenario, asserted request by request (statuses,
//! redirects, bodies), against each; then the two transcripts compared.
//!
//! `cargo test --features axum,actix --test shop_examples`
#![cfg(all(feature = "axum", feature = "actix"))]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use jwe_session::{Key, KeyAlgorithm, Keyring};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};

#[allow(dead_code)] // only `app` is used; the file's `main` is not
#[path = "../examples/shop_axum.rs"]
mod shop_axum;

#[allow(dead_code)] // only `serve` is used; the file's `main` is not
#[path = "../examples/shop_actix.rs"]
mod shop_actix;

const COOKIE_NAME: &str = "__Host-session";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

fn keyring() -> Keyring {
    Keyring::new(Key::generate(KeyAlgorithm::A256Kw).expect("a fresh key"))
}

/// A running shop; stopped when dropped.
struct Shop {
    address: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

async fn start_axum() -> Shop {
    let app = shop_axum::app(keyring()).expect("the axum shop's router");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    Shop {
        address,
        stop: Some(Box::new(move || task.abort())),
    }
}

async fn start_actix() -> Shop {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let server = shop_actix::serve(listener, keyring()).expect("the actix shop");
    let handle = server.handle();
    tokio::spawn(server);
    Shop {
        address,
        stop: Some(Box::new(move || drop(handle.stop(false)))),
    }
}

/// One answer, as much of it as the scenario looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    request: String,
    status: StatusCode,
    location: Option<String>,
    content_type: Option<String>,
    /// `Cache-Control: no-store` (on every answer that sets the cookie).
    no_store: bool,
    /// What the answer did to the session cookie.
    cookie: CookieChange,
    body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieChange {
    Unchanged,
    Set,
    Removed,
}

/// A browser without reqwest's cookie store (the session cookie is
/// `Secure`, and the server is plain http): it keeps the `Set-Cookie`
/// values itself, and follows no redirect.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(shop: &Shop) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an http client");
        Browser {
            http,
            base: format!("http://{}", shop.address),
            cookies: BTreeMap::new(),
        }
    }

    fn has_session(&self) -> bool {
        self.cookies
            .keys()
            .any(|name| name.starts_with(COOKIE_NAME))
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = ("application/x-www-form-urlencoded", encode_form(form));
        self.send(Method::POST, path, Some(body), &[]).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let request_line = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, cookie);
        }
        if let Some((content_type, body)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the shop answers");
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().expect("an ASCII header").to_owned())
        };
        let status = response.status();
        let location = header(LOCATION);
        let content_type = header(CONTENT_TYPE);
        let no_store = header(CACHE_CONTROL).as_deref() == Some("no-store");
        let mut cookie = CookieChange::Unchanged;
        for set_cookie in response.headers().get_all(SET_COOKIE) {
            let set_cookie = set_cookie.to_str().expect("an ASCII Set-Cookie");
            let (pair, attributes) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            let removed = value.is_empty()
                || attributes
                    .split(';')
                    .any(|attribute| attribute.trim().eq_ignore_ascii_case("Max-Age=0"));
            if removed {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            if name.starts_with(COOKIE_NAME) {
                cookie = if removed {
                    CookieChange::Removed
                } else {
                    CookieChange::Set
                };
            }
        }
        let body = response.text().await.expect("a text body");
        Answer {
            request: request_line,
            status,
            location,
            content_type,
            no_store,
            cookie,
            body,
        }
    }
}

fn encode_form(form: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(byte).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect()
    };
    form.iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Asserts an answer: its status, where it redirects, its body.
#[track_caller]
fn expect(answer: &Answer, status: u16, location: Option<&str>, body: &str) {
    assert_eq!(answer.status.as_u16(), status, "{answer:#?}");
    assert_eq!(answer.location.as_deref(), location, "{answer:#?}");
    assert_eq!(answer.body, body, "{answer:#?}");
}

/// The scenario, asserted step by step; returns every answer, in order.
async fn scenario(shop: &Shop) -> Vec<Answer> {
    let mut log = Vec::new();
    let mut alice = Browser::new(shop);

    // An anonymous visitor: the optional-session page works, no cookie.
    let answer = alice.get("/").await;
    expect(&answer, 200, None, "Hello, stranger.\n");
    assert_eq!(answer.content_type.as_deref(), Some(TEXT));
    assert_eq!(answer.cookie, CookieChange::Unchanged);
    log.push(answer);

    // The required-session route sends them to the login page.
    let answer = alice.get("/cart").await;
    expect(&answer, 303, Some("/login"), "");
    assert_eq!(answer.cookie, CookieChange::Unchanged);
    log.push(answer);
    let answer = alice.post("/cart", &[("item", "book")]).await;
    expect(&answer, 303, Some("/login"), "");
    log.push(answer);
    let answer = alice.get("/login").await;
    expect(&answer, 200, None, shop_axum::LOGIN_FORM);
    assert_eq!(shop_axum::LOGIN_FORM, shop_actix::LOGIN_FORM);
    assert_eq!(answer.content_type.as_deref(), Some(HTML));
    log.push(answer);

    // Bad logins: no session.
    let answer = alice.post("/login", &[("username", "  ")]).await;
    expect(&answer, 400, None, "username required\n");
    log.push(answer);
    let answer = alice
        .send(
            Method::POST,
            "/login",
            Some(("application/json", r#"{"username":"alice"}"#.to_owned())),
            &[],
        )
        .await;
    expect(&answer, 400, None, "bad form\n");
    log.push(answer);
    assert!(!alice.has_session());

    // Login: 303 to / with the session cookie, not to be cached.
    let answer = alice.post("/login", &[("username", "alice")]).await;
    expect(&answer, 303, Some("/"), "");
    assert_eq!(answer.cookie, CookieChange::Set);
    assert!(answer.no_store);
    log.push(answer);
    assert!(alice.has_session());

    // The flash shows once: on the next page, which re-seals without it...
    let answer = alice.get("/").await;
    expect(
        &answer,
        200,
        None,
        "[success] Signed in as alice.\nHello, alice: 0 item(s) in your cart.\n",
    );
    assert_eq!(answer.cookie, CookieChange::Set);
    log.push(answer);
    // ...and not again.
    let answer = alice.get("/").await;
    expect(
        &answer,
        200,
        None,
        "Hello, alice: 0 item(s) in your cart.\n",
    );
    assert_eq!(answer.cookie, CookieChange::Unchanged);
    log.push(answer);

    // The required route, signed in.
    let answer = alice.get("/cart").await;
    expect(&answer, 200, None, "Your cart is empty.\n");
    log.push(answer);
    let answer = alice.post("/cart", &[("item", "book")]).await;
    expect(&answer, 200, None, "Added book: 1 item(s).\n");
    assert_eq!(answer.content_type.as_deref(), Some(TEXT));
    assert_eq!(answer.cookie, CookieChange::Set);
    log.push(answer);
    let answer = alice.post("/cart", &[("item", "fountain pen")]).await;
    expect(&answer, 200, None, "Added fountain pen: 2 item(s).\n");
    log.push(answer);
    let answer = alice.post("/cart", &[("item", "")]).await;
    expect(
        &answer,
        400,
        None,
        "item required, 100 characters at most\n",
    );
    log.push(answer);

    // The count persists across requests and pages.
    let answer = alice.get("/cart").await;
    expect(&answer, 200, None, "Your cart: book, fountain pen.\n");
    log.push(answer);
    let answer = alice.get("/").await;
    expect(
        &answer,
        200,
        None,
        "Hello, alice: 2 item(s) in your cart.\n",
    );
    log.push(answer);

    // A cross-site POST that carries the cookie is refused (CSRF).
    let answer = alice
        .send(
            Method::POST,
            "/cart",
            Some(("application/x-www-form-urlencoded", "item=bomb".to_owned())),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    expect(&answer, 403, None, "");
    log.push(answer);
    let answer = alice.get("/cart").await;
    expect(&answer, 200, None, "Your cart: book, fountain pen.\n");
    log.push(answer);

    // Wrong method.
    let answer = alice.get("/logout").await;
    expect(&answer, 405, None, "");
    log.push(answer);

    // Logout: the cookie removed, the required route redirects again...
    let stolen = alice.clone();
    let answer = alice.post("/logout", &[]).await;
    expect(&answer, 303, Some("/"), "");
    assert_eq!(answer.cookie, CookieChange::Removed);
    log.push(answer);
    assert!(!alice.has_session());
    let answer = alice.get("/cart").await;
    expect(&answer, 303, Some("/login"), "");
    log.push(answer);
    let answer = alice.get("/").await;
    expect(&answer, 200, None, "Hello, stranger.\n");
    log.push(answer);
    // ...even for a copy of the old cookie: revoked, not just removed.
    let mut stolen = stolen;
    let answer = stolen.get("/cart").await;
    expect(&answer, 303, Some("/login"), "");
    // Refused, and left alone (tests/inflight_requests.rs says why).
    assert_eq!(answer.cookie, CookieChange::Unchanged);
    log.push(answer);

    // Log out everywhere: bob signs in on two browsers.
    let mut laptop = Browser::new(shop);
    let mut phone = Browser::new(shop);
    for browser in [&mut laptop, &mut phone] {
        let answer = browser.post("/login", &[("username", "bob")]).await;
        expect(&answer, 303, Some("/"), "");
        log.push(answer);
        let answer = browser.post("/cart", &[("item", "tea")]).await;
        expect(&answer, 200, None, "Added tea: 1 item(s).\n");
        log.push(answer);
    }
    // Another user's session, which must survive bob's log out everywhere.
    let mut carol = Browser::new(shop);
    let answer = carol.post("/login", &[("username", "carol")]).await;
    expect(&answer, 303, Some("/"), "");
    log.push(answer);

    let answer = laptop.post("/logout-everywhere", &[]).await;
    expect(&answer, 303, Some("/"), "");
    assert_eq!(answer.cookie, CookieChange::Removed);
    log.push(answer);
    // The phone's session is gone too: the required route redirects, the
    // optional page sees a stranger; the revoked cookie is left alone.
    let answer = phone.get("/cart").await;
    expect(&answer, 303, Some("/login"), "");
    assert_eq!(answer.cookie, CookieChange::Unchanged);
    log.push(answer);
    let answer = phone.get("/").await;
    expect(&answer, 200, None, "Hello, stranger.\n");
    log.push(answer);
    let answer = laptop.get("/cart").await;
    expect(&answer, 303, Some("/login"), "");
    log.push(answer);
    // Not anyone else's.
    let answer = carol.get("/").await;
    expect(
        &answer,
        200,
        None,
        "[success] Signed in as carol.\nHello, carol: 0 item(s) in your cart.\n",
    );
    log.push(answer);
    // Logging out everywhere needs a session.
    let answer = phone.post("/logout-everywhere", &[]).await;
    expect(&answer, 303, Some("/login"), "");
    log.push(answer);

    // Bob can sign in again at once; his new cart starts empty.
    let answer = phone.post("/login", &[("username", "bob")]).await;
    expect(&answer, 303, Some("/"), "");
    log.push(answer);
    let answer = phone.get("/cart").await;
    expect(&answer, 200, None, "Your cart is empty.\n");
    log.push(answer);

    // A cart too large for the cookies: 413 (the handler's `Err`), and the
    // cart stays as it was. About 110 items of 100 characters fill the
    // four chunk cookies.
    let item = "x".repeat(100);
    let mut count = 0;
    let full = loop {
        let answer = phone.post("/cart", &[("item", &item)]).await;
        if answer.status != StatusCode::OK {
            break answer;
        }
        count += 1;
        expect(
            &answer,
            200,
            None,
            &format!("Added {item}: {count} item(s).\n"),
        );
        assert!(count < 200, "the cart never fills: {answer:#?}");
    };
    expect(&full, 413, None, r#"{"error":"session too large"}"#);
    assert!(count > 50, "{count} items");
    assert!(phone.cookies.len() > 1, "{:?}", phone.cookies.keys());
    log.push(full);
    let answer = phone.get("/").await;
    expect(
        &answer,
        200,
        None,
        // The flash of bob's last login, unread until this page.
        &format!("[success] Signed in as bob.\nHello, bob: {count} item(s) in your cart.\n"),
    );
    log.push(answer);

    log
}

#[tokio::test]
async fn the_axum_shop() {
    let shop = start_axum().await;
    scenario(&shop).await;
}

#[tokio::test]
async fn the_actix_shop() {
    let shop = start_actix().await;
    scenario(&shop).await;
}

/// Both shops answer every request of the scenario the same way:
/// statuses, redirects, content types, cookie changes and bodies.
#[tokio::test]
async fn both_shops_answer_the_same() {
    let axum = scenario(&start_axum().await).await;
    let actix = scenario(&start_actix().await).await;
    assert_eq!(axum.len(), actix.len());
    for (axum, actix) in axum.iter().zip(&actix) {
        assert_eq!(axum, actix);
    }
}

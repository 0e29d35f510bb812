//! A small shop on axum: `SESSION_KEYS=… cargo run --example shop_axum --features axum`.
//!
//! The session holds the shop's own `Cart`; `/cart` is for signed-in users
//! only (others are sent to `/login`), `/` works either way and shows the
//! flash message set at login once. `examples/shop_actix.rs` is the same
//! application on actix-web, answering every request the same way
//! (`tests/shop_examples.rs` drives both).
//!
//! | route | session | answer |
//! |---|---|---|
//! | `GET /` | optional | the flash messages, then a greeting |
//! | `GET /login` | none | the login form (HTML) |
//! | `POST /login` (form `username`) | any | 303 to `/`, flash "Signed in as …" |
//! | `GET /cart` | required | the cart's items |
//! | `POST /cart` (form `item`) | required | adds the item, the new count |
//! | `POST /logout` | any | 303 to `/`, the session revoked |
//! | `POST /logout-everywhere` | required | 303 to `/`, every session of the user revoked |
//!
//! Keys come from `SESSION_KEYS` (`kid:base64url-secret,…`, the first seals):
//!
//! ```sh
//! export SESSION_KEYS="k1:$(head -c32 /dev/urandom | basenc --base64url | tr -d '=')"
//! ```
//!
//! It listens on `127.0.0.1:$PORT` (default 3000).

use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use jwe_session::revocation::MemoryStore;
use jwe_session::{Error, Keyring, RequireSession, SessionHandle, SessionLayer};
use jwe_session::{Flash, FlashLevel};
use serde::{Deserialize, Serialize};

/// What the session holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cart {
    pub items: Vec<String>,
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct AddItem {
    #[serde(default)]
    item: String,
}

/// The login form, for the visitors `RequireSession` sends to `/login`.
pub const LOGIN_FORM: &str = "<form method=\"post\" action=\"/login\">\
<input name=\"username\"><button>Sign in</button></form>\n";

/// The longest item name the shop keeps.
const MAX_ITEM_CHARS: usize = 100;

/// The shop's router, its sessions sealed under `keyring`.
pub fn app(keyring: Keyring) -> Result<Router, Error> {
    let sessions = SessionLayer::builder(keyring, MemoryStore::new())
        .login_path("/login")
        .build()?;
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/cart", get(show_cart).post(add_to_cart))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(sessions))
}

/// Signed in or not. The flash messages set at login show here once.
async fn home(session: Option<RequireSession<Cart>>) -> String {
    let Some(session) = session else {
        return "Hello, stranger.\n".to_owned();
    };
    let mut page: String = session.take_flashes().iter().map(flash_line).collect();
    let count = session.with_data(|cart| cart.items.len());
    let user = session.subject().unwrap_or_default();
    page.push_str(&format!("Hello, {user}: {count} item(s) in your cart.\n"));
    page
}

fn flash_line(flash: &Flash) -> String {
    let level = match flash.level {
        FlashLevel::Debug => "debug",
        FlashLevel::Info => "info",
        FlashLevel::Success => "success",
        FlashLevel::Warning => "warning",
        _ => "error",
    };
    format!("[{level}] {}\n", flash.text)
}

async fn login_form() -> Html<&'static str> {
    Html(LOGIN_FORM)
}

async fn login(session: SessionHandle<Cart>, form: Result<Form<Login>, FormRejection>) -> Response {
    let Ok(Form(Login { username })) = form else {
        return bad_request("bad form");
    };
    let username = username.trim();
    if username.is_empty() {
        return bad_request("username required");
    }
    // A real shop checks the password here. Then: a new session id and lifetime.
    session.login(username);
    session.flash(FlashLevel::Success, format!("Signed in as {username}."));
    Redirect::to("/").into_response()
}

/// Signed-in users only: others get 303 to /login, from the layer.
async fn show_cart(cart: RequireSession<Cart>) -> String {
    cart.with_data(|cart| match cart.items.as_slice() {
        [] => "Your cart is empty.\n".to_owned(),
        items => format!("Your cart: {}.\n", items.join(", ")),
    })
}

async fn add_to_cart(
    cart: RequireSession<Cart>,
    form: Result<Form<AddItem>, FormRejection>,
) -> Result<Response, Error> {
    let Ok(Form(AddItem { item })) = form else {
        return Ok(bad_request("bad form"));
    };
    let item = item.trim();
    if item.is_empty() || item.chars().count() > MAX_ITEM_CHARS {
        return Ok(bad_request("item required, 100 characters at most"));
    }
    let count = cart.update_data(|cart| {
        cart.items.push(item.to_owned());
        cart.items.len()
    });
    if let Err(error) = cart.sealed_len() {
        // Too large for the cookies. The layer saves what the handler left
        // in the session even when it answers with an error, so take the
        // item out again; the error answers 413 (Error::http_status).
        cart.update_data(|cart| cart.items.pop());
        return Err(error);
    }
    Ok(format!("Added {item}: {count} item(s).\n").into_response())
}

async fn logout(session: SessionHandle<Cart>) -> Redirect {
    session.destroy();
    Redirect::to("/")
}

async fn logout_everywhere(session: RequireSession<Cart>) -> Result<Redirect, Error> {
    session.revoke_subject().await?; // a store outage answers 503
    Ok(Redirect::to("/"))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// `PORT`, default 3000.
pub fn port_from_env() -> Result<u16, Box<dyn std::error::Error>> {
    match std::env::var("PORT") {
        Ok(port) => Ok(port.parse()?),
        Err(std::env::VarError::NotPresent) => Ok(3000),
        Err(error) => Err(error.into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keyring = Keyring::from_env("SESSION_KEYS")?;
    let app = app(keyring)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port_from_env()?)).await?;
    println!("shop (axum) on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

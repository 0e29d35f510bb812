//! A small shop on actix-web: `SESSION_KEYS=… cargo run --example shop_actix --features actix`.
//!
//! The same application as `examples/shop_axum.rs`, answering every request
//! the same way (`tests/shop_examples.rs` drives both): the session holds
//! the shop's own `Cart`; `/cart` is for signed-in users only (others are
//! sent to `/login`), `/` works either way and shows the flash message set
//! at login once.
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

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{error, web, App, HttpResponse, HttpServer};
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

/// Starts the shop on `listener`, its sessions sealed under `keyring`;
/// await (or spawn) the returned server, stop it with its handle.
pub fn serve(
    listener: TcpListener,
    keyring: Keyring,
) -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
    let sessions = SessionLayer::builder(keyring, MemoryStore::new())
        .login_path("/login")
        .build()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(form_config())
            .wrap(sessions.clone())
            .service(web::resource("/").get(home))
            .service(web::resource("/login").get(login_form).post(login))
            .service(web::resource("/cart").get(show_cart).post(add_to_cart))
            .service(web::resource("/logout").post(logout))
            .service(web::resource("/logout-everywhere").post(logout_everywhere))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

/// A form that does not parse answers 400, as in the axum shop.
fn form_config() -> web::FormConfig {
    web::FormConfig::default().error_handler(|err, _request| {
        error::InternalError::from_response(err, bad_request("bad form")).into()
    })
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

async fn login_form() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(LOGIN_FORM)
}

async fn login(session: SessionHandle<Cart>, form: web::Form<Login>) -> HttpResponse {
    let username = form.username.trim();
    if username.is_empty() {
        return bad_request("username required");
    }
    // A real shop checks the password here. Then: a new session id and lifetime.
    session.login(username);
    session.flash(FlashLevel::Success, format!("Signed in as {username}."));
    see_other("/")
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
    form: web::Form<AddItem>,
) -> Result<HttpResponse, Error> {
    let item = form.item.trim();
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
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!("Added {item}: {count} item(s).\n")))
}

async fn logout(session: SessionHandle<Cart>) -> HttpResponse {
    session.destroy();
    see_other("/")
}

async fn logout_everywhere(session: RequireSession<Cart>) -> Result<HttpResponse, Error> {
    session.revoke_subject().await?; // a store outage answers 503
    Ok(see_other("/"))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", location))
        .finish()
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{message}\n"))
}

/// `PORT`, default 3000.
pub fn port_from_env() -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    match std::env::var("PORT") {
        Ok(port) => Ok(port.parse()?),
        Err(std::env::VarError::NotPresent) => Ok(3000),
        Err(error) => Err(error.into()),
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let keyring = Keyring::from_env("SESSION_KEYS")?;
    let listener = TcpListener::bind(("127.0.0.1", port_from_env()?))?;
    println!("shop (actix-web) on http://{}", listener.local_addr()?);
    serve(listener, keyring)?.await?;
    Ok(())
}

//! Issue 11: the data type of the layer and of the extractor cannot
//! disagree. On 0.1 a `SessionMap` layer with a `SessionHandle<Cart>`
//! extractor compiled, then answered every request with 500. Now the layer
//! has no data type: each handler names its own, and data that does not
//! decode as it shows as the type's `Default`, is logged, and is kept
//! unless the handler changes it. The same scenario runs on both
//! frameworks, over HTTP on loopback.

#![cfg(all(feature = "axum", feature = "actix"))]

use std::sync::Arc;

use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::{Key, KeyAlgorithm, Keyring, SessionHandle, SessionLayer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
}

async fn add_to_cart(cart: SessionHandle<Cart>) -> String {
    cart.update_data(|cart| cart.items.push("book".to_owned()));
    cart.with_data(|cart| cart.items.len()).to_string()
}

async fn show_cart(cart: SessionHandle<Cart>) -> String {
    cart.data().items.join(",")
}

/// The same session, through the map handle.
async fn show_map(session: SessionHandle) -> String {
    let items: Option<Vec<String>> = session.get("items").unwrap_or(None);
    items.unwrap_or_default().join(",")
}

/// A type the cart's data does not decode as.
async fn read_counter(counter: SessionHandle<u64>) -> String {
    counter.data().to_string()
}

async fn bump_counter(counter: SessionHandle<u64>) -> String {
    counter.update_data(|n| *n += 1);
    counter.data().to_string()
}

/// The layer from a keyring and a store passed by value.
fn layer_by_value() -> SessionLayer {
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    SessionLayer::builder(keyring, MemoryStore::new())
        .build()
        .unwrap()
}

/// The layer from the same in `Arc`s, the store as a trait object.
fn layer_by_arc() -> SessionLayer {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let store: Arc<dyn RevocationStore> = Arc::new(MemoryStore::new());
    SessionLayer::new(Arc::clone(&keyring), Arc::clone(&store)).unwrap()
}

/// One request: method, path, cookie in; status, body and the new session
/// cookie (if any) out.
type Answer = (u16, String, Option<String>);

/// The scenario, against any server: `call(method, path, cookie)`.
async fn scenario<F, Fut>(call: F)
where
    F: Fn(&'static str, &'static str, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let (status, body, cookie) = call("POST", "/cart", None).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let cookie = cookie.expect("a session cookie");

    // The map handle sees the cart's fields.
    let (status, body, _) = call("GET", "/map", Some(cookie.clone())).await;
    assert_eq!((status, body.as_str()), (200, "book"));

    // A handler asking for a type the data is not: its Default, not a 500,
    // and the data is kept (no new cookie, the cart still there).
    let (status, body, set) = call("GET", "/counter", Some(cookie.clone())).await;
    assert_eq!((status, body.as_str(), set), (200, "0", None));
    let (status, body, _) = call("GET", "/cart", Some(cookie.clone())).await;
    assert_eq!((status, body.as_str()), (200, "book"));

    // Two types in one request: the cart, then the map, each decoded.
    let (status, body, cookie) = call("POST", "/cart", Some(cookie.clone())).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    let cookie = cookie.expect("a changed session is sealed again");

    // A handler that changes the data as its own type replaces it: the
    // rule is documented, and the cart reads as empty after.
    let (status, body, set) = call("POST", "/counter", Some(cookie)).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let cookie = set.expect("sealed again");
    let (status, body, _) = call("GET", "/cart", Some(cookie.clone())).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, body, _) = call("GET", "/counter", Some(cookie)).await;
    assert_eq!((status, body.as_str()), (200, "1"));
}

/// The `name=value` of the session cookie among `Set-Cookie` values.
fn session_cookie<'a>(set_cookies: impl Iterator<Item = &'a str>) -> Option<String> {
    set_cookies
        .filter(|c| c.starts_with("__Host-session=") && !c.starts_with("__Host-session=;"))
        .filter_map(|c| c.split(';').next())
        .map(str::to_owned)
        .next()
}

mod axum_side {
    use super::*;
    use axum::routing::{get, post};
    use axum::Router;

    async fn serve(layer: SessionLayer) -> String {
        let app = Router::new()
            .route("/cart", post(add_to_cart).get(show_cart))
            .route("/map", get(show_map))
            .route("/counter", get(read_counter).post(bump_counter))
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    async fn run(layer: SessionLayer) {
        let base = serve(layer).await;
        let client = reqwest::Client::new();
        scenario(|method, path, cookie| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut request = client.request(method, url);
                if let Some(cookie) = cookie {
                    request = request.header("cookie", cookie);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let cookie = session_cookie(
                    response
                        .headers()
                        .get_all("set-cookie")
                        .iter()
                        .map(|v| v.to_str().unwrap()),
                );
                (status, response.text().await.unwrap(), cookie)
            }
        })
        .await;
    }

    #[tokio::test]
    async fn handlers_of_different_types_share_one_layer() {
        run(layer_by_value()).await;
        run(layer_by_arc()).await;
    }
}

mod actix_side {
    use super::*;
    use actix_web::{test, web, App};

    async fn run(layer: SessionLayer) {
        let app = test::init_service(
            App::new()
                .wrap(layer)
                .route("/cart", web::post().to(add_to_cart))
                .route("/cart", web::get().to(show_cart))
                .route("/map", web::get().to(show_map))
                .route("/counter", web::get().to(read_counter))
                .route("/counter", web::post().to(bump_counter)),
        )
        .await;
        let app = &app;
        scenario(|method, path, cookie| async move {
            let mut request = match method {
                "POST" => test::TestRequest::post(),
                _ => test::TestRequest::get(),
            }
            .uri(path);
            if let Some(cookie) = cookie {
                request = request.insert_header(("cookie", cookie));
            }
            let response = test::call_service(app, request.to_request()).await;
            let status = response.status().as_u16();
            let cookie = session_cookie(
                response
                    .headers()
                    .get_all("set-cookie")
                    .map(|v| v.to_str().unwrap()),
            );
            let body = test::read_body(response).await;
            (status, String::from_utf8(body.to_vec()).unwrap(), cookie)
        })
        .await;
    }

    #[actix_web::test]
    async fn handlers_of_different_types_share_one_layer() {
        run(layer_by_value()).await;
        run(layer_by_arc()).await;
    }
}

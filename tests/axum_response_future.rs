//! The axum middleware's named response future (`jwe_session::axum::ResponseFuture`),
//! polled by hand: a request that needs no waiting on the layer's side
//! answers at its first poll, one whose handler waits answers once the
//! handler does, a save goes on until it is done, and a future polled
//! again after its answer answers 500 instead of panicking.
#![cfg(feature = "axum")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use jwe_session::revocation::MemoryStore;
use jwe_session::{Key, KeyAlgorithm, Keyring, SessionLayer};
use tokio::sync::oneshot;
use tower_layer::Layer;
use tower_service::Service;

type Handler = Arc<dyn Fn(Request<Body>) -> HandlerFuture + Send + Sync>;
type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// A service that runs `handler` for every request.
#[derive(Clone)]
struct Handle(Handler);

impl Service<Request<Body>> for Handle {
    type Response = Response;
    type Error = Infallible;
    type Future = HandlerFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> HandlerFuture {
        (self.0)(request)
    }
}

fn layer() -> SessionLayer {
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    SessionLayer::new(keyring, MemoryStore::new()).unwrap()
}

fn poll<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

fn answered(poll: Poll<Result<Response, Infallible>>) -> Response {
    match poll {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("not answered"),
    }
}

/// Polled after its answer: 500, never a panic, however many times.
fn polled_again<F>(mut future: F)
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    for _ in 0..2 {
        assert_eq!(answered(poll(&mut future)).status(), 500);
    }
}

#[test]
fn an_answer_at_the_first_poll_then_500_if_polled_again() {
    let handler: Handler = Arc::new(|_| Box::pin(async { Ok("ok".into_response()) }));
    let mut service = layer().layer(Handle(handler));
    let mut future = service.call(Request::get("/").body(Body::empty()).unwrap());
    assert_eq!(answered(poll(&mut future)).status(), 200);
    polled_again(future);
}

#[test]
fn a_refused_request_is_answered_at_once() {
    let handler: Handler = Arc::new(|_| panic!("a refused request reaches no handler"));
    let mut service = layer().layer(Handle(handler));
    // A cross-site POST that carries a session cookie: refused (CSRF).
    let request = Request::post("https://app.example/")
        .header(header::HOST, "app.example")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, "__Host-session=abc")
        .body(Body::empty())
        .unwrap();
    let mut future = service.call(request);
    assert_eq!(answered(poll(&mut future)).status(), StatusCode::FORBIDDEN);
    polled_again(future);
}

#[test]
fn a_handler_that_waits_is_waited_for() {
    let (go, wait) = oneshot::channel::<()>();
    let wait = std::sync::Mutex::new(Some(wait));
    let handler: Handler = Arc::new(move |request: Request<Body>| {
        let wait = wait.lock().unwrap().take().expect("one request");
        drop(request);
        Box::pin(async move {
            let _ = wait.await;
            Ok("ok".into_response())
        })
    });
    let mut service = layer().layer(Handle(handler));
    let mut future = service.call(Request::get("/").body(Body::empty()).unwrap());
    assert!(poll(&mut future).is_pending());
    assert!(poll(&mut future).is_pending());
    go.send(()).unwrap();
    let response = answered(poll(&mut future));
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    polled_again(future);
}

#[test]
fn a_login_is_sealed_and_set_before_the_answer() {
    use axum::extract::FromRequestParts;
    let handler: Handler = Arc::new(|request: Request<Body>| {
        Box::pin(async move {
            let (mut parts, _) = request.into_parts();
            let session =
                jwe_session::SessionHandle::<jwe_session::SessionMap>::from_request_parts(
                    &mut parts,
                    &(),
                )
                .await
                .unwrap();
            session.login("alice");
            Ok("welcome".into_response())
        })
    });
    let mut service = layer().layer(Handle(handler));
    let mut future = service.call(Request::get("/").body(Body::empty()).unwrap());
    let response = answered(poll(&mut future));
    assert_eq!(response.status(), 200);
    let cookie = response.headers().get(header::SET_COOKIE).unwrap();
    assert!(cookie.to_str().unwrap().starts_with("__Host-session="));
    polled_again(future);
}

/// A handle the handler keeps beyond its request (a spawned task's) is left
/// a detached stand-in once the response is answered, whether or not the
/// session needed a save; a request that kept none is ended in place.
#[test]
fn a_handle_kept_beyond_the_request_is_left_a_stand_in() {
    use axum::extract::FromRequestParts;
    use jwe_session::{SessionHandle, SessionMap};
    type Kept = Arc<std::sync::Mutex<Option<SessionHandle<SessionMap>>>>;
    let kept: Kept = Arc::default();
    let handler = |kept: Kept, login: bool| -> Handler {
        Arc::new(move |request: Request<Body>| {
            let kept = kept.clone();
            Box::pin(async move {
                let (mut parts, _) = request.into_parts();
                let session = SessionHandle::<SessionMap>::from_request_parts(&mut parts, &())
                    .await
                    .unwrap();
                if login {
                    session.login("alice");
                }
                *kept.lock().unwrap() = Some(session);
                Ok("ok".into_response())
            })
        })
    };
    let layer = layer();
    // A login (saved), then a request that only reads (no save).
    let mut service = layer.layer(Handle(handler(kept.clone(), true)));
    let mut future = service.call(Request::get("/").body(Body::empty()).unwrap());
    let response = answered(poll(&mut future));
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let handle = kept.lock().unwrap().take().unwrap();
    assert_eq!(handle.subject(), None, "after a save");
    let mut service = layer.layer(Handle(handler(kept.clone(), false)));
    let request = Request::get("/")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let mut future = service.call(request);
    let response = answered(poll(&mut future));
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "nothing to save"
    );
    let handle = kept.lock().unwrap().take().unwrap();
    assert_eq!(handle.subject(), None, "without a save");
}

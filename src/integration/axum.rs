//! axum integration (feature `axum`): [`SessionLayer`] is a tower `Layer`,
//! and [`SessionHandle`] and [`RequireSession`] are extractors.
//!
//! ```
//! use axum::{routing::post, Router};
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{Key, KeyAlgorithm, Keyring, SessionHandle, SessionLayer};
//!
//! async fn count(session: SessionHandle) -> Result<String, jwe_session::Error> {
//!     let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
//!     session.insert("n", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
//! let app: Router = Router::new()
//!     .route("/count", post(count))
//!     .layer(SessionLayer::new(keyring, MemoryStore::new())?);
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{CACHE_CONTROL, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use super::{
    ActiveRequest, Admission, Began, CsrfGuard, Finished, MissingSessionLayer, RequestHead,
    RequestSession, RequireSession, ResponseHead, SessionHandle, SessionLayer, SignInRequired,
};
use crate::error::{Error, StoreError};

impl<S> Layer<S> for SessionLayer {
    type Service = SessionMiddleware<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionMiddleware {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps a router's services in.
#[derive(Clone)]
pub struct SessionMiddleware<S> {
    inner: S,
    layer: SessionLayer,
}

impl<S> std::fmt::Debug for SessionMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware").finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for SessionMiddleware<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Take the service that was polled ready; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let began = self.layer.begin_now(&request_head(&request));
        let state = match began {
            Began::Admitted(Admission::Proceed(active)) => {
                request.extensions_mut().insert(active.session());
                State::Handler {
                    future: inner.call(request),
                    active: Some(active),
                    layer: self.layer.clone(),
                }
            }
            Began::Admitted(Admission::Refuse(status)) => State::Ready {
                response: Some(status_only(status)),
            },
            Began::Admitted(Admission::Answer(head)) => State::Ready {
                response: Some(apply(status_only(200), head)),
            },
            // A store's check that waits (Redis), or a device-binding
            // endpoint: the rest of the request in a box.
            Began::Waits(waiting) => {
                let layer = self.layer.clone();
                State::Waiting {
                    future: Box::pin(async move {
                        let admission = {
                            let head = request_head(&request);
                            layer.begin_after(waiting, &head).await
                        };
                        let active = match admission {
                            Admission::Proceed(active) => active,
                            Admission::Refuse(status) => return Ok(status_only(status)),
                            Admission::Answer(head) => return Ok(apply(status_only(200), head)),
                        };
                        request.extensions_mut().insert(active.session());
                        let response = inner.call(request).await?;
                        let head = layer.finish(active).await;
                        Ok(apply(response, head))
                    }),
                }
            }
        };
        ResponseFuture { state }
    }
}

/// Boxed, for the requests that wait on the layer's side.
type Waiting = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`SessionMiddleware`]: the handler's future,
    /// and the session's end once it is ready. A request that needs no
    /// waiting on the layer's side (a cached token, a memory store, no
    /// save) allocates no future of the layer's; one that waits (a Redis
    /// check, a seal, a device-binding endpoint) goes on in a box.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        /// The handler runs, the session in its request's extensions.
        Handler {
            #[pin]
            future: F,
            active: Option<ActiveRequest>,
            layer: SessionLayer,
        },
        /// The layer waits (before or after the handler).
        Waiting { future: Waiting },
        /// Answered at once.
        Ready { response: Option<Response> },
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let mut saving: Waiting = match state.as_mut().project() {
            StateProjection::Handler {
                future,
                active,
                layer,
            } => {
                let Poll::Ready(Ok(response)) = future.poll(cx) else {
                    return Poll::Pending;
                };
                let finished = active.take().map(|active| layer.finish_now(active));
                match finished {
                    Some(Finished::Save(ending)) => {
                        // A save waits (a seal, a revocation to record): in
                        // a box.
                        let layer = layer.clone();
                        Box::pin(async move {
                            let head = layer.finish_save(ending).await;
                            Ok(apply(response, head))
                        })
                    }
                    Some(Finished::Done(head)) => {
                        state.set(State::Ready { response: None });
                        return Poll::Ready(Ok(apply(response, head)));
                    }
                    // Never: the handler's future is polled to its end once.
                    None => {
                        state.set(State::Ready { response: None });
                        return Poll::Ready(Ok(response));
                    }
                }
            }
            StateProjection::Waiting { future } => {
                let poll = future.as_mut().poll(cx);
                if poll.is_ready() {
                    state.set(State::Ready { response: None });
                }
                return poll;
            }
            // Polled again after its answer: the contract of `Future` is
            // broken; answer 500 rather than panic.
            StateProjection::Ready { response } => {
                let response = response.take().unwrap_or_else(|| status_only(500));
                return Poll::Ready(Ok(response));
            }
        };
        let poll = saving.as_mut().poll(cx);
        if poll.is_ready() {
            state.set(State::Ready { response: None });
        } else {
            state.set(State::Waiting { future: saving });
        }
        poll
    }
}

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

fn request_head(request: &Request<Body>) -> RequestHead<'_> {
    let headers = request.headers();
    // The CSRF check reads these only for unsafe methods: a GET skips the
    // three header lookups.
    let unsafe_method = !crate::csrf::is_safe_method(request.method().as_str());
    let text = |name: &HeaderName| {
        unsafe_method
            .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
            .flatten()
    };
    RequestHead {
        method: request.method().as_str(),
        host: text(&HOST).or_else(|| {
            unsafe_method
                .then(|| request.uri().authority().map(|a| a.as_str()))
                .flatten()
        }),
        origin: text(&ORIGIN),
        sec_fetch_site: text(&SEC_FETCH_SITE),
        cookies: headers
            .get_all(COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect(),
        path: request.uri().path(),
        secure_session_id: text(&SEC_SECURE_SESSION_ID),
        secure_session_response: text(&SECURE_SESSION_RESPONSE),
    }
}

const SEC_SECURE_SESSION_ID: HeaderName = HeaderName::from_static("sec-secure-session-id");
const SECURE_SESSION_RESPONSE: HeaderName = HeaderName::from_static("secure-session-response");

fn status_only(status: u16) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

fn apply(mut response: Response, head: ResponseHead) -> Response {
    if let Some(status) = head.replace_status {
        response = match head.replace_body {
            Some(body) => json_response(status, body.into_owned()),
            None => status_only(status),
        };
    }
    let headers = response.headers_mut();
    for cookie in head.set_cookies {
        match HeaderValue::try_from(cookie) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            Err(_) => tracing::error!("a Set-Cookie value was not a valid header value"),
        }
    }
    if head.no_store {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    for (name, value) in head.headers {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::error!(header = name, "a header was not valid"),
        }
    }
    response
}

/// `?` in handlers: a library error answers with the status that fits it
/// ([`Error::http_status`]) and a JSON body that names only that status;
/// the error itself goes to the logs.
///
/// ```
/// use axum::response::IntoResponse;
/// use jwe_session::SessionHandle;
///
/// async fn visit(session: SessionHandle) -> Result<String, jwe_session::Error> {
///     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
///     session.insert("n", n)?;
///     Ok(n.to_string())
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::get(visit);
/// let response = jwe_session::Error::Config("bad".into()).into_response();
/// assert_eq!(response.status(), 500);
/// ```
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        error_response(&self, self.http_status())
    }
}

/// `?` on [`SessionHandle::revoke_subject`] and the other store calls: 503.
impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        error_response(&self, self.http_status())
    }
}

fn error_response(error: &dyn std::error::Error, status: u16) -> Response {
    crate::error::log_returned(error, status);
    json_response(status, super::public_body(status))
}

/// `status` with a JSON `body`.
fn json_response(status: u16, body: impl Into<Body>) -> Response {
    let mut response = status_only(status);
    *response.body_mut() = body.into();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 500 whose body says nothing of the application; the log line names
/// the fix.
impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        error_response(&self, 500)
    }
}

/// The request's session, its data as a `T` (see [`SessionHandle`]).
impl<S, T> FromRequestParts<S> for SessionHandle<T>
where
    S: Send + Sync,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestSession>()
            .map(RequestSession::handle)
            .ok_or(MissingSessionLayer)
    }
}

/// The rejection of [`RequireSession`]: the layer is missing (500), or the
/// visitor is not signed in (401, or 303 to the login path).
#[derive(Debug)]
#[non_exhaustive]
pub enum RequireSessionRejection {
    /// No session layer on the route.
    MissingLayer(MissingSessionLayer),
    /// The visitor is not signed in.
    SignInRequired(SignInRequired),
}

impl IntoResponse for RequireSessionRejection {
    fn into_response(self) -> Response {
        match self {
            RequireSessionRejection::MissingLayer(missing) => missing.into_response(),
            RequireSessionRejection::SignInRequired(refusal) => refusal.into_response(),
        }
    }
}

/// 401 with a JSON body, or `303 See Other` to the login path.
impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        match self.login_path() {
            Some(path) => {
                let mut response = status_only(303);
                if let Ok(location) = HeaderValue::from_str(path) {
                    response
                        .headers_mut()
                        .insert(axum::http::header::LOCATION, location);
                }
                response
            }
            None => json_response(401, super::public_body(401)),
        }
    }
}

impl<S, T> FromRequestParts<S> for RequireSession<T>
where
    S: Send + Sync,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Rejection = RequireSessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let handle = SessionHandle::<T>::from_request_parts(parts, state)
            .await
            .map_err(RequireSessionRejection::MissingLayer)?;
        RequireSession::from_handle(handle).map_err(RequireSessionRejection::SignInRequired)
    }
}

/// `Option<RequireSession<T>>`: `None` when the visitor is not signed in
/// (a missing layer is still a 500).
impl<S, T> axum::extract::OptionalFromRequestParts<S> for RequireSession<T>
where
    S: Send + Sync,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let handle =
            <SessionHandle<T> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        Ok(RequireSession::from_handle(handle).ok())
    }
}

/// [`CsrfGuard`] as a tower layer: `.layer(guard)`.
impl<S> Layer<S> for CsrfGuard {
    type Service = CsrfGuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfGuardService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service [`CsrfGuard`] wraps routes in.
#[derive(Clone)]
pub struct CsrfGuardService<S> {
    inner: S,
    guard: CsrfGuard,
}

impl<S> std::fmt::Debug for CsrfGuardService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfGuardService").finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for CsrfGuardService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !self.guard.allows(&request_head(&request)) {
            return Box::pin(std::future::ready(Ok(status_only(403))));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}

//! axum integration (feature `axum`): a tower [`Layer`] and the
//! [`SessionHandle`] extractor.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::post, Router};
//! use jwe_session::integration::{axum::SessionLayer, SessionHandle};
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{Key, KeyAlgorithm, Keyring, SessionMap};
//!
//! async fn count(session: SessionHandle<SessionMap>) -> String {
//!     let n = session.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
//!     let _ = session.insert("n", n);
//!     n.to_string()
//! }
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
//! let app: Router = Router::new()
//!     .route("/count", post(count))
//!     .layer(SessionLayer::new(keyring, Arc::new(MemoryStore::new()))?);
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
    Admission, CsrfGuard, RequestHead, RequireSession, ResponseHead, SessionHandle, SessionService,
    SignInRequired,
};
use crate::error::{Error, StoreError};
use crate::session::SessionMap;

/// The session layer: put it on a `Router` with `.layer(...)`.
///
/// It is the framework-independent [`SessionService`] itself:
/// `SessionLayer::new(keyring, store)` for the defaults, or
/// [`SessionService::builder`] for anything else. The keyring stays shared:
/// `keyring.rotate()` anywhere in the application takes effect for the next
/// request.
pub type SessionLayer<T = SessionMap> = SessionService<T>;

impl<S, T> Layer<S> for SessionService<T> {
    type Service = SessionMiddleware<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionMiddleware {
            inner,
            service: self.clone(),
        }
    }
}

/// The middleware [`SessionLayer`] wraps services in.
pub struct SessionMiddleware<S, T> {
    inner: S,
    service: SessionService<T>,
}

impl<S: Clone, T> Clone for SessionMiddleware<S, T> {
    fn clone(&self) -> Self {
        SessionMiddleware {
            inner: self.inner.clone(),
            service: self.service.clone(),
        }
    }
}

impl<S, T> std::fmt::Debug for SessionMiddleware<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware").finish_non_exhaustive()
    }
}

impl<S, T> Service<Request<Body>> for SessionMiddleware<S, T>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Take the service that was polled ready; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let service = self.service.clone();
        Box::pin(async move {
            let admission = {
                let head = request_head(&request);
                service.begin(&head).await
            };
            let active = match admission {
                Admission::Proceed(active) => active,
                Admission::Refuse(status) => return Ok(status_only(status)),
            };
            request.extensions_mut().insert(active.handle().clone());
            let response = inner.call(request).await?;
            let head = service.finish(active).await;
            Ok(apply(response, head))
        })
    }
}

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

fn request_head(request: &Request<Body>) -> RequestHead<'_> {
    let headers = request.headers();
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    RequestHead {
        method: request.method().as_str(),
        host: text(&HOST).or_else(|| request.uri().authority().map(|a| a.as_str())),
        origin: text(&ORIGIN),
        sec_fetch_site: text(&SEC_FETCH_SITE),
        cookies: headers
            .get_all(COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect(),
    }
}

fn status_only(status: u16) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

fn apply(mut response: Response, head: ResponseHead) -> Response {
    if let Some(status) = head.replace_status {
        response = match head.replace_body {
            Some(body) => json_response(status, body),
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
    response
}

/// `?` in handlers: a library error answers with the status that fits it
/// ([`Error::http_status`]) and a JSON body that names only that status;
/// the error itself goes to the logs.
///
/// ```
/// use axum::response::IntoResponse;
/// use jwe_session::integration::SessionHandle;
/// use jwe_session::SessionMap;
///
/// async fn visit(session: SessionHandle<SessionMap>) -> Result<String, jwe_session::Error> {
///     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
///     session.insert("n", n)?;
///     Ok(n.to_string())
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::get(visit);
/// let response = jwe_session::Error::Destroyed.into_response();
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
fn json_response(status: u16, body: &'static str) -> Response {
    let mut response = status_only(status);
    *response.body_mut() = Body::from(body);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The extractor's rejection when the layer is missing.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionLayer;

impl std::fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "jwe-session: no session on this request. Is the SessionLayer installed \
             (`.layer(SessionLayer::new(...))`) on this route, for the same data type?",
        )
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    /// A 500 whose body says nothing of the application; the log line names
    /// the fix.
    fn into_response(self) -> Response {
        error_response(&self, 500)
    }
}

impl<S, T> FromRequestParts<S> for SessionHandle<T>
where
    S: Send + Sync,
    T: Send + 'static,
{
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SessionHandle<T>>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// The rejection of [`RequireSession`]: the layer is missing (500), or the
/// visitor is not signed in (401, or 303 to the login path).
#[derive(Debug)]
pub enum RequireSessionRejection {
    /// No session layer for this data type on the route.
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
    T: Send + 'static,
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
    T: Send + 'static,
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

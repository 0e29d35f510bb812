//! actix-web integration (feature `actix`): [`SessionLayer`] is a
//! middleware for `wrap`, [`SessionHandle`] and [`RequireSession`] are
//! extractors, and [`SessionExt`] reads the session from a request.
//!
//! It behaves exactly like the axum integration: both are thin adapters
//! over the same [`SessionLayer`], which makes every decision.
//!
//! ```
//! use actix_web::{web, App, HttpResponse};
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{Key, KeyAlgorithm, Keyring, SessionHandle, SessionLayer};
//!
//! async fn count(session: SessionHandle) -> Result<HttpResponse, jwe_session::Error> {
//!     let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
//!     session.insert("n", n)?;
//!     Ok(HttpResponse::Ok().body(n.to_string()))
//! }
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
//! let sessions = SessionLayer::new(keyring, MemoryStore::new())?;
//! let app = App::new()
//!     .wrap(sessions.clone())
//!     .route("/count", web::post().to(count));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    ActiveRequest, Admission, Began, CsrfGuard, Finished, MissingSessionLayer, RequestHead,
    RequestSession, RequireSession, ResponseHead, SessionHandle, SessionLayer, SignInRequired,
};
use crate::error::{Error, StoreError};

/// [`SessionLayer`] as actix-web middleware: `App::new().wrap(layer)`.
impl<S, B> Transform<S, ServiceRequest> for SessionLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddleware {
            inner: Rc::new(service),
            layer: self.clone(),
        }))
    }
}

/// The service [`SessionLayer`] wraps an application in.
pub struct SessionMiddleware<S> {
    inner: Rc<S>,
    layer: SessionLayer,
}

impl<S> std::fmt::Debug for SessionMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware").finish_non_exhaustive()
    }
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What the middleware answers.
type Answer<B> = Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for SessionMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let began = self.layer.begin_now(&request_head(&request));
        let state = match began {
            Began::Admitted(Admission::Proceed(active)) => {
                request.extensions_mut().insert(active.session());
                State::Handler {
                    future: self.inner.call(request),
                    active: Some(active),
                    layer: self.layer.clone(),
                }
            }
            Began::Admitted(answer) => State::Ready {
                response: Some(answered(request, answer)),
            },
            // A store's check that waits (Redis), or a device-binding
            // endpoint: the rest of the request in a box.
            Began::Waits(waiting) => {
                let inner = Rc::clone(&self.inner);
                let layer = self.layer.clone();
                State::Waiting {
                    future: Box::pin(async move {
                        let admission = {
                            let head = request_head(&request);
                            layer.begin_after(waiting, &head).await
                        };
                        let active = match admission {
                            Admission::Proceed(active) => active,
                            answer => return Ok(answered(request, answer)),
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

/// The response to a request the layer answers itself (refused, or a
/// device-binding endpoint's).
fn answered<B>(
    request: ServiceRequest,
    answer: Admission,
) -> ServiceResponse<EitherBody<B, BoxBody>> {
    match answer {
        Admission::Answer(mut head) => {
            let status = head.replace_status.take().unwrap_or(200);
            let body = head.replace_body.take();
            let response = request
                .into_response(replacement(status, body))
                .map_into_right_body();
            add_headers(response, head)
        }
        Admission::Refuse(status) => request
            .into_response(HttpResponse::new(status_code(status)))
            .map_into_right_body(),
        // Not an answer: a request admitted here has gone to its handler.
        Admission::Proceed(_) => request
            .into_response(HttpResponse::new(StatusCode::INTERNAL_SERVER_ERROR))
            .map_into_right_body(),
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionMiddleware`]: the handler's future,
    /// and the session's end once it is ready. A request that needs no
    /// waiting on the layer's side (a cached token, a memory store, no
    /// save) allocates no future of the layer's; one that waits (a Redis
    /// check, a seal, a device-binding endpoint) goes on in a box.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F, B> {
        /// The handler runs, the session in its request's extensions.
        Handler {
            #[pin]
            future: F,
            active: Option<ActiveRequest>,
            layer: SessionLayer,
        },
        /// The layer waits (before or after the handler).
        Waiting { future: LocalFuture<Answer<B>> },
        /// Answered at once.
        Ready { response: Option<ServiceResponse<EitherBody<B, BoxBody>>> },
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody + 'static,
{
    type Output = Answer<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let mut saving: LocalFuture<Answer<B>> = match state.as_mut().project() {
            StateProjection::Handler {
                future,
                active,
                layer,
            } => {
                let response = match future.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(response)) => response,
                    Poll::Ready(Err(error)) => {
                        state.set(State::Ready { response: None });
                        return Poll::Ready(Err(error));
                    }
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
                        return Poll::Ready(Ok(response.map_into_left_body()));
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
            // broken; an error rather than a panic.
            StateProjection::Ready { response } => {
                return Poll::Ready(response.take().ok_or_else(|| {
                    actix_web::error::ErrorInternalServerError(
                        "response future polled after completion",
                    )
                }));
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

/// The parts of the request the session layer reads, borrowed from it.
fn request_head(request: &ServiceRequest) -> RequestHead<'_> {
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
        host: text(&header::HOST).or_else(|| {
            unsafe_method
                .then(|| request.uri().authority().map(|a| a.as_str()))
                .flatten()
        }),
        origin: text(&header::ORIGIN),
        sec_fetch_site: text(&SEC_FETCH_SITE),
        // The raw Cookie headers, not actix-web's parsed cookies: those are
        // percent-decoded, which would let `%5F%5FHost-session` (settable by
        // a sibling domain) pass for `__Host-session`.
        cookies: headers
            .get_all(header::COOKIE)
            .map(|v| v.as_bytes())
            .collect(),
        path: request.path(),
        secure_session_id: text(&SEC_SECURE_SESSION_ID),
        secure_session_response: text(&SECURE_SESSION_RESPONSE),
    }
}

const SEC_SECURE_SESSION_ID: HeaderName = HeaderName::from_static("sec-secure-session-id");
const SECURE_SESSION_RESPONSE: HeaderName = HeaderName::from_static("secure-session-response");

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn apply<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    head: ResponseHead,
) -> ServiceResponse<EitherBody<B, BoxBody>> {
    let mut head = head;
    let response = match head.replace_status.take() {
        Some(status) => {
            let (request, _) = response.into_parts();
            ServiceResponse::new(request, replacement(status, head.replace_body.take()))
                .map_into_right_body()
        }
        None => response.map_into_left_body(),
    };
    add_headers(response, head)
}

/// A response of `status` with a JSON `body`, or none.
fn replacement(status: u16, body: Option<std::borrow::Cow<'static, str>>) -> HttpResponse {
    match body {
        Some(body) => HttpResponse::build(status_code(status))
            .content_type("application/json")
            .body(body.into_owned()),
        None => HttpResponse::new(status_code(status)),
    }
}

/// Adds the head's cookies and headers to `response`.
fn add_headers<B>(mut response: ServiceResponse<B>, head: ResponseHead) -> ServiceResponse<B> {
    // The values are complete `Set-Cookie` lines, written by `CookieConfig`.
    for set_cookie in head.set_cookies {
        match HeaderValue::try_from(set_cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => tracing::error!("a Set-Cookie value was not a valid header value"),
        }
    }
    if head.no_store {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    for (name, value) in head.headers {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                response
                    .headers_mut()
                    .append(HeaderName::from_static(header_name(name)), value);
            }
            Err(_) => tracing::error!(header = name, "a header value was not valid"),
        }
    }
    response
}

/// A header name the layer writes, in the lower case `HeaderName` needs.
fn header_name(name: &'static str) -> &'static str {
    match name {
        "Secure-Session-Registration" => "secure-session-registration",
        "Secure-Session-Challenge" => "secure-session-challenge",
        _ => "x-jwe-session-unknown",
    }
}

impl ResponseError for MissingSessionLayer {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// A 500 whose body says nothing of the application; the log line
    /// names the fix.
    fn error_response(&self) -> HttpResponse {
        error_response(self, 500)
    }
}

/// `?` in handlers: a library error answers with the status that fits it
/// ([`Error::http_status`]) and a JSON body that names only that status;
/// the error itself goes to the logs.
///
/// ```
/// use actix_web::{HttpResponse, ResponseError};
/// use jwe_session::SessionHandle;
///
/// async fn visit(session: SessionHandle) -> Result<HttpResponse, jwe_session::Error> {
///     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
///     session.insert("n", n)?;
///     Ok(HttpResponse::Ok().body(n.to_string()))
/// }
/// # let _ = actix_web::web::get().to(visit);
/// assert_eq!(jwe_session::Error::Config("bad".into()).error_response().status(), 500);
/// ```
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_code(self.http_status())
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self, self.http_status())
    }
}

/// `?` on [`SessionHandle::revoke_subject`] and the other store calls: 503.
impl ResponseError for StoreError {
    fn status_code(&self) -> StatusCode {
        status_code(self.http_status())
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self, self.http_status())
    }
}

fn error_response(error: &dyn std::error::Error, status: u16) -> HttpResponse {
    crate::error::log_returned(error, status);
    HttpResponse::build(status_code(status))
        .content_type("application/json")
        .body(super::public_body(status))
}

/// The request's session, its data as a `T` (see [`SessionHandle`]).
impl<T> FromRequest for SessionHandle<T>
where
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            request
                .session::<T>()
                .ok_or_else(|| MissingSessionLayer.into()),
        )
    }
}

/// Access to the session from an [`HttpRequest`] or a [`ServiceRequest`]
/// (in a middleware of the application's own, under the [`SessionLayer`]).
///
/// ```
/// use actix_web::HttpRequest;
/// use jwe_session::actix::SessionExt;
///
/// fn signed_in(request: &HttpRequest) -> bool {
///     request
///         .session::<jwe_session::SessionMap>()
///         .is_some_and(|session| session.subject().is_some())
/// }
/// ```
pub trait SessionExt {
    /// The request's session, its data as a `T` (a
    /// [`SessionMap`](crate::SessionMap) for the map form); `None` when no
    /// [`SessionLayer`] is on the route.
    fn session<T>(&self) -> Option<SessionHandle<T>>;
}

impl SessionExt for HttpRequest {
    fn session<T>(&self) -> Option<SessionHandle<T>> {
        self.extensions()
            .get::<RequestSession>()
            .map(RequestSession::handle)
    }
}

impl SessionExt for ServiceRequest {
    fn session<T>(&self) -> Option<SessionHandle<T>> {
        self.extensions()
            .get::<RequestSession>()
            .map(RequestSession::handle)
    }
}

/// 401 with a JSON body, or `303 See Other` to the login path.
impl ResponseError for SignInRequired {
    fn status_code(&self) -> StatusCode {
        if self.login_path().is_some() {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self.login_path() {
            Some(path) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, path))
                .finish(),
            None => HttpResponse::Unauthorized()
                .content_type("application/json")
                .body(super::public_body(401)),
        }
    }
}

/// A signed-in session, or the handler does not run (see
/// [`RequireSession`]). `Option<RequireSession<T>>` gives `None` when the
/// visitor is not signed in.
impl<T> FromRequest for RequireSession<T>
where
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(match request.session::<T>() {
            None => Err(MissingSessionLayer.into()),
            Some(handle) => RequireSession::from_handle(handle).map_err(Into::into),
        })
    }
}

/// [`CsrfGuard`] as actix-web middleware: `App::new().wrap(guard)`.
impl<S, B> Transform<S, ServiceRequest> for CsrfGuard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = CsrfGuardService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CsrfGuardService {
            inner: Rc::new(service),
            guard: self.clone(),
        }))
    }
}

/// The service [`CsrfGuard`] wraps an application in.
pub struct CsrfGuardService<S> {
    inner: Rc<S>,
    guard: CsrfGuard,
}

impl<S> std::fmt::Debug for CsrfGuardService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfGuardService").finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for CsrfGuardService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        if !self.guard.allows(&request_head(&request)) {
            let response = HttpResponse::new(StatusCode::FORBIDDEN);
            return Box::pin(ready(Ok(request
                .into_response(response)
                .map_into_right_body())));
        }
        let inner = Rc::clone(&self.inner);
        Box::pin(async move { Ok(inner.call(request).await?.map_into_left_body()) })
    }
}

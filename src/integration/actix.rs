//! actix-web integration (feature `actix`): a middleware, the
//! [`SessionHandle`] extractor, and [`SessionExt`] on requests.
//!
//! It behaves exactly like the axum integration: both are thin adapters
//! over [`SessionService`], which makes every decision.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpResponse};
//! use jwe_session::integration::{actix::SessionMiddleware, SessionHandle};
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{Key, KeyAlgorithm, Keyring, SessionMap};
//!
//! async fn count(session: SessionHandle<SessionMap>) -> HttpResponse {
//!     let n = session.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
//!     let _ = session.insert("n", n);
//!     HttpResponse::Ok().body(n.to_string())
//! }
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
//! let sessions = SessionMiddleware::new(keyring, Arc::new(MemoryStore::new()))?;
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

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    Admission, CsrfGuard, RequestHead, RequireSession, ResponseHead, SessionHandle, SessionService,
    SignInRequired,
};
use crate::error::{Error, StoreError};
use crate::session::SessionMap;

/// The session middleware: `App::new().wrap(SessionMiddleware::new(...)?)`.
///
/// It is the framework-independent [`SessionService`] itself:
/// `SessionMiddleware::new(keyring, store)` for the defaults, or
/// [`SessionService::builder`] for anything else. The keyring stays shared:
/// `keyring.rotate()` anywhere in the application takes effect for the next
/// request.
pub type SessionMiddleware<T = SessionMap> = SessionService<T>;

impl<S, B, T> Transform<S, ServiceRequest> for SessionService<T>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<S, T>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            inner: Rc::new(service),
            service: self.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps an application in.
pub struct SessionMiddlewareService<S, T> {
    inner: Rc<S>,
    service: SessionService<T>,
}

impl<S, T> std::fmt::Debug for SessionMiddlewareService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .finish_non_exhaustive()
    }
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B, T> Service<ServiceRequest> for SessionMiddlewareService<S, T>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let inner = Rc::clone(&self.inner);
        let service = self.service.clone();
        Box::pin(async move {
            let admission = {
                let head = request_head(&request);
                service.begin(&head).await
            };
            let active = match admission {
                Admission::Proceed(active) => active,
                Admission::Refuse(status) => {
                    let response = HttpResponse::new(status_code(status));
                    return Ok(request.into_response(response).map_into_right_body());
                }
            };
            request.extensions_mut().insert(active.handle().clone());
            let response = inner.call(request).await?;
            let head = service.finish(active).await;
            Ok(apply(response, head))
        })
    }
}

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The parts of the request the session layer reads, borrowed from it.
fn request_head(request: &ServiceRequest) -> RequestHead<'_> {
    let headers = request.headers();
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    RequestHead {
        method: request.method().as_str(),
        host: text(&header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str())),
        origin: text(&header::ORIGIN),
        sec_fetch_site: text(&SEC_FETCH_SITE),
        // The raw Cookie headers, not actix-web's parsed cookies: those are
        // percent-decoded, which would let `%5F%5FHost-session` (settable by
        // a sibling domain) pass for `__Host-session`.
        cookies: headers
            .get_all(header::COOKIE)
            .map(|v| v.as_bytes())
            .collect(),
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn apply<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    head: ResponseHead,
) -> ServiceResponse<EitherBody<B, BoxBody>> {
    let mut response = match head.replace_status {
        Some(status) => {
            let (request, _) = response.into_parts();
            let replacement = match head.replace_body {
                Some(body) => HttpResponse::build(status_code(status))
                    .content_type("application/json")
                    .body(body),
                None => HttpResponse::new(status_code(status)),
            };
            ServiceResponse::new(request, replacement).map_into_right_body()
        }
        None => response.map_into_left_body(),
    };
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
    response
}

/// The extractor's error when the middleware is missing.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionMiddleware;

impl std::fmt::Display for MissingSessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "jwe-session: no session on this request. Is the SessionMiddleware installed \
             (`.wrap(SessionMiddleware::new(...))`) on this scope, for the same data type?",
        )
    }
}

impl std::error::Error for MissingSessionMiddleware {}

impl ResponseError for MissingSessionMiddleware {
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
/// use jwe_session::integration::SessionHandle;
/// use jwe_session::SessionMap;
///
/// async fn visit(session: SessionHandle<SessionMap>) -> Result<HttpResponse, jwe_session::Error> {
///     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
///     session.insert("n", n)?;
///     Ok(HttpResponse::Ok().body(n.to_string()))
/// }
/// # let _ = actix_web::web::get().to(visit);
/// assert_eq!(jwe_session::Error::Destroyed.error_response().status(), 500);
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

impl<T: Send + 'static> FromRequest for SessionHandle<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            request
                .session::<T>()
                .ok_or_else(|| MissingSessionMiddleware.into()),
        )
    }
}

/// Access to the session from an [`HttpRequest`].
pub trait SessionExt {
    /// The request's session, when the [`SessionMiddleware`] for data type
    /// `T` is installed.
    fn session<T: Send + 'static>(&self) -> Option<SessionHandle<T>>;
}

impl SessionExt for HttpRequest {
    fn session<T: Send + 'static>(&self) -> Option<SessionHandle<T>> {
        self.extensions().get::<SessionHandle<T>>().cloned()
    }
}

impl SessionExt for ServiceRequest {
    fn session<T: Send + 'static>(&self) -> Option<SessionHandle<T>> {
        self.extensions().get::<SessionHandle<T>>().cloned()
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
impl<T: Send + 'static> FromRequest for RequireSession<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(match request.session::<T>() {
            None => Err(MissingSessionMiddleware.into()),
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

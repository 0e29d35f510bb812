//! What every web framework integration shares: reading the session from a
//! request, handing it to the handler, and writing the response's cookies.
//!
//! The adapters (`axum`, `actix`) only translate their framework's
//! request and response types to and from [`RequestHead`] and
//! [`ResponseHead`]; all decisions are made here, once.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cookie::{CookieConfig, IncomingCookies};
use crate::csrf::{CsrfConfig, CsrfRequest};
use crate::error::{Error, RejectionKind, SealError, StoreError};
use crate::keyring::{KeyState, Keyring};
use crate::revocation::RevocationStore;
use crate::session::{
    Flash, FlashLevel, SaveOutcome, Session, SessionConfig, SessionManager, SessionMap,
};
use crate::Clock;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;

/// The parts of a request the session layer reads.
#[derive(Debug, Clone, Default)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a str,
    /// The `Host` header.
    pub host: Option<&'a str>,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a str>,
    /// Every `Cookie` header value, raw.
    pub cookies: Vec<&'a [u8]>,
}

/// What the session layer adds to a response.
#[must_use = "the response must carry these cookies and status"]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// `Set-Cookie` values to append.
    pub set_cookies: Vec<String>,
    /// Whether to send `Cache-Control: no-store` (whenever a session cookie
    /// is set).
    pub no_store: bool,
    /// When set, the handler's response is replaced by this status (503
    /// when the revocation store is down, the configured status when the
    /// session is too large to seal, 500 when it could not be sealed).
    pub replace_status: Option<u16>,
    /// The JSON body of that replacement, when it has one (empty
    /// otherwise).
    pub replace_body: Option<&'static str>,
}

/// The start of a request: go on to the handler, or answer at once.
#[must_use = "a refused request must be answered with its status"]
#[derive(Debug)]
pub enum Admission<T> {
    /// Call the handler, with this session.
    Proceed(ActiveRequest<T>),
    /// Answer with this status and no body: 403 (CSRF) or 503 (revocation
    /// store down). The cookies are not touched.
    Refuse(u16),
}

/// A request in flight: the session the handler sees, and what is needed to
/// write the response.
#[derive(Debug)]
pub struct ActiveRequest<T> {
    handle: SessionHandle<T>,
    incoming: IncomingCookies,
    invalid: bool,
}

impl<T> ActiveRequest<T> {
    /// The handle to give the handler.
    pub fn handle(&self) -> &SessionHandle<T> {
        &self.handle
    }
}

/// A cheap, cloneable handle to the request's session, for handlers.
///
/// Every method takes a short lock and never holds it across an `await`.
pub struct SessionHandle<T> {
    session: Arc<Mutex<Session<T>>>,
    manager: Arc<SessionManager>,
    /// Where [`RequireSession`] sends a visitor who is not signed in.
    login_path: Option<Arc<str>>,
}

impl<T> Clone for SessionHandle<T> {
    fn clone(&self) -> Self {
        SessionHandle {
            session: Arc::clone(&self.session),
            manager: Arc::clone(&self.manager),
            login_path: self.login_path.clone(),
        }
    }
}

impl<T> fmt::Debug for SessionHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never block: the handle may be formatted inside `with`/`update`.
        match self.session.try_lock() {
            Ok(session) => fmt::Debug::fmt(&*session, f),
            Err(_) => f.write_str("SessionHandle(<locked>)"),
        }
    }
}

impl<T> SessionHandle<T> {
    fn lock(&self) -> MutexGuard<'_, Session<T>> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the session.
    pub fn with<R>(&self, f: impl FnOnce(&Session<T>) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the session (through [`Session`]'s own methods, which track
    /// what changed).
    pub fn update<R>(&self, f: impl FnOnce(&mut Session<T>) -> R) -> R {
        f(&mut self.lock())
    }

    /// A copy of the data.
    pub fn data(&self) -> T
    where
        T: Clone,
    {
        self.lock().data().clone()
    }

    /// Changes the data; the session is sealed again.
    pub fn update_data<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(self.lock().data_mut())
    }

    /// The session id.
    pub fn id(&self) -> String {
        self.lock().id().to_owned()
    }

    /// The subject (user), when signed in.
    pub fn subject(&self) -> Option<String> {
        self.lock().subject().map(str::to_owned)
    }

    /// A fresh authentication: a new id, the subject set, and a new
    /// lifetime (see [`Session::login`]).
    pub fn login(&self, sub: impl Into<String>) -> Result<(), Error> {
        self.lock().login(sub)
    }

    /// Sets the subject. At login use [`login`](SessionHandle::login), which
    /// also renews the id.
    pub fn set_subject(&self, sub: impl Into<String>) {
        self.lock().set_subject(sub);
    }

    /// Whether the request carried no valid session.
    pub fn is_new(&self) -> bool {
        self.lock().is_new()
    }

    /// The `kid` of the key that sealed the token the request carried.
    pub fn kid(&self) -> Option<String> {
        self.lock().kid().map(str::to_owned)
    }

    /// The state of that key.
    pub fn key_state(&self) -> Option<KeyState> {
        self.lock().key_state()
    }

    /// Whether the subject's sessions were marked stale since this
    /// session's data was saved ([`Session::is_stale`]): reload what the
    /// session copied from the database, and save.
    pub fn is_stale(&self) -> bool {
        self.lock().is_stale()
    }

    /// Says the data is current after a reload that changed nothing
    /// ([`Session::mark_refreshed`]).
    pub fn mark_refreshed(&self) {
        self.lock().mark_refreshed();
    }

    /// How long the session's next token would be, when it fits what the
    /// cookies carry; [`SealError::TooLarge`]
    /// when it does not ([`SessionManager::sealed_len`]). Check before
    /// answering when the session holds something of unbounded size.
    pub fn sealed_len(&self) -> Result<usize, Error>
    where
        T: Serialize,
    {
        self.manager.sealed_len(&self.lock())
    }

    /// Adds a flash message for the next request ([`Session::flash`]).
    pub fn flash(&self, level: FlashLevel, text: impl Into<String>) {
        self.lock().flash(level, text);
    }

    /// Takes the flash messages this request's cookie carried
    /// ([`Session::take_flashes`]): shown once, gone from the next response's
    /// cookie.
    pub fn take_flashes(&self) -> Vec<Flash> {
        self.lock().take_flashes()
    }

    /// Marks every session of `sub` stale, on every server sharing the
    /// store ([`SessionManager::mark_stale`]); for an administrator who
    /// changed another user's role.
    pub async fn mark_stale(&self, sub: &str) -> Result<(), StoreError> {
        self.manager.mark_stale(sub).await
    }

    /// A new session id, the old one revoked (after a change of privilege;
    /// at login use [`login`](SessionHandle::login)).
    pub fn renew(&self) -> Result<(), Error> {
        self.lock().renew()
    }

    /// Ends the session: revoked, and the cookie removed (logout).
    pub fn destroy(&self) {
        self.lock().destroy();
    }

    /// Revokes every session of this session's subject that exists now,
    /// this one included (log out everywhere), on every server sharing the
    /// store. Does nothing when signed out.
    pub async fn revoke_subject(&self) -> Result<(), StoreError> {
        let Some(sub) = self.subject() else {
            return Ok(());
        };
        self.manager.revoke_subject(&sub).await?;
        self.destroy();
        Ok(())
    }

    /// The manager behind the session (its keyring, store, configuration).
    pub fn manager(&self) -> &Arc<SessionManager> {
        &self.manager
    }
}

/// A handle that exists only for a signed-in visitor (a session with a
/// subject): the extractor for "must be signed in" routes, in both
/// frameworks. A visitor who is not signed in is answered `401` (a JSON
/// body), or `303 See Other` to the service's
/// [`login_path`](SessionServiceBuilder::login_path) when one is set; the
/// handler does not run. Extract `Option<RequireSession<T>>` for a page that
/// works either way: `None` when not signed in.
///
/// It dereferences to the [`SessionHandle`].
///
/// ```
/// use jwe_session::integration::RequireSession;
/// use jwe_session::SessionMap;
///
/// async fn account(session: RequireSession<SessionMap>) -> String {
///     format!("signed in as {}", session.subject().unwrap_or_default())
/// }
///
/// async fn home(session: Option<RequireSession<SessionMap>>) -> String {
///     match session {
///         Some(session) => format!("hello, {}", session.subject().unwrap_or_default()),
///         None => "hello, stranger".to_owned(),
///     }
/// }
/// # #[cfg(feature = "axum")]
/// # let _: axum::routing::MethodRouter = axum::routing::get(account).post(home);
/// ```
pub struct RequireSession<T>(pub SessionHandle<T>);

impl<T> Clone for RequireSession<T> {
    fn clone(&self) -> Self {
        RequireSession(self.0.clone())
    }
}

impl<T> fmt::Debug for RequireSession<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequireSession").field(&self.0).finish()
    }
}

impl<T> std::ops::Deref for RequireSession<T> {
    type Target = SessionHandle<T>;

    fn deref(&self) -> &SessionHandle<T> {
        &self.0
    }
}

impl<T> RequireSession<T> {
    /// The handle, when the request's session is signed in; otherwise how
    /// to refuse it.
    pub fn from_handle(handle: SessionHandle<T>) -> Result<Self, SignInRequired> {
        let signed_in =
            handle.with(|session| session.subject().is_some() && !session.is_destroyed());
        if signed_in {
            Ok(RequireSession(handle))
        } else {
            Err(SignInRequired {
                login_path: handle.login_path.clone(),
            })
        }
    }

    /// The handle.
    pub fn into_inner(self) -> SessionHandle<T> {
        self.0
    }
}

/// [`RequireSession`]'s refusal: 401, or a redirect to the login path.
#[derive(Debug, Clone)]
pub struct SignInRequired {
    login_path: Option<Arc<str>>,
}

impl SignInRequired {
    /// Where to send the visitor (`303 See Other`), when the service has a
    /// login path; otherwise the answer is `401`.
    pub fn login_path(&self) -> Option<&str> {
        self.login_path.as_deref()
    }
}

impl fmt::Display for SignInRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this route requires a signed-in session")
    }
}

impl std::error::Error for SignInRequired {}

impl SessionHandle<SessionMap> {
    /// The value under `key`.
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>, Error> {
        self.lock().get(key)
    }

    /// Stores `value` under `key`.
    pub fn insert<V: Serialize>(&self, key: impl Into<String>, value: V) -> Result<(), Error> {
        self.lock().insert(key, value)
    }

    /// Removes the value under `key`.
    pub fn remove(&self, key: &str) -> Option<serde_json::Value> {
        self.lock().remove(key)
    }
}

/// The framework-independent session service: one per application, shared
/// by every request.
pub struct SessionService<T = SessionMap> {
    // One reference count: the adapters clone the service for every request.
    shared: Arc<Shared>,
    _data: PhantomData<fn() -> T>,
}

impl<T> Clone for SessionService<T> {
    fn clone(&self) -> Self {
        SessionService {
            shared: Arc::clone(&self.shared),
            _data: PhantomData,
        }
    }
}

impl<T> fmt::Debug for SessionService<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("manager", &self.shared.manager)
            .field("cookies", &self.shared.cookies)
            .field("csrf", &self.shared.csrf)
            .finish()
    }
}

/// What a service's clones share.
struct Shared {
    manager: Arc<SessionManager>,
    cookies: CookieConfig,
    csrf: Option<CsrfConfig>,
    login_path: Option<Arc<str>>,
    too_large_status: u16,
}

/// Builds a [`SessionService`] (and through it the framework layers).
pub struct SessionServiceBuilder {
    keyring: Arc<Keyring>,
    store: Arc<dyn RevocationStore>,
    config: SessionConfig,
    cookies: CookieConfig,
    csrf: Option<CsrfConfig>,
    clock: Option<Arc<dyn Clock>>,
    login_path: Option<Arc<str>>,
    too_large_status: u16,
}

impl fmt::Debug for SessionServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionServiceBuilder")
            .field("config", &self.config)
            .field("cookies", &self.cookies)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl SessionServiceBuilder {
    /// The session lifetimes and rules (default [`SessionConfig::new`]).
    /// Unless its purpose was set with [`SessionConfig::with_purpose`], the
    /// cookie name is used.
    #[must_use]
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// The cookie attributes (default [`CookieConfig::new`]).
    #[must_use]
    pub fn cookies(mut self, cookies: CookieConfig) -> Self {
        self.cookies = cookies;
        self
    }

    /// The CSRF defence for unsafe methods (default: on, same host only;
    /// `None` turns it off).
    #[must_use]
    pub fn csrf(mut self, csrf: Option<CsrfConfig>) -> Self {
        self.csrf = csrf;
        self
    }

    /// Where [`RequireSession`] redirects (`303 See Other`) a visitor who
    /// is not signed in, instead of answering 401: a path on this site,
    /// such as `"/login"`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwe_session::integration::SessionService;
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionMap};
    /// # let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    /// let service = SessionService::builder(keyring, Arc::new(MemoryStore::new()))
    ///     .login_path("/login")
    ///     .build::<SessionMap>()?;
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    #[must_use]
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = Some(Arc::from(path.into()));
        self
    }

    /// The status that replaces a response whose session is too large for
    /// its cookies (default 413, with `{"error":"session too large"}`): the
    /// handler's change is not kept, the client keeps its previous cookie,
    /// and the log says why. A handler that wants to answer itself checks
    /// first with [`SessionHandle::sealed_len`]. A status from 400 to 599.
    #[must_use]
    pub fn too_large_status(mut self, status: u16) -> Self {
        self.too_large_status = status;
        self
    }

    /// Reads the time from `clock` (for tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the configuration and builds the service. A cookie
    /// configuration that breaks the `__Host-` rules is refused here, at
    /// start-up.
    pub fn build<T>(self) -> Result<SessionService<T>, Error> {
        self.cookies
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        if !(400..=599).contains(&self.too_large_status) {
            return Err(Error::Config(
                "too_large_status must be a status from 400 to 599".into(),
            ));
        }
        if let Some(path) = &self.login_path {
            // A path on this site: never an open redirect, never a header
            // injection.
            let valid = path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.bytes().all(|b| b.is_ascii_graphic());
            if !valid {
                return Err(Error::Config(
                    "login_path must be a path on this site, starting with a single '/'".into(),
                ));
            }
        }
        let mut config = self.config;
        if !config.purpose_is_set() {
            config = config.with_purpose(self.cookies.name());
        }
        let max_len = config.max_token_len().min(self.cookies.max_token_len());
        config = config.with_max_token_len(max_len);
        let mut manager = SessionManager::new(self.keyring, self.store, config)?;
        if let Some(clock) = self.clock {
            manager = manager.with_clock(clock);
        }
        // The site's scheme from the cookie: a `Secure` cookie means an
        // https site, whose Origin must be https too.
        let csrf = self.csrf.map(|csrf| csrf.for_cookies(&self.cookies));
        Ok(SessionService {
            shared: Arc::new(Shared {
                manager: Arc::new(manager),
                cookies: self.cookies,
                csrf,
                login_path: self.login_path,
                too_large_status: self.too_large_status,
            }),
            _data: PhantomData,
        })
    }
}

impl SessionService<SessionMap> {
    /// A service with the defaults: [`SessionMap`] data, 30 min idle and
    /// 12 h absolute lifetimes, `__Host-session` cookies, CSRF defence on.
    pub fn new(keyring: Arc<Keyring>, store: Arc<dyn RevocationStore>) -> Result<Self, Error> {
        SessionService::builder(keyring, store).build()
    }

    /// Starts building a service over `keyring`, keeping revocations in
    /// `store`.
    pub fn builder(
        keyring: Arc<Keyring>,
        store: Arc<dyn RevocationStore>,
    ) -> SessionServiceBuilder {
        SessionServiceBuilder {
            keyring,
            store,
            config: SessionConfig::new(),
            cookies: CookieConfig::new(),
            csrf: Some(CsrfConfig::same_host()),
            clock: None,
            login_path: None,
            too_large_status: 413,
        }
    }
}

impl<T> SessionService<T>
where
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    /// The session manager.
    pub fn manager(&self) -> &Arc<SessionManager> {
        &self.shared.manager
    }

    /// The cookie configuration.
    pub fn cookies(&self) -> &CookieConfig {
        &self.shared.cookies
    }

    /// Reads the request: the CSRF check, then the session from its
    /// cookies. An invalid, expired or revoked cookie gives a new empty
    /// session (and a removal cookie on the response); a revocation store
    /// that is down refuses the request with 503.
    pub async fn begin(&self, request: &RequestHead<'_>) -> Admission<T> {
        let incoming = self.shared.cookies.read(request.cookies.iter().copied());
        // Only a request that carries the session cookie can ride on the
        // session: one without it (a CORS API under the same router, a
        // webhook) is not checked here. `CsrfGuard` checks routes
        // regardless of cookies.
        let carries_session = incoming.present().next().is_some();
        if let (Some(csrf), true) = (&self.shared.csrf, carries_session) {
            if !csrf_allows(csrf, request) {
                return Admission::Refuse(403);
            }
        }
        let mut invalid = incoming.is_malformed();
        if invalid {
            tracing::info!(
                kind = "malformed",
                reason = "session cookies do not form a token",
                "session rejected"
            );
        }
        let mut session = None;
        if let Some(token) = incoming.token() {
            match self.shared.manager.load_cached::<T>(token).await {
                Ok(loaded) => session = Some(loaded),
                Err(rejection) if rejection.kind() == RejectionKind::StoreUnavailable => {
                    return Admission::Refuse(503);
                }
                Err(_) => invalid = true, // logged by the manager
            }
        }
        let session = match session {
            Some(session) => session,
            None => self.shared.manager.start(T::default()),
        };
        Admission::Proceed(ActiveRequest {
            handle: SessionHandle {
                session: Arc::new(Mutex::new(session)),
                manager: Arc::clone(&self.shared.manager),
                login_path: self.shared.login_path.clone(),
            },
            incoming,
            invalid,
        })
    }

    /// Ends the request: seals the session again only when needed, records
    /// revocations, and says which cookies to write.
    pub async fn finish(&self, request: ActiveRequest<T>) -> ResponseHead {
        let ActiveRequest {
            handle,
            incoming,
            invalid,
        } = request;
        // The handler may keep clones of the handle: take the session out
        // and leave a detached stand-in, whose changes are never saved.
        let mut session = std::mem::replace(&mut *handle.lock(), Session::detached(T::default()));
        let destroyed = session.is_destroyed();
        let now = self.shared.manager.now();
        let saved = self.shared.manager.save_at(&mut session, now).await;
        let replaced = invalid
            || destroyed
            || matches!(saved, Ok(SaveOutcome::Seal { .. } | SaveOutcome::Remove));
        if let (true, Some(token)) = (replaced, incoming.token()) {
            // The response replaces or removes this token: the client will
            // not send it again.
            self.shared.manager.forget_token(token);
        }
        match saved {
            Ok(SaveOutcome::Seal { token, expires, .. }) => {
                let max_age = expires.duration_since(now).unwrap_or(Duration::ZERO);
                match self.shared.cookies.write(&token, max_age, &incoming) {
                    Ok(set_cookies) => ResponseHead::setting(set_cookies),
                    Err(too_large) => {
                        // The manager seals no token longer than the cookies
                        // carry (the builder sets that limit); kept as a guard.
                        tracing::error!(error = %too_large, "session too large for its cookies; not sent");
                        ResponseHead::status(500)
                    }
                }
            }
            Ok(SaveOutcome::Remove) => ResponseHead::setting(self.shared.cookies.remove(&incoming)),
            Ok(_) if invalid => ResponseHead::setting(self.shared.cookies.remove(&incoming)),
            Ok(_) => ResponseHead::default(),
            Err(Error::Store(error)) => {
                tracing::error!(error = %error, "revocation store unavailable while saving the session");
                // A logout still clears the cookie, even though its
                // revocation could not be recorded.
                let mut head = if destroyed {
                    ResponseHead::setting(self.shared.cookies.remove(&incoming))
                } else {
                    ResponseHead::default()
                };
                head.replace_status = Some(503);
                head
            }
            Err(Error::Seal(SealError::TooLarge { len, max })) => {
                let status = self.shared.too_large_status;
                tracing::error!(
                    len,
                    max,
                    status,
                    "session too large for its cookies: the handler's response is replaced, its change to the session is not kept, and the client keeps its previous session cookie (check with SessionHandle::sealed_len before answering)"
                );
                ResponseHead {
                    replace_status: Some(status),
                    replace_body: Some(public_body(status)),
                    ..ResponseHead::default()
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "could not save the session");
                ResponseHead::status(500)
            }
        }
    }
}

impl ResponseHead {
    /// Writes these session cookies, with `Cache-Control: no-store`.
    fn setting(set_cookies: Vec<String>) -> Self {
        ResponseHead {
            set_cookies,
            no_store: true,
            replace_status: None,
            replace_body: None,
        }
    }

    /// Replaces the response with this status, cookies untouched.
    fn status(status: u16) -> Self {
        ResponseHead {
            replace_status: Some(status),
            ..ResponseHead::default()
        }
    }
}

/// The body of an error answered to a client: a JSON object naming only
/// the status, never the error's details (those go to the logs).
pub(crate) fn public_body(status: u16) -> &'static str {
    match status {
        401 => r#"{"error":"unauthorized"}"#,
        413 => r#"{"error":"session too large"}"#,
        503 => r#"{"error":"service unavailable"}"#,
        _ => r#"{"error":"internal server error"}"#,
    }
}

/// The CSRF check of one request, logged when it refuses.
fn csrf_allows(csrf: &CsrfConfig, request: &RequestHead<'_>) -> bool {
    let check = csrf.check(&CsrfRequest {
        method: request.method,
        host: request.host,
        origin: request.origin,
        sec_fetch_site: request.sec_fetch_site,
    });
    match check {
        Ok(()) => true,
        Err(reason) => {
            tracing::info!(reason = %reason, method = request.method, "request refused by the CSRF defence");
            false
        }
    }
}

/// The CSRF check on its own, for routes that want it whatever cookies a
/// request carries (the session layer checks only requests that carry the
/// session cookie). Unsafe methods from another site are answered `403`
/// and never reach the handler. The same value is an axum `Layer` and an
/// actix-web middleware (`wrap`).
///
/// ```
/// use jwe_session::csrf::CsrfConfig;
/// use jwe_session::integration::CsrfGuard;
///
/// let guard = CsrfGuard::new(CsrfConfig::same_host());
/// # #[cfg(feature = "axum")]
/// let app: axum::Router = axum::Router::new()
///     .route("/transfer", axum::routing::post(|| async { "done" }))
///     .layer(guard.clone());
/// ```
#[derive(Debug, Clone)]
pub struct CsrfGuard {
    csrf: Arc<CsrfConfig>,
}

impl CsrfGuard {
    /// A guard applying `csrf` to every unsafe request.
    pub fn new(csrf: CsrfConfig) -> CsrfGuard {
        CsrfGuard {
            csrf: Arc::new(csrf),
        }
    }

    /// Whether the request may go on (safe methods always may).
    pub fn allows(&self, request: &RequestHead<'_>) -> bool {
        csrf_allows(&self.csrf, request)
    }
}

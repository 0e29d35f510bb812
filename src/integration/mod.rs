//! The web framework integrations: one [`SessionLayer`] for axum (a tower
//! `Layer`) and actix-web (a middleware for `wrap`), the [`SessionHandle`]
//! and [`RequireSession`] extractors, and [`CsrfGuard`].
//!
//! The layer keeps each request's session data untyped: every handler
//! names the type it wants (`SessionHandle<Cart>`, `SessionHandle` for a
//! [`SessionMap`]) and gets it decoded, so the layer and the extractors can
//! never disagree about it. Data that does not decode as the type a
//! handler asks for (a type changed between deployments, two routes that
//! disagree) is not an error: the handler sees the type's `Default`, the
//! mismatch is logged at `warn`, and the stored data is kept unless the
//! handler changes it.
//!
//! The adapters (`axum`, `actix`) only translate their framework's request
//! and response types; all decisions are made here, once.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cookie::{CookieConfig, IncomingCookies};
use crate::csrf::{CsrfConfig, CsrfRequest};
use crate::error::{Error, Rejection, RejectionKind, SealError, StoreError};
use crate::keyring::{KeyState, Keyring};
use crate::revocation::IntoRevocationStore;
use crate::session::{
    Flash, FlashLevel, Known, LoadStep, PendingLoad, SaveOutcome, Session, SessionConfig,
    SessionManager, SessionMap,
};
use crate::Clock;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
mod data;
#[cfg(feature = "dbsc")]
mod dbsc;

use data::LayerData;

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
    /// The path of the request's URI, without its query (the layer answers
    /// its device-binding endpoints by path).
    pub path: &'a str,
    /// The `Sec-Secure-Session-Id` header (device-bound sessions).
    pub secure_session_id: Option<&'a str>,
    /// The `Secure-Session-Response` header (device-bound sessions).
    pub secure_session_response: Option<&'a str>,
}

/// What the session layer adds to a response.
#[must_use = "the response must carry these cookies and status"]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    pub replace_body: Option<Cow<'static, str>>,
    /// Other headers to add (device-bound sessions:
    /// `Secure-Session-Registration`, `Secure-Session-Challenge`).
    pub headers: Vec<(&'static str, String)>,
}

/// The start of a request: go on to the handler, or answer at once.
#[must_use = "a refused request must be answered with its status"]
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission {
    /// Call the handler, with this session.
    Proceed(ActiveRequest),
    /// Answer with this status and no body: 403 (CSRF) or 503 (revocation
    /// store down). The cookies are not touched.
    Refuse(u16),
    /// The layer answers the request itself (its device-binding
    /// endpoints): a response of this head alone, its status from
    /// `replace_status`, its body (JSON) from `replace_body`.
    Answer(ResponseHead),
}

/// How far [`SessionLayer::begin_now`] got without waiting.
pub(crate) enum Began {
    /// The whole admission.
    Admitted(Admission),
    /// The rest waits ([`SessionLayer::begin_after`]).
    Waits(Waiting),
}

/// An admission that waits, holding what it has done so far (owned, so
/// that an adapter can box it with the request).
pub(crate) struct Waiting(WaitingFor);

enum WaitingFor {
    /// A device-binding endpoint, answered by the layer itself.
    #[cfg(feature = "dbsc")]
    Endpoint,
    /// The token is verified and checked; the store's check waits.
    Store {
        pending: PendingLoad<'static, LayerData>,
        incoming: IncomingCookies,
        invalid: bool,
    },
}

/// How far [`SessionLayer::finish_now`] got without waiting.
// Returned once and matched at once: a box for the larger variant would
// be one more allocation on the save's path, which boxes its future anyway.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished {
    /// The whole end of the request.
    Done(ResponseHead),
    /// A save (a seal, a revocation to record) waits
    /// ([`SessionLayer::finish_save`]).
    Save(Ending),
}

/// A request's end waiting for its session's save.
pub(crate) struct Ending {
    session: Session<LayerData>,
    state: EndState,
}

/// What a request's end needs besides its session.
struct EndState {
    now: SystemTime,
    incoming: IncomingCookies,
    invalid: bool,
    destroyed: bool,
    #[cfg(feature = "dbsc")]
    logged_in: bool,
    #[cfg(feature = "dbsc")]
    bound: dbsc::BoundCheck,
    #[cfg(feature = "dbsc")]
    bound_present: bool,
}

/// A request in flight: the session the handler sees, and what is needed to
/// write the response.
#[derive(Debug)]
pub struct ActiveRequest {
    cell: RequestSession,
    incoming: IncomingCookies,
    invalid: bool,
    /// The handler sees a stand-in session, saved only at a login or a
    /// logout: the request's cookie is a token just replaced, or a bound
    /// session's without its bound cookie, and must not be overwritten.
    standin: bool,
    /// What the request's bound cookie said (device-bound sessions).
    #[cfg(feature = "dbsc")]
    bound: dbsc::BoundCheck,
    /// The request's own cookies are needed again to answer (the bound
    /// cookie's removal at logout).
    #[cfg(feature = "dbsc")]
    bound_present: bool,
}

impl ActiveRequest {
    /// What the adapters put in the request's extensions, for the
    /// extractors.
    pub(crate) fn session(&self) -> RequestSession {
        self.cell.clone()
    }

    /// A handle to the request's session, its data as a `T`, for the
    /// handler.
    pub fn handle<T>(&self) -> SessionHandle<T> {
        self.cell.handle()
    }
}

/// The request's session as the layer holds it, in the request's
/// extensions; the extractors make typed handles of it.
#[derive(Clone)]
pub(crate) struct RequestSession(Arc<Cell>);

impl fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestSession")
    }
}

struct Cell {
    session: Mutex<Session<LayerData>>,
    manager: Arc<SessionManager>,
    /// Where [`RequireSession`] sends a visitor who is not signed in.
    login_path: Option<Arc<str>>,
}

impl RequestSession {
    /// The session, locked.
    fn lock(&self) -> MutexGuard<'_, Session<LayerData>> {
        self.0
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A handle showing the data as a `T`.
    pub(crate) fn handle<T>(&self) -> SessionHandle<T> {
        SessionHandle {
            cell: Arc::clone(&self.0),
            _data: std::marker::PhantomData,
        }
    }
}

/// The request's session, for handlers: the extractor in both frameworks,
/// showing the session's data as a `T` (by default a [`SessionMap`]).
///
/// Cheap to clone; every method takes a short lock and never holds it
/// across an `await`. Any `T` that is `Serialize + DeserializeOwned +
/// Default + Send + 'static` works under the same [`SessionLayer`]: the
/// layer keeps the data untyped, and each handle decodes the type it names
/// (once per request: after that it is kept as that type). Data that does
/// not decode as a `T` shows as `T::default()`, logged at `warn`, and is
/// kept unless the handler changes it.
///
/// ```
/// use jwe_session::SessionHandle;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Cart {
///     items: Vec<String>,
/// }
///
/// async fn add(cart: SessionHandle<Cart>) -> String {
///     cart.update_data(|cart| cart.items.push("book".into()));
///     cart.with_data(|cart| cart.items.len()).to_string()
/// }
///
/// async fn visits(session: SessionHandle) -> Result<String, jwe_session::Error> {
///     let n: u64 = session.get("visits")?.unwrap_or(0) + 1;
///     session.insert("visits", n)?;
///     Ok(n.to_string())
/// }
/// # #[cfg(feature = "axum")]
/// # let _: axum::routing::MethodRouter = axum::routing::post(add).get(visits);
/// ```
pub struct SessionHandle<T = SessionMap> {
    cell: Arc<Cell>,
    _data: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for SessionHandle<T> {
    fn clone(&self) -> Self {
        SessionHandle {
            cell: Arc::clone(&self.cell),
            _data: std::marker::PhantomData,
        }
    }
}

impl<T> fmt::Debug for SessionHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never block: the handle may be formatted inside `with`/`update`.
        match self.cell.session.try_lock() {
            Ok(session) => fmt::Debug::fmt(&*session, f),
            Err(_) => f.write_str("SessionHandle(<locked>)"),
        }
    }
}

impl<T> SessionHandle<T> {
    fn lock(&self) -> MutexGuard<'_, Session<LayerData>> {
        self.cell
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session id (empty until the session is first sealed, and after
    /// a [`login`](SessionHandle::login) or [`renew`](SessionHandle::renew)
    /// in this request).
    pub fn id(&self) -> String {
        self.lock().id().to_owned()
    }

    /// The subject (user), when signed in.
    pub fn subject(&self) -> Option<String> {
        self.lock().subject().map(str::to_owned)
    }

    /// A fresh authentication: a new id, the subject set, and a new
    /// lifetime. It cannot fail: the new id is drawn when the session is
    /// sealed. On a session [destroyed](SessionHandle::destroy) in this
    /// request it does nothing (logged at `warn`).
    pub fn login(&self, sub: impl Into<String>) {
        self.lock().login(sub);
    }

    /// Sets the subject. At login use [`login`](SessionHandle::login), which
    /// also renews the id.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn set_subject(&self, sub: impl Into<String>) {
        self.lock().set_subject(sub);
    }

    /// Whether the request carried no valid session.
    pub fn is_new(&self) -> bool {
        self.lock().is_new()
    }

    /// When the session began: its login, or its first seal.
    pub fn created(&self) -> SystemTime {
        self.lock().created()
    }

    /// The idle deadline of the token the request carried (a response that
    /// seals the session again moves it).
    pub fn expires(&self) -> SystemTime {
        self.lock().expires()
    }

    /// The absolute deadline: no re-issue ever moves it (a login starts a
    /// new one).
    pub fn absolute_deadline(&self) -> SystemTime {
        self.lock().absolute_deadline()
    }

    /// Why the response will carry a new session cookie, as things stand:
    /// `"changed"`, `"renewed"`, `"key_not_primary"` (re-issue after a
    /// rotation), `"idle_half_life"`, ...; `None` when the client's cookie
    /// stays as it is. For diagnostics pages and logs.
    ///
    /// ```
    /// use jwe_session::SessionHandle;
    ///
    /// async fn page(session: SessionHandle) -> String {
    ///     match session.reissue_reason() {
    ///         Some(reason) => format!("a new cookie follows ({reason})"),
    ///         None => "your cookie stays".to_owned(),
    ///     }
    /// }
    /// # #[cfg(feature = "axum")]
    /// # let _: axum::routing::MethodRouter = axum::routing::get(page);
    /// ```
    pub fn reissue_reason(&self) -> Option<&'static str> {
        let manager = &self.cell.manager;
        let now = manager.now();
        self.lock()
            .reseal_reason_at(now, manager.config())
            .map(|reason| reason.as_str())
    }

    /// Whether the session is bound to the device it is used from (Device
    /// Bound Session Credentials, feature `dbsc`): the browser registered a
    /// key, and this request carried the short-lived bound cookie only
    /// that device can renew.
    pub fn is_bound(&self) -> bool {
        self.lock().binding().is_some()
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
    /// session's data was saved (see [`SessionHandle::mark_stale`]): reload what the
    /// session copied from the database, and save.
    pub fn is_stale(&self) -> bool {
        self.lock().is_stale()
    }

    /// Says the data is current after a reload that changed nothing
    /// (clears [`is_stale`](SessionHandle::is_stale) for this session).
    pub fn mark_refreshed(&self) {
        self.lock().mark_refreshed();
    }

    /// How long the session's next token would be, when it fits what the
    /// cookies carry; [`SealError::TooLarge`] when it does not
    /// (the session's data, subject and flash messages, sealed as the
    /// response would). Check before answering when the
    /// session holds something of unbounded size.
    ///
    /// ```
    /// use jwe_session::{Error, SessionHandle};
    ///
    /// async fn save_note(session: SessionHandle, note: String) -> Result<&'static str, Error> {
    ///     let before: Option<String> = session.get("note")?;
    ///     session.insert("note", &note)?;
    ///     if session.sealed_len().is_err() {
    ///         // Too large for the cookies: put the old note back, say so.
    ///         match before {
    ///             Some(old) => session.insert("note", old)?,
    ///             None => drop(session.remove("note")),
    ///         }
    ///         return Ok("that note is too long to keep");
    ///     }
    ///     Ok("saved")
    /// }
    /// # #[cfg(feature = "axum")]
    /// # let _: axum::routing::MethodRouter = axum::routing::post(save_note);
    /// ```
    pub fn sealed_len(&self) -> Result<usize, Error> {
        self.cell.manager.sealed_len(&self.lock())
    }

    /// Adds a flash message for the next request that reads them (after a
    /// redirect, typically). It travels sealed in the token beside the data,
    /// so it needs no server-side storage; unread messages stay until read,
    /// or until the session ends.
    pub fn flash(&self, level: FlashLevel, text: impl Into<String>) {
        self.lock().flash(level, text);
    }

    /// Takes the flash messages this request's cookie carried, oldest
    /// first: shown once, gone from the next response's cookie. Messages
    /// added in this request are for the next one, not here.
    pub fn take_flashes(&self) -> Vec<Flash> {
        self.lock().take_flashes()
    }

    /// Marks every session of `sub` stale, on every server sharing the
    /// store: each loads with [`is_stale`](SessionHandle::is_stale) set until
    /// its data is saved again; for an administrator who
    /// changed another user's role.
    pub async fn mark_stale(&self, sub: &str) -> Result<(), StoreError> {
        self.cell.manager.mark_stale(sub).await
    }

    /// A new session id, the old one revoked (after a change of privilege;
    /// at login use [`login`](SessionHandle::login)). It cannot fail.
    pub fn renew(&self) {
        self.lock().renew();
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
        self.cell.manager.revoke_subject(&sub).await?;
        self.destroy();
        Ok(())
    }

    /// The manager behind the session (its keyring, store, configuration).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn manager(&self) -> &Arc<SessionManager> {
        &self.cell.manager
    }

    fn signed_in(&self) -> bool {
        let session = self.lock();
        session.subject().is_some() && !session.is_destroyed()
    }
}

impl<T> SessionHandle<T>
where
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    /// Runs `f` on the session with its data as a `T`: decoded on first
    /// use, then kept as a `T`. When the data does not decode, `f` sees
    /// `T::default()`, and the data stored is kept unless `f` changes it.
    fn access<R>(&self, f: impl FnOnce(&mut Session<T>) -> R) -> R {
        let mut guard = self.lock();
        let session = std::mem::replace(&mut *guard, Session::detached(LayerData::Empty));
        let mut kept = None;
        let mut session = session.map_data(|data| {
            data.take_as::<T>().unwrap_or_else(|original| {
                kept = Some(original);
                T::default()
            })
        });
        let earlier = session.take_data_changed();
        let result = f(&mut session);
        let changed = session.take_data_changed();
        session.restore_data_changed(earlier || changed);
        *guard = session.map_data(|data| match kept {
            Some(original) if !changed => original,
            _ => LayerData::typed(data),
        });
        result
    }

    /// Reads the session, its data as a `T`.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Session<T>) -> R) -> R {
        self.access(|session| f(session))
    }

    /// Changes the session (through [`Session`]'s own methods, which track
    /// what changed).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Session<T>) -> R) -> R {
        self.access(f)
    }

    /// Reads the data.
    pub fn with_data<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.access(|session| f(session.data()))
    }

    /// A copy of the data.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn data(&self) -> T
    where
        T: Clone,
    {
        self.with_data(T::clone)
    }

    /// Changes the data; the session is sealed again.
    pub fn update_data<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.access(|session| f(session.data_mut()))
    }

    /// Replaces the data; the session is sealed again.
    pub fn set_data(&self, data: T) {
        self.access(|session| session.set(data));
    }
}

/// A handle that exists only for a signed-in visitor (a session with a
/// subject): the extractor for "must be signed in" routes, in both
/// frameworks. A visitor who is not signed in is answered `401` (a JSON
/// body), or `303 See Other` to the layer's
/// [`login_path`](SessionLayerBuilder::login_path) when one is set; the
/// handler does not run. Extract `Option<RequireSession<T>>` for a page that
/// works either way: `None` when not signed in.
///
/// It dereferences to the [`SessionHandle`].
///
/// ```
/// use jwe_session::RequireSession;
///
/// async fn account(session: RequireSession) -> String {
///     format!("signed in as {}", session.subject().unwrap_or_default())
/// }
///
/// async fn home(session: Option<RequireSession>) -> String {
///     match session {
///         Some(session) => format!("hello, {}", session.subject().unwrap_or_default()),
///         None => "hello, stranger".to_owned(),
///     }
/// }
/// # #[cfg(feature = "axum")]
/// # let _: axum::routing::MethodRouter = axum::routing::get(account).post(home);
/// ```
pub struct RequireSession<T = SessionMap>(pub SessionHandle<T>);

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
    fn from_handle(handle: SessionHandle<T>) -> Result<Self, SignInRequired> {
        if handle.signed_in() {
            Ok(RequireSession(handle))
        } else {
            Err(SignInRequired {
                login_path: handle.cell.login_path.clone(),
            })
        }
    }

    /// The handle.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn into_inner(self) -> SessionHandle<T> {
        self.0
    }
}

/// [`RequireSession`]'s refusal: 401, or a redirect to the login path.
#[derive(Debug, Clone)]
pub struct SignInRequired {
    login_path: Option<Arc<str>>,
}

impl SignInRequired {
    /// Where to send the visitor (`303 See Other`), when the layer has a
    /// login path; otherwise the answer is `401`.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn login_path(&self) -> Option<&str> {
        self.login_path.as_deref()
    }
}

impl fmt::Display for SignInRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this route requires a signed-in session")
    }
}

impl std::error::Error for SignInRequired {}

/// The extractors' rejection when no [`SessionLayer`] is on the route: a
/// 500 whose body says nothing of the application, and a log line that
/// names the fix.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionLayer;

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "jwe-session: no session on this request. Is the SessionLayer on this route \
             (axum: `.layer(layer)`, actix-web: `.wrap(layer)`)?",
        )
    }
}

impl std::error::Error for MissingSessionLayer {}

impl SessionHandle<SessionMap> {
    /// The value under `key`; `None` when there is none, an error when it
    /// is not a `V`.
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>, Error> {
        self.with(|session| session.get(key))
    }

    /// Stores `value` under `key`.
    pub fn insert<V: Serialize>(&self, key: impl Into<String>, value: V) -> Result<(), Error> {
        self.update(|session| session.insert(key, value))
    }

    /// Removes the value under `key`.
    pub fn remove(&self, key: &str) -> Option<serde_json::Value> {
        self.update(|session| session.remove(key))
    }
}

/// The session layer, for both frameworks: in axum a tower `Layer`
/// (`.layer(layer)`), in actix-web a middleware (`.wrap(layer)`). One per
/// application, cheap to clone; every handler under it extracts a
/// [`SessionHandle<T>`] of the type it wants.
///
/// [`SessionLayer::new`] gives the defaults; [`SessionLayer::builder`]
/// anything else. The keyring stays shared: `keyring.rotate()` anywhere in
/// the application takes effect for the next request.
///
/// ```
/// use jwe_session::revocation::MemoryStore;
/// use jwe_session::{Key, KeyAlgorithm, Keyring, SessionLayer};
///
/// # fn main() -> Result<(), jwe_session::Error> {
/// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
/// let layer = SessionLayer::builder(keyring, MemoryStore::new())
///     .login_path("/login")
///     .build()?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    // One reference count: the adapters clone the layer for every request.
    shared: Arc<Shared>,
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("manager", &self.shared.manager)
            .field("cookies", &self.shared.cookies)
            .field("csrf", &self.shared.csrf)
            .finish()
    }
}

/// What a layer's clones share.
struct Shared {
    manager: Arc<SessionManager>,
    cookies: CookieConfig,
    csrf: Option<CsrfConfig>,
    login_path: Option<Arc<str>>,
    too_large_status: u16,
    #[cfg(feature = "dbsc")]
    dbsc: Option<dbsc::Dbsc>,
}

/// Builds a [`SessionLayer`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct SessionLayerBuilder {
    keyring: Arc<Keyring>,
    store: Arc<dyn crate::revocation::RevocationStore>,
    config: SessionConfig,
    cookies: CookieConfig,
    csrf: Option<CsrfConfig>,
    clock: Option<Arc<dyn Clock>>,
    login_path: Option<Arc<str>>,
    too_large_status: u16,
    #[cfg(feature = "dbsc")]
    dbsc: Option<crate::dbsc::DbscConfig>,
}

impl fmt::Debug for SessionLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayerBuilder")
            .field("config", &self.config)
            .field("cookies", &self.cookies)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl SessionLayerBuilder {
    /// The session lifetimes and rules (default [`SessionConfig::new`]).
    /// Unless its purpose was set with [`SessionConfig::with_purpose`], the
    /// cookie name is used.
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// The cookie attributes (default [`CookieConfig::new`]).
    pub fn cookies(mut self, cookies: CookieConfig) -> Self {
        self.cookies = cookies;
        self
    }

    /// The CSRF defence for unsafe methods on requests that carry the
    /// session cookie (default: on, same host only; `None` turns it off).
    pub fn csrf(mut self, csrf: Option<CsrfConfig>) -> Self {
        self.csrf = csrf;
        self
    }

    /// Where [`RequireSession`] redirects (`303 See Other`) a visitor who
    /// is not signed in, instead of answering 401: a path on this site,
    /// such as `"/login"`.
    ///
    /// ```
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring, SessionLayer};
    /// # let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    /// let layer = SessionLayer::builder(keyring, MemoryStore::new())
    ///     .login_path("/login")
    ///     .build()?;
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = Some(Arc::from(path.into()));
        self
    }

    /// The status that replaces a response whose session is too large for
    /// its cookies (default 413, with `{"error":"session too large"}`): the
    /// handler's change is not kept, the client keeps its previous cookie,
    /// and the log says why. A handler that wants to answer itself checks
    /// first with [`SessionHandle::sealed_len`]. A status from 400 to 599.
    pub fn too_large_status(mut self, status: u16) -> Self {
        self.too_large_status = status;
        self
    }

    /// Binds sessions to the browser's device where the browser supports
    /// it (Device Bound Session Credentials, feature `dbsc`; see
    /// [`jwe_session::dbsc`](crate::dbsc)): the layer offers registration
    /// at login, serves the registration and refresh paths itself, and
    /// serves a bound session as no session to a request without its
    /// short-lived bound cookie. Off by default.
    ///
    /// ```
    /// # use jwe_session::revocation::MemoryStore;
    /// # use jwe_session::{DbscConfig, Key, KeyAlgorithm, Keyring, SessionLayer};
    /// # let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    /// let layer = SessionLayer::builder(keyring, MemoryStore::new())
    ///     .dbsc(DbscConfig::new())
    ///     .build()?;
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    #[cfg(feature = "dbsc")]
    pub fn dbsc(mut self, config: crate::dbsc::DbscConfig) -> Self {
        self.dbsc = Some(config);
        self
    }

    /// Reads the time from `clock` (for tests). The revocation store reads
    /// its own: give it the same one
    /// ([`MemoryStore::with_clock`](crate::revocation::MemoryStore::with_clock),
    /// `RedisStore`'s builder `clock`), or revocations lapse by the wrong
    /// time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the configuration and builds the layer. A cookie
    /// configuration that breaks the `__Host-` rules is refused here, at
    /// start-up.
    pub fn build(self) -> Result<SessionLayer, Error> {
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
        #[cfg(feature = "dbsc")]
        let dbsc = self
            .dbsc
            .map(|config| dbsc::Dbsc::new(config, &self.cookies))
            .transpose()?;
        Ok(SessionLayer {
            shared: Arc::new(Shared {
                manager: Arc::new(manager),
                cookies: self.cookies,
                csrf,
                login_path: self.login_path,
                too_large_status: self.too_large_status,
                #[cfg(feature = "dbsc")]
                dbsc,
            }),
        })
    }
}

impl SessionLayer {
    /// A layer with the defaults: 30 min idle and 12 h absolute lifetimes,
    /// `__Host-session` cookies, CSRF defence on. The keyring and the store
    /// may be passed by value or in an `Arc`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jwe_session::revocation::MemoryStore;
    /// use jwe_session::{Key, KeyAlgorithm, Keyring, SessionLayer};
    ///
    /// # fn main() -> Result<(), jwe_session::Error> {
    /// let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?));
    /// let store = Arc::new(MemoryStore::new());
    /// let layer = SessionLayer::new(Arc::clone(&keyring), store)?;
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(
        keyring: impl Into<Arc<Keyring>>,
        store: impl IntoRevocationStore,
    ) -> Result<Self, Error> {
        SessionLayer::builder(keyring, store).build()
    }

    /// Starts building a layer over `keyring`, keeping revocations in
    /// `store` (each by value or in an `Arc`).
    pub fn builder(
        keyring: impl Into<Arc<Keyring>>,
        store: impl IntoRevocationStore,
    ) -> SessionLayerBuilder {
        SessionLayerBuilder {
            keyring: keyring.into(),
            store: store.into_revocation_store(),
            config: SessionConfig::new(),
            cookies: CookieConfig::new(),
            csrf: Some(CsrfConfig::same_host()),
            clock: None,
            login_path: None,
            too_large_status: 413,
            #[cfg(feature = "dbsc")]
            dbsc: None,
        }
    }

    /// The session manager (its keyring, store and configuration).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn manager(&self) -> &Arc<SessionManager> {
        &self.shared.manager
    }

    /// The cookie configuration.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn cookies(&self) -> &CookieConfig {
        &self.shared.cookies
    }

    /// The request's shared cell, holding `session`.
    fn cell(&self, session: Session<LayerData>) -> RequestSession {
        RequestSession(Arc::new(Cell {
            session: Mutex::new(session),
            manager: Arc::clone(&self.shared.manager),
            login_path: self.shared.login_path.clone(),
        }))
    }

    /// Reads the request: the CSRF check, then the session from its
    /// cookies. An invalid, expired or revoked cookie gives a new empty
    /// session (with a removal cookie on the response, except for a revoked
    /// one: see `tests/inflight_requests.rs`); a revocation store
    /// that is down refuses the request with 503. That is
    /// [`begin_now`](Self::begin_now), and what waits.
    pub(crate) async fn begin(&self, request: &RequestHead<'_>) -> Admission {
        match self.begin_now(request) {
            Began::Admitted(admission) => admission,
            // Boxed: rare requests, kept out of every request's future.
            Began::Waits(waiting) => Box::pin(self.begin_after(waiting, request)).await,
        }
    }

    /// As much of the admission as needs no waiting: all of it for a
    /// cached token or a store that answers at once (the memory store), so
    /// that the adapters need no future of their own for most requests.
    pub(crate) fn begin_now(&self, request: &RequestHead<'_>) -> Began {
        #[cfg(feature = "dbsc")]
        if let Some(dbsc) = &self.shared.dbsc {
            if dbsc.is_endpoint(request) {
                return Began::Waits(Waiting(WaitingFor::Endpoint));
            }
        }
        // The token cache is asked with the cookie's bytes: a token it keeps
        // is shared from its entry, neither checked as text nor copied.
        let manager = &self.shared.manager;
        let (incoming, hit) =
            self.shared
                .cookies
                .read_known(request.cookies.iter().copied(), |bytes| {
                    let hit = manager.cached(bytes)?;
                    Some((hit.token.clone()?, hit))
                });
        // Only a request that carries the session cookie can ride on the
        // session: one without it (a CORS API under the same router, a
        // webhook) is not checked here. `CsrfGuard` checks routes
        // regardless of cookies.
        let carries_session = incoming.any_present();
        if let (Some(csrf), true) = (&self.shared.csrf, carries_session) {
            if !csrf_allows(csrf, request) {
                return Began::Admitted(Admission::Refuse(403));
            }
        }
        let invalid = incoming.is_malformed();
        if invalid {
            tracing::info!(
                kind = "malformed",
                reason = "session cookies do not form a token",
                "session rejected"
            );
        }
        let Some(text) = incoming.token_text() else {
            return Began::Admitted(self.admit(request, incoming, invalid, None));
        };
        // The session goes straight into the request's shared cell.
        let known = Known::Asked { hit, text };
        let decode =
            |verified: &Arc<crate::session::Verified>| Some(LayerData::Token(Arc::clone(verified)));
        let step = manager.load_step(text.as_str(), known, manager.now(), decode, |session| {
            self.cell(session)
        });
        match step {
            LoadStep::Done(loaded) => {
                Began::Admitted(self.admit(request, incoming, invalid, Some(loaded)))
            }
            LoadStep::Store(pending) => {
                let pending = pending.holding(text);
                Began::Waits(Waiting(WaitingFor::Store {
                    pending,
                    incoming,
                    invalid,
                }))
            }
        }
    }

    /// The rest of an admission that waits: a store's check (Redis), or a
    /// device-binding endpoint.
    pub(crate) async fn begin_after(
        &self,
        waiting: Waiting,
        request: &RequestHead<'_>,
    ) -> Admission {
        match waiting.0 {
            #[cfg(feature = "dbsc")]
            WaitingFor::Endpoint => {
                let Some(dbsc) = &self.shared.dbsc else {
                    return Admission::Refuse(500);
                };
                // Authenticated by the device's signature over a challenge
                // of this server, not by the cookie alone: no CSRF check.
                let incoming = self.shared.cookies.read(request.cookies.iter().copied());
                let head = if request.path == dbsc.registration_path() {
                    dbsc.register(self, request, &incoming).await
                } else {
                    dbsc.refresh(self, request, &incoming).await
                };
                Admission::Answer(head)
            }
            WaitingFor::Store {
                pending,
                incoming,
                invalid,
            } => {
                let loaded = self.shared.manager.load_pending(pending).await;
                let loaded = loaded.map(|session| self.cell(session));
                self.admit(request, incoming, invalid, Some(loaded))
            }
        }
    }

    /// The end of an admission, once the token (if any) is loaded.
    fn admit(
        &self,
        request: &RequestHead<'_>,
        incoming: IncomingCookies,
        mut invalid: bool,
        loaded: Option<Result<RequestSession, Rejection>>,
    ) -> Admission {
        #[cfg(not(feature = "dbsc"))]
        let _ = request;
        let mut cell = None;
        let mut standin = false;
        if let Some(loaded) = loaded {
            match loaded {
                Ok(loaded) => cell = Some(loaded),
                Err(rejection) if rejection.kind() == RejectionKind::StoreUnavailable => {
                    return Admission::Refuse(503);
                }
                // A revoked token sealed moments ago is most often one a
                // login, a renewal or a device binding replaced while this
                // request was in flight: no session, and a stand-in that
                // touches no cookie unless the handler logs in or out, so
                // that this late answer cannot clear or overwrite the
                // client's new cookie (tests/inflight_requests.rs). An
                // older one is removed, like any dead token.
                Err(rejection) if rejection.kind() == RejectionKind::Revoked => {
                    if let Some(token) = incoming.token() {
                        self.shared.manager.forget_token(token);
                    }
                    let now = crate::clock::unix_seconds(self.shared.manager.now());
                    let recent = rejection
                        .issued_at()
                        .is_some_and(|iat| iat.saturating_add(REPLACED_WINDOW_SECS) >= now);
                    if recent {
                        standin = true;
                    } else {
                        invalid = true;
                    }
                }
                Err(_) => invalid = true, // logged by the manager
            }
        }
        #[cfg(feature = "dbsc")]
        let mut bound = dbsc::BoundCheck::Unbound;
        #[cfg(feature = "dbsc")]
        let mut bound_present = false;
        #[cfg(feature = "dbsc")]
        if let Some(dbsc) = &self.shared.dbsc {
            let bound_cookies = dbsc.read_bound(request);
            bound_present = bound_cookies.any_present();
            let now = self.shared.manager.now();
            let checked = match &cell {
                Some(cell) => {
                    let session = cell.lock();
                    dbsc.check_bound(self, session.binding(), &bound_cookies, now)
                }
                None => dbsc.check_bound(self, None, &bound_cookies, now),
            };
            match checked {
                Ok(check) => bound = check,
                Err(reason) => {
                    // Not revoked, not removed, not overwritten (a stand-in):
                    // the browser that holds the device key refreshes its
                    // bound cookie and goes on.
                    tracing::info!(
                        kind = "unbound_request",
                        reason,
                        "bound session without a valid bound cookie: served as no session"
                    );
                    crate::metrics::dbsc("unbound_request");
                    cell = None;
                    standin = true;
                }
            }
        }
        let cell = cell.unwrap_or_else(|| self.cell(self.shared.manager.start(LayerData::Empty)));
        Admission::Proceed(ActiveRequest {
            cell,
            incoming,
            invalid,
            standin,
            #[cfg(feature = "dbsc")]
            bound,
            #[cfg(feature = "dbsc")]
            bound_present,
        })
    }

    /// Ends the request: seals the session again only when needed, records
    /// revocations, and says which cookies to write.
    pub(crate) async fn finish(&self, request: ActiveRequest) -> ResponseHead {
        match self.finish_now(request) {
            Finished::Done(head) => head,
            // Boxed: a seal or a store's write costs far more than the box.
            Finished::Save(ending) => Box::pin(self.finish_save(ending)).await,
        }
    }

    /// As much of the request's end as needs no waiting: all of it when
    /// the session needs no save, as for most requests.
    pub(crate) fn finish_now(&self, request: ActiveRequest) -> Finished {
        let ActiveRequest {
            cell,
            incoming,
            invalid,
            standin,
            #[cfg(feature = "dbsc")]
            bound,
            #[cfg(feature = "dbsc")]
            bound_present,
        } = request;
        // The handler may keep clones of the handle: they are left a
        // detached stand-in, whose changes are never saved. Without one
        // (most requests: the handle went with the request), nobody else
        // sees the cell, and the session is read where it is.
        let kept = Arc::strong_count(&cell.0) > 1;
        let mut guard = cell.lock();
        let session = &mut *guard;
        let detach = |session: &mut Session<LayerData>| {
            if kept {
                *session = Session::detached(LayerData::Empty);
            }
        };
        if standin && !session.is_login() && !session.is_destroyed() {
            if session.is_changed() {
                tracing::info!(
                    "the request's session cookie was replaced or lacks its bound cookie: the handler's change to the stand-in session is not kept (a login would be)"
                );
            }
            detach(session);
            return Finished::Done(ResponseHead::default());
        }
        let now = self.shared.manager.now();
        let state = EndState {
            destroyed: session.is_destroyed(),
            #[cfg(feature = "dbsc")]
            logged_in: session.is_login(),
            now,
            incoming,
            invalid,
            #[cfg(feature = "dbsc")]
            bound,
            #[cfg(feature = "dbsc")]
            bound_present,
        };
        if self.shared.manager.save_needed(session, now) {
            let session = std::mem::replace(session, Session::detached(LayerData::Empty));
            return Finished::Save(Ending { session, state });
        }
        // Most requests change nothing: nothing to wait for.
        let head = self.finish_saved(state, session, Ok(SaveOutcome::Unchanged));
        detach(session);
        Finished::Done(head)
    }

    /// The save a request's end waits for, then the rest of it.
    pub(crate) async fn finish_save(&self, ending: Ending) -> ResponseHead {
        let Ending { mut session, state } = ending;
        let saved = self.shared.manager.save_at(&mut session, state.now).await;
        self.finish_saved(state, &session, saved)
    }

    /// The cookies and headers of a request's end, once its session is
    /// saved (or needed no save).
    fn finish_saved(
        &self,
        state: EndState,
        session: &Session<LayerData>,
        saved: Result<SaveOutcome, Error>,
    ) -> ResponseHead {
        let EndState {
            now,
            incoming,
            invalid,
            destroyed,
            #[cfg(feature = "dbsc")]
            logged_in,
            #[cfg(feature = "dbsc")]
            bound,
            #[cfg(feature = "dbsc")]
            bound_present,
        } = state;
        #[cfg(not(feature = "dbsc"))]
        let _ = session;
        let replaced = invalid
            || destroyed
            || matches!(saved, Ok(SaveOutcome::Seal { .. } | SaveOutcome::Remove));
        if let (true, Some(token)) = (replaced, incoming.token()) {
            // The response replaces or removes this token: the client will
            // not send it again.
            self.shared.manager.forget_token(token);
        }
        #[cfg(feature = "dbsc")]
        let removed = matches!(saved, Ok(SaveOutcome::Remove)) || (destroyed && saved.is_err());
        #[cfg_attr(not(feature = "dbsc"), allow(unused_mut))]
        let mut head = match saved {
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
                    replace_body: Some(Cow::Borrowed(public_body(status))),
                    ..ResponseHead::default()
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "could not save the session");
                ResponseHead::status(500)
            }
        };
        #[cfg(feature = "dbsc")]
        if let Some(dbsc) = &self.shared.dbsc {
            if removed && bound_present {
                head.set_cookies.push(dbsc.removal());
            } else if head.replace_status.is_none() {
                dbsc.decorate(self, &mut head, session, logged_in, bound, now);
            }
        }
        head
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
            headers: Vec::new(),
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

/// How recently a revoked token must have been sealed to be taken for one
/// replaced while its request was in flight (left alone, never
/// overwritten), rather than a dead one (removed).
const REPLACED_WINDOW_SECS: u64 = 120;

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
/// use jwe_session::CsrfConfig;
/// use jwe_session::CsrfGuard;
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
    pub(crate) fn allows(&self, request: &RequestHead<'_>) -> bool {
        csrf_allows(&self.csrf, request)
    }
}

//! Device Bound Session Credentials (feature `dbsc`): sessions a copied
//! cookie cannot use from another device.
//!
//! A browser that supports DBSC (Chrome 145 and later) keeps a private key
//! that never leaves the device. Turned on with
//! [`SessionLayerBuilder::dbsc`](crate::SessionLayerBuilder::dbsc), the
//! session layer:
//!
//! * **offers** registration (`Secure-Session-Registration`) on the
//!   response that logs a user in, and on one response in
//!   [`offer_every`](DbscConfig::offer_every) of a signed-in session that is
//!   not bound yet;
//! * **registers** at [`registration_path`](DbscConfig::registration_path)
//!   (served by the layer; the application writes no handler): verifies the
//!   browser's `dbsc+jwt` (ES256 or RS256, signed with the key in its
//!   header, over a challenge of this server that is fresh, unused and tied
//!   to the session), keeps the device's public key in the sealed session
//!   itself (no server-side storage), renews the session id so that no
//!   token sealed before the binding opens any more, and sets the **bound
//!   cookie**: a second, short-lived cookie sealed under the keyring,
//!   naming the binding and its expiry;
//! * **refreshes** at [`refresh_path`](DbscConfig::refresh_path): a `403`
//!   with a `Secure-Session-Challenge`, then the proof signed with the
//!   session's bound key, then a fresh bound cookie. Responses of a bound
//!   session near its bound cookie's end carry the next challenge, so most
//!   refreshes need one round trip;
//! * **enforces**: a request of a bound session without a valid bound
//!   cookie for it is served as *no session* (the handler sees a new, empty
//!   one; [`RequireSession`](crate::RequireSession) answers 401), and the
//!   session is left as it is, so the real browser refreshes and goes on.
//!
//! A session that never bound (a browser without DBSC) works as before.
//! Challenges live at most a minute and are single-use where the revocation
//! store records them ([`RevocationStore::use_nonce`](crate::revocation::RevocationStore::use_nonce)).
//!
//! ```
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{DbscConfig, Key, KeyAlgorithm, Keyring, SessionLayer};
//!
//! # fn main() -> Result<(), jwe_session::Error> {
//! let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
//! let layer = SessionLayer::builder(keyring, MemoryStore::new())
//!     .dbsc(DbscConfig::new())
//!     .build()?;
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

pub(crate) mod header;
pub(crate) mod proof;
pub(crate) mod tokens;

/// A signature algorithm a device may register its key with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceAlgorithm {
    /// ECDSA over P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (keys of 2048 to 4096 bits).
    Rs256,
}

impl DeviceAlgorithm {
    /// The JOSE name: `"ES256"` or `"RS256"` (also its `Display`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeviceAlgorithm::Es256 => "ES256",
            DeviceAlgorithm::Rs256 => "RS256",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<DeviceAlgorithm> {
        match name {
            "ES256" => Some(DeviceAlgorithm::Es256),
            "RS256" => Some(DeviceAlgorithm::Rs256),
            _ => None,
        }
    }
}

impl fmt::Display for DeviceAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest a challenge may live.
pub(crate) const MAX_CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);

/// How early before its bound cookie's end Chromium refreshes.
pub(crate) const BROWSER_REFRESH_LEAD: Duration = Duration::from_secs(120);

/// How long past its expiry a bound cookie is still accepted: clocks of a
/// fleet disagree by a little, and a request sent just before the end
/// arrives just after it.
pub(crate) const BOUND_COOKIE_SKEW: Duration = Duration::from_secs(5);

/// How a [`SessionLayer`](crate::SessionLayer) binds sessions to devices;
/// see the [module documentation](self).
///
/// ```
/// use std::time::Duration;
/// use jwe_session::{DbscConfig, DeviceAlgorithm};
///
/// let config = DbscConfig::new()
///     .registration_path("/auth/dbsc/start")
///     .refresh_path("/auth/dbsc/refresh")
///     .bound_cookie_lifetime(Duration::from_secs(600))
///     .algorithms(&[DeviceAlgorithm::Es256])
///     .offer_every(20);
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct DbscConfig {
    pub(crate) registration_path: String,
    pub(crate) refresh_path: String,
    pub(crate) bound_cookie_name: Option<String>,
    pub(crate) bound_cookie_lifetime: Duration,
    pub(crate) challenge_lifetime: Duration,
    pub(crate) algorithms: Vec<DeviceAlgorithm>,
    pub(crate) offer_every: u32,
    pub(crate) origin: Option<String>,
    pub(crate) scope_exclude: Vec<String>,
}

impl fmt::Debug for DbscConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbscConfig")
            .field("registration_path", &self.registration_path)
            .field("refresh_path", &self.refresh_path)
            .field("bound_cookie_name", &self.bound_cookie_name)
            .field("bound_cookie_lifetime", &self.bound_cookie_lifetime)
            .field("challenge_lifetime", &self.challenge_lifetime)
            .field("algorithms", &self.algorithms)
            .field("offer_every", &self.offer_every)
            .field("origin", &self.origin)
            .field("scope_exclude", &self.scope_exclude)
            .finish()
    }
}

impl Default for DbscConfig {
    fn default() -> Self {
        DbscConfig::new()
    }
}

impl DbscConfig {
    /// The defaults: registration at `/dbsc/register`, refresh at
    /// `/dbsc/refresh`, a bound cookie named after the session cookie with
    /// `-bound` appended (`__Host-session-bound`) living 10 minutes,
    /// challenges living 60 seconds, ES256 and RS256, the offer repeated on
    /// one response in 10 of a signed-in session not bound yet (never in
    /// the first minute after its login, while the login's offer may still
    /// be answered), and the
    /// site's origin read from the request's `Host` (`https://` + host).
    pub fn new() -> Self {
        DbscConfig {
            registration_path: "/dbsc/register".to_owned(),
            refresh_path: "/dbsc/refresh".to_owned(),
            bound_cookie_name: None,
            bound_cookie_lifetime: Duration::from_secs(600),
            challenge_lifetime: MAX_CHALLENGE_LIFETIME,
            algorithms: vec![DeviceAlgorithm::Es256, DeviceAlgorithm::Rs256],
            offer_every: 10,
            origin: None,
            scope_exclude: Vec::new(),
        }
    }

    /// The path the layer answers registrations on (`POST`); a path on
    /// this site.
    pub fn registration_path(mut self, path: impl Into<String>) -> Self {
        self.registration_path = path.into();
        self
    }

    /// The path the layer answers refreshes on (`POST`); a path on this
    /// site, never in the bound session's scope.
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// The bound cookie's name (default: the session cookie's name with
    /// `-bound` appended). Its other attributes are the session cookie's.
    pub fn bound_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.bound_cookie_name = Some(name.into());
        self
    }

    /// How long a bound cookie lives (default 10 minutes, from 10 seconds
    /// to 1 hour): how long a copied session stays usable from another
    /// device at most. Chromium refreshes when less than 2 minutes are
    /// left (so under about 3 minutes it refreshes on nearly every
    /// request), and signs at most 6 times per site in 9 minutes
    /// (registration and refreshes; a refresh without a fresh challenge
    /// costs two): much under 10 minutes and a busy browser runs out, skips
    /// refreshes, and its requests arrive without the bound cookie.
    pub fn bound_cookie_lifetime(mut self, lifetime: Duration) -> Self {
        self.bound_cookie_lifetime = lifetime;
        self
    }

    /// How long a challenge stays valid (default and at most 60 seconds,
    /// at least 5).
    pub fn challenge_lifetime(mut self, lifetime: Duration) -> Self {
        self.challenge_lifetime = lifetime;
        self
    }

    /// The algorithms offered and accepted, in order of preference
    /// (default ES256, then RS256). Nothing else is ever accepted: not
    /// `none`, not an HMAC.
    pub fn algorithms(mut self, algorithms: &[DeviceAlgorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Offers registration again on one response in `n` of a signed-in
    /// session that is not bound yet, from a challenge's lifetime after its
    /// login (default 10; 1 offers on every such response; 0 only on the
    /// response that logs the user in).
    pub fn offer_every(mut self, n: u32) -> Self {
        self.offer_every = n;
        self
    }

    /// The site's origin as the browser sees it (`https://example.com`),
    /// for the bound session's scope; by default `https://` and the
    /// request's `Host`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Leaves requests under `path` (a path prefix on this site, such as
    /// `/static/`) out of the bound session's scope: the browser neither
    /// holds them back for a refresh nor needs the bound cookie for them.
    /// The layer still enforces the binding on any such request that
    /// reaches it with the session cookie.
    pub fn exclude_from_scope(mut self, path: impl Into<String>) -> Self {
        self.scope_exclude.push(path.into());
        self
    }

    /// Checks the configuration; `Err` names what is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (what, path) in [
            ("registration_path", &self.registration_path),
            ("refresh_path", &self.refresh_path),
        ]
        .into_iter()
        .chain(self.scope_exclude.iter().map(|p| ("exclude_from_scope", p)))
        {
            if !header::is_site_path(path) {
                return Err(format!(
                    "dbsc {what} must be a path on this site: starting with a single '/', printable ASCII without '\"', '\\\\', '?' or '#'"
                ));
            }
        }
        if self.registration_path == self.refresh_path {
            return Err("dbsc registration_path and refresh_path must differ".into());
        }
        if !(Duration::from_secs(10)..=Duration::from_secs(3600))
            .contains(&self.bound_cookie_lifetime)
        {
            return Err("dbsc bound_cookie_lifetime must be from 10 seconds to 1 hour".into());
        }
        if !(Duration::from_secs(5)..=MAX_CHALLENGE_LIFETIME).contains(&self.challenge_lifetime) {
            return Err("dbsc challenge_lifetime must be from 5 to 60 seconds".into());
        }
        if self.algorithms.is_empty() {
            return Err("dbsc needs at least one algorithm".into());
        }
        if let Some(origin) = &self.origin {
            if !header::is_origin(origin) {
                return Err(
                    "dbsc origin must be an https origin such as https://example.com".into(),
                );
            }
        }
        Ok(())
    }
}

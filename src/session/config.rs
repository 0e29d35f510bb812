//! The configuration of sessions: [`SessionConfig`], the form a
//! configuration file gives it, [`StoreFailurePolicy`] and the limits
//! [`validate`](SessionConfig::validate) enforces.

use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// How many bytes of opened tokens a [`SessionManager`](super::SessionManager) remembers unless
/// configured otherwise ([`SessionConfig::with_token_cache_bytes`]): 8 MiB, about
/// 3,400 typical sessions.
pub const DEFAULT_TOKEN_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// The smallest token cache accepted, in bytes, unless it is off (0): a
/// smaller one would hold a handful of sessions at best.
pub const MIN_TOKEN_CACHE_BYTES: usize = 64 * 1024;

/// The largest token cache accepted, in bytes
/// ([`SessionConfig::with_token_cache_bytes`]): 1 GiB.
pub const MAX_TOKEN_CACHE_BYTES: usize = 1 << 30;

/// The longest idle or absolute timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);

/// The longest leeway accepted.
pub const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// What to do when the revocation store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreFailurePolicy {
    /// Refuse the session (the layer answers 503). The default.
    #[default]
    FailClosed,
    /// Accept the session as not revoked, logging a warning each time.
    /// A revoked session may then be used while the store is down.
    FailOpen,
}

/// Lifetimes and rules for sessions.
///
/// ```
/// use std::time::Duration;
/// use jwe_session::SessionConfig;
///
/// let config = SessionConfig::new()
///     .with_idle_timeout(Duration::from_secs(15 * 60))
///     .with_absolute_timeout(Duration::from_secs(8 * 3600));
/// assert_eq!(config.leeway(), Duration::from_secs(60));
/// assert!(config.validate().is_ok());
/// ```
///
/// It can be read from a configuration file (any `serde` format): times in
/// whole seconds, every member optional (the default), unknown members
/// refused, and a configuration the builder methods would refuse (a zero
/// or over-long timeout, an idle timeout above the absolute one) fails to
/// deserialize:
///
/// ```
/// use std::time::Duration;
/// use jwe_session::{SessionConfig, StoreFailurePolicy};
///
/// let config: SessionConfig = serde_json::from_str(r#"{
///     "idle_timeout_secs": 900,
///     "absolute_timeout_secs": 28800,
///     "store_failure": "fail_open",
///     "token_cache_bytes": 0
/// }"#).unwrap();
/// assert_eq!(config.idle_timeout(), Duration::from_secs(900));
/// assert_eq!(config.store_failure(), StoreFailurePolicy::FailOpen);
/// assert!(serde_json::from_str::<SessionConfig>(r#"{"idle_timeout_secs": 0}"#).is_err());
/// assert!(serde_json::from_str::<SessionConfig>(r#"{"idle_timeout": 900}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SessionConfigFile")]
pub struct SessionConfig {
    idle_timeout: Duration,
    absolute_timeout: Duration,
    leeway: Duration,
    /// `None`: the default, `"session"` (the integrations use their
    /// cookie name instead).
    purpose: Option<String>,
    store_failure: StoreFailurePolicy,
    max_token_len: usize,
    token_cache: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            leeway: Duration::from_secs(60),
            purpose: None,
            store_failure: StoreFailurePolicy::FailClosed,
            max_token_len: 16 * 1024,
            token_cache: DEFAULT_TOKEN_CACHE_BYTES,
        }
    }
}

impl SessionConfig {
    /// The defaults: 30 minutes idle, 12 hours absolute (OWASP), 60 s
    /// leeway, purpose `"session"`, fail closed, tokens up to 16 KiB, a
    /// token cache of 8 MiB.
    pub fn new() -> Self {
        SessionConfig::default()
    }

    /// How long a session lives without being used (default 30 minutes).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a session lives at most, used or not (default 12 hours).
    #[must_use]
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = timeout;
        self
    }

    /// Tolerance for clock skew on every time check (default 60 s).
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The purpose bound into every token as its audience (default
    /// `"session"`). Tokens sealed for another purpose are refused.
    #[must_use]
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// What to do when the revocation store is down (default: fail closed).
    #[must_use]
    pub fn with_store_failure(mut self, policy: StoreFailurePolicy) -> Self {
        self.store_failure = policy;
        self
    }

    /// The longest token accepted (default 16 KiB, enough for four cookie
    /// chunks).
    #[must_use]
    pub fn with_max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// How much memory, in bytes, opened tokens may hold, so the same
    /// cookie on the next request is not decrypted and parsed again
    /// (default 8 MiB; 0 turns the cache off). Each entry is charged what
    /// it holds: its token, claims, data as text and as the decoded map
    /// (bounded from the JSON's shape, with the allocator's rounding) and
    /// the cache's bookkeeping. A typical session's entry is about 2.4 KiB
    /// (about 3,400 in the default); a session near the cookie limit from
    /// about 35 KiB (long strings) to about 700 KiB (tiny objects), and one
    /// heavier than a shard of the cache is not cached.
    ///
    /// A cached token is still checked on every request: both deadlines
    /// against the current time, the revocation store, and that the keyring
    /// still holds the key that opened it (a removed key makes its tokens
    /// fail at once; a retired one makes them re-issued). What the cache
    /// saves is the key unwrap, the AES-GCM decryption and the claims
    /// parse; for a [`SessionMap`](super::SessionMap) also decoding the
    /// data, which is shared with the cache instead. Other data types are
    /// decoded from the text once per request.
    ///
    /// The cache keeps decrypted session contents in this process's memory
    /// for as long as an entry lives (the text is wiped when it goes; the
    /// decoded value is dropped like any other). Turn it off where that
    /// matters more than the time it saves.
    ///
    /// ```
    /// use jwe_session::SessionConfig;
    /// let config = SessionConfig::new().with_token_cache_bytes(0);
    /// assert_eq!(config.token_cache_bytes(), 0);
    /// assert_eq!(SessionConfig::new().token_cache_bytes(), 8 * 1024 * 1024);
    /// ```
    #[must_use]
    pub fn with_token_cache_bytes(mut self, bytes: usize) -> Self {
        self.token_cache = bytes;
        self
    }

    /// The memory opened tokens may hold, in bytes (0: no cache).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn token_cache_bytes(&self) -> usize {
        self.token_cache
    }

    /// The idle timeout.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The absolute timeout.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn absolute_timeout(&self) -> Duration {
        self.absolute_timeout
    }

    /// The leeway.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The purpose.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn purpose(&self) -> &str {
        self.purpose.as_deref().unwrap_or("session")
    }

    /// Whether the purpose was set with [`with_purpose`](Self::with_purpose)
    /// (even to `"session"`), rather than left at the default.
    pub(crate) fn purpose_is_set(&self) -> bool {
        self.purpose.is_some()
    }

    /// The store failure policy.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn store_failure(&self) -> StoreFailurePolicy {
        self.store_failure
    }

    /// The longest token accepted.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    /// Checks the configuration: timeouts of at least one second and at
    /// most 366 days, a leeway of at most an hour, an idle timeout no longer
    /// than the absolute one, a leeway shorter than the
    /// idle timeout, a non-empty purpose, a token cache of at most
    /// [`MAX_TOKEN_CACHE_BYTES`] bytes and, unless off, at least
    /// [`MIN_TOKEN_CACHE_BYTES`].
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let fail = |m: &str| Err(Error::Config(m.to_owned()));
        if self.idle_timeout.as_secs() == 0 || self.absolute_timeout.as_secs() == 0 {
            return fail("timeouts must be at least one second");
        }
        if self.absolute_timeout > MAX_TIMEOUT || self.leeway > MAX_LEEWAY {
            return fail("timeouts are limited to 366 days and the leeway to one hour");
        }
        if self.idle_timeout > self.absolute_timeout {
            return fail("the idle timeout must not exceed the absolute timeout");
        }
        if self.leeway >= self.idle_timeout {
            return fail("the leeway must be shorter than the idle timeout");
        }
        if self.purpose().is_empty() {
            return fail("the purpose must not be empty");
        }
        if self.token_cache > MAX_TOKEN_CACHE_BYTES {
            return fail("the token cache is limited to 1 GiB");
        }
        if self.token_cache != 0 && self.token_cache < MIN_TOKEN_CACHE_BYTES {
            return fail("a token cache needs at least 64 KiB (0 turns it off)");
        }
        Ok(())
    }
}

/// [`SessionConfig`] as a configuration file spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionConfigFile {
    idle_timeout_secs: Option<u64>,
    absolute_timeout_secs: Option<u64>,
    leeway_secs: Option<u64>,
    purpose: Option<String>,
    store_failure: Option<StoreFailurePolicy>,
    max_token_len: Option<usize>,
    token_cache_bytes: Option<usize>,
}

impl TryFrom<SessionConfigFile> for SessionConfig {
    type Error = Error;

    fn try_from(file: SessionConfigFile) -> Result<Self, Error> {
        let mut config = SessionConfig::new();
        if let Some(secs) = file.idle_timeout_secs {
            config = config.with_idle_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = file.absolute_timeout_secs {
            config = config.with_absolute_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = file.leeway_secs {
            config = config.with_leeway(Duration::from_secs(secs));
        }
        if let Some(purpose) = file.purpose {
            config = config.with_purpose(purpose);
        }
        if let Some(policy) = file.store_failure {
            config = config.with_store_failure(policy);
        }
        if let Some(len) = file.max_token_len {
            config = config.with_max_token_len(len);
        }
        if let Some(bytes) = file.token_cache_bytes {
            config = config.with_token_cache_bytes(bytes);
        }
        config.validate()?;
        Ok(config)
    }
}

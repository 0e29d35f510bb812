//! Errors. One public [`Error`] wraps small domain errors; none of them ever
//! holds or prints key material or token contents.

use std::fmt;

/// Everything this crate can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key is invalid or could not be made.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A keyring operation or keyring source failed.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A token was refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A token could not be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The revocation store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Session data could not be encoded or decoded as JSON. Says what
    /// kind of problem and where, never the data itself.
    #[error(transparent)]
    Data(DataError),
    /// A session's configuration was refused, or its key rotation: a
    /// [`RotationPolicy`](crate::RotationPolicy) whose times do not fit, or
    /// [`Keyring::rotate_every`](crate::Keyring::rotate_every) outside a
    /// Tokio runtime.
    #[error("session configuration: {0}")]
    Config(String),
}

/// Session data that could not be encoded or decoded as JSON.
///
/// It keeps the kind of problem and where it was found, but not
/// `serde_json`'s message, which quotes the offending value (`invalid type:
/// string "hunter2", expected u64`): neither its `Display` nor its `Debug`
/// ever echoes a value from a session or a token, and it has no source
/// error that would.
///
/// ```
/// use jwe_session::SessionMap;
/// let mut map = SessionMap::default();
/// map.insert("pin", "hunter2")?;
/// let error = map.get::<u64>("pin").unwrap_err();
/// assert!(!error.to_string().contains("hunter2"));
/// assert!(!format!("{error:?}").contains("hunter2"));
/// assert_eq!(error.to_string(), "session data does not fit the expected type");
/// # Ok::<(), jwe_session::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DataError {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl DataError {
    /// Whether the data was not valid JSON, did not fit the type, ended
    /// early, or could not be written.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn category(&self) -> serde_json::error::Category {
        self.category
    }

    /// The line and column in the JSON text where it was found (0 when it
    /// does not come from text, such as a value that could not be encoded).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.line, self.column)
    }

    fn what(&self) -> &'static str {
        use serde_json::error::Category;
        match self.category {
            Category::Io => "session data could not be written",
            Category::Syntax => "session data is not valid JSON",
            Category::Data => "session data does not fit the expected type",
            Category::Eof => "session data ends early",
        }
    }
}

impl From<serde_json::Error> for DataError {
    fn from(error: serde_json::Error) -> Self {
        DataError {
            category: error.classify(),
            line: error.line(),
            column: error.column(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Data(error.into())
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(self.what())
        } else {
            write!(
                f,
                "{} (line {}, column {})",
                self.what(),
                self.line,
                self.column
            )
        }
    }
}

impl fmt::Debug for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataError")
            .field("category", &self.category)
            .field("line", &self.line)
            .field("column", &self.column)
            .finish()
    }
}

impl std::error::Error for DataError {}

impl Error {
    /// The HTTP status that fits this error when a handler returns it
    /// (with `?`, through the integrations' `IntoResponse` and
    /// `ResponseError`): 503 when the revocation store is unavailable or
    /// full, 401 for a refused token, 413 for a session too large to seal,
    /// 500 otherwise.
    ///
    /// ```
    /// use jwe_session::{Error, SealError, StoreError};
    /// assert_eq!(Error::from(StoreError::Full(3)).http_status(), 503);
    /// assert_eq!(Error::from(SealError::TooLarge { len: 20_000, max: 15_928 }).http_status(), 413);
    /// assert_eq!(Error::Config("bad".into()).http_status(), 500);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Store(error) => error.http_status(),
            Error::Rejected(rejection) if rejection.kind() == RejectionKind::StoreUnavailable => {
                503
            }
            Error::Rejected(_) => 401,
            Error::Seal(SealError::TooLarge { .. }) => 413,
            _ => 500,
        }
    }
}

impl StoreError {
    /// The HTTP status that fits this error when a handler returns it: 503
    /// (the store is down, or full and refusing new revocations).
    pub fn http_status(&self) -> u16 {
        503
    }
}

/// Logs an error a handler returned, with the status it is answered with.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) fn log_returned(error: &dyn std::error::Error, status: u16) {
    if status >= 500 {
        tracing::error!(status, error = %error, "a handler returned a session error");
    } else {
        tracing::info!(status, error = %error, "a handler returned a session error");
    }
}

/// A revocation store that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("revocation store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store is full of live entries and refused a new one, rather than
    /// forget a revocation.
    #[error("revocation store full ({0} live entries)")]
    Full(usize),
}

/// What is wrong with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The JWK has no `kid`, or it is empty.
    MissingKid,
    /// The JWK has no `alg`.
    MissingAlg,
    /// The `alg` is not on the allowlist (the name, cut to 32 characters).
    UnsupportedAlg(String),
    /// The key type (`kty`) is missing, unknown, or does not fit the `alg`.
    WrongKeyType(String),
    /// A required JWK member is missing.
    MissingMember(&'static str),
    /// A JWK member has the wrong type or is not canonical base64url.
    InvalidMember(&'static str),
    /// `use` or `key_ops` say the key is not for encryption.
    WrongUse,
    /// A symmetric key of the wrong length for its algorithm.
    WrongLength {
        /// The algorithm the key is bound to.
        alg: String,
        /// The lengths in bytes the algorithm accepts.
        expected: &'static str,
        /// The length in bytes the key has.
        actual: usize,
    },
    /// A symmetric key whose bytes are all zero.
    AllZero,
    /// An RSA key shorter than 2048 bits.
    RsaTooSmall {
        /// The key's modulus length in bits.
        bits: u32,
    },
    /// The RSA components do not form a valid private key.
    InvalidRsaKey,
    /// RSA keys need the `rsa` feature.
    RsaFeatureDisabled,
    /// Two keys share one `kid`.
    DuplicateKid,
    /// The operating system's random number generator failed.
    Random,
    /// The text is not a JSON object.
    NotJson,
    /// `x-promote-at` on a key that is neither staged nor the first (the
    /// primary) of a JWK Set.
    PromoteAtNotStaged,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::MissingKid => f.write_str("missing \"kid\""),
            KeyProblem::MissingAlg => f.write_str("missing \"alg\""),
            KeyProblem::UnsupportedAlg(alg) => write!(f, "unsupported \"alg\" {alg:?}"),
            KeyProblem::WrongKeyType(kty) => {
                write!(f, "key type {kty:?} does not fit the algorithm")
            }
            KeyProblem::MissingMember(name) => write!(f, "missing member \"{name}\""),
            KeyProblem::InvalidMember("x-promote-at") => f.write_str(
                "member \"x-promote-at\" is not a time in Unix seconds (up to the year 9999)",
            ),
            KeyProblem::InvalidMember(name) => write!(f, "member \"{name}\" is not valid"),
            KeyProblem::WrongUse => f.write_str("\"use\" or \"key_ops\" do not allow encryption"),
            KeyProblem::WrongLength {
                alg,
                expected,
                actual,
            } => write!(
                f,
                "{alg} needs a key of {expected} bytes, this one has {actual}"
            ),
            KeyProblem::AllZero => f.write_str("the key is all zero bytes"),
            KeyProblem::RsaTooSmall { bits } => {
                write!(f, "RSA key of {bits} bits; at least 2048 are required")
            }
            KeyProblem::InvalidRsaKey => f.write_str("the RSA components do not form a valid key"),
            KeyProblem::RsaFeatureDisabled => {
                f.write_str("RSA keys need jwe-session's \"rsa\" feature")
            }
            KeyProblem::DuplicateKid => f.write_str("another key has the same kid"),
            KeyProblem::Random => {
                f.write_str("the operating system's random number generator failed")
            }
            KeyProblem::NotJson => f.write_str("not a JSON object"),
            KeyProblem::PromoteAtNotStaged => f.write_str(
                "\"x-promote-at\" is only for staged keys (\"x-state\": \"staged\"; the first key is the primary)",
            ),
        }
    }
}

/// A key that was refused, named by its `kid` (or its position in a set)
/// but never by its material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    kid: Option<String>,
    position: Option<usize>,
    problem: KeyProblem,
}

impl KeyError {
    pub(crate) fn new(kid: Option<&str>, problem: KeyProblem) -> Self {
        KeyError {
            kid: kid.map(|k| k.chars().take(128).collect()),
            position: None,
            problem,
        }
    }

    pub(crate) fn at_position(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }

    /// The `kid` of the refused key, when it has one.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The 1-based position of the key in the set or list it came from.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn position(&self) -> Option<usize> {
        self.position
    }

    /// What is wrong.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn problem(&self) -> &KeyProblem {
        &self.problem
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("key")?;
        if let Some(position) = self.position {
            write!(f, " #{position}")?;
        }
        if let Some(kid) = &self.kid {
            write!(f, " {kid:?}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for KeyError {}

/// A keyring operation or source that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// No key has this `kid`.
    #[error("no key with kid {0:?} in the keyring")]
    UnknownKid(String),
    /// The primary key cannot be removed or retired; rotate first.
    #[error("key {0:?} is the primary; rotate or promote another key first")]
    PrimaryKey(String),
    /// Only staged keys can be promoted.
    #[error("key {0:?} is not staged; only staged keys can be promoted")]
    NotStaged(String),
    /// A key with this `kid` is already in the keyring.
    #[error("a key with kid {0:?} is already in the keyring")]
    DuplicateKid(String),
    /// A JWK Set with no keys.
    #[error("the key set holds no keys")]
    Empty,
    /// The key set is not a JSON object with a `keys` array.
    #[error("not a JWK Set: {0}")]
    NotJwkSet(&'static str),
    /// A key of the set was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An environment variable is unset, empty, or malformed.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong, naming the entry's position where there is one.
        reason: String,
    },
    /// A key file could not be read or parsed.
    #[error("key file {path}: {reason}")]
    File {
        /// The file's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why a token was refused, coarsely: safe to count in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) enum RejectionKind {
    /// Not a well-formed compact JWE under this crate's strict rules: too
    /// long, wrong number of parts, non-canonical base64url, a bad header, or
    /// an algorithm outside the allowlist. For sessions, also a valid token
    /// whose data does not fit the application's data type.
    Malformed,
    /// The header's `kid` names no key in the keyring.
    UnknownKey,
    /// Everything after the header: wrong algorithm for the key, bad sizes,
    /// key unwrap or authentication failure. Deliberately one kind.
    DecryptFailed,
    /// The session's idle deadline (`exp`) has passed.
    ExpiredIdle,
    /// The session's absolute deadline has passed.
    ExpiredAbsolute,
    /// The token was sealed in the future (beyond the leeway).
    NotYetValid,
    /// The token was sealed by this keyring for another purpose (its `typ`
    /// or audience differ), or in a session format this version cannot read.
    WrongPurpose,
    /// The session, or every session of its subject, was revoked.
    Revoked,
    /// The revocation store could not be asked, and the configuration fails
    /// closed. Integrations answer 503 rather than "no session".
    StoreUnavailable,
}

impl RejectionKind {
    /// A short stable name, for logs and metric labels.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RejectionKind::Malformed => "malformed",
            RejectionKind::UnknownKey => "unknown_key",
            RejectionKind::DecryptFailed => "decrypt_failed",
            RejectionKind::ExpiredIdle => "expired_idle",
            RejectionKind::ExpiredAbsolute => "expired_absolute",
            RejectionKind::NotYetValid => "not_yet_valid",
            RejectionKind::WrongPurpose => "wrong_purpose",
            RejectionKind::Revoked => "revoked",
            RejectionKind::StoreUnavailable => "store_unavailable",
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token.
///
/// Its `Display` gives only the coarse kind (`malformed`, `unknown_key`, `decrypt_failed`, ...); the precise reason
/// (its `Debug`, logged when a session is refused) is for logs and never
/// for the client. Neither ever
/// contains the token or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    reason: &'static str,
    kid: Option<String>,
    /// When a revoked token was sealed (Unix seconds).
    issued_at: Option<u64>,
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, reason: &'static str) -> Self {
        Rejection {
            kind,
            reason,
            kid: None,
            issued_at: None,
        }
    }

    pub(crate) fn malformed(reason: &'static str) -> Self {
        Rejection::new(RejectionKind::Malformed, reason)
    }

    pub(crate) fn decrypt(reason: &'static str) -> Self {
        Rejection::new(RejectionKind::DecryptFailed, reason)
    }

    pub(crate) fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.chars().take(128).collect());
        self
    }

    /// Records when the refused token was sealed.
    pub(crate) fn with_issued_at(mut self, iat: u64) -> Self {
        self.issued_at = Some(iat);
        self
    }

    /// When the refused token was sealed (Unix seconds), for a revoked one.
    pub(crate) fn issued_at(&self) -> Option<u64> {
        self.issued_at
    }

    /// The coarse kind.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The precise reason, for logs only.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn reason(&self) -> &'static str {
        self.reason
    }

    /// The `kid` the token's header named, when it parsed that far.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token rejected ({})", self.kind)
    }
}

impl std::error::Error for Rejection {}

/// A token that could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// The cipher failed (for example, a plaintext too long for AES-GCM).
    #[error("encryption failed")]
    Cipher,
    /// A `dir` key reached its limit of 2^32 seals (NIST SP 800-38D); rotate.
    #[error("key {0:?} has sealed 2^32 tokens, the AES-GCM limit for one key; rotate the keyring")]
    KeyExhausted(String),
    /// The sealed session is longer than the configured maximum token
    /// length (for the integrations: than its cookies can carry).
    #[error("sealed session of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The `typ` or `cty` given for the header is not acceptable.
    #[error("invalid header parameter {0}")]
    InvalidHeader(&'static str),
}

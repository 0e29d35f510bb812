//! Session cookies: secure defaults, removal, and chunking of tokens larger
//! than one cookie. Framework-agnostic: it reads `Cookie` header values and
//! writes `Set-Cookie` header values.
//!
//! A token that fits in one cookie is sent as `NAME=token`. A larger one is
//! split into `NAME.0`, `NAME.1`, … (at most [`CookieConfig::max_chunks`]),
//! joined again on read. When a session shrinks, the chunks it no longer
//! needs are removed.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::session::TokenText;
use crate::wipe::Wiped;

/// The `SameSite` attribute. In configuration files: `"strict"`, `"lax"`,
/// `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level navigations: the default.
    Lax,
    /// Sent with every request; needs `Secure`.
    None,
}

/// A cookie configuration refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cookie configuration: {0}")]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) struct CookieConfigError(String);

/// A token too large for the configured number of chunk cookies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session token of {len} bytes needs {needed} cookies; at most {max} are configured")]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) struct TooLarge {
    /// The token's length.
    pub len: usize,
    /// The cookies it would need.
    pub needed: usize,
    /// The configured maximum.
    pub max: usize,
}

/// How the session cookie is written.
///
/// The defaults are the strictest that work for a session: name
/// `__Host-session`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no
/// `Domain`, no `Max-Age` (the cookie ends with the browser session), at most
/// 4 chunks of about 4,000 bytes.
///
/// ```
/// use jwe_session::{CookieConfig, SameSite};
/// let config = CookieConfig::new().with_same_site(SameSite::Strict).with_persistent(true);
/// assert!(config.validate().is_ok());
/// // The __Host- prefix forbids a Domain:
/// assert!(CookieConfig::new().with_domain("example.com").validate().is_err());
/// ```
///
/// It can be read from a configuration file (any `serde` format), with the
/// same names as the builder methods, every member optional (the secure
/// default) and unknown members refused; a configuration that
/// the layer's builder refuses fails to deserialize:
///
/// ```
/// use jwe_session::CookieConfig;
/// let config: CookieConfig = serde_json::from_str(
///     r#"{"name": "__Host-app", "persistent": true, "max_chunks": 2}"#,
/// ).unwrap();
/// assert_eq!(config, CookieConfig::new().with_name("__Host-app").with_persistent(true).with_max_chunks(2));
/// assert!(serde_json::from_str::<CookieConfig>(r#"{"domain": "example.com"}"#).is_err());
/// assert!(serde_json::from_str::<CookieConfig>(r#"{"nmae": "x"}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "CookieConfigFile")]
pub struct CookieConfig {
    name: String,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    path: String,
    domain: Option<String>,
    persistent: bool,
    max_chunks: usize,
    cookie_size: usize,
}

/// [`CookieConfig`] as a configuration file spells it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieConfigFile {
    name: Option<String>,
    secure: Option<bool>,
    http_only: Option<bool>,
    same_site: Option<SameSite>,
    path: Option<String>,
    domain: Option<String>,
    persistent: Option<bool>,
    max_chunks: Option<usize>,
    cookie_size: Option<usize>,
}

impl TryFrom<CookieConfigFile> for CookieConfig {
    type Error = CookieConfigError;

    fn try_from(file: CookieConfigFile) -> Result<Self, Self::Error> {
        let defaults = CookieConfig::default();
        let config = CookieConfig {
            name: file.name.unwrap_or(defaults.name),
            secure: file.secure.unwrap_or(defaults.secure),
            http_only: file.http_only.unwrap_or(defaults.http_only),
            same_site: file.same_site.unwrap_or(defaults.same_site),
            path: file.path.unwrap_or(defaults.path),
            domain: file.domain.or(defaults.domain),
            persistent: file.persistent.unwrap_or(defaults.persistent),
            max_chunks: file.max_chunks.unwrap_or(defaults.max_chunks),
            cookie_size: file.cookie_size.unwrap_or(defaults.cookie_size),
        };
        config.validate()?;
        Ok(config)
    }
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "__Host-session".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            persistent: false,
            max_chunks: 4,
            cookie_size: 4000,
        }
    }
}

impl CookieConfig {
    /// The secure defaults.
    pub fn new() -> Self {
        CookieConfig::default()
    }

    /// The cookie name (default `__Host-session`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The `Secure` attribute (default on). Turning it off breaks the
    /// `__Host-` prefix: change the name too.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The `HttpOnly` attribute (default on).
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute (default `Lax`).
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The `Path` attribute (default `/`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The `Domain` attribute (default none: host-only).
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Persistent sessions (default off): `Max-Age` follows the session's
    /// expiry, so the cookie outlives a browser restart.
    #[must_use]
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The most chunk cookies one session may use (default 4).
    #[must_use]
    pub fn with_max_chunks(mut self, max_chunks: usize) -> Self {
        self.max_chunks = max_chunks;
        self
    }

    /// The largest `name=value` of one cookie, in bytes (default 4000;
    /// browsers keep at least 4096).
    #[must_use]
    pub fn with_cookie_size(mut self, size: usize) -> Self {
        self.cookie_size = size;
        self
    }

    /// The cookie name.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the `Secure` attribute is written.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn secure(&self) -> bool {
        self.secure
    }

    /// Whether `Max-Age` is written.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn persistent(&self) -> bool {
        self.persistent
    }

    /// The most chunk cookies.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn max_chunks(&self) -> usize {
        self.max_chunks
    }

    /// The longest token the cookies can carry.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn max_token_len(&self) -> usize {
        self.chunk_len().saturating_mul(self.max_chunks)
    }

    fn chunk_len(&self) -> usize {
        // "NAME.15=" at most, for chunk names.
        self.cookie_size.saturating_sub(self.name.len() + 4)
    }

    /// Checks the configuration: a valid cookie name, the rules of the
    /// `__Host-` and `__Secure-` prefixes, `SameSite=None` only with
    /// `Secure`, and sane sizes.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn validate(&self) -> Result<(), CookieConfigError> {
        let fail = |m: String| Err(CookieConfigError(m));
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-^_`|~".contains(c);
        if self.name.is_empty() || !self.name.chars().all(token_char) {
            return fail(format!(
                "{:?} is not a valid cookie name (letters, digits and !#$%&'*+-^_`|~ only)",
                self.name
            ));
        }
        if self.name.starts_with("__Host-") {
            if !self.secure {
                return fail("the __Host- prefix requires Secure".to_owned());
            }
            if self.domain.is_some() {
                return fail("the __Host- prefix forbids a Domain".to_owned());
            }
            if self.path != "/" {
                return fail("the __Host- prefix requires Path=/".to_owned());
            }
        }
        if self.name.starts_with("__Secure-") && !self.secure {
            return fail("the __Secure- prefix requires Secure".to_owned());
        }
        if self.same_site == SameSite::None && !self.secure {
            return fail("SameSite=None requires Secure".to_owned());
        }
        if !self.path.starts_with('/') || self.path.contains(';') {
            return fail("the path must start with / and contain no ;".to_owned());
        }
        if self
            .domain
            .as_deref()
            .is_some_and(|d| d.is_empty() || d.contains(';'))
        {
            return fail("the domain must be non-empty and contain no ;".to_owned());
        }
        if !(1..=16).contains(&self.max_chunks) {
            return fail("max_chunks must be between 1 and 16".to_owned());
        }
        if !(256..=4096).contains(&self.cookie_size) {
            return fail("the cookie size must be between 256 and 4096 bytes".to_owned());
        }
        Ok(())
    }

    fn build(&self, name: String, value: String) -> ::cookie::CookieBuilder<'static> {
        let same_site = match self.same_site {
            SameSite::Strict => ::cookie::SameSite::Strict,
            SameSite::Lax => ::cookie::SameSite::Lax,
            SameSite::None => ::cookie::SameSite::None,
        };
        let mut builder = ::cookie::Cookie::build((name, value))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(same_site);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder
    }

    /// The attributes every cookie of this configuration is set with, as
    /// a `Set-Cookie` value writes them after `name=value; ` (no
    /// `Max-Age`): `Path=/; Secure; HttpOnly; SameSite=Lax` by default.
    #[cfg_attr(not(feature = "dbsc"), allow(dead_code))]
    pub(crate) fn attributes(&self) -> String {
        let cookie = self
            .build("n".to_owned(), String::new())
            .build()
            .to_string();
        cookie.strip_prefix("n=; ").unwrap_or_default().to_owned()
    }

    fn removal(&self, name: &str) -> String {
        let mut cookie = self.build(name.to_owned(), String::new()).build();
        cookie.make_removal();
        cookie.to_string()
    }

    /// Reads the session cookie(s) from the request's raw `Cookie` header
    /// values.
    ///
    /// Parsing is byte-level and lenient per pair: other cookies, whatever
    /// their bytes, are skipped; names are compared exactly as sent (never
    /// percent-decoded, so `%5F%5FHost-session` is not `__Host-session`).
    /// Names `NAME.<not a chunk index>` are someone else's and ignored.
    ///
    /// ```
    /// use jwe_session::CookieConfig;
    /// let config = CookieConfig::new();
    /// let incoming = config.read([&b"a=1; __Host-session.1=cd"[..], b"__Host-session.0=ab"]);
    /// assert_eq!(incoming.token(), Some("abcd"));
    /// ```
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn read<'a>(&self, headers: impl IntoIterator<Item = &'a [u8]>) -> IncomingCookies {
        self.read_known(headers, |_| None::<(TokenText, ())>).0
    }

    /// [`read`](Self::read), asking `known` first about the token's bytes:
    /// a token it knows (the session token cache's, byte for byte) is
    /// shared as it gives it, with what else it gives, and neither checked
    /// as text again nor copied. Any other is checked and copied once.
    pub(crate) fn read_known<'a, K>(
        &self,
        headers: impl IntoIterator<Item = &'a [u8]>,
        known: impl FnOnce(&[u8]) -> Option<(TokenText, K)>,
    ) -> (IncomingCookies, Option<K>) {
        let mut single: Option<&[u8]> = None;
        let mut chunks: Vec<(usize, &[u8])> = Vec::new();
        let mut present = Present::default();
        let mut malformed = false;
        let base = self.name.as_bytes();
        for header in headers {
            // memchr finds the separators in the long token value a word
            // at a time rather than a byte at a time.
            let mut start = 0;
            let ends = memchr::memchr_iter(b';', header).chain(std::iter::once(header.len()));
            for end in ends {
                let pair = &header[start..end];
                start = end + 1;
                let pair = pair.trim_ascii();
                let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                    continue;
                };
                let (name, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
                let slot = if name == base {
                    None
                } else if let Some(index) = name
                    .strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix(b"."))
                {
                    match chunk_index(index) {
                        Some(i) => Some(i),
                        None => continue, // NAME.x: not ours
                    }
                } else {
                    continue;
                };
                present.insert(slot);
                match slot {
                    None => {
                        malformed |= single.is_some();
                        single = Some(value);
                    }
                    Some(i) => {
                        malformed |= chunks.iter().any(|(j, _)| *j == i);
                        chunks.push((i, value));
                    }
                }
            }
        }
        let bytes: Option<Cow<'_, [u8]>> = match (single, chunks.is_empty()) {
            (Some(token), true) => Some(Cow::Borrowed(token)),
            (None, false) => {
                chunks.sort_by_key(|(i, _)| *i);
                let contiguous = chunks.iter().enumerate().all(|(n, (i, _))| n == *i);
                if contiguous && chunks.len() <= self.max_chunks {
                    Some(Cow::Owned(
                        chunks.iter().flat_map(|(_, v)| *v).copied().collect(),
                    ))
                } else {
                    malformed = true;
                    None
                }
            }
            (Some(_), false) => {
                malformed = true;
                None
            }
            (None, true) => None,
        };
        let bytes =
            bytes.filter(|t| !malformed && !t.is_empty() && t.len() <= self.max_token_len());
        let (token, also) = match bytes.as_deref().map(|bytes| (bytes, known(bytes))) {
            None => (None, None),
            Some((_, Some((text, also)))) => (Some(text), Some(also)),
            // A cookie value is a token only as ASCII text.
            Some((bytes, None)) => match std::str::from_utf8(bytes) {
                Ok(text) if text.is_ascii() => (Some(Arc::new(Wiped::new(text.to_owned()))), None),
                _ => (None, None),
            },
        };
        malformed |= token.is_none() && present.any();
        let incoming = IncomingCookies {
            token,
            present,
            malformed,
        };
        (incoming, also)
    }

    /// The `Set-Cookie` values that store `token`, in one cookie or in
    /// chunks, and remove the request's cookies the new set does not use.
    /// `max_age` is written only for persistent sessions.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn write(
        &self,
        token: &str,
        max_age: Duration,
        incoming: &IncomingCookies,
    ) -> Result<Vec<String>, TooLarge> {
        let chunk_len = self.chunk_len().max(1);
        let needed = token.len().div_ceil(chunk_len).max(1);
        if needed > self.max_chunks {
            return Err(TooLarge {
                len: token.len(),
                needed,
                max: self.max_chunks,
            });
        }
        let max_age =
            ::cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let mut out = Vec::with_capacity(needed + incoming.present.count());
        // The token is base64url and dots: ASCII, so byte chunks are valid text.
        let bytes = token.as_bytes();
        for (i, part) in bytes.chunks(chunk_len).enumerate() {
            let name = if needed == 1 {
                self.name.clone()
            } else {
                format!("{}.{i}", self.name)
            };
            let value = String::from_utf8_lossy(part).into_owned();
            let mut builder = self.build(name, value);
            if self.persistent {
                builder = builder.max_age(max_age);
            }
            out.push(builder.build().to_string());
        }
        // The request's cookies this set does not overwrite.
        let written = |slot: Option<usize>| match slot {
            None => needed == 1,
            Some(i) => needed > 1 && i < needed,
        };
        for stale in incoming.present.slots().filter(|&slot| !written(slot)) {
            out.push(self.removal(&self.slot_name(stale)));
        }
        Ok(out)
    }

    /// The `Set-Cookie` values that remove every session cookie the request
    /// carried (or the main one, when it carried none).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn remove(&self, incoming: &IncomingCookies) -> Vec<String> {
        if !incoming.present.any() {
            return vec![self.removal(&self.name)];
        }
        incoming
            .present
            .slots()
            .map(|slot| self.removal(&self.slot_name(slot)))
            .collect()
    }

    /// The name of the cookie in `slot`: `NAME`, or chunk `i`'s `NAME.i`.
    fn slot_name(&self, slot: Option<usize>) -> String {
        match slot {
            None => self.name.clone(),
            Some(i) => format!("{}.{i}", self.name),
        }
    }
}

/// Which session cookies a request carried: the single cookie (bit 16) and
/// the chunks (bits 0 to 15), so that reading them allocates nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Present(u32);

impl Present {
    const SINGLE: u32 = 1 << 16;

    fn insert(&mut self, slot: Option<usize>) {
        self.0 |= slot.map_or(Self::SINGLE, |i| 1 << i);
    }

    fn any(self) -> bool {
        self.0 != 0
    }

    fn count(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The slots present, in the order of their names (`NAME`, `NAME.0`,
    /// `NAME.1`, `NAME.10`, … `NAME.15`, `NAME.2`, …).
    fn slots(self) -> impl Iterator<Item = Option<usize>> {
        const BY_NAME: [usize; 16] = [0, 1, 10, 11, 12, 13, 14, 15, 2, 3, 4, 5, 6, 7, 8, 9];
        (self.0 & Self::SINGLE != 0)
            .then_some(None)
            .into_iter()
            .chain(
                BY_NAME
                    .into_iter()
                    .filter(move |&i| self.0 & (1 << i) != 0)
                    .map(Some),
            )
    }
}

/// A chunk index: a decimal number below 16 without leading zeros.
fn chunk_index(text: &[u8]) -> Option<usize> {
    match *text {
        [d @ b'0'..=b'9'] => Some(usize::from(d - b'0')),
        [b'1', d @ b'0'..=b'5'] => Some(10 + usize::from(d - b'0')),
        _ => None, // leading zeros, signs, anything else: not ours
    }
}

/// The session cookies a request carried.
#[derive(Clone, Default)]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) struct IncomingCookies {
    token: Option<TokenText>,
    present: Present,
    malformed: bool,
}

impl fmt::Debug for IncomingCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingCookies")
            .field(
                "token",
                &self.token.as_ref().map(|t| format!("[{} bytes]", t.len())),
            )
            .field("present", &format_args!("{:#x}", self.present.0))
            .field("malformed", &self.malformed)
            .finish()
    }
}

impl PartialEq for IncomingCookies {
    fn eq(&self, other: &Self) -> bool {
        (self.token(), self.present, self.malformed)
            == (other.token(), other.present, other.malformed)
    }
}

impl Eq for IncomingCookies {}

impl IncomingCookies {
    /// The joined token, when the cookies held a well-formed one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().map(|text| text.as_str())
    }

    /// The same token, shared.
    pub(crate) fn token_text(&self) -> Option<&TokenText> {
        self.token.as_ref()
    }

    /// Whether the request carried any session cookie, well-formed or
    /// not.
    pub fn any_present(&self) -> bool {
        self.present.any()
    }

    /// The names of the session cookies present, as `config` (the one
    /// that read them) names them, in the order of their names.
    pub fn present<'c>(&self, config: &'c CookieConfig) -> impl Iterator<Item = String> + 'c {
        self.present.slots().map(|slot| config.slot_name(slot))
    }

    /// Whether session cookies were present but could not form a token
    /// (missing or repeated chunks, too many, too long).
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure() {
        let config = CookieConfig::new();
        config.validate().unwrap();
        let set = config
            .write("tok", Duration::from_secs(60), &IncomingCookies::default())
            .unwrap();
        assert_eq!(set.len(), 1);
        let cookie = &set[0];
        for part in [
            "__Host-session=tok",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
        ] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
        assert!(
            !cookie.contains("Max-Age") && !cookie.contains("Domain"),
            "{cookie}"
        );
    }

    #[test]
    fn persistent_cookies_carry_max_age() {
        let config = CookieConfig::new().with_persistent(true);
        let set = config
            .write(
                "tok",
                Duration::from_secs(1800),
                &IncomingCookies::default(),
            )
            .unwrap();
        assert!(set[0].contains("Max-Age=1800"), "{}", set[0]);
    }

    #[test]
    fn host_prefix_rules_are_enforced() {
        let bad = [
            CookieConfig::new().with_secure(false),
            CookieConfig::new().with_domain("example.com"),
            CookieConfig::new().with_path("/app"),
            CookieConfig::new()
                .with_name("__Secure-s")
                .with_secure(false),
            CookieConfig::new()
                .with_name("s")
                .with_secure(false)
                .with_same_site(SameSite::None),
            CookieConfig::new().with_name("bad name"),
            CookieConfig::new().with_name("semi;colon"),
            CookieConfig::new().with_max_chunks(0),
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        CookieConfig::new()
            .with_name("sid")
            .with_secure(false)
            .with_path("/app")
            .validate()
            .unwrap();
    }

    #[test]
    fn large_tokens_are_chunked_and_joined() {
        let config = CookieConfig::new();
        let token: String = "abcdefghij".repeat(1000); // 10,000 bytes: 3 chunks
        let set = config
            .write(&token, Duration::ZERO, &IncomingCookies::default())
            .unwrap();
        assert_eq!(set.len(), 3);
        let pairs: Vec<String> = set
            .iter()
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect();
        for pair in &pairs {
            assert!(pair.len() <= 4000, "{} bytes", pair.len());
        }
        let header = pairs.join("; ");
        let incoming = config.read([header.as_bytes()]);
        assert_eq!(incoming.token(), Some(token.as_str()));
        assert!(!incoming.is_malformed());

        // Shrinking to one cookie removes the three chunks.
        let set = config.write("small", Duration::ZERO, &incoming).unwrap();
        assert_eq!(set.len(), 4);
        assert!(set[0].starts_with("__Host-session=small"));
        for i in 0..3 {
            let removal = set
                .iter()
                .find(|c| c.starts_with(&format!("__Host-session.{i}=")))
                .unwrap();
            assert!(removal.contains("Max-Age=0"), "{removal}");
        }
    }

    #[test]
    fn too_large_is_an_error_not_a_dropped_cookie() {
        let config = CookieConfig::new().with_max_chunks(2);
        let token = "x".repeat(9000);
        let err = config
            .write(&token, Duration::ZERO, &IncomingCookies::default())
            .unwrap_err();
        assert_eq!((err.needed, err.max), (3, 2));
    }

    #[test]
    fn broken_chunk_sets_are_malformed() {
        let config = CookieConfig::new();
        for header in [
            "__Host-session.0=a; __Host-session.2=c",
            "__Host-session.1=b",
            "__Host-session.0=a; __Host-session.0=b",
            "__Host-session=a; __Host-session.0=b",
            "__Host-session=a; __Host-session=b",
            "__Host-session=",
            "__Host-session=caf\u{e9}",
        ] {
            let incoming = config.read([header.as_bytes()]);
            assert_eq!(incoming.token(), None, "{header}");
            assert!(incoming.is_malformed(), "{header}");
            assert!(!config.remove(&incoming).is_empty());
        }
        let none = config.read([&b"other=1"[..]]);
        assert!(none.token().is_none() && !none.is_malformed());
    }

    #[test]
    fn other_cookies_never_spoil_the_session() {
        let config = CookieConfig::new();
        // Junk bytes in another cookie, a look-alike percent-encoded name, a
        // name that merely starts with ours: all ignored.
        let header: &[u8] = b"theme=\xff\xfe; %5F%5FHost-session=evil; __Host-session.x=1; \
            __Host-session.00=2; __Host-sessionX=3; __Host-session=good";
        let incoming = config.read([header]);
        assert_eq!(incoming.token(), Some("good"));
        assert!(!incoming.is_malformed());
        assert_eq!(
            incoming.present(&config).collect::<Vec<_>>(),
            vec!["__Host-session"]
        );
        // A value smuggling a separator stays one value.
        let incoming = config.read([&b"x=\"a%3B __Host-session.0%3Dz\"; __Host-session=t"[..]]);
        assert_eq!(incoming.token(), Some("t"));
    }

    #[test]
    fn stale_cookies_are_removed_in_the_order_of_their_names() {
        let config = CookieConfig::new();
        // A malformed mixture: the single cookie and chunks 10, 2 and 0.
        let incoming = config.read([&b"__Host-session.10=c; __Host-session=a; \
            __Host-session.2=b; __Host-session.0=d"[..]]);
        assert!(incoming.is_malformed());
        let names = |set: &[String]| -> Vec<String> {
            set.iter()
                .map(|c| c.split('=').next().unwrap().to_owned())
                .collect()
        };
        let order = [
            "__Host-session",
            "__Host-session.0",
            "__Host-session.10",
            "__Host-session.2",
        ];
        assert_eq!(incoming.present(&config).collect::<Vec<_>>(), order);
        assert_eq!(names(&config.remove(&incoming)), order);
        // One cookie written: the single one is overwritten, every chunk
        // removed, in the same order.
        let set = config
            .write("tok", Duration::from_secs(60), &incoming)
            .unwrap();
        assert_eq!(
            names(&set),
            ["__Host-session"]
                .into_iter()
                .chain(order[1..].iter().copied())
                .collect::<Vec<_>>()
        );
        assert!(set[1..].iter().all(|c| c.contains("Max-Age=0")), "{set:?}");
    }

    #[test]
    fn separators_anywhere_in_the_header() {
        let config = CookieConfig::new();
        for header in [
            &b"__Host-session=t"[..],
            b"__Host-session=t;",
            b";__Host-session=t",
            b";;  __Host-session=t ;; a=b;",
            b"a=b;__Host-session=t",
            b"a=b; __Host-session=t; c",
        ] {
            let incoming = config.read([header]);
            assert_eq!(
                incoming.token(),
                Some("t"),
                "{:?}",
                String::from_utf8_lossy(header)
            );
            assert!(!incoming.is_malformed());
        }
        for header in [&b""[..], b";", b";;;", b"a=b", b"__Host-session"] {
            let incoming = config.read([header]);
            assert_eq!(incoming.token(), None);
            assert!(
                !incoming.is_malformed(),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
        // Across several headers, and a repeat is malformed.
        let incoming = config.read([&b"a=b"[..], b"__Host-session=t"]);
        assert_eq!(incoming.token(), Some("t"));
        let incoming = config.read([&b"__Host-session=t"[..], b"__Host-session=u"]);
        assert!(incoming.is_malformed());
    }

    /// A token the cache knows is shared from it, neither checked nor
    /// copied; any other is checked as ASCII text and copied once; `known`
    /// is asked only about a well-formed token, joined from its chunks.
    #[test]
    fn a_known_token_is_shared_and_an_unknown_one_checked() {
        let config = CookieConfig::new();
        let kept: TokenText = Arc::new(Wiped::new("abc.def".to_owned()));
        let asked = std::cell::RefCell::new(Vec::new());
        let known = |bytes: &[u8]| {
            asked.borrow_mut().push(bytes.to_vec());
            (bytes == kept.as_bytes()).then(|| (Arc::clone(&kept), "hit"))
        };
        for header in [
            &b"__Host-session=abc.def"[..],
            b"a=1; __Host-session.1=.def; __Host-session.0=abc",
        ] {
            let (incoming, also) = config.read_known([header], known);
            assert!(Arc::ptr_eq(incoming.token_text().unwrap(), &kept));
            assert_eq!((also, incoming.is_malformed()), (Some("hit"), false));
        }
        let (incoming, also) = config.read_known([&b"__Host-session=abc.xyz"[..]], known);
        assert_eq!((incoming.token(), also), (Some("abc.xyz"), None));
        assert!(!Arc::ptr_eq(incoming.token_text().unwrap(), &kept));
        // Not ASCII: no token, whether or not `known` is asked.
        let (incoming, also) = config.read_known([&b"__Host-session=ab\xc3\xa9"[..]], known);
        assert_eq!(
            (incoming.token(), also, incoming.is_malformed()),
            (None, None, true)
        );
        assert_eq!(asked.borrow().len(), 4);
        // Malformed (a repeated cookie, a missing chunk, too long): `known`
        // is not asked.
        let long = format!("__Host-session={}", "a".repeat(config.max_token_len() + 1));
        for header in [
            &b"__Host-session=abc.def; __Host-session=abc.def"[..],
            b"__Host-session.1=abc.def",
            long.as_bytes(),
        ] {
            let (incoming, also) = config.read_known([header], known);
            assert_eq!(
                (incoming.token(), also, incoming.is_malformed()),
                (None, None, true)
            );
        }
        assert_eq!(asked.borrow().len(), 4);
    }
}

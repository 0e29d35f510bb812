//! A defence against cross-site request forgery for unsafe methods, from
//! the headers browsers send: `Sec-Fetch-Site` and `Origin`.
//!
//! Any method but `GET`, `HEAD`, `OPTIONS` and `TRACE` (so `POST`, `PUT`,
//! `PATCH`, `DELETE` and custom methods) is refused when `Sec-Fetch-Site` is
//! `cross-site`, or when `Origin` is present and is not an allowed origin
//! (by default the site's own scheme with the request's own `Host`; a
//! configured list for deployments behind proxies that rewrite `Host`).
//! Requests without either header (not from a browser, or a very old one)
//! pass: `SameSite=Lax` covers those.
//!
//! The scheme matters: a page on `http://app.example`, which anyone on the
//! network path can write, must not post to `https://app.example`.
//! Browsers count the two as the same site for `SameSite` (unless they
//! compare schemes) and may send `Sec-Fetch-Site: same-site`, so only the
//! `Origin` check refuses it.

use crate::cookie::CookieConfig;
pub use crate::integration::CsrfGuard;

/// Which origins may send unsafe requests (`POST`, `PUT`, `PATCH`,
/// `DELETE`, ...): by default the request's own host over the site's scheme
/// (https, or what the session cookie says); behind a proxy that rewrites
/// `Host`, a list. A request whose `Sec-Fetch-Site` is `cross-site`, or
/// whose `Origin` is not allowed, is answered 403.
///
/// ```
/// use jwe_session::revocation::MemoryStore;
/// use jwe_session::{CsrfConfig, Key, KeyAlgorithm, Keyring, SessionLayer};
///
/// # fn main() -> Result<(), jwe_session::Error> {
/// let behind_a_proxy = CsrfConfig::allow_origins(["https://app.example", "https://www.app.example"]);
/// let layer = SessionLayer::builder(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?), MemoryStore::new())
///     .csrf(Some(behind_a_proxy))
///     .build()?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrfConfig {
    allowed_origins: Vec<String>,
    /// The site's scheme; unset means https, unless
    /// [`CsrfConfig::for_cookies`] derives it from the cookie configuration.
    scheme: Option<SiteScheme>,
}

/// The scheme the protected site is served over, which an `Origin` must
/// have ([`CsrfConfig::with_scheme`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SiteScheme {
    /// `https://` (the default). On a loopback host (`localhost`,
    /// `*.localhost`, `127.0.0.0/8`, `[::1]`) `http://` is accepted too:
    /// browsers treat those as secure and keep `Secure` cookies over plain
    /// HTTP there, as in local development; nobody else can serve them.
    #[default]
    Https,
    /// `http://` only: a site served without TLS (development, with a
    /// session cookie that is not `Secure`).
    Http,
}

/// The parts of a request the check reads.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) struct CsrfRequest<'a> {
    /// The method, e.g. `"POST"`.
    pub method: &'a str,
    /// The `Host` header.
    pub host: Option<&'a str>,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a str>,
}

/// Why a request was refused (for logs; answer 403 and nothing more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) enum CsrfRejection {
    /// `Sec-Fetch-Site: cross-site`.
    #[error("cross-site request (Sec-Fetch-Site)")]
    CrossSite,
    /// `Origin` is not allowed.
    #[error("origin not allowed")]
    Origin,
}

impl CsrfConfig {
    /// Allows the request's own host only, over the site's scheme (https
    /// unless set otherwise).
    pub fn same_host() -> Self {
        CsrfConfig::default()
    }

    /// The scheme the site is served over (default https): an `Origin` of
    /// another scheme is refused, even with the request's own host and
    /// port. Only for [`CsrfConfig::same_host`]: the origins of
    /// [`CsrfConfig::allow_origins`] name their schemes.
    ///
    /// ```
    /// use jwe_session::{CsrfConfig, SiteScheme};
    /// // A development box served over plain http: its own http origin
    /// // may post; https is the default.
    /// let dev = CsrfConfig::same_host().with_scheme(SiteScheme::Http);
    /// # let _ = dev;
    /// ```
    #[must_use]
    pub fn with_scheme(mut self, scheme: SiteScheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// The scheme an `Origin` must have ([`CsrfConfig::with_scheme`]).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn scheme(&self) -> SiteScheme {
        self.scheme.unwrap_or_default()
    }

    /// The site's scheme from its session cookie, unless set with
    /// [`CsrfConfig::with_scheme`]: https for a `Secure` cookie (a browser
    /// sends it over https only, or to a loopback host), http for one that
    /// is not. The framework integrations call it with their cookie
    /// configuration.
    ///
    /// ```
    /// use jwe_session::cookie::CookieConfig;
    /// use jwe_session::csrf::{CsrfConfig, SiteScheme};
    /// let insecure = CookieConfig::new().with_name("session").with_secure(false);
    /// assert_eq!(CsrfConfig::same_host().for_cookies(&insecure).scheme(), SiteScheme::Http);
    /// assert_eq!(CsrfConfig::same_host().for_cookies(&CookieConfig::new()).scheme(), SiteScheme::Https);
    /// let explicit = CsrfConfig::same_host().with_scheme(SiteScheme::Https);
    /// assert_eq!(explicit.for_cookies(&insecure).scheme(), SiteScheme::Https);
    /// ```
    #[must_use]
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn for_cookies(mut self, cookies: &CookieConfig) -> Self {
        if self.scheme.is_none() {
            self.scheme = Some(if cookies.secure() {
                SiteScheme::Https
            } else {
                SiteScheme::Http
            });
        }
        self
    }

    /// Allows exactly these origins (`scheme://host[:port]`), for
    /// deployments behind proxies.
    pub fn allow_origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CsrfConfig {
            allowed_origins: origins
                .into_iter()
                .map(|o| o.into().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            scheme: None,
        }
    }

    /// Checks one request.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn check(&self, request: &CsrfRequest<'_>) -> Result<(), CsrfRejection> {
        if is_safe_method(request.method) {
            return Ok(());
        }
        if request
            .sec_fetch_site
            .is_some_and(|site| site.trim().eq_ignore_ascii_case("cross-site"))
        {
            return Err(CsrfRejection::CrossSite);
        }
        let Some(origin) = request.origin else {
            return Ok(());
        };
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if !self.allowed_origins.is_empty() {
            return if self.allowed_origins.contains(&origin) {
                Ok(())
            } else {
                Err(CsrfRejection::Origin)
            };
        }
        let Some(host) = request.host else {
            return Err(CsrfRejection::Origin);
        };
        let Some((scheme, authority)) = origin.split_once("://") else {
            return Err(CsrfRejection::Origin);
        };
        let scheme = match scheme {
            "https" => SiteScheme::Https,
            "http" => SiteScheme::Http,
            _ => return Err(CsrfRejection::Origin),
        };
        // Ports as browsers serialize origins: the scheme's default left out.
        let authority = without_default_port(authority, scheme);
        let host = without_default_port(host.trim(), scheme);
        if !authority.eq_ignore_ascii_case(host) {
            return Err(CsrfRejection::Origin);
        }
        let site = self.scheme();
        if scheme == site || (site == SiteScheme::Https && is_loopback(host)) {
            Ok(())
        } else {
            Err(CsrfRejection::Origin)
        }
    }
}

/// `authority` without `:443` for https or `:80` for http.
fn without_default_port(authority: &str, scheme: SiteScheme) -> &str {
    let port = match scheme {
        SiteScheme::Https => ":443",
        SiteScheme::Http => ":80",
    };
    authority.strip_suffix(port).unwrap_or(authority)
}

/// Whether the host of `authority` is one browsers treat as a secure
/// context over plain HTTP: `localhost` and its subdomains, `127.0.0.0/8`,
/// `[::1]`.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => return v6.split(']').next() == Some("::1"),
        None => authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(host, _)| host),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `method` is one the CSRF defence lets through unchecked: every
/// method but the safe ones (RFC 9110 §9.2.1) is checked, so custom methods
/// are covered too.
pub(crate) fn is_safe_method(method: &str) -> bool {
    // The methods as sent by every client first; then any other case.
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
        || ["GET", "HEAD", "OPTIONS", "TRACE"]
            .iter()
            .any(|safe| method.eq_ignore_ascii_case(safe))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post<'a>(
        host: Option<&'a str>,
        origin: Option<&'a str>,
        site: Option<&'a str>,
    ) -> CsrfRequest<'a> {
        CsrfRequest {
            method: "POST",
            host,
            origin,
            sec_fetch_site: site,
        }
    }

    #[test]
    fn same_host_rules() {
        let csrf = CsrfConfig::same_host();
        let host = Some("127.0.0.1:3000");
        assert!(csrf.check(&post(host, None, None)).is_ok());
        assert!(csrf
            .check(&post(
                host,
                Some("http://127.0.0.1:3000"),
                Some("same-origin")
            ))
            .is_ok());
        assert_eq!(
            csrf.check(&post(host, None, Some("cross-site"))),
            Err(CsrfRejection::CrossSite)
        );
        assert_eq!(
            csrf.check(&post(host, Some("http://evil.example"), None)),
            Err(CsrfRejection::Origin)
        );
        assert_eq!(
            csrf.check(&post(host, Some("null"), None)),
            Err(CsrfRejection::Origin)
        );
        assert_eq!(
            csrf.check(&post(None, Some("http://127.0.0.1:3000"), None)),
            Err(CsrfRejection::Origin)
        );
        let get = CsrfRequest {
            method: "GET",
            ..post(host, Some("http://evil.example"), Some("cross-site"))
        };
        assert!(csrf.check(&get).is_ok(), "safe methods pass");
        for method in ["PUT", "PATCH", "DELETE", "post", "PROPPATCH"] {
            let request = CsrfRequest {
                method,
                ..post(host, None, Some("cross-site"))
            };
            assert!(csrf.check(&request).is_err(), "{method}");
        }
    }

    /// Issue 10, section 5: the origin check compared host and port but not
    /// the scheme, so `http://app` was accepted for an https site.
    #[test]
    fn an_http_origin_is_refused_for_an_https_site() {
        let csrf = CsrfConfig::same_host();
        for site in [None, Some("same-site"), Some("same-origin")] {
            assert_eq!(
                csrf.check(&post(Some("app.example"), Some("http://app.example"), site)),
                Err(CsrfRejection::Origin),
                "{site:?}"
            );
            assert_eq!(
                csrf.check(&post(
                    Some("app.example:8443"),
                    Some("http://app.example:8443"),
                    site
                )),
                Err(CsrfRejection::Origin),
                "{site:?}"
            );
        }
    }

    #[test]
    fn the_origin_must_have_the_sites_scheme() {
        let https = CsrfConfig::same_host();
        assert_eq!(https.scheme(), SiteScheme::Https);
        let http = CsrfConfig::same_host().with_scheme(SiteScheme::Http);
        let host = Some("app.example");
        assert!(https
            .check(&post(host, Some("https://app.example"), None))
            .is_ok());
        assert!(http
            .check(&post(host, Some("http://app.example"), None))
            .is_ok());
        assert_eq!(
            http.check(&post(host, Some("https://app.example"), None)),
            Err(CsrfRejection::Origin)
        );
        for origin in [
            "ftp://app.example",
            "app.example",
            "//app.example",
            "https:app.example",
        ] {
            for csrf in [&https, &http] {
                assert_eq!(
                    csrf.check(&post(host, Some(origin), None)),
                    Err(CsrfRejection::Origin),
                    "{origin}"
                );
            }
        }
    }

    #[test]
    fn the_scheme_follows_the_session_cookie_unless_set() {
        let secure = CookieConfig::new();
        let insecure = CookieConfig::new().with_name("session").with_secure(false);
        let host = Some("devbox:8080");
        let from_http = post(host, Some("http://devbox:8080"), None);
        let from_https = post(host, Some("https://devbox:8080"), None);
        let dev = CsrfConfig::same_host().for_cookies(&insecure);
        assert_eq!(dev.scheme(), SiteScheme::Http);
        assert!(dev.check(&from_http).is_ok());
        assert!(dev.check(&from_https).is_err());
        let prod = CsrfConfig::same_host().for_cookies(&secure);
        assert_eq!(prod.scheme(), SiteScheme::Https);
        assert!(prod.check(&from_http).is_err());
        assert!(prod.check(&from_https).is_ok());
        // Set explicitly, the scheme stays.
        let explicit = CsrfConfig::same_host()
            .with_scheme(SiteScheme::Https)
            .for_cookies(&insecure);
        assert_eq!(explicit.scheme(), SiteScheme::Https);
        let explicit = CsrfConfig::same_host()
            .with_scheme(SiteScheme::Http)
            .for_cookies(&secure);
        assert_eq!(explicit.scheme(), SiteScheme::Http);
    }

    #[test]
    fn schemes_and_hosts_compare_in_any_case() {
        let csrf = CsrfConfig::same_host();
        for (host, origin) in [
            ("APP.example", "HTTPS://App.Example"),
            ("app.example", "Https://APP.EXAMPLE/"),
            ("App.Example:8443", "hTTpS://app.example:8443"),
        ] {
            assert!(
                csrf.check(&post(Some(host), Some(origin), None)).is_ok(),
                "{origin}"
            );
        }
        assert!(csrf
            .check(&post(Some("APP.example"), Some("HTTP://APP.EXAMPLE"), None))
            .is_err());
        let http = CsrfConfig::same_host().with_scheme(SiteScheme::Http);
        assert!(http
            .check(&post(Some("App.Example"), Some("HTTP://app.EXAMPLE"), None))
            .is_ok());
    }

    #[test]
    fn default_ports_are_left_out_on_either_side() {
        let https = CsrfConfig::same_host();
        let http = CsrfConfig::same_host().with_scheme(SiteScheme::Http);
        for (csrf, host, origin) in [
            (&https, "app.example", "https://app.example:443"),
            (&https, "app.example:443", "https://app.example"),
            (&https, "app.example:443", "https://app.example:443"),
            (&http, "app.example", "http://app.example:80"),
            (&http, "app.example:80", "http://app.example"),
        ] {
            assert!(
                csrf.check(&post(Some(host), Some(origin), None)).is_ok(),
                "{host} {origin}"
            );
        }
        for (csrf, host, origin) in [
            // Another scheme's default port is a port like any other.
            (&https, "app.example", "https://app.example:80"),
            (&https, "app.example:80", "https://app.example"),
            (&http, "app.example", "http://app.example:443"),
            (&https, "app.example", "https://app.example:8443"),
            (&https, "app.example:8443", "https://app.example"),
            // The http origin of an https site, on its default port or not.
            (&https, "app.example:443", "http://app.example:443"),
            (&https, "app.example:80", "http://app.example"),
            (&https, "app.example", "http://app.example:80"),
        ] {
            assert_eq!(
                csrf.check(&post(Some(host), Some(origin), None)),
                Err(CsrfRejection::Origin),
                "{host} {origin}"
            );
        }
    }

    #[test]
    fn loopback_hosts_may_use_http_for_an_https_site() {
        let csrf = CsrfConfig::same_host();
        for (host, origin) in [
            ("127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("localhost:3000", "http://localhost:3000"),
            ("app.localhost:3000", "http://app.localhost:3000"),
            ("127.1.2.3", "http://127.1.2.3"),
            ("[::1]:3000", "http://[::1]:3000"),
            ("localhost", "http://localhost:80"),
            ("127.0.0.1:3000", "https://127.0.0.1:3000"),
        ] {
            assert!(
                csrf.check(&post(Some(host), Some(origin), None)).is_ok(),
                "{origin}"
            );
        }
        for (host, origin) in [
            // Another port, another host: refused as before.
            ("127.0.0.1:3000", "http://127.0.0.1:3001"),
            ("localhost:3000", "http://127.0.0.1:3000"),
            // Not loopback.
            ("localhost.example:3000", "http://localhost.example:3000"),
            ("10.0.0.1:3000", "http://10.0.0.1:3000"),
            ("128.0.0.1", "http://128.0.0.1"),
            ("[::2]:3000", "http://[::2]:3000"),
            ("127.0.0.1.example", "http://127.0.0.1.example"),
        ] {
            assert_eq!(
                csrf.check(&post(Some(host), Some(origin), None)),
                Err(CsrfRejection::Origin),
                "{origin}"
            );
        }
    }

    #[test]
    fn configured_origins_for_proxies() {
        let csrf = CsrfConfig::allow_origins(["https://app.example/"]);
        let inner_host = Some("10.0.0.5:8080");
        assert!(csrf
            .check(&post(inner_host, Some("https://APP.example"), None))
            .is_ok());
        assert!(csrf
            .check(&post(inner_host, Some("http://10.0.0.5:8080"), None))
            .is_err());
    }
}

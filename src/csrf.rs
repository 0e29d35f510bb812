//! A defence against cross-site request forgery for unsafe methods, from
//! the headers browsers send: `Sec-Fetch-Site` and `Origin`.
//!
//! Any method but `GET`, `HEAD`, `OPTIONS` and `TRACE` (so `POST`, `PUT`,
//! `PATCH`, `DELETE` and custom methods) is refused when `Sec-Fetch-Site` is
//! `cross-site`, or when `Origin` is present and is not an allowed origin
//! (by default the request's own `Host`; a configured list for deployments
//! behind proxies that rewrite `Host`). Requests without either header (not
//! from a browser, or a very old one) pass: `SameSite=Lax` covers those.

/// Which origins may send unsafe requests.
///
/// ```
/// use jwe_session::csrf::{CsrfConfig, CsrfRequest};
/// let csrf = CsrfConfig::same_host();
/// let request = CsrfRequest { method: "POST", host: Some("app.example"), origin: Some("https://evil.example"), sec_fetch_site: None };
/// assert!(csrf.check(&request).is_err());
/// let request = CsrfRequest { origin: Some("https://app.example"), ..request };
/// assert!(csrf.check(&request).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrfConfig {
    allowed_origins: Vec<String>,
}

/// The parts of a request the check reads.
#[derive(Debug, Clone, Copy)]
pub struct CsrfRequest<'a> {
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
pub enum CsrfRejection {
    /// `Sec-Fetch-Site: cross-site`.
    #[error("cross-site request (Sec-Fetch-Site)")]
    CrossSite,
    /// `Origin` is not allowed.
    #[error("origin not allowed")]
    Origin,
}

impl CsrfConfig {
    /// Allows the request's own host only.
    pub fn same_host() -> Self {
        CsrfConfig::default()
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
        }
    }

    /// Checks one request.
    pub fn check(&self, request: &CsrfRequest<'_>) -> Result<(), CsrfRejection> {
        // Every method but the safe ones (RFC 9110 §9.2.1) is checked, so
        // custom methods are covered too.
        if ["GET", "HEAD", "OPTIONS", "TRACE"]
            .iter()
            .any(|safe| request.method.eq_ignore_ascii_case(safe))
        {
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
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        match (authority, request.host) {
            (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host.trim()) => Ok(()),
            _ => Err(CsrfRejection::Origin),
        }
    }
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

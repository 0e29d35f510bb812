//! The DBSC headers: the two a browser sends, read in both their quoted
//! (structured-field string) and bare forms, and the two the layer writes.

use super::DeviceAlgorithm;

/// The longest header value read: an RS256 proof with a 4096-bit key in
/// its header is about 2.3 KiB.
pub(crate) const MAX_VALUE_LEN: usize = 8192;

/// The value of `Sec-Secure-Session-Id` or `Secure-Session-Response`: a
/// structured-field string (`"abc"`) or the bare value Chromium sends
/// (`abc`), of base64url characters and dots only, 1 to
/// [`MAX_VALUE_LEN`] long. `None` for anything else (parameters, lists,
/// escapes, other characters).
pub(crate) fn parse_item(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    let valid = !inner.is_empty()
        && inner.len() <= MAX_VALUE_LEN
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    valid.then_some(inner)
}

/// `Secure-Session-Registration`: the algorithms, the path and the
/// challenge.
pub(crate) fn offer(algorithms: &[DeviceAlgorithm], path: &str, challenge: &str) -> String {
    let names: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
    format!(
        "({});path=\"{path}\";challenge=\"{challenge}\"",
        names.join(" ")
    )
}

/// `Secure-Session-Challenge`: the challenge, for the session `id`.
pub(crate) fn challenge(challenge: &str, id: &str) -> String {
    format!("\"{challenge}\";id=\"{id}\"")
}

/// A path on this site that a structured-field string can carry and a
/// request line can match: one leading `/`, printable ASCII without `"`,
/// `\`, `?` or `#`.
pub(crate) fn is_site_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'?' | b'#'))
}

/// An `https` origin: scheme, host, optional port; nothing else.
pub(crate) fn is_origin(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("https://") else {
        return false;
    };
    is_host(authority)
}

/// A `Host` header value fit for an origin: a DNS name, an IPv4 address or
/// a bracketed IPv6 one, with an optional port.
pub(crate) fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_quoted_and_bare() {
        assert_eq!(parse_item("abc-_.9"), Some("abc-_.9"));
        assert_eq!(parse_item("\"abc\""), Some("abc"));
        assert_eq!(parse_item("  \"abc\" "), Some("abc"));
        for bad in [
            "",
            "\"\"",
            "\"abc",
            "abc\"",
            "a b",
            "\"a\\\"b\"",
            "a;b=1",
            "\"a\";id=\"b\"",
            "(a)",
            "a,b",
            "ä",
        ] {
            assert_eq!(parse_item(bad), None, "{bad:?}");
        }
        assert_eq!(parse_item(&"a".repeat(MAX_VALUE_LEN + 1)), None);
    }

    #[test]
    fn headers_are_written_as_structured_fields() {
        assert_eq!(
            offer(
                &[DeviceAlgorithm::Es256, DeviceAlgorithm::Rs256],
                "/dbsc/register",
                "c1"
            ),
            "(ES256 RS256);path=\"/dbsc/register\";challenge=\"c1\""
        );
        assert_eq!(challenge("c2", "id"), "\"c2\";id=\"id\"");
    }

    #[test]
    fn paths_and_origins() {
        assert!(is_site_path("/dbsc/register"));
        for bad in ["dbsc", "//evil", "/a b", "/a\"", "/a?b", "/a#b", "/a\\b"] {
            assert!(!is_site_path(bad), "{bad:?}");
        }
        assert!(is_origin("https://example.com"));
        assert!(is_origin("https://localhost:8443"));
        assert!(is_origin("https://[::1]:8443"));
        for bad in [
            "http://example.com",
            "https://",
            "https://a/b",
            "https://a b",
        ] {
            assert!(!is_origin(bad), "{bad:?}");
        }
    }
}

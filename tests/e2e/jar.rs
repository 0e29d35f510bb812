//! A tiny cookie jar for the end-to-end tests.
//!
//! reqwest's own cookie store is not used: the session cookies are `Secure`
//! and `__Host-`, and a real client rightly never sends those over plain
//! http. This jar keeps every cookie it is given, whatever its attributes,
//! so the tests can drive the server over http on 127.0.0.1.

use std::collections::BTreeMap;

/// The session cookie's name (and the prefix of its chunks).
pub const SESSION: &str = "__Host-session";

/// One parsed `Set-Cookie` header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// The line as received.
    pub raw: String,
    /// The cookie's name.
    pub name: String,
    /// The cookie's value.
    pub value: String,
    /// The attributes in order: name as sent, and the value if any.
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    /// Parses `name=value; Attr; Attr=value`.
    pub fn parse(raw: &str) -> SetCookie {
        let mut parts = raw.split(';');
        let pair = parts.next().unwrap_or_default();
        let (name, value) = pair
            .split_once('=')
            .unwrap_or_else(|| panic!("Set-Cookie without '=': {raw:?}"));
        let attributes = parts
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                None => (a.to_owned(), None),
            })
            .collect();
        SetCookie {
            raw: raw.to_owned(),
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        }
    }

    /// The attribute `name` (case-insensitive): `Some(None)` for a flag,
    /// `Some(Some(value))` for a valued one, `None` when absent.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Whether the attribute `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// `Max-Age`, when present.
    pub fn max_age(&self) -> Option<i64> {
        self.attribute("Max-Age").flatten().map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad Max-Age in {:?}", self.raw))
        })
    }

    /// Whether this line deletes the cookie (`Max-Age` zero or less).
    pub fn is_removal(&self) -> bool {
        self.max_age().is_some_and(|age| age <= 0)
    }

    /// The length in bytes of `name=value`.
    pub fn pair_len(&self) -> usize {
        self.name.len() + 1 + self.value.len()
    }
}

/// Cookies by name, as a browser would keep them for one site.
///
/// Clone a jar to keep an old token for replay; [`Jar::set`] a value to
/// tamper with it.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    cookies: BTreeMap<String, String>,
    last: Vec<String>,
}

impl Jar {
    /// An empty jar (a new browser).
    pub fn new() -> Jar {
        Jar::default()
    }

    /// Takes in a response's `Set-Cookie` lines: stores or deletes each,
    /// and remembers the lines as the last response's.
    pub fn absorb(&mut self, lines: &[String]) {
        for line in lines {
            let cookie = SetCookie::parse(line);
            if cookie.is_removal() {
                self.cookies.remove(&cookie.name);
            } else {
                self.cookies.insert(cookie.name, cookie.value);
            }
        }
        self.last = lines.to_vec();
    }

    /// The `Cookie` request header, when the jar is not empty.
    pub fn cookie_header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// The value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Sets (or replaces) cookie `name`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// Deletes cookie `name`.
    pub fn remove(&mut self, name: &str) {
        self.cookies.remove(name);
    }

    /// The names of the cookies held.
    pub fn names(&self) -> Vec<String> {
        self.cookies.keys().cloned().collect()
    }

    /// The raw `Set-Cookie` lines of the last response this jar took in.
    pub fn last_set_cookies(&self) -> &[String] {
        &self.last
    }

    /// The session token: the single cookie's value, or the chunks
    /// `NAME.0`, `NAME.1`, … joined.
    pub fn session_token(&self) -> Option<String> {
        if let Some(token) = self.get(SESSION) {
            return Some(token.to_owned());
        }
        let mut token = String::new();
        let mut i = 0;
        while let Some(part) = self.get(&format!("{SESSION}.{i}")) {
            token.push_str(part);
            i += 1;
        }
        (i > 0).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_applies_set_cookie_lines() {
        let c = SetCookie::parse("__Host-session=abc.def; HttpOnly; SameSite=Lax; Secure; Path=/");
        assert_eq!((c.name.as_str(), c.value.as_str()), (SESSION, "abc.def"));
        assert!(c.has("httponly") && c.has("Secure"));
        assert_eq!(c.attribute("samesite"), Some(Some("Lax")));
        assert_eq!(c.attribute("Domain"), None);
        assert!(!c.is_removal());

        let mut jar = Jar::new();
        jar.absorb(&[c.raw.clone(), "other=1".to_owned()]);
        assert_eq!(
            jar.cookie_header().as_deref(),
            Some("__Host-session=abc.def; other=1")
        );
        jar.absorb(&["__Host-session=; Max-Age=0; Path=/".to_owned()]);
        assert_eq!(jar.names(), vec!["other".to_owned()]);
        assert_eq!(jar.last_set_cookies().len(), 1);

        jar.absorb(&[
            "__Host-session.1=cd".to_owned(),
            "__Host-session.0=ab".to_owned(),
        ]);
        assert_eq!(jar.session_token().as_deref(), Some("abcd"));
    }
}

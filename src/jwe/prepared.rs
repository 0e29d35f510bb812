//! Protected headers prepared once per key and seal options, for sealing,
//! and recognised when opening so that they are not parsed again.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::Value;

use super::header::{parse_header_fast, Header};
use super::seal::{encoded_len, SealOptions};
use crate::b64;
use crate::error::SealError;
use crate::key::Key;

/// A protected header prepared once for a key and seal options: the JSON
/// up to (not including) its closing brace, and the whole header encoded
/// when it never changes (every algorithm but AES-GCM key wrapping, whose
/// header carries a fresh IV and tag).
#[derive(Debug, Clone)]
pub(crate) struct PreparedHeader {
    pub(super) json_open: String,
    pub(super) encoded: Option<String>,
    /// What opening a token with this header parses it to (for AES-GCM key
    /// wrapping, with the IV and tag left to fill in); set when cached.
    parsed: Option<Header>,
}

/// The IV and tag given to the prepared header of AES-GCM key wrapping,
/// to parse it once; each token has its own.
const KW_PARAMS_PLACEHOLDER: &str =
    ",\"iv\":\"AAAAAAAAAAAAAAAA\",\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA\"}";

impl PreparedHeader {
    pub(super) fn new(key: &Key, options: &SealOptions) -> Result<PreparedHeader, SealError> {
        for (name, value) in [("typ", options.typ()), ("cty", options.cty())] {
            if value.is_some_and(|value| !SealOptions::is_writable(value)) {
                return Err(SealError::InvalidHeader(name));
            }
        }
        let mut json = String::with_capacity(160);
        json.push_str("{\"alg\":\"");
        json.push_str(key.alg().name());
        json.push_str("\",\"enc\":\"");
        json.push_str(key.enc().name());
        json.push_str("\",\"kid\":");
        json.push_str(&Value::String(key.kid().to_owned()).to_string());
        for (name, value) in [("typ", options.typ()), ("cty", options.cty())] {
            if let Some(value) = value {
                json.push_str(",\"");
                json.push_str(name);
                json.push_str("\":\"");
                json.push_str(value);
                json.push('"');
            }
        }
        let encoded = (!key.alg().is_gcm_kw()).then(|| {
            let mut whole = String::with_capacity(json.len() + 1);
            whole.push_str(&json);
            whole.push('}');
            b64::encode(whole.as_bytes())
        });
        Ok(PreparedHeader {
            json_open: json,
            encoded,
            parsed: None,
        })
    }

    /// Parses the header, by the same parser that opens tokens, so a token
    /// with this header opens to exactly what [`header_of`] gives.
    ///
    /// [`header_of`]: PreparedHeader::header_of
    fn with_parsed(mut self) -> PreparedHeader {
        let mut whole = self.json_open.clone();
        whole.push_str(if self.encoded.is_some() {
            "}"
        } else {
            KW_PARAMS_PLACEHOLDER
        });
        self.parsed = parse_header_fast(whole.as_bytes());
        self
    }

    /// The header `encoded` parses to, when it is this one (for AES-GCM key
    /// wrapping: this one with any IV and tag of the right form).
    fn header_of(&self, encoded: &str) -> Option<Header> {
        let parsed = self.parsed.as_ref()?;
        if let Some(mine) = &self.encoded {
            return (mine == encoded).then(|| parsed.clone());
        }
        // `,"iv":"<16 chars>","tag":"<22 chars>"}` after the fixed part.
        let tail_len = KW_PARAMS_PLACEHOLDER.len();
        let len = self.json_open.len() + tail_len;
        if encoded.len() != encoded_len(len) {
            return None;
        }
        let mut stack = [0u8; 384];
        let decoded = stack.get_mut(..len + 2)?;
        let n = b64::decode_slice(encoded, decoded).ok()?;
        let (open, tail) = decoded[..n].split_at_checked(self.json_open.len())?;
        if open != self.json_open.as_bytes() {
            return None;
        }
        let tail = std::str::from_utf8(tail).ok()?;
        let iv = tail.strip_prefix(",\"iv\":\"")?;
        let (iv, rest) = iv.split_at_checked(16)?;
        let tag = rest.strip_prefix("\",\"tag\":\"")?;
        let (tag, rest) = tag.split_at_checked(22)?;
        let b64url = |text: &str| {
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if rest != "\"}" || !b64url(iv) || !b64url(tag) {
            return None;
        }
        let mut header = parsed.clone();
        header.iv = Some(iv.to_owned());
        header.tag = Some(tag.to_owned());
        Some(header)
    }
}

/// Headers prepared for one key, for the first two seal options seen (a
/// keyring seals with one or two: its own and its session manager's).
#[derive(Debug, Default)]
pub(crate) struct HeaderCache {
    slots: [OnceLock<(SealOptions, PreparedHeader)>; 2],
}

impl HeaderCache {
    /// The header `encoded` parses to, when it is one this cache prepared.
    pub(crate) fn lookup(&self, encoded: &str) -> Option<Header> {
        self.slots
            .iter()
            .filter_map(OnceLock::get)
            .find_map(|(_, prepared)| prepared.header_of(encoded))
    }

    pub(super) fn get(
        &self,
        key: &Key,
        options: &SealOptions,
    ) -> Result<Cow<'_, PreparedHeader>, SealError> {
        for slot in &self.slots {
            match slot.get() {
                Some((seen, header)) if seen == options => return Ok(Cow::Borrowed(header)),
                Some(_) => continue,
                None => {
                    let header = PreparedHeader::new(key, options)?.with_parsed();
                    let _ = slot.set((options.clone(), header.clone()));
                    return Ok(Cow::Owned(header));
                }
            }
        }
        PreparedHeader::new(key, options).map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::KeyAlgorithm;
    use crate::jwe::{open_with_key, parse, seal_cached, OpenOptions};

    #[test]
    fn prepared_headers_open_to_what_parsing_gives() {
        for alg in [
            KeyAlgorithm::Dir,
            KeyAlgorithm::A128Kw,
            KeyAlgorithm::A256Kw,
            KeyAlgorithm::A128GcmKw,
            KeyAlgorithm::A256GcmKw,
        ] {
            for kid in ["k1", "kid \"quoted\" é"] {
                let Ok(key) = Key::generate(alg).unwrap().with_kid(kid) else {
                    continue;
                };
                let cache = HeaderCache::default();
                for options in [
                    SealOptions::new(),
                    SealOptions::new().with_typ("jwe-session").with_cty("JWT"),
                ] {
                    for _ in 0..2 {
                        let token = seal_cached(&key, b"payload", &options, &cache).unwrap();
                        let h = token.split('.').next().unwrap();
                        let known = cache.lookup(h).expect("a prepared header");
                        let parsed = parse(&token, &OpenOptions::new()).unwrap();
                        assert!(known == *parsed.header(), "{alg:?} {kid}");
                        assert_eq!(known.to_json(), parsed.header().to_json());
                        assert_eq!(
                            known.to_json().keys().collect::<Vec<_>>(),
                            parsed.header().to_json().keys().collect::<Vec<_>>()
                        );
                        let (_, plaintext) =
                            open_with_key(&token, &key, &OpenOptions::new()).unwrap();
                        assert_eq!(&plaintext[..], b"payload");
                        // Any other header is parsed the long way.
                        let mut other = h.to_owned();
                        other.pop();
                        assert!(cache.lookup(&other).is_none());
                        assert!(cache.lookup(&format!("{h}A")).is_none());
                    }
                }
            }
        }
    }
}

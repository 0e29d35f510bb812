//! The protected header: what a token's header may hold, and its two
//! parsers, a fast one for headers that break no rule and the strict one
//! that says why a header is refused.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::alg::{ContentEncryption, KeyAlgorithm};
use crate::error::Rejection;

/// A token's protected header, after strict parsing.
#[derive(Clone)]
pub struct Header {
    pub(super) alg: KeyAlgorithm,
    pub(super) enc: ContentEncryption,
    kid: Option<Arc<str>>,
    typ: Option<Arc<str>>,
    cty: Option<Arc<str>>,
    pub(super) iv: Option<String>,
    pub(super) tag: Option<String>,
    /// The members in the order the token had them, for `to_json`.
    order: [Member; 7],
    members: u8,
    /// Built on first use: opening never needs it.
    json: OnceLock<Map<String, Value>>,
}

/// The members a header may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Alg,
    Enc,
    Kid,
    Typ,
    Cty,
    Iv,
    Tag,
}

impl Member {
    fn from_name(name: &str) -> Option<Member> {
        Some(match name {
            "alg" => Member::Alg,
            "enc" => Member::Enc,
            "kid" => Member::Kid,
            "typ" => Member::Typ,
            "cty" => Member::Cty,
            "iv" => Member::Iv,
            "tag" => Member::Tag,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Member::Alg => "alg",
            Member::Enc => "enc",
            Member::Kid => "kid",
            Member::Typ => "typ",
            Member::Cty => "cty",
            Member::Iv => "iv",
            Member::Tag => "tag",
        }
    }
}

impl PartialEq for Header {
    /// Every member is one of these fields, a string, and `alg` and `enc`
    /// map one to one to their names: equal fields are equal JSON objects.
    fn eq(&self, other: &Header) -> bool {
        self.alg == other.alg
            && self.enc == other.enc
            && self.kid == other.kid
            && self.typ == other.typ
            && self.cty == other.cty
            && self.iv == other.iv
            && self.tag == other.tag
    }
}

impl Eq for Header {}

impl Header {
    /// A header with nothing read yet, for the parsers to fill in.
    fn blank(members: u8) -> Header {
        Header {
            alg: KeyAlgorithm::A256Kw,
            enc: ContentEncryption::A256Gcm,
            kid: None,
            typ: None,
            cty: None,
            iv: None,
            tag: None,
            order: [Member::Alg; 7],
            members,
            json: OnceLock::new(),
        }
    }

    /// Whether `iv` and `tag` are both present for AES-GCM key wrapping,
    /// and both absent for every other algorithm.
    fn key_wrap_params_fit(&self) -> bool {
        if self.alg.is_gcm_kw() {
            self.iv.is_some() && self.tag.is_some()
        } else {
            self.iv.is_none() && self.tag.is_none()
        }
    }

    /// The key management algorithm.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The content encryption.
    pub fn enc(&self) -> ContentEncryption {
        self.enc
    }

    /// The key id, when present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` member, when present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `cty` member, when present.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }

    /// The header as the JSON object it was.
    pub fn to_json(&self) -> &Map<String, Value> {
        self.json.get_or_init(|| {
            let mut json = Map::new();
            for &member in &self.order[..usize::from(self.members)] {
                let value = match member {
                    Member::Alg => Some(self.alg.name()),
                    Member::Enc => Some(self.enc.name()),
                    Member::Kid => self.kid.as_deref(),
                    Member::Typ => self.typ.as_deref(),
                    Member::Cty => self.cty.as_deref(),
                    Member::Iv => self.iv.as_deref(),
                    Member::Tag => self.tag.as_deref(),
                };
                if let Some(value) = value {
                    json.insert(member.name().to_owned(), Value::String(value.to_owned()));
                }
            }
            json
        })
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("kid", &self.kid)
            .field("typ", &self.typ)
            .field("cty", &self.cty)
            .finish_non_exhaustive()
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The header members of a header that breaks no rule, in order; anything
/// else (not an object, a repeated or unknown member, a value that is not a
/// string) fails, and the full parser then says why.
struct FastHeader<'a>([Option<(Member, Cow<'a, str>)>; 7], u8);

impl<'de> Deserialize<'de> for FastHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FastVisitor;
        impl<'de> Visitor<'de> for FastVisitor {
            type Value = FastHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastHeader<'de>, A::Error> {
                let mut out = FastHeader(Default::default(), 0);
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    let member = Member::from_name(&name)
                        .ok_or_else(|| serde::de::Error::custom("unknown"))?;
                    let Text(value) = map.next_value::<Text<'de>>()?;
                    let count = usize::from(out.1);
                    if count == 7
                        || out.0[..count]
                            .iter()
                            .any(|m| m.as_ref().is_some_and(|(seen, _)| *seen == member))
                    {
                        return Err(serde::de::Error::custom("duplicate"));
                    }
                    out.0[count] = Some((member, value));
                    out.1 += 1;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(FastVisitor)
    }
}

/// The header of a token that breaks no rule, parsed without building a
/// JSON tree; `None` for anything else, which [`parse_header`] then refuses
/// with its precise reason. Whatever this accepts, `parse_header` accepts
/// too, with an equal result.
pub(super) fn parse_header_fast(bytes: &[u8]) -> Option<Header> {
    let FastHeader(members, count) = serde_json::from_slice(bytes).ok()?;
    let mut header = Header::blank(count);
    let (mut alg, mut enc) = (None, None);
    for (i, (member, value)) in members.into_iter().flatten().enumerate() {
        header.order[i] = member;
        match member {
            Member::Alg => alg = Some(KeyAlgorithm::from_name(&value)?),
            Member::Enc => enc = Some(ContentEncryption::from_name(&value)?),
            Member::Kid => header.kid = Some(Arc::from(value)),
            Member::Typ => header.typ = Some(Arc::from(value)),
            Member::Cty => header.cty = Some(Arc::from(value)),
            Member::Iv => header.iv = Some(value.into_owned()),
            Member::Tag => header.tag = Some(value.into_owned()),
        }
    }
    header.alg = alg?;
    header.enc = enc?;
    if !header.key_wrap_params_fit() {
        return None;
    }
    Some(header)
}

/// A JSON object whose members are collected in order, refusing duplicates.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut out = Map::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    if out.contains_key(&name) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    out.insert(name, value);
                }
                Ok(StrictObject(out))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

pub(super) fn parse_header(bytes: &[u8]) -> Result<Header, Rejection> {
    let StrictObject(json) = serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().starts_with("duplicate member") {
            Rejection::malformed("header repeats a member")
        } else {
            Rejection::malformed("header is not one JSON object")
        }
    })?;
    let mut alg = None;
    let mut enc = None;
    let mut header = Header::blank(0);
    // The algorithms first, so the reason logged for a foreign token names
    // them rather than one of their parameters (`p2s`, `epk`, ...).
    if let Some(Value::String(alg)) = json.get("alg") {
        if KeyAlgorithm::from_name(alg).is_none() {
            return Err(Rejection::malformed("alg not supported"));
        }
    }
    if let Some(Value::String(enc)) = json.get("enc") {
        if ContentEncryption::from_name(enc).is_none() {
            return Err(Rejection::malformed("enc not supported"));
        }
    }
    for (name, value) in &json {
        let text = || match value {
            Value::String(text) => Ok(text.clone()),
            _ => Err(Rejection::malformed("header member is not a string")),
        };
        match name.as_str() {
            "alg" => alg = Some(text()?),
            "enc" => enc = Some(text()?),
            "kid" => header.kid = Some(Arc::from(text()?)),
            "typ" => header.typ = Some(Arc::from(text()?)),
            "cty" => header.cty = Some(Arc::from(text()?)),
            "iv" => header.iv = Some(text()?),
            "tag" => header.tag = Some(text()?),
            "zip" => return Err(Rejection::malformed("compression (zip) refused")),
            "crit" => return Err(Rejection::malformed("critical extensions (crit) refused")),
            "jwk" | "jku" | "x5u" | "x5c" | "x5t" | "x5t#S256" => {
                return Err(Rejection::malformed(
                    "keys named or carried by the token refused",
                ))
            }
            _ => return Err(Rejection::malformed("unknown header member")),
        }
    }
    let alg = alg.ok_or_else(|| Rejection::malformed("header has no alg"))?;
    let enc = enc.ok_or_else(|| Rejection::malformed("header has no enc"))?;
    header.alg =
        KeyAlgorithm::from_name(&alg).ok_or_else(|| Rejection::malformed("alg not supported"))?;
    header.enc = ContentEncryption::from_name(&enc)
        .ok_or_else(|| Rejection::malformed("enc not supported"))?;
    if !header.key_wrap_params_fit() {
        return Err(Rejection::malformed(
            "iv and tag belong to AES-GCM key wrapping only",
        ));
    }
    header.json = OnceLock::from(json);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_header_parser_accepts_only_what_the_strict_one_does_alike() {
        let cases = [
            r#"{"alg":"A256KW","enc":"A256GCM","kid":"k1","typ":"jwe-session"}"#,
            r#"{"kid":"k\u00e9","enc":"A128GCM","alg":"dir","cty":"JWT"}"#,
            r#" { "alg" : "A128GCMKW", "enc":"A256GCM", "iv":"AAAAAAAAAAAAAAAA", "tag":"AAAAAAAAAAAAAAAAAAAAAA" } "#,
            r#"{"\u0061lg":"dir","enc":"A256GCM"}"#,
            r#"{"alg":"dir","enc":"A256GCM","alg":"dir"}"#,
            r#"{"alg":"dir","enc":"A256GCM","kid":7}"#,
            r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#,
            r#"{"alg":"dir","enc":"A256GCM","iv":"AAAAAAAAAAAAAAAA"}"#,
            r#"{"alg":"A128GCMKW","enc":"A256GCM","iv":"AAAAAAAAAAAAAAAA"}"#,
            r#"{"alg":"none","enc":"A256GCM"}"#,
            r#"{"alg":"dir","enc":"A128CBC-HS256"}"#,
            r#"{"alg":"dir"}"#,
            r#"{"alg":"dir","enc":"A256GCM"} x"#,
            r#"["alg","dir"]"#,
            r#"{"alg":"dir","enc":"A256GCM","kid":null}"#,
        ];
        for case in cases {
            let strict = parse_header(case.as_bytes());
            match parse_header_fast(case.as_bytes()) {
                Some(fast) => {
                    let strict = strict.unwrap_or_else(|e| panic!("{case}: {e:?}"));
                    assert!(fast == strict, "{case}");
                    assert_eq!(fast.to_json(), strict.to_json(), "{case}");
                    assert_eq!(
                        fast.to_json().keys().collect::<Vec<_>>(),
                        strict.to_json().keys().collect::<Vec<_>>(),
                        "{case}"
                    );
                }
                None => assert!(strict.is_err(), "{case}"),
            }
        }
    }
}

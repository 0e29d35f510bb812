//! The two values DBSC seals under the keyring: challenges and bound
//! cookies. Both are JWE of their own `typ`, so neither opens as a session
//! token nor as the other, and both follow the keyring through rotation.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::clock::unix_millis;
use crate::error::{Error, SealError};
use crate::jwe::SealOptions;
use crate::keyring::Keyring;

/// The protected header `typ` of DBSC challenges and bound cookies.
pub(crate) const DBSC_TYP: &str = "jwe-session-dbsc";

/// What a sealed DBSC value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// A challenge for a registration, tied to a session id.
    #[serde(rename = "reg")]
    Registration,
    /// A challenge for a refresh, tied to a binding id.
    #[serde(rename = "ref")]
    Refresh,
    /// A bound cookie, naming a binding id.
    #[serde(rename = "bound")]
    Bound,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims<'a> {
    k: Kind,
    /// The session purpose (the cookie name under a layer).
    #[serde(borrow)]
    aud: Cow<'a, str>,
    /// The session id (a registration) or the binding id.
    #[serde(borrow)]
    id: Cow<'a, str>,
    /// A challenge's one-time value.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    n: Option<Cow<'a, str>>,
    iat_ms: u64,
    exp_ms: u64,
}

/// What a check allows of clocks that disagree: a value issued up to
/// `skew` in the future (another server's clock is ahead), and used up to
/// `grace` past its expiry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leeway {
    pub(crate) skew: Duration,
    pub(crate) grace: Duration,
}

/// A sealed value opened and checked.
#[derive(Debug)]
pub(crate) struct Checked {
    /// A challenge's one-time value.
    pub(crate) nonce: Option<String>,
    /// When it stops being valid.
    pub(crate) exp_ms: u64,
}

/// Seals a challenge of `kind` for `id`, valid for `lifetime`.
pub(crate) fn seal_challenge(
    keyring: &Keyring,
    purpose: &str,
    kind: Kind,
    id: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<String, Error> {
    let nonce = b64::random::<16>().ok_or(Error::Seal(SealError::Random))?;
    seal(keyring, purpose, kind, id, Some(&nonce), now, lifetime)
}

/// Seals a bound cookie's value for the binding `id`, valid for `lifetime`.
pub(crate) fn seal_bound(
    keyring: &Keyring,
    purpose: &str,
    id: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<String, Error> {
    seal(keyring, purpose, Kind::Bound, id, None, now, lifetime)
}

fn seal(
    keyring: &Keyring,
    purpose: &str,
    kind: Kind,
    id: &str,
    nonce: Option<&str>,
    now: SystemTime,
    lifetime: Duration,
) -> Result<String, Error> {
    let iat_ms = unix_millis(now);
    let claims = Claims {
        k: kind,
        aud: Cow::Borrowed(purpose),
        id: Cow::Borrowed(id),
        n: nonce.map(Cow::Borrowed),
        iat_ms,
        exp_ms: iat_ms.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX)),
    };
    let payload = serde_json::to_vec(&claims)?;
    keyring.seal_with(&payload, &SealOptions::new().with_typ(DBSC_TYP))
}

/// Opens `token` and checks it: sealed by this keyring as a DBSC value of
/// `kind`, for `purpose` and `id`, issued no later than `now` plus `skew`
/// (another server's clock may be ahead), and not past its expiry plus
/// `grace`. The reason for the logs when it is refused.
pub(crate) fn open(
    keyring: &Keyring,
    token: &str,
    purpose: &str,
    kind: Kind,
    id: &str,
    now: SystemTime,
    Leeway { skew, grace }: Leeway,
) -> Result<Checked, &'static str> {
    let opened = keyring
        .open(token)
        .map_err(|_| "does not open under the keyring")?;
    if opened.header().typ() != Some(DBSC_TYP) {
        return Err("header typ is not a DBSC value's");
    }
    let claims: Claims<'_> =
        serde_json::from_slice(opened.plaintext()).map_err(|_| "payload is not a DBSC value")?;
    if claims.k != kind {
        return Err("for another use (challenge, bound cookie)");
    }
    if claims.aud != purpose {
        return Err("for another session purpose");
    }
    if claims.id != id {
        return Err("for another session");
    }
    if (kind == Kind::Bound) == claims.n.is_some() {
        return Err("payload is not a DBSC value");
    }
    let now_ms = unix_millis(now);
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if claims.iat_ms > now_ms.saturating_add(millis(skew)) {
        return Err("issued in the future");
    }
    if now_ms >= claims.exp_ms.saturating_add(millis(grace)) {
        return Err("expired");
    }
    Ok(Checked {
        nonce: claims.n.map(Cow::into_owned),
        exp_ms: claims.exp_ms,
    })
}

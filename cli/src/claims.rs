//! The time claims `open` checks: `exp` (required) and `nbf` (when present),
//! in Unix seconds, with a leeway for clock skew.

use serde_json::{Map, Number, Value};

/// Why claims without a usable `exp` are refused.
pub(crate) const NOT_CLAIMS: &str = "plaintext is not a JSON object with a numeric exp";

/// Parses `plaintext` as a JSON object of claims and checks its times
/// against `now`: refused when `now > exp + leeway` or `now + leeway < nbf`.
/// The error is the reason, for `token rejected: …`.
pub(crate) fn check(
    plaintext: &[u8],
    now: u64,
    leeway: u64,
) -> Result<Map<String, Value>, &'static str> {
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(plaintext) else {
        return Err(NOT_CLAIMS);
    };
    let Some(Value::Number(exp)) = claims.get("exp") else {
        return Err(NOT_CLAIMS);
    };
    if later_than(now, exp, leeway, true) {
        return Err("expired");
    }
    match claims.get("nbf") {
        None => Ok(claims),
        Some(Value::Number(nbf)) if later_than(now, nbf, leeway, false) => Err("not yet valid"),
        Some(Value::Number(_)) => Ok(claims),
        Some(_) => Err("nbf is not a number"),
    }
}

/// With `after`: whether `now > time + leeway` (the time has passed).
/// Without: whether `now + leeway < time` (the time is still to come).
/// Exact for integers; floating point for fractional times.
fn later_than(now: u64, time: &Number, leeway: u64, after: bool) -> bool {
    let (now, leeway) = (i128::from(now), i128::from(leeway));
    let exact = time
        .as_i64()
        .map(i128::from)
        .or_else(|| time.as_u64().map(i128::from));
    if let Some(time) = exact {
        return if after {
            now > time + leeway
        } else {
            now + leeway < time
        };
    }
    // A fractional time; JSON has no NaN or infinity, so `as_f64` is Some.
    let Some(time) = time.as_f64() else {
        return true;
    };
    let (now, leeway) = (now as f64, leeway as f64);
    if after {
        now > time + leeway
    } else {
        now + leeway < time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn run(json: &str, leeway: u64) -> Result<Map<String, Value>, &'static str> {
        check(json.as_bytes(), NOW, leeway)
    }

    #[test]
    fn exp_is_required_and_numeric() {
        for bad in [
            "",
            "[]",
            "\"x\"",
            "{}",
            "{\"exp\":\"1800000000\"}",
            "{\"exp\":null}",
            "{\"exp\":1800000000",
            "\u{0}\u{ff}",
        ] {
            assert_eq!(run(bad, 60), Err(NOT_CLAIMS), "{bad:?}");
        }
        let claims = run(r#"{"exp":1800000000,"sub":"a"}"#, 0).unwrap();
        assert_eq!(claims["sub"], "a");
    }

    #[test]
    fn exp_with_leeway() {
        let at = |exp: i128, leeway| run(&format!("{{\"exp\":{exp}}}"), leeway);
        let now = i128::from(NOW);
        assert!(at(now, 0).is_ok());
        assert_eq!(at(now - 1, 0), Err("expired"));
        assert!(at(now - 60, 60).is_ok());
        assert_eq!(at(now - 61, 60), Err("expired"));
        assert_eq!(at(-5, 60), Err("expired"));
        assert!(at(i128::from(u64::MAX), 0).is_ok());
        assert!(run(&format!("{{\"exp\":{}.5}}", NOW - 1), 1).is_ok());
        assert_eq!(
            run(&format!("{{\"exp\":{}.5}}", NOW - 2), 1),
            Err("expired")
        );
        assert!(run("{\"exp\":1e300}", 0).is_ok());
        assert_eq!(run("{\"exp\":-1e300}", 0), Err("expired"));
    }

    #[test]
    fn nbf_when_present() {
        let at =
            |nbf: String, leeway| run(&format!("{{\"exp\":{},\"nbf\":{nbf}}}", NOW + 1000), leeway);
        assert!(at(NOW.to_string(), 0).is_ok());
        assert_eq!(at((NOW + 1).to_string(), 0), Err("not yet valid"));
        assert!(at((NOW + 60).to_string(), 60).is_ok());
        assert_eq!(at((NOW + 61).to_string(), 60), Err("not yet valid"));
        assert_eq!(at("\"soon\"".to_owned(), 60), Err("nbf is not a number"));
    }
}

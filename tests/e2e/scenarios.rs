//! The scenarios, each against a fresh server from the launcher.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{is_session_cookie, jwe_kid, Jar, Launcher, Response, SESSION};

const IDLE: u64 = 30 * 60;
const ABSOLUTE: u64 = 12 * 3600;
const LEEWAY: u64 = 60;
const MAX_NOTE: usize = 9_000;

/// The body of `/me` without a session, from a browser with no cookie.
async fn unauthorized_body(server: &super::Server) -> String {
    let response = server.me(&mut Jar::new()).await;
    assert_eq!(response.status, 401, "{response:?}");
    response.body
}

fn assert_unauthorized(response: &Response) {
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(
        response.json(),
        json!({"error": "no session"}),
        "{response:?}"
    );
}

/// A revoked token is refused and its cookie left alone: most revoked
/// tokens were replaced while their request was in flight (a login, a
/// renewal), and a late removal would clear the client's new cookie
/// (tests/inflight_requests.rs).
fn assert_session_left_alone(response: &Response) {
    assert!(
        !response
            .set_cookies
            .iter()
            .any(|c| is_session_cookie(&c.name)),
        "a revoked token's answer must not touch the session cookies: {response:?}"
    );
}

fn assert_session_removed(response: &Response) {
    assert!(
        response.removes_session(),
        "expected a removal cookie: {response:?}"
    );
    assert!(
        !response
            .set_cookies
            .iter()
            .any(|c| is_session_cookie(&c.name) && !c.is_removal()),
        "a rejected session must not be re-issued: {response:?}"
    );
}

fn me_json(response: &Response) -> Value {
    assert_eq!(response.status, 200, "{response:?}");
    response.json()
}

/// 1. Login, `/me`, and the index page.
pub async fn login_and_me(launcher: &Launcher) {
    let server = launcher.start().await;

    let mut anonymous = Jar::new();
    let response = server.me(&mut anonymous).await;
    assert_unauthorized(&response);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        response.headers
    );
    let index = server.get(&mut anonymous, "/").await;
    assert_eq!(index.status, 200, "{index:?}");
    assert!(index.body.contains("name=\"username\""), "{index:?}");
    assert!(!index.body.contains("Signed in as"), "{index:?}");

    let login_time = server.now();
    let mut jar = server.login("alice").await;
    let me = me_json(&server.me(&mut jar).await);
    assert_eq!(me["sub"], "alice", "{me}");
    let sid = me["sid"].as_str().expect("sid");
    assert_eq!(sid.len(), 22, "{me}");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid is not base64url: {me}"
    );
    assert_eq!(me["data"], json!({}), "{me}");
    assert_eq!(me["kid"], server.keyring.primary_kid(), "{me}");
    // The app reads the injected clock.
    assert_eq!(me["created"], login_time, "{me}");
    assert_eq!(me["expires"], login_time + IDLE, "{me}");

    let index = server.get(&mut jar, "/").await;
    assert_eq!(index.status, 200, "{index:?}");
    assert!(
        index
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        index.headers
    );
    assert!(index.body.contains("Signed in as alice"), "{index:?}");
    assert!(!index.body.contains("name=\"username\""), "{index:?}");

    // Login from a browser that already has a session: a new session id,
    // the data kept, the pre-login token refused (session fixation).
    let mut jar = Jar::new();
    let response = server.post(&mut jar, "/counter").await;
    assert_eq!(response.json(), json!({"count": 1}), "{response:?}");
    let anonymous = me_json(&server.me(&mut jar).await);
    assert_eq!(anonymous["sub"], Value::Null, "{anonymous}");
    let mut pre_login = jar.clone();
    server.login_in(&mut jar, "carol").await;
    let me = me_json(&server.me(&mut jar).await);
    assert_eq!(me["sub"], "carol", "{me}");
    assert_ne!(
        me["sid"], anonymous["sid"],
        "login must renew the session id"
    );
    assert_eq!(me["data"], json!({"count": 1}), "{me}");
    // The pre-login token is not revoked (an anonymous client can add no
    // revocation entry): it is still the anonymous session it was, with
    // nothing of the login. A fixated id gains the attacker nothing.
    let before_login = me_json(&server.me(&mut pre_login).await);
    assert_eq!(before_login["sub"], Value::Null, "{before_login}");
    assert_eq!(before_login["sid"], anonymous["sid"], "{before_login}");
    assert_ne!(before_login["sid"], me["sid"], "{before_login}");

    // The username is escaped in the page.
    let mut jar = server.login("<b>x</b>").await;
    let index = server.get(&mut jar, "/").await;
    assert!(
        index.body.contains("Signed in as &lt;b&gt;x&lt;/b&gt;"),
        "{index:?}"
    );
    assert!(!index.body.contains("<b>x</b>"), "{index:?}");
    assert_eq!(me_json(&server.me(&mut jar).await)["sub"], "<b>x</b>");
}

/// 2. The session cookie's attributes.
pub async fn cookie_attributes(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = Jar::new();
    let response = server.login_in(&mut jar, "alice").await;

    let sessions: Vec<_> = response
        .set_cookies
        .iter()
        .filter(|c| is_session_cookie(&c.name))
        .collect();
    assert_eq!(sessions.len(), 1, "{response:?}");
    let cookie = sessions[0];
    assert_eq!(cookie.name, SESSION);
    assert!(!cookie.value.is_empty());
    assert_eq!(cookie.value.split('.').count(), 5, "{}", cookie.raw);
    assert!(cookie.has("HttpOnly"), "{}", cookie.raw);
    assert_eq!(cookie.attribute("HttpOnly"), Some(None), "{}", cookie.raw);
    assert!(cookie.has("Secure"), "{}", cookie.raw);
    assert_eq!(
        cookie.attribute("SameSite"),
        Some(Some("Lax")),
        "{}",
        cookie.raw
    );
    assert_eq!(cookie.attribute("Path"), Some(Some("/")), "{}", cookie.raw);
    assert!(!cookie.has("Domain"), "{}", cookie.raw);
    assert!(!cookie.has("Max-Age"), "{}", cookie.raw);
    assert!(!cookie.has("Expires"), "{}", cookie.raw);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(
        jar.last_set_cookies().len(),
        1,
        "{:?}",
        jar.last_set_cookies()
    );

    // Nothing changed, nothing to re-issue.
    let before = jar.get(SESSION).map(str::to_owned);
    for path in ["/", "/me"] {
        let response = server.get(&mut jar, path).await;
        assert_eq!(response.status, 200, "{response:?}");
        assert!(
            response.set_cookies.is_empty(),
            "{path} re-issued an unchanged fresh session: {response:?}"
        );
        assert!(jar.last_set_cookies().is_empty());
    }
    assert_eq!(jar.get(SESSION).map(str::to_owned), before);
}

/// 3. The counter is kept in the session.
pub async fn counter_updates(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = server.login("alice").await;
    let sid = me_json(&server.me(&mut jar).await)["sid"].clone();
    for expected in 1..=3u64 {
        let before = jar.get(SESSION).map(str::to_owned);
        let response = server.post(&mut jar, "/counter").await;
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.json(), json!({ "count": expected }));
        assert!(response.sets(SESSION), "{response:?}");
        assert_ne!(jar.get(SESSION).map(str::to_owned), before);
    }
    let me = me_json(&server.me(&mut jar).await);
    assert_eq!(me["data"], json!({"count": 3}), "{me}");
    assert_eq!(me["sid"], sid, "data changes keep the session id");
    assert_eq!(me["sub"], "alice");
}

/// 4. Rotation: old cookies keep working and are re-issued under the new
///    primary; the key list shows no secret.
pub async fn rotation(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = server.login("alice").await;
    let old_kid = server.keyring.primary_kid();
    let token = jar.get(SESSION).expect("session cookie").to_owned();
    assert_eq!(jwe_kid(&token), old_kid);
    let before = me_json(&server.me(&mut jar).await);
    assert_eq!(jar.get(SESSION), Some(token.as_str()), "no re-issue yet");
    let saved = jar.clone();

    let mut admin = Jar::new();
    let response = server.post(&mut admin, "/admin/rotate").await;
    assert_eq!(response.status, 200, "{response:?}");
    let new_kid = server.keyring.primary_kid();
    assert_ne!(new_kid, old_kid);
    assert_eq!(response.json(), json!({ "primary": new_kid }));

    // The next request with the old cookie works, and re-issues it.
    let response = server.me(&mut jar).await;
    let me = me_json(&response);
    assert_eq!(
        me["kid"], old_kid,
        "the request carried the old token: {me}"
    );
    assert!(response.sets(SESSION), "not re-issued: {response:?}");
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let reissued = jar.get(SESSION).expect("session cookie").to_owned();
    assert_ne!(reissued, token);
    assert_eq!(jwe_kid(&reissued), new_kid);

    let response = server.me(&mut jar).await;
    let after = me_json(&response);
    assert_eq!(after["kid"], new_kid, "{after}");
    assert_eq!(after["sid"], before["sid"]);
    assert_eq!(after["created"], before["created"]);
    assert_eq!(after["sub"], "alice");
    assert!(
        response.set_cookies.is_empty(),
        "re-issued twice: {response:?}"
    );

    // A copy of the old cookie still opens (the old key is retired, not gone).
    let mut old = saved;
    assert_eq!(me_json(&server.me(&mut old).await)["sid"], before["sid"]);

    let response = server.get(&mut admin, "/admin/keys").await;
    assert_eq!(response.status, 200, "{response:?}");
    let keys = response.json();
    let keys = keys.as_array().expect("a JSON list");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let state_of = |kid: &str| {
        keys.iter()
            .find(|k| k["kid"] == kid)
            .unwrap_or_else(|| panic!("{kid} not listed: {keys:?}"))["state"]
            .clone()
    };
    assert_eq!(state_of(&new_kid), "primary");
    assert_eq!(state_of(&old_kid), "retired");
    // Issue 12: what each key did since the server started. The old key
    // sealed the login and opened the requests before and after rotation;
    // the new one sealed the re-issue and opened the requests since.
    let key = |kid: &str| {
        keys.iter()
            .find(|k| k["kid"] == kid)
            .expect("listed")
            .clone()
    };
    for kid in [&old_kid, &new_kid] {
        let key = key(kid);
        assert!(key["seals"].as_u64() >= Some(1), "{key}");
        assert!(key["opens"].as_u64() >= Some(1), "{key}");
        assert!(key["last_used"].as_u64() > Some(1_700_000_000), "{key}");
        assert_eq!(key["promote_at"], Value::Null, "{key}");
    }
    for key in keys {
        let fields: BTreeSet<&str> = key
            .as_object()
            .expect("a key is an object")
            .keys()
            .map(String::as_str)
            .collect();
        // kid, alg and state as ever; the per-key statistics beside them.
        assert!(
            fields.is_superset(&BTreeSet::from(["alg", "kid", "state"])),
            "{key}"
        );
        assert!(fields.is_subset(&BTreeSet::from([
            "alg",
            "kid",
            "state",
            "seals",
            "opens",
            "last_used",
            "promote_at",
            "created",
            "retired_at",
        ])));
        assert_eq!(key["alg"], "A256KW");
    }
    assert!(!response.body.contains("\"k\""), "{}", response.body);
    // No secret anywhere in the body, in any field.
    let secrets: Value =
        serde_json::from_str(&server.keyring.to_jwk_set()).expect("the keyring as a JWK Set");
    for key in secrets["keys"].as_array().expect("keys") {
        let secret = key["k"].as_str().expect("a symmetric key's k");
        assert!(!response.body.contains(secret), "a secret leaked");
    }
}

/// 5. Logout revokes the session: every token of it is refused after.
pub async fn logout(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = server.login("alice").await;
    let login_jar = jar.clone();
    let response = server.post(&mut jar, "/counter").await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_ne!(
        jar.get(SESSION),
        login_jar.get(SESSION),
        "the counter re-sealed the session"
    );
    let before_logout = jar.clone();
    assert_eq!(
        me_json(&server.me(&mut login_jar.clone()).await)["sub"],
        "alice"
    );

    let response = server.post(&mut jar, "/logout").await;
    assert_eq!(response.status, 303, "{response:?}");
    assert_eq!(response.header("location"), Some("/"));
    let removal = response.set_cookie(SESSION).expect("a removal cookie");
    assert_eq!(removal.max_age(), Some(0), "{}", removal.raw);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert!(jar.session_token().is_none(), "{:?}", jar.names());

    assert_unauthorized(&server.me(&mut jar).await);
    for (what, mut old) in [("before logout", before_logout), ("at login", login_jar)] {
        let response = server.me(&mut old).await;
        assert_eq!(response.status, 401, "token from {what}: {response:?}");
        assert_unauthorized(&response);
        assert_session_left_alone(&response);
        // Every later request with it is refused the same way.
        assert_unauthorized(&server.me(&mut old).await);
    }
}

/// 6. Log out everywhere: every session of the subject, and only its.
pub async fn logout_everywhere(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut alice_a = server.login("alice").await;
    let mut alice_b = server.login("alice").await;
    let mut bob = server.login("bob").await;
    for jar in [&mut alice_a, &mut alice_b, &mut bob] {
        me_json(&server.me(jar).await);
    }
    let alice_a_before = alice_a.clone();
    // The app's clock has not moved since the logins: revocation compares
    // no clock, so sessions of the same millisecond end too.

    let response = server.post(&mut alice_a, "/logout-everywhere").await;
    assert_eq!(response.status, 303, "{response:?}");
    assert_eq!(response.header("location"), Some("/"));
    assert!(response.removes(SESSION), "{response:?}");

    assert_unauthorized(&server.me(&mut alice_a).await);
    for (what, mut jar) in [("alice A", alice_a_before), ("alice B", alice_b.clone())] {
        let response = server.me(&mut jar).await;
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_session_left_alone(&response);
    }
    let response = server.me(&mut alice_b).await;
    assert_unauthorized(&response);
    assert_eq!(me_json(&server.me(&mut bob).await)["sub"], "bob");

    // A new login afterwards, in the same millisecond, is a new session,
    // not revoked.
    server.login_in(&mut alice_b, "alice").await;
    assert_eq!(me_json(&server.me(&mut alice_b).await)["sub"], "alice");
    server.advance(1);
    assert_eq!(me_json(&server.me(&mut alice_b).await)["sub"], "alice");
}

/// 6b. The race of issue 10, 300 times: log in twice as one user, and post
/// `/logout-everywhere` from one of them at once (the clock never moves, so
/// every request falls in one millisecond). No session survives, and a
/// login right after each round is accepted.
pub async fn logout_everywhere_race(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut survivors = Vec::new();
    for round in 0..300 {
        let user = format!("racer{}", round % 7);
        let (mut first, mut second) = tokio::join!(server.login(&user), server.login(&user));
        let (out, peek) = {
            let mut other = second.clone();
            let out = server.post(&mut first, "/logout-everywhere");
            let peek = server.me(&mut other);
            tokio::join!(out, peek)
        };
        assert_eq!(out.status, 303, "round {round}: {out:?}");
        // `peek` raced the revocation: either answer is fine while it
        // runs. Once it has returned, nothing of the user's survives.
        assert!(matches!(peek.status, 200 | 401), "round {round}: {peek:?}");
        for (which, jar) in [("first", &mut first), ("second", &mut second)] {
            let response = server.me(jar).await;
            if response.status != 401 {
                survivors.push(format!("round {round}, {which}: {response:?}"));
            }
        }
        let mut again = server.login(&user).await;
        assert_eq!(
            me_json(&server.me(&mut again).await)["sub"],
            user.as_str(),
            "round {round}: a login after log out everywhere"
        );
    }
    assert!(
        survivors.is_empty(),
        "{} survived: {survivors:#?}",
        survivors.len()
    );
}

/// 7. Idle and absolute expiry, with the injected clock.
pub async fn expiry(launcher: &Launcher) {
    let server = launcher.start().await;

    // Idle: 30 min, plus the 60 s leeway.
    let mut edge = server.login("alice").await;
    let mut idle = server.login("alice").await;
    server.advance(IDLE + LEEWAY);
    let response = server.me(&mut edge).await;
    assert_eq!(response.status, 200, "within the leeway: {response:?}");
    server.advance(1);
    let response = server.me(&mut idle).await;
    assert_unauthorized(&response);
    assert_session_removed(&response);
    assert!(idle.session_token().is_none());

    // Absolute: used every 20 minutes, a session still ends after 12 h.
    let mut jar = server.login("bob").await;
    let created = me_json(&server.me(&mut jar).await)["created"]
        .as_u64()
        .expect("created");
    let deadline = created + ABSOLUTE;
    let mut alive = 0;
    let mut ended = false;
    for _ in 0..60 {
        server.advance(20 * 60);
        let now = server.now();
        let response = server.me(&mut jar).await;
        if now <= deadline + LEEWAY {
            let me = me_json(&response);
            assert_eq!(me["created"], created, "{me}");
            assert!(
                me["expires"].as_u64().expect("expires") <= deadline,
                "re-issue extended the session past its absolute deadline: {me}"
            );
            alive += 1;
        } else {
            assert_unauthorized(&response);
            assert_session_removed(&response);
            ended = true;
            break;
        }
    }
    assert!(ended, "the session never ended");
    assert_eq!(alive, ABSOLUTE / (20 * 60), "requests answered while alive");
}

/// 8. A tampered cookie is refused, saying nothing about why.
pub async fn tampered_cookie(launcher: &Launcher) {
    let server = launcher.start().await;
    let normal = unauthorized_body(&server).await;
    let mut jar = server.login("alice").await;
    let token = jar.get(SESSION).expect("session cookie").to_owned();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 5, "{token}");
    let ciphertext = &mut parts[3];
    assert!(ciphertext.len() > 4, "{token}");
    let at = ciphertext.len() / 2;
    let flipped = if &ciphertext[at..=at] == "A" {
        "B"
    } else {
        "A"
    };
    ciphertext.replace_range(at..=at, flipped);
    let tampered = parts.join(".");
    assert_ne!(tampered, token);
    jar.set(SESSION, &tampered);

    let response = server.me(&mut jar).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.body, normal, "the 401 must be the ordinary one");
    let lower = response.body.to_ascii_lowercase();
    for word in ["decrypt", "tag", "kid", "cipher", "tamper", "invalid"] {
        assert!(!lower.contains(word), "{word:?} in {:?}", response.body);
    }
    assert_session_removed(&response);
    assert!(jar.session_token().is_none());
}

/// 9. Cross-site POSTs are refused; same-host ones pass.
pub async fn cross_site_post_refused(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = server.login("alice").await;
    let token = jar.get(SESSION).map(str::to_owned);
    let port = server.address.port();

    for (name, value) in [
        ("origin", "http://evil.example".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
        ("origin", format!("http://evil.example:{port}")),
    ] {
        let response = server
            .request(Method::POST, "/counter")
            .header(name, &value)
            .form(&[])
            .send(&mut jar)
            .await;
        assert_eq!(response.status, 403, "{name}: {value}: {response:?}");
        assert!(response.set_cookies.is_empty(), "{response:?}");
        assert_eq!(jar.get(SESSION).map(str::to_owned), token);
    }

    let origin = format!("http://127.0.0.1:{port}");
    let response = server
        .request(Method::POST, "/counter")
        .header("origin", &origin)
        .header("sec-fetch-site", "same-origin")
        .form(&[])
        .send(&mut jar)
        .await;
    assert_eq!(response.status, 200, "{origin}: {response:?}");
    assert_eq!(
        response.json(),
        json!({"count": 1}),
        "refused requests ran no handler"
    );
}

/// 10. Large sessions are chunked over several cookies, and shrink back.
pub async fn chunking(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = server.login("alice").await;
    let sid = me_json(&server.me(&mut jar).await)["sid"].clone();

    let note = "a".repeat(MAX_NOTE);
    let response = server
        .post_form(&mut jar, "/note", &[("text", &note)])
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json(), json!({"length": 9000}));
    let chunks: Vec<_> = response
        .set_cookies
        .iter()
        .filter(|c| is_session_cookie(&c.name) && c.name != SESSION)
        .collect();
    assert!(
        (2..=4).contains(&chunks.len()),
        "{} chunk cookies: {response:?}",
        chunks.len()
    );
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.name, format!("{SESSION}.{i}"), "{response:?}");
        assert!(!chunk.is_removal(), "{}", chunk.raw);
        assert!(chunk.pair_len() <= 4000, "{} bytes", chunk.pair_len());
        assert!(
            chunk.has("Secure") && chunk.has("HttpOnly"),
            "{}",
            chunk.raw
        );
        assert_eq!(chunk.attribute("Path"), Some(Some("/")), "{}", chunk.raw);
    }
    assert!(
        !response.sets(SESSION),
        "a plain {SESSION} next to its chunks: {response:?}"
    );
    // The request carried the plain cookie; the browser must drop it, or
    // it would send it together with the chunks.
    assert!(response.removes(SESSION), "{response:?}");
    let names = jar.names();
    assert_eq!(names.len(), chunks.len(), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with(&format!("{SESSION}."))));

    let me = me_json(&server.me(&mut jar).await);
    assert_eq!(me["data"]["note"].as_str(), Some(note.as_str()));
    assert_eq!(me["sid"], sid);

    let response = server
        .post_form(&mut jar, "/note", &[("text", "short")])
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json(), json!({"length": 5}));
    assert!(response.sets(SESSION), "{response:?}");
    for i in 0..chunks.len() {
        let name = format!("{SESSION}.{i}");
        assert!(response.removes(&name), "{name} not removed: {response:?}");
    }
    assert_eq!(jar.names(), vec![SESSION.to_owned()]);
    let me = me_json(&server.me(&mut jar).await);
    assert_eq!(me["data"]["note"], "short");
    assert_eq!(me["sid"], sid);

    let too_long = "a".repeat(MAX_NOTE + 1);
    let response = server
        .post_form(&mut jar, "/note", &[("text", &too_long)])
        .await;
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(me_json(&server.me(&mut jar).await)["data"]["note"], "short");

    // The same answers from both frameworks (issue 11): the limit is in
    // bytes, both take the same form sizes, and every refusal is JSON.
    let cases: [(&str, String, u16, Value); 5] = [
        (
            "9,000 commas (27,000 bytes percent-encoded)",
            ",".repeat(MAX_NOTE),
            200,
            json!({"length": MAX_NOTE}),
        ),
        (
            "9,000 × é (18,000 bytes)",
            "é".repeat(MAX_NOTE),
            413,
            json!({"error": "note longer than 9000 bytes"}),
        ),
        (
            "4,500 × é (9,000 bytes)",
            "é".repeat(MAX_NOTE / 2),
            200,
            json!({"length": MAX_NOTE}),
        ),
        (
            "5,000 control characters (30,000 bytes of JSON)",
            "\u{1}".repeat(5_000),
            413,
            json!({"error": "note too large for the session cookie"}),
        ),
        (
            "a 70,000-byte form",
            "a".repeat(70_000),
            413,
            json!({"error": "request body too large"}),
        ),
    ];
    for (what, text, status, body) in cases {
        let before = me_json(&server.me(&mut jar).await)["data"]["note"].clone();
        let response = server
            .post_form(&mut jar, "/note", &[("text", &text)])
            .await;
        assert_eq!(response.status, status, "{what}: {response:?}");
        assert!(
            response
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{what}: {response:?}"
        );
        assert_eq!(response.json(), body, "{what}");
        let after = me_json(&server.me(&mut jar).await)["data"]["note"].clone();
        if status == 200 {
            assert_eq!(after.as_str(), Some(text.as_str()), "{what}");
        } else {
            assert_eq!(after, before, "{what}: a refused note changes nothing");
        }
    }
}

/// 11. Requests while the keys rotate, again and again, never fail.
pub async fn concurrent_rotations(launcher: &Launcher) {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 25;
    const ROTATIONS: usize = 20;
    let server = Arc::new(launcher.start().await);
    let mut jars = Vec::new();
    for i in 0..CLIENTS {
        jars.push(server.login(&format!("user{i}")).await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));

    let mut clients = Vec::new();
    for (i, mut jar) in jars.into_iter().enumerate() {
        let server = server.clone();
        let start = start.clone();
        clients.push(tokio::spawn(async move {
            start.wait().await;
            // At least REQUESTS requests, and on until this client has seen
            // a rotation (its token opened under two keys): the rotator
            // never waits for the clients, so that always comes.
            let mut kids = BTreeSet::new();
            for n in 0.. {
                if n >= REQUESTS && kids.len() >= 2 {
                    break;
                }
                assert!(n < 10_000, "client {i} never saw a rotation");
                let response = server.me(&mut jar).await;
                assert_eq!(response.status, 200, "client {i} request {n}: {response:?}");
                let me = response.json();
                assert_eq!(me["sub"], format!("user{i}"));
                kids.insert(me["kid"].as_str().expect("kid").to_owned());
            }
            (jar, kids)
        }));
    }
    let rotator = {
        let server = server.clone();
        let start = start.clone();
        tokio::spawn(async move {
            start.wait().await;
            let mut admin = Jar::new();
            for n in 0..ROTATIONS {
                let response = server.post(&mut admin, "/admin/rotate").await;
                assert_eq!(response.status, 200, "rotation {n}: {response:?}");
                tokio::task::yield_now().await;
            }
        })
    };

    let deadline = Duration::from_secs(60);
    tokio::time::timeout(deadline, rotator)
        .await
        .expect("rotations finished in time")
        .expect("rotations succeeded");
    let mut jars = Vec::new();
    for client in clients {
        let (jar, kids) = tokio::time::timeout(deadline, client)
            .await
            .expect("client finished in time")
            .expect("every request succeeded");
        assert!(kids.len() >= 2, "requests spanned a rotation: {kids:?}");
        jars.push(jar);
    }
    assert_eq!(server.keyring.snapshot().len(), ROTATIONS + 1);

    // Every client still works, and ends up under the last primary.
    let primary = server.keyring.primary_kid();
    for (i, mut jar) in jars.into_iter().enumerate() {
        let response = server.me(&mut jar).await;
        assert_eq!(response.status, 200, "client {i}: {response:?}");
        let token = jar.session_token().expect("session");
        assert_eq!(super::jwe_kid(&token), primary, "client {i}");
    }
}

/// 12. The revocation store down: 503 (fail closed, cookies untouched);
///     back up: 200 again.
pub async fn store_down(launcher: &Launcher) {
    let server = launcher.start().await;
    assert!(
        server.has_store_control(),
        "{}: store_down needs a store that can be stopped",
        launcher.name()
    );
    let mut jar = server.login("alice").await;
    let sid = me_json(&server.me(&mut jar).await)["sid"].clone();
    let token = jar.session_token();

    server.stop_store().await;
    let response = server.me(&mut jar).await;
    assert_eq!(response.status, 503, "{response:?}");
    assert!(
        response.set_cookies.is_empty(),
        "an outage must not log the user out: {response:?}"
    );
    assert_eq!(jar.session_token(), token);

    server.restart_store().await;
    let mut last = None;
    for _ in 0..50 {
        let response = server.me(&mut jar).await;
        if response.status == 200 {
            last = Some(response);
            break;
        }
        assert_eq!(response.status, 503, "{response:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = last.expect("the session works again within ~5 s of the store's restart");
    assert_eq!(response.json()["sid"], sid);
}

/// 12\. The page shows what the library does (issue 11): the session's
/// claims, whether the response re-issues the cookie, the keyring. Its
/// forms act through the same routes, and a browser's form gets the page
/// back with a flash message while scripts keep their JSON.
pub async fn page_shows_the_session(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut anonymous = Jar::new();
    let page = server.get(&mut anonymous, "/").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("No session yet"), "{}", page.body);
    assert!(page.body.contains("<td>primary</td>"), "{}", page.body);
    assert!(page.set_cookies.is_empty(), "{page:?}");

    let mut jar = server.login("alice").await;
    let me = me_json(&server.me(&mut jar).await);
    let page = server.get(&mut jar, "/").await;
    for expected in [
        "Signed in as alice".to_owned(),
        format!("<td>{}</td>", me["sid"].as_str().unwrap()),
        format!("<td>{}</td>", me["kid"].as_str().unwrap()),
        format!("<td>{}</td>", me["expires"]),
        "<th>this response re-issues the cookie</th><td>no</td>".to_owned(),
    ] {
        assert!(
            page.body.contains(&expected),
            "{expected} missing: {}",
            page.body
        );
    }

    // A browser's form: 303 back to the page, and the message shown once.
    let response = server
        .request(Method::POST, "/counter")
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[])
        .send(&mut jar)
        .await;
    assert_eq!(response.status, 303, "{response:?}");
    assert_eq!(response.header("location"), Some("/"));
    let page = server.get(&mut jar, "/").await;
    assert!(page.body.contains("Counted: 1"), "{}", page.body);
    assert!(
        page.body.contains("<th>counter</th><td>1</td>"),
        "{}",
        page.body
    );
    let page = server.get(&mut jar, "/").await;
    assert!(
        !page.body.contains("Counted: 1"),
        "shown twice: {}",
        page.body
    );
    // A script still gets JSON.
    let response = server.post(&mut jar, "/counter").await;
    assert_eq!(response.json(), json!({"count": 2}), "{response:?}");

    // Rotation from the page: the new key listed, and this session's next
    // response re-issues its cookie under it.
    let response = server
        .request(Method::POST, "/admin/rotate")
        .header("accept", "text/html")
        .form(&[])
        .send(&mut jar)
        .await;
    assert_eq!(response.status, 303, "{response:?}");
    let page = server.get(&mut jar, "/").await;
    assert!(
        page.body.contains("Rotated: the new primary key is"),
        "{}",
        page.body
    );
    assert_eq!(
        page.body.matches("<td>A256KW</td><td>retired</td>").count(),
        1,
        "{}",
        page.body
    );
    // (That response re-sealed the session anyway, for its message.) A
    // rotation by a script leaves this session's token under a retired key.
    let response = server.post(&mut jar, "/admin/rotate").await;
    assert_eq!(response.status, 200, "{response:?}");
    let page = server.get(&mut jar, "/").await;
    assert_eq!(
        page.body.matches("<td>A256KW</td><td>retired</td>").count(),
        2,
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<th>this response re-issues the cookie</th><td>yes (key_not_primary)</td>"),
        "{}",
        page.body
    );
}

/// Issue 12: with the `metrics` feature the demo serves the library's
/// counters at `GET /metrics` in the Prometheus text format: loads by
/// outcome and rejection kind, re-issues by reason, token cache hits and
/// misses, store round trips, promotions. (The recorder is one per process
/// and the tests share it, so this checks that each series is there, not
/// its count.) Without the feature the route does not exist.
pub async fn metrics(launcher: &Launcher) {
    let server = launcher.start().await;
    let mut jar = server.login("alice").await;
    assert_eq!(server.me(&mut jar).await.status, 200);
    assert_eq!(server.me(&mut jar).await.status, 200);
    let mut admin = Jar::new();
    assert_eq!(server.post(&mut admin, "/admin/rotate").await.status, 200);
    assert_eq!(server.me(&mut jar).await.status, 200);
    let mut forged = Jar::new();
    forged.set(SESSION, "e30.e30.e30.e30.e30");
    assert_eq!(server.me(&mut forged).await.status, 401);

    let response = server.get(&mut Jar::new(), "/metrics").await;
    if !cfg!(feature = "metrics") {
        assert_eq!(response.status, 404, "{response:?}");
        return;
    }
    assert_eq!(response.status, 200, "{response:?}");
    for series in [
        "jwe_session_loads_total{outcome=\"ok\"}",
        "jwe_session_loads_total{outcome=\"malformed\"}",
        "jwe_session_reissues_total{reason=\"renewed\"}",
        "jwe_session_reissues_total{reason=\"key_not_primary\"}",
        "jwe_session_token_cache_total{result=\"hit\"}",
        "jwe_session_token_cache_total{result=\"miss\"}",
        "jwe_session_store_seconds",
        "jwe_session_key_promotions_total",
    ] {
        assert!(
            response.body.contains(series),
            "{series} missing:\n{}",
            response.body
        );
    }
}

//! (e) What a browser sends to the device-binding endpoints: the
//! `Sec-Secure-Session-Id` and `Secure-Session-Response` headers, through a
//! `SessionLayer` with DBSC on, at the registration path (with a signed-in
//! session that is not bound) or the refresh path (with a bound one).
//!
//! Input: one byte choosing the path (even: registration, odd: refresh) and
//! which headers are sent, then the two header values separated by a
//! newline. Never a panic, and only the answers the protocol allows: no
//! registration succeeds and no refresh renews the bound cookie (a proof
//! needs the device's private key and a challenge this server sealed, which
//! no input holds); a refresh may end the session (`continue:false`, a
//! JSON body naming the id it was sent), ask for a proof (403 with a
//! challenge for that id) or refuse (400, 401), and every body is JSON.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jwe_session::adapter::{self, Admission, RequestHead};
use jwe_session::revocation::MemoryStore;
use jwe_session::session::{Binding, DeviceKey, SaveOutcome};
use jwe_session::{DbscConfig, ManualClock, SessionLayer, SessionMap};
use jwe_session_fuzz::keyring;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    layer: SessionLayer,
    /// `Cookie` headers: a signed-in session not bound, and a bound one.
    unbound: String,
    bound: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let clock = Arc::new(ManualClock::at_unix(1_900_000_000));
        let layer = SessionLayer::builder(keyring("A256KW", &["A256KW"]), MemoryStore::new())
            .dbsc(DbscConfig::new().bound_cookie_lifetime(Duration::from_secs(300)))
            .clock(clock)
            .build()
            .expect("a layer");
        let manager = Arc::clone(layer.manager());
        let seal = |bind: bool| {
            let mut session = manager.start(SessionMap::default());
            session.login("fuzz");
            if bind {
                // The P-256 generator point: a valid public key.
                session.bind(Binding {
                    id: "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
                    key: DeviceKey::Ec {
                        crv: "P-256".to_owned(),
                        x: "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY".to_owned(),
                        y: "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU".to_owned(),
                    },
                });
            }
            match runtime.block_on(manager.save(&mut session)) {
                Ok(SaveOutcome::Seal { token, .. }) => format!("__Host-session={token}"),
                other => panic!("could not seal the fixture's session: {other:?}"),
            }
        };
        let unbound = seal(false);
        let bound = seal(true);
        Fixture {
            runtime,
            layer,
            unbound,
            bound,
        }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let fixture = fixture();
    let text = String::from_utf8_lossy(rest);
    let (first, second) = text.split_once('\n').unwrap_or((&text, ""));
    let refresh = selector & 1 == 1;
    let (path, cookie) = if refresh {
        ("/dbsc/refresh", &fixture.bound)
    } else {
        ("/dbsc/register", &fixture.unbound)
    };
    let request = RequestHead {
        method: "POST",
        host: Some("localhost:8443"),
        origin: Some("https://localhost:8443"),
        cookies: if selector & 8 == 0 {
            vec![cookie.as_bytes()]
        } else {
            vec![]
        },
        path,
        secure_session_id: (selector & 2 == 0).then_some(first),
        secure_session_response: (selector & 4 == 0).then_some(second),
        ..RequestHead::default()
    };
    let head = match fixture
        .runtime
        .block_on(adapter::begin(&fixture.layer, &request))
    {
        Admission::Answer(head) => head,
        other => panic!("a POST to {path} was not answered by the layer: {other:?}"),
    };
    let status = head.replace_status.expect("a status");
    if let Some(body) = &head.replace_body {
        let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(
            json["continue"], false,
            "only continue:false carries a body here"
        );
        assert!(refresh && status == 200, "{status} {body}");
    }
    if refresh {
        match status {
            200 => assert!(head.replace_body.is_some(), "a refresh renewed: {head:?}"),
            403 => assert!(
                head.headers
                    .iter()
                    .any(|(name, _)| *name == "Secure-Session-Challenge"),
                "a 403 without a challenge"
            ),
            400 | 401 => {}
            other => panic!("refresh answered {other}"),
        }
        assert!(
            !head
                .set_cookies
                .iter()
                .any(|c| c.starts_with("__Host-session-bound=") && !c.contains("Max-Age=0")),
            "a bound cookie was set: {head:?}"
        );
    } else {
        assert!(
            matches!(status, 400 | 401 | 403),
            "registration answered {status}"
        );
        assert!(head.set_cookies.is_empty(), "{head:?}");
    }
});

//! Device Bound Session Credentials, protocol level: a test client plays
//! the browser (its own P-256 or RSA key, its own cookie jar honouring
//! `Max-Age` on an injected clock) against a `SessionLayer` through the
//! framework-neutral adapter calls that both integrations are built on.
#![cfg(feature = "dbsc")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::adapter::{self, Admission, RequestHead, ResponseHead};
use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::{
    DbscConfig, DeviceAlgorithm, Key, KeyAlgorithm, Keyring, ManualClock, SessionHandle,
    SessionLayer, SessionMap,
};
use p256::ecdsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{json, Value};

const START: u64 = 1_900_000_000;
const BOUND_SECS: u64 = 300;

// ---------------------------------------------------------------- the server

struct Server {
    layer: SessionLayer,
    clock: Arc<ManualClock>,
    keyring: Keyring,
    store: Arc<MemoryStore>,
}

fn server() -> Server {
    server_with(DbscConfig::new())
}

/// A server on a manual clock at `START`, its store on the same clock (on
/// the system clock, the store would drop as lapsed what it holds once the
/// real date passes `START`).
fn server_with(config: DbscConfig) -> Server {
    let clock = Arc::new(ManualClock::at_unix(START));
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    let layer = SessionLayer::builder(keyring.clone(), Arc::clone(&store))
        .dbsc(config.bound_cookie_lifetime(Duration::from_secs(BOUND_SECS)))
        .clock(clock.clone())
        .build()
        .unwrap();
    Server {
        layer,
        clock,
        keyring,
        store,
    }
}

impl Server {
    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    fn now(&self) -> SystemTime {
        jwe_session::Clock::now(&*self.clock)
    }
}

// ---------------------------------------------------------------- the browser

enum DeviceKeyPair {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa_verify::pkcs1v15::SigningKey<sha2::Sha256>>, Value),
}

fn rsa_key() -> &'static rsa_verify::RsaPrivateKey {
    static KEY: OnceLock<rsa_verify::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa_verify::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap())
}

impl DeviceKeyPair {
    fn es256() -> Self {
        DeviceKeyPair::Es256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    fn rs256() -> Self {
        use rsa_verify::traits::PublicKeyParts as _;
        let key = rsa_key().clone();
        let jwk = json!({
            "kty": "RSA",
            "n": b64(&key.n().to_bytes_be()),
            "e": b64(&key.e().to_bytes_be()),
        });
        DeviceKeyPair::Rs256(Box::new(rsa_verify::pkcs1v15::SigningKey::new(key)), jwk)
    }

    fn alg(&self) -> &'static str {
        match self {
            DeviceKeyPair::Es256(_) => "ES256",
            DeviceKeyPair::Rs256(..) => "RS256",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            DeviceKeyPair::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(point.x().unwrap()),
                    "y": b64(point.y().unwrap()),
                })
            }
            DeviceKeyPair::Rs256(_, jwk) => jwk.clone(),
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            DeviceKeyPair::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            DeviceKeyPair::Rs256(key, _) => key.sign(input).to_vec(),
        }
    }

    /// A `dbsc+jwt` answering `jti`, with this key in its header when
    /// `with_jwk`.
    fn proof(&self, jti: &str, with_jwk: bool) -> String {
        let mut header = json!({"alg": self.alg(), "typ": "dbsc+jwt"});
        if with_jwk {
            header["jwk"] = self.jwk();
        }
        jwt(&header, &json!({ "jti": jti }), |input| self.sign(input))
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwt(header: &Value, payload: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// A cookie jar that honours `Max-Age` against the server's clock, and the
/// DBSC state a browser keeps.
#[derive(Clone, Default)]
struct Jar {
    cookies: BTreeMap<String, (String, Option<SystemTime>)>,
}

impl Jar {
    fn header(&self, now: SystemTime) -> String {
        self.cookies
            .iter()
            .filter(|(_, (_, expires))| expires.is_none_or(|at| at > now))
            .map(|(name, (value, _))| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&mut self, set_cookies: &[String], now: SystemTime) {
        for line in set_cookies {
            let mut parts = line.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let mut expires = None;
            for attribute in parts {
                if let Some(secs) = attribute.strip_prefix("Max-Age=") {
                    expires =
                        Some(now + Duration::from_secs(secs.parse::<i64>().unwrap().max(0) as u64));
                }
            }
            if value.is_empty() || expires.is_some_and(|at| at <= now) {
                self.cookies.remove(name);
            } else {
                self.cookies
                    .insert(name.to_owned(), (value.to_owned(), expires));
            }
        }
    }

    fn without(&self, name: &str) -> Jar {
        let mut copy = self.clone();
        copy.cookies.remove(name);
        copy
    }
}

const BOUND: &str = "__Host-session-bound";
const SESSION: &str = "__Host-session";

/// What one request saw and answered.
struct Exchange {
    head: ResponseHead,
    subject: Option<String>,
    bound: bool,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn status(&self) -> u16 {
        self.head.replace_status.unwrap_or(200)
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.head.replace_body.as_deref().unwrap_or("null")).unwrap()
    }

    /// The challenge of an offer or of a `Secure-Session-Challenge`.
    fn challenge(&self) -> Option<String> {
        let value = self
            .header("Secure-Session-Registration")
            .or(self.header("Secure-Session-Challenge"))?;
        let (_, rest) = value.split_once('"')?;
        let start = if value.starts_with('(') {
            value.split_once("challenge=\"")?.1
        } else {
            rest
        };
        Some(start.split('"').next()?.to_owned())
    }
}

#[derive(Default)]
struct Extra<'a> {
    id: Option<&'a str>,
    response: Option<&'a str>,
}

/// A request through the layer; `handler` runs when the layer lets it
/// through to the application.
async fn send(
    server: &Server,
    jar: &mut Jar,
    method: &str,
    path: &str,
    extra: Extra<'_>,
    handler: impl FnOnce(&SessionHandle<SessionMap>),
) -> Exchange {
    let now = server.now();
    let cookie = jar.header(now);
    let request = RequestHead {
        method,
        host: Some("localhost:8443"),
        origin: (method == "POST").then_some("https://localhost:8443"),
        cookies: if cookie.is_empty() {
            vec![]
        } else {
            vec![cookie.as_bytes()]
        },
        path,
        secure_session_id: extra.id,
        secure_session_response: extra.response,
        ..RequestHead::default()
    };
    let exchange = match adapter::begin(&server.layer, &request).await {
        Admission::Proceed(active) => {
            let handle = active.handle::<SessionMap>();
            handler(&handle);
            let subject = handle.subject();
            let bound = handle.is_bound();
            let head = adapter::finish(&server.layer, active).await;
            Exchange {
                head,
                subject,
                bound,
            }
        }
        Admission::Answer(head) => Exchange {
            head,
            subject: None,
            bound: false,
        },
        other => panic!("unexpected admission {other:?}"),
    };
    jar.store(&exchange.head.set_cookies, now);
    exchange
}

async fn get(server: &Server, jar: &mut Jar) -> Exchange {
    send(server, jar, "GET", "/me", Extra::default(), |_| {}).await
}

async fn login(server: &Server, jar: &mut Jar) -> Exchange {
    send(server, jar, "POST", "/login", Extra::default(), |s| {
        s.login("alice")
    })
    .await
}

async fn register(server: &Server, jar: &mut Jar, proof: &str) -> Exchange {
    let extra = Extra {
        response: Some(proof),
        ..Extra::default()
    };
    send(server, jar, "POST", "/dbsc/register", extra, |_| {
        panic!("the layer answers registrations itself")
    })
    .await
}

async fn refresh(server: &Server, jar: &mut Jar, id: &str, proof: Option<&str>) -> Exchange {
    let extra = Extra {
        id: Some(id),
        response: proof,
    };
    send(server, jar, "POST", "/dbsc/refresh", extra, |_| {
        panic!("the layer answers refreshes itself")
    })
    .await
}

/// Logs in and registers `key`; the binding's id.
async fn bound_session(server: &Server, jar: &mut Jar, key: &DeviceKeyPair) -> String {
    let offered = login(server, jar).await;
    let challenge = offered.challenge().expect("an offer on the login response");
    let registered = register(server, jar, &key.proof(&challenge, true)).await;
    assert_eq!(registered.status(), 200, "{:?}", registered.head);
    registered.json()["session_identifier"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The log lines written while `f` runs (this thread only).
async fn logs<F: std::future::Future>(f: F) -> (F::Output, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A global subscriber first, once: with none, a log line another test
    // reaches while no capture is active could be cached as never logged,
    // for every thread, and this capture would miss it.
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let guard = tracing::subscriber::set_default(subscriber);
    let output = f.await;
    drop(guard);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (output, text)
}

// ---------------------------------------------------------------- the tests

#[tokio::test]
async fn registration_binds_the_session_with_either_algorithm() {
    for key in [DeviceKeyPair::es256(), DeviceKeyPair::rs256()] {
        let server = server();
        let mut jar = Jar::default();
        let offered = login(&server, &mut jar).await;
        let offer = offered.header("Secure-Session-Registration").unwrap();
        assert!(
            offer.starts_with("(ES256 RS256);path=\"/dbsc/register\";challenge=\""),
            "{offer}"
        );
        let challenge = offered.challenge().unwrap();
        let registered = register(&server, &mut jar, &key.proof(&challenge, true)).await;
        assert_eq!(registered.status(), 200, "{}", key.alg());
        assert!(registered.head.no_store);
        let instructions = registered.json();
        let id = instructions["session_identifier"].as_str().unwrap();
        assert_eq!(id.len(), 22);
        assert_eq!(instructions["refresh_url"], "/dbsc/refresh");
        assert_eq!(instructions["continue"], true);
        assert_eq!(instructions["scope"]["origin"], "https://localhost:8443");
        assert_eq!(instructions["scope"]["include_site"], false);
        assert_eq!(
            instructions["credentials"],
            json!([{"type": "cookie", "name": BOUND,
                    "attributes": "HttpOnly; SameSite=Lax; Secure; Path=/"}])
        );
        assert!(jar.cookies.contains_key(BOUND), "the bound cookie is set");
        let bound_line = registered
            .head
            .set_cookies
            .iter()
            .find(|c| c.starts_with(BOUND))
            .unwrap();
        assert!(
            bound_line.contains(&format!("Max-Age={BOUND_SECS}")),
            "{bound_line}"
        );

        let me = get(&server, &mut jar).await;
        assert_eq!(me.subject.as_deref(), Some("alice"));
        assert!(me.bound, "{}", key.alg());
        assert!(
            me.header("Secure-Session-Registration").is_none(),
            "no offer once bound"
        );
    }
}

#[tokio::test]
async fn tokens_sealed_before_the_binding_no_longer_open() {
    let server = server();
    let mut jar = Jar::default();
    let offered = login(&server, &mut jar).await;
    let before = jar.clone();
    let challenge = offered.challenge().unwrap();
    let key = DeviceKeyPair::es256();
    assert_eq!(
        register(&server, &mut jar, &key.proof(&challenge, true))
            .await
            .status(),
        200
    );
    assert_ne!(
        before.cookies[SESSION], jar.cookies[SESSION],
        "a new session token"
    );
    // A copy of the cookie taken before the binding (a HAR file of the
    // login) is worth nothing now: its session id was renewed and revoked.
    let mut copy = before;
    let stolen = get(&server, &mut copy).await;
    assert_eq!(stolen.subject, None);
    // Nor does its answer remove the cookie: the browser's GET that raced
    // the registration must not clear the bound session's new cookie.
    assert!(
        stolen.head.set_cookies.is_empty(),
        "{:?}",
        stolen.head.set_cookies
    );
    assert_eq!(
        get(&server, &mut jar).await.subject.as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn a_copied_session_cookie_without_the_bound_cookie_is_no_session_and_revokes_nothing() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    bound_session(&server, &mut jar, &key).await;
    let mut thief = jar.without(BOUND);
    let (stolen, log) = logs(get(&server, &mut thief)).await;
    assert_eq!(stolen.subject, None);
    assert!(!stolen.bound);
    assert!(stolen.head.set_cookies.is_empty(), "nothing set or removed");
    assert!(log.contains("no bound cookie"), "{log}");
    // A forged bound cookie is no better.
    thief
        .cookies
        .insert(BOUND.into(), ("x.y.z.w.v".into(), None));
    assert_eq!(get(&server, &mut thief).await.subject, None);
    // The real browser carries on.
    let me = get(&server, &mut jar).await;
    assert_eq!(me.subject.as_deref(), Some("alice"));
    assert!(me.bound);
}

#[tokio::test]
async fn a_bound_cookie_of_another_session_is_refused() {
    let server = server();
    let (mut a, mut b) = (Jar::default(), Jar::default());
    bound_session(&server, &mut a, &DeviceKeyPair::es256()).await;
    bound_session(&server, &mut b, &DeviceKeyPair::es256()).await;
    let mut mixed = a.without(BOUND);
    mixed.cookies.insert(BOUND.into(), b.cookies[BOUND].clone());
    let (me, log) = logs(get(&server, &mut mixed)).await;
    assert_eq!(me.subject, None);
    assert!(log.contains("for another session"), "{log}");
}

#[tokio::test]
async fn the_bound_cookie_expires_and_a_refresh_renews_it() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::rs256();
    let id = bound_session(&server, &mut jar, &key).await;
    server.advance(BOUND_SECS + 1);
    assert!(
        !jar.header(server.now()).contains(BOUND),
        "expired in the jar"
    );
    assert_eq!(
        get(&server, &mut jar).await.subject,
        None,
        "no session without it"
    );

    // No cached challenge: 403 with one, then the proof.
    let asked = refresh(&server, &mut jar, &id, None).await;
    assert_eq!(asked.status(), 403);
    let header = asked.header("Secure-Session-Challenge").unwrap();
    assert!(header.ends_with(&format!(";id=\"{id}\"")), "{header}");
    let challenge = asked.challenge().unwrap();
    let renewed = refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    assert_eq!(renewed.status(), 200, "{:?}", renewed.head);
    assert!(
        renewed.head.replace_body.is_none(),
        "an empty body keeps the instructions"
    );
    assert!(jar.cookies.contains_key(BOUND));
    let me = get(&server, &mut jar).await;
    assert_eq!(me.subject.as_deref(), Some("alice"));
    assert!(me.bound);

    // Within the skew allowance a bound cookie still counts; past it, not.
    let stale = jar.clone();
    server.advance(BOUND_SECS + 4);
    let mut late = stale.clone();
    for (_, expires) in late.cookies.values_mut() {
        *expires = None; // a client that ignores Max-Age
    }
    assert_eq!(
        get(&server, &mut late).await.subject.as_deref(),
        Some("alice")
    );
    server.advance(2);
    assert_eq!(get(&server, &mut late).await.subject, None);
}

#[tokio::test]
async fn a_primed_challenge_makes_the_refresh_one_round_trip() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    // Far from the end: no challenge on ordinary responses.
    assert!(get(&server, &mut jar).await.challenge().is_none());
    // Within 2 minutes + a challenge's life of the end: primed.
    server.advance(BOUND_SECS - 170);
    let primed = get(&server, &mut jar).await;
    let challenge = primed.challenge().expect("a primed challenge");
    assert!(primed
        .header("Secure-Session-Challenge")
        .unwrap()
        .ends_with(&format!(";id=\"{id}\"")));
    server.advance(50);
    let renewed = refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    assert_eq!(renewed.status(), 200);
    // A fresh bound cookie is far from its end: no challenge primed.
    let earlier = get(&server, &mut jar).await; // fresh cookie: not primed
    assert!(earlier.challenge().is_none());
}

#[tokio::test]
async fn the_previous_challenge_is_accepted_and_every_challenge_only_once() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    server.advance(BOUND_SECS + 1);
    let first = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    let second = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    assert_ne!(first, second);
    // The earlier of the two still works...
    let ok = refresh(&server, &mut jar, &id, Some(&key.proof(&first, false))).await;
    assert_eq!(ok.status(), 200);
    // ...but not twice: a replay gets a new challenge, never a bound cookie.
    let mut replayer = jar.without(BOUND);
    let (replayed, log) = logs(refresh(
        &server,
        &mut replayer,
        &id,
        Some(&key.proof(&first, false)),
    ))
    .await;
    assert_eq!(replayed.status(), 403);
    assert!(replayed.challenge().is_some());
    assert!(!replayer.cookies.contains_key(BOUND));
    assert!(log.contains("challenge already used"), "{log}");
    let ok = refresh(&server, &mut jar, &id, Some(&key.proof(&second, false))).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn foreign_expired_and_registration_challenges_are_refused_for_a_refresh() {
    let server = server();
    let (mut jar, mut other) = (Jar::default(), Jar::default());
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    let other_id = bound_session(&server, &mut other, &DeviceKeyPair::es256()).await;
    server.advance(BOUND_SECS + 1);

    // A challenge issued for another session.
    let foreign = refresh(&server, &mut other, &other_id, None)
        .await
        .challenge()
        .unwrap();
    let (answer, log) = logs(refresh(
        &server,
        &mut jar,
        &id,
        Some(&key.proof(&foreign, false)),
    ))
    .await;
    assert_eq!(answer.status(), 403);
    assert!(
        log.contains("challenge refused: for another session"),
        "{log}"
    );

    // A registration challenge (offered to a fresh login).
    let mut fresh = Jar::default();
    let offer = login(&server, &mut fresh).await.challenge().unwrap();
    let (answer, log) = logs(refresh(
        &server,
        &mut jar,
        &id,
        Some(&key.proof(&offer, false)),
    ))
    .await;
    assert_eq!(answer.status(), 403);
    assert!(log.contains("challenge refused: for another use"), "{log}");

    // An expired one: 60 seconds is the most a challenge lives.
    let old = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    server.advance(61);
    let (answer, log) = logs(refresh(
        &server,
        &mut jar,
        &id,
        Some(&key.proof(&old, false)),
    ))
    .await;
    assert_eq!(answer.status(), 403);
    assert!(log.contains("challenge refused: expired"), "{log}");

    // Not a challenge of this server at all.
    let (answer, log) = logs(refresh(
        &server,
        &mut jar,
        &id,
        Some(&key.proof("made-up", false)),
    ))
    .await;
    assert_eq!(answer.status(), 403);
    assert!(log.contains("challenge refused: does not open"), "{log}");
    assert!(!jar.header(server.now()).contains(BOUND));
}

#[tokio::test]
async fn another_devices_key_is_refused_and_the_session_lives_on() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    server.advance(BOUND_SECS + 1);
    let attacker = DeviceKeyPair::es256();
    let mut thief = jar.clone();
    for with_jwk in [false, true] {
        let challenge = refresh(&server, &mut thief, &id, None)
            .await
            .challenge()
            .unwrap();
        let (answer, log) = logs(refresh(
            &server,
            &mut thief,
            &id,
            Some(&attacker.proof(&challenge, with_jwk)),
        ))
        .await;
        assert_eq!(answer.status(), 400, "with_jwk: {with_jwk}");
        assert!(
            log.contains("proof signature does not verify")
                || log.contains("proof carries another device's key"),
            "{log}"
        );
        assert!(!thief.header(server.now()).contains(BOUND));
    }
    // An RSA key for an ES256 binding: refused by its algorithm.
    let challenge = refresh(&server, &mut thief, &id, None)
        .await
        .challenge()
        .unwrap();
    let (answer, log) = logs(refresh(
        &server,
        &mut thief,
        &id,
        Some(&DeviceKeyPair::rs256().proof(&challenge, true)),
    ))
    .await;
    assert_eq!(answer.status(), 400);
    assert!(log.contains("proof alg is not allowed here"), "{log}");
    // The real device refreshes as ever.
    let challenge = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    let ok = refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        get(&server, &mut jar).await.subject.as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn a_bound_session_cannot_be_registered_again() {
    let server = server();
    let mut jar = Jar::default();
    let offered = login(&server, &mut jar).await;
    let challenge = offered.challenge().unwrap();
    let key = DeviceKeyPair::es256();
    assert_eq!(
        register(&server, &mut jar, &key.proof(&challenge, true))
            .await
            .status(),
        200
    );
    // The attacker holds the long-lived cookie and the offer's challenge
    // (or any other) and registers a key of their own: refused, and the
    // binding stays.
    let attacker = DeviceKeyPair::es256();
    let mut thief = jar.without(BOUND);
    let (answer, log) = logs(register(
        &server,
        &mut thief,
        &attacker.proof(&challenge, true),
    ))
    .await;
    assert_eq!(answer.status(), 400);
    assert!(log.contains("challenge refused"), "{log}");
    // A login on the bound session (same device) keeps the binding and
    // offers nothing.
    let again = send(&server, &mut jar, "POST", "/login", Extra::default(), |s| {
        s.login("alice")
    })
    .await;
    assert!(again.header("Secure-Session-Registration").is_none());
    let me = get(&server, &mut jar).await;
    assert!(me.bound);
    assert_eq!(me.subject.as_deref(), Some("alice"));
    // Nor can a handler unbind: the thief's requests stay "no session"
    // whatever they do.
    let touched = send(
        &server,
        &mut thief,
        "POST",
        "/note",
        Extra::default(),
        |s| {
            s.insert("note", "x").unwrap();
        },
    )
    .await;
    assert_eq!(touched.subject, None);
    assert!(!touched.bound);
}

#[tokio::test]
async fn of_two_racing_registrations_only_the_first_binds() {
    // Two offers answered at once, both registrations carrying the cookie
    // from before the binding.
    let server = server_with(DbscConfig::new().offer_every(1));
    let mut jar = Jar::default();
    login(&server, &mut jar).await;
    server.advance(60);
    let first = get(&server, &mut jar)
        .await
        .challenge()
        .expect("offered again");
    let second = get(&server, &mut jar).await.challenge().expect("and again");
    let before = jar.clone();
    let (a, b) = (DeviceKeyPair::es256(), DeviceKeyPair::es256());
    assert_eq!(
        register(&server, &mut jar, &a.proof(&first, true))
            .await
            .status(),
        200
    );
    let mut racing = before;
    let (answer, _) = logs(register(&server, &mut racing, &b.proof(&second, true))).await;
    assert_ne!(answer.status(), 200, "the second key must not bind");
    assert!(get(&server, &mut jar).await.bound);
}

#[tokio::test]
async fn a_replayed_registration_and_a_session_that_is_not_signed_in_are_refused() {
    let server = server();
    let mut jar = Jar::default();
    let offered = login(&server, &mut jar).await;
    let challenge = offered.challenge().unwrap();
    let key = DeviceKeyPair::es256();
    let before = jar.clone();
    assert_eq!(
        register(&server, &mut jar, &key.proof(&challenge, true))
            .await
            .status(),
        200
    );
    let mut replay = before;
    let (answer, _) = logs(register(&server, &mut replay, &key.proof(&challenge, true))).await;
    assert_eq!(answer.status(), 401, "the pre-binding session was revoked");
    // No session at all.
    let mut anonymous = Jar::default();
    let (answer, log) = logs(register(
        &server,
        &mut anonymous,
        &key.proof(&challenge, true),
    ))
    .await;
    assert_eq!(answer.status(), 401);
    assert!(log.contains("no valid session to bind"), "{log}");
}

#[tokio::test]
async fn logout_and_revocation_answer_continue_false() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    let copy = jar.clone();
    let out = send(
        &server,
        &mut jar,
        "POST",
        "/logout",
        Extra::default(),
        |s| s.destroy(),
    )
    .await;
    assert!(
        out.head
            .set_cookies
            .iter()
            .any(|c| c.starts_with(&format!("{BOUND}=;"))),
        "{:?}",
        out.head.set_cookies
    );
    // The browser that logged out sends no session cookie any more: over.
    let ended = refresh(&server, &mut jar, &id, None).await;
    assert_eq!(ended.json()["continue"], false);
    // A copy of the cookies holds the revoked token: just after the logout
    // it could be a token a renewal replaced in flight, so 503 (retry);
    // minutes later it is dead: continue:false.
    let mut copy = copy;
    assert_eq!(refresh(&server, &mut copy, &id, None).await.status(), 503);
    server.advance(121);
    let ended = refresh(&server, &mut copy, &id, None).await;
    assert_eq!(ended.status(), 200);
    assert_eq!(
        ended.json(),
        json!({"session_identifier": id, "continue": false})
    );
    // No cookie touched: they may already be a newer session's.
    assert!(
        ended.head.set_cookies.is_empty(),
        "{:?}",
        ended.head.set_cookies
    );

    // Log out everywhere.
    let mut jar = Jar::default();
    let id = bound_session(&server, &mut jar, &key).await;
    let layer_store: &MemoryStore = &server.store;
    layer_store
        .revoke_subject(
            "alice",
            server.now(),
            server.now() + Duration::from_secs(86_400),
        )
        .await
        .unwrap();
    server.advance(121);
    let ended = refresh(&server, &mut jar, &id, None).await;
    assert_eq!(ended.json()["continue"], false);

    // An id the session is not bound under.
    let mut jar = Jar::default();
    bound_session(&server, &mut jar, &key).await;
    let ended = refresh(&server, &mut jar, "not-this-one", None).await;
    assert_eq!(
        ended.json(),
        json!({"session_identifier": "not-this-one", "continue": false})
    );
}

#[tokio::test]
async fn rotation_renewal_and_reissue_keep_the_binding() {
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    server.keyring.rotate().unwrap();
    // The session token is re-issued under the new key; the bound cookie,
    // sealed under the retired key, still opens.
    let me = get(&server, &mut jar).await;
    assert!(me.bound);
    assert!(me.head.set_cookies.iter().any(|c| c.starts_with(SESSION)));
    // A renewal (change of privilege) keeps it too.
    let renewed = send(&server, &mut jar, "POST", "/sudo", Extra::default(), |s| {
        s.renew()
    })
    .await;
    assert!(renewed.bound);
    assert!(get(&server, &mut jar).await.bound);
    // And a refresh after all that, with the binding's same id.
    server.advance(BOUND_SECS + 1);
    let challenge = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    let ok = refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    assert_eq!(ok.status(), 200);
    let me = get(&server, &mut jar).await;
    assert!(me.bound);
    assert_eq!(me.subject.as_deref(), Some("alice"));
}

#[tokio::test]
async fn malformed_headers_and_proofs_are_refused_with_a_clear_log() {
    let server = server();
    let key = DeviceKeyPair::es256();
    let mut jar = Jar::default();
    let offered = login(&server, &mut jar).await;
    let challenge = offered.challenge().unwrap();
    let sign = |input: &[u8]| key.sign(input);
    let good_header = json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk()});
    let payload = json!({"jti": challenge});
    let mut other = key.jwk();
    other["crv"] = json!("P-384");
    let mut off_curve = key.jwk();
    off_curve["y"] = off_curve["x"].clone();
    let mut private = key.jwk();
    private["d"] = json!("AAAA");
    let mut cases: Vec<(String, &str)> = vec![
        ("".into(), "no well-formed Secure-Session-Response"),
        ("a b".into(), "no well-formed Secure-Session-Response"),
        (
            "\"unterminated".into(),
            "no well-formed Secure-Session-Response",
        ),
        ("abc".into(), "not three dot-separated parts"),
        ("a.b.c.d".into(), "not three dot-separated parts"),
        ("a==.b.c".into(), "no well-formed Secure-Session-Response"),
        ("AR.e30.AA".into(), "header is not canonical base64url"),
        (
            format!("{}.e30.AA", b64(b"[]")),
            "header is not a JSON object",
        ),
        (
            jwt(
                &json!({"alg": "none", "typ": "dbsc+jwt", "jwk": key.jwk()}),
                &payload,
                |_| vec![0],
            ),
            "alg is not ES256 or RS256",
        ),
        (
            jwt(
                &json!({"alg": "HS256", "typ": "dbsc+jwt", "jwk": key.jwk()}),
                &payload,
                sign,
            ),
            "alg is not ES256 or RS256",
        ),
        (
            jwt(
                &json!({"alg": "ES256", "typ": "JWT", "jwk": key.jwk()}),
                &payload,
                sign,
            ),
            "typ is not dbsc+jwt",
        ),
        (
            jwt(&json!({"alg": "ES256", "jwk": key.jwk()}), &payload, sign),
            "typ is not dbsc+jwt",
        ),
        (
            jwt(
                &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk(), "crit": ["x"]}),
                &payload,
                sign,
            ),
            "header has crit",
        ),
        (
            jwt(&json!({"alg": "ES256", "typ": "dbsc+jwt"}), &payload, sign),
            "registration proof has no jwk",
        ),
        (
            jwt(
                &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": other}),
                &payload,
                sign,
            ),
            "not a P-256 key",
        ),
        (
            jwt(
                &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": off_curve}),
                &payload,
                sign,
            ),
            "not a point on the curve",
        ),
        (
            jwt(
                &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": private}),
                &payload,
                sign,
            ),
            "carries a private key",
        ),
        (
            jwt(
                &json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": key.jwk()}),
                &payload,
                sign,
            ),
            "type does not fit its alg",
        ),
        (
            jwt(&good_header, &json!({"nonce": challenge}), sign),
            "payload is not a JSON object with a jti",
        ),
        (
            jwt(&good_header, &json!({"jti": 5}), sign),
            "payload is not a JSON object with a jti",
        ),
        (
            jwt(&good_header, &payload, |_| vec![0; 64]),
            "signature does not verify",
        ),
        (
            jwt(&good_header, &payload, |input| {
                let mut s = key.sign(input);
                s.push(0);
                s
            }),
            "signature does not verify",
        ),
    ];
    // DER instead of JWS's r || s.
    let der = {
        let header = b64(good_header.to_string().as_bytes());
        let body = b64(payload.to_string().as_bytes());
        let input = format!("{header}.{body}");
        let signature: p256::ecdsa::Signature = match &key {
            DeviceKeyPair::Es256(k) => k.sign(input.as_bytes()),
            _ => unreachable!(),
        };
        format!("{input}.{}", b64(signature.to_der().as_bytes()))
    };
    cases.push((der, "signature does not verify"));
    cases.push(("x".repeat(9000), "no well-formed Secure-Session-Response"));
    for (proof, expected) in cases {
        let mut attempt = jar.clone();
        let (answer, log) = logs(register(&server, &mut attempt, &proof)).await;
        assert_eq!(answer.status(), 400, "{expected}");
        assert!(
            answer.head.replace_body.is_none(),
            "the client is told nothing"
        );
        assert!(log.contains(expected), "expected {expected:?} in {log}");
        assert!(!attempt.cookies.contains_key(BOUND));
    }
    // No header at all.
    let (answer, log) = logs(send(
        &server,
        &mut jar.clone(),
        "POST",
        "/dbsc/register",
        Extra::default(),
        |_| {},
    ))
    .await;
    assert_eq!(answer.status(), 400);
    assert!(
        log.contains("no well-formed Secure-Session-Response"),
        "{log}"
    );
    // After all that, the real proof (quoted, as a structured field) works.
    let quoted = format!("\"{}\"", key.proof(&challenge, true));
    let registered = register(&server, &mut jar, &quoted).await;
    assert_eq!(registered.status(), 200);
    let id = registered.json()["session_identifier"]
        .as_str()
        .unwrap()
        .to_owned();

    // Refresh: the session id header, bare, quoted or broken.
    for (header, status) in [
        (format!("\"{id}\""), 403),
        (id.clone(), 403),
        (format!("{id};x=1"), 400),
        ("\"".to_owned(), 400),
        (String::new(), 400),
    ] {
        let answer = refresh(&server, &mut jar.clone(), &header, None).await;
        assert_eq!(answer.status(), status, "{header:?}");
    }
    let (answer, log) = logs(send(
        &server,
        &mut jar.clone(),
        "POST",
        "/dbsc/refresh",
        Extra::default(),
        |_| {},
    ))
    .await;
    assert_eq!(answer.status(), 400);
    assert!(
        log.contains("no well-formed Sec-Secure-Session-Id"),
        "{log}"
    );
}

#[tokio::test]
async fn the_store_down_makes_the_browser_skip_never_end() {
    #[derive(Default)]
    struct Down(MemoryStore, std::sync::atomic::AtomicBool);
    #[async_trait::async_trait]
    impl RevocationStore for Down {
        async fn revoke_session(
            &self,
            sub: &str,
            sid: &str,
            until: SystemTime,
        ) -> Result<(), jwe_session::StoreError> {
            self.fail()?;
            self.0.revoke_session(sub, sid, until).await
        }
        async fn revoke_subject(
            &self,
            sub: &str,
            now: SystemTime,
            until: SystemTime,
        ) -> Result<jwe_session::revocation::SubjectState, jwe_session::StoreError> {
            self.fail()?;
            self.0.revoke_subject(sub, now, until).await
        }
        async fn mark_stale(
            &self,
            sub: &str,
            now: SystemTime,
            until: SystemTime,
        ) -> Result<jwe_session::revocation::SubjectState, jwe_session::StoreError> {
            self.fail()?;
            self.0.mark_stale(sub, now, until).await
        }
        async fn subject(
            &self,
            sub: &str,
        ) -> Result<jwe_session::revocation::SubjectState, jwe_session::StoreError> {
            self.fail()?;
            self.0.subject(sub).await
        }
        async fn check(
            &self,
            sub: &str,
            sid: &str,
        ) -> Result<jwe_session::revocation::CheckOutcome, jwe_session::StoreError> {
            self.fail()?;
            self.0.check(sub, sid).await
        }
        async fn use_nonce(
            &self,
            nonce: &str,
            until: SystemTime,
        ) -> Result<bool, jwe_session::StoreError> {
            self.fail()?;
            self.0.use_nonce(nonce, until).await
        }
    }
    impl Down {
        fn fail(&self) -> Result<(), jwe_session::StoreError> {
            if self.1.load(std::sync::atomic::Ordering::SeqCst) {
                Err(jwe_session::StoreError::Unavailable("down".into()))
            } else {
                Ok(())
            }
        }
    }
    let clock = Arc::new(ManualClock::at_unix(START));
    let store = Arc::new(Down::default());
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    let layer = SessionLayer::builder(keyring.clone(), Arc::clone(&store))
        .dbsc(DbscConfig::new().bound_cookie_lifetime(Duration::from_secs(BOUND_SECS)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let server = Server {
        layer,
        clock,
        keyring,
        store: Arc::new(MemoryStore::new()),
    };
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    server.advance(BOUND_SECS + 1);
    let challenge = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    store.1.store(true, std::sync::atomic::Ordering::SeqCst);
    let skipped = refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    assert_eq!(
        skipped.status(),
        503,
        "5xx: the browser skips and keeps the session"
    );
    assert!(skipped.head.replace_body.is_none(), "never continue:false");
    store.1.store(false, std::sync::atomic::Ordering::SeqCst);
    let ok = refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    assert_eq!(
        ok.status(),
        200,
        "the challenge was not used up by the failure"
    );
}

#[tokio::test]
async fn a_browser_without_dbsc_keeps_an_ordinary_session_and_offers_are_rationed() {
    let server = server_with(DbscConfig::new().offer_every(3));
    let mut jar = Jar::default();
    assert!(login(&server, &mut jar).await.challenge().is_some());
    // Not again in the minute the login's offer may still be answered
    // (Chromium would register twice, with two keys).
    for _ in 0..9 {
        let me = get(&server, &mut jar).await;
        assert!(me.header("Secure-Session-Registration").is_none());
    }
    server.advance(60);
    let mut offers = 0;
    for _ in 0..9 {
        let me = get(&server, &mut jar).await;
        assert_eq!(me.subject.as_deref(), Some("alice"));
        assert!(!me.bound);
        offers += usize::from(me.header("Secure-Session-Registration").is_some());
    }
    assert_eq!(offers, 3, "one response in 3");
    // Anonymous visitors are never offered.
    let mut anonymous = Jar::default();
    for _ in 0..6 {
        let seen = send(
            &server,
            &mut anonymous,
            "POST",
            "/cart",
            Extra::default(),
            |s| {
                s.insert("n", 1).unwrap();
            },
        )
        .await;
        assert!(seen.header("Secure-Session-Registration").is_none());
    }
    // And offer_every(0): only at login.
    let server = server_with(DbscConfig::new().offer_every(0));
    let mut jar = Jar::default();
    assert!(login(&server, &mut jar).await.challenge().is_some());
    for _ in 0..5 {
        assert!(get(&server, &mut jar).await.challenge().is_none());
    }
}

#[tokio::test]
async fn configuration_is_checked_at_build() {
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    for (config, expected) in [
        (
            DbscConfig::new().registration_path("dbsc"),
            "path on this site",
        ),
        (DbscConfig::new().refresh_path("/a\"b"), "path on this site"),
        (
            DbscConfig::new().refresh_path("/dbsc/register"),
            "must differ",
        ),
        (
            DbscConfig::new().bound_cookie_lifetime(Duration::from_secs(5)),
            "10 seconds to 1 hour",
        ),
        (
            DbscConfig::new().challenge_lifetime(Duration::from_secs(120)),
            "5 to 60 seconds",
        ),
        (DbscConfig::new().algorithms(&[]), "at least one algorithm"),
        (
            DbscConfig::new().origin("http://example.com"),
            "https origin",
        ),
        (
            DbscConfig::new().bound_cookie_name("__Host-session"),
            "must differ",
        ),
        (
            DbscConfig::new().bound_cookie_name("bad name"),
            "not a valid cookie name",
        ),
    ] {
        let error = SessionLayer::builder(keyring.clone(), MemoryStore::new())
            .dbsc(config)
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
    // Only the algorithms configured are offered and accepted.
    let server = server_with(DbscConfig::new().algorithms(&[DeviceAlgorithm::Es256]));
    let mut jar = Jar::default();
    let offered = login(&server, &mut jar).await;
    assert!(offered
        .header("Secure-Session-Registration")
        .unwrap()
        .starts_with("(ES256);"));
    let challenge = offered.challenge().unwrap();
    let (answer, log) = logs(register(
        &server,
        &mut jar,
        &DeviceKeyPair::rs256().proof(&challenge, true),
    ))
    .await;
    assert_eq!(answer.status(), 400);
    assert!(log.contains("alg is not allowed here"), "{log}");
}

#[tokio::test]
async fn the_registration_and_refresh_paths_are_answered_only_for_post() {
    let server = server();
    let mut jar = Jar::default();
    login(&server, &mut jar).await;
    let mut reached = false;
    send(
        &server,
        &mut jar,
        "GET",
        "/dbsc/register",
        Extra::default(),
        |_| reached = true,
    )
    .await;
    assert!(reached, "a GET goes to the application");
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn the_protocol_is_counted() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    get(&server, &mut jar.without(BOUND)).await;
    server.advance(BOUND_SECS + 1);
    let challenge = refresh(&server, &mut jar, &id, None)
        .await
        .challenge()
        .unwrap();
    refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    refresh(&server, &mut jar, &id, Some(&key.proof(&challenge, false))).await;
    refresh(&server, &mut jar, "gone", None).await;
    let text = handle.render();
    for event in [
        "offered",
        "registered",
        "unbound_request",
        "challenged",
        "refreshed",
        "ended",
    ] {
        let line = format!("jwe_session_dbsc_total{{event=\"{event}\"}}");
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn a_request_without_the_bound_cookie_never_overwrites_the_session() {
    // Chromium sends requests without the bound cookie when it skips a
    // refresh (a 5xx, its signing quota): a handler that writes must not
    // replace the bound session's cookie with a new anonymous one.
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    let mut skipped = jar.without(BOUND);
    let wrote = send(
        &server,
        &mut skipped,
        "POST",
        "/cart",
        Extra::default(),
        |s| {
            s.insert("item", "book").unwrap();
            s.flash(jwe_session::FlashLevel::Info, "added");
        },
    )
    .await;
    assert_eq!(wrote.subject, None);
    assert!(
        wrote.head.set_cookies.is_empty(),
        "{:?}",
        wrote.head.set_cookies
    );
    // The session is whole: a refresh renews the bound cookie.
    let challenge = refresh(&server, &mut skipped, &id, None)
        .await
        .challenge()
        .unwrap();
    let ok = refresh(
        &server,
        &mut skipped,
        &id,
        Some(&key.proof(&challenge, false)),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        get(&server, &mut skipped).await.subject.as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn the_page_after_login_racing_the_registration_cannot_log_the_user_out() {
    // Chromium sends the registration in parallel with the GET that follows
    // the login's redirect; when the GET is answered after the binding, it
    // carries the replaced token: no session, and whatever its handler
    // writes (a flash read, a counter) sets no cookie.
    let server = server();
    let mut jar = Jar::default();
    let offered = login(&server, &mut jar).await;
    let racing = jar.clone();
    let key = DeviceKeyPair::es256();
    let challenge = offered.challenge().unwrap();
    assert_eq!(
        register(&server, &mut jar, &key.proof(&challenge, true))
            .await
            .status(),
        200
    );
    let mut late = racing;
    let page = send(&server, &mut late, "GET", "/", Extra::default(), |s| {
        s.insert("visits", 1).unwrap();
    })
    .await;
    assert!(
        page.head.set_cookies.is_empty(),
        "{:?}",
        page.head.set_cookies
    );
    // Applied after the registration's cookies, it changes nothing.
    jar.store(&page.head.set_cookies, server.now());
    let me = get(&server, &mut jar).await;
    assert!(me.bound);
    assert_eq!(me.subject.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_refresh_with_a_token_just_replaced_is_retried_not_ended() {
    // A refresh sent while a renewal was in flight carries the replaced
    // token: 503 (the browser skips and retries with the new cookie), never
    // continue:false, which would end the binding of a live session.
    let server = server();
    let mut jar = Jar::default();
    let key = DeviceKeyPair::es256();
    let id = bound_session(&server, &mut jar, &key).await;
    let before = jar.clone();
    send(&server, &mut jar, "POST", "/sudo", Extra::default(), |s| {
        s.renew()
    })
    .await;
    let mut racing = before;
    let answer = refresh(&server, &mut racing, &id, None).await;
    assert_eq!(answer.status(), 503);
    assert!(answer.head.replace_body.is_none());
    // With the new cookie it goes through.
    let asked = refresh(&server, &mut jar, &id, None).await;
    assert_eq!(asked.status(), 403);
    // Minutes later, a revoked token is a dead one: continue:false.
    server.advance(121);
    let ended = refresh(&server, &mut racing, &id, None).await;
    assert_eq!(ended.json()["continue"], false);
}

#[tokio::test]
async fn a_challenge_from_a_server_whose_clock_is_ahead_is_accepted() {
    // Two servers of a fleet share the keyring and the store; A's clock is
    // 3 s ahead of B's. A offers at login, B takes the registration.
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    let store = Arc::new(MemoryStore::new().with_clock(Arc::new(ManualClock::at_unix(START))));
    let node = |clock: Arc<ManualClock>| Server {
        layer: SessionLayer::builder(keyring.clone(), Arc::clone(&store))
            .dbsc(DbscConfig::new().bound_cookie_lifetime(Duration::from_secs(BOUND_SECS)))
            .clock(clock.clone())
            .build()
            .unwrap(),
        clock,
        keyring: keyring.clone(),
        store: Arc::clone(&store),
    };
    let a = node(Arc::new(ManualClock::at_unix(START + 3)));
    let b = node(Arc::new(ManualClock::at_unix(START)));
    let mut jar = Jar::default();
    let offered = send(&a, &mut jar, "POST", "/login", Extra::default(), |s| {
        s.login("alice")
    })
    .await;
    let challenge = offered.challenge().unwrap();
    let key = DeviceKeyPair::es256();
    let registered = register(&b, &mut jar, &key.proof(&challenge, true)).await;
    assert_eq!(registered.status(), 200, "{:?}", registered.head);
    // More than the allowance (5 s) ahead is refused.
    let c = node(Arc::new(ManualClock::at_unix(START + 9)));
    let mut other = Jar::default();
    let offered = send(&c, &mut other, "POST", "/login", Extra::default(), |s| {
        s.login("bob")
    })
    .await;
    let challenge = offered.challenge().unwrap();
    let (answer, log) = logs(register(&b, &mut other, &key.proof(&challenge, true))).await;
    assert_ne!(answer.status(), 200);
    assert!(log.contains("issued in the future"), "{log}");
}

#[tokio::test]
async fn an_overlong_session_id_header_is_refused_and_not_echoed() {
    let server = server();
    let mut jar = Jar::default();
    bound_session(&server, &mut jar, &DeviceKeyPair::es256()).await;
    let long = "a".repeat(65);
    let answer = refresh(&server, &mut jar, &long, None).await;
    assert_eq!(answer.status(), 400);
    assert!(answer.head.replace_body.is_none());
}

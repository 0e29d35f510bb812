//! Requests in flight when the session cookie changes: a response to a
//! request that carried the client's previous cookie, answered after the
//! new one was set (a login, a renewal, a device binding), must not remove
//! the new cookie. Browsers apply `Set-Cookie` in the order responses
//! arrive, so a removal sent for a token revoked *because it was replaced*
//! would log the user out.

//!
//! Each test runs twice: with the memory store, which answers a check at
//! once (the layer loads without awaiting), and with a store that must be
//! awaited, as Redis is (the layer's other path).

mod support;

use std::sync::Arc;

use jwe_session::adapter::{self, Admission, RequestHead, ResponseHead};
use jwe_session::revocation::{MemoryStore, RevocationStore};
use jwe_session::{Key, KeyAlgorithm, Keyring, SessionLayer, SessionMap};
use support::stores::AwaitedStore;

/// `store`, awaited or not.
fn store(store: MemoryStore, awaited: bool) -> Arc<dyn RevocationStore> {
    if awaited {
        Arc::new(AwaitedStore::new(store))
    } else {
        Arc::new(store)
    }
}

fn layer(awaited: bool) -> SessionLayer {
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    SessionLayer::new(keyring, store(MemoryStore::new(), awaited)).unwrap()
}

/// Two tests of `$body(awaited)`: `$memory` with the memory store,
/// `$awaited` with a store that must be awaited.
macro_rules! both_stores {
    ($body:ident, $memory:ident, $awaited:ident) => {
        #[tokio::test]
        async fn $memory() {
            $body(false).await;
        }

        #[tokio::test]
        async fn $awaited() {
            $body(true).await;
        }
    };
}

async fn request(
    layer: &SessionLayer,
    cookie: Option<&str>,
    handler: impl FnOnce(&jwe_session::SessionHandle<SessionMap>),
) -> (Option<String>, ResponseHead) {
    let header = cookie.map(|token| format!("__Host-session={token}"));
    let request = RequestHead {
        method: "POST",
        host: Some("example.com"),
        origin: Some("https://example.com"),
        cookies: header.iter().map(|h| h.as_bytes()).collect(),
        path: "/",
        ..RequestHead::default()
    };
    let Admission::Proceed(active) = adapter::begin(layer, &request).await else {
        panic!("refused");
    };
    let handle = active.handle::<SessionMap>();
    handler(&handle);
    let subject = handle.subject();
    (subject, adapter::finish(layer, active).await)
}

fn token(head: &ResponseHead) -> String {
    let line = head
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-session="))
        .expect("a session cookie");
    line["__Host-session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

both_stores!(
    late_answer_leaves_the_new_cookie_alone,
    a_late_answer_for_a_replaced_token_leaves_the_new_cookie_alone,
    a_late_answer_for_a_replaced_token_leaves_the_new_cookie_alone_awaited
);

async fn late_answer_leaves_the_new_cookie_alone(awaited: bool) {
    let layer = layer(awaited);
    let (_, first) = request(&layer, None, |s| s.login("alice")).await;
    let old = token(&first);
    // The user's privileges change: a renewal replaces (and revokes) the id.
    let (_, renewed) = request(&layer, Some(&old), |s| s.renew()).await;
    let new = token(&renewed);
    assert_ne!(old, new);
    // A request sent with the old cookie before the renewal's answer
    // arrived, answered after it: no session for it, and no Set-Cookie
    // that would remove the client's new cookie.
    let (subject, late) = request(&layer, Some(&old), |_| {}).await;
    assert_eq!(subject, None, "the replaced token opens no session");
    assert!(
        late.set_cookies.is_empty(),
        "a removal here would log the user out: {:?}",
        late.set_cookies
    );
    let (subject, _) = request(&layer, Some(&new), |_| {}).await;
    assert_eq!(subject.as_deref(), Some("alice"));
}

both_stores!(
    late_answer_never_overwrites_the_new_cookie,
    a_late_answer_for_a_replaced_token_never_overwrites_the_new_cookie,
    a_late_answer_for_a_replaced_token_never_overwrites_the_new_cookie_awaited
);

async fn late_answer_never_overwrites_the_new_cookie(awaited: bool) {
    let layer = layer(awaited);
    let (_, first) = request(&layer, None, |s| s.login("alice")).await;
    let old = token(&first);
    let (_, renewed) = request(&layer, Some(&old), |s| s.renew()).await;
    assert_ne!(token(&renewed), old);
    // The late request's handler writes (a flash, a counter): its change is
    // not kept, since a new cookie here would replace the client's new one.
    let (subject, late) = request(&layer, Some(&old), |s| {
        s.insert("n", 1).unwrap();
    })
    .await;
    assert_eq!(subject, None);
    assert!(late.set_cookies.is_empty(), "{:?}", late.set_cookies);
    // A login on it is a login: it sets a new session.
    let (_, again) = request(&layer, Some(&old), |s| s.login("bob")).await;
    assert_eq!(again.set_cookies.len(), 1, "{:?}", again.set_cookies);
}

both_stores!(
    revoked_long_ago_is_removed,
    a_revoked_token_sealed_long_ago_is_removed,
    a_revoked_token_sealed_long_ago_is_removed_awaited
);

async fn revoked_long_ago_is_removed(awaited: bool) {
    let clock = Arc::new(jwe_session::ManualClock::at_unix(1_900_000_000));
    let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap());
    // The store on the same clock: on the system clock it would drop the
    // revocation as lapsed once the real date passes the manual one.
    let store = store(MemoryStore::new().with_clock(clock.clone()), awaited);
    let layer = SessionLayer::builder(keyring, store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let (_, first) = request(&layer, None, |s| s.login("alice")).await;
    let old = token(&first);
    let (_, _) = request(&layer, Some(&old), |s| s.destroy()).await;
    // Minutes later the old cookie is not one a login just replaced: it is
    // removed like any dead token, and the handler's session is its own.
    clock.advance(std::time::Duration::from_secs(121));
    let (subject, late) = request(&layer, Some(&old), |s| {
        s.insert("cart", 1).unwrap();
    })
    .await;
    assert_eq!(subject, None);
    assert_eq!(late.set_cookies.len(), 1, "{:?}", late.set_cookies);
    assert!(
        !late.set_cookies[0].contains("Max-Age=0"),
        "a new anonymous session"
    );
}

both_stores!(
    tampered_are_removed,
    tampered_and_expired_tokens_are_still_removed,
    tampered_and_expired_tokens_are_still_removed_awaited
);

async fn tampered_are_removed(awaited: bool) {
    let layer = layer(awaited);
    let (_, head) = request(&layer, Some("not.a.token.at.all"), |_| {}).await;
    assert!(
        head.set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-session=;")),
        "{:?}",
        head.set_cookies
    );
}

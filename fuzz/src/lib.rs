//! What the fuzz targets share: the fixed test keys and the tokens sealed
//! under them (both written by `examples/gen_corpus.rs`, see
//! docs/fuzzing.md), and keyrings built from them.
//!
//! The keys in `data/keys.json` are test keys for fuzzing only, committed so
//! that the committed tokens open. Never use them for anything else.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwe_session::{Key, Keyring, SealOptions};
use serde_json::Value;

/// Every fixed test key, one per supported algorithm, as a JWK Set.
pub const KEYS_JSON: &str = include_str!("../data/keys.json");

/// The tokens sealed under those keys: `kid<TAB>base64url(plaintext)<TAB>token`
/// per line.
pub const TOKENS_TSV: &str = include_str!("../data/tokens.tsv");

/// The kids of the fixed keys, in the order of `keys.json`: one per
/// supported algorithm (`dir` once per content encryption).
pub const KIDS: [&str; 11] = [
    "dir-A128GCM",
    "dir-A192GCM",
    "dir-A256GCM",
    "A128KW",
    "A192KW",
    "A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "RSA-OAEP",
    "RSA-OAEP-256",
];

/// The seal options the generator uses besides the defaults.
pub fn typ_cty_options() -> SealOptions {
    SealOptions::new().with_typ("session+jwe").with_cty("json")
}

/// A token the generator sealed, and what it holds.
#[derive(Debug, Clone)]
pub struct KnownToken {
    /// The kid of the key that sealed it.
    pub kid: &'static str,
    /// What it was sealed over.
    pub plaintext: Vec<u8>,
    /// The compact JWE.
    pub token: &'static str,
}

/// The committed tokens, by token text.
pub fn known_tokens() -> HashMap<&'static str, KnownToken> {
    let mut out = HashMap::new();
    for line in TOKENS_TSV.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.split('\t');
        let (Some(kid), Some(plaintext), Some(token), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            panic!("data/tokens.tsv: bad line {line:?}");
        };
        let plaintext = URL_SAFE_NO_PAD
            .decode(plaintext)
            .unwrap_or_else(|e| panic!("data/tokens.tsv: bad plaintext in {line:?}: {e}"));
        out.insert(
            token,
            KnownToken {
                kid,
                plaintext,
                token,
            },
        );
    }
    assert!(!out.is_empty(), "data/tokens.tsv is empty");
    out
}

/// The fixed keys' JWK objects, in file order.
fn jwks() -> Vec<Value> {
    let set: Value = serde_json::from_str(KEYS_JSON).expect("data/keys.json is JSON");
    set["keys"]
        .as_array()
        .expect("data/keys.json has a keys array")
        .clone()
}

/// The fixed key `kid`.
pub fn key(kid: &str) -> Key {
    let jwk = jwks()
        .into_iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid:?} in data/keys.json"));
    Key::from_jwk(&jwk.to_string()).expect("data/keys.json holds valid keys")
}

/// A keyring holding the fixed keys `kids` (all when empty) with `primary`
/// as its primary (the others retired), its header cache filled the way a
/// server's is: by sealing once with the default options and once with
/// [`typ_cty_options`].
pub fn keyring(primary: &str, kids: &[&str]) -> Keyring {
    let mut keys: Vec<Value> = jwks()
        .into_iter()
        .filter(|k| kids.is_empty() || kids.iter().any(|kid| k["kid"] == *kid))
        .collect();
    let at = keys
        .iter()
        .position(|k| k["kid"] == primary)
        .unwrap_or_else(|| panic!("no key {primary:?}"));
    let first = keys.remove(at);
    keys.insert(0, first);
    let set = serde_json::json!({ "keys": keys }).to_string();
    let keyring = Keyring::from_jwk_set(&set).expect("data/keys.json holds valid keys");
    keyring.seal(b"{}").expect("seal");
    keyring.seal_with(b"{}", &typ_cty_options()).expect("seal");
    keyring
}

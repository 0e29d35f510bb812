//! The tests and benchmarks build the crate as applications do: no
//! dev-dependency may switch on a feature of a normal dependency that
//! changes what the crate measures. Cargo unifies the features of a
//! workspace's dev-dependencies with the crate's own, so one such
//! dev-dependency changes every test and benchmark build (josekit did:
//! it lives in `compat/`, its own workspace, since).

use serde_json::{Map, Value};

/// serde_json's `preserve_order` makes every `Map` (and so every
/// `SessionMap`) an `IndexMap` instead of a `BTreeMap`: another memory
/// layout and other speeds than an application gets. A `BTreeMap`
/// iterates its keys sorted, an `IndexMap` in insertion order.
#[test]
fn dev_builds_do_not_turn_on_serde_json_preserve_order() {
    let mut map = Map::new();
    map.insert("b".to_owned(), Value::Null);
    map.insert("a".to_owned(), Value::Null);
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["a", "b"],
        "serde_json's preserve_order is on in this build: find the dependency \
         that turns it on with `cargo tree -e features -i serde_json --all-features`"
    );
}

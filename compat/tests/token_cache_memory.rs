//! The token cache's memory test of the main crate (`tests/token_cache_memory.rs`),
//! run here too, where serde_json's `preserve_order` is on (through
//! josekit): a `SessionMap` is then an `IndexMap`, which the cache's bound
//! covers as well.

#[path = "../../tests/token_cache_memory.rs"]
mod token_cache_memory;

#[test]
fn this_build_has_preserve_order() {
    let mut map = serde_json::Map::new();
    map.insert("b".to_owned(), serde_json::Value::Null);
    map.insert("a".to_owned(), serde_json::Value::Null);
    assert_eq!(map.keys().next().map(String::as_str), Some("b"));
}

//! Tokens this process has already opened and checked.
//!
//! A browser sends the same session cookie on every request until the
//! server issues a new one. Opening it again costs a key unwrap, AES-GCM and
//! a JSON parse each time, with the same result. The cache remembers, per
//! token, what opening it established: the claims, the data as JSON text,
//! and the key that opened it.
//!
//! What the cache never decides:
//!
//! - **Time.** Both deadlines are checked on every request, against the
//!   current time.
//! - **Revocation.** The revocation store is asked on every request.
//! - **Keys.** A hit counts only while the keyring still holds the very key
//!   that opened the token, under the same `kid`; its current state is read
//!   from the keyring, so a token under a key retired since is re-issued. A
//!   removed key, or other material under its `kid`, makes every token it
//!   opened a miss at once.
//!
//! A hit needs the whole token, byte for byte (compared without an early
//! exit), to equal one that was opened; buckets are chosen by a randomly
//! keyed hash of the token's authentication tag, so a client can neither aim
//! at another client's entry nor make its own hit without holding the
//! token. Only tokens whose whole load succeeded are kept, and a kept token
//! that fails a later check is dropped.
//!
//! The cache is bounded in bytes, by an estimate of what each entry holds.

use std::any::{Any, TypeId};
use std::collections::hash_map::RandomState;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, Weak};

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{Equivalent, Weighter};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::key::Key;
use crate::session::SessionMap;

/// How a [`SessionManager`](crate::SessionManager)'s token cache is doing
/// ([`SessionManager::token_cache_stats`](crate::SessionManager::token_cache_stats)),
/// for metrics and for sizing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenCacheStats {
    /// Tokens cached now.
    pub entries: usize,
    /// What they hold, in bytes, by the cache's estimate.
    pub bytes: u64,
    /// The configured capacity in bytes (0: the cache is off).
    pub capacity: usize,
    /// Loads that found their token in the cache, since the manager was
    /// made (one whose key has left the keyring counts here too, and is
    /// then opened again and refused).
    pub hits: u64,
    /// Loads that did not find their token in the cache (counted while
    /// the cache is on).
    pub misses: u64,
}

/// What opening a token established, kept for its next request.
pub(crate) struct Verified {
    /// The `kid` of the key that opened the token.
    pub(crate) kid: String,
    /// That very key: the entry is valid only while the keyring holds it.
    /// A weak reference, so a removed key's material is still dropped (and
    /// wiped) at once.
    pub(crate) key: Weak<Key>,
    /// The payload format version.
    pub(crate) version: u32,
    pub(crate) sid: String,
    pub(crate) sub: Option<String>,
    /// The subject's generations the token carries (format 2).
    pub(crate) sgen: Option<u64>,
    pub(crate) dgen: Option<u64>,
    /// Flash messages the token carries.
    pub(crate) flashes: Vec<crate::session::Flash>,
    pub(crate) created_ms: u64,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) abs_exp: u64,
    /// The application's data as JSON text, wiped when the entry goes.
    pub(crate) data: Zeroizing<String>,
    /// The data decoded as a [`SessionMap`], once it has been asked for
    /// one: a clone shares the map, and a map decodes the same way every
    /// time and holds no shared state, so handing out clones answers
    /// exactly what decoding again would. Other types are decoded from the
    /// text on every load (their decoding may not be repeatable, or they
    /// may share state between clones).
    pub(crate) map: OnceLock<SessionMap>,
}

impl Verified {
    /// The data as a `T`, decoded from the text; for a [`SessionMap`], a
    /// clone of the map decoded once. `None` when the data is not a `T`.
    pub(crate) fn data_as<T: DeserializeOwned + 'static>(&self) -> Option<T> {
        if TypeId::of::<T>() != TypeId::of::<SessionMap>() {
            return serde_json::from_str(&self.data).ok();
        }
        let map = match self.map.get() {
            Some(map) => map.clone(),
            None => {
                let map: SessionMap = serde_json::from_str(&self.data).ok()?;
                let _ = self.map.set(map.clone());
                map
            }
        };
        // `T` is `SessionMap`: move the map out as a `T`.
        let mut slot = Some(map);
        (&mut slot as &mut dyn Any)
            .downcast_mut::<Option<T>>()
            .and_then(Option::take)
    }

    /// What the entry holds, in bytes, estimated: its token, its data text
    /// and decoded map (about three times the text), and a fixed part for
    /// the claims and the cache's own bookkeeping. Checked against a
    /// measurement (`cargo bench --bench allocs`): a typical session's
    /// entry is estimated at about 2.0 KiB and holds about 2.1 KiB. An
    /// entry loaded as another type than a `SessionMap` holds no decoded
    /// map and is overcharged; the estimate errs on the large side.
    fn weight(&self, token: &str) -> u64 {
        (token.len() + 4 * self.data.len() + self.sid.len() + self.kid.len() + 1024) as u64
    }
}

/// Weighs entries by [`Verified::weight`].
#[derive(Clone, Copy)]
struct ByBytes;

impl Weighter<TokenKey, Arc<Verified>> for ByBytes {
    fn weight(&self, key: &TokenKey, value: &Arc<Verified>) -> u64 {
        value.weight(&key.0)
    }
}

/// A token as the cache keeps it (wiped when the entry goes).
struct TokenKey(Zeroizing<String>);

/// A token as a request presents it.
struct TokenRef<'a>(&'a str);

/// The bytes that pick a bucket: the last segment of a compact JWE, its
/// authentication tag, which differs for every token sealed.
fn hash_token<H: Hasher>(token: &str, state: &mut H) {
    let tag = token.rsplit_once('.').map_or(token, |(_, tag)| tag);
    state.write(tag.as_bytes());
}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(&self.0, state);
    }
}

impl Hash for TokenRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0, state);
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        TokenRef(&other.0).equivalent(self)
    }
}

impl Eq for TokenKey {}

impl Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        same_bytes(self.0.as_bytes(), key.0.as_bytes())
    }
}

/// Whether `a` and `b` are equal, in time that depends on their length only:
/// every word is compared, with no early exit at the first difference
/// (`subtle`'s byte-wise comparison costs a microsecond for a typical
/// token; this about twenty nanoseconds).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    let mut diff = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        // Opaque to the optimiser at every word, so no early exit appears.
        diff = std::hint::black_box(diff | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y)));
    }
    for (x, y) in a_tail.iter().zip(b_tail) {
        diff = std::hint::black_box(diff | u64::from(x ^ y));
    }
    diff == 0
}

type Inner = Cache<TokenKey, Arc<Verified>, ByBytes, RandomState>;

/// A sharded cache of opened tokens, bounded in bytes (none when the
/// capacity is 0).
pub(crate) struct TokenCache {
    inner: Option<Inner>,
    capacity: usize,
}

impl TokenCache {
    /// A cache holding about `capacity` bytes; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> TokenCache {
        let inner = (capacity > 0).then(|| {
            Cache::with(
                (capacity / 2048).max(1),
                capacity as u64,
                ByBytes,
                RandomState::new(),
                DefaultLifecycle::default(),
            )
        });
        TokenCache { inner, capacity }
    }

    /// The figures for [`TokenCacheStats`].
    pub(crate) fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            entries: self.len(),
            bytes: self.inner.as_ref().map_or(0, Inner::weight),
            capacity: self.capacity,
            // Counted per shard by the cache itself, so that counting adds
            // no shared write to every request.
            hits: self.inner.as_ref().map_or(0, Inner::hits),
            misses: self.inner.as_ref().map_or(0, Inner::misses),
        }
    }

    /// What opening `token` established, if it was opened before and is
    /// still cached.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Verified>> {
        self.inner.as_ref()?.get(&TokenRef(token))
    }

    /// Remembers what opening `token` established.
    pub(crate) fn insert(&self, token: &str, verified: Arc<Verified>) {
        if let Some(inner) = &self.inner {
            inner.insert(TokenKey(Zeroizing::new(token.to_owned())), verified);
        }
    }

    /// Forgets `token`.
    pub(crate) fn remove(&self, token: &str) {
        if let Some(inner) = &self.inner {
            inner.remove(&TokenRef(token));
        }
    }

    /// How many tokens are cached.
    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, Inner::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(sid: &str) -> Arc<Verified> {
        Arc::new(Verified {
            kid: "k1".to_owned(),
            key: Weak::new(),
            version: 2,
            sid: sid.to_owned(),
            sub: None,
            sgen: None,
            dgen: None,
            flashes: Vec::new(),
            created_ms: 0,
            iat: 0,
            exp: 0,
            abs_exp: 0,
            data: Zeroizing::new("{}".to_owned()),
            map: OnceLock::new(),
        })
    }

    #[test]
    fn a_hit_needs_the_whole_token() {
        let cache = TokenCache::new(1 << 20);
        cache.insert("h.k.iv.ct.TAG", verified("a"));
        assert_eq!(
            cache.get("h.k.iv.ct.TAG").map(|v| v.sid.clone()),
            Some("a".into())
        );
        // Same tag, any other byte different: a miss.
        assert!(cache.get("h.k.iv.cT.TAG").is_none());
        assert!(cache.get("H.k.iv.ct.TAG").is_none());
        assert!(cache.get("h.k.iv.ct.TAG.").is_none());
        assert!(cache.get("x.h.k.iv.ct.TAG").is_none());
        assert!(cache.get("TAG").is_none());
        assert!(cache.get("").is_none());
        cache.remove("h.k.iv.ct.TAG");
        assert!(cache.get("h.k.iv.ct.TAG").is_none());
    }

    #[test]
    fn two_tokens_with_one_tag_are_two_entries() {
        let cache = TokenCache::new(1 << 20);
        cache.insert("a.b.c.d.T", verified("1"));
        cache.insert("e.f.g.h.T", verified("2"));
        assert_eq!(
            cache.get("a.b.c.d.T").map(|v| v.sid.clone()),
            Some("1".into())
        );
        assert_eq!(
            cache.get("e.f.g.h.T").map(|v| v.sid.clone()),
            Some("2".into())
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn same_bytes_compares_every_byte() {
        let token = b"eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2R0NNIn0.abc.def.ghi.jkl";
        assert!(same_bytes(token, token));
        for i in 0..token.len() {
            let mut other = token.to_vec();
            other[i] ^= 1;
            assert!(!same_bytes(token, &other), "byte {i}");
        }
        assert!(!same_bytes(token, &token[..token.len() - 1]));
        assert!(same_bytes(b"", b""));
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = TokenCache::new(0);
        cache.insert("a.b.c.d.e", verified("1"));
        assert!(cache.get("a.b.c.d.e").is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = TokenCache::new(64 * 1024);
        for i in 0..10_000 {
            cache.insert(&format!("h.k.iv.ct.{i}"), verified("x"));
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 64 * 1024, "{stats:?}");
        // About 1 KiB an entry here: a few dozen fit.
        assert!((20..=64).contains(&stats.entries), "{stats:?}");
    }
}

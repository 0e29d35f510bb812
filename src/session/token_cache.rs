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
//! exit), to equal one that was opened; buckets are chosen by a hash
//! seeded at random from the OS (foldhash, [`crate::hashing`]) of the
//! token's last 16 characters, inside its authentication tag, so a client
//! can neither aim at another client's entry nor make its own hit without
//! holding the token. Only tokens whose whole load succeeded are kept, and a kept token
//! that fails a later check is dropped.
//!
//! The cache is bounded in bytes: each entry is charged a bound on what it
//! holds, its decoded [`SessionMap`] included (computed from the data's
//! JSON text when the entry is inserted, since the map is decoded later, on
//! the first load that asks for one).

use std::any::{Any, TypeId};
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{Equivalent, Weighter};
use serde::de::DeserializeOwned;

use super::flash::Flash;
use super::map::SessionMap;
use crate::key::Key;
use crate::wipe::Wiped;

/// How a [`SessionManager`](super::SessionManager)'s token cache is doing
/// ([`SessionManager::token_cache_stats`](super::SessionManager::token_cache_stats)),
/// for metrics and for sizing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenCacheStats {
    /// Tokens cached now.
    pub entries: usize,
    /// What they hold, in bytes, by the cache's bound on each entry
    /// (memory allocated for it, with the allocator's rounding; an entry
    /// never loaded as a `SessionMap` is charged for one all the same).
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
    /// The token this was opened from: the cache's key for it, and the
    /// text a request whose cookie matched it shares instead of a copy.
    /// Always there in the cache; not made for a load that keeps nothing
    /// (the cache off) unless the caller holds it already.
    pub(crate) token: Option<TokenText>,
    /// The `kid` of the key that opened the token.
    pub(crate) kid: Arc<str>,
    /// That very key: the entry is valid only while the keyring holds it.
    /// A weak reference, so a removed key's material is still dropped (and
    /// wiped) at once.
    pub(crate) key: Weak<Key>,
    /// The payload format version.
    pub(crate) version: u32,
    pub(crate) sid: Arc<str>,
    pub(crate) sub: Option<Arc<str>>,
    /// The subject's generations the token carries (format 2).
    pub(crate) sgen: Option<u64>,
    pub(crate) dgen: Option<u64>,
    /// Flash messages the token carries.
    pub(crate) flashes: Vec<Flash>,
    /// The device binding the token carries.
    pub(crate) binding: Option<Arc<super::Binding>>,
    pub(crate) created_ms: u64,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) abs_exp: u64,
    /// The application's data as JSON text, wiped when the entry goes.
    pub(crate) data: Wiped<String>,
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

    /// What the entry holds at most, in bytes, as allocated with glibc's
    /// rounding: its token; its claims, flash messages and the `Verified`
    /// itself; its data
    /// as text and as a decoded [`SessionMap`] (bounded from the text by
    /// [`decoded::session_map_bytes`], whether or not the map is ever
    /// decoded: it may be, by any later load); and the cache's own
    /// bookkeeping. Checked against a counting allocator in
    /// `tests/token_cache_memory.rs`, for typical sessions and for shapes
    /// made to be dear to hold decoded.
    fn weight(&self) -> u64 {
        use decoded::alloc;
        let token = self.token.as_ref().map_or(0, |token| token.len());
        let texts = [token, self.data.len()];
        // The token's shared box: two counts and the `String`.
        let token_box = alloc(2 * size_of::<usize>() + size_of::<Wiped<String>>());
        // An `Arc<str>` allocates its two counts with its text.
        let shared = |text: &str| alloc(2 * size_of::<usize>() + text.len());
        let shared = shared(&self.kid) + shared(&self.sid) + self.sub.as_deref().map_or(0, shared);
        let binding = self.binding.as_ref().map_or(0, |b| {
            alloc(2 * size_of::<usize>() + size_of::<super::Binding>())
                + alloc(b.id.len())
                + alloc(b.key.text_len())
                + 3 * alloc(0)
        });
        let flashes = decoded::vec_bytes(self.flashes.len(), size_of::<Flash>())
            + self
                .flashes
                .iter()
                .map(|f| alloc(f.text.len()))
                .sum::<u64>();
        texts.into_iter().map(alloc).sum::<u64>()
            + token_box
            + shared
            + flashes
            + binding
            + alloc(2 * size_of::<usize>() + size_of::<Verified>())
            + BOOKKEEPING
            + decoded::session_map_bytes(&self.data)
    }
}

/// What the cache itself keeps per entry (its slot, its hash table's and
/// its ghost queue's share, with their growth), measured.
const BOOKKEEPING: u64 = 192;

/// Weighs entries by [`Verified::weight`].
#[derive(Clone, Copy)]
struct ByBytes;

impl Weighter<TokenKey, Arc<Verified>> for ByBytes {
    fn weight(&self, key: &TokenKey, _value: &Arc<Verified>) -> u64 {
        key.weight
    }
}

/// A token's text, shared by the request that carried it and the cache
/// entry opened from it; wiped when the last of them lets it go.
pub(crate) type TokenText = Arc<Wiped<String>>;

/// A token as the cache keeps it (wiped when the entry goes, unless a
/// request still holds it), with its entry's weight: computed once, on
/// insertion, since the cache asks for it again whenever it moves or evicts
/// the entry.
struct TokenKey {
    token: TokenText,
    weight: u64,
}

/// A token as a request presents it: the cookie's bytes, not yet checked
/// to be text (one that matches a kept token is).
struct TokenRef<'a>(&'a [u8]);

/// The bytes that pick a bucket: the last 16 characters of a compact JWE,
/// within its authentication tag (22 characters), which differs for every
/// token sealed: 92 bits that no one but the sealer picks.
fn hash_token<H: Hasher>(bytes: &[u8], state: &mut H) {
    state.write(&bytes[bytes.len().saturating_sub(16)..]);
}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.token.as_bytes(), state);
    }
}

impl Hash for TokenRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0, state);
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        TokenRef(other.token.as_bytes()).equivalent(self)
    }
}

impl Eq for TokenKey {}

impl Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        same_bytes(self.0, key.token.as_bytes())
    }
}

/// Whether `a` and `b` are equal, in time that depends on their length only:
/// every word is compared, with no early exit at the first difference
/// (`subtle`'s byte-wise comparison costs a microsecond for a typical
/// token; this a few nanoseconds).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_blocks, a_rest) = a.as_chunks::<128>();
    let (b_blocks, b_rest) = b.as_chunks::<128>();
    let mut diff = 0u64;
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        // Sixteen words at a time, opaque to the optimiser at every block,
        // so no early exit appears.
        diff = std::hint::black_box(diff | differing_bits(x, y));
    }
    // The last 127 bytes at most: whole words, then bytes, opaque once.
    let (a_words, a_tail) = a_rest.as_chunks::<8>();
    let (b_words, b_tail) = b_rest.as_chunks::<8>();
    let rest = a_tail
        .iter()
        .zip(b_tail)
        .fold(differing_words(a_words, b_words), |acc, (x, y)| {
            acc | u64::from(x ^ y)
        });
    std::hint::black_box(diff | rest) == 0
}

/// The bits that differ anywhere in two blocks, folded into one word.
fn differing_bits<const N: usize>(x: &[u8; N], y: &[u8; N]) -> u64 {
    differing_words(x.as_chunks::<8>().0, y.as_chunks::<8>().0)
}

fn differing_words(x: &[[u8; 8]], y: &[[u8; 8]]) -> u64 {
    x.iter().zip(y).fold(0, |acc, (x, y)| {
        acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    })
}

/// Buckets are picked by foldhash seeded from the OS per cache
/// ([`crate::hashing`]): a presented token's tail is the client's choice,
/// but only tokens this server sealed are inserted, and their tags cannot
/// be chosen.
type Inner = Cache<TokenKey, Arc<Verified>, ByBytes, foldhash::quality::SeedableRandomState>;

/// A sharded cache of opened tokens, bounded in bytes (none when the
/// capacity is 0).
pub(crate) struct TokenCache {
    inner: Option<Inner>,
    capacity: usize,
    forgotten: Forgotten,
}

/// How many tokens were forgotten ([`TokenCache::forget`]), in 64 slots
/// picked by the token's last bytes (its authentication tag): a load that
/// overlapped a forget of its token sees its slot's count move.
struct Forgotten([AtomicU64; 64]);

impl Default for Forgotten {
    fn default() -> Self {
        Forgotten(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Forgotten {
    fn slot(&self, token: &str) -> &AtomicU64 {
        let tail = &token.as_bytes()[token.len().saturating_sub(8)..];
        let index = tail.iter().fold(0usize, |acc, byte| {
            acc.wrapping_mul(31).wrapping_add(usize::from(*byte))
        });
        &self.0[index % self.0.len()]
    }
}

/// What a load read of its token's forget count before it began
/// ([`TokenCache::ticket`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl TokenCache {
    /// A cache holding about `capacity` bytes; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> TokenCache {
        let inner = (capacity > 0).then(|| {
            Cache::with(
                (capacity / 2048).max(1),
                capacity as u64,
                ByBytes,
                crate::hashing::random_state(),
                DefaultLifecycle::default(),
            )
        });
        TokenCache {
            inner,
            capacity,
            forgotten: Forgotten::default(),
        }
    }

    /// Read before a load opens and checks `token`, for
    /// [`insert_unless_forgotten`](TokenCache::insert_unless_forgotten).
    pub(crate) fn ticket(&self, token: &str) -> Ticket {
        Ticket(self.forgotten.slot(token).load(Ordering::SeqCst))
    }

    /// Keeps `verified` for `token`, unless the token was forgotten since
    /// `ticket` was read: a logout (or re-issue) that forgot it while the
    /// load was being checked must not find it back in the cache. Either
    /// its count moved before the look after the insert, or its removal
    /// comes after the insert.
    pub(crate) fn insert_unless_forgotten(&self, verified: Arc<Verified>, ticket: Ticket) {
        let Some(token) = verified.token.clone() else {
            return;
        };
        self.insert(verified);
        if self.ticket(&token) != ticket {
            self.remove(&token);
        }
    }

    /// Drops `token` for good: the client will not send it again. Counted
    /// first, so a load of it already under way does not keep it.
    pub(crate) fn forget(&self, token: &str) {
        self.forgotten.slot(token).fetch_add(1, Ordering::SeqCst);
        self.remove(token);
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
    pub(crate) fn get(&self, token: impl AsRef<[u8]>) -> Option<Arc<Verified>> {
        self.inner.as_ref()?.get(&TokenRef(token.as_ref()))
    }

    /// Remembers what opening `token` established.
    /// A verified token without its text is not kept (the manager makes
    /// none when the cache is off).
    pub(crate) fn insert(&self, verified: Arc<Verified>) {
        if let (Some(inner), Some(token)) = (&self.inner, &verified.token) {
            let key = TokenKey {
                token: Arc::clone(token),
                weight: verified.weight(),
            };
            inner.insert(key, verified);
        }
    }

    /// Forgets `token`.
    pub(crate) fn remove(&self, token: &str) {
        if let Some(inner) = &self.inner {
            inner.remove(&TokenRef(token.as_bytes()));
        }
    }

    /// Whether the cache keeps anything (a capacity above 0).
    pub(crate) fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// How many tokens are cached.
    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, Inner::len)
    }
}

/// Bounds on what a [`SessionMap`] decoded from JSON text holds, computed
/// from the text by one pass that counts its containers, their members and
/// its strings, without decoding it.
///
/// Every value decodes into a `serde_json::Value` (32 bytes) held by its
/// container: an array holds its values in a `Vec` grown by doubling from
/// 4, so up to twice its length; an object in a `BTreeMap` whose nodes hold
/// 11 members each and are at least 5 full but for the root, so a
/// one-member object costs a whole 632-byte node (with serde_json's
/// `preserve_order`, an `IndexMap`: a hash table and a vector grown by
/// doubling). Strings (keys included) take their decoded length, never
/// more than their length in the text; numbers, booleans and null take
/// nothing more (with `arbitrary_precision`, a number is its text). So a
/// JSON text of `n` bytes can hold about a hundred times `n` decoded
/// (`[{"":0},{"":0},…]`), or about `n` (one long string): no single ratio
/// to the text's length is right.
///
/// With serde_json's `raw_value` (which jwe-session uses), an object whose
/// first key is serde_json's private raw-value token decodes from the JSON
/// text in the string that follows: that string is bounded as the JSON
/// text it holds.
pub(crate) mod decoded {
    use std::collections::BTreeMap;
    use std::mem::size_of;

    use serde_json::{Map, Number, Value};

    /// What the allocator takes for a request of `size` bytes: glibc's
    /// malloc rounds to 16 bytes with an 8-byte header, 32 at least. Other
    /// allocators' size classes are within a few bytes of that for small
    /// requests, and within a quarter for large ones.
    pub(crate) const fn alloc(size: usize) -> u64 {
        if size == 0 {
            return 0;
        }
        let chunk = (size + 8 + 15) & !15;
        (if chunk < 32 { 32 } else { chunk }) as u64
    }

    const VALUE: usize = size_of::<Value>();
    const KEY: usize = size_of::<String>();
    const WORD: usize = size_of::<usize>();

    /// serde_json's `preserve_order` makes a `Map` an `IndexMap`.
    const PRESERVE_ORDER: bool =
        size_of::<Map<String, Value>>() != size_of::<BTreeMap<String, Value>>();

    /// serde_json's `arbitrary_precision` keeps a number as its text.
    const ARBITRARY_PRECISION: bool = size_of::<Number>() >= size_of::<String>();

    /// A `BTreeMap` node: parent pointer, index and length, 11 keys and 11
    /// values; an internal node has 12 child pointers more.
    const LEAF: usize = (WORD + 4 + 11 * (KEY + VALUE)).next_multiple_of(WORD);
    const INTERNAL: usize = LEAF + 12 * WORD;

    /// serde_json's private key that marks a raw value.
    const RAW_VALUE_TOKEN: &[u8] = b"$serde_json::private::RawValue";

    /// How deep raw values inside raw values are followed. Each level
    /// escapes the quotes of the one inside it again, so a token text
    /// cannot nest more than about 30 levels; deeper is charged as if every
    /// byte were a node.
    const MAX_RAW_DEPTH: u32 = 32;

    /// At most what a `SessionMap` decoded from `json` holds: the shared
    /// map and everything in it.
    pub(crate) fn session_map_bytes(json: &str) -> u64 {
        alloc(2 * WORD + size_of::<Map<String, Value>>()) + tree_bytes(json.as_bytes(), true, 0)
    }

    /// The bytes of a map (object) of `members` members.
    fn map_bytes(members: u64) -> u64 {
        if members == 0 {
            return 0;
        }
        if PRESERVE_ORDER {
            // A hash table of indices (hashbrown: a power of two of buckets,
            // at most 7/8 full, each a word and a control byte, and a group
            // of 16 control bytes more) and the entries (hash, key, value),
            // reserved up to what the table can take.
            let buckets = match members {
                0..4 => 4,
                4..8 => 8,
                _ => (members * 8 / 7).next_power_of_two(),
            };
            let buckets = usize::try_from(buckets).unwrap_or(usize::MAX / 128);
            alloc(buckets * (WORD + 1) + 16) + alloc(buckets * (WORD + KEY + VALUE))
        } else if members <= 11 {
            alloc(LEAF)
        } else {
            // Every node but the root holds at least 5 members.
            (1 + (members - 1) / 5) * alloc(INTERNAL)
        }
    }

    /// The bytes of an array of `len` values.
    fn array_bytes(len: u64) -> u64 {
        vec_bytes(usize::try_from(len).unwrap_or(usize::MAX), VALUE)
    }

    /// The bytes of a `Vec` of `len` elements of `size` bytes decoded by
    /// serde (pushed one by one): grown by doubling from a capacity of 4.
    pub(crate) fn vec_bytes(len: usize, size: usize) -> u64 {
        if len == 0 {
            return 0;
        }
        let capacity = len.max(4).checked_next_power_of_two().unwrap_or(usize::MAX);
        alloc(capacity.saturating_mul(size))
    }

    /// Where the string starting at `from` (just past its opening quote)
    /// ends: the index of its closing quote, or the end of the text.
    fn string_end(json: &[u8], mut from: usize) -> usize {
        while let Some(at) = json
            .get(from..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        {
            let at = from + at;
            if json[at] == b'"' {
                return at;
            }
            from = at + 2; // an escape: skip the escaped character
        }
        json.len()
    }

    /// Whether the quoted string `quoted` (quotes included) decodes to the
    /// raw-value token.
    fn is_raw_value_token(quoted: &[u8]) -> bool {
        let text = &quoted[1..quoted.len() - 1];
        if !text.contains(&b'\\') {
            return text == RAW_VALUE_TOKEN;
        }
        // Escapes only shrink a string.
        text.len() >= RAW_VALUE_TOKEN.len()
            && serde_json::from_slice::<String>(quoted)
                .is_ok_and(|key| key.as_bytes() == RAW_VALUE_TOKEN)
    }

    /// The bytes of the values the JSON text in the quoted string `quoted`
    /// decodes into.
    fn raw_value_bytes(quoted: &[u8], depth: u32) -> u64 {
        let text = &quoted[1..quoted.len() - 1];
        if depth >= MAX_RAW_DEPTH {
            return (text.len() as u64).saturating_mul(alloc(INTERNAL));
        }
        if !text.contains(&b'\\') {
            return tree_bytes(text, false, depth + 1);
        }
        match serde_json::from_slice::<String>(quoted) {
            Ok(inner) => tree_bytes(inner.as_bytes(), false, depth + 1),
            // Not a string serde_json decodes: neither is the session.
            Err(_) => 0,
        }
    }

    /// An array or object not closed yet.
    struct Open {
        array: bool,
        /// Its values so far (for an object, its keys).
        members: u64,
        /// An object whose first key is the raw-value token.
        raw: bool,
    }

    /// At most what the values of the JSON text `json` hold beyond their
    /// own `Value`s (which their containers hold): containers, strings,
    /// numbers kept as text. `top_map` when the outermost object is decoded
    /// as a map (its keys are never the raw-value token). The text is
    /// expected to be JSON; any other text gets some bound, never a panic.
    fn tree_bytes(json: &[u8], top_map: bool, depth: u32) -> u64 {
        let mut open: Vec<Open> = Vec::new();
        let mut total = 0u64;
        // The next string is a member's key.
        let mut key_next = false;
        let mut i = 0;
        while let Some(&byte) = json.get(i) {
            match byte {
                b'"' => {
                    let end = string_end(json, i + 1);
                    let quoted = &json[i..json.len().min(end + 1)];
                    let len = end - (i + 1);
                    let in_raw = open.last().is_some_and(|o| o.raw);
                    if key_next {
                        key_next = false;
                        let classified = !(top_map && open.len() == 1);
                        if let Some(object) = open.last_mut() {
                            if object.members == 0
                                && classified
                                && end < json.len()
                                && is_raw_value_token(quoted)
                            {
                                object.raw = true;
                            }
                            object.members += 1;
                        }
                        total += alloc(len);
                    } else {
                        count_value(&mut open);
                        total += if in_raw && end < json.len() {
                            raw_value_bytes(quoted, depth)
                        } else {
                            alloc(len)
                        };
                    }
                    i = end + 1;
                }
                b'{' | b'[' => {
                    count_value(&mut open);
                    open.push(Open {
                        array: byte == b'[',
                        members: 0,
                        raw: false,
                    });
                    key_next = byte == b'{';
                    i += 1;
                }
                b'}' | b']' => {
                    if let Some(closed) = open.pop() {
                        total += container_bytes(&closed);
                    }
                    key_next = false;
                    i += 1;
                }
                b',' => {
                    key_next = open.last().is_some_and(|o| !o.array);
                    i += 1;
                }
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    let start = i;
                    while json.get(i).is_some_and(|b| !b",:]}[{\" \t\r\n".contains(b)) {
                        i += 1;
                    }
                    count_value(&mut open);
                    if ARBITRARY_PRECISION && byte != b't' && byte != b'f' && byte != b'n' {
                        total += alloc(i - start);
                    }
                }
                _ => i += 1, // `:` and whitespace
            }
        }
        // Not JSON: what is still open, as if closed.
        total + open.iter().map(container_bytes).sum::<u64>()
    }

    /// Counts a value in the container it is in (an object counts keys).
    fn count_value(open: &mut [Open]) {
        if let Some(array) = open.last_mut().filter(|o| o.array) {
            array.members += 1;
        }
    }

    fn container_bytes(container: &Open) -> u64 {
        match container {
            Open {
                array: true,
                members,
                ..
            } => array_bytes(*members),
            // Decoded from the string that follows its key, charged there.
            Open { raw: true, .. } => 0,
            Open { members, .. } => map_bytes(*members),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(token: &str, sid: &str) -> Arc<Verified> {
        Arc::new(Verified {
            token: Some(Arc::new(Wiped::new(token.to_owned()))),
            kid: Arc::from("k1"),
            key: Weak::new(),
            version: 2,
            sid: Arc::from(sid),
            sub: None,
            sgen: None,
            dgen: None,
            flashes: Vec::new(),
            binding: None,
            created_ms: 0,
            iat: 0,
            exp: 0,
            abs_exp: 0,
            data: Wiped::new("{}".to_owned()),
            map: OnceLock::new(),
        })
    }

    #[test]
    fn a_hit_needs_the_whole_token() {
        let cache = TokenCache::new(1 << 20);
        cache.insert(verified("h.k.iv.ct.TAG", "a"));
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
        cache.insert(verified("a.b.c.d.T", "1"));
        cache.insert(verified("e.f.g.h.T", "2"));
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
        // Across whole blocks, words and the bytes after them.
        for len in [1, 7, 8, 9, 127, 128, 129, 255, 256, 300, 700] {
            let token: Vec<u8> = (0..len).map(|i| b'A' + (i % 26) as u8).collect();
            assert!(same_bytes(&token, &token.clone()), "{len}");
            for i in 0..len {
                for bit in [0x01, 0x80] {
                    let mut other = token.clone();
                    other[i] ^= bit;
                    assert!(!same_bytes(&token, &other), "length {len}, byte {i}");
                }
            }
        }
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(verified("a.b.c.d.e", "1"));
        assert!(cache.get("a.b.c.d.e").is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = TokenCache::new(64 * 1024);
        for i in 0..10_000 {
            cache.insert(verified(&format!("h.k.iv.ct.{i}"), "x"));
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 64 * 1024, "{stats:?}");
        // About 540 bytes an entry here (a short token, empty data, the
        // claims and the cache's bookkeeping): about 120 fit.
        assert!((96..=128).contains(&stats.entries), "{stats:?}");
    }

    mod decoded_bounds {
        use super::super::decoded::{alloc, session_map_bytes};
        use serde_json::{Map, Value};

        /// The shared map itself, empty.
        fn empty() -> u64 {
            alloc(16 + std::mem::size_of::<Map<String, Value>>())
        }

        /// A map's one B-tree node (serde_json without `preserve_order`).
        fn node() -> u64 {
            assert_eq!(
                std::mem::size_of::<Map<String, Value>>(),
                std::mem::size_of::<std::collections::BTreeMap<String, Value>>(),
                "serde_json's preserve_order is off in this crate's builds"
            );
            alloc(632)
        }

        #[test]
        fn counts_containers_members_and_strings() {
            assert_eq!(session_map_bytes("{}"), empty());
            assert_eq!(session_map_bytes(r#"{"a":1}"#), empty() + node() + alloc(1));
            // An array of three: a vector of four values.
            assert_eq!(
                session_map_bytes(r#"{"cart":[1042,77,3051]}"#),
                empty() + node() + alloc(4) + alloc(4 * 32)
            );
            // Five: eight.
            assert_eq!(
                session_map_bytes(r#"{"a":[1,2,3,4,5]}"#),
                empty() + node() + alloc(1) + alloc(8 * 32)
            );
            // Empty containers and strings allocate nothing.
            assert_eq!(
                session_map_bytes(r#"{"a":[[],{},""]}"#),
                empty() + node() + alloc(1) + alloc(4 * 32)
            );
            // Twelve members: more than one node.
            let twelve: String = (0..12).map(|i| format!(r#""{i:02}":0,"#)).collect();
            let twelve = format!("{{{}}}", twelve.trim_end_matches(','));
            assert_eq!(
                session_map_bytes(&twelve),
                empty() + 3 * alloc(632 + 12 * 8) + 12 * alloc(2)
            );
        }

        #[test]
        fn brackets_quotes_and_escapes_inside_strings_are_text() {
            let plain = session_map_bytes(r#"{"a":"xxxxxxxxxxxxxxxxxx"}"#);
            assert_eq!(plain, empty() + node() + alloc(1) + alloc(18));
            assert_eq!(session_map_bytes(r#"{"a":"[[[{{{\"]]:,\\abcd"}"#), plain);
            assert_eq!(
                session_map_bytes(r#"{"[":{"]":"}"}}"#),
                empty() + 2 * node() + 3 * alloc(1)
            );
        }

        #[test]
        fn raw_value_strings_count_as_the_json_they_hold() {
            let objects = format!("[{}{{}}]", r#"{"":0},"#.repeat(99));
            let quoted = serde_json::to_string(&objects).unwrap();
            let as_array = session_map_bytes(&format!(r#"{{"a":{objects}}}"#));
            for token in [
                r#""$serde_json::private::RawValue""#,
                r#""\u0024serde_json::private::RawValue""#,
            ] {
                let raw = format!(r#"{{"a":{{{token}:{quoted}}}}}"#);
                let decoded: Map<String, Value> = serde_json::from_str(&raw).unwrap();
                assert!(decoded["a"].is_array(), "serde_json decodes it: {token}");
                assert!(session_map_bytes(&raw) >= as_array, "{token}");
            }
            // Only as the first key of an object inside the map: not at
            // the top, where the map's keys are plain keys.
            let top = format!(r#"{{"$serde_json::private::RawValue":{quoted}}}"#);
            let decoded: Map<String, Value> = serde_json::from_str(&top).unwrap();
            assert!(decoded["$serde_json::private::RawValue"].is_string());
            assert!(session_map_bytes(&top) < as_array);
        }

        #[test]
        fn any_text_gets_a_bound_without_panicking() {
            let json = r#"{"a":[1,-2.5e3,true,null,{"b":"c\"\\"},["\u00e9"]],"d":{}}"#;
            for end in 0..=json.len() {
                session_map_bytes(&json[..end]);
                session_map_bytes(&json[end..]);
            }
            for text in [
                "",
                "\"",
                "\\",
                "{\"",
                "[[[[",
                "]]]}}",
                "\"\\",
                r#"{"a":"\"#,
                "x",
                ",,::",
            ] {
                session_map_bytes(text);
            }
        }
    }
}

//! The embedded revocation store.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{CheckOutcome, RevocationStore, SubjectState};
use crate::clock::{unix_millis, Clock};
use crate::error::StoreError;

/// The default bound on live entries (subjects and revoked sessions).
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// The default bound on one subject's live session revocations; one more
/// revokes the subject instead.
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) const DEFAULT_MAX_SESSIONS_PER_SUBJECT: usize = 100;

/// Shards: a write locks one, a check reads one.
const SHARDS: usize = 64;

/// Lapsed entries a write drops from its own shard, and from one other
/// shard in turn, at the most: purging is spread over writes, never a
/// sweep of the whole store on a request's path.
const PURGE_STEP: usize = 16;

/// Lapsed entries a write may drop from its own shard when the store is
/// full, before it refuses.
const PURGE_WHEN_FULL: usize = 1024;

/// An in-memory revocation store for one process: sharded, bounded in
/// entries, lapsed entries purged a few at a time.
///
/// * A check reads one shard under a read lock and does a constant amount
///   of work (two hash lookups); it never waits behind a purge of the store.
/// * A write locks one shard of 64, and drops at most 16 lapsed entries of
///   its own shard and 16 of another (each shard keeps its entries in
///   order of expiry), so no request does work that grows with the store.
/// * Only subjects cost entries: one per subject with a revocation, plus
///   one per revoked session, at most 100 per subject by default
///   ([`with_max_sessions_per_subject`](MemoryStore::with_max_sessions_per_subject));
///   one more revokes the subject instead.
/// * When full of *live* entries it refuses a new revocation
///   ([`StoreError::Full`]) rather than forget an old one, which would bring a
///   logged-out session back; each refusal is logged and counted
///   ([`refused_when_full`](MemoryStore::refused_when_full)).
///
/// ```
/// use jwe_session::revocation::MemoryStore;
/// let store = MemoryStore::new().with_max_entries(10_000);
/// assert_eq!(store.len(), 0);
/// assert_eq!(store.refused_when_full(), 0);
/// ```
pub struct MemoryStore {
    shards: Box<[RwLock<Shard>]>,
    /// Picks a subject's shard: foldhash seeded from the OS
    /// ([`crate::hashing`]); the maps within keep std's SipHash.
    hasher: foldhash::quality::SeedableRandomState,
    /// Live and not yet purged entries, over every shard.
    entries: AtomicUsize,
    /// Revocations refused because the store was full.
    refused: AtomicU64,
    /// The next shard a write purges besides its own.
    purge_cursor: AtomicUsize,
    clock: Arc<dyn Clock>,
    max_entries: usize,
    max_sessions_per_subject: usize,
    /// One-time values used ([`RevocationStore::use_nonce`]).
    nonces: Mutex<Nonces>,
    max_nonces: usize,
}

/// The default bound on live one-time values held: each is held about 70
/// seconds and is recorded only after a signature verified, so filling it
/// takes over 14,000 verified proofs a second.
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) const DEFAULT_MAX_NONCES: usize = 1_000_000;

/// One-time values, each with when it lapses, and the order they lapse in.
#[derive(Default)]
struct Nonces {
    until: HashMap<Box<str>, u64>,
    queue: BinaryHeap<Reverse<(u64, Box<str>)>>,
}

impl Nonces {
    /// Drops at most `limit` lapsed values, earliest first.
    fn purge(&mut self, now: u64, limit: usize) {
        for _ in 0..limit {
            match self.queue.peek() {
                Some(Reverse((until, _))) if *until <= now => {}
                _ => return,
            }
            if let Some(Reverse((until, nonce))) = self.queue.pop() {
                // Only the entry this item scheduled, not a later one.
                if self.until.get(&nonce) == Some(&until) {
                    self.until.remove(&nonce);
                }
            }
        }
    }
}

#[derive(Default)]
struct Shard {
    subjects: HashMap<Box<str>, SubjectEntry>,
    /// One item per subject: when its entry lapses, as far as the item
    /// knows; an entry whose lifetime grew since is scheduled again when
    /// its item comes up.
    queue: BinaryHeap<Reverse<(u64, Box<str>)>>,
}

struct SubjectEntry {
    state: SubjectState,
    /// When the entry lapses (Unix ms): no token it could match is alive.
    until: u64,
    /// Revoked session ids, each with when it lapses.
    sessions: HashMap<Box<str>, u64>,
}

impl SubjectEntry {
    fn weight(&self) -> usize {
        1 + self.sessions.len()
    }

    fn is_live(&self, now: u64) -> bool {
        self.until > now
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("max_entries", &self.max_entries)
            .field("max_sessions_per_subject", &self.max_sessions_per_subject)
            .field("refused_when_full", &self.refused_when_full())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store holding at most 1,000,000 live entries, and at most
    /// 100 revoked sessions per subject.
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: crate::hashing::random_state(),
            entries: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            purge_cursor: AtomicUsize::new(0),
            clock: crate::clock::system(),
            max_entries: DEFAULT_MAX_ENTRIES,
            max_sessions_per_subject: DEFAULT_MAX_SESSIONS_PER_SUBJECT,
            nonces: Mutex::new(Nonces::default()),
            max_nonces: DEFAULT_MAX_NONCES,
        }
    }

    /// Sets the bound on live entries (default 1,000,000).
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> MemoryStore {
        self.max_entries = max_entries;
        self
    }

    /// Sets the bound on one subject's live session revocations (default
    /// 100, at least 1). Revoking one more session of that subject revokes
    /// every session of the subject instead, and frees its entries.
    ///
    /// ```
    /// use jwe_session::revocation::MemoryStore;
    /// let store = MemoryStore::new().with_max_sessions_per_subject(20);
    /// # let _ = store;
    /// ```
    #[must_use]
    pub fn with_max_sessions_per_subject(mut self, max: usize) -> MemoryStore {
        self.max_sessions_per_subject = max.max(1);
        self
    }

    /// Sets the bound on live one-time values (default 1,000,000).
    #[must_use]
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn with_max_nonces(mut self, max: usize) -> MemoryStore {
        self.max_nonces = max.max(1);
        self
    }

    /// Reads the time from `clock` (for expiring entries) instead of the
    /// system clock.
    ///
    /// In tests that run the session layer or manager on a [`ManualClock`],
    /// give the store the same clock: on the system clock it keeps a
    /// revocation until a time of the manual clock's (the session's last
    /// possible deadline), so with a manual time in the past it drops
    /// revocations at once, and with one in the future it stops holding
    /// them once the real date gets there.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jwe_session::revocation::MemoryStore;
    /// use jwe_session::{Key, KeyAlgorithm, Keyring, ManualClock, SessionLayer};
    ///
    /// let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    /// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
    /// let layer = SessionLayer::builder(keyring, MemoryStore::new().with_clock(clock.clone()))
    ///     .clock(clock)
    ///     .build()?;
    /// # let _ = layer;
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    ///
    /// [`ManualClock`]: crate::ManualClock
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> MemoryStore {
        self.clock = clock;
        self
    }

    /// The number of entries held (subjects and revoked sessions), live or
    /// not yet purged.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Whether the store holds no entry.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many revocations were refused because the store was full of
    /// live entries, since it was made.
    pub fn refused_when_full(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Drops every entry whose time has passed, shard by shard. Writes
    /// purge a few entries each on their own; call this to reclaim memory
    /// at once (it holds one shard's lock at a time).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn purge_expired(&self) {
        let now = self.now_ms();
        for index in 0..self.shards.len() {
            self.purge(&mut self.write(index), now, usize::MAX);
        }
    }

    fn now_ms(&self) -> u64 {
        unix_millis(self.clock.now())
    }

    /// [`RevocationStore::check`], answered from this process's memory.
    fn check_here(&self, sub: &str, sid: &str) -> CheckOutcome {
        let shard = self.read(self.shard_of(sub));
        // Most subjects have no entry: no clock read for them.
        let Some(entry) = shard.subjects.get(sub) else {
            return CheckOutcome::default();
        };
        let now = self.now_ms();
        if !entry.is_live(now) {
            return CheckOutcome::default();
        }
        let session_revoked = entry.sessions.get(sid).is_some_and(|until| *until > now);
        CheckOutcome::new(session_revoked, entry.state)
    }

    fn shard_of(&self, sub: &str) -> usize {
        // The shard count is a power of two.
        (self.hasher.hash_one(sub) as usize) & (SHARDS - 1)
    }

    fn read(&self, index: usize) -> RwLockReadGuard<'_, Shard> {
        self.shards[index]
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[index]
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops up to `budget` lapsed subjects of `shard`, earliest first.
    fn purge(&self, shard: &mut Shard, now: u64, budget: usize) {
        for _ in 0..budget {
            let Some(Reverse((due, _))) = shard.queue.peek() else {
                return;
            };
            if *due > now {
                return;
            }
            let Some(Reverse((_, sub))) = shard.queue.pop() else {
                return;
            };
            match shard.subjects.get(&sub) {
                Some(entry) if entry.is_live(now) => {
                    // Its lifetime grew since it was scheduled.
                    let until = entry.until;
                    shard.queue.push(Reverse((until, sub)));
                }
                Some(_) => {
                    if let Some(entry) = shard.subjects.remove(&sub) {
                        self.entries.fetch_sub(entry.weight(), Ordering::Relaxed);
                    }
                }
                None => {}
            }
        }
    }

    /// Runs `change` on the subject's entry (made when absent) under its
    /// shard's lock, after dropping lapsed entries; then purges a few
    /// entries of another shard.
    fn update<R>(
        &self,
        sub: &str,
        change: impl FnOnce(&MemoryStore, &mut SubjectEntry, u64) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let now = self.now_ms();
        let index = self.shard_of(sub);
        let result = {
            let mut guard = self.write(index);
            let shard = &mut *guard;
            self.purge(shard, now, PURGE_STEP);
            if !shard.subjects.contains_key(sub) {
                self.make_room(Some(shard), now, 1)?;
                let sub: Box<str> = sub.into();
                shard.subjects.insert(
                    sub.clone(),
                    SubjectEntry {
                        state: SubjectState::default(),
                        until: now,
                        sessions: HashMap::new(),
                    },
                );
                self.entries.fetch_add(1, Ordering::Relaxed);
                shard.queue.push(Reverse((now, sub)));
            }
            let entry = shard
                .subjects
                .get_mut(sub)
                .expect("the entry was just found or made");
            if !entry.is_live(now) {
                // Lapsed, not yet purged: what it held is forgotten, as if
                // it had been purged (its generation must not come back).
                entry.state = SubjectState::default();
            }
            // Revoked sessions that lapsed go first: a subject's list never
            // holds more than its bound, so this is bounded work.
            let before = entry.sessions.len();
            entry.sessions.retain(|_, until| *until > now);
            self.entries
                .fetch_sub(before - entry.sessions.len(), Ordering::Relaxed);
            change(self, entry, now)
        };
        // Spread purging over the other shards, without waiting for one.
        let other = self.purge_cursor.fetch_add(1, Ordering::Relaxed) & (SHARDS - 1);
        if other != index {
            if let Ok(mut shard) = self.shards[other].try_write() {
                self.purge(&mut shard, now, PURGE_STEP);
            }
        }
        result
    }

    /// Makes sure `more` entries fit, purging lapsed entries of `shard`
    /// when the store is full; refuses (logged and counted) when they
    /// still do not.
    fn make_room(&self, own: Option<&mut Shard>, now: u64, more: usize) -> Result<(), StoreError> {
        if self.len() + more <= self.max_entries {
            return Ok(());
        }
        // Lapsed entries may sit in any shard: drop some from the writer's
        // own (locked) shard, then from the others that are not busy (never
        // waiting for one, so two writers cannot block each other), within
        // one budget.
        if let Some(own) = own {
            self.purge(own, now, PURGE_WHEN_FULL);
        }
        for other in self.shards.iter() {
            if self.len() + more <= self.max_entries {
                return Ok(());
            }
            if let Ok(mut other) = other.try_write() {
                self.purge(&mut other, now, PURGE_WHEN_FULL / SHARDS);
            }
        }
        let len = self.len();
        if len + more <= self.max_entries {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            entries = len,
            max_entries = self.max_entries,
            refused_total = self.refused_when_full(),
            "revocation store full of live entries; refusing a new revocation (fail closed)"
        );
        Err(StoreError::Full(len))
    }

    /// Revokes the subject in `entry`: its revoked sessions are covered by
    /// the new generation and are dropped.
    fn revoke_entry(&self, entry: &mut SubjectEntry, now: u64, until: u64) {
        let latest = entry.sessions.values().copied().max();
        entry.until = entry.until.max(until).max(latest.unwrap_or(0));
        self.entries
            .fetch_sub(entry.sessions.len(), Ordering::Relaxed);
        entry.sessions = HashMap::new();
        entry.state = entry.state.revoked(now);
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let until = unix_millis(until);
        if until <= self.now_ms() {
            return Ok(()); // nothing it could match is alive
        }
        self.update(sub, |store, entry, now| {
            entry.until = entry.until.max(until);
            if let Some(kept) = entry.sessions.get_mut(sid) {
                *kept = (*kept).max(until);
                return Ok(());
            }
            if entry.sessions.len() >= store.max_sessions_per_subject {
                tracing::warn!(
                    bound = store.max_sessions_per_subject,
                    "a subject reached its bound of revoked sessions; revoking all of its sessions instead"
                );
                store.revoke_entry(entry, now, until);
                return Ok(());
            }
            // This shard's lapsed entries went first (`update`).
            store.make_room(None, now, 1)?;
            entry.sessions.insert(sid.into(), until);
            store.entries.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        let (at, until) = (unix_millis(now), unix_millis(until));
        self.update(sub, |store, entry, _| {
            store.revoke_entry(entry, at, until);
            Ok(entry.state)
        })
    }

    async fn mark_stale(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        let (at, until) = (unix_millis(now), unix_millis(until));
        self.update(sub, |_, entry, _| {
            entry.until = entry.until.max(until);
            entry.state = entry.state.marked_stale(at);
            Ok(entry.state)
        })
    }

    async fn subject(&self, sub: &str) -> Result<SubjectState, StoreError> {
        let now = self.now_ms();
        let shard = self.read(self.shard_of(sub));
        Ok(shard
            .subjects
            .get(sub)
            .filter(|entry| entry.is_live(now))
            .map(|entry| entry.state)
            .unwrap_or_default())
    }

    async fn check(&self, sub: &str, sid: &str) -> Result<CheckOutcome, StoreError> {
        Ok(self.check_here(sub, sid))
    }

    /// Always answered at once.
    fn check_now(&self, sub: &str, sid: &str) -> Option<Result<CheckOutcome, StoreError>> {
        Some(Ok(self.check_here(sub, sid)))
    }

    /// Held in a set of its own, bounded at 1,000,000 live values: a value
    /// is recorded only after a proof's signature verified, and lapses
    /// about 70 seconds later. Full of live values, it refuses
    /// ([`StoreError::Full`]) rather than forget one.
    async fn use_nonce(&self, nonce: &str, until: SystemTime) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let until = unix_millis(until);
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.purge(now, PURGE_STEP);
        if let Some(&held) = nonces.until.get(nonce) {
            if held > now {
                return Ok(false);
            }
        }
        if until <= now {
            return Ok(true);
        }
        if nonces.until.len() >= self.max_nonces {
            nonces.purge(now, usize::MAX);
            if nonces.until.len() >= self.max_nonces {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    held = nonces.until.len(),
                    "one-time values full of live entries; refused"
                );
                return Err(StoreError::Full(nonces.until.len()));
            }
        }
        let nonce: Box<str> = nonce.into();
        nonces.until.insert(nonce.clone(), until);
        nonces.queue.push(Reverse((until, nonce)));
        Ok(true)
    }
}

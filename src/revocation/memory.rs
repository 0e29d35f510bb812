//! The embedded revocation store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{RevocationStatus, RevocationStore};
use crate::clock::{unix_millis, Clock, SystemClock};
use crate::error::StoreError;

/// The least time between two purges, in milliseconds.
const PURGE_INTERVAL_MS: u64 = 1000;

/// The default bound on live entries.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// An in-memory revocation store for one process: bounded in entries,
/// expired entries purged.
///
/// When full of *live* entries it refuses a new revocation
/// ([`StoreError::Full`]) rather than forget an old one: forgetting would
/// bring a logged-out session back.
///
/// Every operation takes a short synchronous lock and never awaits while
/// holding it; checks, the per-request operation, share a read lock. Expired
/// entries are purged at most once a second (a purge scans every entry), or
/// at once when the store is full.
///
/// ```
/// use jwe_session::revocation::MemoryStore;
/// let store = MemoryStore::new().with_max_entries(10_000);
/// assert_eq!(store.len(), 0);
/// ```
pub struct MemoryStore {
    inner: RwLock<Entries>,
    clock: Arc<dyn Clock>,
    max_entries: usize,
}

#[derive(Default)]
struct Entries {
    /// sid → until (ms)
    sessions: HashMap<String, u64>,
    /// sub → (epoch ms, until ms)
    subjects: HashMap<String, (u64, u64)>,
    /// The earliest `until` among the entries, to purge only when useful.
    next_expiry: u64,
    /// When the last purge ran: a purge scans every entry, so it runs at
    /// most once per [`PURGE_INTERVAL_MS`] unless the store is full.
    last_purge: u64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store holding at most 1,000,000 live entries.
    pub fn new() -> MemoryStore {
        MemoryStore {
            inner: RwLock::new(Entries::default()),
            clock: Arc::new(SystemClock),
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// Sets the bound on live entries (default 1,000,000).
    pub fn with_max_entries(mut self, max_entries: usize) -> MemoryStore {
        self.max_entries = max_entries;
        self
    }

    /// Reads the time from `clock` (for expiring entries) instead of the
    /// system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> MemoryStore {
        self.clock = clock;
        self
    }

    /// The number of entries held, live or not yet purged.
    pub fn len(&self) -> usize {
        let entries = self.read();
        entries.sessions.len() + entries.subjects.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry whose time has passed. Runs on its own when a
    /// write finds an entry due; call it to reclaim memory sooner.
    pub fn purge_expired(&self) {
        let now = unix_millis(self.clock.now());
        purge(&mut self.write(), now);
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn make_room(&self, entries: &mut Entries, now: u64, is_new: bool) -> Result<(), StoreError> {
        let len = entries.sessions.len() + entries.subjects.len();
        let full = is_new && len >= self.max_entries;
        let due = entries.next_expiry <= now
            && now.saturating_sub(entries.last_purge) >= PURGE_INTERVAL_MS;
        if full || due {
            purge(entries, now);
        }
        let len = entries.sessions.len() + entries.subjects.len();
        if is_new && len >= self.max_entries {
            tracing::error!(
                entries = len,
                "revocation store full of live entries; refusing a new revocation"
            );
            return Err(StoreError::Full(len));
        }
        Ok(())
    }
}

fn purge(entries: &mut Entries, now: u64) {
    entries.sessions.retain(|_, until| *until > now);
    entries.subjects.retain(|_, (_, until)| *until > now);
    entries.last_purge = now;
    entries.next_expiry = entries
        .sessions
        .values()
        .copied()
        .chain(entries.subjects.values().map(|(_, until)| *until))
        .min()
        .unwrap_or(u64::MAX);
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke_session(&self, sid: &str, until: SystemTime) -> Result<(), StoreError> {
        let now = unix_millis(self.clock.now());
        let until = unix_millis(until);
        if until <= now {
            return Ok(()); // nothing it could match is alive
        }
        let mut entries = self.write();
        let is_new = !entries.sessions.contains_key(sid);
        self.make_room(&mut entries, now, is_new)?;
        let slot = entries.sessions.entry(sid.to_owned()).or_insert(0);
        *slot = (*slot).max(until);
        entries.next_expiry = entries.next_expiry.min(until);
        Ok(())
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let now = unix_millis(self.clock.now());
        let (before, until) = (unix_millis(before), unix_millis(until));
        if until <= now {
            return Ok(());
        }
        let mut entries = self.write();
        let is_new = !entries.subjects.contains_key(sub);
        self.make_room(&mut entries, now, is_new)?;
        let slot = entries.subjects.entry(sub.to_owned()).or_insert((0, 0));
        *slot = (slot.0.max(before), slot.1.max(until));
        entries.next_expiry = entries.next_expiry.min(until);
        Ok(())
    }

    async fn check(
        &self,
        sid: &str,
        sub: Option<&str>,
        created: SystemTime,
    ) -> Result<RevocationStatus, StoreError> {
        let now = unix_millis(self.clock.now());
        let entries = self.read();
        let session_revoked = entries.sessions.get(sid).is_some_and(|until| *until > now);
        let epoch = sub
            .and_then(|sub| entries.subjects.get(sub))
            .filter(|(_, until)| *until > now)
            .map(|(epoch, _)| *epoch);
        Ok(RevocationStatus::decide(session_revoked, epoch, created))
    }
}

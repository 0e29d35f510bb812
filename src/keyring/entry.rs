//! One key of a key set, with its state, times and seal count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

#[cfg(doc)]
use super::{set::KeySet, Keyring};
use crate::clock::from_unix_seconds;
use crate::jwe::HeaderCache;
use crate::key::Key;
use crate::key_state::KeyState;

/// One key of a [`KeySet`], with its state and times.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub(super) key: Arc<Key>,
    pub(super) state: KeyState,
    pub(super) created: u64,
    pub(super) retired_at: Option<u64>,
    /// For a staged key: when it becomes the primary by itself.
    pub(super) promote_at: Option<u64>,
    pub(super) seals: Arc<AtomicU64>,
    /// Opens and last use, shared with the same key in later sets.
    pub(super) usage: Arc<Usage>,
    /// Protected headers prepared for this key, shared by every snapshot.
    pub(super) headers: Arc<HeaderCache>,
}

/// How a key was used since the process loaded it.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    opens: AtomicU64,
    /// Unix seconds of the last seal or open; 0 before the first.
    last_used: AtomicU64,
}

impl Usage {
    /// A token opened under the key (decrypted, or found in a session
    /// token cache) at `now` (Unix seconds).
    pub(super) fn opened(&self, now: u64) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.used(now);
    }

    /// The key sealed or opened at `now`.
    pub(super) fn used(&self, now: u64) {
        self.last_used.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    pub(super) fn last_used(&self) -> Option<u64> {
        Some(self.last_used.load(Ordering::Relaxed)).filter(|&at| at > 0)
    }
}

impl KeyEntry {
    pub(super) fn new(key: Arc<Key>, state: KeyState, created: u64) -> Self {
        KeyEntry {
            key,
            state,
            created,
            retired_at: None,
            promote_at: None,
            seals: Arc::new(AtomicU64::new(0)),
            usage: Arc::default(),
            headers: Arc::default(),
        }
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Shortcut for `key().kid()`.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// The key's state in this set.
    pub fn state(&self) -> KeyState {
        self.state
    }

    /// When the key entered the keyring.
    pub fn created(&self) -> SystemTime {
        from_unix_seconds(self.created)
    }

    /// When the key stopped being primary, for retired keys.
    pub fn retired_at(&self) -> Option<SystemTime> {
        self.retired_at.map(from_unix_seconds)
    }

    /// For a staged key, when it is scheduled to become the primary
    /// ([`Keyring::promote_at`]).
    pub fn promote_at(&self) -> Option<SystemTime> {
        self.promote_at.map(from_unix_seconds)
    }

    /// How many tokens this process has sealed under the key.
    pub fn seal_count(&self) -> u64 {
        self.seals.load(Ordering::Relaxed)
    }
}

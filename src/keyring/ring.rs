//! The keyring: the current key set behind an [`ArcSwap`], changed under
//! a writer lock (rotation, staging, promotion, retirement, pruning), and
//! sealing and opening under it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use zeroize::Zeroizing;

use super::entry::KeyEntry;
use super::set::{KeyInfo, KeySet};
use crate::alg::KeyAlgorithm;
use crate::clock::{unix_seconds, Clock};
use crate::error::{Error, KeyringError, Rejection, RejectionKind, SealError};
use crate::jwe::{self, OpenOptions, Opened, SealOptions};
use crate::key::Key;
use crate::key_state::KeyState;

/// Seals under one `dir` key after which the keyring starts warning.
pub const DIR_SEAL_WARNING: u64 = 1 << 30;
/// Seals under one `dir` key after which sealing refuses (NIST SP 800-38D).
pub const DIR_SEAL_LIMIT: u64 = 1 << 32;

/// The keyring: a lock-free, atomically swapped set of keys.
///
/// Cheap to clone and share: a `Keyring` is a handle, and its clones are
/// handles to the same keys (one reference count, no key copied), so a
/// `rotate()` or any other change through one is seen by every other at its
/// next `seal` or `open`. Hand a clone to every task. An `Arc<Keyring>`, as
/// a [`SessionLayer`](crate::SessionLayer) holds, shares the keyring
/// too, and `Keyring::from` turns it (or a `&Keyring`) into a handle to the
/// same keys.
///
/// ```
/// use jwe_session::{Key, KeyAlgorithm, Keyring, KeyState};
///
/// # fn main() -> Result<(), jwe_session::Error> {
/// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?.with_kid("k1")?);
/// let old = keyring.seal(b"payload")?;
///
/// let new_kid = keyring.rotate()?;
/// let new = keyring.seal(b"payload")?;
/// assert_eq!(keyring.open(&new)?.kid(), new_kid);
/// assert_eq!(keyring.open(&old)?.key_state(), KeyState::Retired);
///
/// keyring.remove("k1")?;
/// assert!(keyring.open(&old).is_err());
/// # Ok(())
/// # }
/// ```
///
/// Clones share the keys:
///
/// ```
/// use std::sync::Arc;
/// use jwe_session::{Key, KeyAlgorithm, Keyring, KeyState};
///
/// # fn main() -> Result<(), jwe_session::Error> {
/// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?.with_kid("k1")?);
/// let clone = keyring.clone();
/// let token = clone.seal(b"payload")?;
///
/// let new_kid = keyring.rotate()?;
/// assert_eq!(clone.primary_kid(), new_kid);
/// assert_eq!(clone.open(&token)?.key_state(), KeyState::Retired);
///
/// // The same from an `Arc<Keyring>`, or a reference.
/// let shared = Arc::new(keyring);
/// let from_arc = Keyring::from(Arc::clone(&shared));
/// let from_ref = Keyring::from(&*shared);
/// shared.rotate()?;
/// assert_eq!(from_arc.primary_kid(), shared.primary_kid());
/// assert_eq!(from_ref.primary_kid(), clone.primary_kid());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Keyring {
    /// The keys and their writer lock, shared by every clone.
    pub(super) inner: Arc<Shared>,
    /// This handle's options for [`Keyring::open`].
    open_options: OpenOptions,
}

/// What the clones of a [`Keyring`] share.
pub(super) struct Shared {
    pub(super) current: ArcSwap<KeySet>,
    writer: Mutex<()>,
    /// Swappable through any clone ([`Keyring::set_clock`]).
    clock: ArcSwap<Arc<dyn Clock>>,
    /// Whether that clock is the crate's shared system clock
    /// ([`crate::clock::is_system`]): then a caller that has just read the
    /// same clock can lend its reading ([`Keyring::state_of`]).
    system_clock: AtomicBool,
    /// The shortest age, in seconds, at which [`Keyring::prune`] drops a
    /// retired key: the longest sessions' lifetime the keyring was told of
    /// (0: none; the default sessions' then).
    pub(super) retired_lifetime: AtomicU64,
}

impl From<Arc<Keyring>> for Keyring {
    /// A handle to the same keys as the shared keyring, with its open
    /// options: no key is copied.
    fn from(keyring: Arc<Keyring>) -> Keyring {
        Arc::unwrap_or_clone(keyring)
    }
}

impl From<&Keyring> for Keyring {
    /// A clone: a handle to the same keys.
    fn from(keyring: &Keyring) -> Keyring {
        keyring.clone()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The set as it is: formatting never promotes a key.
        let set = self.inner.current.load();
        f.debug_struct("Keyring")
            .field("primary", &set.primary().kid())
            .field("keys", &set.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring with one primary key.
    pub fn new(primary: Key) -> Keyring {
        Keyring::with_clock(primary, crate::clock::system())
    }

    /// A keyring with one primary key, reading times from `clock` (a
    /// [`ManualClock`](crate::ManualClock) in tests: scheduled promotions
    /// and retirement times follow it; see [`Keyring::promote_at`]).
    pub fn with_clock(primary: Key, clock: Arc<dyn Clock>) -> Keyring {
        let created = unix_seconds(clock.now());
        let set = KeySet {
            index: HashMap::from([(primary.kid().to_owned(), 0)]),
            entries: vec![KeyEntry::new(Arc::new(primary), KeyState::Primary, created)],
            due: None,
        };
        Keyring::from_set(set, clock)
    }

    pub(super) fn from_set(set: KeySet, clock: Arc<dyn Clock>) -> Keyring {
        Keyring {
            inner: Arc::new(Shared {
                current: ArcSwap::from_pointee(set),
                writer: Mutex::new(()),
                system_clock: AtomicBool::new(crate::clock::is_system(&clock)),
                clock: ArcSwap::from_pointee(clock),
                retired_lifetime: AtomicU64::new(0),
            }),
            open_options: OpenOptions::default(),
        }
    }

    /// Sets the options every [`Keyring::open`] uses (default: tokens up to
    /// 8 KiB). They belong to this handle: on a clone, the result still
    /// shares the keys, and the other clones keep their own options.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn with_open_options(mut self, options: OpenOptions) -> Keyring {
        self.open_options = options;
        self
    }

    /// Replaces the clock used for key times, for this keyring and every
    /// clone of it (the clones share one key set, whose scheduled
    /// promotions apply by one clock).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        let system = crate::clock::is_system(&clock);
        // Never a lent reading with the new clock: off before the swap.
        self.inner.system_clock.store(false, Ordering::SeqCst);
        self.inner.clock.store(Arc::new(clock));
        self.inner.system_clock.store(system, Ordering::SeqCst);
    }

    /// Unix seconds by the keyring's clock.
    fn now_unix(&self) -> u64 {
        unix_seconds(self.inner.clock.load().now())
    }

    /// The time by the keyring's clock.
    pub(super) fn now(&self) -> SystemTime {
        self.inner.clock.load().now()
    }

    /// The keys, the primary first, with their states, times and seal
    /// counts: what an admin page or `jwe-session keyring list` shows. No
    /// secret material.
    ///
    /// ```
    /// use jwe_session::{Key, KeyAlgorithm, KeyState, Keyring};
    ///
    /// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
    /// let token = keyring.seal(b"{}")?;
    /// keyring.rotate()?;
    /// keyring.open(&token)?;
    /// let keys = keyring.keys();
    /// assert_eq!((keys[0].state(), keys[0].seal_count(), keys[0].last_used()), (KeyState::Primary, 0, None));
    /// let old = &keys[1];
    /// assert_eq!((old.state(), old.seal_count(), old.open_count()), (KeyState::Retired, 1, 1));
    /// assert!(old.last_used().is_some());
    /// # Ok::<(), jwe_session::Error>(())
    /// ```
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.snapshot().iter().map(KeyInfo::of_entry).collect()
    }

    /// The current key set, after any promotion that has come due. Lock-free
    /// (but for applying such a promotion, once); hold it as long as you
    /// like, it never changes under you.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn snapshot(&self) -> Arc<KeySet> {
        arc_swap::Guard::into_inner(self.load())
    }

    /// The current set, after any promotion that has come due
    /// ([`Keyring::promote_at`]). Reading the clock is needed only while a
    /// promotion is scheduled.
    fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        let set = self.inner.current.load();
        match set.due {
            Some(due) if unix_seconds(self.now()) >= due => {
                drop(set);
                self.promote_due();
                self.inner.current.load()
            }
            _ => set,
        }
    }

    /// Promotes every staged key whose time has come.
    fn promote_due(&self) {
        let promoted = {
            let _guard = self
                .inner
                .writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.apply_due(unix_seconds(self.now())).1
        };
        // Logged once the lock is released: a log layer may use the keyring.
        for kid in promoted {
            tracing::info!(kid = %kid, "scheduled promotion: key is now the primary");
        }
    }

    /// With the writer lock held: promotes every staged key whose time has
    /// come at `now`, earliest first (the last one promoted ends up the
    /// primary), and returns the set as it then is, with the kids promoted.
    fn apply_due(&self, now: u64) -> (Arc<KeySet>, Vec<String>) {
        let mut kids = Vec::new();
        loop {
            let current = self.inner.current.load_full();
            let Some(entry) = current
                .entries
                .iter()
                .filter(|e| e.state == KeyState::Staged && e.promote_at.is_some_and(|at| at <= now))
                .min_by_key(|e| e.promote_at)
            else {
                return (current, kids); // nothing (more) due
            };
            let kid = entry.kid().to_owned();
            match promoted(&current, &kid, now).and_then(KeySet::build) {
                Ok(next) => {
                    self.publish(next);
                    kids.push(kid);
                }
                Err(error) => {
                    // Cannot happen for a key of this set; never loop on it.
                    tracing::error!(kid = %kid, error = %error, "scheduled promotion failed");
                    return (current, kids);
                }
            }
        }
    }

    /// The primary key's `kid`.
    pub fn primary_kid(&self) -> String {
        self.load().primary().kid().to_owned()
    }

    /// Seals `plaintext` under the primary key, with no `typ`.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, Error> {
        self.seal_with(plaintext, &SealOptions::default())
    }

    /// Seals `plaintext` under the primary key.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn seal_with(
        &self,
        plaintext: &[u8],
        options: &SealOptions,
    ) -> Result<String, Error> {
        self.seal_reporting(plaintext, options, |_| ())
            .map(|(token, ())| token)
    }

    /// [`seal_with`](Keyring::seal_with), also giving what `kid` says of
    /// the key that sealed (read from the same snapshot).
    pub(crate) fn seal_reporting<K>(
        &self,
        plaintext: &[u8],
        options: &SealOptions,
        kid: impl FnOnce(&str) -> K,
    ) -> Result<(String, K), Error> {
        let set = self.load();
        let primary = set.primary();
        if primary.key.alg() == KeyAlgorithm::Dir {
            let count = primary.seals.fetch_add(1, Ordering::Relaxed) + 1;
            if count > DIR_SEAL_LIMIT {
                primary.seals.fetch_sub(1, Ordering::Relaxed);
                return Err(SealError::KeyExhausted(primary.kid().to_owned()).into());
            }
            if count >= DIR_SEAL_WARNING && count.is_power_of_two() {
                tracing::warn!(
                    kid = primary.kid(),
                    seals = count,
                    "dir key nearing the AES-GCM limit of 2^32 seals; rotate the keyring"
                );
            }
        } else {
            primary.seals.fetch_add(1, Ordering::Relaxed);
        }
        let token = jwe::seal_cached(&primary.key, plaintext, options, &primary.headers)?;
        primary.usage.used(self.now_unix());
        Ok((token, kid(primary.kid())))
    }

    /// Opens a token under whichever key its `kid` names.
    ///
    /// Check [`Opened::key_state`]: a token opened under a key that is not
    /// the primary should be sealed again.
    pub fn open(&self, token: &str) -> Result<Opened, Rejection> {
        self.open_with(token, &self.open_options)
    }

    /// Opens a token with these options instead of the keyring's own.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn open_with(
        &self,
        token: &str,
        options: &OpenOptions,
    ) -> Result<Opened, Rejection> {
        let result = self.open_inner(token, options);
        if let Err(rejection) = &result {
            tracing::debug!(
                kind = rejection.kind().as_str(),
                reason = rejection.reason(),
                kid = rejection.kid().unwrap_or("-"),
                "token rejected"
            );
        }
        result
    }

    fn open_inner(&self, token: &str, options: &OpenOptions) -> Result<Opened, Rejection> {
        let set = self.load();
        // Most tokens carry a header the primary key prepared when sealing.
        let parsed = jwe::parse_known(token, options, |encoded| {
            set.primary().headers.lookup(encoded)
        })?;
        let Some(kid) = parsed.header().kid() else {
            return Err(Rejection::malformed("header has no kid"));
        };
        let Some(entry) = set.get(kid) else {
            return Err(
                Rejection::new(RejectionKind::UnknownKey, "no key with this kid").with_kid(kid),
            );
        };
        let state = entry.state;
        let (header, plaintext) = jwe::decrypt(parsed, &entry.key)?;
        entry.usage.opened(self.now_unix());
        Ok(Opened::new(
            header,
            plaintext,
            state,
            Arc::downgrade(&entry.key),
        ))
    }

    /// The current state of the key `kid`, if the keyring still holds that
    /// very key (the one `key` points to) under it.
    ///
    /// `system_now`: the Unix seconds the caller has just read from the
    /// shared system clock ([`crate::clock::system`]), if it reads that
    /// clock. The key's last use is stamped with it when the keyring reads
    /// the same clock, and by the keyring's own clock otherwise.
    pub(crate) fn state_of(
        &self,
        kid: &str,
        key: &Weak<Key>,
        system_now: Option<u64>,
    ) -> Option<KeyState> {
        let set = self.load();
        let entry = set.get(kid)?;
        if !std::ptr::eq(Arc::as_ptr(&entry.key), key.as_ptr()) {
            return None;
        }
        let now = match system_now {
            Some(now) if self.inner.system_clock.load(Ordering::SeqCst) => now,
            _ => self.now_unix(),
        };
        // A session token cache hit: the key opened this token, once more.
        entry.usage.opened(now);
        Some(entry.state)
    }

    pub(super) fn change<T>(
        &self,
        f: impl FnOnce(&KeySet, u64) -> Result<(Vec<KeyEntry>, T), KeyringError>,
    ) -> Result<T, KeyringError> {
        let _guard = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = unix_seconds(self.now());
        // A change applies to the set as it is now: due promotions first.
        let (current, promoted) = self.apply_due(now);
        for kid in &promoted {
            tracing::info!(kid = %kid, "scheduled promotion: key is now the primary");
        }
        let (entries, out) = f(&current, now)?;
        self.publish(KeySet::build(entries)?);
        Ok(out)
    }

    /// Makes `next` the current set, counting a new primary.
    fn publish(&self, next: KeySet) {
        let promoted = self.inner.current.load().primary().kid() != next.primary().kid();
        self.inner.current.store(Arc::new(next));
        if promoted {
            crate::metrics::key_promoted();
        }
    }

    /// Makes a fresh key of the primary's algorithm the primary; the old
    /// primary is retired and still opens. Returns the new `kid`.
    pub fn rotate(&self) -> Result<String, Error> {
        let next = self.load().primary().key.generate_like()?;
        let kid = next.kid().to_owned();
        self.rotate_to(next)?;
        Ok(kid)
    }

    /// Makes `key` the primary; the old primary is retired. `key` may be
    /// new or already staged (then it keeps its creation time).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn rotate_to(&self, key: Key) -> Result<(), KeyringError> {
        self.change(|set, now| {
            let mut entries = Vec::with_capacity(set.len() + 1);
            let created = match set.get(key.kid()) {
                Some(existing) if existing.state == KeyState::Staged && *existing.key == key => {
                    existing.created
                }
                Some(_) => return Err(KeyringError::DuplicateKid(key.kid().to_owned())),
                None => now,
            };
            let kid = key.kid().to_owned();
            entries.push(KeyEntry::new(Arc::new(key), KeyState::Primary, created));
            retire_rest(set, now, &kid, &mut entries);
            Ok((entries, ()))
        })
    }

    /// Adds `key` as staged: it opens but never seals, until promoted.
    pub fn stage(&self, key: Key) -> Result<(), KeyringError> {
        self.change(|set, now| {
            if set.get(key.kid()).is_some() {
                return Err(KeyringError::DuplicateKid(key.kid().to_owned()));
            }
            let mut entries = set.entries.clone();
            entries.push(KeyEntry::new(Arc::new(key), KeyState::Staged, now));
            Ok((entries, ()))
        })
    }

    /// Makes the staged key `kid` the primary; the old primary is retired.
    ///
    /// Only staged keys can be promoted: a retired key may have been retired
    /// because it was exposed, so bringing it back is never implicit (stage
    /// a new key instead).
    ///
    /// ```
    /// use jwe_session::{Key, KeyAlgorithm, Keyring, KeyState};
    /// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap().with_kid("old").unwrap());
    /// keyring.stage(Key::generate(KeyAlgorithm::A256Kw).unwrap().with_kid("new").unwrap()).unwrap();
    /// keyring.promote("new").unwrap();
    /// assert_eq!(keyring.primary_kid(), "new");
    /// let state = |kid: &str| keyring.keys().iter().find(|k| k.kid() == kid).map(|k| k.state());
    /// assert_eq!(state("old"), Some(KeyState::Retired));
    /// assert!(keyring.promote("old").is_err(), "retired keys are not brought back");
    /// ```
    pub fn promote(&self, kid: &str) -> Result<(), KeyringError> {
        self.change(|set, now| Ok((promoted(set, kid, now)?, ())))
    }

    /// Schedules the staged key `kid` to become the primary at `at`, as
    /// [`promote`](Keyring::promote) would. Every process whose keyring has
    /// the same schedule (a JWK Set file with `x-promote-at`, see
    /// [`Keyring::to_jwk_set`]) switches at the same moment, without a
    /// restart or a signal: each seal, open or snapshot after `at` sees the
    /// new primary. A time already past promotes at the next use; a time
    /// within a second promotes at the end of that second. A later
    /// `promote`, `retire` or `promote_at` of the key replaces the schedule;
    /// a promotion of another key does not. Every change to the keyring
    /// applies a due promotion first.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use jwe_session::{Key, KeyAlgorithm, Keyring, KeyState, ManualClock};
    ///
    /// let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    /// let old = Key::generate(KeyAlgorithm::A256Kw).unwrap().with_kid("old").unwrap();
    /// let keyring = Keyring::with_clock(old, clock.clone());
    /// keyring.stage(Key::generate(KeyAlgorithm::A256Kw).unwrap().with_kid("new").unwrap()).unwrap();
    /// keyring.promote_at("new", clock.now() + Duration::from_secs(600)).unwrap();
    /// assert_eq!(keyring.primary_kid(), "old");
    ///
    /// clock.advance(Duration::from_secs(600));
    /// assert_eq!(keyring.primary_kid(), "new");
    /// let state = |kid: &str| keyring.keys().iter().find(|k| k.kid() == kid).map(|k| k.state());
    /// assert_eq!(state("old"), Some(KeyState::Retired));
    /// # use jwe_session::Clock;
    /// ```
    pub fn promote_at(&self, kid: &str, at: SystemTime) -> Result<(), KeyringError> {
        self.change(|set, _| {
            let entry = set
                .get(kid)
                .ok_or_else(|| KeyringError::UnknownKid(kid.to_owned()))?;
            if entry.state != KeyState::Staged {
                return Err(KeyringError::NotStaged(kid.to_owned()));
            }
            // Never early: a time within a second promotes at its end.
            let at = at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
                .unwrap_or(0);
            let mut entries = set.entries.clone();
            for e in entries.iter_mut().filter(|e| e.kid() == kid) {
                e.promote_at = Some(at);
            }
            Ok((entries, ()))
        })
    }

    /// Marks the staged key `kid` retired. The primary cannot be retired:
    /// rotate or promote first.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn retire(&self, kid: &str) -> Result<(), KeyringError> {
        self.change(|set, now| {
            let entry = set
                .get(kid)
                .ok_or_else(|| KeyringError::UnknownKid(kid.to_owned()))?;
            if entry.state == KeyState::Primary {
                return Err(KeyringError::PrimaryKey(kid.to_owned()));
            }
            let mut entries = set.entries.clone();
            for e in entries.iter_mut().filter(|e| e.kid() == kid) {
                if e.state != KeyState::Retired {
                    e.state = KeyState::Retired;
                    e.retired_at = Some(now);
                }
                e.promote_at = None;
            }
            Ok((entries, ()))
        })
    }

    /// Removes the key `kid`: tokens it sealed stop opening. Refuses the
    /// primary. The key is zeroized once the last snapshot holding it is
    /// dropped.
    pub fn remove(&self, kid: &str) -> Result<(), KeyringError> {
        self.change(|set, _| {
            let entry = set
                .get(kid)
                .ok_or_else(|| KeyringError::UnknownKid(kid.to_owned()))?;
            if entry.state == KeyState::Primary {
                return Err(KeyringError::PrimaryKey(kid.to_owned()));
            }
            let entries = set
                .entries
                .iter()
                .filter(|e| e.kid() != kid)
                .cloned()
                .collect();
            Ok((entries, ()))
        })
    }

    /// Drops every retired key retired at least `max_age` before `now`, and
    /// returns their kids; dropped keys are zeroized once no snapshot holds
    /// them.
    ///
    /// Never drops a key that could still open a live token: one retired
    /// less than the sessions' absolute timeout plus the leeway ago, by
    /// default 12 h + 60 s (the default [`SessionConfig`](crate::SessionConfig)'s),
    /// or the retired-key lifetime of the [`RotationPolicy`](crate::RotationPolicy)
    /// the keyring rotates on ([`Keyring::rotate_every`]). A shorter
    /// `max_age` keeps those keys (and logs a warning). To drop a key at
    /// once (it leaked), [`remove`](Keyring::remove) it.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use jwe_session::{Key, KeyAlgorithm, Keyring};
    ///
    /// # fn main() -> Result<(), jwe_session::Error> {
    /// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
    /// keyring.rotate()?;
    /// let (hour, day) = (Duration::from_secs(3600), Duration::from_secs(86_400));
    /// assert!(keyring.prune(SystemTime::now(), day).is_empty()); // retired just now
    ///
    /// // Two hours later, an hour's max age is shorter than the default
    /// // sessions' 12 h + 60 s: the key stays.
    /// assert!(keyring.prune(SystemTime::now() + 2 * hour, hour).is_empty());
    /// assert_eq!(keyring.prune(SystemTime::now() + day, day).len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn prune(&self, now: SystemTime, max_age: Duration) -> Vec<String> {
        let minimum = self.retired_lifetime();
        if max_age < minimum {
            tracing::warn!(
                max_age_secs = max_age.as_secs(),
                kept_secs = minimum.as_secs(),
                "prune: retired keys are kept as long as the sessions' absolute timeout + leeway"
            );
        }
        self.prune_forced(now, max_age.max(minimum))
    }

    /// [`prune`](Keyring::prune) without its check: drops every retired
    /// key retired at least `max_age` before `now`, however short
    /// `max_age` is (the key tool's `keyring prune --max-age`, whose
    /// operator states the sessions' lifetime).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn prune_forced(&self, now: SystemTime, max_age: Duration) -> Vec<String> {
        let cutoff = unix_seconds(now).saturating_sub(max_age.as_secs());
        self.change(|set, _| {
            let (gone, kept): (Vec<_>, Vec<_>) = set.entries.iter().cloned().partition(|e| {
                e.state == KeyState::Retired && e.retired_at.is_some_and(|at| at <= cutoff)
            });
            Ok((kept, gone.iter().map(|e| e.kid().to_owned()).collect()))
        })
        .unwrap_or_default()
    }

    /// Replaces the whole key set with `other`'s (a reload from a file or the
    /// environment), atomically. A key whose material is unchanged stays the
    /// same key object, with its seal counter (so session token caches keep
    /// the tokens it opened); scheduled promotions in `other` apply by this
    /// keyring's clock.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn replace_with(&self, other: &Keyring) {
        // `other`'s set as it is, read before taking our lock (never both
        // locks at once); its schedules apply here by this keyring's clock.
        self.replace_set(KeySet::clone(&other.inner.current.load_full()));
    }

    /// Makes `next` the key set, keeping the key objects, seal counters and
    /// prepared headers of the keys it shares with the current one.
    pub(super) fn replace_set(&self, mut next: KeySet) {
        let _guard = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.inner.current.load_full();
        for entry in &mut next.entries {
            if let Some(old) = current.get(entry.kid()) {
                if Arc::ptr_eq(&old.key, &entry.key) || *old.key == *entry.key {
                    // The same key: keep the same key object, so tokens it
                    // opened stay in session token caches, with its seal
                    // count and prepared headers.
                    entry.key = Arc::clone(&old.key);
                    entry.seals = Arc::clone(&old.seals);
                    entry.usage = Arc::clone(&old.usage);
                    entry.headers = Arc::clone(&old.headers);
                }
            }
        }
        self.publish(next);
    }

    /// Exports the keyring as a JWK Set: every key with its state and times
    /// (`x-state`, `x-created`, `x-retired-at`, `x-promote-at`), as
    /// [`Keyring::from_jwk_set`] and [`Keyring::from_file`] read it.
    pub fn to_jwk_set(&self) -> Zeroizing<String> {
        self.snapshot().to_jwk_set()
    }
}

/// The entries of `set` with the staged key `kid` as the primary and the
/// old primary retired at `now`.
fn promoted(set: &KeySet, kid: &str, now: u64) -> Result<Vec<KeyEntry>, KeyringError> {
    let entry = set
        .get(kid)
        .ok_or_else(|| KeyringError::UnknownKid(kid.to_owned()))?;
    if entry.state != KeyState::Staged {
        return Err(KeyringError::NotStaged(kid.to_owned()));
    }
    let mut entries = Vec::with_capacity(set.len());
    let mut primary = entry.clone();
    primary.state = KeyState::Primary;
    primary.retired_at = None;
    primary.promote_at = None;
    entries.push(primary);
    retire_rest(set, now, kid, &mut entries);
    Ok(entries)
}

fn retire_rest(set: &KeySet, now: u64, new_primary: &str, entries: &mut Vec<KeyEntry>) {
    for entry in set.iter().filter(|e| e.kid() != new_primary) {
        let mut entry = entry.clone();
        if entry.state == KeyState::Primary {
            entry.state = KeyState::Retired;
            entry.retired_at = Some(now);
        }
        entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{from_unix_seconds, ManualClock};

    fn ring() -> Keyring {
        Keyring::new(
            Key::generate(KeyAlgorithm::A256Kw)
                .unwrap()
                .with_kid("k1")
                .unwrap(),
        )
    }

    #[test]
    fn staged_keys_open_but_never_seal() {
        let keyring = ring();
        let staged = Key::generate(KeyAlgorithm::A128GcmKw)
            .unwrap()
            .with_kid("k2")
            .unwrap();
        let copy = Key::from_jwk(&staged.to_jwk()).unwrap();
        keyring.stage(staged).unwrap();
        let token = keyring.seal(b"x").unwrap();
        assert_eq!(keyring.open(&token).unwrap().kid(), "k1");
        let from_elsewhere = jwe::seal(&copy, b"y", &SealOptions::new()).unwrap();
        let opened = keyring.open(&from_elsewhere).unwrap();
        assert_eq!(opened.key_state(), KeyState::Staged);
        keyring.promote("k2").unwrap();
        assert_eq!(keyring.primary_kid(), "k2");
        assert_eq!(
            keyring.snapshot().get("k1").unwrap().state(),
            KeyState::Retired
        );
        assert_eq!(keyring.open(&token).unwrap().key_state(), KeyState::Retired);
    }

    #[test]
    fn primary_cannot_be_removed_or_retired() {
        let keyring = ring();
        assert!(matches!(
            keyring.remove("k1"),
            Err(KeyringError::PrimaryKey(_))
        ));
        assert!(matches!(
            keyring.retire("k1"),
            Err(KeyringError::PrimaryKey(_))
        ));
        assert!(matches!(
            keyring.remove("nope"),
            Err(KeyringError::UnknownKid(_))
        ));
        let dup = Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid("k1")
            .unwrap();
        assert!(matches!(
            keyring.stage(dup),
            Err(KeyringError::DuplicateKid(_))
        ));
    }

    #[test]
    fn prune_drops_only_old_retired_keys() {
        let clock = Arc::new(ManualClock::at_unix(1_000_000));
        let keyring = Keyring::with_clock(
            Key::generate(KeyAlgorithm::A256Kw)
                .unwrap()
                .with_kid("a")
                .unwrap(),
            clock.clone(),
        );
        let token = keyring.seal(b"x").unwrap();
        keyring.rotate().unwrap(); // "a" retired at 1_000_000
        clock.advance(Duration::from_secs(3600));
        keyring.rotate().unwrap(); // the second key retired at 1_003_600
        let day = Duration::from_secs(86_400);
        assert!(keyring
            .prune(from_unix_seconds(1_000_000 + 86_399), day)
            .is_empty());
        assert!(keyring.open(&token).is_ok());
        let gone = keyring.prune(from_unix_seconds(1_000_000 + 86_400), day);
        assert_eq!(gone, vec!["a".to_owned()]);
        assert_eq!(keyring.snapshot().len(), 2);
        assert_eq!(
            keyring.open(&token).unwrap_err().kind(),
            RejectionKind::UnknownKey
        );
    }

    #[test]
    fn dir_keys_count_their_seals() {
        let keyring = Keyring::new(Key::generate(KeyAlgorithm::Dir).unwrap());
        for _ in 0..3 {
            keyring.seal(b"x").unwrap();
        }
        assert_eq!(keyring.snapshot().primary().seal_count(), 3);
        keyring
            .snapshot()
            .primary()
            .seals
            .store(DIR_SEAL_LIMIT, Ordering::Relaxed);
        let err = keyring.seal(b"x").unwrap_err();
        assert!(
            matches!(err, Error::Seal(SealError::KeyExhausted(_))),
            "{err}"
        );
    }

    #[test]
    fn clones_share_the_keys_and_the_clock_but_not_the_open_options() {
        let clock = Arc::new(ManualClock::at_unix(1_000_000));
        let keyring = Keyring::with_clock(
            Key::generate(KeyAlgorithm::A256Kw)
                .unwrap()
                .with_kid("k1")
                .unwrap(),
            clock.clone(),
        );
        let clone = keyring.clone();
        let shared = Arc::new(keyring.clone());
        let from_arc = Keyring::from(Arc::clone(&shared));
        let from_ref = Keyring::from(&keyring);
        for ring in [&clone, &*shared, &from_arc, &from_ref] {
            assert!(Arc::ptr_eq(&ring.inner, &keyring.inner));
        }
        let token = keyring.seal(b"x").unwrap();

        // A change through any handle is seen through every other.
        let kid = from_arc.rotate().unwrap();
        for ring in [&keyring, &clone, &*shared, &from_ref] {
            assert_eq!(ring.primary_kid(), kid);
            assert_eq!(ring.open(&token).unwrap().key_state(), KeyState::Retired);
        }
        clone
            .stage(
                Key::generate(KeyAlgorithm::A256Kw)
                    .unwrap()
                    .with_kid("k3")
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            keyring.snapshot().get("k3").unwrap().state(),
            KeyState::Staged
        );

        // Open options belong to the handle.
        let tight = clone
            .clone()
            .with_open_options(OpenOptions::new().with_max_len(16));
        assert!(Arc::ptr_eq(&tight.inner, &keyring.inner));
        assert_eq!(
            tight.open(&token).unwrap_err().kind(),
            RejectionKind::Malformed
        );
        assert!(clone.open(&token).is_ok());

        // One clock for the shared set: a promotion scheduled through one
        // handle applies by the clock set through another.
        keyring
            .promote_at("k3", from_unix_seconds(1_000_600))
            .unwrap();
        let later = Arc::new(ManualClock::at_unix(1_000_600));
        let mut handle = from_ref;
        handle.set_clock(later);
        assert_eq!(keyring.primary_kid(), "k3");
        assert_eq!(clock.now(), from_unix_seconds(1_000_000));
    }
}

//! The key set: one primary key that seals, staged and retired keys that
//! only open, found by `kid`.
//!
//! Readers are lock-free: every change builds a whole new immutable
//! [`KeySet`] and publishes it through [`arc_swap::ArcSwap`], so a reader sees
//! the old set or the new one, never a mix. Changes are serialized among
//! themselves by a mutex that readers never touch, with one exception: the
//! first reader after a scheduled promotion's time ([`Keyring::promote_at`])
//! applies it, under that mutex, once.
//!
//! # Rotation
//!
//! * One process: [`Keyring::rotate`] makes a fresh primary of the same
//!   algorithm and retires the old one, which still opens.
//! * A fleet: [`Keyring::stage`] a new key everywhere first (it opens but
//!   never seals), then [`Keyring::promote`] it once every process has it,
//!   or schedule that with [`Keyring::promote_at`].
//! * [`Keyring::prune`] drops retired keys once every token they sealed is
//!   past its deadline; dropped keys are zeroized.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::alg::{ContentEncryption, KeyAlgorithm};
use crate::b64;
use crate::clock::{from_unix_seconds, unix_seconds, Clock, SystemClock, MAX_UNIX_SECONDS};
use crate::error::{
    Error, KeyError, KeyProblem, KeyringError, Rejection, RejectionKind, SealError,
};
use crate::jwe::{self, HeaderCache, OpenOptions, Opened, SealOptions};
use crate::key::{Key, WipedJson};

pub use crate::key_state::KeyState;

/// Seals under one `dir` key after which the keyring starts warning.
pub const DIR_SEAL_WARNING: u64 = 1 << 30;
/// Seals under one `dir` key after which sealing refuses (NIST SP 800-38D).
pub const DIR_SEAL_LIMIT: u64 = 1 << 32;

/// One key of a [`KeySet`], with its state and times.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    key: Arc<Key>,
    state: KeyState,
    created: u64,
    retired_at: Option<u64>,
    /// For a staged key: when it becomes the primary by itself.
    promote_at: Option<u64>,
    seals: Arc<AtomicU64>,
    /// Protected headers prepared for this key, shared by every snapshot.
    headers: Arc<HeaderCache>,
}

impl KeyEntry {
    fn new(key: Arc<Key>, state: KeyState, created: u64) -> Self {
        KeyEntry {
            key,
            state,
            created,
            retired_at: None,
            promote_at: None,
            seals: Arc::new(AtomicU64::new(0)),
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

/// An immutable snapshot of the keyring: the primary first, then the
/// open-only keys in the order they were added.
#[derive(Debug, Clone)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    index: HashMap<String, usize>,
    /// The earliest scheduled promotion, if any.
    due: Option<u64>,
}

impl KeySet {
    fn build(entries: Vec<KeyEntry>) -> Result<KeySet, KeyringError> {
        let mut index = HashMap::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            if index.insert(entry.kid().to_owned(), position).is_some() {
                return Err(KeyringError::Key(
                    KeyError::new(Some(entry.kid()), KeyProblem::DuplicateKid)
                        .at_position(position + 1),
                ));
            }
        }
        if entries.is_empty() {
            return Err(KeyringError::Empty);
        }
        let due = entries
            .iter()
            .filter(|e| e.state == KeyState::Staged)
            .filter_map(|e| e.promote_at)
            .min();
        Ok(KeySet {
            entries,
            index,
            due,
        })
    }

    /// The primary key.
    pub fn primary(&self) -> &KeyEntry {
        // `build` refuses an empty set and keeps the primary first.
        &self.entries[0]
    }

    /// The key with this `kid`: a map lookup, nothing more.
    pub fn get(&self, kid: &str) -> Option<&KeyEntry> {
        self.index.get(kid).map(|&i| &self.entries[i])
    }

    /// Every key, the primary first.
    pub fn iter(&self) -> impl Iterator<Item = &KeyEntry> {
        self.entries.iter()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: a key set holds at least its primary.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Exports the set as a JWK Set: the primary first, all others only
    /// open. Each key carries its state and times in the private members
    /// `x-state`, `x-created`, `x-retired` and, for a staged key scheduled
    /// to become the primary, `x-promote-at` (times in Unix seconds). The
    /// text holds every secret and is wiped on drop.
    pub fn to_jwk_set(&self) -> Zeroizing<String> {
        // Sized up front: growing would free buffers holding secrets
        // without wiping them.
        let capacity = 32
            + self
                .entries
                .iter()
                .map(|e| e.key.jwk_capacity())
                .sum::<usize>();
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        out.push_str("{\"keys\":[");
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("\n  ");
            let mut extra = vec![
                ("x-state", format!("\"{}\"", entry.state)),
                ("x-created", entry.created.to_string()),
            ];
            if let Some(retired) = entry.retired_at {
                extra.push(("x-retired", retired.to_string()));
            }
            if let Some(at) = entry.promote_at {
                extra.push(("x-promote-at", at.to_string()));
            }
            entry.key.write_jwk(&mut out, &extra);
        }
        out.push_str("\n]}\n");
        out
    }

    /// Reads a JWK Set: the first key is the primary, the others open only
    /// (`x-state` may say `staged`; anything else is retired). A staged key
    /// may carry `x-promote-at` (Unix seconds): every process that loads the
    /// set makes it the primary at that time. `x-promote-at` on any other
    /// key, or not a number of seconds, is refused.
    pub fn from_jwk_set(json: &str, now: SystemTime) -> Result<KeySet, KeyringError> {
        KeySet::read_jwk_set(json, now, None)
    }

    /// [`KeySet::from_jwk_set`], where a key whose JWK is a key of `known`
    /// (the same `kid`, algorithm and material: [`Key::is_jwk_of`]) is
    /// that very key object, not imported again.
    fn read_jwk_set(
        json: &str,
        now: SystemTime,
        known: Option<&KeySet>,
    ) -> Result<KeySet, KeyringError> {
        let value = WipedJson(
            serde_json::from_str(json).map_err(|_| KeyringError::NotJwkSet("not valid JSON"))?,
        );
        let now = unix_seconds(now);
        let objects = jwk_objects(&value)?;
        let mut entries = Vec::with_capacity(objects.len());
        for (i, object) in objects.iter().enumerate() {
            let object = jwk_object(i, object)?;
            let kid = object.get("kid").and_then(Value::as_str);
            let key = match known.zip(kid).and_then(|(set, kid)| set.get(kid)) {
                Some(entry) if entry.key.is_jwk_of(object) => Arc::clone(&entry.key),
                _ => Arc::new(Key::from_jwk_object(object).map_err(|e| e.at_position(i + 1))?),
            };
            let place = Place::read(object, i, key.kid(), now)?;
            let mut entry = KeyEntry::new(key, place.state, place.created);
            entry.retired_at = place.retired_at;
            entry.promote_at = place.promote_at;
            entries.push(entry);
        }
        KeySet::build(entries)
    }

    /// What a JWK Set says of its keys at `now`, as a keyring loaded from it
    /// would show them then (the same checks, the same errors, a duplicate
    /// `kid` included; a promotion scheduled at or before `now` applied, as
    /// [`Keyring::snapshot`] applies it), but without importing the keys'
    /// material, so without
    /// OpenSSL's RSA key check, which takes about 70 ms for a 2048-bit key
    /// and 0.5 s for a 4096-bit one: for listing a key file. A set described
    /// here may still fail to load if an RSA key's private components are
    /// inconsistent.
    ///
    /// ```
    /// use jwe_session::{KeyAlgorithm, KeySet, KeyState};
    /// let keys = KeySet::describe_jwk_set(r#"{"keys":[
    ///   {"kty":"oct","kid":"new","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"},
    ///   {"kty":"oct","kid":"old","alg":"dir","k":"XctOhJAkA-pD9Lh7ZgW_2A"}]}"#,
    ///   std::time::SystemTime::now()).unwrap();
    /// assert_eq!((keys[0].kid(), keys[0].alg(), keys[0].state()), ("new", KeyAlgorithm::A128Kw, KeyState::Primary));
    /// assert_eq!((keys[1].kid(), keys[1].state()), ("old", KeyState::Retired));
    /// ```
    pub fn describe_jwk_set(json: &str, now: SystemTime) -> Result<Vec<KeyInfo>, KeyringError> {
        let value = WipedJson(
            serde_json::from_str(json).map_err(|_| KeyringError::NotJwkSet("not valid JSON"))?,
        );
        let now = unix_seconds(now);
        let objects = jwk_objects(&value)?;
        let mut keys: Vec<KeyInfo> = Vec::with_capacity(objects.len());
        for (i, object) in objects.iter().enumerate() {
            let object = jwk_object(i, object)?;
            let (kid, alg, enc) = Key::describe_jwk(object).map_err(|e| e.at_position(i + 1))?;
            let place = Place::read(object, i, &kid, now)?;
            keys.push(KeyInfo {
                kid,
                alg,
                enc,
                place,
            });
        }
        // As `KeySet::build` refuses them.
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if !seen.insert(key.kid.as_str()) {
                return Err(KeyringError::Key(
                    KeyError::new(Some(&key.kid), KeyProblem::DuplicateKid).at_position(i + 1),
                ));
            }
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        // As `Keyring::apply_due` promotes them.
        while let Some(due) = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| {
                k.place.state == KeyState::Staged && k.place.promote_at.is_some_and(|at| at <= now)
            })
            .min_by_key(|(_, k)| k.place.promote_at)
            .map(|(i, _)| i)
        {
            let mut primary = keys.remove(due);
            primary.place.state = KeyState::Primary;
            primary.place.retired_at = None;
            primary.place.promote_at = None;
            for key in keys
                .iter_mut()
                .filter(|k| k.place.state == KeyState::Primary)
            {
                key.place.state = KeyState::Retired;
                key.place.retired_at = Some(now);
            }
            keys.insert(0, primary);
        }
        Ok(keys)
    }
}

/// The keys of a JWK Set.
fn jwk_objects(value: &WipedJson) -> Result<&[Value], KeyringError> {
    value
        .0
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or(KeyringError::NotJwkSet("no \"keys\" array"))
}

/// The key at index `i` of a JWK Set, a JSON object.
fn jwk_object(i: usize, jwk: &Value) -> Result<&Map<String, Value>, KeyringError> {
    jwk.as_object().ok_or_else(|| {
        KeyError::new(None, KeyProblem::NotJson)
            .at_position(i + 1)
            .into()
    })
}

/// A key's place in a JWK Set: its state and times, from its position and
/// the private members `x-state`, `x-created`, `x-retired`,
/// `x-promote-at`.
#[derive(Debug, Clone, Copy)]
struct Place {
    state: KeyState,
    created: u64,
    retired_at: Option<u64>,
    promote_at: Option<u64>,
}

impl Place {
    /// The place of the key `kid`, the JWK `object` at index `i`.
    fn read(
        object: &Map<String, Value>,
        i: usize,
        kid: &str,
        now: u64,
    ) -> Result<Place, KeyringError> {
        let state = if i == 0 {
            KeyState::Primary
        } else {
            match object
                .get("x-state")
                .and_then(Value::as_str)
                .and_then(KeyState::from_name)
            {
                Some(KeyState::Staged) => KeyState::Staged,
                _ => KeyState::Retired,
            }
        };
        let created = object
            .get("x-created")
            .and_then(Value::as_u64)
            .unwrap_or(now);
        let refuse = |problem| KeyError::new(Some(kid), problem).at_position(i + 1);
        let promote_at = match (object.get("x-promote-at"), state) {
            (None, _) => None,
            // The first key is the primary already: nothing to schedule.
            (Some(_), KeyState::Primary) => None,
            (Some(at), KeyState::Staged) => Some(
                at.as_u64()
                    .filter(|&at| at <= MAX_UNIX_SECONDS)
                    .ok_or_else(|| refuse(KeyProblem::InvalidMember("x-promote-at")))?,
            ),
            (Some(_), _) => return Err(refuse(KeyProblem::PromoteAtNotStaged).into()),
        };
        let retired_at = (state == KeyState::Retired).then(|| {
            object
                .get("x-retired")
                .and_then(Value::as_u64)
                .unwrap_or(now)
        });
        Ok(Place {
            state,
            created,
            retired_at,
            promote_at,
        })
    }
}

/// What a JWK Set says of one key, read without importing its material
/// ([`KeySet::describe_jwk_set`]).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    kid: String,
    alg: KeyAlgorithm,
    enc: ContentEncryption,
    place: Place,
}

impl KeyInfo {
    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key is bound to.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The content encryption the key seals with ([`Key::enc`]).
    pub fn enc(&self) -> ContentEncryption {
        self.enc
    }

    /// The key's state in the set.
    pub fn state(&self) -> KeyState {
        self.place.state
    }

    /// When the key entered the keyring (`x-created`, else the time the
    /// set was read).
    pub fn created(&self) -> SystemTime {
        from_unix_seconds(self.place.created)
    }

    /// When the key stopped being primary, for retired keys.
    pub fn retired_at(&self) -> Option<SystemTime> {
        self.place.retired_at.map(from_unix_seconds)
    }

    /// For a staged key, when it is scheduled to become the primary.
    pub fn promote_at(&self) -> Option<SystemTime> {
        self.place.promote_at.map(from_unix_seconds)
    }
}

/// The keyring: a lock-free, atomically swapped [`KeySet`].
///
/// Cheap to share: wrap it in an [`Arc`] and hand clones of the `Arc` to
/// every task. `rotate()` anywhere takes effect for the next `seal`.
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
pub struct Keyring {
    current: ArcSwap<KeySet>,
    writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    open_options: OpenOptions,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The set as it is: formatting never promotes a key.
        let set = self.current.load();
        f.debug_struct("Keyring")
            .field("primary", &set.primary().kid())
            .field("keys", &set.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring with one primary key.
    pub fn new(primary: Key) -> Keyring {
        Keyring::with_clock(primary, Arc::new(SystemClock))
    }

    /// A keyring with one primary key, reading times from `clock`.
    pub fn with_clock(primary: Key, clock: Arc<dyn Clock>) -> Keyring {
        let created = unix_seconds(clock.now());
        let set = KeySet {
            index: HashMap::from([(primary.kid().to_owned(), 0)]),
            entries: vec![KeyEntry::new(Arc::new(primary), KeyState::Primary, created)],
            due: None,
        };
        Keyring::from_set(set, clock)
    }

    fn from_set(set: KeySet, clock: Arc<dyn Clock>) -> Keyring {
        Keyring {
            current: ArcSwap::from_pointee(set),
            writer: Mutex::new(()),
            clock,
            open_options: OpenOptions::default(),
        }
    }

    /// Sets the options every [`Keyring::open`] uses (default: tokens up to
    /// 8 KiB).
    pub fn with_open_options(mut self, options: OpenOptions) -> Keyring {
        self.open_options = options;
        self
    }

    /// Replaces the clock used for key times.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// A keyring from a JWK Set (JSON text): the first key is the primary.
    ///
    /// ```
    /// use jwe_session::Keyring;
    /// let keyring = Keyring::from_jwk_set(r#"{"keys":[
    ///   {"kty":"oct","kid":"new","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"},
    ///   {"kty":"oct","kid":"old","alg":"dir","k":"XctOhJAkA-pD9Lh7ZgW_2A"}]}"#).unwrap();
    /// assert_eq!(keyring.primary_kid(), "new");
    /// ```
    pub fn from_jwk_set(json: &str) -> Result<Keyring, KeyringError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let set = KeySet::from_jwk_set(json, clock.now())?;
        Ok(Keyring::from_set(set, clock))
    }

    /// A keyring from a JWK Set file. Errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Keyring, KeyringError> {
        let path = path.as_ref();
        let text = read_key_file(path)?;
        Keyring::from_jwk_set(&text).map_err(|e| KeyringError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// A keyring from the environment variable `name`.
    ///
    /// The variable holds either a JWK Set (JSON) or a comma-separated list
    /// of `kid:base64url-secret` entries (algorithm `A256KW`, 32-byte
    /// secrets, unpadded base64url), the first being the primary and the
    /// rest retired. An unset or empty variable is an error: no key is ever
    /// generated silently. Errors name the variable and the entry's
    /// position, never the secret.
    ///
    /// ```
    /// use jwe_session::Keyring;
    /// std::env::set_var("DOC_SESSION_KEYS",
    ///     "2026-11:q4GGeh6EvfSJS5k0N1Y_6Wv0Gp1eCY8HlZ3ktTrUa6U,2026-10:RO3xWPKcmRd-KZZpIrGOs5VNXdtfwKlkJCBfS3hOL8A");
    /// let keyring = Keyring::from_env("DOC_SESSION_KEYS").unwrap();
    /// assert_eq!(keyring.primary_kid(), "2026-11");
    /// assert!(Keyring::from_env("DOC_SESSION_KEYS_UNSET").is_err());
    /// ```
    pub fn from_env(name: &str) -> Result<Keyring, KeyringError> {
        let env_error = |reason: String| KeyringError::Env {
            var: name.to_owned(),
            reason,
        };
        let value = match std::env::var(name) {
            Ok(value) => Zeroizing::new(value),
            Err(std::env::VarError::NotPresent) => return Err(env_error("is not set".to_owned())),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(env_error("is not valid UTF-8".to_owned()))
            }
        };
        Keyring::from_env_value(&value).map_err(env_error)
    }

    fn from_env_value(value: &str) -> Result<Keyring, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is empty".to_owned());
        }
        if value.starts_with('{') {
            return Keyring::from_jwk_set(value).map_err(|e| e.to_string());
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = unix_seconds(clock.now());
        let mut entries = Vec::new();
        for (i, entry) in value.split(',').enumerate() {
            let position = i + 1;
            let entry = entry.trim();
            let Some((kid, secret)) = entry.split_once(':') else {
                return Err(format!(
                    "entry #{position} is not of the form kid:base64url-secret"
                ));
            };
            let kid = kid.trim();
            if kid.is_empty() {
                return Err(format!("entry #{position} has an empty kid"));
            }
            let secret = Zeroizing::new(b64::decode(secret.trim()).map_err(|_| {
                format!("entry #{position} ({kid:?}): the secret is not unpadded base64url")
            })?);
            let key = Key::symmetric(kid, KeyAlgorithm::A256Kw, &secret)
                .map_err(|e| format!("entry #{position}: {}", e.at_position(position).problem()))?;
            let mut entry = KeyEntry::new(
                Arc::new(key),
                if i == 0 {
                    KeyState::Primary
                } else {
                    KeyState::Retired
                },
                now,
            );
            if i > 0 {
                entry.retired_at = Some(now);
            }
            entries.push(entry);
        }
        let set = KeySet::build(entries).map_err(|e| match e {
            KeyringError::Key(key) => format!("entry #{}: {}", key.position().unwrap_or(0), key),
            other => other.to_string(),
        })?;
        Ok(Keyring::from_set(set, clock))
    }

    /// The current key set, after any promotion that has come due. Lock-free
    /// (but for applying such a promotion, once); hold it as long as you
    /// like, it never changes under you.
    pub fn snapshot(&self) -> Arc<KeySet> {
        arc_swap::Guard::into_inner(self.load())
    }

    /// The current set, after any promotion that has come due
    /// ([`Keyring::promote_at`]). Reading the clock is needed only while a
    /// promotion is scheduled.
    fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        let set = self.current.load();
        match set.due {
            Some(due) if unix_seconds(self.clock.now()) >= due => {
                drop(set);
                self.promote_due();
                self.current.load()
            }
            _ => set,
        }
    }

    /// Promotes every staged key whose time has come.
    fn promote_due(&self) {
        let promoted = {
            let _guard = self
                .writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.apply_due(unix_seconds(self.clock.now())).1
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
            let current = self.current.load_full();
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
                    self.current.store(Arc::new(next));
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
    pub fn seal_with(&self, plaintext: &[u8], options: &SealOptions) -> Result<String, Error> {
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
    pub fn open_with(&self, token: &str, options: &OpenOptions) -> Result<Opened, Rejection> {
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
        Ok(Opened::new(
            header,
            plaintext,
            state,
            Arc::downgrade(&entry.key),
        ))
    }

    /// The current state of the key `kid`, if the keyring still holds that
    /// very key (the one `key` points to) under it.
    pub(crate) fn state_of(&self, kid: &str, key: &Weak<Key>) -> Option<KeyState> {
        let set = self.load();
        let entry = set.get(kid)?;
        std::ptr::eq(Arc::as_ptr(&entry.key), key.as_ptr()).then_some(entry.state)
    }

    fn change<T>(
        &self,
        f: impl FnOnce(&KeySet, u64) -> Result<(Vec<KeyEntry>, T), KeyringError>,
    ) -> Result<T, KeyringError> {
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = unix_seconds(self.clock.now());
        // A change applies to the set as it is now: due promotions first.
        let (current, promoted) = self.apply_due(now);
        for kid in &promoted {
            tracing::info!(kid = %kid, "scheduled promotion: key is now the primary");
        }
        let (entries, out) = f(&current, now)?;
        self.current.store(Arc::new(KeySet::build(entries)?));
        Ok(out)
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
    pub fn rotate_to(&self, key: Key) -> Result<(), KeyringError> {
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
    /// assert_eq!(keyring.snapshot().get("old").unwrap().state(), KeyState::Retired);
    /// assert!(keyring.promote("old").is_err(), "retired keys are not brought back");
    /// ```
    pub fn promote(&self, kid: &str) -> Result<(), KeyringError> {
        self.change(|set, now| Ok((promoted(set, kid, now)?, ())))
    }

    /// Schedules the staged key `kid` to become the primary at `at`, as
    /// [`promote`](Keyring::promote) would. Every process whose keyring has
    /// the same schedule (a JWK Set file with `x-promote-at`, see
    /// [`KeySet::to_jwk_set`]) switches at the same moment, without a
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
    /// assert_eq!(keyring.snapshot().get("old").unwrap().state(), KeyState::Retired);
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
    pub fn retire(&self, kid: &str) -> Result<(), KeyringError> {
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

    /// Drops every retired key retired at least `max_age` before `now`
    /// (choose at least the sessions' absolute lifetime). Returns the
    /// removed kids. Dropped keys are zeroized once no snapshot holds them.
    pub fn prune(&self, now: SystemTime, max_age: Duration) -> Vec<String> {
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
    pub fn replace_with(&self, other: &Keyring) {
        // `other`'s set as it is, read before taking our lock (never both
        // locks at once); its schedules apply here by this keyring's clock.
        self.replace_set(KeySet::clone(&other.current.load_full()));
    }

    /// Makes `next` the key set, keeping the key objects, seal counters and
    /// prepared headers of the keys it shares with the current one.
    fn replace_set(&self, mut next: KeySet) {
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.current.load_full();
        for entry in &mut next.entries {
            if let Some(old) = current.get(entry.kid()) {
                if Arc::ptr_eq(&old.key, &entry.key) || *old.key == *entry.key {
                    // The same key: keep the same key object, so tokens it
                    // opened stay in session token caches, with its seal
                    // count and prepared headers.
                    entry.key = Arc::clone(&old.key);
                    entry.seals = Arc::clone(&old.seals);
                    entry.headers = Arc::clone(&old.headers);
                }
            }
        }
        self.current.store(Arc::new(next));
    }

    /// Reloads the key set from a JWK Set file, atomically, without a
    /// restart. On error the keyring is left as it was.
    ///
    /// A key the keyring already holds, under the same `kid` with the same
    /// algorithm and material (compared in constant time), is kept as it is,
    /// not imported again: importing an RSA key runs OpenSSL's full key
    /// check, about 70 ms for 2048 bits and 0.5 s for 4096, which a watched
    /// key file would pay on every reload. A key whose material changed
    /// under the same `kid` is imported, and checked, as a new one. Times
    /// the file leaves out are read from this keyring's clock.
    pub fn reload_from_file(&self, path: impl AsRef<Path>) -> Result<(), KeyringError> {
        let path = path.as_ref();
        let text = read_key_file(path)?;
        let known = self.current.load_full();
        let next = KeySet::read_jwk_set(&text, self.clock.now(), Some(&known)).map_err(|e| {
            KeyringError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        self.replace_set(next);
        Ok(())
    }

    /// Exports the keyring as a JWK Set (see [`KeySet::to_jwk_set`]).
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

/// The largest key file read, in bytes.
pub const MAX_KEY_FILE_LEN: u64 = 4 * 1024 * 1024;

/// Reads all of an open key file, at most [`MAX_KEY_FILE_LEN`] bytes, into
/// a buffer wiped on drop. The buffer is sized from the file's length up
/// front, so no reallocation leaves a copy of the secrets behind. For tools
/// that hold the file open themselves (under a lock, say); a file that is
/// too large is an [`std::io::ErrorKind::InvalidData`] error.
///
/// ```
/// use jwe_session::keyring::{read_key_file_bytes, Keyring};
/// use jwe_session::{Key, KeyAlgorithm};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("jwe-session-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("keys.json");
/// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
/// std::fs::write(&path, keyring.to_jwk_set().as_bytes())?;
///
/// let mut file = std::fs::File::open(&path)?; // e.g. held under a lock
/// let bytes = read_key_file_bytes(&mut file)?;
/// let loaded = Keyring::from_jwk_set(std::str::from_utf8(&bytes)?)?;
/// assert_eq!(loaded.primary_kid(), keyring.primary_kid());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub fn read_key_file_bytes(file: &mut std::fs::File) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read as _;
    let size = file.metadata().map_or(0, |m| m.len()).min(MAX_KEY_FILE_LEN);
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0) + 1));
    file.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_KEY_FILE_LEN} bytes"),
        ));
    }
    Ok(bytes)
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>, KeyringError> {
    let file_error = |reason: String| KeyringError::File {
        path: path.display().to_string(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| file_error(e.to_string()))?;
    let mut bytes = read_key_file_bytes(&mut file).map_err(|e| file_error(e.to_string()))?;
    // Moved, not copied, into the string.
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(not_text) => {
            drop(Zeroizing::new(not_text.into_bytes()));
            Err(file_error("not UTF-8 text".to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

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
    fn jwk_set_round_trip_keeps_states_and_times() {
        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let keyring = Keyring::with_clock(Key::generate(KeyAlgorithm::Dir).unwrap(), clock.clone());
        clock.advance(Duration::from_secs(10));
        keyring.rotate().unwrap();
        keyring
            .stage(Key::generate(KeyAlgorithm::A192Kw).unwrap())
            .unwrap();
        let exported = keyring.to_jwk_set();
        let again = Keyring::from_jwk_set(&exported).unwrap();
        let (a, b) = (keyring.snapshot(), again.snapshot());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!(x.key(), y.key());
            assert_eq!(x.state(), y.state());
            assert_eq!(x.created(), y.created());
            assert_eq!(x.retired_at(), y.retired_at());
        }
        assert_eq!(
            b.iter().nth(1).unwrap().retired_at(),
            Some(from_unix_seconds(1_700_000_010))
        );
    }

    #[test]
    fn env_value_formats_and_errors() {
        let a = b64::encode(&[1u8; 32]);
        let b = b64::encode(&[2u8; 32]);
        let keyring = Keyring::from_env_value(&format!(" one:{a} , two:{b} ")).unwrap();
        assert_eq!(keyring.primary_kid(), "one");
        assert_eq!(
            keyring.snapshot().get("two").unwrap().state(),
            KeyState::Retired
        );

        let cases = [
            (String::new(), "is empty".to_owned()),
            ("   ".to_owned(), "is empty".to_owned()),
            (
                format!("one:{a},{b}"),
                "entry #2 is not of the form".to_owned(),
            ),
            (
                format!("one:{a},:{b}"),
                "entry #2 has an empty kid".to_owned(),
            ),
            (
                format!("one:{a}=,two:{b}"),
                "entry #1 (\"one\"): the secret is not unpadded base64url".to_owned(),
            ),
            (
                format!("one:{a},two:{}", b64::encode(&[3u8; 16])),
                "entry #2: A256KW needs a key of 32 bytes".to_owned(),
            ),
            (format!("one:{a},one:{b}"), "entry #2".to_owned()),
            (
                format!("z:{}", b64::encode(&[0u8; 32])),
                "entry #1: the key is all zero".to_owned(),
            ),
        ];
        for (value, expected) in cases {
            let err = Keyring::from_env_value(&value).err().unwrap();
            assert!(err.contains(&expected), "{value:?}: {err}");
            assert!(!err.contains(&a) && !err.contains(&b), "{err}");
        }
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
    fn key_files_are_read_with_a_cap_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("jwe-session-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.json");
        let err = Keyring::from_file(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.json"), "{err}");
        let good = dir.join("keys.json");
        let keyring = ring();
        std::fs::write(&good, keyring.to_jwk_set().as_bytes()).unwrap();
        assert_eq!(Keyring::from_file(&good).unwrap().primary_kid(), "k1");
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; MAX_KEY_FILE_LEN as usize + 1]).unwrap();
        let err = Keyring::from_file(&big).unwrap_err().to_string();
        assert!(
            err.contains("big.json") && err.contains("larger than"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A scratch directory for key files, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("jwe-session-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// Writes a JWK Set of `jwks` to `keys.json`, and returns its path.
        fn write(&self, jwks: &[&str]) -> std::path::PathBuf {
            let path = self.0.join("keys.json");
            std::fs::write(&path, format!("{{\"keys\":[{}]}}", jwks.join(","))).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Whether the keyring holds the very key object `key` under `kid`.
    fn holds(keyring: &Keyring, kid: &str, key: &Key) -> bool {
        std::ptr::eq(keyring.snapshot().get(kid).unwrap().key(), key)
    }

    #[test]
    fn reloading_an_unchanged_symmetric_key_file_keeps_its_keys() {
        let dir = Scratch::new("reload-oct");
        let a = Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid("a")
            .unwrap();
        let b = Key::generate_dir(crate::ContentEncryption::A128Gcm)
            .unwrap()
            .with_kid("b")
            .unwrap();
        let path = dir.write(&[&a.to_jwk(), &b.to_jwk()]);
        let keyring = Keyring::from_file(&path).unwrap();
        let before = keyring.snapshot();
        keyring.seal(b"x").unwrap();
        keyring.reload_from_file(&path).unwrap();
        for kid in ["a", "b"] {
            assert!(
                holds(&keyring, kid, before.get(kid).unwrap().key()),
                "{kid}"
            );
        }
        assert_eq!(keyring.snapshot().primary().seal_count(), 1);

        // Other material under "b": a new key object, the old one's tokens
        // no longer open.
        let token = Keyring::new(b).seal(b"x").unwrap();
        assert!(keyring.open(&token).is_ok());
        let other = Key::generate_dir(crate::ContentEncryption::A128Gcm)
            .unwrap()
            .with_kid("b")
            .unwrap();
        let path = dir.write(&[&a.to_jwk(), &other.to_jwk()]);
        keyring.reload_from_file(&path).unwrap();
        assert!(holds(&keyring, "a", before.get("a").unwrap().key()));
        assert!(!holds(&keyring, "b", before.get("b").unwrap().key()));
        assert_eq!(*keyring.snapshot().get("b").unwrap().key(), other);
        assert_eq!(
            keyring.open(&token).unwrap_err().kind(),
            RejectionKind::DecryptFailed
        );
    }

    #[cfg(feature = "rsa")]
    mod rsa {
        use super::*;
        use crate::key::RSA_IMPORTS;

        fn imports() -> u32 {
            RSA_IMPORTS.with(std::cell::Cell::get)
        }

        fn rsa(alg: KeyAlgorithm, kid: &str) -> Key {
            Key::generate(alg).unwrap().with_kid(kid).unwrap()
        }

        /// `key`'s private JWK with `change` applied to its members.
        fn jwk_with(key: &Key, change: impl FnOnce(&mut Map<String, Value>)) -> String {
            let mut jwk: Map<String, Value> = serde_json::from_str(&key.to_jwk()).unwrap();
            change(&mut jwk);
            Value::Object(jwk).to_string()
        }

        /// Issue 10, section 5: every reload imported every key again, so
        /// each RSA key paid OpenSSL's full key check (70 ms for 2048 bits,
        /// 0.5 s for 4096) on every reload of an unchanged file.
        #[test]
        fn reloading_an_unchanged_key_file_imports_no_rsa_key() {
            let dir = Scratch::new("reload-rsa-unchanged");
            let r1 = rsa(KeyAlgorithm::RsaOaep256, "r1");
            let r2 = rsa(KeyAlgorithm::RsaOaep, "r2");
            let oct = Key::generate(KeyAlgorithm::A256Kw)
                .unwrap()
                .with_kid("k")
                .unwrap();
            let path = dir.write(&[&r1.to_jwk(), &r2.to_jwk(), &oct.to_jwk()]);
            let start = imports();
            let keyring = Keyring::from_file(&path).unwrap();
            assert_eq!(imports() - start, 2, "loading imports both");
            let before = keyring.snapshot();
            let token = keyring.seal(b"x").unwrap();
            for _ in 0..3 {
                keyring.reload_from_file(&path).unwrap();
            }
            assert_eq!(imports() - start, 2, "reloading imports none");
            for kid in ["r1", "r2", "k"] {
                assert!(
                    holds(&keyring, kid, before.get(kid).unwrap().key()),
                    "{kid}"
                );
            }
            assert_eq!(keyring.open(&token).unwrap().kid(), "r1");
            assert_eq!(keyring.snapshot().primary().seal_count(), 1);

            // The same keys in another order, with other states: the same
            // key objects, in their new places.
            let staged = jwk_with(&r1, |jwk| {
                jwk.insert("x-state".into(), "staged".into());
            });
            let path = dir.write(&[&oct.to_jwk(), &r2.to_jwk(), &staged]);
            keyring.reload_from_file(&path).unwrap();
            assert_eq!(imports() - start, 2);
            assert_eq!(keyring.primary_kid(), "k");
            assert_eq!(
                keyring.snapshot().get("r1").unwrap().state(),
                KeyState::Staged
            );
            assert!(holds(&keyring, "r1", before.get("r1").unwrap().key()));
        }

        #[test]
        fn a_changed_rsa_key_under_the_same_kid_is_imported_and_checked() {
            let dir = Scratch::new("reload-rsa-changed");
            let r1 = rsa(KeyAlgorithm::RsaOaep256, "r1");
            let path = dir.write(&[&r1.to_jwk()]);
            let keyring = Keyring::from_file(&path).unwrap();
            let old_token = keyring.seal(b"x").unwrap();
            let start = imports();

            // Other material under the same kid: imported, a new key.
            let other = rsa(KeyAlgorithm::RsaOaep256, "r1");
            let path = dir.write(&[&other.to_jwk()]);
            keyring.reload_from_file(&path).unwrap();
            assert_eq!(imports() - start, 1);
            assert_eq!(*keyring.snapshot().primary().key(), other);
            assert_eq!(
                keyring.open(&old_token).unwrap_err().kind(),
                RejectionKind::DecryptFailed
            );
            let token = keyring.seal(b"x").unwrap();

            // One private component changed (the rest the same): imported
            // and refused by the key check; the keyring stays as it was.
            for member in ["d", "p", "q", "dp", "dq", "qi"] {
                let swap = if member == "dp" { "dq" } else { "dp" };
                let broken = jwk_with(&other, |jwk| {
                    let value = jwk[swap].clone();
                    jwk.insert(member.into(), value);
                });
                let path = dir.write(&[&broken]);
                let err = keyring.reload_from_file(&path).unwrap_err().to_string();
                assert!(
                    err.contains("the RSA components do not form a valid key"),
                    "{member}: {err}"
                );
            }
            assert_eq!(imports() - start, 7);
            assert_eq!(keyring.open(&token).unwrap().kid(), "r1");

            // The same material bound to the other algorithm: a new key.
            let rebound = jwk_with(&other, |jwk| {
                jwk.insert("alg".into(), "RSA-OAEP".into());
            });
            keyring.reload_from_file(dir.write(&[&rebound])).unwrap();
            assert_eq!(imports() - start, 8);
            assert_eq!(
                keyring.snapshot().primary().key().alg(),
                KeyAlgorithm::RsaOaep
            );

            // The same material, but not for encryption: refused as an
            // import would refuse it.
            let signing = jwk_with(&other, |jwk| {
                jwk.insert("use".into(), "sig".into());
            });
            let err = keyring
                .reload_from_file(dir.write(&[&signing]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("do not allow encryption"), "{err}");
            assert_eq!(
                keyring.snapshot().primary().key().alg(),
                KeyAlgorithm::RsaOaep
            );
        }

        #[test]
        fn describing_a_key_set_reads_it_without_the_rsa_key_check() {
            let r1 = rsa(KeyAlgorithm::RsaOaep256, "r1");
            let oct = Key::generate(KeyAlgorithm::A128GcmKw)
                .unwrap()
                .with_kid("k")
                .unwrap();
            let staged = jwk_with(&oct, |jwk| {
                jwk.insert("x-state".into(), "staged".into());
                jwk.insert("x-promote-at".into(), 1_900_000_000u64.into());
                jwk.insert("x-created".into(), 1_800_000_000u64.into());
            });
            let set = format!("{{\"keys\":[{},{staged}]}}", &*r1.to_jwk());
            let now = from_unix_seconds(1_850_000_000);
            let start = imports();
            let described = KeySet::describe_jwk_set(&set, now).unwrap();
            assert_eq!(imports(), start, "no RSA key imported");
            let loaded = KeySet::from_jwk_set(&set, now).unwrap();
            assert_eq!(described.len(), loaded.len());
            for (info, entry) in described.iter().zip(loaded.iter()) {
                assert_eq!(info.kid(), entry.kid());
                assert_eq!(info.alg(), entry.key().alg());
                assert_eq!(info.enc(), entry.key().enc());
                assert_eq!(info.state(), entry.state());
                assert_eq!(info.created(), entry.created());
                assert_eq!(info.retired_at(), entry.retired_at());
                assert_eq!(info.promote_at(), entry.promote_at());
            }

            // With promotions due: as a keyring's snapshot shows the set.
            let due = |kid: &str, at: u64| {
                jwk_with(
                    &Key::generate(KeyAlgorithm::A256Kw)
                        .unwrap()
                        .with_kid(kid)
                        .unwrap(),
                    |jwk| {
                        jwk.insert("x-state".into(), "staged".into());
                        jwk.insert("x-promote-at".into(), at.into());
                    },
                )
            };
            let set = format!(
                "{{\"keys\":[{},{},{},{},{}]}}",
                &*r1.to_jwk(),
                due("s1", 1_840_000_000),
                due("s2", 1_849_999_999),
                due("s3", 1_850_000_001),
                due("s4", 1_830_000_000),
            );
            let described = KeySet::describe_jwk_set(&set, now).unwrap();
            let keyring = Keyring::from_set(
                KeySet::from_jwk_set(&set, now).unwrap(),
                Arc::new(ManualClock::at_unix(1_850_000_000)),
            );
            let snapshot = keyring.snapshot();
            let shown = |kid: &str, state, created, retired, promote| {
                (kid.to_owned(), state, created, retired, promote)
            };
            let from_snapshot: Vec<_> = snapshot
                .iter()
                .map(|e| {
                    shown(
                        e.kid(),
                        e.state(),
                        e.created(),
                        e.retired_at(),
                        e.promote_at(),
                    )
                })
                .collect();
            let from_description: Vec<_> = described
                .iter()
                .map(|k| {
                    shown(
                        k.kid(),
                        k.state(),
                        k.created(),
                        k.retired_at(),
                        k.promote_at(),
                    )
                })
                .collect();
            assert_eq!(from_description, from_snapshot);
            assert_eq!(from_description[0].0, "s2");
            assert_eq!(from_description[4].0, "s3");

            // Refused as loading refuses it, but for the key check.
            let small = {
                let small = openssl::rsa::Rsa::generate(1024).unwrap();
                let b = |n: &openssl::bn::BigNumRef| b64::encode(&n.to_vec());
                serde_json::json!({
                    "kty": "RSA", "kid": "small", "alg": "RSA-OAEP",
                    "n": b(small.n()), "e": b(small.e()), "d": b(small.d()),
                    "p": b(small.p().unwrap()), "q": b(small.q().unwrap()),
                    "dp": b(small.dmp1().unwrap()), "dq": b(small.dmq1().unwrap()),
                    "qi": b(small.iqmp().unwrap()),
                })
                .to_string()
            };
            let r1 = r1.to_jwk();
            let without_q = jwk_with(&Key::from_jwk(&r1).unwrap(), |jwk| {
                jwk.remove("q");
            });
            let promote_retired = jwk_with(&oct, |jwk| {
                jwk.insert("x-promote-at".into(), 1_900_000_000u64.into());
            });
            let oct = oct.to_jwk();
            for set in [
                "not json".to_owned(),
                r#"{"keys":[]}"#.to_owned(),
                r#"{"nokeys":[]}"#.to_owned(),
                r#"{"keys":[1]}"#.to_owned(),
                format!(r#"{{"keys":[{}, {}]}}"#, &*r1, &*r1),
                format!(r#"{{"keys":[{small}]}}"#),
                format!(r#"{{"keys":[{}, {without_q}]}}"#, &*oct),
                format!(r#"{{"keys":[{}, {promote_retired}]}}"#, &*r1),
                r#"{"keys":[{"kty":"RSA","alg":"RSA-OAEP"}]}"#.to_owned(),
                r#"{"keys":[{"kty":"oct","kid":"z","alg":"A128KW","k":"AAAAAAAAAAAAAAAAAAAAAA"}]}"#
                    .to_owned(),
            ] {
                let described = KeySet::describe_jwk_set(&set, now).unwrap_err().to_string();
                let loaded = KeySet::from_jwk_set(&set, now).unwrap_err().to_string();
                assert_eq!(described, loaded, "{set}");
            }
            // Inconsistent private components pass here, not in a load.
            let broken = jwk_with(&Key::from_jwk(&r1).unwrap(), |jwk| {
                let dq = jwk["dq"].clone();
                jwk.insert("dp".into(), dq);
            });
            let set = format!(r#"{{"keys":[{broken}]}}"#);
            assert!(KeySet::describe_jwk_set(&set, now).is_ok());
            assert!(KeySet::from_jwk_set(&set, now).is_err());
        }
    }
}

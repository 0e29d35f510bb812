//! The immutable key set a keyring publishes, and its JWK Set form:
//! import, export, and description without importing ([`KeyInfo`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::entry::KeyEntry;
use crate::alg::{ContentEncryption, KeyAlgorithm};
use crate::clock::{from_unix_seconds, unix_seconds, MAX_UNIX_SECONDS};
use crate::error::{KeyError, KeyProblem, KeyringError};
use crate::key::{Key, WipedJson};
use crate::key_state::KeyState;
#[cfg(doc)]
use crate::Keyring;

/// An immutable snapshot of the keyring: the primary first, then the
/// open-only keys in the order they were added.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub(super) entries: Vec<KeyEntry>,
    pub(super) index: HashMap<String, usize>,
    /// The earliest scheduled promotion, if any.
    pub(super) due: Option<u64>,
}

/// Up to this many keys, [`KeySet::get`] compares `kid`s one by one.
const LINEAR_LOOKUP_MAX: usize = 8;

impl KeySet {
    pub(super) fn build(entries: Vec<KeyEntry>) -> Result<KeySet, KeyringError> {
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

    /// The key with this `kid`: a look through the few keys of a usual
    /// ring (cheaper than hashing the `kid`), a map lookup in a larger one.
    pub fn get(&self, kid: &str) -> Option<&KeyEntry> {
        if self.entries.len() <= LINEAR_LOOKUP_MAX {
            return self.entries.iter().find(|entry| entry.kid() == kid);
        }
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
    pub(super) fn read_jwk_set(
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
                seals: 0,
                opens: 0,
                last_used: None,
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

/// What the keyring holds of one key, without its material
/// ([`Keyring::keys`]).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    kid: String,
    alg: KeyAlgorithm,
    enc: ContentEncryption,
    place: Place,
    seals: u64,
    opens: u64,
    last_used: Option<u64>,
}

impl KeyInfo {
    /// What a live key set holds of `entry`.
    pub(crate) fn of_entry(entry: &KeyEntry) -> KeyInfo {
        KeyInfo {
            kid: entry.kid().to_owned(),
            alg: entry.key.alg(),
            enc: entry.key.enc(),
            place: Place {
                state: entry.state,
                created: entry.created,
                retired_at: entry.retired_at,
                promote_at: entry.promote_at,
            },
            seals: entry.seal_count(),
            opens: entry.usage.opens(),
            last_used: entry.usage.last_used(),
        }
    }

    /// How many tokens this process sealed under the key since it was
    /// loaded ([`Keyring::keys`]); 0 for a key read from a file.
    pub fn seal_count(&self) -> u64 {
        self.seals
    }

    /// How many tokens this process opened under the key since it was
    /// loaded, session token cache hits included; 0 for a key read from a
    /// file.
    pub fn open_count(&self) -> u64 {
        self.opens
    }

    /// When this process last sealed or opened a token under the key;
    /// `None` before the first use, and for a key read from a file.
    pub fn last_used(&self) -> Option<SystemTime> {
        self.last_used.map(from_unix_seconds)
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key is bound to.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The content encryption the key seals with ([`Key::enc`]).
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn enc(&self) -> ContentEncryption {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::Keyring;

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

    #[cfg(feature = "rsa")]
    mod rsa {
        use super::*;
        use crate::b64;
        use crate::keyring::rsa_testing::{imports, jwk_with, rsa};

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

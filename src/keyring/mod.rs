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
//! * As a policy: [`Keyring::rotate_every`] rotates one process on a
//!   [`RotationPolicy`] by itself; `jwe-session keyring cycle` does the
//!   same for a fleet's key file.
//! * [`Keyring::prune`] drops retired keys once every token they sealed is
//!   past its deadline; dropped keys are zeroized.
//!
//! # A watched key file
//!
//! [`Keyring::watch_file`] keeps a keyring in sync with a JWK Set file,
//! reloaded within two seconds of a change (polled once a second).

mod entry;
mod policy;
mod ring;
mod set;
mod source;
mod watch;

pub use crate::key_state::KeyState;
#[cfg(feature = "internals")]
pub use entry::KeyEntry;
#[cfg(feature = "internals")]
pub use policy::CycleReport;
pub use policy::RotationPolicy;
pub use ring::Keyring;
#[cfg(feature = "internals")]
pub use ring::{DIR_SEAL_LIMIT, DIR_SEAL_WARNING};
pub use set::KeyInfo;
#[cfg(feature = "internals")]
pub use set::KeySet;
#[cfg(feature = "internals")]
pub use source::{read_key_file_bytes, MAX_KEY_FILE_LEN};
pub use watch::KeyFileWatch;

/// Helpers for the RSA unit tests of this module's files.
#[cfg(all(test, feature = "rsa"))]
mod rsa_testing {
    use serde_json::{Map, Value};

    use crate::alg::KeyAlgorithm;
    use crate::key::{Key, RSA_IMPORTS};

    pub(super) fn imports() -> u32 {
        RSA_IMPORTS.with(std::cell::Cell::get)
    }

    pub(super) fn rsa(alg: KeyAlgorithm, kid: &str) -> Key {
        Key::generate(alg).unwrap().with_kid(kid).unwrap()
    }

    /// `key`'s private JWK with `change` applied to its members.
    pub(super) fn jwk_with(key: &Key, change: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut jwk: Map<String, Value> = serde_json::from_str(&key.to_jwk()).unwrap();
        change(&mut jwk);
        Value::Object(jwk).to_string()
    }
}

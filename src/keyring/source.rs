//! Loading a keyring: from a JWK Set, a key file (and reloading it), or an
//! environment variable.

use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::entry::KeyEntry;
use super::ring::Keyring;
use super::set::KeySet;
use crate::alg::KeyAlgorithm;
use crate::b64;
use crate::clock::{unix_seconds, Clock};
use crate::error::KeyringError;
use crate::key::Key;
use crate::key_state::KeyState;

impl Keyring {
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
        let clock: Arc<dyn Clock> = crate::clock::system();
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
        let clock: Arc<dyn Clock> = crate::clock::system();
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
        let result = read_key_file(path).and_then(|text| {
            let known = self.inner.current.load_full();
            KeySet::read_jwk_set(&text, self.now(), Some(&known)).map_err(|e| KeyringError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        });
        match result {
            Ok(next) => {
                self.replace_set(next);
                Ok(())
            }
            Err(error) => {
                crate::metrics::key_reload_failed();
                Err(error)
            }
        }
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
    use crate::error::RejectionKind;

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
    fn key_files_are_read_with_a_cap_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("jwe-session-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.json");
        let err = Keyring::from_file(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.json"), "{err}");
        let good = dir.join("keys.json");
        let keyring = Keyring::new(
            Key::generate(KeyAlgorithm::A256Kw)
                .unwrap()
                .with_kid("k1")
                .unwrap(),
        );
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
        use crate::keyring::rsa_testing::{imports, jwk_with, rsa};

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
    }
}

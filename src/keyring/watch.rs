//! A key file the keyring keeps itself in sync with: [`Keyring::watch_file`].
//!
//! # Polling, not notification
//!
//! A thread of its own (std, no async runtime needed, so the same for axum,
//! actix-web or no framework) looks at the file once a second and reloads
//! it when it changed. Notification (inotify and its kin) was not chosen:
//! a Kubernetes secret volume changes by swapping a symlink two levels
//! above the file (`keys.json -> ..data/keys.json`, `..data ->
//! ..2026_01_01_00_00_00.123/`), which a watch on the file never hears of
//! and a watch on the directory hears of as unrelated events; a watch is
//! lost when the file it names is renamed over; network filesystems send
//! nothing; and it would be a dependency with a platform backend each. A
//! poll is a path resolution and one `stat` a second, and is right on
//! every one of those.
//!
//! What is compared: the path with every symlink resolved (a new
//! `..data` target is a new path), and that file's device, inode, length,
//! modification and status-change times. Any difference reloads the file
//! with [`Keyring::reload_from_file`], which keeps the keys the keyring
//! already holds (no RSA key is imported again) and leaves the keyring as
//! it was when the file does not load.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::ring::Keyring;
use crate::error::KeyringError;

/// How often a watched key file is looked at: a change is loaded within
/// this, plus the time the load takes.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What keeps a keyring in sync with a JWK Set file
/// ([`Keyring::watch_file`]).
///
/// Dropping it stops the watching (and waits for a reload in progress to
/// end); the keyring, and every clone of it, keeps the last keys loaded.
///
/// ```
/// use jwe_session::{Key, KeyAlgorithm, Keyring};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("jwe-session-watch-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("keys.json");
/// let keys = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?.with_kid("k1")?);
/// std::fs::write(&path, keys.to_jwk_set().as_bytes())?;
///
/// let (keyring, watch) = Keyring::watch_file(&path)?;
/// assert_eq!(keyring.primary_kid(), "k1");
/// assert_eq!(watch.reload_failures(), 0);
/// // Replace the file (write a temporary file, rename it over): within two
/// // seconds `keyring`, and every clone of it, holds its keys.
/// drop(watch); // no more reloads
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct KeyFileWatch {
    keyring: Keyring,
    path: PathBuf,
    failures: Arc<AtomicU64>,
    /// Dropped to stop the watcher: its wait ends at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keyring {
    /// A keyring loaded from a JWK Set file, as [`Keyring::from_file`]
    /// loads it, and kept in sync with the file while the returned
    /// [`KeyFileWatch`] lives.
    ///
    /// The file is looked at once a second, so a change is loaded within
    /// two: one written in place, renamed over the file (the atomic replace
    /// of `jwe-session keyring`), or a Kubernetes secret volume's update
    /// (the `..data` symlink swapped); every process watching the same file
    /// holds the same keys within two seconds of a change. A file that
    /// cannot be read, is not a valid JWK Set or holds no key is refused:
    /// the keyring keeps the last good keys, the failure is logged (at
    /// `warn`, naming the file and the problem, never the content) and
    /// counted ([`KeyFileWatch::reload_failures`]), and the file is loaded
    /// again at its next change. A reload keeps the keys the keyring
    /// already holds, with their seal counts, and imports only new or
    /// changed ones.
    ///
    /// The file is the source of truth: a change made in the process
    /// ([`Keyring::rotate`], [`Keyring::stage`], ...) lasts until the file
    /// next changes. Rotate in the file instead (`jwe-session keyring`).
    ///
    /// Errors as [`Keyring::from_file`] does when the file does not load
    /// now, and when the watching thread cannot be started.
    ///
    /// ```no_run
    /// use jwe_session::Keyring;
    /// # fn main() -> Result<(), jwe_session::KeyringError> {
    /// let (keyring, watch) = Keyring::watch_file("/etc/secrets/session/keys.json")?;
    /// // ... serve with `keyring` (clones share the keys and see every
    /// // reload), keeping `watch` alive as long ...
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch_file(path: impl AsRef<Path>) -> Result<(Keyring, KeyFileWatch), KeyringError> {
        let watch = KeyFileWatch::start(path.as_ref(), POLL_INTERVAL)?;
        Ok((watch.keyring.clone(), watch))
    }
}

impl KeyFileWatch {
    fn start(path: &Path, interval: Duration) -> Result<KeyFileWatch, KeyringError> {
        // Looked at before the read: a change after it is seen by the
        // first poll.
        let seen = Stamp::of(path);
        let keyring = Keyring::from_file(path)?;
        let failures = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = mpsc::channel();
        let watcher = Watcher {
            keyring: keyring.clone(),
            path: path.to_owned(),
            failures: Arc::clone(&failures),
            seen,
        };
        let thread = std::thread::Builder::new()
            .name("jwe-session-key-watch".to_owned())
            .spawn(move || watcher.run(&stopped, interval))
            .map_err(|e| KeyringError::File {
                path: path.display().to_string(),
                reason: format!("could not start watching: {e}"),
            })?;
        Ok(KeyFileWatch {
            keyring,
            path: path.to_owned(),
            failures,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// How many times the file changed into something that could not be
    /// loaded (unreadable, missing, not a valid JWK Set, no key) since the
    /// watching began: each time, the keyring kept its last good keys.
    /// Counted once per change of the file, not once per look at it.
    ///
    /// ```
    /// # use jwe_session::{Key, KeyAlgorithm, Keyring};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("jwe-session-watch-doc-f-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("keys.json");
    /// # let keys = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
    /// # std::fs::write(&path, keys.to_jwk_set().as_bytes())?;
    /// let (keyring, watch) = Keyring::watch_file(&path)?;
    /// if watch.reload_failures() > 0 {
    ///     // alert: the key file on this machine does not load
    /// }
    /// # assert_eq!(watch.reload_failures(), 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reload_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for KeyFileWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFileWatch")
            .field("path", &self.path)
            .field("keyring", &self.keyring)
            .field("reload_failures", &self.reload_failures())
            .finish()
    }
}

impl Drop for KeyFileWatch {
    fn drop(&mut self) {
        // Disconnecting ends the watcher's wait at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A reload in progress ends first; after this, none starts.
            let _ = thread.join();
        }
    }
}

/// The watching thread's state.
struct Watcher {
    keyring: Keyring,
    path: PathBuf,
    failures: Arc<AtomicU64>,
    /// The file as it was at the last load, or attempt to load.
    seen: Stamp,
}

impl Watcher {
    /// Looks at the file every `interval` until `stop` is disconnected.
    fn run(mut self, stop: &mpsc::Receiver<()>, interval: Duration) {
        loop {
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => self.poll(),
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Reloads the file if it changed since it was last seen.
    fn poll(&mut self) {
        let now = Stamp::of(&self.path);
        if now == self.seen {
            return;
        }
        let result = match &now {
            Stamp::Unreadable(kind) => Err(KeyringError::File {
                path: self.path.display().to_string(),
                reason: std::io::Error::from(*kind).to_string(),
            }),
            Stamp::File(_) => self.keyring.reload_from_file(&self.path),
        };
        // Not tried again until it changes again: one failure, one log.
        self.seen = now;
        match result {
            Ok(()) => {
                let keys = self.keyring.keys();
                tracing::info!(
                    path = %self.path.display(),
                    primary = keys.first().map_or("-", |k| k.kid()),
                    keys = keys.len(),
                    "key file changed: keys reloaded"
                );
            }
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                // The error names the file and the problem, never a secret.
                tracing::warn!(
                    error = %error,
                    failures,
                    "key file changed but does not load: keeping the last good keys"
                );
            }
        }
    }
}

/// What a poll compares: the file's resolved path and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stamp {
    /// The path does not resolve, or its metadata cannot be read.
    Unreadable(std::io::ErrorKind),
    File(FileStamp),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    /// With every symlink resolved: a swapped `..data` is another path.
    target: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    /// Device, inode and status-change time (seconds, nanoseconds): a file
    /// renamed over is another inode; a `chmod` changes the status time.
    #[cfg(unix)]
    unix: (u64, u64, i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Stamp {
        let target = match std::fs::canonicalize(path) {
            Ok(target) => target,
            Err(e) => return Stamp::Unreadable(e.kind()),
        };
        let metadata = match std::fs::metadata(&target) {
            Ok(metadata) => metadata,
            Err(e) => return Stamp::Unreadable(e.kind()),
        };
        #[cfg(unix)]
        let unix = {
            use std::os::unix::fs::MetadataExt as _;
            (
                metadata.dev(),
                metadata.ino(),
                metadata.ctime(),
                metadata.ctime_nsec(),
            )
        };
        Stamp::File(FileStamp {
            target,
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            unix,
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::alg::KeyAlgorithm;
    use crate::key::Key;

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("jwe-session-watch-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn jwk_set(kid: &str) -> String {
        let key = Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid(kid)
            .unwrap();
        Keyring::new(key).to_jwk_set().to_string()
    }

    /// A watcher that never runs on its own: each `poll` is one look.
    fn watcher(path: &Path) -> Watcher {
        Watcher {
            keyring: Keyring::from_file(path).unwrap(),
            path: path.to_owned(),
            failures: Arc::default(),
            seen: Stamp::of(path),
        }
    }

    #[test]
    fn a_symlink_swap_two_levels_up_is_a_change() {
        let dir = Scratch::new("stamp-symlink");
        for (name, kid) in [("..2026_01", "a"), ("..2026_02", "b")] {
            std::fs::create_dir(dir.0.join(name)).unwrap();
            // The same length, and possibly the same times: only the
            // resolved path and the inode differ.
            std::fs::write(dir.0.join(name).join("keys.json"), jwk_set(kid)).unwrap();
        }
        symlink("..2026_01", dir.0.join("..data")).unwrap();
        symlink("..data/keys.json", dir.0.join("keys.json")).unwrap();
        let path = dir.0.join("keys.json");
        let mut watcher = watcher(&path);
        assert_eq!(watcher.keyring.primary_kid(), "a");
        watcher.poll();
        assert_eq!(watcher.keyring.primary_kid(), "a");

        symlink("..2026_02", dir.0.join("..data_tmp")).unwrap();
        std::fs::rename(dir.0.join("..data_tmp"), dir.0.join("..data")).unwrap();
        assert_ne!(Stamp::of(&path), watcher.seen);
        watcher.poll();
        assert_eq!(watcher.keyring.primary_kid(), "b");
        assert_eq!(watcher.failures.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_bad_file_counts_once_per_change_and_keeps_the_keys() {
        let dir = Scratch::new("stamp-bad");
        let path = dir.0.join("keys.json");
        std::fs::write(&path, jwk_set("a")).unwrap();
        let mut watcher = watcher(&path);

        let replace = |text: &str| {
            let tmp = dir.0.join("keys.json.tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        let failures = |w: &Watcher| w.failures.load(Ordering::Relaxed);
        replace(r#"{"keys":[]}"#);
        watcher.poll();
        watcher.poll();
        assert_eq!(
            (failures(&watcher), watcher.keyring.primary_kid()),
            (1, "a".to_owned())
        );
        std::fs::remove_file(&path).unwrap();
        watcher.poll();
        watcher.poll();
        assert_eq!(
            (failures(&watcher), watcher.keyring.primary_kid()),
            (2, "a".to_owned())
        );
        replace(&jwk_set("b"));
        watcher.poll();
        assert_eq!(
            (failures(&watcher), watcher.keyring.primary_kid()),
            (2, "b".to_owned())
        );
    }

    #[test]
    fn the_handle_shows_no_secret_and_stops_on_drop() {
        let dir = Scratch::new("handle");
        let path = dir.0.join("keys.json");
        let text = jwk_set("a");
        std::fs::write(&path, &text).unwrap();
        let watch = KeyFileWatch::start(&path, Duration::from_secs(3600)).unwrap();
        let shown = format!("{watch:?}");
        let secret = text
            .split("\"k\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            shown.contains("keys.json") && !shown.contains(secret),
            "{shown}"
        );
        // The hour-long wait ends at once.
        let start = std::time::Instant::now();
        drop(watch);
        assert!(start.elapsed() < Duration::from_secs(5));

        let err = KeyFileWatch::start(&dir.0.join("missing.json"), POLL_INTERVAL).unwrap_err();
        assert!(err.to_string().contains("missing.json"), "{err}");
    }
}

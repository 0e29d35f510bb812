//! Keyring files: bounded reads, an exclusive lock for read-modify-write, and
//! atomic, durable writes (a temporary file in the same directory, written
//! with mode 0600, synced, renamed into place, then the directory synced).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use jwe_session::keyring::{self, KeyInfo, KeySet, Keyring};
use tempfile::NamedTempFile;
use zeroize::Zeroizing;

use crate::Failure;

/// How long a keyring change (`rotate`, `stage`, `promote`, `prune`) waits
/// for another process to release the keyring.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Whether anything (even a dangling symlink) is at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// The refusal to overwrite `path`.
pub(crate) fn exists_error(path: &Path) -> Failure {
    Failure::Usage(format!(
        "refusing to overwrite existing file {}",
        path.display()
    ))
}

/// A failure reading or writing the key file `path`.
fn file_error(path: &Path, error: &io::Error) -> Failure {
    Failure::Usage(format!("key file {}: {error}", path.display()))
}

/// Loads a keyring from a JWK Set file, reading at most
/// [`keyring::MAX_KEY_FILE_LEN`] bytes. Errors name the file, never a secret.
pub(crate) fn load_keyring(path: &Path) -> Result<Keyring, Failure> {
    let mut file = File::open(path).map_err(|e| file_error(path, &e))?;
    let contents = read_bounded(&mut file, path)?;
    parse_keyring(path, &contents)
}

/// Parses the contents of the key file `path`.
pub(crate) fn parse_keyring(path: &Path, contents: &[u8]) -> Result<Keyring, Failure> {
    let text = std::str::from_utf8(contents)
        .map_err(|_| Failure::Usage(format!("key file {}: not UTF-8 text", path.display())))?;
    Keyring::from_jwk_set(text)
        .map_err(|e| Failure::Usage(format!("key file {}: {e}", path.display())))
}

/// Describes the keys of a JWK Set file without importing them: every
/// check a load makes but OpenSSL's RSA key check (70 ms to 0.5 s a key),
/// for commands that only show what the file holds and never use a key.
/// Errors name the file, never a secret.
pub(crate) fn describe_keyring(path: &Path) -> Result<Vec<KeyInfo>, Failure> {
    let mut file = File::open(path).map_err(|e| file_error(path, &e))?;
    let contents = read_bounded(&mut file, path)?;
    let text = std::str::from_utf8(&contents)
        .map_err(|_| Failure::Usage(format!("key file {}: not UTF-8 text", path.display())))?;
    KeySet::describe_jwk_set(text, SystemTime::now())
        .map_err(|e| Failure::Usage(format!("key file {}: {e}", path.display())))
}

/// Reads all of `file` (the key file `path`) into a buffer wiped on drop.
fn read_bounded(file: &mut File, path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    keyring::read_key_file_bytes(file).map_err(|e| file_error(path, &e))
}

/// A keyring file held under an exclusive lock, with its contents as read
/// under that lock. The lock is released when this is dropped.
pub(crate) struct Locked {
    /// The open, locked file.
    _file: File,
    /// Where the file really is (symlinks resolved): the file replaced.
    target: PathBuf,
    /// The path as the user gave it, for messages.
    shown: PathBuf,
    /// The file's contents.
    pub(crate) contents: Zeroizing<Vec<u8>>,
}

/// Opens and exclusively locks the keyring file `path`, so that concurrent
/// rotations are serialized instead of losing each other's keys.
pub(crate) fn lock(path: &Path) -> Result<Locked, Failure> {
    let target = fs::canonicalize(path).map_err(|e| file_error(path, &e))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let mut file = File::open(&target).map_err(|e| file_error(path, &e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(Failure::Usage(format!(
                        "key file {}: still locked by another process after {} s",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            // A file system without locks: carry on unlocked.
            Err(fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(fs::TryLockError::Error(e)) => return Err(file_error(path, &e)),
        }
        // Another rotation may have replaced the file between our open and
        // our lock; then the lock is on a stale inode: try again.
        if is_current(&file, &target) {
            let contents = read_bounded(&mut file, path)?;
            return Ok(Locked {
                _file: file,
                target,
                shown: path.to_owned(),
                contents,
            });
        }
    }
}

/// Whether `file` is still the file at `path`.
#[cfg(unix)]
fn is_current(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `file` is still the file at `path`.
#[cfg(not(unix))]
fn is_current(_file: &File, _path: &Path) -> bool {
    true
}

/// The directory a file at `path` lives in.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes `contents` to a new temporary file in `dir`, mode 0600, synced
/// to disk. It is deleted again unless persisted.
fn write_temp(dir: &Path, shown: &Path, contents: &[u8]) -> Result<NamedTempFile, Failure> {
    let mut temp = tempfile::Builder::new()
        .prefix(".jwe-session-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            Failure::Usage(format!(
                "key file {}: cannot create a temporary file in {}: {e}",
                shown.display(),
                dir.display()
            ))
        })?;
    restrict(temp.as_file()).map_err(|e| file_error(shown, &e))?;
    temp.as_file_mut()
        .write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| file_error(shown, &e))?;
    Ok(temp)
}

/// Makes `file` readable and writable by its owner only.
#[cfg(unix)]
fn restrict(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

/// Makes `file` readable and writable by its owner only.
#[cfg(not(unix))]
fn restrict(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Syncs the directory `dir`, so a rename into it survives a crash.
#[cfg(unix)]
fn sync_dir(dir: &Path, shown: &Path) -> Result<(), Failure> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        Failure::Usage(format!(
            "key file {}: written, but its directory {} could not be synced: {e}",
            shown.display(),
            dir.display()
        ))
    })
}

/// Syncs the directory `dir`, so a rename into it survives a crash.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path, _shown: &Path) -> Result<(), Failure> {
    Ok(())
}

/// Creates the file `path` with `contents`, atomically and never over an
/// existing file.
pub(crate) fn create_new(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    let dir = parent_dir(path);
    let temp = write_temp(dir, path, contents)?;
    temp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            exists_error(path)
        } else {
            file_error(path, &e.error)
        }
    })?;
    sync_dir(dir, path)
}

/// Replaces the locked keyring file with `contents`, atomically.
pub(crate) fn replace(locked: &Locked, contents: &[u8]) -> Result<(), Failure> {
    let dir = parent_dir(&locked.target);
    let temp = write_temp(dir, &locked.shown, contents)?;
    temp.persist(&locked.target)
        .map_err(|e| file_error(&locked.shown, &e.error))?;
    sync_dir(dir, &locked.shown)
}

//! A watched key file ([`Keyring::watch_file`]), with its real once-a-second
//! poll: a file renamed over and a Kubernetes secret volume update are
//! picked up; a file that does not load (not JSON, no key, a refused key, a
//! dangling link) keeps the last good keys, is counted and logged without
//! its content; a good file is then picked up again; a dropped handle
//! reloads nothing more.
//!
//! Waits are bounded by a deadline (5 s, looking every 20 ms), never a
//! fixed sleep: the watcher promises a change within 2 s.
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use jwe_session::{Key, KeyAlgorithm, KeyState, Keyring};
use serde_json::Value;

/// A scratch directory under the system's temporary directory, removed on
/// drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "jwe-session-key-file-watch-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Replaces `name` atomically with `text`: a temporary file renamed
    /// over it, as `jwe-session keyring` writes its file.
    fn replace(&self, name: &str, text: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(kid: &str) -> Key {
    Key::generate(KeyAlgorithm::A256Kw)
        .unwrap()
        .with_kid(kid)
        .unwrap()
}

/// A JWK Set of `keys`, the first the primary, the others retired.
fn jwk_set(keys: &[&Key]) -> String {
    let copy = |key: &Key| Key::from_jwk(&key.to_jwk()).unwrap();
    let keyring = Keyring::new(copy(keys[0]));
    for key in &keys[1..] {
        keyring.stage(copy(key)).unwrap();
        keyring.retire(key.kid()).unwrap();
    }
    keyring.to_jwk_set().to_string()
}

/// Waits until `done`, at most 5 s, looking every 20 ms.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// What the watchers of this test binary log, from every thread.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .init();
        logs
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines that mention `dir`.
fn log_lines_about(dir: &Path) -> Vec<String> {
    let logs = logs().lock().unwrap();
    let dir = dir.display().to_string();
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|line| line.contains(&dir))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_file_renamed_over_is_picked_up_keeping_the_keys_it_had() {
    let dir = Scratch::new("rename");
    let a = key("a");
    dir.replace("keys.json", &jwk_set(&[&a]));
    let (keyring, watch) = Keyring::watch_file(dir.path("keys.json")).unwrap();
    assert_eq!(keyring.primary_kid(), "a");
    let token = keyring.seal(b"before").unwrap();

    let b = key("b");
    dir.replace("keys.json", &jwk_set(&[&b, &a]));
    wait_for("the renamed file's primary", || {
        keyring.primary_kid() == "b"
    });
    let opened = keyring.open(&token).unwrap();
    assert_eq!((opened.kid(), opened.key_state()), ("a", KeyState::Retired));
    // "a" is the same key object, with its seal count: not imported again.
    let keys = keyring.keys();
    assert_eq!((keys[1].kid(), keys[1].seal_count()), ("a", 1));
    assert_eq!(watch.reload_failures(), 0);

    // And again: the watcher goes on.
    let c = key("c");
    dir.replace("keys.json", &jwk_set(&[&c, &b]));
    wait_for("the second renamed file's primary", || {
        keyring.primary_kid() == "c"
    });
    assert!(keyring.open(&token).is_err(), "\"a\" left the file");
    assert_eq!(watch.reload_failures(), 0);
}

/// A Kubernetes secret volume: `keys.json -> ..data/keys.json`, `..data ->
/// ..<timestamp>/`; an update writes a new timestamped directory, points a
/// new link at it, renames that link over `..data`, and removes the old
/// directory.
struct SecretVolume {
    dir: Scratch,
    version: u32,
}

impl SecretVolume {
    fn new(name: &str, keys: &str) -> SecretVolume {
        let mut volume = SecretVolume {
            dir: Scratch::new(name),
            version: 0,
        };
        volume.update(keys);
        symlink("..data/keys.json", volume.dir.path("keys.json")).unwrap();
        volume
    }

    fn timestamped(version: u32) -> String {
        format!("..2026_01_01_00_00_{version:02}.000000{version:03}")
    }

    fn update(&mut self, keys: &str) {
        self.version += 1;
        let new = Self::timestamped(self.version);
        std::fs::create_dir(self.dir.path(&new)).unwrap();
        std::fs::write(self.dir.path(&new).join("keys.json"), keys).unwrap();
        symlink(&new, self.dir.path("..data_tmp")).unwrap();
        std::fs::rename(self.dir.path("..data_tmp"), self.dir.path("..data")).unwrap();
        if self.version > 1 {
            let old = Self::timestamped(self.version - 1);
            std::fs::remove_dir_all(self.dir.path(&old)).unwrap();
        }
    }
}

#[test]
fn a_kubernetes_secret_volume_update_is_picked_up() {
    let a = key("a");
    let mut volume = SecretVolume::new("k8s", &jwk_set(&[&a]));
    let path = volume.dir.path("keys.json");
    assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
    let (keyring, watch) = Keyring::watch_file(&path).unwrap();
    assert_eq!(keyring.primary_kid(), "a");

    let b = key("b");
    volume.update(&jwk_set(&[&b, &a]));
    wait_for("the swapped ..data's primary", || {
        keyring.primary_kid() == "b"
    });
    let c = key("c");
    volume.update(&jwk_set(&[&c, &b]));
    wait_for("the swapped-again ..data's primary", || {
        keyring.primary_kid() == "c"
    });
    assert_eq!(
        keyring
            .keys()
            .iter()
            .map(|k| k.kid().to_owned())
            .collect::<Vec<_>>(),
        ["c", "b"]
    );
    assert_eq!(watch.reload_failures(), 0);
}

#[test]
fn a_file_that_does_not_load_keeps_the_last_good_keys_until_a_good_one() {
    logs();
    let dir = Scratch::new("bad");
    let a = key("a");
    dir.replace("keys.json", &jwk_set(&[&a]));
    let (keyring, watch) = Keyring::watch_file(dir.path("keys.json")).unwrap();
    let token = keyring.seal(b"x").unwrap();

    // Secrets the bad files hold, which no log may show.
    let leaked = key("leaked");
    let leaked_jwk: Value = serde_json::from_str(&leaked.to_jwk()).unwrap();
    let secret = leaked_jwk["k"].as_str().unwrap().to_owned();
    let mut refused = leaked_jwk.clone();
    refused["alg"] = "A128KW".into(); // a 32-byte key for a 16-byte algorithm
    let bad_files = [
        ("not JSON", format!("{{\"keys\":[{}", &*leaked.to_jwk())),
        ("no key", r#"{"keys":[]}"#.to_owned()),
        ("a refused key", format!("{{\"keys\":[{refused}]}}")),
    ];
    for (failures, (what, text)) in (1..).zip(&bad_files) {
        dir.replace("keys.json", text);
        wait_for(what, || watch.reload_failures() == failures);
        assert_eq!(keyring.primary_kid(), "a", "{what}");
        assert_eq!(keyring.keys().len(), 1, "{what}");
        assert_eq!(keyring.open(&token).unwrap().kid(), "a", "{what}");
    }
    // A dangling link: the file is gone.
    symlink(dir.path("nowhere.json"), dir.path(".dangling")).unwrap();
    std::fs::rename(dir.path(".dangling"), dir.path("keys.json")).unwrap();
    wait_for("a dangling link", || watch.reload_failures() == 4);
    assert_eq!(keyring.primary_kid(), "a");

    // A good file again.
    let b = key("b");
    dir.replace("keys.json", &jwk_set(&[&b, &a]));
    wait_for("the good file's primary", || keyring.primary_kid() == "b");
    assert_eq!(keyring.open(&token).unwrap().key_state(), KeyState::Retired);
    assert_eq!(watch.reload_failures(), 4, "each bad file counted once");

    let lines = log_lines_about(&dir.0);
    let warnings: Vec<_> = lines.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 4, "{lines:#?}");
    assert!(
        warnings
            .iter()
            .all(|l| l.contains("keeping the last good keys") && l.contains("keys.json")),
        "{warnings:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("keys reloaded")),
        "{lines:#?}"
    );
    for line in &lines {
        assert!(!line.contains(&secret), "a log line shows a secret: {line}");
        assert!(!line.contains(&secret[..16]), "{line}");
    }
    let shown = format!("{watch:?}");
    assert!(shown.contains("reload_failures: 4") && !shown.contains(&secret));
}

#[test]
fn a_dropped_handle_reloads_nothing_more() {
    let dir = Scratch::new("drop");
    let a = key("a");
    dir.replace("keys.json", &jwk_set(&[&a]));
    let (stopped, dropped) = Keyring::watch_file(dir.path("keys.json")).unwrap();
    // A second watch of the same file, alive: it shows when a live
    // watcher would have reloaded.
    let (live, _watch) = Keyring::watch_file(dir.path("keys.json")).unwrap();
    let start = Instant::now();
    drop(dropped);
    assert!(start.elapsed() < Duration::from_secs(2), "drop waits");

    let b = key("b");
    dir.replace("keys.json", &jwk_set(&[&b, &a]));
    wait_for("the live watch, first change", || live.primary_kid() == "b");
    // Two more changes seen by the live watch: the polls that saw them are
    // at least one interval apart, so at least two whole intervals have
    // passed since the first change was written; a live watcher would have
    // looked in each.
    let c = key("c");
    dir.replace("keys.json", &jwk_set(&[&c, &b, &a]));
    wait_for("the live watch, second change", || {
        live.primary_kid() == "c"
    });
    let d = key("d");
    dir.replace("keys.json", &jwk_set(&[&d, &c, &b, &a]));
    wait_for("the live watch, third change", || live.primary_kid() == "d");
    assert_eq!(stopped.primary_kid(), "a");
    assert_eq!(stopped.keys().len(), 1);
}

//! Drives the real `jwe-session` binary.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jwe_session::{
    ContentEncryption, Key, KeyAlgorithm, KeyState, Keyring, ManualClock, SealOptions,
};
use serde_json::Value;

const ENV: &str = "JWE_SESSION_KEYS";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// Asserts the exit code and that stderr is exactly one line.
    #[track_caller]
    fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:?}");
        assert!(self.stderr.starts_with("jwe-session: "), "{self:?}");
        self
    }
}

/// The binary, with no keys in its environment.
fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwe-session"));
    command.env_remove(ENV);
    command
}

/// Runs `args`, feeding `stdin`. Never accepts a panic or a signal.
#[track_caller]
fn run_with(mut command: Command, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // The binary may stop reading early (a refused oversized input): a
    // broken pipe here is fine.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("{args:?} killed by a signal: {stderr}"));
    Run {
        code,
        stdout: output.stdout,
        stderr,
    }
}

#[track_caller]
fn run(args: &[&str], stdin: &[u8]) -> Run {
    run_with(bin(), args, stdin)
}

#[track_caller]
fn run_env(env: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut command = bin();
    command.env(ENV, env);
    run_with(command, args, stdin)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A temporary directory with a fresh keyring file `keys.json`.
fn keyring(args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    let mut all = vec!["keyring", "init", "--file", s(&file)];
    all.extend_from_slice(args);
    run(&all, b"").ok();
    (dir, file)
}

/// Every secret member of every key in a JWK Set file.
fn secrets(file: &Path) -> Vec<String> {
    let set: Value = serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap();
    let mut out = Vec::new();
    for key in set["keys"].as_array().unwrap() {
        for member in ["k", "d", "p", "q", "dp", "dq", "qi"] {
            if let Some(value) = key[member].as_str() {
                out.push(value.to_owned());
            }
        }
    }
    assert!(!out.is_empty());
    out
}

#[cfg(unix)]
fn mode(file: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(file).unwrap().permissions().mode() & 0o777
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn seal_with_file(file: &Path, claims: &str) -> String {
    let run = run(&["--keys", s(file), "seal"], claims.as_bytes()).ok();
    let out = run.out();
    assert!(
        out.ends_with('\n') && out.trim().lines().count() == 1,
        "{out:?}"
    );
    out.trim().to_owned()
}

/// `keyring list` of `file`, which must succeed.
fn key_list(file: &Path) -> String {
    run(&["keyring", "list", "--file", s(file)], b"").ok().out()
}

fn open_with_file(file: &Path, token: &str) -> Value {
    run(&["--keys", s(file), "open"], token.as_bytes())
        .ok()
        .json()
}

fn claims_exp(offset: i64) -> String {
    format!(r#"{{"sub":"alice","exp":{}}}"#, now() + offset)
}

#[test]
fn init_creates_a_0600_file_and_refuses_to_overwrite() {
    let (dir, file) = keyring(&["--kid", "first"]);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let keyring = Keyring::from_file(&file).unwrap();
    assert_eq!(keyring.primary_kid(), "first");
    assert_eq!(keyring.snapshot().len(), 1);
    assert_eq!(
        keyring.snapshot().primary().key().alg(),
        KeyAlgorithm::A256Kw
    );
    let before = fs::read(&file).unwrap();

    let again = run(&["keyring", "init", "--file", s(&file)], b"").fails(2);
    assert!(again.stderr.contains(s(&file)), "{again:?}");
    assert_eq!(fs::read(&file).unwrap(), before);
    // No temporary file is left behind.
    assert_eq!(listing(dir.path()), ["keys.json"]);

    // A missing directory is a clear error too.
    let nowhere = dir.path().join("missing").join("keys.json");
    let run = run(&["keyring", "init", "--file", s(&nowhere)], b"").fails(2);
    assert!(run.stderr.contains(s(&nowhere)), "{run:?}");
}

#[test]
fn rotate_keeps_old_keys_and_the_file_stays_valid_and_0600() {
    let (dir, file) = keyring(&["--kid", "k1"]);
    let second = run(&["keyring", "rotate", "--file", s(&file)], b"")
        .ok()
        .out();
    let second = second.trim();
    assert!(!second.is_empty() && second != "k1");
    let third = run(
        &[
            "keyring",
            "rotate",
            "--file",
            s(&file),
            "--alg",
            "A128GCMKW",
            "--kid",
            "k3",
        ],
        b"",
    )
    .ok();
    assert_eq!(third.out(), "k3\n");

    let list = key_list(&file);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["k3", "A128GCMKW", "primary", "-"],
            vec![second, "A256KW", "retired", "-"],
            vec!["k1", "A256KW", "retired", "-"],
        ]
    );

    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let keyring = Keyring::from_file(&file).unwrap();
    assert_eq!(keyring.primary_kid(), "k3");
    assert_eq!(
        keyring.snapshot().get("k1").unwrap().state(),
        KeyState::Retired
    );
    assert_eq!(listing(dir.path()), ["keys.json"]);

    // A kid already in the ring is refused and the file is left alone.
    let before = fs::read(&file).unwrap();
    let dup = run(
        &["keyring", "rotate", "--file", s(&file), "--kid", "k1"],
        b"",
    )
    .fails(2);
    assert!(dup.stderr.contains("k1"), "{dup:?}");
    assert_eq!(fs::read(&file).unwrap(), before);
    assert_eq!(listing(dir.path()), ["keys.json"]);
}

#[test]
fn rotate_without_alg_keeps_the_primary_algorithm() {
    let (_dir, file) = keyring(&["--alg", "A128GCM"]);
    run(&["keyring", "rotate", "--file", s(&file)], b"").ok();
    let keyring = Keyring::from_file(&file).unwrap();
    let set = keyring.snapshot();
    assert_eq!(set.len(), 2);
    for entry in set.iter() {
        assert_eq!(entry.key().alg(), KeyAlgorithm::Dir);
        assert_eq!(entry.key().enc(), ContentEncryption::A128Gcm);
    }
}

#[test]
fn rotate_of_a_missing_or_broken_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let run1 = run(&["keyring", "rotate", "--file", s(&missing)], b"").fails(2);
    assert!(run1.stderr.contains(s(&missing)), "{run1:?}");
    assert!(!missing.exists());

    let broken = dir.path().join("broken.json");
    fs::write(&broken, "{\"keys\":[]}").unwrap();
    let run2 = run(&["keyring", "rotate", "--file", s(&broken)], b"").fails(2);
    assert!(run2.stderr.contains(s(&broken)), "{run2:?}");
    assert_eq!(fs::read_to_string(&broken).unwrap(), "{\"keys\":[]}");
}

#[test]
fn concurrent_rotations_lose_no_key() {
    let (_dir, file) = keyring(&[]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            bin()
                .args(["keyring", "rotate", "--file", s(&file)])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    let keyring = Keyring::from_file(&file).unwrap();
    assert_eq!(keyring.snapshot().len(), 5);
}

#[test]
fn list_prints_no_secret() {
    let (_dir, file) = keyring(&["--alg", "RSA-OAEP-256"]);
    run(
        &["keyring", "rotate", "--file", s(&file), "--alg", "A256GCM"],
        b"",
    )
    .ok();
    let list = key_list(&file);
    assert_eq!(list.lines().count(), 2);
    for line in list.lines() {
        assert_eq!(line.split('\t').count(), 4, "{line}");
    }
    assert!(list.contains("\tRSA-OAEP-256\tretired\t-\n"), "{list}");
    assert!(list.contains("\tdir\tprimary\t-\n"), "{list}");
    for secret in secrets(&file) {
        assert!(!list.contains(&secret));
    }
}

/// `keyring list` uses no key, so it reads the file without OpenSSL's RSA
/// key check (70 ms to 0.5 s a key); `seal` and `open` use the keys, so
/// they import and check them. A key whose private components do not fit
/// together shows which does which.
#[test]
fn list_skips_the_rsa_key_check_that_seal_and_open_make() {
    let (dir, file) = keyring(&["--alg", "RSA-OAEP-256", "--kid", "r1"]);
    let mut set: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    let key = &mut set["keys"][0];
    key["dp"] = key["dq"].clone();
    let broken = dir.path().join("broken.json");
    fs::write(&broken, set.to_string()).unwrap();

    let list = run(&["keyring", "list", "--file", s(&broken)], b"")
        .ok()
        .out();
    assert_eq!(list, "r1\tRSA-OAEP-256\tprimary\t-\n");
    for args in [&["seal"][..], &["open"]] {
        let mut all = vec!["--keys", s(&broken)];
        all.extend_from_slice(args);
        let failed = run(&all, b"{}").fails(2);
        assert!(
            failed
                .stderr
                .contains("the RSA components do not form a valid key"),
            "{failed:?}"
        );
    }
    // A change to the file is checked too.
    let rotate = run(&["keyring", "rotate", "--file", s(&broken)], b"").fails(2);
    assert!(
        rotate.stderr.contains("do not form a valid key"),
        "{rotate:?}"
    );
}

/// `keyring list` shows the states as they are now: a promotion the file
/// schedules in the past is applied, as any process loading the file
/// applies it.
#[test]
fn list_applies_a_promotion_that_is_due() {
    let (_dir, file) = keyring(&["--kid", "k1"]);
    run(
        &["keyring", "stage", "--file", s(&file), "--kid", "k2"],
        b"",
    )
    .ok();
    let mut set: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    set["keys"][1]["x-promote-at"] = Value::from(now() - 60);
    fs::write(&file, set.to_string()).unwrap();
    let list = key_list(&file);
    assert_eq!(list, "k2\tA256KW\tprimary\t-\nk1\tA256KW\tretired\t-\n");
}

#[test]
fn keygen_makes_a_valid_jwk_for_every_alg() {
    let cases = [
        ("dir", KeyAlgorithm::Dir, ContentEncryption::A256Gcm),
        ("A128GCM", KeyAlgorithm::Dir, ContentEncryption::A128Gcm),
        ("A192GCM", KeyAlgorithm::Dir, ContentEncryption::A192Gcm),
        ("A256GCM", KeyAlgorithm::Dir, ContentEncryption::A256Gcm),
        ("A128KW", KeyAlgorithm::A128Kw, ContentEncryption::A256Gcm),
        ("A192KW", KeyAlgorithm::A192Kw, ContentEncryption::A256Gcm),
        ("A256KW", KeyAlgorithm::A256Kw, ContentEncryption::A256Gcm),
        (
            "A128GCMKW",
            KeyAlgorithm::A128GcmKw,
            ContentEncryption::A256Gcm,
        ),
        (
            "A192GCMKW",
            KeyAlgorithm::A192GcmKw,
            ContentEncryption::A256Gcm,
        ),
        (
            "A256GCMKW",
            KeyAlgorithm::A256GcmKw,
            ContentEncryption::A256Gcm,
        ),
        (
            "RSA-OAEP",
            KeyAlgorithm::RsaOaep,
            ContentEncryption::A256Gcm,
        ),
        (
            "RSA-OAEP-256",
            KeyAlgorithm::RsaOaep256,
            ContentEncryption::A256Gcm,
        ),
    ];
    for (name, alg, enc) in cases {
        let out = run(&["keygen", "--alg", name, "--kid", "my-key"], b"")
            .ok()
            .out();
        assert!(out.ends_with("}\n") && out.lines().count() == 1, "{out}");
        let key = Key::from_jwk(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (key.alg(), key.enc(), key.kid()),
            (alg, enc, "my-key"),
            "{name}"
        );
    }
    let default = Key::from_jwk(&run(&["keygen"], b"").ok().out()).unwrap();
    assert_eq!(default.alg(), KeyAlgorithm::A256Kw);
    // Random kids and secrets.
    let again = Key::from_jwk(&run(&["keygen"], b"").ok().out()).unwrap();
    assert_ne!(default.kid(), again.kid());
    assert_ne!(default, again.with_kid(default.kid()).unwrap());
}

#[test]
fn bad_alg_or_kid_exits_2() {
    for alg in [
        "RSA1_5",
        "none",
        "a256kw",
        "A256CBC-HS512",
        "PBES2-HS256+A128KW",
        "",
    ] {
        let run = run(&["keygen", "--alg", alg], b"");
        assert_eq!(run.code, 2, "{alg}: {run:?}");
        assert!(run.stdout.is_empty());
        for allowed in ["dir", "A128GCM", "A256KW", "A192GCMKW", "RSA-OAEP-256"] {
            assert!(run.stderr.contains(allowed), "{alg}: {run:?}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.json");
    assert_eq!(
        run(
            &["keyring", "init", "--file", s(&file), "--alg", "HS256"],
            b""
        )
        .code,
        2
    );
    assert!(!file.exists());
    let bad_kid = run(&["keygen", "--kid", "bad\u{7}kid"], b"").fails(2);
    assert!(bad_kid.stderr.contains("--kid"), "{bad_kid:?}");
    run(&["keygen", "--kid", ""], b"").fails(2);
}

#[test]
fn help_exits_0_and_usage_errors_exit_2() {
    for args in [
        &["--help"][..],
        &["keyring", "--help"],
        &["open", "--help"],
        &["--version"],
    ] {
        let run = run(args, b"").ok();
        assert!(!run.stdout.is_empty(), "{args:?}");
    }
    let help = run(&["--help"], b"").out();
    assert!(help.contains(ENV) && help.contains("--keys"), "{help}");
    for args in [
        &[][..],
        &["frobnicate"],
        &["keyring"],
        &["keyring", "init"],
        &["seal", "--ttl", "-5"],
        &["open", "--leeway", "x"],
    ] {
        assert_eq!(run(args, b"").code, 2, "{args:?}");
    }
}

#[test]
fn seal_and_open_with_a_keys_file() {
    let (_dir, file) = keyring(&["--kid", "k1"]);
    let token = seal_with_file(&file, r#" {"sub":"alice","exp":4102444800,"n":[1,2]} "#);
    assert_eq!(token.split('.').count(), 5);
    let opened = open_with_file(&file, &format!("\n  {token}\r\n"));
    assert_eq!(
        opened,
        serde_json::json!({
            "kid": "k1", "alg": "A256KW", "enc": "A256GCM", "key_state": "primary",
            "claims": {"sub": "alice", "exp": 4102444800u64, "n": [1, 2]},
        })
    );
    // Keys of other algorithms work the same way.
    for alg in ["dir", "A128GCM", "A192GCMKW", "RSA-OAEP"] {
        let (_dir, file) = keyring(&["--alg", alg]);
        let token = seal_with_file(&file, &claims_exp(100));
        let opened = open_with_file(&file, &token);
        assert_eq!(opened["claims"]["sub"], "alice", "{alg}");
        assert_eq!(opened["key_state"], "primary");
    }
}

#[test]
fn seal_and_open_with_the_environment_in_both_formats() {
    let (_dir, file) = keyring(&["--kid", "env-k"]);
    let set = fs::read_to_string(&file).unwrap();
    let claims = claims_exp(300);

    let token = run_env(&set, &["seal"], claims.as_bytes()).ok().out();
    let opened = run_env(&set, &["open"], token.as_bytes()).ok().json();
    assert_eq!(opened["kid"], "env-k");
    assert_eq!(opened["claims"]["sub"], "alice");
    // The same key from the file opens it too.
    assert_eq!(open_with_file(&file, token.trim())["kid"], "env-k");

    // kid:secret entries, A256KW.
    let jwk: Value = serde_json::from_str(&run(&["keygen"], b"").ok().out()).unwrap();
    let old: Value = serde_json::from_str(&run(&["keygen"], b"").ok().out()).unwrap();
    let (k, k_old) = (jwk["k"].as_str().unwrap(), old["k"].as_str().unwrap());
    let env = format!("new:{k}, old:{k_old}");
    let token = run_env(&env, &["seal"], claims.as_bytes()).ok().out();
    let opened = run_env(&env, &["open"], token.as_bytes()).ok().json();
    assert_eq!(opened["kid"], "new");
    assert_eq!(opened["key_state"], "primary");
    assert!(opened.get("reissued").is_none());

    // A token of the old key opens as retired.
    let old_only = format!("old:{k_old}");
    let token = run_env(&old_only, &["seal"], claims.as_bytes()).ok().out();
    let opened = run_env(&env, &["open"], token.as_bytes()).ok().json();
    assert_eq!(opened["kid"], "old");
    assert_eq!(opened["key_state"], "retired");
    let reissued = opened["reissued"].as_str().unwrap();
    let again = run_env(&env, &["open"], reissued.as_bytes()).ok().json();
    assert_eq!(again["kid"], "new");

    // --keys wins over the environment.
    let mut command = bin();
    command.env(ENV, &env);
    let run = run_with(command, &["--keys", s(&file), "open"], token.as_bytes()).fails(1);
    assert!(run.stderr.contains("unknown_key"), "{run:?}");
}

#[test]
fn open_after_rotate_reissues_under_the_primary() {
    let (_dir, file) = keyring(&["--kid", "old"]);
    let claims = format!(r#"{{"sub":"bob","exp":{},"roles":["a","b"]}}"#, now() + 600);
    let token = seal_with_file(&file, &claims);
    let new_kid = run(&["keyring", "rotate", "--file", s(&file)], b"")
        .ok()
        .out();
    let new_kid = new_kid.trim();

    let opened = open_with_file(&file, &token);
    assert_eq!(opened["kid"], "old");
    assert_eq!(opened["key_state"], "retired");
    let reissued = opened["reissued"].as_str().unwrap();
    assert_ne!(reissued, token);

    let again = open_with_file(&file, reissued);
    assert_eq!(again["kid"], new_kid);
    assert_eq!(again["key_state"], "primary");
    assert_eq!(again["claims"], opened["claims"]);
    assert_eq!(again["claims"]["roles"], serde_json::json!(["a", "b"]));
    assert!(again.get("reissued").is_none());

    // The reissued token keeps the header's typ and cty.
    let typed = Keyring::from_file(&file)
        .unwrap()
        .seal_with(
            claims.as_bytes(),
            &SealOptions::new().with_typ("session+jwe").with_cty("json"),
        )
        .unwrap();
    run(&["keyring", "rotate", "--file", s(&file)], b"").ok();
    let opened = open_with_file(&file, &typed);
    assert_eq!(opened["key_state"], "retired");
    let header = run(
        &["inspect"],
        opened["reissued"].as_str().unwrap().as_bytes(),
    )
    .ok()
    .json();
    assert_eq!(header["typ"], "session+jwe");
    assert_eq!(header["cty"], "json");
    assert_ne!(header["kid"], opened["kid"]);

    // A staged key (from a JWK Set edited by hand) reissues too.
    let mut set: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    for key in set["keys"].as_array_mut().unwrap() {
        if key["kid"] == "old" {
            key["x-state"] = "staged".into();
        }
    }
    fs::write(&file, set.to_string()).unwrap();
    let opened = open_with_file(&file, &token);
    assert_eq!(opened["key_state"], "staged");
    assert!(opened["reissued"].is_string());
}

#[test]
fn ttl_sets_iat_and_exp() {
    let (_dir, file) = keyring(&[]);
    let before = now();
    let token = run(
        &["--keys", s(&file), "seal", "--ttl", "900"],
        br#"{"sub":"carol","iat":1,"exp":"never"}"#,
    )
    .ok()
    .out();
    let after = now();
    let claims = open_with_file(&file, &token)["claims"].clone();
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert!(before <= iat && iat <= after, "{claims}");
    assert_eq!(exp - iat, 900);
    assert_eq!(claims["sub"], "carol");
    // Integers, not floats.
    assert!(claims["iat"].is_u64() && claims["exp"].is_u64());

    let too_long = run(
        &["--keys", s(&file), "seal", "--ttl", &u64::MAX.to_string()],
        b"{}",
    )
    .fails(2);
    assert!(too_long.stderr.contains("--ttl"), "{too_long:?}");
}

#[test]
fn expired_token_is_rejected_with_one_line() {
    let (_dir, file) = keyring(&[]);
    let token = seal_with_file(&file, &claims_exp(-3600));
    let run = run(&["--keys", s(&file), "open"], token.as_bytes()).fails(1);
    assert_eq!(run.stderr, "jwe-session: token rejected: expired\n");
    assert!(run.stdout.is_empty());
}

#[test]
fn nbf_in_the_future_is_rejected() {
    let (_dir, file) = keyring(&[]);
    let claims = format!(r#"{{"exp":{},"nbf":{}}}"#, now() + 7200, now() + 3600);
    let token = seal_with_file(&file, &claims);
    let run = run(&["--keys", s(&file), "open"], token.as_bytes()).fails(1);
    assert_eq!(run.stderr, "jwe-session: token rejected: not yet valid\n");
    // A past nbf is fine.
    let claims = format!(r#"{{"exp":{},"nbf":{}}}"#, now() + 7200, now() - 10);
    open_with_file(&file, &seal_with_file(&file, &claims));
}

#[test]
fn leeway_widens_acceptance() {
    let (_dir, file) = keyring(&[]);
    let keys = ["--keys", s(&file), "open"];
    // Expired 100 s ago: refused with the default 60 s, accepted with 200.
    let expired = seal_with_file(&file, &claims_exp(-100));
    run(&keys, expired.as_bytes()).fails(1);
    let opened = run(
        &[&keys[..], &["--leeway", "200"]].concat(),
        expired.as_bytes(),
    )
    .ok()
    .json();
    assert_eq!(opened["claims"]["sub"], "alice");
    // Expired 30 s ago: within the default leeway, not within 0.
    let recent = seal_with_file(&file, &claims_exp(-30));
    run(&keys, recent.as_bytes()).ok();
    run(&[&keys[..], &["--leeway", "0"]].concat(), recent.as_bytes()).fails(1);
    // nbf 100 s ahead.
    let claims = format!(r#"{{"exp":{},"nbf":{}}}"#, now() + 1000, now() + 100);
    let early = seal_with_file(&file, &claims);
    run(&keys, early.as_bytes()).fails(1);
    run(
        &[&keys[..], &["--leeway", "200"]].concat(),
        early.as_bytes(),
    )
    .ok();
}

#[test]
fn claims_without_a_numeric_exp_are_rejected() {
    let (_dir, file) = keyring(&[]);
    let keyring = Keyring::from_file(&file).unwrap();
    for plaintext in [
        &br#"{"sub":"x"}"#[..],
        br#"{"exp":"4102444800"}"#,
        b"[1,2,3]",
        b"not json",
        b"",
    ] {
        let token = keyring.seal(plaintext).unwrap();
        let run = run(&["--keys", s(&file), "open"], token.as_bytes()).fails(1);
        assert_eq!(
            run.stderr,
            "jwe-session: token rejected: plaintext is not a JSON object with a numeric exp\n"
        );
    }
}

#[test]
fn raw_prints_the_exact_plaintext() {
    let (_dir, file) = keyring(&[]);
    let keyring = Keyring::from_file(&file).unwrap();
    for plaintext in [
        &b"\x00\xff binary \n\r\n\x1b[31m"[..],
        b"",
        b"{\"no\":\"exp\"}",
        b"trailing newline\n",
    ] {
        let token = keyring.seal(plaintext).unwrap();
        let run = run(&["--keys", s(&file), "open", "--raw"], token.as_bytes()).ok();
        assert_eq!(run.stdout, plaintext);
        assert!(run.stderr.is_empty());
    }
    // Even expired claims: --raw checks nothing.
    let expired = seal_with_file(&file, &claims_exp(-100_000));
    let run = run(&["--keys", s(&file), "open", "--raw"], expired.as_bytes()).ok();
    let claims: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(claims["sub"], "alice");
}

#[test]
fn tampered_or_foreign_tokens_are_rejected() {
    let (_dir, file) = keyring(&[]);
    let token = seal_with_file(&file, &claims_exp(600));
    let parts: Vec<&str> = token.split('.').collect();
    // Flip one character of the ciphertext, keeping it canonical base64url.
    let mut ciphertext = parts[3].as_bytes().to_vec();
    ciphertext[0] = if ciphertext[0] == b'A' { b'B' } else { b'A' };
    let tampered = [
        parts[0],
        parts[1],
        parts[2],
        std::str::from_utf8(&ciphertext).unwrap(),
        parts[4],
    ]
    .join(".");
    let run1 = run(&["--keys", s(&file), "open"], tampered.as_bytes()).fails(1);
    assert_eq!(
        run1.stderr,
        "jwe-session: token rejected: decrypt_failed: content authentication failed\n"
    );
    let raw = run(&["--keys", s(&file), "open", "--raw"], tampered.as_bytes()).fails(1);
    assert!(raw.stdout.is_empty());

    let (_other_dir, other) = keyring(&[]);
    let run2 = run(&["--keys", s(&other), "open"], token.as_bytes()).fails(1);
    assert!(
        run2.stderr
            .starts_with("jwe-session: token rejected: unknown_key"),
        "{run2:?}"
    );

    let run3 = run(&["--keys", s(&file), "open"], b"a.b.c").fails(1);
    assert!(
        run3.stderr
            .starts_with("jwe-session: token rejected: malformed"),
        "{run3:?}"
    );
}

#[test]
fn hostile_input_never_panics() {
    let (_dir, file) = keyring(&[]);
    let token = seal_with_file(&file, &claims_exp(600));
    let huge = vec![b'A'; 3 << 20];
    let long_token = format!("{}.{}", token, "A".repeat(20_000));
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n\n  \t".to_vec(),
        b"garbage".to_vec(),
        b"....".to_vec(),
        b"a.b.c.d.e".to_vec(),
        b"eyJ9.e30.e30.e30.e30".to_vec(),
        vec![0u8; 1000],
        (0..=255u8).cycle().take(70_000).collect(),
        b"\xff\xfe\xfd".to_vec(),
        long_token.into_bytes(),
        format!("{token}.").into_bytes(),
        token.replace('.', "..").into_bytes(),
        huge,
        b"{\"exp\":1".to_vec(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".repeat(5000),
    ];
    let commands: [&[&str]; 4] = [
        &["--keys", s(&file), "open"],
        &["--keys", s(&file), "open", "--raw"],
        &["--keys", s(&file), "seal"],
        &["inspect"],
    ];
    for input in &inputs {
        for args in commands {
            let run = run(args, input);
            assert!(run.code == 1 || run.code == 2, "{args:?}: {run:?}");
            assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:?}");
        }
    }
}

#[test]
fn seal_refuses_anything_but_a_json_object() {
    let (_dir, file) = keyring(&[]);
    for input in [
        &b""[..],
        b"[]",
        b"\"s\"",
        b"42",
        b"null",
        b"{",
        b"{} {}",
        b"\xff",
    ] {
        let run = run(&["--keys", s(&file), "seal"], input).fails(2);
        assert!(run.stderr.contains("JSON object"), "{input:?}: {run:?}");
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn missing_keys_name_both_sources() {
    for args in [&["seal"][..], &["open"]] {
        let run = run(args, b"{}").fails(2);
        assert!(run.stderr.contains(ENV), "{run:?}");
        assert!(run.stderr.contains("--keys"), "{run:?}");
    }
}

#[test]
fn bad_keys_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist.json");
    let run1 = run(&["--keys", s(&missing), "seal"], b"{}").fails(2);
    assert!(run1.stderr.contains(s(&missing)), "{run1:?}");

    let garbage = dir.path().join("garbage.json");
    fs::write(&garbage, b"\x00\x01 not a key set").unwrap();
    let run2 = run(&["--keys", s(&garbage), "open"], b"x").fails(2);
    assert!(run2.stderr.contains(s(&garbage)), "{run2:?}");

    let run3 = run(&["--keys", s(dir.path()), "open"], b"x").fails(2);
    assert!(run3.stderr.contains(s(dir.path())), "{run3:?}");

    let huge = dir.path().join("huge.json");
    fs::write(&huge, vec![b' '; 5 << 20]).unwrap();
    let run4 = run(&["keyring", "list", "--file", s(&huge)], b"").fails(2);
    assert!(run4.stderr.contains(s(&huge)), "{run4:?}");
}

#[test]
fn malformed_environment_names_the_variable_not_the_secret() {
    let jwk: Value = serde_json::from_str(&run(&["keygen"], b"").ok().out()).unwrap();
    let k = jwk["k"].as_str().unwrap();
    let short: Value =
        serde_json::from_str(&run(&["keygen", "--alg", "A128KW"], b"").ok().out()).unwrap();
    let k16 = short["k"].as_str().unwrap();
    for env in [
        String::new(),
        "   ".to_owned(),
        k.to_owned(),
        format!("one:{k}="),
        format!("one:{k},{k}"),
        format!(":{k}"),
        format!("one:{k16}"),
        format!("one:{k},one:{k}"),
        format!("{{\"keys\":[{{\"kty\":\"oct\",\"alg\":\"A256KW\",\"k\":\"{k}\"}}]}}"),
        format!(
            "{{\"keys\":[{{\"kty\":\"oct\",\"kid\":\"a\",\"alg\":\"A128KW\",\"k\":\"{k}\"}}]}}"
        ),
        format!("{{ not json {k}"),
    ] {
        for args in [&["seal"][..], &["open"]] {
            let run = run_env(&env, args, b"{}").fails(2);
            assert!(run.stderr.contains(ENV), "{env:?}: {run:?}");
            assert!(!run.stderr.contains(k), "{env:?}: {run:?}");
            assert!(!run.stderr.contains(k16), "{env:?}: {run:?}");
        }
    }
}

#[test]
fn no_message_ever_contains_the_secret() {
    let (dir, file) = keyring(&["--kid", "known"]);
    let secret = secrets(&file).remove(0);
    let set = fs::read_to_string(&file).unwrap();
    let token = seal_with_file(&file, &claims_exp(-1000));
    let corrupt = dir.path().join("corrupt.json");
    fs::write(&corrupt, set.replace("\"A256KW\"", "\"A128KW\"")).unwrap();
    let keys = s(&file);
    let runs = [
        run(&["--keys", keys, "open"], token.as_bytes()),
        run(&["--keys", keys, "open"], b"x.y.z"),
        run(&["--keys", keys, "open"], secret.as_bytes()),
        run(&["--keys", keys, "seal"], secret.as_bytes()),
        run(
            &["--keys", keys, "seal"],
            format!("[\"{secret}\"]").as_bytes(),
        ),
        run(&["--keys", s(&corrupt), "seal"], b"{}"),
        run(&["keyring", "list", "--file", s(&corrupt)], b""),
        run(&["keyring", "rotate", "--file", s(&corrupt)], b""),
        run(
            &["keyring", "rotate", "--file", keys, "--kid", "known"],
            b"",
        ),
        run(&["keyring", "init", "--file", keys], b""),
        run_env(&set, &["open"], token.as_bytes()),
        run_env(&format!("known:{secret}x"), &["open"], token.as_bytes()),
        run(&["inspect"], secret.as_bytes()),
    ];
    for run in runs {
        assert!(run.code == 1 || run.code == 2, "{run:?}");
        assert!(!run.stderr.contains(&secret), "{run:?}");
        assert!(!run.stderr.contains("eyJ"), "token text in {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
}

#[test]
fn inspect_prints_the_header_without_keys() {
    let (_dir, file) = keyring(&["--kid", "hdr", "--alg", "A128GCMKW"]);
    let token = seal_with_file(&file, &claims_exp(60));
    let header = run(&["inspect"], format!("  {token}\n").as_bytes())
        .ok()
        .json();
    assert_eq!(header["alg"], "A128GCMKW");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["kid"], "hdr");
    assert!(header["iv"].is_string() && header["tag"].is_string());
    // Expired or not, under a known key or not: inspect only parses.
    let other = run(&["inspect"], b"eyJhbGciOiJkaXIifQ.e30.e30.e30.e30").fails(1);
    assert!(other.stderr.contains("malformed"), "{other:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn write_errors_are_reported_not_panicked() {
    let output = bin()
        .arg("keygen")
        .stdout(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("panicked") && stderr.contains("standard output"),
        "{stderr}"
    );
}

#[test]
fn closed_stdout_is_quiet() {
    let mut child = bin()
        .args(["keygen", "--alg", "RSA-OAEP"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

#[test]
fn stage_promote_and_prune_for_a_fleet_rotation() {
    let (dir, file) = keyring(&["--kid", "k1"]);
    let token = seal_with_file(&file, &claims_exp(3600));

    // Stage: the new key opens but does not seal yet.
    let staged = run(
        &["keyring", "stage", "--file", s(&file), "--kid", "k2"],
        b"",
    )
    .ok();
    assert_eq!(staged.out(), "k2\n");
    let list = key_list(&file);
    assert_eq!(list, "k1\tA256KW\tprimary\t-\nk2\tA256KW\tstaged\t-\n");
    assert_eq!(
        open_with_file(&file, &seal_with_file(&file, &claims_exp(60)))["kid"],
        "k1"
    );
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    // Promote: the staged key seals, the old primary only opens.
    run(
        &["keyring", "promote", "--file", s(&file), "--kid", "k2"],
        b"",
    )
    .ok();
    let list = key_list(&file);
    assert_eq!(list, "k2\tA256KW\tprimary\t-\nk1\tA256KW\tretired\t-\n");
    assert_eq!(open_with_file(&file, &token)["key_state"], "retired");

    // Only staged keys can be promoted; unknown kids are named.
    let err = run(
        &["keyring", "promote", "--file", s(&file), "--kid", "k1"],
        b"",
    )
    .fails(2);
    assert!(
        err.stderr.contains("k1") && err.stderr.contains("staged"),
        "{err:?}"
    );
    let err = run(
        &["keyring", "promote", "--file", s(&file), "--kid", "nope"],
        b"",
    )
    .fails(2);
    assert!(err.stderr.contains("nope"), "{err:?}");

    // Prune: a retired key younger than max-age stays; with 0 it goes.
    let kept = run(
        &["keyring", "prune", "--file", s(&file), "--max-age", "3600"],
        b"",
    )
    .ok();
    assert_eq!(kept.out(), "");
    let gone = run(
        &["keyring", "prune", "--file", s(&file), "--max-age", "0"],
        b"",
    )
    .ok();
    assert_eq!(gone.out(), "k1\n");
    let list = key_list(&file);
    assert_eq!(list, "k2\tA256KW\tprimary\t-\n");
    assert_eq!(listing(dir.path()), ["keys.json"]);
}

#[test]
fn stage_with_promote_at_schedules_the_switch_in_the_file() {
    let (_dir, file) = keyring(&["--kid", "k1"]);
    let later = (now() + 24 * 3600).to_string();
    run(
        &[
            "keyring",
            "stage",
            "--file",
            s(&file),
            "--kid",
            "k2",
            "--promote-at",
            &later,
        ],
        b"",
    )
    .ok();
    // Written for every process that loads the file; not yet the primary.
    let set: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(set["keys"][1]["kid"], "k2");
    assert_eq!(set["keys"][1]["x-promote-at"].to_string(), later);
    let list = key_list(&file);
    assert_eq!(
        list,
        format!("k1\tA256KW\tprimary\t-\nk2\tA256KW\tstaged\t{later}\n")
    );

    // A time already past: the next use of the file finds k3 the primary.
    let past = (now() - 60).to_string();
    run(
        &[
            "keyring",
            "stage",
            "--file",
            s(&file),
            "--kid",
            "k3",
            "--promote-at",
            &past,
        ],
        b"",
    )
    .ok();
    let list = key_list(&file);
    assert_eq!(
        list,
        format!("k3\tA256KW\tprimary\t-\nk1\tA256KW\tretired\t-\nk2\tA256KW\tstaged\t{later}\n")
    );
    assert_eq!(
        open_with_file(&file, &seal_with_file(&file, &claims_exp(60)))["kid"],
        "k3"
    );

    // Not a number of seconds: a usage error (clap's message), nothing staged.
    let before = fs::read_to_string(&file).unwrap();
    let args = [
        "keyring",
        "stage",
        "--file",
        s(&file),
        "--promote-at",
        "tomorrow",
    ];
    let refused = run(&args, b"");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--promote-at"), "{refused:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
}

/// Issue 12: `keyring list` shows a staged key's scheduled promotion.
#[test]
fn list_shows_the_scheduled_promotion() {
    let (_dir, file) = keyring(&["--kid", "k1"]);
    let at = now() + 3600;
    run(
        &[
            "keyring",
            "stage",
            "--file",
            s(&file),
            "--kid",
            "k2",
            "--promote-at",
            &at.to_string(),
        ],
        b"",
    )
    .ok();
    let list = key_list(&file);
    assert_eq!(
        list,
        format!("k1\tA256KW\tprimary\t-\nk2\tA256KW\tstaged\t{at}\n")
    );
}

// --- keyring cycle -----------------------------------------------------------

const DAY: u64 = 86_400;
const HOUR: u64 = 3600;
/// The default `--max-age`: 12 h + 60 s.
const MAX_AGE: u64 = 43_260;

fn unow() -> u64 {
    now().try_into().unwrap()
}

fn key(kid: &str) -> Key {
    Key::generate(KeyAlgorithm::A256Kw)
        .unwrap()
        .with_kid(kid)
        .unwrap()
}

/// A temporary directory with `keys.json` holding `keyring`.
fn keyring_file(keyring: &Keyring) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    fs::write(&file, keyring.to_jwk_set().as_bytes()).unwrap();
    (dir, file)
}

/// A keyring file whose only key, the primary "k1", was made `age` seconds
/// ago.
fn primary_aged(age: u64) -> (tempfile::TempDir, PathBuf) {
    let clock = Arc::new(ManualClock::at_unix(unow() - age));
    keyring_file(&Keyring::with_clock(key("k1"), clock))
}

/// Runs `keyring cycle` with `args` after the file; checks that it prints
/// exactly one JSON line with exactly its three members, in order, and
/// returns them.
#[track_caller]
fn cycle(file: &Path, args: &[&str]) -> (Option<String>, Option<u64>, Vec<String>) {
    let mut all = vec!["keyring", "cycle", "--file", s(file)];
    all.extend_from_slice(args);
    let run = run(&all, b"").ok();
    let out = run.out();
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    assert!(out.starts_with(r#"{"staged":"#), "{out:?}");
    let json = run.json();
    let members = json.as_object().unwrap();
    assert_eq!(members.len(), 3, "{out:?}");
    let order: Vec<usize> = ["\"staged\"", "\"promote_at\"", "\"pruned\""]
        .iter()
        .map(|name| out.find(name).unwrap())
        .collect();
    assert!(order.is_sorted(), "{out:?}");
    let staged = json["staged"].as_str().map(str::to_owned);
    let promote_at = json["promote_at"].as_u64();
    assert_eq!(staged.is_some(), promote_at.is_some(), "{out:?}");
    assert!(staged.is_some() || json["staged"].is_null(), "{out:?}");
    assert!(
        promote_at.is_some() || json["promote_at"].is_null(),
        "{out:?}"
    );
    let pruned = json["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kid| kid.as_str().unwrap().to_owned())
        .collect();
    (staged, promote_at, pruned)
}

const DAILY: [&str; 4] = ["--period", "86400", "--lead", "3600"];

/// The file's identity and contents, to tell whether it was replaced.
fn state(file: &Path) -> (u64, String) {
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(file).unwrap().ino()
    };
    #[cfg(not(unix))]
    let inode = 0;
    (inode, fs::read_to_string(file).unwrap())
}

#[test]
fn cycle_stages_when_the_primary_is_due_and_only_once() {
    // Due once the primary is period - lead (82 800 s) old.
    // One reading of the clock for both (two could fall either side of a
    // second's boundary).
    let created = unow() - (DAY - HOUR) - 100;
    let clock = Arc::new(ManualClock::at_unix(created));
    let (_dir, file) = keyring_file(&Keyring::with_clock(key("k1"), clock));
    let (staged, promote_at, pruned) = cycle(&file, &DAILY);
    let staged = staged.expect("a key staged");
    // Promoted when the primary is a period old.
    assert_eq!(promote_at, Some(created + DAY));
    assert!(pruned.is_empty());
    let list = key_list(&file);
    assert_eq!(
        list,
        format!(
            "k1\tA256KW\tprimary\t-\n{staged}\tA256KW\tstaged\t{}\n",
            created + DAY
        )
    );
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    // Idempotent: the second run changes nothing, not even the file.
    let before = state(&file);
    assert_eq!(cycle(&file, &DAILY), (None, None, vec![]));
    assert_eq!(state(&file), before);

    // The staged key opens at once, and seals from its promotion on.
    let token = seal_with_file(&file, &claims_exp(60));
    assert_eq!(open_with_file(&file, &token)["kid"], "k1");
}

#[test]
fn cycle_changes_nothing_when_nothing_is_due() {
    let (dir, file) = primary_aged(DAY - HOUR - 120);
    let before = state(&file);
    assert_eq!(cycle(&file, &DAILY), (None, None, vec![]));
    assert_eq!(state(&file), before);
    assert_eq!(listing(dir.path()), ["keys.json"]);

    // A staged key holds off another, however old the primary.
    let clock = Arc::new(ManualClock::at_unix(unow() - 3 * DAY));
    let keyring = Keyring::with_clock(key("k1"), clock);
    keyring.stage(key("manual")).unwrap();
    let (_dir, file) = keyring_file(&keyring);
    let before = state(&file);
    assert_eq!(cycle(&file, &DAILY), (None, None, vec![]));
    assert_eq!(state(&file), before);
}

#[test]
fn a_late_cycle_leaves_half_the_lead_before_the_switch() {
    // The primary is already older than the period (cron was down): the
    // switch is half the lead from now, not at once.
    let (_dir, file) = primary_aged(DAY + 5000);
    let start = unow();
    let (staged, promote_at, _) = cycle(&file, &DAILY);
    assert!(staged.is_some());
    let promote_at = promote_at.unwrap();
    assert!(
        (start + HOUR / 2..=unow() + HOUR / 2).contains(&promote_at),
        "{promote_at} vs {start}"
    );
    let list = key_list(&file);
    assert!(list.starts_with("k1\tA256KW\tprimary\t-\n"), "{list}");
}

#[test]
fn cycle_stages_a_key_of_the_algorithm_asked_for() {
    let (_dir, file) = primary_aged(DAY);
    let mut args = DAILY.to_vec();
    args.extend(["--alg", "A128GCMKW"]);
    let staged = cycle(&file, &args).0.unwrap();
    let list = key_list(&file);
    assert!(
        list.contains(&format!("{staged}\tA128GCMKW\tstaged\t")),
        "{list}"
    );
}

#[test]
fn cycle_prunes_retired_keys_only_past_max_age() {
    // k1 retired 100 s past the default max age, k2 100 s short of it.
    let start = unow() - 2 * DAY;
    let clock = Arc::new(ManualClock::at_unix(start));
    let keyring = Keyring::with_clock(key("k1"), clock.clone());
    clock.set_unix(unow() - MAX_AGE - 100);
    keyring.rotate_to(key("k2")).unwrap();
    clock.set_unix(unow() - MAX_AGE + 100);
    keyring.rotate_to(key("k3")).unwrap();
    let (_dir, file) = keyring_file(&keyring);
    let old = seal_with_file(&file, &claims_exp(60)); // under k3
    let list = |file: &Path| run(&["keyring", "list", "--file", s(file)], b"").ok().out();
    assert_eq!(
        list(&file),
        "k3\tA256KW\tprimary\t-\nk2\tA256KW\tretired\t-\nk1\tA256KW\tretired\t-\n"
    );

    assert_eq!(cycle(&file, &DAILY), (None, None, vec!["k1".to_owned()]));
    assert_eq!(
        list(&file),
        "k3\tA256KW\tprimary\t-\nk2\tA256KW\tretired\t-\n"
    );
    // Pruned once: the next run finds nothing to do.
    let before = state(&file);
    assert_eq!(cycle(&file, &DAILY), (None, None, vec![]));
    assert_eq!(state(&file), before);

    // A --max-age shorter than k2's retirement (for shorter sessions)
    // prunes it.
    let mut args = DAILY.to_vec();
    args.extend(["--max-age", "43000"]);
    assert_eq!(cycle(&file, &args), (None, None, vec!["k2".to_owned()]));
    assert_eq!(key_list(&file), "k3\tA256KW\tprimary\t-\n");
    assert_eq!(open_with_file(&file, &old)["kid"], "k3");
}

#[test]
fn cycle_records_a_promotion_that_came_due_once() {
    // k2 was scheduled to take over a minute ago; the file does not say
    // so yet. The cycle writes it down (k1 retired now), then leaves the
    // file alone.
    let clock = Arc::new(ManualClock::at_unix(unow() - 2 * HOUR));
    let keyring = Keyring::with_clock(key("k1"), clock.clone());
    keyring.stage(key("k2")).unwrap();
    keyring
        .promote_at(
            "k2",
            UNIX_EPOCH + std::time::Duration::from_secs(unow() - 60),
        )
        .unwrap();
    let (_dir, file) = keyring_file(&keyring);
    let written = fs::read_to_string(&file).unwrap();
    assert!(written.contains("x-promote-at"), "{written}");

    let start = unow();
    assert_eq!(cycle(&file, &DAILY), (None, None, vec![]));
    let set: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(set["keys"][0]["kid"], "k2");
    assert_eq!(set["keys"][1]["kid"], "k1");
    assert_eq!(set["keys"][1]["x-state"], "retired");
    let retired = set["keys"][1]["x-retired"].as_u64().unwrap();
    assert!((start..=unow()).contains(&retired), "{retired}");

    let before = state(&file);
    assert_eq!(cycle(&file, &DAILY), (None, None, vec![]));
    assert_eq!(state(&file), before);
}

#[test]
fn concurrent_cycles_stage_one_key() {
    let (_dir, file) = primary_aged(DAY);
    let children: Vec<_> = (0..4)
        .map(|_| {
            bin()
                .args(["keyring", "cycle", "--file", s(&file)])
                .args(DAILY)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut staged = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        staged += usize::from(!json["staged"].is_null());
    }
    assert_eq!(staged, 1);
    let list = key_list(&file);
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn cycle_refuses_bad_arguments_with_exit_2() {
    let (dir, file) = primary_aged(DAY);
    let before = state(&file);
    // Refused by the tool, with one line naming the problem.
    for (args, says) in [
        (&["--period", "3600", "--lead", "3600"][..], "lead"),
        (&["--period", "60", "--lead", "600"], "lead"),
        (&["--period", "0", "--lead", "0"], "period"),
        (&["--period", "4000000000", "--lead", "0"], "period"),
    ] {
        let mut all = vec!["keyring", "cycle", "--file", s(&file)];
        all.extend_from_slice(args);
        let refused = run(&all, b"").fails(2);
        assert!(refused.stdout.is_empty(), "{refused:?}");
        assert!(refused.stderr.contains(says), "{args:?}: {refused:?}");
    }
    // Refused by the argument parser.
    for args in [
        &["--period", "x", "--lead", "60"][..],
        &["--period", "-1", "--lead", "0"],
        &["--period", "86400"],
        &["--lead", "60"],
        &["--period", "86400", "--lead", "3600", "--max-age", "-5"],
        &["--period", "86400", "--lead", "3600", "--alg", "HS256"],
        &["--period", "86400", "--lead", "3600", "--frequency", "2"],
    ] {
        let mut all = vec!["keyring", "cycle", "--file", s(&file)];
        all.extend_from_slice(args);
        let refused = run(&all, b"");
        assert_eq!(refused.code, 2, "{args:?}: {refused:?}");
        assert!(refused.stdout.is_empty(), "{refused:?}");
    }
    assert_eq!(state(&file), before);

    // A missing or broken file is named.
    let missing = dir.path().join("missing.json");
    let mut all = vec!["keyring", "cycle", "--file", s(&missing)];
    all.extend(DAILY);
    let refused = run(&all, b"").fails(2);
    assert!(refused.stderr.contains("missing.json"), "{refused:?}");
    let broken = dir.path().join("broken.json");
    fs::write(&broken, "{\"keys\":[]}").unwrap();
    let mut all = vec!["keyring", "cycle", "--file", s(&broken)];
    all.extend(DAILY);
    let refused = run(&all, b"").fails(2);
    assert!(refused.stderr.contains("broken.json"), "{refused:?}");
    assert_eq!(fs::read_to_string(&broken).unwrap(), "{\"keys\":[]}");
    let mut all = vec!["keyring", "cycle"];
    all.extend(DAILY);
    assert_eq!(run(&all, b"").code, 2, "no --file");
}

/// Issue 12's leak runbook: `keyring remove` drops a key from the file at
/// once (its tokens stop opening) and refuses the primary.
#[test]
fn remove_drops_a_leaked_key_and_refuses_the_primary() {
    let (_dir, file) = keyring(&["--kid", "k1"]);
    let token = seal_with_file(&file, &claims_exp(3600));
    let refused = run(
        &["keyring", "remove", "--file", s(&file), "--kid", "k1"],
        b"",
    )
    .fails(2);
    assert!(refused.stderr.contains("primary"), "{refused:?}");
    run(
        &["keyring", "rotate", "--file", s(&file), "--kid", "k2"],
        b"",
    )
    .ok();
    assert_eq!(open_with_file(&file, &token)["kid"], "k1");
    let removed = run(
        &["keyring", "remove", "--file", s(&file), "--kid", "k1"],
        b"",
    )
    .ok();
    assert_eq!(removed.out(), "k1\n");
    let list = key_list(&file);
    assert_eq!(list, "k2\tA256KW\tprimary\t-\n");
    run(&["--keys", s(&file), "open"], token.as_bytes()).fails(1);
}

//! Device-bound sessions in a real browser: Debian's Chromium, driven by
//! `tests/dbsc_browser/driver.mjs` (playwright-core), against each demo
//! binary served over HTTPS with a self-signed certificate that the browser
//! trusts by its public key's pin.
//!
//! Chromium logs in through the demo's page, registers a device key, lets
//! its short bound cookie expire and refreshes it; then a plain HTTPS client
//! holding a copy of every other cookie (the long-lived session cookie) is
//! refused, with and without the bound cookie captured before it expired,
//! while the browser carries on. Both frameworks.
//!
//! Needs `/usr/lib/chromium/chromium` and `tests/dbsc_browser/node_modules`
//! (`bash tests/dbsc_browser/setup.sh`). Without them the test says so and
//! passes, except under `CI`, where `.ci/run` installs them and a missing
//! browser fails the run.
#![cfg(all(feature = "dbsc", feature = "axum", feature = "actix"))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};
use serde_json::Value;

/// The bound cookie's lifetime the demos run with: the shortest the layer
/// allows, so that the test sees it expire and refresh.
const BOUND_SECS: u64 = 10;
const CHROMIUM: &str = "/usr/lib/chromium/chromium";

fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dbsc_browser")
}

/// Whether the browser and the driver's package are installed; under CI a
/// missing one fails the test.
fn browser_available() -> bool {
    let chromium = Path::new(CHROMIUM).exists();
    let playwright = driver_dir()
        .join("node_modules/playwright-core/package.json")
        .exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if chromium && playwright && node {
        return true;
    }
    let missing = format!(
        "chromium: {chromium}, playwright-core: {playwright}, node: {node} \
         (install with `bash tests/dbsc_browser/setup.sh`)"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "under CI the browser test must run: {missing}"
    );
    eprintln!("skipping the Chromium DBSC test: {missing}");
    false
}

/// A self-signed certificate for `localhost` and 127.0.0.1, its key, and
/// the base64 SHA-256 of its public key (Chromium's SPKI pin).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, String) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&builder.x509v3_context(None, None))
        .unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = builder.build();
    let spki = openssl::sha::sha256(&key.public_key_to_der().unwrap());
    let pin = openssl::base64::encode_block(&spki);
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path, pin)
}

/// A demo binary, built with device-bound sessions when it is missing.
fn demo(name: &str) -> PathBuf {
    support::built_binary(
        &format!("examples/{name}"),
        &["build", "--example", name, "--all-features"],
    )
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str, port: u16, cert: &Path, key: &Path, log: &Path) -> Server {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(demo(name))
        .env("PORT", port.to_string())
        .env("TLS_CERT", cert)
        .env("TLS_KEY", key)
        .env("DBSC_BOUND_SECS", BOUND_SECS.to_string())
        .env("RUST_LOG", "info")
        .env_remove("SESSION_KEYS")
        .env_remove("SESSION_KEYS_FILE")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_CLUSTER_URLS")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the demo");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the {name} demo did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Two browsers and two debug-build servers at once are too much for a
/// small CI machine within the driver's waits: one test at a time.
static ONE_BROWSER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(framework: &str) {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = std::env::temp_dir().join(format!(
        "jwe-session-dbsc-{framework}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, pin) = certificate(&dir);
    let port = support::free_port();
    let server_log = dir.join("server.log");
    let _server = start(framework, port, &cert, &key, &server_log);
    let output = Command::new("node")
        .arg(driver_dir().join("driver.mjs"))
        .env("BASE_URL", format!("https://localhost:{port}"))
        .env("SPKI", &pin)
        .env("CHROMIUM", CHROMIUM)
        .env("BOUND_SECS", BOUND_SECS.to_string())
        // The layer accepts a bound cookie 5 s past its end (clocks of a
        // fleet disagree): replay the stale one after that.
        .env("STALE_DELAY_SECS", "6")
        .env("PROFILE_DIR", dir.join("profile"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let server = std::fs::read_to_string(&server_log).unwrap_or_default();
    let context = format!(
        "driver stderr:\n{stderr}\n--- {framework} demo log (last 60 lines):\n{}",
        server
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON summary from the driver:\n{stdout}\n{context}"));
    eprintln!("{framework}: {summary}");
    assert!(output.status.success(), "{summary}\n{context}");
    assert_eq!(summary["ok"], true, "{context}");
    assert_eq!(summary["registered"], true);
    assert_eq!(summary["refreshed"], true);
    assert_eq!(summary["bound_cookie_expired"], true);
    assert_eq!(summary["browser_after_refresh"], 200);
    assert_eq!(
        summary["copied_cookie_status"], 401,
        "the copied cookie is refused"
    );
    assert_eq!(
        summary["stale_bound_status"], 401,
        "so is the expired bound cookie"
    );
    assert_eq!(summary["browser_after"], 200, "the browser carries on");
    assert!(
        server.contains("DBSC session registered"),
        "the demo logged no registration\n{context}"
    );
    assert!(
        server.contains("served as no session"),
        "the demo logged no refusal of the copied cookie\n{context}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chromium_binds_and_refreshes_and_a_copied_cookie_is_refused_axum() {
    run("axum");
}

#[test]
fn chromium_binds_and_refreshes_and_a_copied_cookie_is_refused_actix() {
    run("actix");
}

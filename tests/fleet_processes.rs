//! Issue 12, on real processes: three demo servers (the axum demo's
//! binary) share one key file and one `redis-server`; `jwe-session keyring
//! cycle` runs against the file as cron would, with a period of a few
//! seconds, for at least 10 rotations, while clients send their requests
//! round-robin across the servers. Zero failed requests, zero logouts, and
//! every session re-issued under each new key.
//!
//! The binaries are the ones `cargo test --workspace` builds: the demo
//! (`target/debug/examples/axum`) and the key tool
//! (`target/debug/jwe-session`); when either is missing the test builds it.

#![cfg(all(feature = "axum", feature = "redis"))]

mod support;

#[path = "e2e/jar.rs"]
#[allow(dead_code)]
mod jar;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jar::Jar;
use serde_json::Value;
use support::{free_port, RedisServer};

/// The rotation period and lead given to `keyring cycle`, in seconds: a key
/// is staged at age 0, becomes the primary at age `LEAD` and seals until age
/// `PERIOD`, so a new primary every `PERIOD - LEAD` = 3 s. The lead covers
/// the servers' reload delay (at most 2 s): every server holds a staged key
/// before it becomes the primary. When staging comes late (the first key
/// is older than `PERIOD - LEAD` once the servers have started and the
/// clients logged in, on a slow machine), `keyring cycle` still leaves half
/// the lead, rounded up: 3 s, still more than the reload delay.
const PERIOD: u64 = 9;
const LEAD: u64 = 6;
const ROTATIONS: usize = 10;
const CLIENTS: usize = 6;

/// A demo server process, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(tool: &Path, args: &[&str]) -> Value {
    let output = Command::new(tool)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run jwe-session");
    assert!(
        output.status.success(),
        "jwe-session {args:?}: {:?}",
        output.status
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    serde_json::from_str(text.trim()).unwrap_or(Value::String(text))
}

struct Client {
    jar: Jar,
    http: reqwest::Client,
}

impl Client {
    async fn send(&mut self, method: reqwest::Method, url: &str) -> (u16, String) {
        self.send_form(method, url, None).await
    }

    /// Sends the request with the jar's cookies (and `form`, urlencoded),
    /// and keeps the cookies the response sets.
    async fn send_form(
        &mut self,
        method: reqwest::Method,
        url: &str,
        form: Option<String>,
    ) -> (u16, String) {
        let mut request = self.http.request(method, url);
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
        }
        if let Some(cookie) = self.jar.cookie_header() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ASCII").to_owned())
            .collect();
        self.jar.absorb(&set_cookies);
        (status, response.text().await.expect("a body"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_rotate_from_one_key_file_with_no_logout() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let demo = support::built_binary(
        "examples/axum",
        &["build", "--example", "axum", "--all-features"],
    );
    let tool = support::built_binary(
        "jwe-session",
        &["build", "-p", "jwe-session-cli", "--bin", "jwe-session"],
    );
    let dir = std::env::temp_dir().join(format!("jwe-session-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("keys.json");
    let file_arg = file.to_str().expect("a UTF-8 path");
    cli(&tool, &["keyring", "init", "--file", file_arg]);

    let servers: Vec<Server> = (0..3)
        .map(|_| {
            let port = free_port();
            let child = Command::new(&demo)
                .env("PORT", port.to_string())
                .env("SESSION_KEYS_FILE", &file)
                .env_remove("SESSION_KEYS")
                .env("REDIS_URL", redis.url())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the demo");
            Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
            }
        })
        .collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    // Each server answers (bounded wait for the processes to start).
    for server in &servers {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match http.get(format!("{}/admin/keys", server.base)).send().await {
                Ok(response) if response.status() == 200 => break,
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                other => panic!("{} did not start: {other:?}", server.base),
            }
        }
    }

    // Clients log in, each on a different server.
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..CLIENTS {
        let mut client = Client {
            jar: Jar::new(),
            http: http.clone(),
        };
        let base = &servers[i % servers.len()].base;
        let (status, body) = client
            .send_form(
                reqwest::Method::POST,
                &format!("{base}/login"),
                Some(format!("username=user{i}")),
            )
            .await;
        assert_eq!(status, 303, "login on {base}: {body}");
        assert!(
            client.jar.session_token().is_some(),
            "user{i} has a session"
        );
        clients.push(client);
    }

    let started = Instant::now();
    let mut primaries: Vec<String> = Vec::new();
    let mut kids_seen: Vec<BTreeSet<String>> = vec![BTreeSet::new(); CLIENTS];
    let mut counts = [0u64; CLIENTS];
    let mut requests = 0u64;
    let mut next_server = 0usize;
    let mut last_cycle = Instant::now() - Duration::from_secs(1);
    let budget = Duration::from_secs(PERIOD * (ROTATIONS as u64 + 3) + 30);
    while primaries.len() <= ROTATIONS {
        assert!(
            started.elapsed() < budget,
            "only {} rotations in {:?}",
            primaries.len().saturating_sub(1),
            started.elapsed()
        );
        // The cron job, every half second (idempotent).
        if last_cycle.elapsed() >= Duration::from_millis(500) {
            last_cycle = Instant::now();
            cli(
                &tool,
                &[
                    "keyring",
                    "cycle",
                    "--file",
                    file_arg,
                    "--period",
                    &PERIOD.to_string(),
                    "--lead",
                    &LEAD.to_string(),
                ],
            );
        }
        // One round: every client once, each on the next server.
        for (i, client) in clients.iter_mut().enumerate() {
            let base = &servers[next_server % servers.len()].base;
            next_server += 1;
            let (status, body) = client
                .send(reqwest::Method::POST, &format!("{base}/counter"))
                .await;
            requests += 1;
            assert_eq!(status, 200, "user{i} on {base}: {body}");
            let counter: Value = serde_json::from_str(&body).expect("JSON");
            counts[i] += 1;
            assert_eq!(
                counter["count"], counts[i],
                "user{i} lost a count on {base}"
            );
            let (status, body) = client
                .send(reqwest::Method::GET, &format!("{base}/me"))
                .await;
            requests += 1;
            assert_eq!(status, 200, "user{i} logged out on {base}: {body}");
            let me: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(me["sub"], format!("user{i}"), "{me}");
            let kid = me["kid"].as_str().expect("a kid").to_owned();
            kids_seen[i].insert(kid.clone());
            if primaries.last() != Some(&kid) && !primaries.contains(&kid) {
                primaries.push(kid);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rotations = primaries.len() - 1;
    eprintln!(
        "fleet: {rotations} rotations, {requests} requests, 0 failed, in {:?}",
        started.elapsed()
    );
    assert!(rotations >= ROTATIONS);
    // Every session was re-issued under each new key it lived through.
    for (i, seen) in kids_seen.iter().enumerate() {
        for kid in &primaries[..primaries.len() - 1] {
            assert!(seen.contains(kid), "user{i} never under {kid}: {seen:?}");
        }
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Shared test helpers: a real `redis-server` on a free loopback port, a
//! session manager on a manual clock (`manager`), and a memory store that
//! must be awaited (`stores`).
#![allow(dead_code)]

pub mod manager;
pub mod stores;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on 127.0.0.1, killed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server, or returns `None` (printing why) when the binary is
    /// missing. Under CI a missing binary fails the test instead.
    pub fn start() -> Option<RedisServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI is set: Redis tests must run in CI"
            );
            // Straight to stderr: `eprintln!` is captured, and a passing
            // test would hide that it tested nothing.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: a Redis test, redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("jwe-session-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            port,
            child: None,
            dir,
        };
        server.restart();
        Some(server)
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                if stream.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 7];
                    if stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs one command with a plain connection and returns the reply line.
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("write");
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).expect("read");
        line.trim_end().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `target/debug` (or the profile directory the tests run from).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/<test>-…
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned()
}

/// The path of a built binary, building it when it is missing.
pub fn built_binary(relative: &str, build: &[&str]) -> PathBuf {
    let path = target_dir().join(relative);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(build)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo {build:?} failed");
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

// ---- Redis Cluster -----------------------------------------------------------

/// A reply of the RESP protocol, read by [`RedisCluster::command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

impl Reply {
    /// The text of a status or bulk string reply.
    pub fn text(&self) -> &str {
        match self {
            Reply::Status(text) | Reply::Bulk(Some(text)) => text,
            other => panic!("not a text reply: {other:?}"),
        }
    }

    /// The value of an integer reply.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("not an integer reply: {other:?}"),
        }
    }
}

/// Sends one command on a plain connection to `127.0.0.1:port` and reads
/// its reply (errors included), within 2 seconds.
pub fn resp_command(port: u16, args: &[&str]) -> std::io::Result<Reply> {
    use std::io::{BufReader, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    read_reply(&mut BufReader::new(stream))
}

fn read_reply(reader: &mut impl std::io::BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1.min(line.len()));
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, line.to_owned());
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0u8; len as usize + 2];
                reader.read_exact(&mut buf)?;
                buf.truncate(len as usize);
                Reply::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(read_reply(reader)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad()),
    })
}

/// One node of a [`RedisCluster`].
struct ClusterNode {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A Redis Cluster of three masters (no replicas) on 127.0.0.1, each a
/// `redis-server --cluster-enabled yes` child process with its cluster
/// config file in a temporary directory, joined with `redis-cli --cluster
/// create`; every node killed on drop.
///
/// Persistence is off (`--save ""`, `--appendonly no`): a restarted node
/// keeps its identity and slots (its cluster config file) but not its data.
/// `cluster-node-timeout` is 1 s, so the others flag a dead node as failed
/// quickly, and `cluster-require-full-coverage` is `no`, so the masters
/// still up go on serving their slots meanwhile (with the default `yes`
/// the whole cluster refuses every command while a master with no replica
/// is down).
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts the cluster and waits until every node says
    /// `cluster_state:ok`, or returns `None` (printing SKIPPED) when
    /// `redis-server` or `redis-cli` is missing. Under CI a missing binary
    /// fails the test instead.
    pub fn start() -> Option<RedisCluster> {
        let found = |binary: &str| {
            Command::new(binary)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        };
        if !found("redis-server") || !found("redis-cli") {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server or redis-cli is not installed, and CI is set: Redis Cluster tests must run in CI"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: a Redis Cluster test, redis-server or redis-cli is not installed (apt-get install redis-server)"
            );
            return None;
        }
        // A client port and a cluster bus port per node, all free and held
        // until all are chosen. Before Redis 7 the bus port cannot be set:
        // it is the client port + 10000.
        let bus_port_settable = redis_major_version() >= 7;
        let mut listeners: Vec<TcpListener> = Vec::new();
        let mut ports: Vec<u16> = Vec::new();
        let bind = |port: u16| TcpListener::bind(("127.0.0.1", port)).ok();
        for _ in 0..200 {
            if ports.len() == 6 {
                break;
            }
            let client = bind(0).expect("bind a free port");
            let port = client.local_addr().expect("local addr").port();
            let bus = if bus_port_settable {
                bind(0)
            } else {
                port.checked_add(10_000).and_then(bind)
            };
            if let Some(bus) = bus {
                ports.push(port);
                ports.push(bus.local_addr().expect("local addr").port());
                listeners.push(bus);
            }
            listeners.push(client);
        }
        assert_eq!(ports.len(), 6, "no free ports for a Redis Cluster");
        drop(listeners);
        let dir = std::env::temp_dir().join(format!(
            "jwe-session-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        let nodes = (0..3)
            .map(|i| {
                let node_dir = dir.join(format!("node-{i}"));
                std::fs::create_dir_all(&node_dir).expect("temp dir");
                ClusterNode {
                    port: ports[2 * i],
                    bus_port: ports[2 * i + 1],
                    dir: node_dir,
                    child: None,
                }
            })
            .collect();
        let mut cluster = RedisCluster { nodes, dir };
        for i in 0..3 {
            cluster.start_node(i);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_until_ok(Duration::from_secs(30));
        Some(cluster)
    }

    /// The nodes' URLs, as a client is given them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}/", node.port))
            .collect()
    }

    /// The client port of node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// Runs one command on node `i` (no redirection is followed).
    pub fn command(&self, i: usize, args: &[&str]) -> Reply {
        resp_command(self.nodes[i].port, args)
            .unwrap_or_else(|e| panic!("{args:?} on node {i}: {e}"))
    }

    /// The number of keys node `i` holds.
    pub fn dbsize(&self, i: usize) -> i64 {
        self.command(i, &["DBSIZE"]).int()
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`, asked of a node that is up).
    pub fn slot_of(&self, key: &str) -> u16 {
        let i = self
            .nodes
            .iter()
            .position(|node| node.child.is_some())
            .expect("a node is up");
        u16::try_from(self.command(i, &["CLUSTER", "KEYSLOT", key]).int()).expect("a slot")
    }

    /// Which node serves `key`'s slot, by each node's own view of the slots
    /// it serves (`CLUSTER NODES`, its `myself` line).
    pub fn node_of(&self, key: &str) -> usize {
        let slot = self.slot_of(key);
        (0..self.nodes.len())
            .find(|&i| {
                self.own_slots(i)
                    .iter()
                    .any(|&(a, b)| a <= slot && slot <= b)
            })
            .unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }

    /// The slot ranges node `i` says it serves.
    pub fn own_slots(&self, i: usize) -> Vec<(u16, u16)> {
        let nodes = self.command(i, &["CLUSTER", "NODES"]);
        let line = nodes
            .text()
            .lines()
            .find(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("myself")))
            .expect("a myself line")
            .to_owned();
        line.split(' ')
            .skip(8)
            .filter(|range| !range.starts_with('['))
            .map(|range| match range.split_once('-') {
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => (range.parse().unwrap(), range.parse().unwrap()),
            })
            .collect()
    }

    /// The `cluster_state` node `i` reports.
    pub fn state(&self, i: usize) -> String {
        let info = self.command(i, &["CLUSTER", "INFO"]);
        info.text()
            .lines()
            .find_map(|line| line.strip_prefix("cluster_state:"))
            .unwrap_or("")
            .trim()
            .to_owned()
    }

    /// Whether node `observer` flags node `i` as failed (`fail` in `CLUSTER
    /// NODES`).
    pub fn flags_failed(&self, observer: usize, i: usize) -> bool {
        let address = format!("127.0.0.1:{}@", self.nodes[i].port);
        let nodes = self.command(observer, &["CLUSTER", "NODES"]);
        nodes.text().lines().any(|line| {
            let mut fields = line.split(' ');
            fields.nth(1).is_some_and(|a| a.starts_with(&address))
                && fields
                    .next()
                    .is_some_and(|flags| flags.split(',').any(|flag| flag == "fail"))
        })
    }

    /// Waits until every node that is up says `cluster_state:ok`.
    pub fn wait_until_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let up: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].child.is_some())
                .collect();
            if up.iter().all(|&i| {
                resp_command(self.nodes[i].port, &["CLUSTER", "INFO"])
                    .is_ok_and(|info| matches!(info, Reply::Bulk(Some(ref text)) if text.contains("cluster_state:ok")))
            }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not reach cluster_state:ok within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills node `i` (as a crash would) and waits until its port is
    /// closed.
    pub fn stop_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", node.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes node `i` (`SIGSTOP`): its connections stay open but nothing
    /// answers, as with a hung server or a network partition.
    pub fn pause_node(&self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// Lets a node frozen by [`RedisCluster::pause_node`] run again.
    pub fn resume_node(&self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.nodes[i].child.as_ref().expect("node is up").id();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts node `i` again on its ports with its cluster config file, so
    /// it rejoins as the same node with the same slots (and no data), and
    /// waits until it answers `PING`.
    pub fn restart_node(&mut self, i: usize) {
        self.stop_node(i);
        self.start_node(i);
    }

    fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &node.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            .arg("--dir")
            .arg(&node.dir);
        if node.bus_port != node.port.wrapping_add(10_000) {
            command.args(["--cluster-port", &node.bus_port.to_string()]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if resp_command(node.port, &["PING"]).is_ok_and(|r| r == Reply::Status("PONG".into())) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                node.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The major version of the installed `redis-server` (0 when unknown).
fn redis_major_version() -> u32 {
    let output = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "Redis server v=7.0.15 sha=…"
    output
        .split_once("v=")
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or(0)
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

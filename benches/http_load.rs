//! The HTTP benchmark: a bounded load run on loopback against minimal axum
//! and actix-web handlers, with and without the session layer, and one run
//! during which the key is rotated every second.
//!
//! Run it with `scripts/bench-http.sh` (or `cargo bench --bench http_load
//! --features axum,actix`). Everything stays on 127.0.0.1: the servers run
//! in this process on ephemeral ports, each on one thread (axum: a
//! current-thread tokio runtime; actix: one worker), and the load generator
//! on one other thread (a current-thread tokio runtime driving hyper
//! HTTP/1.1 clients over keep-alive connections), so on a two-core machine
//! each side has a core. The same generator drives every configuration.
//!
//! Every run is bounded in requests and in time. Settings (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HTTP_REQUESTS` | 200000 | measured requests per configuration |
//! | `HTTP_WARMUP` | 20000 | requests sent first and not measured |
//! | `HTTP_CONNECTIONS` | 32 | concurrent keep-alive connections |
//! | `HTTP_MAX_SECS` | 30 | time bound of any one run |
//! | `HTTP_ROTATION_SECS` | 10 | length of the rotation run (a key rotation every second) |
//! | `HTTP_ROUNDS` | 5 | rounds of the six steady configurations, interleaved; each reports the median and spread of its rounds |
//! | `HTTP_ONLY` | all | comma-separated configurations to run |
//! | `HTTP_RATE` | 0 | requests per second the generator paces itself to, over all connections (0: as fast as the server answers) |
//!
//! Every request carries a valid session cookie (about 250 bytes of JSON
//! sealed); the generator keeps each connection's cookie up to date from
//! `Set-Cookie`, as a browser would, so after a rotation each connection's
//! next response re-issues the session under the new key.
//!
//! Besides requests per second and latency, it reports the CPU time the
//! server threads used per request (from `/proc/self/task/*/schedstat`),
//! which does not depend on how fast the generator is. As fast as it goes
//! (the default), a slower server also wakes up for fewer requests at a
//! time, which costs it system time of its own; at a fixed `HTTP_RATE`
//! that every configuration sustains, each one serves the same arrivals,
//! and the CPU added a request is the layer's own.
//!
//! The server's CPU is also split into user and system time (from
//! `/proc/self/task/*/stat`, in the kernel's 10 ms ticks scaled to the
//! scheduler's total, so about 0.1 µs a request at 100,000 requests). The
//! layer makes no system call of its own (every configuration makes the
//! same `recvfrom` and `writev` per request), so the user time added is
//! the layer's code; the system time moves with which of the two threads
//! ends up doing the loopback's shared network work.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{COOKIE, HOST, SET_COOKIE};
use hyper::Request;
use hyper_util::rt::TokioIo;
use jwe_session::revocation::MemoryStore;
use jwe_session::session::{SaveOutcome, SessionConfig, SessionMap};
use jwe_session::{Key, KeyAlgorithm, Keyring};
use jwe_session::{SessionHandle, SessionLayer};

const COOKIE_NAME: &str = "__Host-session";
const BODY: &str = "alice@example.com";

struct Settings {
    requests: usize,
    warmup: usize,
    connections: usize,
    max: Duration,
    rotation: Duration,
    rounds: usize,
    only: Option<Vec<String>>,
    /// Requests per second over all connections; 0: unpaced.
    rate: u64,
}

impl Settings {
    fn from_env() -> Settings {
        let num = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Settings {
            requests: num("HTTP_REQUESTS", 200_000) as usize,
            warmup: num("HTTP_WARMUP", 20_000) as usize,
            connections: num("HTTP_CONNECTIONS", 32).max(1) as usize,
            max: Duration::from_secs(num("HTTP_MAX_SECS", 30).clamp(1, 120)),
            rotation: Duration::from_secs(num("HTTP_ROTATION_SECS", 10).clamp(2, 60)),
            rounds: num("HTTP_ROUNDS", 5).clamp(1, 9) as usize,
            rate: num("HTTP_RATE", 0),
            only: std::env::var("HTTP_ONLY")
                .ok()
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect()),
        }
    }

    /// Each connection's interval between requests at `HTTP_RATE` (at
    /// least a microsecond).
    fn pace(&self) -> Option<Duration> {
        (self.rate > 0).then(|| {
            Duration::from_secs_f64(self.connections as f64 / self.rate as f64)
                .max(Duration::from_micros(1))
        })
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == name))
    }
}

// ---------------------------------------------------------------------------
// Servers

/// The session service; `cache: false` turns the token cache off, so every
/// request opens its token.
fn service(keyring: &Arc<Keyring>, cache: bool) -> SessionLayer {
    let config = if cache {
        SessionConfig::new()
    } else {
        SessionConfig::new().with_token_cache_bytes(0)
    };
    SessionLayer::builder(Arc::clone(keyring), Arc::new(MemoryStore::new()))
        .config(config)
        .build()
        .unwrap()
}

/// A valid session token from `service`'s manager.
async fn token_for(service: &SessionLayer) -> String {
    let manager = service.manager();
    let mut session = manager.start(common::typical_data());
    session.renew();
    session.set_subject(BODY);
    match manager.save(&mut session).await.unwrap() {
        SaveOutcome::Seal { token, .. } => token,
        _ => unreachable!("a new session with data is sealed"),
    }
}

struct Running {
    addr: SocketAddr,
    stop: Box<dyn FnOnce() + Send>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    fn shut_down(self) {
        (self.stop)();
        self.thread.join().unwrap();
    }
}

/// A route layer that does nothing: what axum's layering itself costs a
/// request (`Router::layer` wraps and boxes every route's service again),
/// against which the session layer's own cost can be read.
#[derive(Clone)]
struct NoopLayer;

impl<S> tower_layer::Layer<S> for NoopLayer {
    type Service = Noop<S>;

    fn layer(&self, inner: S) -> Noop<S> {
        Noop(inner)
    }
}

#[derive(Clone)]
struct Noop<S>(S);

impl<S: tower_service::Service<R>, R> tower_service::Service<R> for Noop<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.0.call(request)
    }
}

/// What the axum server runs in front of its handler.
enum Front {
    Bare,
    NoopLayer,
    Session(SessionLayer),
}

fn axum_server(front: Front) -> Running {
    use axum::routing::get;
    use jwe_session::SessionLayer;

    async fn bare() -> &'static str {
        BODY
    }
    async fn with_session(session: SessionHandle<SessionMap>) -> String {
        session.subject().unwrap_or_default()
    }

    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("srv-axum".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = match front {
                    Front::Bare => axum::Router::new().route("/", get(bare)),
                    Front::NoopLayer => axum::Router::new().route("/", get(bare)).layer(NoopLayer),
                    Front::Session(service) => axum::Router::new()
                        .route("/", get(with_session))
                        .layer::<SessionLayer>(service),
                };
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        })
        .unwrap();
    Running {
        addr: addr_rx.recv().unwrap(),
        stop: Box::new(move || {
            let _ = stop_tx.send(());
        }),
        thread,
    }
}

fn actix_server(session: Option<SessionLayer>) -> Running {
    use actix_web::{web, App, HttpResponse, HttpServer};

    async fn bare() -> HttpResponse {
        HttpResponse::Ok().body(BODY)
    }
    async fn with_session(session: SessionHandle<SessionMap>) -> HttpResponse {
        HttpResponse::Ok().body(session.subject().unwrap_or_default())
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (handle_tx, handle_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("srv-actix".to_owned())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = match session {
                    None => HttpServer::new(|| App::new().route("/", web::get().to(bare)))
                        .workers(1)
                        .disable_signals()
                        .listen(listener)
                        .unwrap()
                        .run(),
                    Some(service) => {
                        let middleware = service;
                        HttpServer::new(move || {
                            App::new()
                                .wrap(middleware.clone())
                                .route("/", web::get().to(with_session))
                        })
                        .workers(1)
                        .disable_signals()
                        .listen(listener)
                        .unwrap()
                        .run()
                    }
                };
                handle_tx.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        })
        .unwrap();
    let handle = handle_rx.recv().unwrap();
    Running {
        addr,
        stop: Box::new(move || {
            actix_web::rt::System::new().block_on(handle.stop(true));
        }),
        thread,
    }
}

// ---------------------------------------------------------------------------
// The load generator

#[derive(Default)]
struct Outcome {
    /// (start since the run began, latency), both in microseconds.
    samples: Vec<(u64, u32)>,
    failures: usize,
    reissued: usize,
}

struct Phase {
    addr: SocketAddr,
    requests: usize,
    connections: usize,
    deadline: Duration,
    cookie: Option<String>,
    /// Each connection's interval between requests, when paced.
    pace: Option<Duration>,
}

async fn run_phase(phase: &Phase) -> (Outcome, Duration) {
    let remaining = Arc::new(AtomicUsize::new(phase.requests));
    let began = Instant::now();
    let deadline = began + phase.deadline;
    let mut tasks = Vec::new();
    for k in 0..phase.connections {
        let remaining = Arc::clone(&remaining);
        let addr = phase.addr;
        let cookie = phase.cookie.clone();
        // Paced, the connections' ticks are spread over the interval, so
        // that requests arrive evenly rather than all at once.
        let pace = phase.pace.map(|every| {
            let offset = every.mul_f64(k as f64 / phase.connections as f64);
            (began + offset, every)
        });
        tasks.push(tokio::task::spawn_local(async move {
            connection(addr, cookie, remaining, began, deadline, pace).await
        }));
    }
    let mut total = Outcome::default();
    for task in tasks {
        let outcome = task.await.unwrap();
        total.samples.extend(outcome.samples);
        total.failures += outcome.failures;
        total.reissued += outcome.reissued;
    }
    (total, began.elapsed())
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Some(sender)
}

async fn connection(
    addr: SocketAddr,
    mut cookie: Option<String>,
    remaining: Arc<AtomicUsize>,
    began: Instant,
    deadline: Instant,
    pace: Option<(Instant, Duration)>,
) -> Outcome {
    let host = addr.to_string();
    let mut outcome = Outcome::default();
    let mut sender = None;
    // Paced: one request per tick from `first` on; a late tick is not made
    // up for (the report says when the rate was not sustained).
    let mut ticks = pace.map(|(first, every)| {
        let mut ticks = tokio::time::interval_at(first.into(), every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        if let Some(ticks) = ticks.as_mut() {
            if Instant::now() >= deadline || remaining.load(Ordering::Relaxed) == 0 {
                return outcome;
            }
            ticks.tick().await;
        }
        if Instant::now() >= deadline
            || remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
        {
            return outcome;
        }
        if sender.is_none() {
            sender = connect(addr).await;
            if sender.is_none() {
                outcome.failures += 1;
                continue;
            }
        }
        let mut request = Request::get("/").header(HOST, &host);
        if let Some(cookie) = &cookie {
            request = request.header(COOKIE, format!("{COOKIE_NAME}={cookie}"));
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        let start = Instant::now();
        let client = sender.as_mut().unwrap();
        let ok = async {
            client.ready().await.ok()?;
            let response = client.send_request(request).await.ok()?;
            let ok = response.status() == 200;
            let mut renewed = None;
            for value in response.headers().get_all(SET_COOKIE) {
                let text = value.to_str().ok()?;
                let pair = text.split(';').next()?;
                if let Some(value) = pair
                    .strip_prefix(COOKIE_NAME)
                    .and_then(|r| r.strip_prefix('='))
                {
                    renewed = Some(value.to_owned());
                }
            }
            let body = response.into_body().collect().await.ok()?.to_bytes();
            (ok && body == BODY.as_bytes()).then_some(renewed)
        }
        .await;
        let latency = start.elapsed();
        match ok {
            Some(renewed) => {
                if let Some(value) = renewed {
                    outcome.reissued += 1;
                    cookie = (!value.is_empty()).then_some(value);
                }
                outcome.samples.push((
                    start.duration_since(began).as_micros() as u64,
                    latency.as_micros().min(u32::MAX as u128) as u32,
                ));
            }
            None => {
                outcome.failures += 1;
                sender = None;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// CPU time per thread

/// CPU time of one thread: the scheduler's nanoseconds, and the user and
/// system ticks (1/100 s) of `stat`.
#[derive(Clone, Copy, Default)]
struct ThreadCpu {
    ns: u64,
    user_ticks: u64,
    system_ticks: u64,
}

impl ThreadCpu {
    fn since(self, before: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            ns: self.ns.saturating_sub(before.ns),
            user_ticks: self.user_ticks.saturating_sub(before.user_ticks),
            system_ticks: self.system_ticks.saturating_sub(before.system_ticks),
        }
    }

    fn add(self, other: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            ns: self.ns + other.ns,
            user_ticks: self.user_ticks + other.user_ticks,
            system_ticks: self.system_ticks + other.system_ticks,
        }
    }

    /// The user share of `ns`, in nanoseconds (the ticks say how the
    /// scheduler's exact total divides).
    fn user_ns(self) -> u64 {
        let ticks = self.user_ticks + self.system_ticks;
        if ticks == 0 {
            return 0;
        }
        (self.ns as u128 * self.user_ticks as u128 / ticks as u128) as u64
    }
}

/// CPU time of every thread of this process, by thread id.
fn thread_cpu() -> HashMap<String, ThreadCpu> {
    let mut out = HashMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let tid = task.file_name().to_string_lossy().into_owned();
            let ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse().ok());
            let Some(ns) = ns else { continue };
            // Fields 14 and 15 of `stat`, counted after the command name
            // (which may hold spaces, so from its closing parenthesis).
            let ticks = std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|text| {
                    let rest = &text[text.rfind(')')? + 1..];
                    let mut fields = rest.split_whitespace().skip(11);
                    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
                });
            let (user_ticks, system_ticks) = ticks.unwrap_or((0, 0));
            out.insert(
                tid,
                ThreadCpu {
                    ns,
                    user_ticks,
                    system_ticks,
                },
            );
        }
    }
    out
}

fn current_tid() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// CPU used between two readings by threads other than `skip`.
fn cpu_between(
    before: &HashMap<String, ThreadCpu>,
    after: &HashMap<String, ThreadCpu>,
    skip: &[String],
) -> ThreadCpu {
    after
        .iter()
        .filter(|(tid, _)| !skip.contains(tid))
        .map(|(tid, cpu)| cpu.since(before.get(tid).copied().unwrap_or_default()))
        .fold(ThreadCpu::default(), ThreadCpu::add)
}

// ---------------------------------------------------------------------------
// Runs and report

struct Report {
    name: &'static str,
    requests: usize,
    failures: usize,
    reissued: usize,
    seconds: f64,
    rps: f64,
    p50: u32,
    p99: u32,
    max: u32,
    server_cpu_us: f64,
    /// The user-space part of `server_cpu_us`.
    server_user_us: f64,
    client_cpu_us: f64,
    /// p99 of each one-second window (rotation run only).
    windows: Vec<u32>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Target {
    name: &'static str,
    axum: bool,
    session: bool,
    /// A route layer that does nothing, instead of the session's (axum).
    noop: bool,
    rotate: bool,
    /// The token cache on (the default).
    cache: bool,
}

const TARGETS: [Target; 8] = [
    Target {
        name: "axum-bare",
        axum: true,
        session: false,
        noop: false,
        rotate: false,
        cache: true,
    },
    Target {
        name: "axum-noop-layer",
        axum: true,
        session: false,
        noop: true,
        rotate: false,
        cache: true,
    },
    Target {
        name: "axum-session",
        axum: true,
        session: true,
        noop: false,
        rotate: false,
        cache: true,
    },
    Target {
        name: "axum-session-nocache",
        axum: true,
        session: true,
        noop: false,
        rotate: false,
        cache: false,
    },
    Target {
        name: "actix-bare",
        axum: false,
        session: false,
        noop: false,
        rotate: false,
        cache: true,
    },
    Target {
        name: "actix-session",
        axum: false,
        session: true,
        noop: false,
        rotate: false,
        cache: true,
    },
    Target {
        name: "actix-session-nocache",
        axum: false,
        session: true,
        noop: false,
        rotate: false,
        cache: false,
    },
    Target {
        name: "axum-session-rotation",
        axum: true,
        session: true,
        noop: false,
        rotate: true,
        cache: true,
    },
];

fn run(target: &Target, settings: &Settings, client: &tokio::runtime::Runtime) -> Report {
    let keyring = Arc::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw).unwrap()));
    let service = service(&keyring, target.cache);
    let cookie = client.block_on(token_for(&service));
    let server = match (target.axum, target.session) {
        (true, false) if target.noop => axum_server(Front::NoopLayer),
        (true, false) => axum_server(Front::Bare),
        (true, true) => axum_server(Front::Session(service)),
        (false, false) => actix_server(None),
        (false, true) => actix_server(Some(service)),
    };
    let local = tokio::task::LocalSet::new();
    let warmup = Phase {
        addr: server.addr,
        requests: settings.warmup,
        connections: settings.connections,
        deadline: settings.max,
        cookie: Some(cookie.clone()),
        pace: settings.pace(),
    };
    let (warm, _) = local.block_on(client, run_phase(&warmup));
    assert_eq!(
        warm.failures, 0,
        "{}: failures during the warm-up",
        target.name
    );

    let stop = Arc::new(AtomicBool::new(false));
    let rotator = target.rotate.then(|| {
        let keyring = Arc::clone(&keyring);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("rotator".to_owned())
            .spawn(move || {
                let mut next = Instant::now() + Duration::from_secs(1);
                let mut rotations = 0;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now >= next {
                        keyring.rotate().unwrap();
                        rotations += 1;
                        next += Duration::from_secs(1);
                    }
                    std::thread::sleep(
                        Duration::from_millis(5).min(next.saturating_duration_since(now)),
                    );
                }
                rotations
            })
            .unwrap()
    });
    let (requests, deadline) = if target.rotate {
        (usize::MAX, settings.rotation.min(settings.max))
    } else {
        (settings.requests, settings.max)
    };
    let measured = Phase {
        addr: server.addr,
        requests,
        connections: settings.connections,
        deadline,
        cookie: Some(cookie),
        pace: settings.pace(),
    };
    let skip = [current_tid()];
    let before = thread_cpu();
    let (outcome, elapsed) = local.block_on(client, run_phase(&measured));
    stop.store(true, Ordering::Relaxed);
    if let Some(rotator) = rotator {
        let rotations = rotator.join().unwrap();
        eprintln!("{}: {rotations} rotations", target.name);
    }
    // Read after the rotator has ended, so only the server's threads count.
    let after = thread_cpu();
    server.shut_down();

    let server_cpu = cpu_between(&before, &after, &skip);
    let client_ns = after[&skip[0]].since(before[&skip[0]]).ns;
    let mut latencies: Vec<u32> = outcome.samples.iter().map(|s| s.1).collect();
    latencies.sort_unstable();
    let mut windows = Vec::new();
    if target.rotate {
        let mut by_second: Vec<Vec<u32>> = Vec::new();
        for &(start, latency) in &outcome.samples {
            let second = (start / 1_000_000) as usize;
            if by_second.len() <= second {
                by_second.resize(second + 1, Vec::new());
            }
            by_second[second].push(latency);
        }
        // Whole seconds only: the requests sent in the run's last few
        // milliseconds make a window of a handful, whose "p99" is its
        // slowest request (they still count in the run's p99 and failures).
        by_second.truncate((elapsed.as_secs() as usize).max(1));
        for mut window in by_second {
            window.sort_unstable();
            windows.push(percentile(&window, 99.0));
        }
    }
    let n = latencies.len();
    Report {
        name: target.name,
        requests: n,
        failures: outcome.failures,
        reissued: outcome.reissued,
        seconds: elapsed.as_secs_f64(),
        rps: n as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or(0),
        server_cpu_us: server_cpu.ns as f64 / 1000.0 / n.max(1) as f64,
        server_user_us: server_cpu.user_ns() as f64 / 1000.0 / n.max(1) as f64,
        client_cpu_us: client_ns as f64 / 1000.0 / n.max(1) as f64,
        windows,
    }
}

/// The median of `values`, and their range, as `median (lowest–highest)`.
fn spread(values: &[f64], decimals: usize) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return "–".to_owned();
    }
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    format!(
        "{median:.decimals$} ({:.decimals$}–{:.decimals$})",
        sorted[0],
        sorted[n - 1]
    )
}

/// "met" when every round is at most `limit`, "MISSED" when none is,
/// "unclear" (the spread straddles the limit) otherwise.
fn verdict(values: &[f64], limit: f64) -> &'static str {
    if values.iter().all(|&v| v <= limit) {
        "met"
    } else if values.iter().all(|&v| v > limit) {
        "MISSED"
    } else {
        "unclear"
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let settings = Settings::from_env();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "HTTP load: {} measured requests ({} warm-up) per configuration and round, {} rounds, {} connections, {}, at most {} s per run; rotation run {} s",
        settings.requests,
        settings.warmup,
        settings.rounds,
        settings.connections,
        if settings.rate > 0 {
            format!("paced at {} requests per second", settings.rate)
        } else {
            "unpaced".to_owned()
        },
        settings.max.as_secs(),
        settings.rotation.as_secs()
    );
    let mut rounds: Vec<Vec<Report>> = TARGETS.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        for (i, target) in TARGETS.iter().enumerate() {
            // The rotation run is long: once, after the last round.
            if !settings.wants(target.name) || (target.rotate && round + 1 < settings.rounds) {
                continue;
            }
            let report = run(target, &settings, &client);
            eprintln!(
                "round {}: {}: {:.0} req/s, p50 {} µs, p99 {} µs, {:.2} server µs/req ({:.2} user), {} failures",
                round + 1,
                report.name,
                report.rps,
                report.p50,
                report.p99,
                report.server_cpu_us,
                report.server_user_us,
                report.failures
            );
            rounds[i].push(report);
        }
    }
    // Each configuration's median round by req/s (its latencies and the
    // rest of its row); failures of every round; every round kept for the
    // medians and spreads below.
    let mut reports = Vec::new();
    // (req/s, server CPU, server user CPU) of every round.
    let mut all: HashMap<&'static str, Vec<(f64, f64, f64)>> = HashMap::new();
    for mut runs in rounds.into_iter().filter(|r| !r.is_empty()) {
        let failures: usize = runs.iter().map(|r| r.failures).sum();
        all.insert(
            runs[0].name,
            runs.iter()
                .map(|r| (r.rps, r.server_cpu_us, r.server_user_us))
                .collect(),
        );
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let mut median = runs.swap_remove(runs.len() / 2);
        median.failures = failures;
        reports.push(median);
    }

    println!();
    println!(
        "Medians of {} interleaved rounds, the spread (lowest–highest round) in brackets.",
        settings.rounds
    );
    println!();
    println!("| configuration | req/s | server CPU µs/req | of which user | rounds |");
    println!("|---|---:|---:|---:|---:|");
    for r in &reports {
        let runs = &all[r.name];
        let rps: Vec<f64> = runs.iter().map(|x| x.0).collect();
        let cpu: Vec<f64> = runs.iter().map(|x| x.1).collect();
        let user: Vec<f64> = runs.iter().map(|x| x.2).collect();
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name,
            spread(&rps, 0),
            spread(&cpu, 2),
            spread(&user, 2),
            runs.len()
        );
    }
    println!();
    println!("The median round of each configuration (by req/s):");
    println!();
    println!("| configuration | requests | failed | re-issued | seconds | req/s | p50 µs | p99 µs | max µs | server CPU µs/req | generator CPU µs/req |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {:.1} | {:.1} |",
            r.name,
            r.requests,
            r.failures,
            r.reissued,
            r.seconds,
            r.rps,
            r.p50,
            r.p99,
            r.max,
            r.server_cpu_us,
            r.client_cpu_us
        );
    }
    let find = |name: &str| reports.iter().find(|r| r.name == name);
    println!();
    // The host's own cost: what the bare handlers take, so that runs on
    // different hosts can be compared.
    for framework in ["axum", "actix"] {
        if let Some(bare) = all.get(format!("{framework}-bare").as_str()) {
            let cpu: Vec<f64> = bare.iter().map(|x| x.1).collect();
            let user: Vec<f64> = bare.iter().map(|x| x.2).collect();
            let rps: Vec<f64> = bare.iter().map(|x| x.0).collect();
            println!(
                "host: {framework} bare handler {} µs of server CPU a request ({} user), {} req/s",
                spread(&cpu, 2),
                spread(&user, 2),
                spread(&rps, 0)
            );
        }
    }
    println!();
    // The layer's cost, round by round (each session round against the bare
    // round run just before it), then the median and the spread of those.
    // A target counts as met only when every round meets it, missed when
    // none does, and unclear otherwise.
    for framework in ["axum", "actix"] {
        let Some(bare) = all.get(format!("{framework}-bare").as_str()) else {
            continue;
        };
        for (suffix, label, cpu_target) in [
            ("session", "token cache on", 1.0),
            ("session-nocache", "token cache off", 3.0),
        ] {
            let Some(session) = all.get(format!("{framework}-{suffix}").as_str()) else {
                continue;
            };
            let pairs = bare.iter().zip(session);
            let loss: Vec<f64> = pairs
                .clone()
                .map(|(b, s)| (1.0 - s.0 / b.0) * 100.0)
                .collect();
            let added: Vec<f64> = pairs.clone().map(|(b, s)| s.1 - b.1).collect();
            let added_user: Vec<f64> = pairs.map(|(b, s)| s.2 - b.2).collect();
            // Paced, every configuration answers at the rate asked for:
            // requests per second say nothing of the layer.
            // A round below 98 % of the rate asked for did not serve the
            // same arrivals as the others: said, not hidden.
            let short = session
                .iter()
                .chain(bare.iter())
                .filter(|round| round.0 < 0.98 * settings.rate as f64)
                .count();
            let rps = if settings.rate > 0 && short == 0 {
                format!("req/s paced at {}", settings.rate)
            } else if settings.rate > 0 {
                format!(
                    "req/s paced at {}, NOT SUSTAINED in {short} of the rounds (their CPU a request is not comparable)",
                    settings.rate
                )
            } else {
                format!(
                    "req/s lost {} % (target ≤ 10 %: {})",
                    spread(&loss, 1),
                    verdict(&loss, 10.0)
                )
            };
            println!(
                "{framework}, {label}: {rps}; server CPU added {} µs/request (target ≤ {cpu_target:.1} µs: {}), of which user {} µs",
                spread(&added, 2),
                verdict(&added, cpu_target),
                spread(&added_user, 2),
            );
        }
    }
    // For reference, not a target: what axum's route layering costs with a
    // layer that does nothing, and the session layer against that.
    if let (Some(bare), Some(noop)) = (all.get("axum-bare"), all.get("axum-noop-layer")) {
        let added = |base: &[(f64, f64, f64)], layer: &[(f64, f64, f64)]| -> Vec<f64> {
            base.iter().zip(layer).map(|(b, l)| l.1 - b.1).collect()
        };
        let loss: Vec<f64> = bare
            .iter()
            .zip(noop)
            .map(|(b, l)| (1.0 - l.0 / b.0) * 100.0)
            .collect();
        println!(
            "axum, a route layer that does nothing (reference): req/s lost {} %, server CPU added {} µs/request",
            spread(&loss, 1),
            spread(&added(bare, noop), 2)
        );
        if let Some(session) = all.get("axum-session") {
            println!(
                "axum, the session layer against that no-op layer: server CPU added {} µs/request",
                spread(&added(noop, session), 2)
            );
        }
    }
    if let Some(rotation) = find("axum-session-rotation") {
        let baseline = find("axum-session").map(|r| r.p99);
        let worst = rotation.windows.iter().copied().max().unwrap_or(0);
        println!(
            "rotation: {} failed requests; p99 per one-second window (µs): {:?}",
            rotation.failures, rotation.windows
        );
        if let Some(baseline) = baseline {
            let ok = rotation.failures == 0 && worst <= 2 * baseline;
            println!(
                "rotation: worst window p99 {} µs vs 2 × steady p99 ({} µs) = {} µs: {}",
                worst,
                baseline,
                2 * baseline,
                if ok { "met" } else { "MISSED" }
            );
        }
    }
}

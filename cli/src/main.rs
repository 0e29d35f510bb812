//! `jwe-session`: manage jwe-session keyrings, and seal, open and inspect
//! session tokens from the command line.
//!
//! Exit codes: 0 success, 1 token rejected, 2 usage or configuration error.
//! Messages go to standard error, one line each, and never contain key
//! material or token contents.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// No input may make the tool panic; `println!` panics on a closed pipe.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::print_stdout,
        clippy::print_stderr
    )
)]

mod claims;
mod files;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use jwe_session::clock::unix_seconds;
use jwe_session::keyring::CycleReport;
use jwe_session::{
    jwe, ContentEncryption, Error, Key, KeyAlgorithm, KeyError, KeyState, Keyring, OpenOptions,
    Opened, Rejection, RotationPolicy, SealOptions, SessionConfig,
};
use serde_json::{Map, Value};

/// The environment variable read for keys when `--keys` is not given.
const KEYS_ENV: &str = "JWE_SESSION_KEYS";

/// `keyring cycle`'s default `--max-age`: the default sessions' absolute
/// timeout (12 h) plus leeway (60 s).
const DEFAULT_MAX_AGE: u64 = 12 * 3600 + 60;

/// The most bytes read from standard input.
const STDIN_LIMIT: usize = 1 << 20;

/// Command-line interface for jwe-session: JWE session tokens sealed under a
/// rotating keyring.
#[derive(Debug, Parser)]
#[command(
    name = "jwe-session",
    version,
    about = "Manage jwe-session keyrings; seal, open and inspect session tokens (compact JWE)",
    long_about = "Manage jwe-session keyrings; seal, open and inspect session tokens (compact JWE).\n\n\
        seal and open take their keys from --keys FILE (a JWK Set) or, when it is not given, \
        from the JWE_SESSION_KEYS environment variable (a JWK Set, or kid:base64url-secret \
        entries separated by commas, the first being the primary).",
    after_help = "Exit status: 0 success, 1 token rejected, 2 usage or configuration error."
)]
struct Cli {
    /// JWK Set file holding the keys for seal and open (default: the
    /// JWE_SESSION_KEYS environment variable)
    #[arg(long, global = true, value_name = "FILE")]
    keys: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create, rotate and list keyring files (JWK Sets, mode 0600)
    #[command(subcommand)]
    Keyring(KeyringCommand),

    /// Generate one key and print it as a private JWK (it holds the secret)
    Keygen(KeySpec),

    /// Seal the JSON object read on standard input under the primary key and
    /// print the compact JWE
    Seal {
        /// Set "iat" to now and "exp" to now + SECS (Unix seconds),
        /// replacing any given values
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
    },

    /// Open the token read on standard input and print its key, header and
    /// claims as JSON
    ///
    /// The claims must be a JSON object with a numeric "exp" (and "nbf",
    /// when present, is checked too). A token opened under a key that is not
    /// the primary comes back with "reissued": the same claims sealed under
    /// the primary.
    Open {
        /// Print the plaintext bytes exactly as they are, checking no claims
        #[arg(long)]
        raw: bool,

        /// Clock skew tolerated when checking "exp" and "nbf", in seconds
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        leeway: u64,
    },

    /// Print the protected header of the token read on standard input as
    /// JSON, without decrypting it (needs no keys)
    Inspect,
}

/// The `keyring` subcommands.
#[derive(Debug, Subcommand)]
enum KeyringCommand {
    /// Write a new keyring file with one primary key; never overwrites
    Init {
        /// The keyring file to create
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// The new key's algorithm and id
        #[command(flatten)]
        key: KeySpec,
    },

    /// Make a new primary key; earlier keys are kept to open old tokens. The
    /// file is replaced atomically. Prints the new primary's kid
    Rotate {
        /// The keyring file to rotate
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// The new key's algorithm [default: the current primary's]
        #[arg(long, value_enum, value_name = "ALG")]
        alg: Option<Alg>,

        /// The new key's id [default: random]
        #[arg(long, value_name = "KID")]
        kid: Option<String>,
    },

    /// Add a new key that opens tokens but does not seal yet (the first
    /// step of a fleet rotation: distribute it, then promote it). Prints its
    /// kid
    Stage {
        /// The keyring file
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// The new key's algorithm [default: the current primary's]
        #[arg(long, value_enum, value_name = "ALG")]
        alg: Option<Alg>,

        /// The new key's id [default: random]
        #[arg(long, value_name = "KID")]
        kid: Option<String>,

        /// Make it the primary by itself at this time (Unix seconds): every
        /// process that loads the file switches then, with no restart
        #[arg(long, value_name = "UNIX_SECONDS")]
        promote_at: Option<u64>,
    },

    /// Make a staged key the primary; the old primary is retired
    Promote {
        /// The keyring file
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// The staged key to promote
        #[arg(long, value_name = "KID")]
        kid: String,
    },

    /// Remove retired keys retired more than SECS ago (choose at least the
    /// sessions' absolute lifetime); prints the removed kids
    Prune {
        /// The keyring file
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// How long a retired key is kept, in seconds
        #[arg(long, value_name = "SECS")]
        max_age: u64,
    },

    /// One step of rotation as a policy, for cron: idempotent, and safe to
    /// run every few minutes on one machine
    ///
    /// When nothing is staged and the primary is at least PERIOD - LEAD old,
    /// stages a new key that becomes the primary when the primary is PERIOD
    /// old (but no sooner than LEAD / 2 from now); removes retired keys
    /// retired at least MAX_AGE ago; otherwise changes nothing. The file is
    /// changed under its lock and replaced atomically, and only when its
    /// contents change. Prints one JSON line: {"staged": KID or null,
    /// "promote_at": UNIX_SECONDS or null, "pruned": [KIDS]}
    Cycle {
        /// The keyring file
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// How old the primary gets before a new key takes over, in seconds
        #[arg(long, value_name = "SECS")]
        period: u64,

        /// How long a new key is staged before it takes over, in seconds
        /// (shorter than the period; longer than the fleet takes to load
        /// the file)
        #[arg(long, value_name = "SECS")]
        lead: u64,

        /// How long a retired key is kept, in seconds: at least the
        /// sessions' absolute timeout + leeway [default: 43260, the default
        /// 12 h + 60 s]
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_AGE, hide_default_value = true)]
        max_age: u64,

        /// The new key's algorithm [default: the current primary's]
        #[arg(long, value_enum, value_name = "ALG")]
        alg: Option<Alg>,
    },

    /// Remove the key KID now: every token it sealed stops opening (a
    /// leaked key). Refuses the primary: rotate first. Prints the kid
    Remove {
        /// The keyring file
        #[arg(long, value_name = "FILE")]
        file: PathBuf,

        /// The key to remove
        #[arg(long, value_name = "KID")]
        kid: String,
    },

    /// Print one line per key: kid, algorithm, state
    /// (primary/staged/retired) and a staged key's scheduled promotion (Unix
    /// seconds, else -), tab-separated; never the secret
    List {
        /// The keyring file to list
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

/// The algorithm and `kid` of a key to generate.
#[derive(Debug, Args)]
struct KeySpec {
    /// The key's algorithm
    #[arg(long, value_enum, value_name = "ALG", default_value = "A256KW")]
    alg: Alg,

    /// The key's id [default: random]
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
}

/// The algorithms a key can be generated for, by their JOSE names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Alg {
    /// Direct encryption with a shared A256GCM key
    #[value(name = "dir")]
    Dir,
    /// Direct encryption with a shared A128GCM key
    #[value(name = "A128GCM")]
    A128Gcm,
    /// Direct encryption with a shared A192GCM key
    #[value(name = "A192GCM")]
    A192Gcm,
    /// Direct encryption with a shared A256GCM key
    #[value(name = "A256GCM")]
    A256Gcm,
    /// AES key wrap, 128-bit key
    #[value(name = "A128KW")]
    A128Kw,
    /// AES key wrap, 192-bit key
    #[value(name = "A192KW")]
    A192Kw,
    /// AES key wrap, 256-bit key
    #[value(name = "A256KW")]
    A256Kw,
    /// AES-GCM key wrap, 128-bit key
    #[value(name = "A128GCMKW")]
    A128GcmKw,
    /// AES-GCM key wrap, 192-bit key
    #[value(name = "A192GCMKW")]
    A192GcmKw,
    /// AES-GCM key wrap, 256-bit key
    #[value(name = "A256GCMKW")]
    A256GcmKw,
    /// RSAES-OAEP (SHA-1), 2048-bit RSA key
    #[value(name = "RSA-OAEP")]
    RsaOaep,
    /// RSAES-OAEP with SHA-256, 2048-bit RSA key
    #[value(name = "RSA-OAEP-256")]
    RsaOaep256,
}

impl Alg {
    /// Generates a fresh key of this algorithm, with a random `kid`.
    fn generate(self) -> Result<Key, KeyError> {
        let alg = match self {
            Alg::Dir | Alg::A256Gcm => return Key::generate_dir(ContentEncryption::A256Gcm),
            Alg::A128Gcm => return Key::generate_dir(ContentEncryption::A128Gcm),
            Alg::A192Gcm => return Key::generate_dir(ContentEncryption::A192Gcm),
            Alg::A128Kw => KeyAlgorithm::A128Kw,
            Alg::A192Kw => KeyAlgorithm::A192Kw,
            Alg::A256Kw => KeyAlgorithm::A256Kw,
            Alg::A128GcmKw => KeyAlgorithm::A128GcmKw,
            Alg::A192GcmKw => KeyAlgorithm::A192GcmKw,
            Alg::A256GcmKw => KeyAlgorithm::A256GcmKw,
            Alg::RsaOaep => KeyAlgorithm::RsaOaep,
            Alg::RsaOaep256 => KeyAlgorithm::RsaOaep256,
        };
        Key::generate(alg)
    }
}

/// Why a command failed, and so how the process exits.
#[derive(Debug)]
enum Failure {
    /// A token was refused (exit 1). The text says why, after
    /// `token rejected: `.
    Rejected(String),
    /// A usage or configuration error (exit 2).
    Usage(String),
    /// Standard output was closed by the reader: exit quietly.
    BrokenPipe,
}

impl Failure {
    /// A token rejected by the library: its kind and precise reason.
    fn rejection(rejection: &Rejection) -> Failure {
        Failure::Rejected(format!(
            "{}: {}",
            rejection.kind().as_str(),
            rejection.reason()
        ))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout and exit 0; usage errors exit 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(()) | Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
        Err(Failure::Rejected(reason)) => {
            report(&format!("token rejected: {reason}"));
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            report(&message);
            ExitCode::from(2)
        }
    }
}

/// Writes one line to standard error, with control characters escaped so a
/// message is always exactly one line. Write errors are ignored.
fn report(message: &str) {
    let line = format!("jwe-session: {}\n", one_line(message));
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// `message` with every control character escaped.
fn one_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// Runs one parsed command line.
fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Keyring(KeyringCommand::Init { file, key }) => keyring_init(&file, &key),
        Command::Keyring(KeyringCommand::Rotate { file, alg, kid }) => {
            keyring_rotate(&file, alg, kid)
        }
        Command::Keyring(KeyringCommand::Stage {
            file,
            alg,
            kid,
            promote_at,
        }) => keyring_change(&file, |keyring| {
            let key = with_kid(next_key(keyring, alg)?, kid.as_deref())?;
            let kid = key.kid().to_owned();
            keyring
                .stage(key)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            if let Some(at) = promote_at {
                keyring
                    .promote_at(&kid, UNIX_EPOCH + Duration::from_secs(at))
                    .map_err(|e| Failure::Usage(e.to_string()))?;
            }
            Ok(kid + "\n")
        }),
        Command::Keyring(KeyringCommand::Promote { file, kid }) => {
            keyring_change(&file, |keyring| {
                keyring
                    .promote(&kid)
                    .map_err(|e| Failure::Usage(e.to_string()))?;
                Ok(kid.clone() + "\n")
            })
        }
        Command::Keyring(KeyringCommand::Remove { file, kid }) => {
            keyring_change(&file, |keyring| {
                keyring
                    .remove(&kid)
                    .map_err(|e| Failure::Usage(e.to_string()))?;
                Ok(kid.clone() + "\n")
            })
        }
        Command::Keyring(KeyringCommand::Prune { file, max_age }) => {
            keyring_change(&file, |keyring| {
                // The operator's --max-age stands for the sessions' lifetime.
                let removed = keyring.prune_forced(SystemTime::now(), Duration::from_secs(max_age));
                Ok(removed.iter().map(|kid| format!("{kid}\n")).collect())
            })
        }
        Command::Keyring(KeyringCommand::Cycle {
            file,
            period,
            lead,
            max_age,
            alg,
        }) => keyring_cycle(&file, period, lead, max_age, alg),
        Command::Keyring(KeyringCommand::List { file }) => keyring_list(&file),
        Command::Keygen(spec) => {
            let key = new_key(&spec)?;
            write_stdout(&[key.to_jwk().as_bytes(), b"\n"])
        }
        Command::Seal { ttl } => seal(cli.keys.as_deref(), ttl),
        Command::Open { raw, leeway } => open(cli.keys.as_deref(), raw, leeway),
        Command::Inspect => inspect(),
    }
}

/// Generates the key a [`KeySpec`] asks for.
fn new_key(spec: &KeySpec) -> Result<Key, Failure> {
    let key = spec
        .alg
        .generate()
        .map_err(|e| Failure::Usage(format!("cannot generate a key: {}", e.problem())))?;
    with_kid(key, spec.kid.as_deref())
}

/// Gives `key` the `kid` asked for, if any.
fn with_kid(key: Key, kid: Option<&str>) -> Result<Key, Failure> {
    match kid {
        None => Ok(key),
        Some(kid) => key
            .with_kid(kid)
            .map_err(|e| Failure::Usage(format!("invalid --kid: {}", e.problem()))),
    }
}

/// `keyring init`.
fn keyring_init(file: &Path, spec: &KeySpec) -> Result<(), Failure> {
    if files::exists(file) {
        return Err(files::exists_error(file));
    }
    let key = new_key(spec)?;
    let kid = key.kid().to_owned();
    let keyring = Keyring::new(key);
    files::create_new(file, keyring.to_jwk_set().as_bytes())?;
    write_stdout(&[kid.as_bytes(), b"\n"])
}

/// `keyring rotate`.
fn keyring_rotate(file: &Path, alg: Option<Alg>, kid: Option<String>) -> Result<(), Failure> {
    keyring_change(file, |keyring| {
        let next = with_kid(next_key(keyring, alg)?, kid.as_deref())?;
        let new_kid = next.kid().to_owned();
        keyring
            .rotate_to(next)
            .map_err(|e| Failure::Usage(format!("cannot rotate {}: {e}", file.display())))?;
        Ok(new_kid + "\n")
    })
}

/// A new key of `alg`, or else of the primary's algorithm.
fn next_key(keyring: &Keyring, alg: Option<Alg>) -> Result<Key, Failure> {
    match alg {
        Some(alg) => alg.generate(),
        None => keyring.snapshot().primary().key().generate_like(),
    }
    .map_err(|e| Failure::Usage(format!("cannot generate a key: {}", e.problem())))
}

/// Changes a keyring file under its lock, replaces it atomically, then
/// prints what `change` returned.
fn keyring_change(
    file: &Path,
    change: impl FnOnce(&Keyring) -> Result<String, Failure>,
) -> Result<(), Failure> {
    let locked = files::lock(file)?;
    let keyring = files::parse_keyring(file, &locked.contents)?;
    let output = change(&keyring)?;
    files::replace(&locked, keyring.to_jwk_set().as_bytes())?;
    drop(locked);
    write_stdout(&[output.as_bytes()])
}

/// `keyring cycle`: one step of rotation as a policy, under the file's lock.
/// The file is replaced only when its contents change (a key staged or
/// pruned, a promotion that came due recorded, times the file lacked
/// written), so a run with nothing to do leaves it as it is.
fn keyring_cycle(
    file: &Path,
    period: u64,
    lead: u64,
    max_age: u64,
    alg: Option<Alg>,
) -> Result<(), Failure> {
    let policy = RotationPolicy::new(
        Duration::from_secs(period),
        Duration::from_secs(lead),
        &SessionConfig::default(),
    )
    .map_err(|e| match e {
        Error::Config(message) => Failure::Usage(message),
        other => Failure::Usage(other.to_string()),
    })?
    // The operator's --max-age stands for the sessions' lifetime.
    .with_retired_lifetime_unchecked(Duration::from_secs(max_age));
    let locked = files::lock(file)?;
    let keyring = files::parse_keyring(file, &locked.contents)?;
    let report = keyring
        .cycle_with(&policy, |primary| match alg {
            Some(alg) => alg.generate(),
            None => primary.generate_like(),
        })
        .map_err(|e| Failure::Usage(format!("cannot cycle {}: {e}", file.display())))?;
    let contents = keyring.to_jwk_set();
    if contents.as_bytes() != locked.contents.as_slice() {
        files::replace(&locked, contents.as_bytes())?;
    }
    drop(locked);
    write_stdout(&[cycle_report(&report).as_bytes(), b"\n"])
}

/// The JSON line `keyring cycle` prints, members in a fixed order.
fn cycle_report(report: &CycleReport) -> String {
    let string = |text: &str| Value::String(text.to_owned()).to_string();
    let pruned: Vec<String> = report.pruned.iter().map(|kid| string(kid)).collect();
    format!(
        "{{\"staged\":{},\"promote_at\":{},\"pruned\":[{}]}}",
        report.staged.as_deref().map_or("null".to_owned(), string),
        report
            .promote_at
            .map_or("null".to_owned(), |at| at.to_string()),
        pruned.join(",")
    )
}

/// `keyring list`: reads the file without importing its keys (no RSA key
/// check: listing uses no key). One line per key: kid, algorithm, state,
/// and the scheduled promotion (Unix seconds) of a staged key, else `-`.
fn keyring_list(file: &Path) -> Result<(), Failure> {
    let keys = files::describe_keyring(file)?;
    let mut out = String::new();
    for entry in &keys {
        out.push_str(entry.kid());
        out.push('\t');
        out.push_str(entry.alg().name());
        out.push('\t');
        out.push_str(entry.state().as_str());
        out.push('\t');
        match entry
            .promote_at()
            .filter(|_| entry.state() == KeyState::Staged)
        {
            Some(at) => out.push_str(&unix_seconds(at).to_string()),
            None => out.push('-'),
        }
        out.push('\n');
    }
    write_stdout(&[out.as_bytes()])
}

/// The longest token `open` and `inspect` accept: room for session tokens
/// spread over several cookies.
const MAX_TOKEN_LEN: usize = 64 * 1024;

fn open_options() -> OpenOptions {
    OpenOptions::new().with_max_len(MAX_TOKEN_LEN)
}

/// The keyring for `seal` and `open`: from `--keys`, else from the
/// environment.
fn load_keys(keys: Option<&Path>) -> Result<Keyring, Failure> {
    if let Some(path) = keys {
        return files::load_keyring(path);
    }
    if std::env::var_os(KEYS_ENV).is_none() {
        return Err(Failure::Usage(format!(
            "no keys: pass --keys FILE or set the environment variable {KEYS_ENV}"
        )));
    }
    // The library's message names the variable and never the secret.
    Keyring::from_env(KEYS_ENV).map_err(|e| Failure::Usage(e.to_string()))
}

/// `seal`.
fn seal(keys: Option<&Path>, ttl: Option<u64>) -> Result<(), Failure> {
    let keyring = load_keys(keys)?;
    let input = read_stdin()?;
    let mut claims = match serde_json::from_slice::<Value>(&input) {
        Ok(Value::Object(claims)) => claims,
        Ok(_) => {
            return Err(Failure::Usage(
                "standard input is not a JSON object".to_owned(),
            ))
        }
        Err(e) => {
            return Err(Failure::Usage(format!(
                "standard input is not a JSON object (invalid JSON at line {}, column {})",
                e.line(),
                e.column()
            )))
        }
    };
    if let Some(ttl) = ttl {
        let now = unix_seconds(SystemTime::now());
        let exp = now
            .checked_add(ttl)
            .ok_or_else(|| Failure::Usage(format!("--ttl {ttl} is too large")))?;
        claims.insert("iat".to_owned(), Value::from(now));
        claims.insert("exp".to_owned(), Value::from(exp));
    }
    let plaintext = zeroize::Zeroizing::new(Value::Object(claims).to_string());
    let token = keyring
        .seal(plaintext.as_bytes())
        .map_err(|e| Failure::Usage(format!("cannot seal: {e}")))?;
    write_stdout(&[token.as_bytes(), b"\n"])
}

/// `open`.
fn open(keys: Option<&Path>, raw: bool, leeway: u64) -> Result<(), Failure> {
    let keyring = load_keys(keys)?;
    let input = read_stdin()?;
    let token = token_text(&input)?;
    let opened = keyring
        .open_with(token, &open_options())
        .map_err(|e| Failure::rejection(&e))?;
    if raw {
        return write_stdout(&[opened.plaintext()]);
    }
    let now = unix_seconds(SystemTime::now());
    let claims = claims::check(opened.plaintext(), now, leeway)
        .map_err(|reason| Failure::Rejected(reason.to_owned()))?;
    let reissued = match opened.key_state() {
        KeyState::Primary => None,
        KeyState::Staged | KeyState::Retired => Some(reissue(&keyring, &opened)?),
    };
    let out = zeroize::Zeroizing::new(open_report(&opened, claims, reissued.as_deref()));
    write_stdout(&[out.as_bytes(), b"\n"])
}

/// Seals an opened token's plaintext again under the primary key, keeping
/// each of the header's `typ` and `cty` that the library can write (a token
/// sealed elsewhere may carry values it refuses to write).
fn reissue(keyring: &Keyring, opened: &Opened) -> Result<String, Failure> {
    let writable = |value: &&str| SealOptions::is_writable(value);
    let header = opened.header();
    let mut options = SealOptions::new();
    if let Some(typ) = header.typ().filter(writable) {
        options = options.with_typ(typ);
    }
    if let Some(cty) = header.cty().filter(writable) {
        options = options.with_cty(cty);
    }
    keyring
        .seal_with(opened.plaintext(), &options)
        .map_err(|e| Failure::Usage(format!("cannot seal the token again: {e}")))
}

/// The JSON object `open` prints, members in a fixed order.
fn open_report(opened: &Opened, claims: Map<String, Value>, reissued: Option<&str>) -> String {
    let header = opened.header();
    let string = |text: &str| Value::String(text.to_owned()).to_string();
    let mut out = String::with_capacity(256 + opened.plaintext().len());
    out.push_str("{\"kid\":");
    out.push_str(&string(opened.kid()));
    out.push_str(",\"alg\":");
    out.push_str(&string(header.alg().name()));
    out.push_str(",\"enc\":");
    out.push_str(&string(header.enc().name()));
    out.push_str(",\"key_state\":");
    out.push_str(&string(opened.key_state().as_str()));
    out.push_str(",\"claims\":");
    out.push_str(&Value::Object(claims).to_string());
    if let Some(token) = reissued {
        out.push_str(",\"reissued\":");
        out.push_str(&string(token));
    }
    out.push('}');
    out
}

/// `inspect`.
fn inspect() -> Result<(), Failure> {
    let input = read_stdin()?;
    let token = token_text(&input)?;
    let parsed = jwe::parse(token, &open_options()).map_err(|e| Failure::rejection(&e))?;
    let header = Value::Object(parsed.header().to_json().clone()).to_string();
    write_stdout(&[header.as_bytes(), b"\n"])
}

/// The token in `input`: UTF-8, surrounding whitespace removed.
fn token_text(input: &[u8]) -> Result<&str, Failure> {
    std::str::from_utf8(input)
        .map(str::trim)
        .map_err(|_| Failure::Rejected("malformed: not UTF-8 text".to_owned()))
}

/// Reads all of standard input, refusing more than [`STDIN_LIMIT`] bytes.
fn read_stdin() -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    let mut input = zeroize::Zeroizing::new(Vec::with_capacity(8 * 1024));
    let limit = u64::try_from(STDIN_LIMIT)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut input)
        .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
    if input.len() > STDIN_LIMIT {
        return Err(Failure::Usage(format!(
            "standard input is larger than {} MiB",
            STDIN_LIMIT >> 20
        )));
    }
    Ok(input)
}

/// Writes `parts` to standard output and flushes. A closed pipe ends the
/// program quietly; any other write error is reported.
fn write_stdout(parts: &[&[u8]]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let result = parts
        .iter()
        .try_for_each(|part| out.write_all(part))
        .and_then(|()| out.flush());
    result.map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Usage(format!("cannot write to standard output: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_alg_generates_a_key_of_that_alg() {
        for alg in Alg::value_variants() {
            let key = alg.generate().unwrap();
            let name = alg.to_possible_value().unwrap().get_name().to_owned();
            match key.alg() {
                KeyAlgorithm::Dir => assert_eq!(
                    if name == "dir" {
                        "A256GCM"
                    } else {
                        name.as_str()
                    },
                    key.enc().name()
                ),
                other => assert_eq!(other.name(), name),
            }
        }
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(
            one_line("key file a\nb\r\tc: é"),
            "key file a\\nb\\r\\tc: é"
        );
    }
}

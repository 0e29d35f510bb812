//! The Redis revocation store (feature `redis`): one Redis server, or a
//! Redis Cluster.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;

use super::{CheckOutcome, RevocationStore, SubjectState};
use crate::clock::{unix_millis, Clock};
use crate::error::StoreError;

/// A revocation store in Redis, shared by every process of a fleet: one
/// server ([`RedisStore::builder`]) or a Redis Cluster
/// ([`RedisStore::cluster_builder`]).
///
/// * One key per subject that has a revocation: `{prefix}subject:{sub}`, a hash
///   with the fields `g` (generation), `d` (data generation), `e` (time of
///   the latest revocation, Unix ms, for tokens of format 1) and one field
///   `s:{sid}` per revoked session holding when it lapses (Unix ms). Its TTL
///   ends when no token it could match is still alive, so Redis never holds
///   a dead entry; lapsed `s:` fields are dropped by the next write.
/// * One round trip per check: `HMGET` of one key, so a check never spans
///   two keys (or two cluster slots).
/// * Every write is one Lua script with that one key, atomic in Redis: a
///   check that starts after a revocation returned sees it, from any
///   server. Scripts are sent by their SHA-1 (`EVALSHA`), and whole only
///   to a node that does not have them yet (after a restart).
/// * In a cluster every operation therefore touches one key, so one slot
///   on one master: no hash tags, no `CROSSSLOT`, and subjects spread over
///   every master. Reads go to the masters only.
/// * At most [`RedisStoreBuilder::max_sessions_per_subject`] (100) revoked
///   sessions per subject; one more revokes the subject instead.
/// * The connection is made lazily and remade after Redis restarts
///   ([`ConnectionManager`], or for a cluster the cluster client's
///   connection to each node); every command is bounded by a timeout, so a
///   dead Redis (or cluster node) makes requests fail fast instead of
///   hanging.
/// * When Redis cannot be reached, operations return
///   [`StoreError::Unavailable`]; the session layer fails closed on it unless
///   configured otherwise. In a cluster only the subjects whose slots live
///   on an unreachable master are affected.
///
/// ```no_run
/// use jwe_session::revocation::RedisStore;
/// # async fn run() -> Result<(), jwe_session::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .key_prefix("myapp:session:")
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    clock: Arc<dyn Clock>,
    max_sessions_per_subject: usize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.connection {
            Connection::Single(_) => "single",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("mode", &mode)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The connection to one server or to a cluster: every operation goes
/// through [`Connection::query`], whichever it is.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    async fn query<R: redis::FromRedisValue>(&self, command: &redis::Cmd) -> redis::RedisResult<R> {
        match self {
            Connection::Single(connection) => command.query_async(&mut connection.clone()).await,
            // Routed by the command's key: `HMGET key …`, `EVALSHA sha 1 key …`.
            Connection::Cluster(connection) => command.query_async(&mut connection.clone()).await,
        }
    }
}

/// Where the store connects.
#[derive(Debug)]
enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// Builds a [`RedisStore`].
#[derive(Debug)]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    max_sessions_per_subject: usize,
}

impl RedisStoreBuilder {
    /// Sets the bound on one subject's live session revocations (default
    /// 100, at least 1); one more revokes every session of the subject.
    #[must_use]
    pub fn max_sessions_per_subject(mut self, max: usize) -> Self {
        self.max_sessions_per_subject = max.max(1);
        self
    }

    /// Sets the prefix of every key (default `"jwe-session:"`).
    ///
    /// In a cluster, do not put a hash tag (`{…}`) in it: every key would
    /// then hash to one slot, so every subject would live on one master.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the bound on connecting and on each command (default 1 s). In
    /// a cluster it bounds each command whole, retries and redirections
    /// included.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the time from `clock` (to compute TTLs) instead of the system
    /// clock.
    #[must_use]
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Makes the store. No connection is made yet: the first command
    /// connects, so an application starts even while Redis is down. Must be
    /// called within a Tokio runtime.
    ///
    /// Fails (with [`StoreError::Unavailable`]) only on a URL that does not
    /// parse, or an empty list of cluster nodes.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let connection = match &self.target {
            Target::Single(url) => Connection::Single(self.single(url)?),
            Target::Cluster(nodes) => Connection::Cluster(self.cluster(nodes)?),
        };
        Ok(RedisStore {
            connection,
            prefix: Arc::from(self.prefix),
            clock: self.clock,
            max_sessions_per_subject: self.max_sessions_per_subject,
        })
    }

    fn single(&self, url: &str) -> Result<ConnectionManager, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)
    }

    fn cluster(&self, nodes: &[String]) -> Result<ClusterConnection, StoreError> {
        if nodes.is_empty() {
            return Err(unavailable(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis Cluster node given",
            ))));
        }
        if hash_tag(&self.prefix).is_some() {
            tracing::warn!(
                prefix = %self.prefix,
                "the Redis key prefix holds a hash tag: every subject hashes to one slot, so one master holds them all"
            );
        }
        // Each attempt is bounded by the timeout, and so is the whole
        // command (retries, redirections and reconnections included). The
        // retries cover a MOVED after a failover or resharding and a
        // connection being remade; the client keeps reconnecting to a dead
        // node in the background (backing off up to 1 s), so a restarted
        // node is used again without any request waiting for it.
        let client = ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .overall_response_timeout(Some(self.timeout))
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map_err(unavailable)?;
        let config = ClusterConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        // Connects in the background: the first command waits for it, up
        // to the timeout.
        Ok(client.get_pending_async_connection_with_config(config))
    }
}

/// The hash tag Redis Cluster would hash `key` by instead of the whole key:
/// the text between its first `{` and the first `}` after it, when not
/// empty.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')?;
    (close > 0).then(|| &key[open + 1..open + 1 + close])
}

/// Logged by whoever gets the error (the session manager, the service),
/// once.
fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

impl RedisStore {
    /// Starts building a store for the Redis at `url`
    /// (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStore::builder_for(Target::Single(url.into()))
    }

    /// Starts building a store for the Redis Cluster that `nodes` belong
    /// to (`redis://host:port/` each; one reachable node is enough to find
    /// the others, more are tried when it is down).
    ///
    /// Every operation touches one key, `{prefix}subject:{sub}`, so it is sent
    /// to the master of that key's slot in one round trip, as with one
    /// server; subjects spread over the masters. A master that cannot be
    /// reached fails the requests for its subjects only (with
    /// [`StoreError::Unavailable`], after the timeout at most); the others
    /// go on, and it is used again once it is back.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use jwe_session::revocation::RedisStore;
    /// # async fn run() -> Result<(), jwe_session::StoreError> {
    /// let store = RedisStore::cluster_builder([
    ///     "redis://10.0.0.1:6379/",
    ///     "redis://10.0.0.2:6379/",
    ///     "redis://10.0.0.3:6379/",
    /// ])
    /// .key_prefix("myapp:session:")
    /// .timeout(Duration::from_millis(500))
    /// .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster_builder<I, S>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStore::builder_for(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    fn builder_for(target: Target) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target,
            prefix: "jwe-session:".to_owned(),
            timeout: Duration::from_secs(1),
            clock: crate::clock::system(),
            max_sessions_per_subject: super::memory::DEFAULT_MAX_SESSIONS_PER_SUBJECT,
        }
    }

    /// A store for the Redis at `url` with the defaults.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn new(url: impl Into<String>) -> Result<RedisStore, StoreError> {
        RedisStore::builder(url).build()
    }

    /// A store for the Redis Cluster that `nodes` belong to, with the
    /// defaults; see [`RedisStore::cluster_builder`].
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn new_cluster<I, S>(nodes: I) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStore::cluster_builder(nodes).build()
    }

    /// Whether the store talks to a Redis Cluster.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// The key holding a subject's entry.
    ///
    /// ```no_run
    /// # use jwe_session::revocation::RedisStore;
    /// # fn run() -> Result<(), jwe_session::StoreError> {
    /// let store = RedisStore::builder("redis://127.0.0.1:6379/").key_prefix("app:").build()?;
    /// assert_eq!(store.subject_key("alice"), "app:subject:alice");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn subject_key(&self, sub: &str) -> String {
        format!("{}subject:{sub}", self.prefix)
    }

    fn now_ms(&self) -> u64 {
        unix_millis(self.clock.now())
    }

    /// Runs `script` on the subject's key: by its SHA-1, and whole when
    /// the node does not have it yet (a first use, a restarted node). In a
    /// cluster both are routed by the key, so the script is loaded on the
    /// node that needs it and nowhere else (`SCRIPT LOAD` would go to
    /// every master, and fail while any is down).
    async fn script<R: redis::FromRedisValue>(
        &self,
        script: &Script,
        sub: &str,
        args: &[String],
    ) -> Result<R, StoreError> {
        let key = self.subject_key(sub);
        let command = |name: &str, body: &str| {
            let mut command = redis::cmd(name);
            command.arg(body).arg(1).arg(&key);
            for arg in args {
                command.arg(arg.as_str());
            }
            command
        };
        match self
            .connection
            .query(&command("EVALSHA", &script.sha1))
            .await
        {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                self.connection
                    .query(&command("EVAL", &script.code))
                    .await
                    .map_err(unavailable)
            }
            result => result.map_err(unavailable),
        }
    }
}

impl RedisStore {
    /// Runs a script that moves one of the subject's generations as of
    /// `now` and keeps its entry until `until`; the subject's new state.
    async fn move_generation(
        &self,
        script: &Script,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        let fields: Vec<Option<u64>> = self
            .script(
                script,
                sub,
                &[
                    unix_millis(now).to_string(),
                    unix_millis(until).to_string(),
                    self.now_ms().to_string(),
                ],
            )
            .await?;
        Ok(state_of(&fields))
    }
}

/// Reads a subject's state from the fields `g`, `d`, `e`.
fn state_of(fields: &[Option<u64>]) -> SubjectState {
    let field = |i: usize| fields.get(i).copied().flatten().unwrap_or(0);
    SubjectState::new(field(0), field(1), field(2))
}

/// Shared by the scripts: drops the subject's lapsed `s:` fields, and
/// answers how many live ones there are and the latest time one lapses.
/// `now` is the caller's time in Unix ms.
const LAPSED_SESSIONS: &str = r#"
local function sessions(key, now, drop_all)
  local all = redis.call('HGETALL', key)
  local live, latest = 0, 0
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 's:' then
      local u = tonumber(all[i + 1]) or 0
      if u <= now or drop_all then
        redis.call('HDEL', key, f)
      else
        live = live + 1
      end
      if u > latest then latest = u end
    end
  end
  return live, latest
end
local function generation(key, field, now)
  local current = tonumber(redis.call('HGET', key, field) or '0') or 0
  local moved = current + 1
  if now > moved then moved = now end
  redis.call('HSET', key, field, string.format('%.0f', moved))
end
local function revoke(key, now)
  generation(key, 'g', now)
  local e = tonumber(redis.call('HGET', key, 'e') or '0') or 0
  if now > e then redis.call('HSET', key, 'e', string.format('%.0f', now)) end
end
local function keep(key, lapse, now)
  local ttl = lapse - now
  if ttl > 0 and redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, string.format('%.0f', ttl))
  end
end
local function state(key)
  return redis.call('HMGET', key, 'g', 'd', 'e')
end
"#;

/// Revokes a session (ARGV: field, lapse, now, bound); past the bound,
/// revokes the subject. Returns 1, or 2 when the subject was revoked.
const SESSION_SCRIPT: &str = r#"
local key, field = KEYS[1], ARGV[1]
local lapse, now, bound = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local live, latest = sessions(key, now, false)
local held = tonumber(redis.call('HGET', key, field) or '0') or 0
local result = 1
if held > now then
  if lapse > held then redis.call('HSET', key, field, ARGV[2]) end
elseif live >= bound then
  sessions(key, now, true)
  revoke(key, now)
  if latest > lapse then lapse = latest end
  result = 2
else
  redis.call('HSET', key, field, ARGV[2])
end
keep(key, lapse, now)
return result
"#;

/// Revokes the subject (ARGV: at, lapse, now); its revoked sessions are
/// covered by the new generation and dropped.
const SUBJECT_SCRIPT: &str = r#"
local key = KEYS[1]
local at, lapse, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local _, latest = sessions(key, now, true)
if latest > lapse then lapse = latest end
revoke(key, at)
keep(key, lapse, now)
return state(key)
"#;

/// Marks the subject's sessions stale (ARGV: at, lapse, now).
const STALE_SCRIPT: &str = r#"
local key = KEYS[1]
local at, lapse, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
generation(key, 'd', at)
keep(key, lapse, now)
return state(key)
"#;

fn with_helpers(script: &str) -> String {
    format!("{LAPSED_SESSIONS}{script}")
}

/// A script with the helpers, and its SHA-1 for `EVALSHA`.
struct Script {
    code: String,
    sha1: String,
}

impl Script {
    fn new(script: &str) -> Script {
        let code = with_helpers(script);
        let sha1 = redis::Script::new(&code).get_hash().to_owned();
        Script { code, sha1 }
    }
}

/// The scripts, built once.
struct Scripts {
    session: Script,
    subject: Script,
    stale: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        session: Script::new(SESSION_SCRIPT),
        subject: Script::new(SUBJECT_SCRIPT),
        stale: Script::new(STALE_SCRIPT),
    })
}

#[async_trait]
impl RevocationStore for RedisStore {
    async fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let (until, now) = (unix_millis(until), self.now_ms());
        if until <= now {
            return Ok(()); // nothing it could match is alive
        }
        let outcome: i64 = self
            .script(
                &scripts().session,
                sub,
                &[
                    format!("s:{sid}"),
                    until.to_string(),
                    now.to_string(),
                    self.max_sessions_per_subject.to_string(),
                ],
            )
            .await?;
        if outcome == 2 {
            tracing::warn!(
                bound = self.max_sessions_per_subject,
                "a subject reached its bound of revoked sessions; revoked all of its sessions instead"
            );
        }
        Ok(())
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        self.move_generation(&scripts().subject, sub, now, until)
            .await
    }

    async fn mark_stale(
        &self,
        sub: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<SubjectState, StoreError> {
        self.move_generation(&scripts().stale, sub, now, until)
            .await
    }

    async fn subject(&self, sub: &str) -> Result<SubjectState, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.subject_key(sub))
            .arg("g")
            .arg("d")
            .arg("e");
        let fields: Vec<Option<u64>> =
            self.connection.query(&command).await.map_err(unavailable)?;
        Ok(state_of(&fields))
    }

    async fn check(&self, sub: &str, sid: &str) -> Result<CheckOutcome, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.subject_key(sub))
            .arg("g")
            .arg("d")
            .arg("e")
            .arg(format!("s:{sid}"));
        let fields: Vec<Option<u64>> =
            self.connection.query(&command).await.map_err(unavailable)?;
        let now = self.now_ms();
        let session_revoked = fields
            .get(3)
            .copied()
            .flatten()
            .is_some_and(|until| until > now);
        Ok(CheckOutcome::new(session_revoked, state_of(&fields)))
    }

    /// `SET {prefix}nonce:{nonce} 1 NX PXAT until`: one key per nonce, in
    /// the nonce's own slot of a cluster, gone when it lapses.
    async fn use_nonce(&self, nonce: &str, until: SystemTime) -> Result<bool, StoreError> {
        let until_ms = unix_millis(until).max(self.now_ms() + 1);
        let mut command = redis::cmd("SET");
        command
            .arg(format!("{}nonce:{nonce}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PXAT")
            .arg(until_ms);
        let set: Option<String> = self.connection.query(&command).await.map_err(unavailable)?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_are_found_as_redis_cluster_finds_them() {
        assert_eq!(hash_tag("jwe-session:sub:alice"), None);
        assert_eq!(hash_tag("{app}:sub:alice"), Some("app"));
        assert_eq!(hash_tag("app:{}:sub:{alice}"), None, "an empty tag is none");
        assert_eq!(hash_tag("app:{a}{b}"), Some("a"));
        assert_eq!(hash_tag("app:{open"), None);
        assert_eq!(hash_tag("app:}{x}"), Some("x"));
    }

    #[test]
    fn a_cluster_needs_a_node() {
        let error = RedisStore::cluster_builder(Vec::<String>::new())
            .build()
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }

    #[test]
    fn scripts_are_sent_by_their_sha1() {
        let script = &scripts().session;
        assert_eq!(script.sha1.len(), 40);
        assert_eq!(script.sha1, redis::Script::new(&script.code).get_hash());
        assert_ne!(scripts().subject.sha1, script.sha1);
    }
}

//! The Redis revocation store (feature `redis`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{RevocationStatus, RevocationStore};
use crate::clock::{unix_millis, Clock, SystemClock};
use crate::error::StoreError;

/// A revocation store in Redis, shared by every process of a fleet.
///
/// * Keys: `{prefix}sid:{sid}` (value `1`) and `{prefix}sub:{sub}` (value:
///   the epoch in Unix milliseconds), each with a TTL that ends when no token
///   it could match is still alive, so Redis never holds a dead entry.
/// * One round trip per check (`MGET` of both keys).
/// * The connection is made lazily and remade after Redis restarts
///   ([`ConnectionManager`]); every command is bounded by a timeout, so a
///   dead Redis makes requests fail fast instead of hanging.
/// * When Redis cannot be reached, operations return
///   [`StoreError::Unavailable`]; the session layer fails closed on it unless
///   configured otherwise.
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
    connection: ConnectionManager,
    prefix: Arc<str>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStore`].
#[derive(Debug)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl RedisStoreBuilder {
    /// Sets the prefix of every key (default `"jwe-session:"`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the bound on connecting and on each command (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the time from `clock` (to compute TTLs) instead of the system
    /// clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Makes the store. No connection is made yet: the first command
    /// connects, so an application starts even while Redis is down. Must be
    /// called within a Tokio runtime.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str()).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(RedisStore {
            connection,
            prefix: Arc::from(self.prefix),
            clock: self.clock,
        })
    }
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
        RedisStoreBuilder {
            url: url.into(),
            prefix: "jwe-session:".to_owned(),
            timeout: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
        }
    }

    /// A store for the Redis at `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Result<RedisStore, StoreError> {
        RedisStore::builder(url).build()
    }

    /// The key holding a session's revocation.
    pub fn session_key(&self, sid: &str) -> String {
        format!("{}sid:{sid}", self.prefix)
    }

    /// The key holding a subject's epoch.
    pub fn subject_key(&self, sub: &str) -> String {
        format!("{}sub:{sub}", self.prefix)
    }

    /// Milliseconds from now until `until`, or `None` when already past.
    fn ttl_ms(&self, until: SystemTime) -> Option<u64> {
        let ttl = unix_millis(until).saturating_sub(unix_millis(self.clock.now()));
        (ttl > 0).then_some(ttl)
    }
}

/// Sets a session's revocation, its TTL only longer.
const SESSION_SCRIPT: &str = r#"
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('SET', KEYS[1], 1, 'PX', ttl)
end
return 1
"#;

/// Sets the subject's epoch only forward, and its TTL only longer.
const SUBJECT_SCRIPT: &str = r#"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = tonumber(ARGV[1])
if epoch < current then epoch = current end
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], epoch, 'PX', ttl)
return epoch
"#;

#[async_trait]
impl RevocationStore for RedisStore {
    async fn revoke_session(&self, sid: &str, until: SystemTime) -> Result<(), StoreError> {
        let Some(ttl) = self.ttl_ms(until) else {
            return Ok(());
        };
        let mut connection = self.connection.clone();
        // Only ever lengthen: a later, shorter revocation of the same id
        // must not cut an earlier one short (the memory store keeps the
        // maximum too).
        redis::cmd("EVAL")
            .arg(SESSION_SCRIPT)
            .arg(1)
            .arg(self.session_key(sid))
            .arg(ttl)
            .query_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn revoke_subject(
        &self,
        sub: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let Some(ttl) = self.ttl_ms(until) else {
            return Ok(());
        };
        let mut connection = self.connection.clone();
        redis::cmd("EVAL")
            .arg(SUBJECT_SCRIPT)
            .arg(1)
            .arg(self.subject_key(sub))
            .arg(unix_millis(before))
            .arg(ttl)
            .query_async::<u64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn check(
        &self,
        sid: &str,
        sub: Option<&str>,
        created: SystemTime,
    ) -> Result<RevocationStatus, StoreError> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("MGET");
        command.arg(self.session_key(sid));
        if let Some(sub) = sub {
            command.arg(self.subject_key(sub));
        }
        let values: Vec<Option<u64>> = command
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let session_revoked = values.first().is_some_and(Option::is_some);
        let epoch = values.get(1).copied().flatten();
        Ok(RevocationStatus::decide(session_revoked, epoch, created))
    }
}

//! Rotation as a policy: a period, a lead time between staging a key and
//! its scheduled promotion, and how long retired keys are kept, carried out
//! by one idempotent step ([`Keyring::cycle`]) that a background task
//! ([`Keyring::rotate_every`]) or the key tool's `keyring cycle` runs.
//!
//! The step, at `now`:
//!
//! * when nothing is staged and the primary is at least `period − lead`
//!   old, it stages a new key, scheduled to become the primary when the
//!   primary is `period` old: at `primary created + period`, but never
//!   sooner than half the lead from now, so that even a late run leaves
//!   every process time to load the key;
//! * it drops retired keys retired at least the retired-key lifetime ago;
//! * otherwise it changes nothing. Run twice, it changes what it changes
//!   once.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::entry::KeyEntry;
use super::ring::Keyring;
use super::set::KeySet;
use crate::clock::unix_seconds;
use crate::error::{Error, KeyError, KeyringError};
use crate::key::Key;
use crate::key_state::KeyState;
use crate::SessionConfig;

/// The longest rotation period accepted: 100 years.
const MAX_PERIOD_SECS: u64 = 100 * 365 * 86_400;

/// The longest a rotation task sleeps between two steps, so it notices
/// changes made by other means (a reload, a manual rotation) within it.
const MAX_NAP_SECS: u64 = 3600;

/// How long tokens sealed under a key may live after the key stops sealing:
/// the sessions' absolute timeout plus the leeway.
fn sessions_lifetime(config: &SessionConfig) -> u64 {
    config
        .absolute_timeout()
        .saturating_add(config.leeway())
        .as_secs()
}

/// When a key is rotated and how long a retired key is kept.
///
/// A key is made when the primary is `period − lead` old, staged (it
/// opens, but does not seal) for `lead`, and becomes the primary when the
/// old one is `period` old: a new primary every `period − lead`, each
/// sealing until it is `period` old. A retired key is kept for the
/// retired-key lifetime, which is never shorter than the sessions' absolute
/// timeout plus the leeway, so no live session ever loses its key. Times
/// are whole seconds.
///
/// [`Keyring::rotate_every`] carries it out in one process; for a fleet
/// sharing a key file, `jwe-session keyring cycle` does the same from cron.
///
/// ```
/// use std::time::Duration;
/// use jwe_session::{RotationPolicy, SessionConfig};
///
/// # fn main() -> Result<(), jwe_session::Error> {
/// let hour = Duration::from_secs(3600);
/// let config = SessionConfig::default().with_absolute_timeout(8 * hour);
/// // Retired keys kept 8 h + 60 s, as long as a session may live.
/// let policy = RotationPolicy::new(24 * hour, hour, &config)?;
/// assert!(RotationPolicy::new(hour, 2 * hour, &config).is_err(), "the lead must be shorter");
/// # let _ = policy;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Seconds.
    period: u64,
    /// Seconds.
    lead: u64,
    /// The retired-key lifetime given, in seconds, if any.
    retired: Option<u64>,
    /// The sessions' lifetime: the shortest retired-key lifetime.
    minimum: u64,
}

impl RotationPolicy {
    /// A new primary when the primary is `period` old, staged `lead` before;
    /// retired keys kept as long as tokens of sessions under `sessions` may
    /// live: its absolute timeout plus its leeway (12 h + 60 s for
    /// `SessionConfig::default()`). Pass the configuration the session
    /// layer uses.
    ///
    /// Refuses ([`Error::Config`]) a period under one second or over 100
    /// years, and a lead not shorter than the period. For a fleet, make the
    /// lead longer than the slowest process takes to load a changed key
    /// file.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwe_session::{RotationPolicy, SessionConfig};
    ///
    /// let day = Duration::from_secs(86_400);
    /// let sessions = SessionConfig::default();
    /// assert!(RotationPolicy::new(day, Duration::from_secs(3600), &sessions).is_ok());
    /// let refused = RotationPolicy::new(day, day, &sessions).unwrap_err();
    /// assert!(refused.to_string().contains("shorter than the period"));
    /// assert!(RotationPolicy::new(Duration::ZERO, Duration::ZERO, &sessions).is_err());
    /// ```
    pub fn new(
        period: Duration,
        lead: Duration,
        sessions: &SessionConfig,
    ) -> Result<RotationPolicy, Error> {
        let refuse = |why: &str| Err(Error::Config(format!("rotation policy: {why}")));
        let (period, lead) = (period.as_secs(), lead.as_secs());
        if period == 0 {
            return refuse("the period must be at least one second");
        }
        if period > MAX_PERIOD_SECS {
            return refuse("the period must be at most 100 years");
        }
        if lead >= period {
            return refuse("the lead time must be shorter than the period");
        }
        Ok(RotationPolicy {
            period,
            lead,
            retired: None,
            minimum: sessions_lifetime(sessions),
        })
    }

    /// Keeps retired keys for `lifetime` rather than the sessions' lifetime.
    /// Refused ([`Error::Config`]) when shorter than that: tokens sealed
    /// just before a key retired may live as long as a session.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwe_session::{RotationPolicy, SessionConfig};
    ///
    /// # fn main() -> Result<(), jwe_session::Error> {
    /// let hour = Duration::from_secs(3600);
    /// let policy = RotationPolicy::new(24 * hour, hour, &SessionConfig::default())?;
    /// assert!(policy.with_retired_lifetime(24 * hour).is_ok());
    /// let refused = policy.with_retired_lifetime(12 * hour).unwrap_err();
    /// assert!(refused.to_string().contains("at least 43260 s"), "{refused}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_retired_lifetime(self, lifetime: Duration) -> Result<RotationPolicy, Error> {
        if lifetime < Duration::from_secs(self.minimum) {
            return Err(Error::Config(format!(
                "rotation policy: retired keys must be kept at least {} s (the sessions' \
                 absolute timeout + leeway), or tokens they sealed may outlive them; {} s is \
                 too short",
                self.minimum,
                lifetime.as_secs()
            )));
        }
        Ok(RotationPolicy {
            retired: Some(lifetime.as_secs()),
            ..self
        })
    }

    /// Keeps retired keys for `lifetime`, however short: for the key tool,
    /// whose `--max-age` is the operator's statement of the sessions'
    /// lifetime, and for tests that show what too short a lifetime breaks.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn with_retired_lifetime_unchecked(self, lifetime: Duration) -> RotationPolicy {
        RotationPolicy {
            retired: Some(lifetime.as_secs()),
            minimum: self.minimum.min(lifetime.as_secs()),
            ..self
        }
    }

    /// The rotation period.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn period(&self) -> Duration {
        Duration::from_secs(self.period)
    }

    /// The lead time between staging a key and its promotion.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn lead(&self) -> Duration {
        Duration::from_secs(self.lead)
    }

    /// How long a retired key is kept.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn retired_lifetime(&self) -> Duration {
        Duration::from_secs(self.retired_secs())
    }

    fn retired_secs(&self) -> u64 {
        self.retired.unwrap_or(self.minimum)
    }

    /// Whether a new key is due in `set` at `now`: nothing staged, and the
    /// primary at least `period − lead` old.
    fn stage_due(&self, set: &KeySet, now: u64) -> bool {
        !set.iter().any(|e| e.state == KeyState::Staged) && now >= self.stage_time(set.primary())
    }

    /// When a key should be staged after `primary`.
    fn stage_time(&self, primary: &KeyEntry) -> u64 {
        primary.created.saturating_add(self.period - self.lead)
    }

    /// When a key staged at `now` after `primary` becomes the primary: when
    /// `primary` is `period` old, but no sooner than half the lead from now.
    fn promotion_time(&self, primary: &KeyEntry, now: u64) -> u64 {
        primary
            .created
            .saturating_add(self.period)
            .max(now.saturating_add(self.lead.div_ceil(2)))
    }
}

/// What one rotation step ([`Keyring::cycle`]) did.
#[cfg_attr(feature = "internals", visibility::make(pub))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CycleReport {
    /// The kid of the key it staged, if it staged one.
    pub staged: Option<String>,
    /// When the staged key becomes the primary, in Unix seconds.
    pub promote_at: Option<u64>,
    /// The kids of the retired keys it dropped.
    pub pruned: Vec<String>,
}

impl Keyring {
    /// The shortest age at which [`Keyring::prune`] drops a retired key:
    /// the sessions' lifetime the keyring was told of, else the default
    /// sessions' (12 h + 60 s).
    pub(crate) fn retired_lifetime(&self) -> Duration {
        match self.inner.retired_lifetime.load(Ordering::Relaxed) {
            0 => Duration::from_secs(sessions_lifetime(&SessionConfig::default())),
            secs => Duration::from_secs(secs),
        }
    }

    /// Tells the keyring that tokens it seals may live `lifetime` after
    /// their key stops sealing, so [`Keyring::prune`] keeps retired keys
    /// that long. It replaces the default (12 h + 60 s); when told several
    /// times, the longest stands.
    pub(crate) fn keep_retired_keys_for(&self, lifetime: Duration) {
        let secs = lifetime.as_secs().max(1);
        self.inner
            .retired_lifetime
            .fetch_max(secs, Ordering::Relaxed);
    }

    /// One rotation step on `policy` at the keyring's time, staging a key
    /// of the primary's algorithm. Idempotent. When nothing is staged and
    /// the primary is at least `period − lead` old, it stages a new key,
    /// scheduled to become the primary when the primary is `period` old,
    /// but no sooner than half the lead from now (a late run still leaves
    /// every process time to load the key); it drops the retired keys
    /// retired at least the policy's retired-key lifetime ago; otherwise it
    /// changes nothing.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn cycle(&self, policy: &RotationPolicy) -> Result<CycleReport, Error> {
        self.cycle_with(policy, Key::generate_like)
    }

    /// [`cycle`](Keyring::cycle), staging the key `new_key` makes from the
    /// primary when one is due. The key is made outside the keyring's
    /// writer lock (an RSA key takes a while), and dropped if, by the time
    /// the lock is held, no key is due any more.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn cycle_with(
        &self,
        policy: &RotationPolicy,
        new_key: impl FnOnce(&Key) -> Result<Key, KeyError>,
    ) -> Result<CycleReport, Error> {
        let set = self.snapshot();
        let mut fresh = if policy.stage_due(&set, unix_seconds(self.now())) {
            Some(new_key(&set.primary().key)?)
        } else {
            None
        };
        drop(set);
        let report = self.change(|set, now| {
            let mut report = CycleReport::default();
            let mut entries = set.entries.clone();
            if policy.stage_due(set, now) {
                if let Some(key) = fresh.take() {
                    if set.get(key.kid()).is_some() {
                        return Err(KeyringError::DuplicateKid(key.kid().to_owned()));
                    }
                    let at = policy.promotion_time(set.primary(), now);
                    report.staged = Some(key.kid().to_owned());
                    report.promote_at = Some(at);
                    let mut entry = KeyEntry::new(Arc::new(key), KeyState::Staged, now);
                    entry.promote_at = Some(at);
                    entries.push(entry);
                }
            }
            let cutoff = now.saturating_sub(policy.retired_secs());
            entries.retain(|e| {
                let gone =
                    e.state == KeyState::Retired && e.retired_at.is_some_and(|at| at <= cutoff);
                if gone {
                    report.pruned.push(e.kid().to_owned());
                }
                !gone
            });
            Ok((entries, report))
        })?;
        Ok(report)
    }

    /// How long until the next rotation step on `policy` has something to
    /// do (a key to stage, a promotion, a key to prune), between 1 s and an
    /// hour.
    fn next_step_in(&self, policy: &RotationPolicy) -> Duration {
        let set = self.snapshot();
        let now = unix_seconds(self.now());
        let mut next = now.saturating_add(MAX_NAP_SECS);
        if !set.iter().any(|e| e.state == KeyState::Staged) {
            next = next.min(policy.stage_time(set.primary()));
        }
        for entry in set.iter() {
            match entry.state {
                KeyState::Staged => next = next.min(entry.promote_at.unwrap_or(u64::MAX)),
                KeyState::Retired => {
                    let at = entry.retired_at.unwrap_or(now);
                    next = next.min(at.saturating_add(policy.retired_secs()));
                }
                KeyState::Primary => {}
            }
        }
        Duration::from_secs(next.saturating_sub(now).clamp(1, MAX_NAP_SECS))
    }

    /// Starts rotating this keyring on `policy` in the background, on the
    /// Tokio runtime it is called from, until the returned guard is
    /// dropped: a new key staged `lead` before each scheduled promotion,
    /// and retired keys dropped once no live session can need them
    /// ([`RotationPolicy`]). Each step is logged through `tracing` by
    /// `kid`, never with key material. It also makes [`Keyring::prune`]
    /// keep retired keys as long as the policy does.
    ///
    /// Keep the guard as long as the keyring serves: bind it to a name
    /// (`let _rotation = …`, not `let _ = …`, which drops it at once), or
    /// store it, as a `Box<dyn Debug + Send + Sync>` say. A promotion
    /// already scheduled still happens after it is dropped.
    ///
    /// For one process. A fleet sharing a key file runs `jwe-session
    /// keyring cycle` on the file instead (from cron, say), and its
    /// processes reload the file; two processes rotating their own keyrings
    /// would each seal under a key the other cannot open.
    ///
    /// The primary's age is counted from its creation time: a key file's
    /// `x-created`, or, for keys from the environment's short form, the
    /// time they were loaded.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwe_session::{Key, KeyAlgorithm, Keyring, RotationPolicy, SessionConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwe_session::Error> {
    /// let config = SessionConfig::default(); // the session layer's
    /// let keyring = Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?);
    /// let policy = RotationPolicy::new(Duration::from_secs(86_400), Duration::from_secs(3600), &config)?;
    /// let rotation = keyring.rotate_every(policy)?;
    /// // ... serve ...
    /// drop(rotation); // rotation stops
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Outside a Tokio runtime it fails with [`Error::Config`].
    pub fn rotate_every(
        &self,
        policy: RotationPolicy,
    ) -> Result<impl fmt::Debug + Send + Sync + 'static, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "rotate_every needs a Tokio runtime: call it from async code (or inside \
                 Runtime::enter)"
                    .to_owned(),
            )
        })?;
        self.keep_retired_keys_for(policy.retired_lifetime());
        let keyring = self.clone();
        let task = runtime.spawn(async move {
            loop {
                rotation_step(&keyring, &policy).await;
                let wait = keyring.next_step_in(&policy);
                tracing::trace!(wait_secs = wait.as_secs(), "key rotation: next step");
                tokio::time::sleep(wait).await;
            }
        });
        Ok(RotationTask { task })
    }
}

/// Runs one rotation step and logs what it did; an RSA key is made on a
/// blocking thread.
async fn rotation_step(keyring: &Keyring, policy: &RotationPolicy) {
    let rsa = keyring.snapshot().primary().key.alg().is_rsa();
    let result = if rsa {
        let (keyring, policy) = (keyring.clone(), *policy);
        match tokio::task::spawn_blocking(move || keyring.cycle(&policy)).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(error = %error, "key rotation: step did not finish; trying again later");
                return;
            }
        }
    } else {
        keyring.cycle(policy)
    };
    match result {
        Ok(report) => {
            if let (Some(kid), Some(at)) = (&report.staged, report.promote_at) {
                tracing::info!(kid = %kid, promote_at = at, "key rotation: staged a new key");
            }
            for kid in &report.pruned {
                tracing::info!(kid = %kid, "key rotation: pruned a retired key");
            }
        }
        // Errors name keys by kid only.
        Err(error) => {
            tracing::warn!(error = %error, "key rotation: step failed; trying again later");
        }
    }
}

/// Background rotation of a keyring ([`Keyring::rotate_every`]'s guard):
/// the task is aborted when this is dropped.
#[must_use = "rotation stops when the guard is dropped"]
struct RotationTask {
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for RotationTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationTask")
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

impl Drop for RotationTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::alg::KeyAlgorithm;
    use crate::clock::{from_unix_seconds, Clock, ManualClock};

    const T0: u64 = 1_800_000_000;
    const HOUR: Duration = Duration::from_secs(3600);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn key(kid: &str) -> Key {
        Key::generate(KeyAlgorithm::A256Kw)
            .unwrap()
            .with_kid(kid)
            .unwrap()
    }

    /// A keyring whose primary "k0" was made at `T0`, and its clock.
    fn ring() -> (Keyring, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at_unix(T0));
        (Keyring::with_clock(key("k0"), clock.clone()), clock)
    }

    /// Period 1000 s, lead 100 s, retired keys kept 360 s (sessions of
    /// 300 s with 60 s of leeway).
    fn policy() -> RotationPolicy {
        let config = SessionConfig::default()
            .with_idle_timeout(secs(300))
            .with_absolute_timeout(secs(300));
        RotationPolicy::new(secs(1000), secs(100), &config).unwrap()
    }

    fn states(keyring: &Keyring) -> Vec<(String, KeyState)> {
        keyring
            .snapshot()
            .iter()
            .map(|e| (e.kid().to_owned(), e.state()))
            .collect()
    }

    #[test]
    fn policy_times_must_fit_together() {
        let day = secs(86_400);
        let sessions = SessionConfig::default();
        assert!(RotationPolicy::new(day, HOUR, &sessions).is_ok());
        assert!(RotationPolicy::new(day, Duration::ZERO, &sessions).is_ok());
        for (period, lead) in [
            (day, day),
            (HOUR, day),
            (Duration::ZERO, Duration::ZERO),
            (Duration::from_millis(999), Duration::ZERO),
            (secs(MAX_PERIOD_SECS + 1), HOUR),
        ] {
            let error = RotationPolicy::new(period, lead, &sessions).unwrap_err();
            let Error::Config(message) = &error else {
                panic!("{error:?}")
            };
            assert!(message.starts_with("rotation policy: "), "{error}");
        }
    }

    #[test]
    fn retired_keys_live_at_least_as_long_as_sessions() {
        let day = secs(86_400);
        // The default sessions': 12 h + 60 s.
        let policy = RotationPolicy::new(day, HOUR, &SessionConfig::default()).unwrap();
        assert_eq!(policy.retired_lifetime(), secs(43_260));
        let error = policy.with_retired_lifetime(secs(43_259)).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("at least 43260 s") && message.contains("43259 s is too short"),
            "{message}"
        );
        assert_eq!(
            policy
                .with_retired_lifetime(secs(43_260))
                .unwrap()
                .retired_lifetime(),
            secs(43_260)
        );

        // Another configuration: its absolute timeout plus its leeway.
        let config = SessionConfig::default()
            .with_absolute_timeout(2 * HOUR)
            .with_leeway(secs(30));
        let for_config = RotationPolicy::new(day, HOUR, &config).unwrap();
        assert_eq!(for_config.retired_lifetime(), secs(7230));
        assert!(for_config.with_retired_lifetime(secs(7229)).is_err());
        assert_eq!(
            for_config
                .with_retired_lifetime(3 * HOUR)
                .unwrap()
                .retired_lifetime(),
            3 * HOUR
        );
        // Unchecked (the key tool's --max-age): anything goes.
        assert_eq!(
            for_config
                .with_retired_lifetime_unchecked(secs(10))
                .retired_lifetime(),
            secs(10)
        );
    }

    #[test]
    fn a_step_stages_once_when_due_and_otherwise_changes_nothing() {
        let (keyring, clock) = ring();
        let policy = policy();

        // Not due until the primary is period - lead old.
        clock.advance(secs(899));
        assert_eq!(keyring.cycle(&policy).unwrap(), CycleReport::default());
        assert_eq!(states(&keyring), [("k0".to_owned(), KeyState::Primary)]);

        clock.advance(secs(1));
        let report = keyring.cycle(&policy).unwrap();
        let staged = report.staged.clone().unwrap();
        assert_eq!(report.promote_at, Some(T0 + 1000));
        assert!(report.pruned.is_empty());
        let entry = keyring.snapshot().get(&staged).unwrap().clone();
        assert_eq!(entry.state(), KeyState::Staged);
        assert_eq!(entry.promote_at(), Some(from_unix_seconds(T0 + 1000)));
        assert_eq!(entry.key().alg(), KeyAlgorithm::A256Kw);

        // Idempotent: a second step, now or later, stages nothing more.
        assert_eq!(keyring.cycle(&policy).unwrap(), CycleReport::default());
        clock.advance(secs(99));
        assert_eq!(keyring.cycle(&policy).unwrap(), CycleReport::default());
        assert_eq!(keyring.snapshot().len(), 2);

        // The promotion happens at its time.
        clock.advance(secs(1));
        assert_eq!(keyring.primary_kid(), staged);
        assert_eq!(
            keyring.snapshot().get("k0").unwrap().retired_at(),
            Some(from_unix_seconds(T0 + 1000))
        );
    }

    #[test]
    fn a_late_step_leaves_half_the_lead_to_load_the_key() {
        let (keyring, clock) = ring();
        let policy = policy();
        // 40 s late (half the lead is left): when the primary is 1000 s old.
        clock.advance(secs(940));
        let report = keyring.cycle(&policy).unwrap();
        assert_eq!(report.promote_at, Some(T0 + 1000));

        // Far too late (the step did not run for a while): half the lead
        // from now, never at once or in the past.
        let (keyring, clock) = ring();
        clock.advance(secs(5000));
        let report = keyring.cycle(&policy).unwrap();
        assert_eq!(report.promote_at, Some(T0 + 5000 + 50));
        let (keyring, clock) = ring();
        clock.advance(secs(990));
        let report = keyring.cycle(&policy).unwrap();
        assert_eq!(report.promote_at, Some(T0 + 990 + 50));
    }

    #[test]
    fn a_staged_key_holds_off_staging_another() {
        let (keyring, clock) = ring();
        keyring.stage(key("manual")).unwrap();
        clock.advance(secs(5000));
        assert_eq!(keyring.cycle(&policy()).unwrap(), CycleReport::default());
        assert_eq!(keyring.snapshot().len(), 2);
    }

    #[test]
    fn a_step_stages_the_key_it_is_given_and_refuses_a_duplicate_kid() {
        let (keyring, clock) = ring();
        clock.advance(secs(900));
        let report = keyring
            .cycle_with(&policy(), |_| {
                Ok(Key::generate(KeyAlgorithm::A128GcmKw)
                    .unwrap()
                    .with_kid("given")
                    .unwrap())
            })
            .unwrap();
        assert_eq!(report.staged.as_deref(), Some("given"));
        assert_eq!(
            keyring.snapshot().get("given").unwrap().key().alg(),
            KeyAlgorithm::A128GcmKw
        );

        let (keyring, clock) = ring();
        clock.advance(secs(900));
        let error = keyring
            .cycle_with(&policy(), |_| Ok(key("k0")))
            .unwrap_err();
        assert!(
            matches!(error, Error::Keyring(KeyringError::DuplicateKid(_))),
            "{error}"
        );
        assert_eq!(keyring.snapshot().len(), 1);
    }

    #[test]
    fn a_step_prunes_retired_keys_only_past_their_lifetime() {
        let (keyring, clock) = ring();
        let policy = policy(); // retired keys kept 360 s
        keyring.rotate().unwrap(); // k0 retired at T0
        clock.advance(secs(100));
        let second = keyring.primary_kid();
        keyring.rotate().unwrap(); // the second key retired at T0 + 100
        clock.advance(secs(259));
        assert_eq!(keyring.cycle(&policy).unwrap(), CycleReport::default());
        clock.advance(secs(1));
        let report = keyring.cycle(&policy).unwrap();
        assert_eq!(report.pruned, ["k0"]);
        assert_eq!(keyring.snapshot().len(), 2);
        assert_eq!(keyring.cycle(&policy).unwrap(), CycleReport::default());
        clock.advance(secs(100));
        assert_eq!(keyring.cycle(&policy).unwrap().pruned, [second]);
        assert_eq!(keyring.snapshot().len(), 1);
    }

    #[test]
    fn prune_keeps_keys_live_tokens_may_need() {
        let (keyring, clock) = ring();
        let token = keyring.seal(b"x").unwrap();
        keyring.rotate().unwrap(); // k0 retired at T0
        clock.advance(secs(43_259));
        let now = clock.now();

        // By default, the default sessions' 12 h + 60 s, whatever is asked.
        assert!(keyring.prune(now, secs(60)).is_empty());
        assert!(keyring.prune(now, Duration::ZERO).is_empty());
        assert!(keyring.open(&token).is_ok(), "nothing dropped");
        clock.advance(secs(1));
        assert_eq!(keyring.prune(clock.now(), secs(60)), ["k0"]);

        // Forced: any age.
        let (keyring, clock) = ring();
        keyring.rotate().unwrap();
        clock.advance(secs(10));
        assert_eq!(keyring.prune_forced(clock.now(), secs(10)), ["k0"]);

        // Told of shorter sessions (a rotation policy), it goes by them; of
        // several, by the longest.
        let (keyring, clock) = ring();
        keyring.rotate().unwrap();
        clock.advance(secs(400));
        keyring.keep_retired_keys_for(secs(401));
        assert!(keyring.prune(clock.now(), secs(10)).is_empty());
        keyring.keep_retired_keys_for(secs(100));
        assert!(keyring.prune(clock.now(), secs(10)).is_empty());
        clock.advance(secs(1));
        assert_eq!(keyring.prune(clock.now(), secs(10)), ["k0"]);
    }

    #[test]
    fn rotate_every_needs_a_runtime() {
        let (keyring, _) = ring();
        let error = keyring.rotate_every(policy()).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert!(error.to_string().contains("Tokio runtime"), "{error}");
    }

    /// A log sink for one test: every line written, as text.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logs {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Moves the keyring's clock and Tokio's paused clock together, a
    /// second at a time, letting the rotation task run after each.
    async fn advance(clock: &ManualClock, seconds: u64) {
        for _ in 0..seconds {
            clock.advance(secs(1));
            tokio::time::advance(secs(1)).await;
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rotate_every_rotates_on_time_logs_kids_only_and_stops_when_dropped() {
        let logs = Logs::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);

        let (keyring, clock) = ring();
        let policy = policy();
        let mut secrets = vec![keyring.to_jwk_set()];
        let task = keyring.rotate_every(policy).unwrap();
        assert_eq!(format!("{task:?}"), "RotationTask { running: true }");
        // The keyring now keeps retired keys as long as the policy says.
        assert_eq!(keyring.retired_lifetime(), secs(360));

        advance(&clock, 899).await;
        assert_eq!(states(&keyring), [("k0".to_owned(), KeyState::Primary)]);
        advance(&clock, 1).await;
        let snapshot = keyring.snapshot();
        let staged = snapshot.iter().nth(1).unwrap();
        assert_eq!(staged.state(), KeyState::Staged);
        assert_eq!(staged.promote_at(), Some(from_unix_seconds(T0 + 1000)));
        let k1 = staged.kid().to_owned();
        secrets.push(keyring.to_jwk_set());

        // Promoted at its time; k0 retired then, and pruned 360 s later.
        advance(&clock, 100).await;
        assert_eq!(keyring.primary_kid(), k1);
        advance(&clock, 359).await;
        assert!(keyring.snapshot().get("k0").is_some());
        advance(&clock, 1).await;
        assert!(keyring.snapshot().get("k0").is_none());

        // Ten more periods: one rotation each, old keys pruned.
        let mut primaries = vec![k1.clone()];
        for _ in 0..10 {
            advance(&clock, 1000).await;
            secrets.push(keyring.to_jwk_set());
            let primary = keyring.primary_kid();
            assert!(!primaries.contains(&primary));
            primaries.push(primary);
            assert!(keyring.snapshot().len() <= 3, "{:?}", states(&keyring));
        }

        let text = logs.text();
        assert!(text.contains("staged a new key"), "{text}");
        assert!(text.contains("pruned a retired key"), "{text}");
        assert!(text.contains(&format!("kid={k1}")), "{text}");
        assert!(text.contains("kid=k0"), "{text}");
        for set in &secrets {
            let set: serde_json::Value = serde_json::from_str(set).unwrap();
            for jwk in set["keys"].as_array().unwrap() {
                let secret = jwk["k"].as_str().unwrap();
                assert!(!text.contains(secret), "a secret in the logs");
            }
        }

        // Dropped: nothing changes any more.
        drop(task);
        let before = states(&keyring);
        let staged_before = before.iter().any(|(_, s)| *s == KeyState::Staged);
        advance(&clock, 5000).await;
        let after = states(&keyring);
        if staged_before {
            // Only the promotion that was already scheduled.
            assert_eq!(after.len(), before.len());
        } else {
            assert_eq!(after, before);
        }
        assert!(!after.iter().any(|(_, s)| *s == KeyState::Staged));
    }
}

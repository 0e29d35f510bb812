//! Time as a dependency: every time check can be given its clock, so tests
//! never sleep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
///
/// ```
/// use jwe_session::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The one shared handle to the system clock that the crate's defaults
/// use. Whoever holds it can tell ([`is_system`]) that another part holding
/// it reads the very same clock: a session manager hands the time it has
/// just read to a keyring on the system clock, which then reads no clock of
/// its own on a cache hit.
pub(crate) fn system() -> Arc<dyn Clock> {
    Arc::clone(&SYSTEM)
}

static SYSTEM: LazyLock<Arc<dyn Clock>> = LazyLock::new(|| Arc::new(SystemClock));

/// Whether `clock` is the crate's shared system clock ([`system`]). A
/// caller's own clock, even one that reads the system time, is not.
pub(crate) fn is_system(clock: &Arc<dyn Clock>) -> bool {
    Arc::ptr_eq(clock, &SYSTEM)
}

/// A clock that only moves when told to, for tests.
///
/// ```
/// use std::time::Duration;
/// use jwe_session::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(90));
/// let since = clock.now().duration_since(std::time::UNIX_EPOCH).unwrap();
/// assert_eq!(since.as_secs(), 1_700_000_090);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    unix_millis: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `seconds` after the Unix epoch.
    pub fn at_unix(seconds: u64) -> Self {
        ManualClock {
            unix_millis: AtomicU64::new(seconds.saturating_mul(1000)),
        }
    }

    /// Moves the clock forward by `by` (to the millisecond).
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwe_session::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::at_unix(1_700_000_000);
    /// clock.advance(Duration::from_millis(1_500));
    /// assert_eq!(clock.unix_millis(), 1_700_000_001_500);
    /// ```
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.unix_millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// Moves the clock back by `by` (to the millisecond), for tests of
    /// clocks that disagree.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn rewind(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .unix_millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_sub(millis))
            });
    }

    /// Sets the clock to `seconds` after the Unix epoch.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn set_unix(&self, seconds: u64) {
        self.set_unix_millis(seconds.saturating_mul(1000));
    }

    /// Sets the clock to `millis` milliseconds after the Unix epoch.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn set_unix_millis(&self, millis: u64) {
        self.unix_millis.store(millis, Ordering::SeqCst);
    }

    /// The time it shows, in milliseconds after the Unix epoch.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn unix_millis(&self) -> u64 {
        self.unix_millis.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_millis())
    }
}

/// Whole seconds since the Unix epoch; times before the epoch count as 0.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// assert_eq!(jwe_session::clock::unix_seconds(UNIX_EPOCH + Duration::from_millis(2500)), 2);
/// ```
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The time `seconds` after the Unix epoch.
///
/// ```
/// use jwe_session::clock::{from_unix_seconds, unix_seconds};
/// assert_eq!(unix_seconds(from_unix_seconds(42)), 42);
/// ```
///
/// Saturates at the end of the year 9999 (a time read from a key file is
/// never trusted to fit in a `SystemTime`).
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.min(MAX_UNIX_SECONDS))
}

/// The time `millis` milliseconds after the Unix epoch, saturating like
/// [`from_unix_seconds`].
pub(crate) fn from_unix_millis(millis: u64) -> SystemTime {
    from_unix_seconds(millis / 1000) + Duration::from_millis(millis % 1000)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The last second of the year 9999, the latest time a key file may name.
#[cfg_attr(feature = "internals", visibility::make(pub))]
pub(crate) const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

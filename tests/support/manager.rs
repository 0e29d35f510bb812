//! A session manager on a manual clock, with its keyring and memory store:
//! the fixture of the session and token cache tests. Each test file adds
//! the helpers it needs in its own `impl Fixture` block.

use std::sync::Arc;
use std::time::Duration;

use jwe_session::revocation::MemoryStore;
use jwe_session::session::{SaveOutcome, SessionConfig, SessionManager};
use jwe_session::{Key, KeyAlgorithm, Keyring, ManualClock};

/// The fixtures' start time, Unix seconds.
pub const T0: u64 = 1_800_000_000;

pub struct Fixture {
    pub clock: Arc<ManualClock>,
    pub keyring: Arc<Keyring>,
    pub manager: SessionManager,
}

pub fn fixture() -> Fixture {
    fixture_with(SessionConfig::new())
}

/// An `A256KW` keyring, a memory store and a manager, all on one manual
/// clock at [`T0`].
pub fn fixture_with(config: SessionConfig) -> Fixture {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let keyring = Arc::new(Keyring::with_clock(
        Key::generate(KeyAlgorithm::A256Kw).unwrap(),
        clock.clone(),
    ));
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let manager = SessionManager::new(keyring.clone(), store, config)
        .unwrap()
        .with_clock(clock.clone());
    Fixture {
        clock,
        keyring,
        manager,
    }
}

impl Fixture {
    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

/// The token of a save that sealed one.
pub fn token_of(outcome: SaveOutcome) -> String {
    match outcome {
        SaveOutcome::Seal { token, .. } => token,
        other => panic!("expected a sealed token, got {other:?}"),
    }
}

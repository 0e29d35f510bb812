//! The hash that picks a bucket where a client's bytes pick the key: the
//! token cache's buckets (by the token's tag) and the memory store's
//! shards (by subject). foldhash costs a fraction of SipHash on a few
//! bytes; its seeds here come from the operating system's randomness
//! (through std's `RandomState`), not from foldhash's own per-process
//! seed, which is drawn from addresses and the time.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::quality::SeedableRandomState;
use foldhash::SharedSeed;

/// A hasher builder with a seed of its own and the process's shared seed,
/// both random.
pub(crate) fn random_state() -> SeedableRandomState {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(random_u64()));
    SeedableRandomState::with_seed(random_u64(), shared)
}

/// 64 random bits: SipHash under std's keys, which come from the OS
/// (drawn once per thread, then stepped for every `RandomState`).
fn random_u64() -> u64 {
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_seeded_apart() {
        let (a, b) = (random_state(), random_state());
        assert_ne!(a.hash_one("same tag bytes"), b.hash_one("same tag bytes"));
        assert_eq!(a.hash_one("same tag bytes"), a.hash_one("same tag bytes"));
    }
}

//! What a key in a keyring may do: shared by the keyring, which assigns the
//! states, and by `jwe`, whose [`Opened`](crate::Opened) reports the state
//! of the key that opened a token. Public as
//! [`keyring::KeyState`](crate::keyring::KeyState) and
//! [`KeyState`](crate::KeyState).

use std::fmt;

/// What a key in the ring may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Seals new tokens and opens. Exactly one key is primary.
    Primary,
    /// Distributed ahead of promotion: opens, never seals.
    Staged,
    /// A former primary: opens until pruned, never seals.
    Retired,
}

impl KeyState {
    /// `"primary"`, `"staged"` or `"retired"`.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyState::Primary => "primary",
            KeyState::Staged => "staged",
            KeyState::Retired => "retired",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<KeyState> {
        match name {
            "primary" => Some(KeyState::Primary),
            "staged" => Some(KeyState::Staged),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

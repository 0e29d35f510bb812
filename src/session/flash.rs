//! Flash messages: one-shot messages carried in the token to the next
//! request ([`Session::flash`](super::Session::flash)).

use serde::{Deserialize, Serialize};

/// How a [flash message](crate::SessionHandle::flash) should be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlashLevel {
    /// For developers.
    Debug,
    /// Something happened.
    Info,
    /// Something went well.
    Success,
    /// Something may need attention.
    Warning,
    /// Something went wrong.
    Error,
}

/// A one-shot message set on one request and read on the next (after a
/// redirect, typically): "Saved.", "Wrong password.". See
/// [`SessionHandle::flash`](crate::SessionHandle::flash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// How to show it.
    #[serde(rename = "l")]
    pub level: FlashLevel,
    /// The text.
    #[serde(rename = "t")]
    pub text: String,
}

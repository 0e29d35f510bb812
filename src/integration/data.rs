//! Session data as the integrations keep it: untyped until a handler asks
//! for a type, then kept as that type until another is asked for.
//!
//! This is what lets one [`SessionLayer`](super::SessionLayer) serve every
//! handler, whatever `T` its [`SessionHandle<T>`](super::SessionHandle)
//! names: the layer never decides the type, so it cannot disagree with the
//! extractor.

use std::any::{type_name, Any};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use crate::session::Verified;
use crate::wipe::Wiped;

/// The data of a session under a layer.
pub(crate) enum LayerData {
    /// A new session: nothing stored yet. Sealed as `null`; every type
    /// starts from its `Default`.
    Empty,
    /// The data of the token the request carried, not yet asked for (the
    /// token cache's entry: a [`SessionMap`](crate::SessionMap) is decoded
    /// once and shared).
    Token(Arc<Verified>),
    /// The data as the type a handler last asked for.
    Typed(Box<dyn ErasedData>),
}

/// A value of some serializable type, behind a trait object.
pub(crate) trait ErasedData: erased_serde::Serialize + Send {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn is_type(&self, id: std::any::TypeId) -> bool;
}

impl<T: Serialize + Send + 'static> ErasedData for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn is_type(&self, id: std::any::TypeId) -> bool {
        std::any::TypeId::of::<T>() == id
    }
}

erased_serde::serialize_trait_object!(ErasedData);

impl LayerData {
    /// The data as a `T`: decoded from the token or from the type held
    /// before, or moved out when it already is a `T`. Data that does not
    /// decode as a `T` is handed back unchanged (`Err`), and logged.
    pub(crate) fn take_as<T>(self) -> Result<T, LayerData>
    where
        T: DeserializeOwned + Default + 'static,
    {
        match self {
            LayerData::Empty => Ok(T::default()),
            LayerData::Token(verified) => {
                if verified.data.as_str() == "null" {
                    return Ok(T::default());
                }
                match verified.data_as::<T>() {
                    Some(data) => Ok(data),
                    None => {
                        undecodable::<T>();
                        Err(LayerData::Token(verified))
                    }
                }
            }
            LayerData::Typed(held) => {
                if held.is_type(std::any::TypeId::of::<T>()) {
                    return match held.into_any().downcast::<T>() {
                        Ok(data) => Ok(*data),
                        // Unreachable: the type was just checked. Nothing is
                        // lost either way.
                        Err(_) => Ok(T::default()),
                    };
                }
                // Another type: through its JSON, as if it had been sealed.
                let decoded = serde_json::to_string(&*held)
                    .map(Wiped::new)
                    .ok()
                    .and_then(|json| serde_json::from_str::<T>(&json).ok());
                match decoded {
                    Some(data) => Ok(data),
                    None => {
                        undecodable::<T>();
                        Err(LayerData::Typed(held))
                    }
                }
            }
        }
    }

    /// `data`, held as its type.
    pub(crate) fn typed<T: Serialize + Send + 'static>(data: T) -> LayerData {
        LayerData::Typed(Box::new(data))
    }
}

fn undecodable<T>() {
    tracing::warn!(
        data_type = type_name::<T>(),
        "session data does not decode as the type the handler asked for: the handler sees its Default, and the stored data is kept unless the handler changes it"
    );
}

impl Serialize for LayerData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LayerData::Empty => serializer.serialize_unit(),
            LayerData::Token(verified) => {
                // Checked JSON already (it was opened from a token).
                let raw: &serde_json::value::RawValue = serde_json::from_str(&verified.data)
                    .map_err(|_| serde::ser::Error::custom("session data is not JSON"))?;
                raw.serialize(serializer)
            }
            LayerData::Typed(held) => (**held).serialize(serializer),
        }
    }
}

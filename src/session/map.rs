//! [`SessionMap`], the ready-made session data type.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// A ready-made session data type: a map from names to JSON values, for
/// people coming from actix-session or tower-sessions.
///
/// ```
/// use jwe_session::SessionMap;
/// let mut map = SessionMap::default();
/// map.insert("count", 3)?;
/// assert_eq!(map.get::<u32>("count")?, Some(3));
/// assert_eq!(map.remove("count"), Some(serde_json::json!(3)));
/// assert!(map.is_empty());
/// # Ok::<(), jwe_session::Error>(())
/// ```
///
/// Cloning is cheap: the map is shared until one of the clones changes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionMap(Arc<Map<String, Value>>);

impl Serialize for SessionMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SessionMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(|map| SessionMap(Arc::new(map)))
    }
}

impl From<Map<String, Value>> for SessionMap {
    fn from(map: Map<String, Value>) -> Self {
        SessionMap(Arc::new(map))
    }
}

impl SessionMap {
    /// The value under `key`, decoded as `V`; `Ok(None)` when absent.
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>, Error> {
        self.0
            .get(key)
            .map(|value| V::deserialize(value).map_err(Error::from))
            .transpose()
    }

    /// Stores `value` under `key`.
    pub fn insert<V: Serialize>(&mut self, key: impl Into<String>, value: V) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(Error::from)?;
        Arc::make_mut(&mut self.0).insert(key.into(), value);
        Ok(())
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.0.contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.0).remove(key)
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        if !self.0.is_empty() {
            self.0 = Arc::default();
        }
    }

    /// The number of values.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no value.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The map as JSON.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

//! Per-leaf update timestamps (reference 3.4 "Metadata").
//!
//! Metadata mirrors the structure of the state: every leaf gets `{"timestamp": <epoch seconds>}`,
//! objects mirror their keys, and arrays mirror their elements one by one. AWS's documents only show
//! object leaves; the per-element array form was seen on live AWS through the Go SDK
//! (seqsense/aws-iot-device-sdk-go#213: `Values:[{Timestamp:..} {Timestamp:..}]`) and is what AWS's own
//! Greengrass shadow manager produces.
//!
//! The tree is typed so that a state key that happens to be called `timestamp` can never be confused
//! with a leaf: a leaf is exactly `{"timestamp": <integer>}`, an object node's children are always
//! objects or arrays.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Metadata of one object level: key -> node.
pub type MetadataMap = BTreeMap<String, MetadataNode>;

/// One node of the metadata tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataNode {
    /// A leaf (string, number, bool, or a `null` in a request): when it was last written, epoch seconds.
    Leaf(u64),
    /// An object: metadata per key.
    Object(MetadataMap),
    /// An array: metadata per element (arrays are written whole, so all elements share a timestamp).
    Array(Vec<MetadataNode>),
}

impl MetadataNode {
    /// Metadata for a freshly written value: every leaf stamped `now_secs`. A `null` gets a leaf too, which
    /// is how AWS reports deletions in `/update/accepted` (e.g. `{"state":null}` is answered with
    /// `"metadata":{"timestamp":T}`, getmoto/moto#9237).
    pub fn stamped(value: &Value, now_secs: u64) -> Self {
        match value {
            Value::Object(map) => Self::Object(stamp_map(map, now_secs)),
            Value::Array(items) => Self::Array(
                items
                    .iter()
                    .map(|item| Self::stamped(item, now_secs))
                    .collect(),
            ),
            _ => Self::Leaf(now_secs),
        }
    }

    /// The newest timestamp anywhere below this node; `None` for an empty object or array.
    pub fn latest_timestamp(&self) -> Option<u64> {
        match self {
            Self::Leaf(timestamp) => Some(*timestamp),
            Self::Object(map) => map.values().filter_map(Self::latest_timestamp).max(),
            Self::Array(items) => items.iter().filter_map(Self::latest_timestamp).max(),
        }
    }

    /// The JSON form used in every shadow document.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Leaf(timestamp) => {
                let mut leaf = Map::with_capacity(1);
                leaf.insert("timestamp".to_string(), Value::from(*timestamp));
                Value::Object(leaf)
            }
            Self::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, node)| (key.clone(), node.to_value()))
                    .collect(),
            ),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
        }
    }

    /// Read the JSON form back; see the module doc for why this is unambiguous.
    pub fn from_value(value: &Value) -> Result<Self, MetadataFormatError> {
        match value {
            Value::Object(map) => {
                if map.len() == 1
                    && let Some(Value::Number(number)) = map.get("timestamp")
                {
                    return number
                        .as_u64()
                        .map(Self::Leaf)
                        .ok_or(MetadataFormatError::BadTimestamp);
                }
                map.iter()
                    .map(|(key, child)| Ok((key.clone(), Self::from_value(child)?)))
                    .collect::<Result<MetadataMap, _>>()
                    .map(Self::Object)
            }
            Value::Array(items) => items
                .iter()
                .map(Self::from_value)
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Array),
            _ => Err(MetadataFormatError::NotANode),
        }
    }
}

/// Stamp every key of an object (see [`MetadataNode::stamped`]).
pub fn stamp_map(map: &Map<String, Value>, now_secs: u64) -> MetadataMap {
    map.iter()
        .map(|(key, value)| (key.clone(), MetadataNode::stamped(value, now_secs)))
        .collect()
}

/// A metadata document that is not in AWS's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataFormatError {
    #[error("metadata timestamp is not a non-negative integer")]
    BadTimestamp,
    #[error("metadata node must be an object or an array")]
    NotANode,
}

impl Serialize for MetadataNode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Self::Leaf(timestamp) => {
                let mut leaf = serializer.serialize_map(Some(1))?;
                leaf.serialize_entry("timestamp", timestamp)?;
                leaf.end()
            }
            Self::Object(map) => map.serialize(serializer),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for MetadataNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamped_mirrors_objects_and_arrays() {
        let node = MetadataNode::stamped(&json!({"a": 1, "b": {"c": [1, {"d": true}]}}), 7);
        assert_eq!(
            node.to_value(),
            json!({"a": {"timestamp": 7}, "b": {"c": [{"timestamp": 7}, {"d": {"timestamp": 7}}]}})
        );
    }

    #[test]
    fn a_state_key_named_timestamp_round_trips() {
        let node = MetadataNode::stamped(&json!({"timestamp": 5, "x": {"timestamp": "s"}}), 9);
        let text = serde_json::to_string(&node).unwrap();
        let back: MetadataNode = serde_json::from_str(&text).unwrap();
        assert_eq!(back, node);
        assert_eq!(
            back.to_value(),
            json!({"timestamp": {"timestamp": 9}, "x": {"timestamp": {"timestamp": 9}}})
        );
    }

    #[test]
    fn malformed_metadata_is_an_error() {
        assert_eq!(
            MetadataNode::from_value(&json!({"timestamp": -1})),
            Err(MetadataFormatError::BadTimestamp)
        );
        assert_eq!(
            MetadataNode::from_value(&json!({"a": 3})),
            Err(MetadataFormatError::NotANode)
        );
    }

    #[test]
    fn latest_timestamp_looks_through_the_tree() {
        let mut map = MetadataMap::new();
        map.insert("a".into(), MetadataNode::Leaf(3));
        map.insert(
            "b".into(),
            MetadataNode::Array(vec![MetadataNode::Leaf(8), MetadataNode::Leaf(1)]),
        );
        assert_eq!(MetadataNode::Object(map).latest_timestamp(), Some(8));
        assert_eq!(MetadataNode::Array(vec![]).latest_timestamp(), None);
    }
}

//! The stored shadow document (reference 3.4, 3.6, 3.7).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::delta::{delta, delta_metadata};
use crate::metadata::MetadataMap;

/// `state` of a stored shadow. A section is `None` rather than empty: AWS omits empty sections
/// (reference 3.4), and [`crate::apply_update`] keeps that invariant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShadowState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Map<String, Value>>,
}

/// `metadata` of a stored shadow: one timestamp per leaf of each section (reference 3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShadowMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<MetadataMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<MetadataMap>,
}

/// A live shadow as the service stores it.
///
/// Serializes as `{"state","metadata","version","timestamp"}`; it also deserializes from a
/// `/get/accepted` body (the `delta` and `clientToken` there are ignored), which is how the device agent
/// reads its shadow after a reconnect.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShadowDocument {
    pub state: ShadowState,
    #[serde(default)]
    pub metadata: ShadowMetadata,
    /// +1 per accepted update (reference 3.7).
    pub version: u64,
    /// When the last accepted update happened, epoch seconds (`/get/accepted` carries the time of the
    /// response instead).
    #[serde(default)]
    pub timestamp: u64,
}

/// The `previous` / `current` entries of `/update/documents`: state, metadata and version, no timestamp
/// (reference 3.6).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DocumentSnapshot {
    pub state: ShadowState,
    #[serde(default)]
    pub metadata: ShadowMetadata,
    pub version: u64,
}

impl ShadowDocument {
    /// The delta between desired and reported (reference 3.5); empty when they agree or there is no
    /// desired section.
    pub fn delta(&self) -> Map<String, Value> {
        self.state.delta()
    }

    /// Timestamps of the delta's keys, taken from the desired metadata (reference 3.5).
    pub fn delta_metadata(&self, delta_state: &Map<String, Value>) -> MetadataMap {
        match &self.metadata.desired {
            Some(desired_metadata) => delta_metadata(delta_state, desired_metadata),
            None => MetadataMap::new(),
        }
    }

    /// The `/update/documents` form of this document.
    pub fn snapshot(&self) -> DocumentSnapshot {
        DocumentSnapshot {
            state: self.state.clone(),
            metadata: self.metadata.clone(),
            version: self.version,
        }
    }

    /// Bytes counted against the 8 KB limit: the compact JSON of `desired` plus that of `reported`;
    /// metadata is free (reference 3.9). This is also how AWS's Greengrass shadow manager counts.
    pub fn state_size_bytes(&self) -> usize {
        self.state.size_bytes()
    }
}

impl ShadowState {
    /// See [`ShadowDocument::delta`].
    pub fn delta(&self) -> Map<String, Value> {
        match &self.desired {
            None => Map::new(),
            Some(desired) => match &self.reported {
                Some(reported) => delta(desired, reported),
                None => desired.clone(),
            },
        }
    }

    /// See [`ShadowDocument::state_size_bytes`].
    pub fn size_bytes(&self) -> usize {
        [&self.desired, &self.reported]
            .into_iter()
            .flatten()
            .map(compact_json_len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.desired.is_none() && self.reported.is_none()
    }
}

impl DocumentSnapshot {
    /// See [`ShadowDocument::delta`].
    pub fn delta(&self) -> Map<String, Value> {
        self.state.delta()
    }
}

/// Length of the compact JSON encoding without building the string.
fn compact_json_len(map: &Map<String, Value>) -> usize {
    struct ByteCounter(usize);
    impl std::io::Write for ByteCounter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = ByteCounter(0);
    // Writing a JSON map into a counter cannot fail (no I/O errors, string keys only).
    match serde_json::to_writer(&mut counter, map) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_counts_compact_desired_plus_reported() {
        let document: ShadowDocument = serde_json::from_value(json!({
            "state": {"desired": {"a": 1}, "reported": {"b": "xy"}},
            "metadata": {"desired": {"a": {"timestamp": 1}}, "reported": {"b": {"timestamp": 1}}},
            "version": 3
        }))
        .unwrap();
        // {"a":1} = 7 bytes, {"b":"xy"} = 10 bytes; metadata is not counted.
        assert_eq!(document.state_size_bytes(), 17);
    }

    #[test]
    fn reads_a_get_accepted_body() {
        let body = json!({
            "state": {"desired": {"MOTOR": "ON"}, "reported": {"MOTOR": "OFF"}, "delta": {"MOTOR": "ON"}},
            "metadata": {"desired": {"MOTOR": {"timestamp": 10}}, "reported": {"MOTOR": {"timestamp": 9}}},
            "version": 4, "timestamp": 11, "clientToken": "t"
        });
        let document: ShadowDocument = serde_json::from_value(body).unwrap();
        assert_eq!(document.version, 4);
        assert_eq!(
            document.delta(),
            json!({"MOTOR": "ON"}).as_object().unwrap().clone()
        );
    }
}

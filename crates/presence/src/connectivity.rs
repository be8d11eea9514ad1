//! The stored state: the `reported` section of the named shadow `connectivity` (architecture section 3).

use serde::{Deserialize, Serialize};

use crate::observation::{Observation, ObservationKind};

/// `state.reported` of the named shadow `connectivity`, field for field, so shadow-reconciler can deserialize it
/// from a shadow `get` and serialize it into an `update` without a mapping layer.
///
/// It is always the projection of exactly one lifecycle event (the one that won the ordering), plus
/// `lastWillAt`, which lifecycle events never touch.
///
/// Serialization is shaped for shadow merge semantics (reference 3.4: keys are merged, `null` deletes a key):
/// `disconnectReason` is always written, so a connect sends `null` and clears the previous reason; `lastWillAt`
/// is written only when set, so a lifecycle update can never erase it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connectivity {
    /// Whether the winning event was a `connected`.
    pub connected: bool,
    /// MQTT client id the state belongs to (thing name = client id).
    pub client_id: String,
    /// `sessionIdentifier` of the winning event.
    pub session_identifier: String,
    /// `versionNumber` of the winning event (reference 1.7).
    pub version_number: u64,
    /// AWS `timestamp` of the winning event, ms since the epoch (reference 1.2); the ordering rule compares it.
    pub event_timestamp: i64,
    /// `disconnectReason` of the winning disconnect; absent while connected.
    #[serde(default)]
    pub disconnect_reason: Option<String>,
    /// When the last Last-Will message was seen (ms since the epoch). Owned by the Last-Will path, carried through
    /// every lifecycle decision unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_will_at: Option<i64>,
}

impl Connectivity {
    /// The state after `observation` wins; `last_will_at` is carried over from the previous state.
    pub fn from_observation(observation: &Observation, last_will_at: Option<i64>) -> Self {
        let connected = observation.kind.is_connected();
        Self {
            connected,
            client_id: observation.client_id.clone(),
            session_identifier: observation.session_identifier.clone(),
            version_number: observation.version_number,
            event_timestamp: observation.timestamp_ms,
            // A `connected` never carries a reason (reference 1.3); ignore one if a caller sets it anyway, so the
            // stored state stays a faithful "connected" state.
            disconnect_reason: if connected {
                None
            } else {
                observation.disconnect_reason.clone()
            },
            last_will_at,
        }
    }

    /// The kind of the event this state was built from.
    pub fn kind(&self) -> ObservationKind {
        if self.connected {
            ObservationKind::Connected
        } else {
            ObservationKind::Disconnected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_reported_section_of_the_shadow() {
        let reported = json!({
            "connected": false,
            "clientId": "ratchet",
            "sessionIdentifier": "a4666d2a7d844ae4ac5d7b38c9cb7967",
            "versionNumber": 12,
            "eventTimestamp": 1573002340451_i64,
            "disconnectReason": "CONNECTION_LOST",
            "lastWillAt": 1573002340999_i64
        });
        let state: Connectivity = serde_json::from_value(reported).unwrap();
        assert_eq!(state.kind(), ObservationKind::Disconnected);
        assert_eq!(state.version_number, 12);
        assert_eq!(state.disconnect_reason.as_deref(), Some("CONNECTION_LOST"));
        assert_eq!(state.last_will_at, Some(1573002340999));
    }

    #[test]
    fn missing_optional_fields_read_as_absent() {
        // The shadow deletes keys set to null, so a connected state comes back without `disconnectReason`.
        let reported = json!({
            "connected": true,
            "clientId": "ratchet",
            "sessionIdentifier": "s",
            "versionNumber": 0,
            "eventTimestamp": 1
        });
        let state: Connectivity = serde_json::from_value(reported).unwrap();
        assert_eq!(state.disconnect_reason, None);
        assert_eq!(state.last_will_at, None);
    }

    #[test]
    fn writes_null_reason_to_clear_it_and_never_writes_an_absent_last_will() {
        let state =
            Connectivity::from_observation(&Observation::connected("ratchet", 3, 1_000, "s"), None);
        let written = serde_json::to_value(&state).unwrap();
        assert_eq!(
            written,
            json!({
                "connected": true,
                "clientId": "ratchet",
                "sessionIdentifier": "s",
                "versionNumber": 3,
                "eventTimestamp": 1_000,
                "disconnectReason": null
            })
        );
    }

    #[test]
    fn round_trips_through_json() {
        let state = Connectivity::from_observation(
            &Observation::disconnected("ratchet", 3, 1_000, "s", "THROTTLED"),
            Some(900),
        );
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<Connectivity>(&text).unwrap(), state);
    }
}

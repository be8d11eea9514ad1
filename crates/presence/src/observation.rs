//! The reducer's input: one `connected` or `disconnected` lifecycle event, reduced to what ordering needs.
//!
//! The reducer works on its own input type, not on `iot-events`' wire types: the ordering rule is the same
//! whatever the wire format is. [`Observation::from_lifecycle`] converts an AWS lifecycle event.

use serde::{Deserialize, Serialize};

/// Which lifecycle event was observed (reference 1.1: `$aws/events/presence/{connected,disconnected}/{clientId}`).
///
/// `connect_failed` has no `versionNumber` (reference 1.5) and never changes connectivity, so it is not a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObservationKind {
    /// `eventType: "connected"`.
    Connected,
    /// `eventType: "disconnected"`.
    Disconnected,
}

impl ObservationKind {
    /// Whether the client is online after this event.
    pub fn is_connected(self) -> bool {
        matches!(self, ObservationKind::Connected)
    }
}

/// One lifecycle event as the reducer sees it.
///
/// AWS may deliver every lifecycle event out of order and more than once (reference 1.1); the reducer in
/// [`crate::reducer`] is what makes that harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    /// MQTT client id; equals the thing name in this project (architecture section 3).
    pub client_id: String,
    /// Connected or disconnected.
    pub kind: ObservationKind,
    /// Per-client counter; the connect and the disconnect of one connection share it, it may skip values, and it
    /// resets to 0 after about an hour offline (reference 1.7).
    pub version_number: u64,
    /// AWS's approximate event time in milliseconds since the epoch; the 2023 guide put the accuracy at ±2 minutes
    /// (reference 1.2).
    pub timestamp_ms: i64,
    /// Opaque id of the MQTT session; a persistent session keeps it across reconnects (reference 1.2), so it does
    /// not identify a single connection on its own.
    pub session_identifier: String,
    /// `disconnectReason`, only on disconnects (reference 1.3, values in 1.4). Kept as text so that a reason AWS
    /// adds later still reaches the shadow.
    pub disconnect_reason: Option<String>,
    /// `clientInitiatedDisconnect`, only on disconnects (reference 1.3). Not part of the ordering; carried so
    /// callers can log it next to the decision.
    pub client_initiated: Option<bool>,
    /// `principalIdentifier` (reference 1.2). Not part of the ordering; carried for logs.
    pub principal: Option<String>,
}

impl Observation {
    /// A `connected` event: the fields a connect carries that matter for ordering.
    pub fn connected(
        client_id: impl Into<String>,
        version_number: u64,
        timestamp_ms: i64,
        session_identifier: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            kind: ObservationKind::Connected,
            version_number,
            timestamp_ms,
            session_identifier: session_identifier.into(),
            disconnect_reason: None,
            client_initiated: None,
            principal: None,
        }
    }

    /// A `disconnected` event with its `disconnectReason`; `clientInitiatedDisconnect` is derived the way
    /// reference 1.4 describes it (true only for `CLIENT_INITIATED_DISCONNECT`).
    pub fn disconnected(
        client_id: impl Into<String>,
        version_number: u64,
        timestamp_ms: i64,
        session_identifier: impl Into<String>,
        disconnect_reason: impl Into<String>,
    ) -> Self {
        let disconnect_reason = disconnect_reason.into();
        Self {
            client_id: client_id.into(),
            kind: ObservationKind::Disconnected,
            version_number,
            timestamp_ms,
            session_identifier: session_identifier.into(),
            client_initiated: Some(
                disconnect_reason
                    .parse::<iot_events::DisconnectReason>()
                    .is_ok_and(|reason| reason.is_client_initiated()),
            ),
            disconnect_reason: Some(disconnect_reason),
            principal: None,
        }
    }
}

impl Observation {
    /// The reducer's view of an AWS lifecycle event; `None` for events that say nothing about
    /// connectivity (`connect_failed`, subscriptions).
    pub fn from_lifecycle(event: &iot_events::LifecycleEvent) -> Option<Self> {
        use iot_events::LifecycleEvent;
        match event {
            LifecycleEvent::Connected(e) => Some(Self {
                principal: e.principal_identifier.clone(),
                ..Self::connected(
                    e.client_id.clone(),
                    e.version_number,
                    e.timestamp,
                    e.session_identifier.clone(),
                )
            }),
            LifecycleEvent::Disconnected(e) => Some(Self {
                client_id: e.client_id.clone(),
                kind: ObservationKind::Disconnected,
                version_number: e.version_number,
                timestamp_ms: e.timestamp,
                session_identifier: e.session_identifier.clone(),
                disconnect_reason: e.disconnect_reason.as_ref().map(ToString::to_string),
                client_initiated: Some(e.is_client_initiated()),
                principal: e.principal_identifier.clone(),
            }),
            LifecycleEvent::ConnectFailed(_)
            | LifecycleEvent::Subscribed(_)
            | LifecycleEvent::Unsubscribed(_) => None,
        }
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::*;

    #[test]
    fn lifecycle_events_convert_with_their_ordering_fields() {
        let event: iot_events::LifecycleEvent = serde_json::from_str(
            r#"{"clientId":"pi","timestamp":5,"eventType":"disconnected","sessionIdentifier":"s",
                "principalIdentifier":"p","clientInitiatedDisconnect":false,
                "disconnectReason":"CONNECTION_LOST","versionNumber":3}"#,
        )
        .unwrap();
        let observation = Observation::from_lifecycle(&event).unwrap();
        assert_eq!(observation.kind, ObservationKind::Disconnected);
        assert_eq!(observation.version_number, 3);
        assert_eq!(observation.timestamp_ms, 5);
        assert_eq!(
            observation.disconnect_reason.as_deref(),
            Some("CONNECTION_LOST")
        );
        assert_eq!(observation.client_initiated, Some(false));
        assert_eq!(observation.principal.as_deref(), Some("p"));

        let subscribed: iot_events::LifecycleEvent = serde_json::from_str(
            r#"{"clientId":"pi","timestamp":5,"eventType":"subscribed","sessionIdentifier":"s","topics":["a"]}"#,
        )
        .unwrap();
        assert!(Observation::from_lifecycle(&subscribed).is_none());
    }
}

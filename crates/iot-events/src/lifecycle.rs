//! Lifecycle events AWS IoT publishes on `$aws/events/...` (reference 1.1-1.7).
//!
//! They may arrive out of order and more than once (reference 1.1); ordering them is the job of
//! the `presence` crate, these types only carry them faithfully.

use serde::{Deserialize, Serialize};

use crate::reason::DisconnectReason;

/// One lifecycle event, tagged by `eventType` as AWS sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType")]
pub enum LifecycleEvent {
    #[serde(rename = "connected")]
    Connected(ConnectedEvent),
    #[serde(rename = "disconnected")]
    Disconnected(DisconnectedEvent),
    #[serde(rename = "connect_failed")]
    ConnectFailed(ConnectFailedEvent),
    #[serde(rename = "subscribed")]
    Subscribed(SubscriptionEvent),
    #[serde(rename = "unsubscribed")]
    Unsubscribed(SubscriptionEvent),
}

impl LifecycleEvent {
    /// Every `eventType` value AWS sends on `$aws/events/presence` and `$aws/events/subscriptions`, as the
    /// variants above are tagged.
    pub const EVENT_TYPES: [&'static str; 5] = [
        "connected",
        "disconnected",
        "connect_failed",
        "subscribed",
        "unsubscribed",
    ];

    /// Whether `event_type` is one of [`Self::EVENT_TYPES`].
    pub fn is_known_type(event_type: &str) -> bool {
        Self::EVENT_TYPES.contains(&event_type)
    }

    pub fn client_id(&self) -> &str {
        match self {
            Self::Connected(e) => &e.client_id,
            Self::Disconnected(e) => &e.client_id,
            Self::ConnectFailed(e) => &e.client_id,
            Self::Subscribed(e) | Self::Unsubscribed(e) => &e.client_id,
        }
    }

    /// `thingName` is present only for exclusive-thing connections (reference 1.1).
    pub fn thing_name(&self) -> Option<&str> {
        match self {
            Self::Connected(e) => e.thing_name.as_deref(),
            Self::Disconnected(e) => e.thing_name.as_deref(),
            Self::ConnectFailed(e) => e.thing_name.as_deref(),
            Self::Subscribed(e) | Self::Unsubscribed(e) => e.thing_name.as_deref(),
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Connected(_) => "connected",
            Self::Disconnected(_) => "disconnected",
            Self::ConnectFailed(_) => "connect_failed",
            Self::Subscribed(_) => "subscribed",
            Self::Unsubscribed(_) => "unsubscribed",
        }
    }

    /// Milliseconds since the epoch; AWS calls it an approximation (reference 1.2).
    pub fn timestamp(&self) -> i64 {
        match self {
            Self::Connected(e) => e.timestamp,
            Self::Disconnected(e) => e.timestamp,
            Self::ConnectFailed(e) => e.timestamp,
            Self::Subscribed(e) | Self::Unsubscribed(e) => e.timestamp,
        }
    }

    /// The topic AWS publishes this event on.
    pub fn topic(&self) -> String {
        let group = match self {
            Self::Subscribed(_) | Self::Unsubscribed(_) => "subscriptions",
            _ => "presence",
        };
        format!(
            "$aws/events/{group}/{}/{}",
            self.event_type(),
            self.client_id()
        )
    }
}

/// `$aws/events/presence/connected/{clientId}` (reference 1.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedEvent {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    pub timestamp: i64,
    pub session_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub version_number: u64,
}

/// `$aws/events/presence/disconnected/{clientId}` (reference 1.3).
///
/// `disconnectReason` and `clientInitiatedDisconnect` are documented for every disconnect, but a
/// disconnect without them is still a disconnect, so they are optional here rather than a reason to
/// reject the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectedEvent {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    pub timestamp: i64,
    pub session_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_initiated_disconnect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<DisconnectReason>,
    pub version_number: u64,
}

impl DisconnectedEvent {
    /// True when the device sent DISCONNECT itself; the explicit flag wins over the reason.
    pub fn is_client_initiated(&self) -> bool {
        self.client_initiated_disconnect.unwrap_or_else(|| {
            self.disconnect_reason
                .as_ref()
                .is_some_and(DisconnectReason::is_client_initiated)
        })
    }
}

/// `$aws/events/presence/connect_failed/{clientId}` (reference 1.5). No `versionNumber`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectFailedEvent {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    pub timestamp: i64,
    /// `AUTHORIZATION_FAILED` is the only documented value; others are kept as they come.
    pub connect_failure_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// `$aws/events/subscriptions/{subscribed,unsubscribed}/{clientId}` (reference 1.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionEvent {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    pub timestamp: i64,
    pub session_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_identifier: Option<String>,
    pub topics: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_matches_reference_1_1() {
        let e = LifecycleEvent::Subscribed(SubscriptionEvent {
            client_id: "c1".into(),
            thing_name: None,
            timestamp: 1,
            session_identifier: "s".into(),
            principal_identifier: None,
            topics: vec!["a/b".into()],
        });
        assert_eq!(e.topic(), "$aws/events/subscriptions/subscribed/c1");
    }
}

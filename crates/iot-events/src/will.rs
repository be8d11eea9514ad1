//! The Last Will of our device agent and what the `DisconnectWill` rule makes of it.

use serde::{Deserialize, Serialize};

/// Payload the agent registers as its Last Will on `device/{thing}/lwt` (architecture section 3).
///
/// The will is fixed at CONNECT time, so it can only say which agent session it belongs to and when
/// that connection was made; the broker publishes it later, when the connection dies unexpectedly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastWill {
    pub thing: String,
    /// Unique per agent process start: tells two connections of the same device apart.
    pub agent_session: String,
    /// Milliseconds since the epoch when the connection that registered this will was made.
    pub connected_at: i64,
    pub agent_version: String,
    /// Always `"unexpected"` today; kept as a string so future agents can say more.
    pub reason: String,
}

impl LastWill {
    pub const UNEXPECTED: &'static str = "unexpected";

    /// The will an agent registers at CONNECT: the broker publishes it only if the connection dies
    /// without a DISCONNECT, hence the fixed reason.
    pub fn unexpected(
        thing: impl Into<String>,
        agent_session: impl Into<String>,
        connected_at: i64,
        agent_version: impl Into<String>,
    ) -> Self {
        Self {
            thing: thing.into(),
            agent_session: agent_session.into(),
            connected_at,
            agent_version: agent_version.into(),
            reason: Self::UNEXPECTED.to_owned(),
        }
    }

    /// The topic the contract puts a thing's will on.
    pub fn topic(thing: &str) -> String {
        format!("device/{thing}/lwt")
    }
}

/// Output of the `DisconnectWill` rule:
/// `SELECT *, topic(2) AS thing, clientid() AS clientId, timestamp() AS receivedAt FROM 'device/+/lwt'`.
///
/// The will's own keys are flattened in by `*`; the rule adds the publishing client id and the time
/// the broker handled the will (reference 5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WillRuleEvent {
    #[serde(flatten)]
    pub will: LastWill,
    pub client_id: String,
    pub received_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unexpected_will_has_the_contract_keys_in_order() {
        let will = LastWill::unexpected("ratchet", "s-1", 1_700_000_000_123, "0.1.0");
        assert_eq!(
            serde_json::to_string(&will).unwrap(),
            r#"{"thing":"ratchet","agentSession":"s-1","connectedAt":1700000000123,"agentVersion":"0.1.0","reason":"unexpected"}"#
        );
        assert_eq!(LastWill::topic("ratchet"), "device/ratchet/lwt");
    }
}

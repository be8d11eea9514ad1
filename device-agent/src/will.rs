//! The agent's Last Will and the session it names.
//!
//! The payload is `iot_events::LastWill`, the type the disconnect recorder parses, so the contract has one
//! definition. The broker publishes the will only when the connection dies without a DISCONNECT (crash,
//! `kill -9`, power loss); `shutdown` ends with a DISCONNECT, so a clean stop sends none.

use std::time::SystemTime;

pub use iot_events::LastWill;

use crate::clock::epoch_millis;

/// Agent version sent in the Will (`agentVersion`).
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A new agent session id (UUID v4).
pub fn new_agent_session() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The contract's Will payload (architecture section 3) for a CONNECT attempt made at `connect_attempt_at`.
///
/// `connectedAt` is the time of the CONNECT attempt that registered this Will: MQTT fixes the Will in the
/// CONNECT packet, before the broker's CONNACK, so the agent re-renders the Will before every attempt and the
/// value is at most the connect timeout earlier than the broker's own connect time.
pub fn will_payload(thing: &str, agent_session: &str, connect_attempt_at: SystemTime) -> Vec<u8> {
    // Epoch milliseconds stay below i64::MAX for another 292 million years.
    let connected_at = i64::try_from(epoch_millis(connect_attempt_at)).unwrap_or(i64::MAX);
    let will = LastWill::unexpected(thing, agent_session, connected_at, AGENT_VERSION);
    // A struct of strings and an integer always serializes.
    serde_json::to_vec(&will).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn will_payload_matches_the_contract() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let will: serde_json::Value =
            serde_json::from_slice(&will_payload("ratchet", "s-1", at)).unwrap();
        assert_eq!(
            will,
            serde_json::json!({"thing":"ratchet","agentSession":"s-1","connectedAt":1_700_000_000_123u64,
                               "agentVersion":AGENT_VERSION,"reason":"unexpected"})
        );
    }

    #[test]
    fn the_recorder_parses_what_the_agent_sends() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let parsed: LastWill = serde_json::from_slice(&will_payload("ratchet", "s-1", at)).unwrap();
        assert_eq!(
            parsed,
            LastWill::unexpected("ratchet", "s-1", 1_700_000_000_123, AGENT_VERSION)
        );
        // What the recorder gets: the will with the `DisconnectWill` rule's additions.
        let mut rule_output: serde_json::Value =
            serde_json::from_slice(&will_payload("ratchet", "s-1", at)).unwrap();
        rule_output["clientId"] = "ratchet".into();
        rule_output["receivedAt"] = 1_700_000_000_200i64.into();
        let raw = serde_json::to_vec(&rule_output).unwrap();
        match iot_events::classify_bytes(&raw) {
            iot_events::Classified::Will(event) => assert_eq!(event.will, parsed),
            other => panic!("not a will: {other:?}"),
        }
    }
}

//! The agent's Last Will and the session it names.
//!
//! The broker publishes the will only when the connection dies without a DISCONNECT (crash, `kill -9`,
//! power loss); `shutdown` ends with a DISCONNECT, so a clean stop sends none.

use std::time::SystemTime;

use serde::Serialize;

use crate::clock::epoch_millis;

/// Agent version sent in the Will (`agentVersion`).
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A new agent session id (UUID v4).
pub fn new_agent_session() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The contract's Will payload (architecture section 3).
///
/// `connectedAt` is the time of the CONNECT attempt that registered this Will: MQTT fixes the Will in the
/// CONNECT packet, before the broker's CONNACK, so the agent re-renders the Will before every attempt and the
/// value is at most the connect timeout earlier than the broker's own connect time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WillPayload {
    pub thing: String,
    /// Fresh per process start: lets the backend tell restarts apart.
    pub agent_session: String,
    /// Epoch milliseconds of the CONNECT attempt.
    pub connected_at: u64,
    pub agent_version: String,
    pub reason: &'static str,
}

impl WillPayload {
    pub fn new(thing: &str, agent_session: &str, connect_attempt_at: SystemTime) -> Self {
        Self {
            thing: thing.to_string(),
            agent_session: agent_session.to_string(),
            connected_at: epoch_millis(connect_attempt_at),
            agent_version: AGENT_VERSION.to_string(),
            reason: "unexpected",
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn will_payload_matches_the_contract() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let will: serde_json::Value =
            serde_json::from_slice(&WillPayload::new("ratchet", "s-1", at).to_bytes()).unwrap();
        assert_eq!(
            will,
            serde_json::json!({"thing":"ratchet","agentSession":"s-1","connectedAt":1_700_000_000_123u64,
                               "agentVersion":AGENT_VERSION,"reason":"unexpected"})
        );
    }
}

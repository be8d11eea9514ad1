//! Process lifecycle: the shutdown signal every task holds, the agent session, and the Last Will.
//!
//! SIGTERM/SIGINT -> flush the outbox (bounded by `shutdown_flush_secs`) -> MQTT DISCONNECT, so the broker
//! discards the Will (reference 2.1: no will on a client-initiated disconnect). A crash, `kill -9` or a power
//! loss leaves no DISCONNECT, so the broker publishes the Will.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

/// Agent version sent in the Will (`agentVersion`).
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A shutdown notification that tasks hold by value (mini-redis style). Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Triggers every `Shutdown` created from it.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (
        ShutdownTrigger {
            tx: std::sync::Arc::new(tx),
        },
        Shutdown { rx },
    )
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown was triggered (immediately if it already was, or if the trigger is gone).
    pub async fn recv(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
pub async fn termination_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Milliseconds since the Unix epoch (the unit of `ts` and of AWS lifecycle events).
pub fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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

/// A new agent session id (UUID v4).
pub fn new_agent_session() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[tokio::test]
    async fn shutdown_reaches_every_holder() {
        let (trigger, mut a) = shutdown_channel();
        let mut b = trigger.subscribe();
        assert!(!a.is_shutdown());
        trigger.trigger();
        a.recv().await;
        b.recv().await;
        assert!(b.is_shutdown());
    }
}

//! Broker settings. The defaults are AWS IoT's values (references 2.4, 6.4, 6.5); tests shorten the time-based
//! ones so they run in seconds.

use std::time::Duration;

/// What a denied SUBSCRIBE does on MQTT 3.1.1 (reference 4.5: AWS has been observed to disconnect; SUBACK 0x80
/// is the alternative some clients expect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscribeDenial {
    #[default]
    Disconnect,
    SubackFailure,
}

/// AWS IoT's per-connection limits (reference 6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// PUBLISH payload (and CONNECT) size: 128 KB. Larger -> disconnect with `CLIENT_ERROR` (reference 1.4).
    pub max_payload_bytes: usize,
    /// Topic name / filter size in UTF-8 bytes: 256.
    pub max_topic_bytes: usize,
    /// Forward slashes in a topic or filter: 7 (Basic Ingest's `$aws/rules/{rule}/` prefix excluded).
    pub max_topic_slashes: usize,
    /// Client id size: 128 bytes.
    pub max_client_id_bytes: usize,
    /// Topic filters in one SUBSCRIBE: 8.
    pub max_filters_per_subscribe: usize,
    /// Subscriptions per connection: 50 ("the connection will be closed" beyond it).
    pub max_subscriptions_per_connection: usize,
    /// Unacknowledged outbound QoS 1 messages per client: 100; more wait in the session's queue.
    pub max_inflight_outbound: usize,
    /// QoS 1 messages kept for an offline persistent session; the excess is dropped (reference 6.4).
    pub max_queued_offline: usize,
    /// Deliveries one live connection may have waiting beyond its in-flight window (router → session channel,
    /// and the session's backlog each hold at most this many). A consumer that does not keep up loses QoS 0
    /// deliveries beyond it and is disconnected (THROTTLED) when a QoS 1 delivery does not fit; see
    /// `router::ConnectionLink::deliver`.
    pub max_pending_outbound: usize,
    /// Retained messages kept (one per topic). AWS has an account quota and throttles retained publishes
    /// beyond it (reference 6.3); here a publish to a new topic beyond the limit is delivered but not retained.
    pub max_retained_messages: usize,
    /// Messages one in-process subscriber (a rule, the shadow service) may have queued and not yet taken;
    /// beyond it, input from outside waits or is refused (`broker::internal`, the bound's policy).
    pub max_internal_queue_messages: usize,
    /// The same bound in bytes (topic + payload), so 128 KB payloads cannot queue 10,000 deep.
    pub max_internal_queue_bytes: usize,
    /// How long a device PUBLISH waits for room in a full in-process queue before it is refused: QoS 0 is
    /// dropped and counted, QoS 1 ends the connection as THROTTLED without a PUBACK, so the client sends
    /// it again after reconnecting (reference 6.5: AWS throttles a client over its rate).
    pub internal_queue_wait: Duration,
}

impl Limits {
    /// The topic size limits in the form iot-sql's topic rules take them.
    pub fn topics(&self) -> iot_sql::TopicLimits {
        iot_sql::TopicLimits {
            max_bytes: self.max_topic_bytes,
            max_slashes: self.max_topic_slashes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 128 * 1024,
            max_topic_bytes: iot_sql::MAX_TOPIC_BYTES,
            max_topic_slashes: iot_sql::MAX_TOPIC_SLASHES,
            max_client_id_bytes: 128,
            max_filters_per_subscribe: 8,
            max_subscriptions_per_connection: 50,
            max_inflight_outbound: 100,
            max_queued_offline: 1000,
            max_pending_outbound: 1000,
            max_retained_messages: 100_000,
            max_internal_queue_messages: 10_000,
            max_internal_queue_bytes: 64 * 1024 * 1024,
            internal_queue_wait: Duration::from_secs(5),
        }
    }
}

/// Fault injection for lifecycle events: AWS documents that they may be duplicated and arrive out of order
/// (reference 1.1), so the presence model must be tested against both on purpose.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LifecycleFaults {
    /// Probability that an event is published twice.
    pub duplicate_probability: f64,
    /// Probability that an event is held back and published after the next event (a pairwise swap).
    pub reorder_probability: f64,
    /// How long a held-back event waits for a successor before it is published anyway.
    pub max_hold: Duration,
    /// Seed for reproducible fault sequences; `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl LifecycleFaults {
    pub fn is_enabled(&self) -> bool {
        self.duplicate_probability > 0.0 || self.reorder_probability > 0.0
    }
}

/// Everything the broker can be configured with.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Listen address of the MQTT/TLS listener (`127.0.0.1:8883` by default; port 0 picks a free port).
    pub bind: std::net::SocketAddr,
    /// Names the server certificate is issued for (clients verify the host name against them).
    pub server_names: Vec<String>,
    /// ARN scope for policy checks.
    pub region: String,
    pub account: String,
    /// Lowest keep-alive the broker accepts; smaller non-zero values are raised to it. AWS: 30 s (reference
    /// 2.4). Lower it only for tests that need a keep-alive timeout in seconds.
    pub keep_alive_floor: Duration,
    /// Keep-alive used for 0 and for values above it. AWS: 1200 s.
    pub keep_alive_max: Duration,
    /// A persistent session survives this long after its client disconnects. AWS default: 1 h (reference 6.4).
    pub persistent_session_expiry: Duration,
    /// The lifecycle `versionNumber` of a client resets to 0 after it has been offline this long. AWS: about
    /// 1 h (reference 1.7).
    pub version_reset_after: Duration,
    /// How long a TCP connection may take to finish the TLS handshake and send CONNECT.
    pub connect_timeout: Duration,
    pub subscribe_denial: SubscribeDenial,
    pub limits: Limits,
    pub lifecycle_faults: LifecycleFaults,
    /// Where retained messages and persistent sessions are kept across restarts (`journal.jsonl`, see
    /// `broker::journal`); `None` keeps them in memory only. `iot-emulator up` uses `<state>/broker`.
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 8883)),
            server_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            region: "us-east-1".to_owned(),
            account: "123456789012".to_owned(),
            keep_alive_floor: Duration::from_secs(30),
            keep_alive_max: Duration::from_secs(1200),
            persistent_session_expiry: Duration::from_secs(3600),
            version_reset_after: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(10),
            subscribe_denial: SubscribeDenial::default(),
            limits: Limits::default(),
            lifecycle_faults: LifecycleFaults::default(),
            state_dir: None,
        }
    }
}

impl BrokerConfig {
    /// The keep-alive AWS applies to a CONNECT's value (reference 2.4): 0 or above the maximum -> the maximum
    /// (1200 s); below the floor -> the floor (30 s).
    pub fn effective_keep_alive(&self, requested_seconds: u16) -> Duration {
        let requested = Duration::from_secs(u64::from(requested_seconds));
        if requested.is_zero() || requested > self.keep_alive_max {
            self.keep_alive_max
        } else if requested < self.keep_alive_floor {
            self.keep_alive_floor
        } else {
            requested
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_is_clamped_like_aws() {
        let config = BrokerConfig::default();
        let seconds = |value| config.effective_keep_alive(value).as_secs();
        assert_eq!(seconds(0), 1200);
        assert_eq!(seconds(1), 30);
        assert_eq!(seconds(29), 30);
        assert_eq!(seconds(30), 30);
        assert_eq!(seconds(600), 600);
        assert_eq!(seconds(1200), 1200);
        assert_eq!(seconds(1201), 1200);
        let short = BrokerConfig {
            keep_alive_floor: Duration::from_secs(1),
            ..BrokerConfig::default()
        };
        assert_eq!(short.effective_keep_alive(1).as_secs(), 1);
    }
}

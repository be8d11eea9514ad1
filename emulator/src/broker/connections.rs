//! What the broker can tell about its clients, for the data plane (GetConnection, ListSubscriptions,
//! ListRetainedMessages) and the control plane (GetThingConnectivityData): the facts a connection was opened
//! with, and a bounded memory of recent departures. The router keeps both beside its sessions, so there is one
//! session registry and these are views of it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use iot_events::DisconnectReason;

use super::message::Qos;

/// Departures remembered per map (by client id, by thing); the oldest is forgotten first. AWS keeps
/// connectivity data for as long as the thing exists; 10,000 covers every fleet the emulator is meant for.
pub(crate) const MAX_DEPARTURES: usize = 10_000;

/// GetConnection reports `disconnectedSince` for 30 minutes after a disconnect (the `iot-data` model).
pub const DISCONNECTED_VISIBLE_MS: i64 = 30 * 60 * 1000;

/// What a connection was opened with, fixed at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionFacts {
    pub clean_session: bool,
    /// The thing the connection is associated with (registry's `thing_for_client`, reference 4.4).
    pub thing_name: Option<String>,
    pub source: SocketAddr,
    pub target: SocketAddr,
    /// The keep-alive the client asked for in CONNECT, in seconds (GetConnection reports this value).
    pub keep_alive_secs: u16,
    pub connected_since_ms: i64,
}

/// One client's last disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Departure {
    pub facts: ConnectionFacts,
    pub at_ms: i64,
    pub reason: DisconnectReason,
}

/// A map that forgets its oldest entries beyond `capacity` (insertion order; a re-insert counts as new).
#[derive(Debug)]
struct BoundedMap<V> {
    entries: HashMap<String, (u64, V)>,
    order: VecDeque<(String, u64)>,
    next_sequence: u64,
    capacity: usize,
}

impl<V> BoundedMap<V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_sequence: 0,
            capacity,
        }
    }

    fn insert(&mut self, key: &str, value: V) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.entries.insert(key.to_owned(), (sequence, value));
        self.order.push_back((key.to_owned(), sequence));
        while self.entries.len() > self.capacity {
            let Some((oldest, sequence)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|(s, _)| *s == sequence)
            {
                self.entries.remove(&oldest);
            }
        }
        // Re-inserted keys leave stale entries in `order`; drop them once they outnumber the live ones.
        if self.order.len() > 2 * self.capacity.max(1) {
            let entries = &self.entries;
            self.order
                .retain(|(key, sequence)| entries.get(key).is_some_and(|(s, _)| s == sequence));
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// The recent departures, by client id and by associated thing.
#[derive(Debug)]
pub(crate) struct Departures {
    by_client: BoundedMap<Departure>,
    by_thing: BoundedMap<Departure>,
}

impl Default for Departures {
    fn default() -> Self {
        Self {
            by_client: BoundedMap::new(MAX_DEPARTURES),
            by_thing: BoundedMap::new(MAX_DEPARTURES),
        }
    }
}

impl Departures {
    pub(crate) fn record(&mut self, client_id: &str, departure: Departure) {
        if let Some(thing) = departure.facts.thing_name.clone() {
            self.by_thing.insert(&thing, departure.clone());
        }
        self.by_client.insert(client_id, departure);
    }

    pub(crate) fn of_client(&self, client_id: &str) -> Option<&Departure> {
        self.by_client.get(client_id)
    }

    /// `DeleteConnection(cleanSession=true)` forgets the client, as AWS deletes "all session information".
    pub(crate) fn forget_client(&mut self, client_id: &str) {
        self.by_client.remove(client_id);
    }

    /// The latest departure of the client named `thing` or of a client associated with `thing`.
    pub(crate) fn of_thing(&self, thing: &str) -> Option<&Departure> {
        match (self.by_client.get(thing), self.by_thing.get(thing)) {
            (Some(a), Some(b)) => Some(if a.at_ms >= b.at_ms { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// GetConnection's answer (the `iot-data` model's `GetConnectionResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub client_id: String,
    pub connected: bool,
    pub clean_session: bool,
    pub thing_name: Option<String>,
    /// The socket and keep-alive of the last connection; `None` for a persistent session restored from the
    /// journal whose connection was before the restart.
    pub source: Option<SocketAddr>,
    pub target: Option<SocketAddr>,
    pub keep_alive_secs: Option<u16>,
    /// Present only while connected.
    pub connected_since_ms: Option<i64>,
    /// Present only while disconnected (and for 30 minutes after the disconnect).
    pub disconnected_since_ms: Option<i64>,
    pub disconnect_reason: Option<DisconnectReason>,
    /// How long the session outlives a disconnect: 0 for a clean session.
    pub session_expiry_secs: u64,
}

/// One retained message without its payload (ListRetainedMessages' `RetainedMessageSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedSummary {
    pub topic: String,
    pub payload_size: usize,
    pub qos: Qos,
    pub last_modified_ms: i64,
}

/// A thing's connectivity as GetThingConnectivityData reports it (the `iot` model's
/// `GetThingConnectivityDataResponse`: `connected`, `timestamp`, `disconnectReason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingConnectivity {
    pub connected: bool,
    /// When the thing connected (while connected) or disconnected (otherwise); `None` if it never connected
    /// since the emulator started (or since its departure was forgotten, beyond [`MAX_DEPARTURES`]).
    pub timestamp_ms: Option<i64>,
    /// The lifecycle event's `disconnectReason` (reference 1.4) of the last disconnect; `None` while connected
    /// and for a thing never seen.
    pub disconnect_reason: Option<String>,
    /// The (last) connection's client id, while it is connected.
    pub client_id: Option<String>,
    /// The (last) connection's socket, keep-alive and session kind; `None` for a thing never seen.
    pub connection: Option<ConnectivityDetails>,
}

/// What GetThingConnectivityData reports of the connection itself (`sourceIp`/`sourcePort`, `targetIp`/
/// `targetPort`, `keepAliveDuration`, `cleanSession`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectivityDetails {
    pub source: SocketAddr,
    pub target: SocketAddr,
    pub keep_alive_secs: u16,
    pub clean_session: bool,
}

impl ConnectivityDetails {
    pub(crate) fn of(facts: &ConnectionFacts) -> Self {
        Self {
            source: facts.source,
            target: facts.target,
            keep_alive_secs: facts.keep_alive_secs,
            clean_session: facts.clean_session,
        }
    }
}

/// Why the broker could not hand a direct message (SendDirectMessage) to its client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectMessageError {
    /// Direct messages are not queued for offline clients (AWS's Direct Messaging guide).
    #[error("the client {0} is not connected")]
    NotConnected(String),
    /// The receiver's policy does not allow `iot:Receive` on the topic.
    #[error("the receiving client is not authorized to receive on {0}")]
    NotAuthorized(String),
    /// The client already has the maximum of unacknowledged QoS 1 messages (reference 6.5).
    #[error("the client has too many unacknowledged messages")]
    Busy,
    /// No PUBACK (or, without confirmation, no delivery) within the timeout.
    #[error("no delivery confirmation within the timeout")]
    Timeout,
    /// The connection ended before the message was acknowledged.
    #[error("the connection ended before the message was acknowledged")]
    ConnectionEnded,
}

/// What a session answers to a direct message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectOutcome {
    /// Written to the client (QoS 0) or acknowledged with PUBACK (QoS 1).
    Delivered,
    NotAuthorized,
    Busy,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn departure(at_ms: i64, thing: Option<&str>) -> Departure {
        let address = SocketAddr::from(([127, 0, 0, 1], 1));
        Departure {
            facts: ConnectionFacts {
                clean_session: true,
                thing_name: thing.map(str::to_owned),
                source: address,
                target: address,
                keep_alive_secs: 30,
                connected_since_ms: 0,
            },
            at_ms,
            reason: DisconnectReason::ConnectionLost,
        }
    }

    #[test]
    fn bounded_map_forgets_the_oldest_and_keeps_reinserted_keys() {
        let mut map = BoundedMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3);
        map.insert("c", 4);
        assert_eq!(map.get("b"), None, "b is now the oldest");
        assert_eq!(map.get("a"), Some(&3));
        assert_eq!(map.get("c"), Some(&4));
        for round in 0..100 {
            map.insert("a", round);
        }
        assert!(map.order.len() <= 4, "stale order entries are compacted");
    }

    #[test]
    fn a_thing_is_found_by_client_id_or_by_association_latest_first() {
        let mut departures = Departures::default();
        departures.record("lamp", departure(10, None));
        departures.record("other-client", departure(20, Some("lamp")));
        assert_eq!(departures.of_thing("lamp").map(|d| d.at_ms), Some(20));
        departures.record("lamp", departure(30, None));
        assert_eq!(departures.of_thing("lamp").map(|d| d.at_ms), Some(30));
        assert!(departures.of_thing("nobody").is_none());
    }
}

//! True lifecycle histories of AWS IoT clients, and their shuffled, duplicated deliveries.
//!
//! A history is what really happened to one client id: a chain of connections, each ending in a disconnect with
//! one of the reasons of reference 1.4, or taken over by the next connection (`DUPLICATE_CLIENTID`). AWS's
//! promises about these events are the model's rules (reference 1.7 and 1.2):
//! - the connect and the disconnect of one connection carry the same `versionNumber`; the next connection's is
//!   higher, possibly skipping values;
//! - after about an hour offline the counter restarts at 0 (offline 55–65 min: either; over 65 min: always;
//!   under 55 min: never), and a persistent session is not resumed after it;
//! - every timestamp is the true time ± 2 min;
//! - on a takeover the old connection's disconnect is processed up to a minute after the new connect.
//!
//! Shared by `tests/convergence.rs` and `benches/reducer.rs`.

use std::collections::BTreeMap;

use presence::{Connectivity, Observation};
use proptest::prelude::*;
use proptest::sample::select;

pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

/// Every timestamp is within this of the true time (reference 1.2, 2023 text).
pub const ACCURACY_MS: i64 = presence::TIMESTAMP_ACCURACY_MS as i64;
/// The old connection's `DUPLICATE_CLIENTID` disconnect happens at most this long after the new connect.
pub const MAX_TAKEOVER_PROCESSING_MS: i64 = presence::DISCONNECT_PROCESSING_SLACK_MS as i64;

/// Offline shorter than this never resets the counter, longer than [`ALWAYS_RESET_AFTER_MS`] always does.
pub const NEVER_RESET_BEFORE_MS: i64 = 55 * MINUTE;
pub const ALWAYS_RESET_AFTER_MS: i64 = 65 * MINUTE;

pub const TAKEOVER_REASON: &str = "DUPLICATE_CLIENTID";

/// The disconnect reasons of reference 1.4 other than `DUPLICATE_CLIENTID`, which only a takeover produces.
pub const ORDINARY_DISCONNECT_REASONS: [&str; 12] = [
    "AUTH_ERROR",
    "CLIENT_INITIATED_DISCONNECT",
    "CLIENT_ERROR",
    "CONNECTION_LOST",
    "FORBIDDEN_ACCESS",
    "MQTT_KEEP_ALIVE_TIMEOUT",
    "SERVER_ERROR",
    "SERVER_INITIATED_DISCONNECT",
    "API_INITIATED_DISCONNECT",
    "THROTTLED",
    "WEBSOCKET_TTL_EXPIRATION",
    "CUSTOMAUTH_TTL_EXPIRATION",
];

/// Time between a disconnect and the next connect.
#[derive(Debug, Clone)]
pub enum Offline {
    /// Under [`NEVER_RESET_BEFORE_MS`]: the counter goes on.
    Brief(i64),
    /// "About an hour" (reference 1.7): AWS may or may not have reset the counter.
    AboutAnHour { ms: i64, reset: bool },
    /// Over [`ALWAYS_RESET_AFTER_MS`]: the counter restarts at 0.
    Long(i64),
}

impl Offline {
    fn ms(&self) -> i64 {
        match self {
            Offline::Brief(ms) | Offline::AboutAnHour { ms, .. } | Offline::Long(ms) => *ms,
        }
    }

    fn resets_counter(&self) -> bool {
        match self {
            Offline::Brief(_) => false,
            Offline::AboutAnHour { reset, .. } => *reset,
            Offline::Long(_) => true,
        }
    }
}

/// How a connection that is not the last one ends.
#[derive(Debug, Clone)]
pub enum Ending {
    /// Disconnected for `reason`, then offline for a while.
    Disconnected {
        reason: &'static str,
        offline: Offline,
    },
    /// The next connection connects with the same client id; this one's disconnect is processed
    /// `processing_ms` later.
    TakenOver { processing_ms: i64 },
}

#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    pub duration_ms: i64,
    pub connect_jitter_ms: i64,
    pub disconnect_jitter_ms: i64,
    /// How much the counter grows for the next connection (it may skip values, reference 1.7).
    pub version_step: u64,
    /// With a persistent session, whether the next connection resumes this session (same sessionIdentifier).
    pub next_resumes_session: bool,
    /// Ignored for the last connection, see [`ClientSpec::last_disconnect_reason`].
    pub ending: Ending,
}

#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub client_id: String,
    pub start_ms: i64,
    pub first_version: u64,
    pub persistent_session: bool,
    pub connections: Vec<ConnectionSpec>,
    /// `None`: the last connection is still open.
    pub last_disconnect_reason: Option<&'static str>,
}

/// What really happened: the events in true-time order, and the state the shadow must end in.
#[derive(Debug, Clone)]
pub struct TrueHistory {
    pub events: Vec<Observation>,
    /// Counter epoch of each event (0 until the first reset, then 1, ...), parallel to `events`.
    pub epochs: Vec<usize>,
    pub truth: Connectivity,
    pub counter_resets: usize,
    pub takeovers: usize,
}

impl ClientSpec {
    pub fn history(&self) -> TrueHistory {
        let client = self.client_id.as_str();
        let mut timeline: Vec<(i64, usize, Observation)> = Vec::new();
        let mut at = self.start_ms;
        let mut version = self.first_version;
        let mut session_number = 0_usize;
        let mut session = format!("{client}-session-0");
        let mut counter_resets = 0;
        let mut takeovers = 0;
        let mut last_event = None;

        for (index, connection) in self.connections.iter().enumerate() {
            let connect = Observation::connected(
                client,
                version,
                at + connection.connect_jitter_ms,
                session.clone(),
            );
            timeline.push((at, counter_resets, connect.clone()));
            let ended_at = at + connection.duration_ms;

            if index + 1 == self.connections.len() {
                last_event = Some(match self.last_disconnect_reason {
                    Some(reason) => {
                        let disconnect = Observation::disconnected(
                            client,
                            version,
                            ended_at + connection.disconnect_jitter_ms,
                            session.clone(),
                            reason,
                        );
                        timeline.push((ended_at, counter_resets, disconnect.clone()));
                        disconnect
                    }
                    None => connect,
                });
                break;
            }

            let counter_reset = match &connection.ending {
                Ending::Disconnected { reason, offline } => {
                    timeline.push((
                        ended_at,
                        counter_resets,
                        Observation::disconnected(
                            client,
                            version,
                            ended_at + connection.disconnect_jitter_ms,
                            session.clone(),
                            *reason,
                        ),
                    ));
                    at = ended_at + offline.ms();
                    offline.resets_counter()
                }
                Ending::TakenOver { processing_ms } => {
                    let dropped_at = ended_at + processing_ms;
                    timeline.push((
                        dropped_at,
                        counter_resets,
                        Observation::disconnected(
                            client,
                            version,
                            dropped_at + connection.disconnect_jitter_ms,
                            session.clone(),
                            TAKEOVER_REASON,
                        ),
                    ));
                    takeovers += 1;
                    at = ended_at;
                    false
                }
            };
            if counter_reset {
                counter_resets += 1;
                version = 0;
            } else {
                version += connection.version_step;
            }
            let resumes =
                self.persistent_session && connection.next_resumes_session && !counter_reset;
            if !resumes {
                session_number += 1;
                session = format!("{client}-session-{session_number}");
            }
        }

        // Stable: a takeover disconnect processed with no delay stays before the new connect, which is one of
        // the two true orders anyway.
        timeline.sort_by_key(|(true_time, _, _)| *true_time);
        let last_event = last_event.expect("the strategy always generates at least one connection");
        let truth = Connectivity::from_observation(&last_event, None);
        TrueHistory {
            epochs: timeline.iter().map(|(_, epoch, _)| *epoch).collect(),
            events: timeline.into_iter().map(|(_, _, event)| event).collect(),
            truth,
            counter_resets,
            takeovers,
        }
    }
}

/// Several clients' histories delivered together: shuffled, with duplicates.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub clients: Vec<ClientSpec>,
    pub delivered: Vec<Observation>,
}

impl Delivery {
    pub fn histories(&self) -> BTreeMap<String, TrueHistory> {
        self.clients
            .iter()
            .map(|client| (client.client_id.clone(), client.history()))
            .collect()
    }
}

pub fn jitter() -> impl Strategy<Value = i64> {
    -ACCURACY_MS..=ACCURACY_MS
}

pub fn offline() -> impl Strategy<Value = Offline> {
    prop_oneof![
        3 => (0..5 * SECOND).prop_map(Offline::Brief),
        3 => (5 * SECOND..10 * MINUTE).prop_map(Offline::Brief),
        2 => (10 * MINUTE..NEVER_RESET_BEFORE_MS).prop_map(Offline::Brief),
        2 => (NEVER_RESET_BEFORE_MS..=ALWAYS_RESET_AFTER_MS, any::<bool>())
            .prop_map(|(ms, reset)| Offline::AboutAnHour { ms, reset }),
        3 => (ALWAYS_RESET_AFTER_MS + 1..=3 * 24 * HOUR).prop_map(Offline::Long),
    ]
}

pub fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        3 => (select(&ORDINARY_DISCONNECT_REASONS[..]), offline())
            .prop_map(|(reason, offline)| Ending::Disconnected { reason, offline }),
        1 => (0..=MAX_TAKEOVER_PROCESSING_MS).prop_map(|processing_ms| Ending::TakenOver { processing_ms }),
    ]
}

pub fn connection() -> impl Strategy<Value = ConnectionSpec> {
    let duration = prop_oneof![SECOND..10 * MINUTE, 10 * MINUTE..30 * HOUR];
    (
        duration,
        jitter(),
        jitter(),
        1_u64..=3,
        any::<bool>(),
        ending(),
    )
        .prop_map(
            |(
                duration_ms,
                connect_jitter_ms,
                disconnect_jitter_ms,
                version_step,
                next_resumes_session,
                ending,
            )| {
                ConnectionSpec {
                    duration_ms,
                    connect_jitter_ms,
                    disconnect_jitter_ms,
                    version_step,
                    next_resumes_session,
                    ending,
                }
            },
        )
}

pub fn client(max_connections: usize) -> impl Strategy<Value = ClientSpec> {
    let start = 1_700_000_000_000_i64..1_800_000_000_000_i64;
    let first_version = prop_oneof![Just(0_u64), 0_u64..100_000];
    let last_reason = proptest::option::of(select(&ORDINARY_DISCONNECT_REASONS[..]));
    (
        start,
        first_version,
        any::<bool>(),
        proptest::collection::vec(connection(), 1..=max_connections),
        last_reason,
    )
        .prop_map(
            |(start_ms, first_version, persistent_session, connections, last_disconnect_reason)| {
                ClientSpec {
                    client_id: String::new(),
                    start_ms,
                    first_version,
                    persistent_session,
                    connections,
                    last_disconnect_reason,
                }
            },
        )
}

/// 1..=`max_clients` clients with distinct ids, their events shuffled together and up to one extra copy per event
/// on average.
pub fn delivery(max_clients: usize, max_connections: usize) -> impl Strategy<Value = Delivery> {
    proptest::collection::vec(client(max_connections), 1..=max_clients)
        .prop_map(|mut clients| {
            for (index, client) in clients.iter_mut().enumerate() {
                client.client_id = format!("thing-{index}");
            }
            clients
        })
        .prop_flat_map(|clients| {
            let event_count: usize = clients.iter().map(|c| c.history().events.len()).sum();
            (
                Just(clients),
                proptest::collection::vec(0..event_count, 0..=event_count),
            )
        })
        .prop_flat_map(|(clients, duplicate_indices)| {
            let events: Vec<Observation> =
                clients.iter().flat_map(|c| c.history().events).collect();
            let mut delivered = events.clone();
            delivered.extend(duplicate_indices.iter().map(|&index| events[index].clone()));
            (Just(clients), Just(delivered).prop_shuffle())
        })
        .prop_map(|(clients, delivered)| Delivery { clients, delivered })
}

//! Lifecycle events on `$aws/events/presence/...` and `$aws/events/subscriptions/...` (reference 1): the
//! per-client `versionNumber` (reference 1.7) and the fault injection that duplicates and reorders events the
//! way AWS may (reference 1.1).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iot_events::LifecycleEvent;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::LifecycleFaults;
use super::message::{Message, Origin, Qos};
use super::router::Router;
use crate::clock::now_millis;

#[derive(Debug)]
struct VersionState {
    last: u64,
    live_connections: usize,
    offline_since: Option<Instant>,
    reset_after: Duration,
}

#[derive(Debug)]
struct FaultState {
    faults: LifecycleFaults,
    rng: StdRng,
    held: Option<(u64, Message)>,
    next_hold_id: u64,
}

impl FaultState {
    fn new(faults: LifecycleFaults) -> FaultState {
        let rng = match faults.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        FaultState {
            faults,
            rng,
            held: None,
            next_hold_id: 0,
        }
    }
}

/// Publishes lifecycle events through the router and keeps the version counters.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    router: Arc<Router>,
    versions: Mutex<HashMap<String, VersionState>>,
    faults: Mutex<FaultState>,
    reset_after: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Lifecycle {
    pub(crate) fn new(router: Arc<Router>, reset_after: Duration, faults: LifecycleFaults) -> Self {
        Lifecycle {
            router,
            versions: Mutex::new(HashMap::new()),
            faults: Mutex::new(FaultState::new(faults)),
            reset_after,
        }
    }

    pub(crate) fn set_faults(&self, faults: LifecycleFaults) {
        *lock(&self.faults) = FaultState::new(faults);
    }

    /// The `versionNumber` of a new connection of `client_id` (reference 1.7): one more than the previous
    /// connection's, or 0 for a client never seen or offline longer than the reset time (for a persistent
    /// session, its expiry if that is longer).
    pub(crate) fn connect_version(&self, client_id: &str, now: Instant) -> u64 {
        let mut versions = lock(&self.versions);
        let version = match versions.get(client_id) {
            None => 0,
            Some(state) => {
                let reset = state.live_connections == 0
                    && state
                        .offline_since
                        .is_some_and(|since| now.duration_since(since) >= state.reset_after);
                if reset { 0 } else { state.last + 1 }
            }
        };
        let state = versions
            .entry(client_id.to_owned())
            .or_insert(VersionState {
                last: 0,
                live_connections: 0,
                offline_since: None,
                reset_after: self.reset_after,
            });
        state.last = version;
        state.live_connections += 1;
        state.offline_since = None;
        version
    }

    /// A connection of `client_id` ended; `session_expiry` is the persistent session's lifetime, if any.
    pub(crate) fn connection_ended(
        &self,
        client_id: &str,
        now: Instant,
        session_expiry: Option<Duration>,
    ) {
        let mut versions = lock(&self.versions);
        if let Some(state) = versions.get_mut(client_id) {
            state.live_connections = state.live_connections.saturating_sub(1);
            if state.live_connections == 0 {
                state.offline_since = Some(now);
                state.reset_after = self.reset_after.max(session_expiry.unwrap_or_default());
            }
        }
    }

    /// Publishes the event held back for a reordering fault now: at shutdown nothing may stay behind.
    pub(crate) fn release_held(&self) {
        if let Some((_, held)) = lock(&self.faults).held.take() {
            self.router.publish_generated(held, Instant::now());
        }
    }

    /// Publishes `event` on its topic (QoS 1). Clients whose id contains `#` or `+` get no events (reference 1.1).
    pub(crate) fn publish(self: &Arc<Self>, event: &LifecycleEvent) {
        let client_id = event.client_id();
        if client_id.contains(['#', '+']) {
            return;
        }
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "could not serialize a lifecycle event");
                return;
            }
        };
        let message = Message {
            topic: event.topic(),
            payload: payload.into(),
            qos: Qos::AtLeastOnce,
            retain: false,
            origin: Origin::Broker,
            is_will: false,
            timestamp_ms: now_millis(),
        };
        tracing::debug!(topic = %message.topic, "lifecycle event");

        // The fault lock is held while publishing so that the order chosen here is the order subscribers see.
        let mut guard = lock(&self.faults);
        let faults = &mut *guard;
        if !faults.faults.is_enabled() {
            self.router.publish_generated(message, Instant::now());
            return;
        }
        let duplicate_probability = faults.faults.duplicate_probability.clamp(0.0, 1.0);
        let reorder_probability = faults.faults.reorder_probability.clamp(0.0, 1.0);
        let duplicate = faults.rng.random_bool(duplicate_probability);
        let mut outgoing = vec![message.clone()];
        if duplicate {
            outgoing.push(message);
        }
        if let Some((_, held)) = faults.held.take() {
            // The held event goes out after this one: the pair is swapped.
            outgoing.push(held);
        } else if faults.rng.random_bool(reorder_probability) {
            let hold_id = faults.next_hold_id;
            faults.next_hold_id += 1;
            faults.held = Some((hold_id, outgoing.remove(0)));
            let max_hold = faults.faults.max_hold;
            let lifecycle = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(max_hold).await;
                let mut faults = lock(&lifecycle.faults);
                if faults.held.as_ref().is_some_and(|(id, _)| *id == hold_id)
                    && let Some((_, held)) = faults.held.take()
                {
                    lifecycle.router.publish_generated(held, Instant::now());
                }
            });
        }
        for message in outgoing {
            self.router.publish_generated(message, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::config::Limits;

    fn lifecycle(reset_after: Duration) -> Lifecycle {
        let router = Arc::new(Router::new(Limits::default(), Duration::from_secs(60)));
        Lifecycle::new(router, reset_after, LifecycleFaults::default())
    }

    #[test]
    fn versions_increase_per_connection_and_reset_after_offline_time() {
        let lifecycle = lifecycle(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(lifecycle.connect_version("a", start), 0);
        lifecycle.connection_ended("a", start, None);
        assert_eq!(
            lifecycle.connect_version("a", start + Duration::from_secs(9)),
            1
        );
        // Takeover: a second live connection gets the next number; the first one's end does not reset anything.
        assert_eq!(
            lifecycle.connect_version("a", start + Duration::from_secs(9)),
            2
        );
        lifecycle.connection_ended("a", start + Duration::from_secs(9), None);
        lifecycle.connection_ended("a", start + Duration::from_secs(20), None);
        assert_eq!(
            lifecycle.connect_version("a", start + Duration::from_secs(29)),
            3
        );
        lifecycle.connection_ended("a", start + Duration::from_secs(29), None);
        assert_eq!(
            lifecycle.connect_version("a", start + Duration::from_secs(40)),
            0
        );
        assert_eq!(lifecycle.connect_version("b", start), 0);
    }

    #[test]
    fn a_persistent_session_delays_the_reset_until_it_expires() {
        let lifecycle = lifecycle(Duration::from_secs(10));
        let start = Instant::now();
        lifecycle.connect_version("p", start);
        lifecycle.connection_ended("p", start, Some(Duration::from_secs(100)));
        assert_eq!(
            lifecycle.connect_version("p", start + Duration::from_secs(50)),
            1
        );
        lifecycle.connection_ended(
            "p",
            start + Duration::from_secs(50),
            Some(Duration::from_secs(100)),
        );
        assert_eq!(
            lifecycle.connect_version("p", start + Duration::from_secs(151)),
            0
        );
    }
}

//! Observers: watching what the broker routes, as the AWS console's MQTT test client does, for
//! `iot-emulator subscribe` and the web console.
//!
//! An observer acts as a service identity (no policy applies, as the AWS console acts as an IAM principal)
//! and sees what an MQTT subscriber with the same filters would see: every matching message, reserved
//! topics included, Basic Ingest excluded (reference 6.1: `$aws/rules/...` messages reach only the rules
//! engine), and at the start the retained message of each filter without wildcards (reference 6.3).
//!
//! Unlike the rules engine and the shadow service, an observer must never slow down or refuse a publisher:
//! it is a window on the traffic, not a consumer of it. Its queue is bounded
//! ([`ObserverBound::default`]: 1,000 messages or 8 MiB of topic and payload); a message that does not fit
//! is dropped for this observer alone and counted ([`Observation::dropped`]), so the watcher is told what it
//! missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use super::internal::{InternalReceiver, InternalSubscription, QueueBound};
use super::message::Message;

/// How much one observer may have queued and not yet taken before further messages are dropped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObserverBound {
    pub messages: usize,
    pub bytes: usize,
}

impl Default for ObserverBound {
    fn default() -> Self {
        ObserverBound {
            messages: 1_000,
            bytes: 8 * 1024 * 1024,
        }
    }
}

/// The router's side of one observer.
#[derive(Debug)]
pub(crate) struct ObserverSubscription {
    filters: Vec<String>,
    queue: InternalSubscription,
    bound: QueueBound,
    dropped: Arc<AtomicU64>,
}

impl ObserverSubscription {
    /// `filters` must be valid topic filters (checked by [`super::Broker::observe`]).
    pub(crate) fn new(filters: Vec<String>, bound: ObserverBound) -> (Self, Observation) {
        // Nobody waits for an observer to make room, so its takes wake no one.
        let (queue, receiver) = InternalSubscription::new("#", Arc::new(Notify::new()));
        let dropped = Arc::new(AtomicU64::new(0));
        (
            ObserverSubscription {
                filters,
                queue,
                bound: QueueBound {
                    messages: bound.messages,
                    bytes: bound.bytes,
                },
                dropped: Arc::clone(&dropped),
            },
            Observation { receiver, dropped },
        )
    }

    pub(crate) fn filters(&self) -> &[String] {
        &self.filters
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        self.filters
            .iter()
            .any(|filter| iot_sql::matches_valid_filter(filter, topic))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Queues `message`, or drops and counts it when the observer is at its bound.
    pub(crate) fn offer(&self, message: &Message) {
        if self.queue.is_full(self.bound) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            self.queue.send(message.clone());
        }
    }
}

/// What an observer reads ([`super::Broker::observe`]). Dropping it ends the observation; [`Observation::recv`]
/// returns `None` once the broker has shut down and everything queued was taken.
#[derive(Debug)]
pub struct Observation {
    receiver: InternalReceiver,
    dropped: Arc<AtomicU64>,
}

impl Observation {
    pub async fn recv(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Message> {
        self.receiver.try_recv().ok()
    }

    /// Messages dropped so far because this observer was at its bound.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::broker::config::Limits;
    use crate::broker::internal::Admission;
    use crate::broker::message::{Origin, Qos};
    use crate::broker::router::{MAX_OBSERVERS, Router};

    fn message(topic: &str, payload: &str, retain: bool) -> Message {
        Message {
            topic: topic.to_owned(),
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
            qos: Qos::AtLeastOnce,
            retain,
            origin: Origin::Broker,
            is_will: false,
            timestamp_ms: 0,
        }
    }

    fn router() -> Router {
        Router::new(Limits::default(), Duration::from_secs(60))
    }

    fn filters(filters: &[&str]) -> Vec<String> {
        filters.iter().map(|filter| (*filter).to_owned()).collect()
    }

    fn topics(observation: &mut Observation) -> Vec<String> {
        std::iter::from_fn(|| observation.try_recv())
            .map(|message| message.topic)
            .collect()
    }

    #[test]
    fn sees_what_a_subscriber_would_retained_first_and_each_message_once() {
        let router = router();
        let now = Instant::now();
        router
            .publish(message("status/a", "kept", true), Admission::Bounded, now)
            .unwrap();
        router
            .publish(message("status/b", "kept", true), Admission::Bounded, now)
            .unwrap();
        // status/a exactly: its retained message comes first; status/+ is a wildcard: none (reference 6.3).
        let mut observation = router
            .observe(
                filters(&["status/a", "status/+", "$aws/events/#"]),
                ObserverBound::default(),
            )
            .unwrap();
        let now = Instant::now();
        for topic in [
            "status/a",
            "other/x",
            "$aws/events/presence/connected/d",
            "$aws/rules/rule/status/a",
        ] {
            router.publish_generated(message(topic, "p", false), now);
        }
        // Matching two filters, status/a arrives once; Basic Ingest is not delivered to subscribers.
        assert_eq!(
            topics(&mut observation),
            ["status/a", "status/a", "$aws/events/presence/connected/d"]
        );
        assert_eq!(observation.dropped(), 0);
    }

    #[test]
    fn a_full_observer_loses_messages_and_counts_them_but_never_refuses_a_publish() {
        let router = router();
        let mut observation = router
            .observe(
                filters(&["data/#"]),
                ObserverBound {
                    messages: 2,
                    bytes: usize::MAX,
                },
            )
            .unwrap();
        let now = Instant::now();
        for n in 0..5 {
            router
                .publish(
                    message(&format!("data/{n}"), "p", false),
                    Admission::Bounded,
                    now,
                )
                .expect("an observer never holds a publisher up");
        }
        assert_eq!(topics(&mut observation), ["data/0", "data/1"]);
        assert_eq!(observation.dropped(), 3);
        router.publish_generated(message("data/5", "p", false), now);
        assert_eq!(topics(&mut observation), ["data/5"]);
        // The byte bound counts topic and payload.
        let mut small = router
            .observe(
                filters(&["big/#"]),
                ObserverBound {
                    messages: usize::MAX,
                    bytes: 10,
                },
            )
            .unwrap();
        router.publish_generated(message("big/a", "123456", false), now);
        router.publish_generated(message("big/b", "1", false), now);
        assert_eq!(topics(&mut small), ["big/a"]);
        assert_eq!(small.dropped(), 1);
    }

    #[test]
    fn observers_are_limited_and_a_dropped_one_makes_room() {
        let router = router();
        let mut held: Vec<Observation> = (0..MAX_OBSERVERS)
            .map(|_| {
                router
                    .observe(filters(&["#"]), ObserverBound::default())
                    .unwrap()
            })
            .collect();
        assert!(
            router
                .observe(filters(&["#"]), ObserverBound::default())
                .is_none()
        );
        held.pop();
        assert!(
            router
                .observe(filters(&["#"]), ObserverBound::default())
                .is_some()
        );
    }

    #[tokio::test]
    async fn an_observation_ends_when_the_broker_closes_its_subscribers() {
        let router = router();
        let mut observation = router
            .observe(filters(&["#"]), ObserverBound::default())
            .unwrap();
        router.publish_generated(message("last", "p", false), Instant::now());
        router.close_internal();
        assert_eq!(observation.recv().await.unwrap().topic, "last");
        assert!(observation.recv().await.is_none());
    }
}

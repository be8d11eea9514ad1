//! Two reconciler instances racing on one thing's connectivity shadow.
//!
//! The deterministic test forces the worst interleaving (both read before either writes) and shows
//! the version lock is what saves it: the same interleaving with the lock stripped ends wrong. The
//! randomized test throws shuffled, duplicated histories at several instances on a multi-threaded
//! runtime and checks the final state equals the truth.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shadow_reconciler::memory::MemoryStore;
use shadow_reconciler::{Outcome, Reconciler, RetryPolicy, ShadowStore, StoreError, StoredShadow};
use tokio::sync::Barrier;

const SHADOW: &str = "connectivity";

/// Lets every `get` return, then holds each caller until `parties` of them have read: both
/// instances decide on the same stale state, the case an unconditional write gets wrong.
struct ReadTogether<S> {
    inner: Arc<S>,
    barrier: Arc<Barrier>,
    strip_version: bool,
    first_read_done: std::sync::atomic::AtomicBool,
}

impl<S: ShadowStore> ShadowStore for ReadTogether<S> {
    async fn get(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<Option<StoredShadow>, StoreError> {
        let result = self.inner.get(thing, shadow).await;
        // Only the first read of each instance is synchronized; re-reads after a 409 run free.
        if !self
            .first_read_done
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.barrier.wait().await;
        }
        result
    }

    async fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &Value,
    ) -> Result<u64, StoreError> {
        let mut request = request.clone();
        if self.strip_version {
            request.as_object_mut().map(|m| m.remove("version"));
        }
        self.inner.update(thing, shadow, &request).await
    }
}

fn connected(version: u64, ts: i64, session: &str) -> Value {
    json!({"clientId": "ratchet", "timestamp": ts, "eventType": "connected",
           "sessionIdentifier": session, "principalIdentifier": "p", "ipAddress": "127.0.0.1",
           "versionNumber": version})
}

fn disconnected(version: u64, ts: i64, session: &str, reason: &str) -> Value {
    json!({"clientId": "ratchet", "timestamp": ts, "eventType": "disconnected",
           "sessionIdentifier": session, "principalIdentifier": "p",
           "clientInitiatedDisconnect": reason == "CLIENT_INITIATED_DISCONNECT",
           "disconnectReason": reason, "versionNumber": version})
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 50,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

/// Seed the shadow with an earlier connection, then race its successor's connect (instance A)
/// against its disconnect (instance B), with B's write landing first.
async fn race(strip_version: bool) -> Value {
    let store = Arc::new(MemoryStore::new());
    let seed = Reconciler::new(store.clone(), SHADOW);
    seed.handle(&disconnected(4, 1_000, "s4", "CONNECTION_LOST"))
        .await
        .unwrap();

    let barrier = Arc::new(Barrier::new(2));
    let instance = |strip| {
        Reconciler::new(
            ReadTogether {
                inner: store.clone(),
                barrier: barrier.clone(),
                strip_version: strip,
                first_read_done: Default::default(),
            },
            SHADOW,
        )
        .with_retry(fast())
    };
    let a = instance(strip_version);
    let b = instance(strip_version);
    let connect = connected(5, 2_000, "s5");
    let disconnect = disconnected(5, 3_000, "s5", "MQTT_KEEP_ALIVE_TIMEOUT");
    let (ra, rb) = tokio::join!(
        async {
            // A decides on the seeded state, then writes after B.
            let r = a.handle(&connect).await;
            r.unwrap()
        },
        async {
            let r = b.handle(&disconnect).await;
            r.unwrap()
        }
    );
    eprintln!("A: {ra:?}\nB: {rb:?}");
    store.document("ratchet", Some(SHADOW)).unwrap()["state"]["reported"].clone()
}

// Arc<MemoryStore> must itself be a store for the instances to share one.
#[tokio::test(flavor = "current_thread")]
async fn the_version_lock_keeps_the_later_event_when_two_instances_race() {
    let reported = race(false).await;
    assert_eq!(reported["connected"], false, "{reported}");
    assert_eq!(reported["versionNumber"], 5);
    assert_eq!(reported["disconnectReason"], "MQTT_KEEP_ALIVE_TIMEOUT");
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_version_lock_the_same_race_ends_wrong() {
    // Negative control: identical interleaving, `version` stripped from every write.
    let reported = race(true).await;
    assert_eq!(
        reported["connected"], true,
        "an unconditional write lets the stale decision overwrite the disconnect: {reported}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shuffled_histories_across_instances_end_in_the_truth() {
    use rand::seq::SliceRandom;
    let hour = 3_600_000i64;
    for trial in 0..40u64 {
        // A true history: 6 connections, with a takeover and a long gap that resets the counter.
        let t0 = 1_764_000_000_000i64 + trial as i64 * 10 * hour;
        let mut events = vec![
            connected(1, t0, "a"),
            disconnected(1, t0 + 60_000, "a", "CONNECTION_LOST"),
            connected(2, t0 + 120_000, "b"),
            connected(3, t0 + 180_000, "c"),
            disconnected(2, t0 + 181_000, "b", "DUPLICATE_CLIENTID"),
            disconnected(3, t0 + 600_000, "c", "MQTT_KEEP_ALIVE_TIMEOUT"),
            // Two hours offline: the counter restarts.
            connected(0, t0 + 2 * hour, "d"),
            disconnected(
                0,
                t0 + 2 * hour + 300_000,
                "d",
                "CLIENT_INITIATED_DISCONNECT",
            ),
            connected(1, t0 + 2 * hour + 900_000, "e"),
        ];
        let truth = events.last().unwrap().clone();
        let duplicates: Vec<Value> = events.iter().step_by(2).cloned().collect();
        events.extend(duplicates);
        events.shuffle(&mut rand::rng());

        let store = Arc::new(MemoryStore::new());
        let mut tasks = Vec::new();
        for (i, chunk) in events.chunks(3).enumerate() {
            let reconciler = Reconciler::new(store.clone(), SHADOW).with_retry(fast());
            let chunk = chunk.to_vec();
            tasks.push(tokio::spawn(async move {
                for event in chunk {
                    if i.is_multiple_of(2) {
                        tokio::task::yield_now().await;
                    }
                    reconciler.handle(&event).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let reported =
            store.document("ratchet", Some(SHADOW)).unwrap()["state"]["reported"].clone();
        assert_eq!(reported["connected"], true, "trial {trial}: {reported}");
        assert_eq!(
            reported["sessionIdentifier"], truth["sessionIdentifier"],
            "trial {trial}"
        );
        assert_eq!(reported["versionNumber"], 1, "trial {trial}");
    }
}

#[tokio::test]
async fn outcome_of_a_duplicate_is_unchanged() {
    let store = Arc::new(MemoryStore::new());
    let reconciler = Reconciler::new(store.clone(), SHADOW);
    let event = connected(3, 1_000, "s3");
    assert!(matches!(
        reconciler.handle(&event).await.unwrap(),
        Outcome::Applied { .. }
    ));
    assert!(matches!(
        reconciler.handle(&event).await.unwrap(),
        Outcome::Unchanged {
            reason: "duplicate",
            ..
        }
    ));
}

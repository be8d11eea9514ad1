//! Telemetry pipeline: sensors -> drainer -> outbox (disk) -> connection.
//!
//! Producers never publish: they hand each reading to the drainer, which appends it to the outbox before
//! anything is sent, so a reading taken while offline, or just before a crash, is not lost. The drainer
//! owns the outbox (no lock, no thread hop per reading), replays it in `seq` order with up to
//! `max_in_flight` QoS 1 publishes outstanding, and removes an entry only when its PUBACK arrived
//! (`publish_tracked` + `wait_async`). When the broker has no session for us (`session_present = false`),
//! rumqttc fails the outstanding notices and the drainer rewinds to the oldest stored entry, so the order on
//! the wire is still `seq` order (duplicates possible, losses not). Disk flushes follow `outbox.sync`.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::actuator::MotorState;
use crate::clock::epoch_millis;
use crate::config::{OutboxSync, TemperatureUnit};
use crate::connection::{ConnectionHandle, LinkEvent};
use crate::outbox::{Outbox, OutboxError, PushOutcome};
use crate::sensors::{TemperatureSensor, VibrationSensor};
use crate::shutdown::Shutdown;
use crate::ticker::Ticker;

/// `data/{thing}/temperature` payload (architecture section 3) plus `seq`, the outbox sequence number:
/// strictly increasing per device across restarts, so consumers can drop at-least-once duplicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemperatureReading {
    pub thing: String,
    pub ts: u64,
    pub temp: f64,
    pub unit: TemperatureUnit,
    pub seq: u64,
}

/// `data/{thing}/vibration` payload (architecture section 3) plus `seq`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VibrationReading {
    pub thing: String,
    pub ts: u64,
    pub vibration: f64,
    pub seq: u64,
}

pub fn celsius_in(unit: TemperatureUnit, celsius: f64) -> f64 {
    let value = match unit {
        TemperatureUnit::C => celsius,
        TemperatureUnit::F => celsius * 9.0 / 5.0 + 32.0,
    };
    (value * 100.0).round() / 100.0
}

/// A reading on its way to the outbox; the payload is rendered once its `seq` is known.
pub struct Reading {
    pub topic: String,
    pub render: Box<dyn FnOnce(u64) -> Vec<u8> + Send>,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Where producers put readings: the drainer's inbox.
#[derive(Debug, Clone)]
pub struct TelemetrySink {
    pub readings: mpsc::Sender<Reading>,
    pub thing: String,
}

impl TelemetrySink {
    /// Readings waiting for the drainer; producers wait (they do not drop) when it is full.
    pub const CAPACITY: usize = 64;

    pub fn channel(thing: String) -> (Self, mpsc::Receiver<Reading>) {
        let (readings, inbox) = mpsc::channel(Self::CAPACITY);
        (Self { readings, thing }, inbox)
    }

    async fn store(&self, topic: &str, render: impl FnOnce(u64) -> Vec<u8> + Send + 'static) {
        let reading = Reading {
            topic: topic.to_string(),
            render: Box::new(render),
        };
        if self.readings.send(reading).await.is_err() {
            tracing::error!(topic, "the outbox drainer has stopped; reading not stored");
        }
    }
}

/// Read the temperature every `period` and store it.
pub async fn run_temperature<S: TemperatureSensor>(
    mut sensor: S,
    sink: TelemetrySink,
    topic: String,
    unit: TemperatureUnit,
    period: Duration,
    mut shutdown: Shutdown,
) {
    let mut ticks = Ticker::new(period);
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = ticks.tick() => {}
        }
        let celsius = match sensor.read_celsius() {
            Ok(celsius) => celsius,
            Err(error) => {
                tracing::warn!(%error, "temperature reading failed; skipping");
                continue;
            }
        };
        let thing = sink.thing.clone();
        let ts = epoch_millis(SystemTime::now());
        let temp = celsius_in(unit, celsius);
        sink.store(&topic, move |seq| {
            serde_json::to_vec(&TemperatureReading {
                thing,
                ts,
                temp,
                unit,
                seq,
            })
            .unwrap_or_default()
        })
        .await;
    }
}

/// Read vibration every `period`, but only while the motor is ON (contract).
pub async fn run_vibration<S: VibrationSensor>(
    mut sensor: S,
    sink: TelemetrySink,
    topic: String,
    period: Duration,
    mut motor: watch::Receiver<MotorState>,
    mut shutdown: Shutdown,
) {
    loop {
        // Wait for ON.
        tokio::select! {
            _ = shutdown.recv() => return,
            changed = motor.wait_for(|state| *state == MotorState::On) => if changed.is_err() { return },
        }
        let mut ticks = Ticker::new(period);
        loop {
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = ticks.tick() => {}
                changed = motor.changed() => {
                    if changed.is_err() { return }
                    if *motor.borrow() == MotorState::Off { break }
                    continue;
                }
            }
            if *motor.borrow() != MotorState::On {
                break;
            }
            let vibration = match sensor.read_vibration() {
                Ok(value) => value,
                Err(error) => {
                    tracing::warn!(%error, "vibration reading failed; skipping");
                    continue;
                }
            };
            let thing = sink.thing.clone();
            let ts = epoch_millis(SystemTime::now());
            sink.store(&topic, move |seq| {
                serde_json::to_vec(&VibrationReading {
                    thing,
                    ts,
                    vibration,
                    seq,
                })
                .unwrap_or_default()
            })
            .await;
        }
    }
}

/// What the drainer did, for the shutdown log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub acknowledged: u64,
    pub left_in_outbox: u64,
    /// Flushes to the disk while running (the one at the clean close not counted).
    pub flushes: u64,
}

/// How the drainer keeps the outbox and when it flushes it to the disk.
#[derive(Debug, Clone, Copy)]
pub struct DrainerSettings {
    pub max_in_flight: usize,
    pub sync: OutboxSync,
    pub sync_interval: Duration,
    pub flush_timeout: Duration,
}

/// Run a blocking flush off the async thread, then record it. Returns whether it succeeded.
async fn sync_outbox(outbox: &mut Outbox) -> bool {
    let ticket = match outbox.sync_ticket() {
        Ok(ticket) => ticket,
        Err(error) => {
            tracing::error!(%error, "cannot flush the outbox; readings stay in the page cache");
            return false;
        }
    };
    match tokio::task::spawn_blocking(move || ticket.run()).await {
        Ok(Ok(ticket)) => {
            outbox.synced(ticket);
            true
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "outbox flush failed; will retry");
            false
        }
        Err(error) => {
            tracing::error!(%error, "outbox flush task failed; will retry");
            false
        }
    }
}

/// Append one reading; log what the bound did. Returns its `seq` when it was stored.
fn store_reading(outbox: &mut Outbox, reading: Reading) -> Option<u64> {
    match outbox.push_with(&reading.topic, reading.render) {
        Ok(PushOutcome::Stored { seq }) => Some(seq),
        Ok(PushOutcome::StoredDroppingOldest { seq, dropped_seq }) => {
            tracing::warn!(
                dropped_seq,
                dropped_total = outbox.dropped_total(),
                "outbox full: dropped the oldest reading"
            );
            Some(seq)
        }
        Ok(PushOutcome::Rejected) => {
            tracing::warn!(
                topic = reading.topic,
                dropped_total = outbox.dropped_total(),
                "outbox full: dropped the new reading (on_full = drop-newest)"
            );
            None
        }
        Err(error) => {
            tracing::error!(%error, topic = reading.topic, "could not store reading");
            None
        }
    }
}

/// Store readings, replay the outbox in order while connected; on shutdown store what the producers
/// left, keep draining until empty or `flush_timeout`, then close the outbox cleanly.
pub async fn run_drainer(
    mut outbox: Outbox,
    mut readings: mpsc::Receiver<Reading>,
    connection: ConnectionHandle,
    mut events: mpsc::UnboundedReceiver<LinkEvent>,
    settings: DrainerSettings,
    mut shutdown: Shutdown,
) -> DrainReport {
    let max_in_flight = settings.max_in_flight.max(1);
    // PUBACK notices of the publishes in flight: (generation, seq, acknowledged).
    let mut acks = FuturesUnordered::new();
    let mut connected = false;
    let mut generation = 0u64;
    let mut in_flight = BTreeSet::new();
    let mut cursor = 0u64;
    let mut report = DrainReport::default();
    let mut flush_deadline: Option<tokio::time::Instant> = None;
    // Set after a publish was not admitted (connection busy or just dropped): try again then.
    let mut retry_at: Option<tokio::time::Instant> = None;
    // Readings stored since the last flush, oldest first, with when they were stored (`sync = "interval"`).
    let mut unflushed: VecDeque<(u64, tokio::time::Instant)> = VecDeque::new();
    // When the flush timer is due, if it is armed.
    let mut sync_at: Option<tokio::time::Instant> = None;
    // One timer entry for the whole run, moved with `reset` (a fresh `Sleep` per loop would be a
    // timer-wheel insert and removal per event).
    let sync_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sync_timer);
    // Whether the outbox may hold entries past `cursor`; reading only then saves a pass over the index.
    let mut maybe_unsent = true;

    loop {
        // Fill the window, oldest first.
        if connected && maybe_unsent && retry_at.is_none() && in_flight.len() < max_in_flight {
            let want = max_in_flight - in_flight.len();
            match outbox.read_from(cursor, want) {
                Ok(batch) => {
                    maybe_unsent = batch.len() == want;
                    for message in batch {
                        match connection.publish_tracked(message.topic, message.payload) {
                            Ok(notice) => {
                                in_flight.insert(message.seq);
                                cursor = message.seq + 1;
                                let (seq, generation) = (message.seq, generation);
                                acks.push(async move {
                                    (generation, seq, notice.wait_async().await.is_ok())
                                });
                            }
                            Err(error) => {
                                tracing::debug!(%error, "publish not admitted; retrying later");
                                maybe_unsent = true;
                                retry_at =
                                    Some(tokio::time::Instant::now() + Duration::from_millis(500));
                                break;
                            }
                        }
                    }
                }
                Err(OutboxError::Corrupt { seq }) => {
                    tracing::error!(
                        seq,
                        "outbox entry is unreadable (storage corruption); dropping it"
                    );
                    if let Err(error) = outbox.discard_corrupt(seq) {
                        tracing::error!(%error, "cannot drop the corrupt outbox entry");
                    }
                    continue;
                }
                Err(error) => tracing::error!(%error, "cannot read outbox"),
            }
        }
        if flush_deadline.is_some() {
            // Offline there is nothing to flush to: what is stored stays for the next start.
            if !connected || (in_flight.is_empty() && outbox.is_empty()) {
                break;
            }
        }
        // The flush timer is due when the oldest reading that is neither acknowledged nor flushed has
        // waited `sync_interval`. It is not moved when that reading's PUBACK comes (usually within
        // milliseconds): moving a tokio timer earlier than the parked driver's next wakeup wakes the
        // driver (an eventfd write), which per reading cost more than the rare spurious wakeup.
        while unflushed
            .front()
            .is_some_and(|&(seq, _)| !outbox.is_live(seq))
        {
            unflushed.pop_front();
        }
        if sync_at.is_none()
            && let Some(&(_, stored_at)) = unflushed.front()
        {
            let at = stored_at + settings.sync_interval;
            sync_at = Some(at);
            sync_timer.as_mut().reset(at);
        }
        tokio::select! {
            biased;
            Some(reading) = readings.recv() => {
                if let Some(seq) = store_reading(&mut outbox, reading) {
                    maybe_unsent = true;
                    match settings.sync {
                        OutboxSync::Always => {
                            report.flushes += u64::from(sync_outbox(&mut outbox).await);
                        }
                        OutboxSync::Interval => unflushed.push_back((seq, tokio::time::Instant::now())),
                    }
                }
            }
            Some(first) = acks.next(), if !acks.is_empty() => {
                let mut done = Vec::new();
                let mut rewind = false;
                let mut handle = |(g, s, ok): (u64, u64, bool), done: &mut Vec<u64>| {
                    if ok {
                        in_flight.remove(&s);
                        done.push(s);
                    } else if g == generation {
                        rewind = true;
                    }
                };
                handle(first, &mut done);
                // PUBACKs that came in the same read are ready too: one removal for all of them.
                while let Some(Some(more)) = acks.next().now_or_never() {
                    handle(more, &mut done);
                }
                if rewind {
                    generation += 1;
                    in_flight.clear();
                    cursor = 0;
                    maybe_unsent = true;
                }
                report.acknowledged += done.len() as u64;
                if let Err(error) = outbox.remove(&done) {
                    tracing::error!(%error, "cannot record acknowledged messages; they will be sent again");
                }
            }
            event = events.recv() => match event {
                Some(LinkEvent::Connected { session_present }) => {
                    connected = true;
                    maybe_unsent = true;
                    retry_at = None;
                    if !session_present {
                        // The broker forgot our in-flight publishes; rumqttc fails their notices. Start over from
                        // the oldest stored entry so the wire order stays seq order.
                        generation += 1;
                        in_flight.clear();
                        cursor = 0;
                    }
                }
                Some(LinkEvent::Disconnected) => connected = false,
                Some(LinkEvent::Message { .. }) => {}
                None => break,
            },
            _ = &mut sync_timer, if sync_at.is_some() => {
                sync_at = None;
                // `unflushed` was pruned of acknowledged readings at the top of this loop pass.
                let now = tokio::time::Instant::now();
                if unflushed.front().is_some_and(|&(_, stored_at)| stored_at + settings.sync_interval <= now) {
                    // Flushes everything written so far, younger readings included.
                    if sync_outbox(&mut outbox).await {
                        report.flushes += 1;
                        unflushed.clear();
                    }
                }
            }
            _ = sleep_until(retry_at), if retry_at.is_some() => retry_at = None,
            _ = shutdown.recv(), if flush_deadline.is_none() => {
                // The producers have stopped: store what they handed over before flushing.
                readings.close();
                while let Ok(reading) = readings.try_recv() {
                    store_reading(&mut outbox, reading);
                }
                maybe_unsent = true;
                flush_deadline = Some(tokio::time::Instant::now() + settings.flush_timeout);
            }
            _ = sleep_until(flush_deadline), if flush_deadline.is_some() => break,
        }
    }
    report.left_in_outbox = outbox.len();
    // The clean-close marker lets the next start continue exactly at the next seq, even after a reboot.
    match tokio::task::spawn_blocking(move || outbox.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "cannot close the outbox cleanly"),
        Err(error) => tracing::error!(%error, "outbox close task failed"),
    }
    report
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OverflowPolicy;

    #[test]
    fn payloads_follow_the_contract() {
        let reading = TemperatureReading {
            thing: "ratchet".into(),
            ts: 17,
            temp: 48.31,
            unit: TemperatureUnit::C,
            seq: 4,
        };
        assert_eq!(
            serde_json::to_value(&reading).unwrap(),
            serde_json::json!({"thing":"ratchet","ts":17,"temp":48.31,"unit":"C","seq":4})
        );
        let vibration = VibrationReading {
            thing: "ratchet".into(),
            ts: 18,
            vibration: -12.0,
            seq: 5,
        };
        assert_eq!(
            serde_json::to_value(&vibration).unwrap(),
            serde_json::json!({"thing":"ratchet","ts":18,"vibration":-12.0,"seq":5})
        );
    }

    /// A drainer that never gets a connection: every reading stays in the outbox.
    async fn run_offline(sync: OutboxSync, readings: u64, wait: Duration) -> (DrainReport, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), 100, OverflowPolicy::DropOldest).unwrap();
        let (connection, _driver) =
            crate::connection::connection_pair(crate::connection::tests::settings());
        let (sink, inbox) = TelemetrySink::channel("ratchet".into());
        let (_events_tx, events) = mpsc::unbounded_channel();
        let (trigger, shutdown) = crate::shutdown::shutdown_channel();
        let settings = DrainerSettings {
            max_in_flight: 5,
            sync,
            sync_interval: Duration::from_millis(50),
            flush_timeout: Duration::from_secs(1),
        };
        let drainer = tokio::spawn(run_drainer(
            outbox, inbox, connection, events, settings, shutdown,
        ));
        for _ in 0..readings {
            sink.store("data/ratchet/temperature", |seq| {
                seq.to_string().into_bytes()
            })
            .await;
        }
        tokio::time::sleep(wait).await;
        trigger.trigger();
        let report = drainer.await.unwrap();
        let reopened = Outbox::open(dir.path(), 100, OverflowPolicy::DropOldest).unwrap();
        (report, reopened)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn offline_readings_are_flushed_once_per_interval_not_per_reading() {
        let (report, outbox) =
            run_offline(OutboxSync::Interval, 3, Duration::from_millis(400)).await;
        assert_eq!(
            report.flushes, 1,
            "three readings stored together, one flush after 50 ms"
        );
        assert_eq!((report.left_in_outbox, outbox.len()), (3, 3));
        assert_eq!(outbox.recovery().skipped_seqs, 0, "closed cleanly");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_flush_before_the_interval_has_passed() {
        // Shut down at once: the close flushes, the interval never came.
        let (report, outbox) = run_offline(OutboxSync::Interval, 3, Duration::ZERO).await;
        assert_eq!(report.flushes, 0);
        assert_eq!(outbox.len(), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sync_always_flushes_every_reading() {
        let (report, outbox) = run_offline(OutboxSync::Always, 3, Duration::ZERO).await;
        assert_eq!(report.flushes, 3);
        assert_eq!(outbox.len(), 3);
    }

    #[test]
    fn fahrenheit_conversion() {
        assert_eq!(celsius_in(TemperatureUnit::F, 100.0), 212.0);
        assert_eq!(celsius_in(TemperatureUnit::C, 48.3121), 48.31);
    }
}

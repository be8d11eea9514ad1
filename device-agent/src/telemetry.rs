//! Telemetry pipeline: sensors -> outbox (disk) -> drainer -> connection.
//!
//! Producers never publish directly: every reading is first committed to the outbox, so a reading taken
//! while offline, or just before a crash, is not lost. The drainer replays the outbox in `seq` order with up
//! to `max_in_flight` QoS 1 publishes outstanding and deletes an entry only when its PUBACK arrived
//! (`publish_tracked` + `wait_async`). When the broker has no session for us (`session_present = false`),
//! rumqttc fails the outstanding notices and the drainer rewinds to the oldest stored entry, so the order on
//! the wire is still `seq` order (duplicates possible, losses not).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};

use crate::actuator::MotorState;
use crate::config::TemperatureUnit;
use crate::connection::{ConnectionHandle, LinkEvent};
use crate::lifecycle::{Shutdown, epoch_millis};
use crate::outbox::{Outbox, OutboxError, PushOutcome};
use crate::sensors::{TemperatureSensor, VibrationSensor};

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

/// Where producers put readings; shared by the producers and the drainer.
#[derive(Debug, Clone)]
pub struct TelemetrySink {
    pub outbox: Arc<Outbox>,
    pub wake_drainer: Arc<Notify>,
    pub thing: String,
}

impl TelemetrySink {
    async fn store(&self, topic: &str, build: impl FnOnce(u64) -> Vec<u8> + Send + 'static) {
        let outbox = Arc::clone(&self.outbox);
        let topic_owned = topic.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let outcome = outbox.push_with(&topic_owned, build)?;
            let dropped = match outcome {
                PushOutcome::Stored { .. } => None,
                _ => Some(outbox.dropped_total()?),
            };
            Ok::<_, OutboxError>((outcome, dropped))
        })
        .await;
        match result {
            Ok(Ok((PushOutcome::Stored { .. }, _))) => {}
            Ok(Ok((PushOutcome::StoredDroppingOldest { dropped_seq, .. }, dropped_total))) => {
                tracing::warn!(
                    dropped_seq,
                    dropped_total,
                    "outbox full: dropped the oldest reading"
                );
            }
            Ok(Ok((PushOutcome::Rejected, dropped_total))) => {
                tracing::warn!(
                    topic,
                    dropped_total,
                    "outbox full: dropped the new reading (on_full = drop-newest)"
                );
            }
            Ok(Err(error)) => tracing::error!(%error, "could not store reading"),
            Err(error) => tracing::error!(%error, "outbox task failed"),
        }
        self.wake_drainer.notify_one();
    }
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(10)));
    // After a stall, keep the cadence instead of bursting readings with the same timestamp.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
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
    let mut ticks = interval(period);
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
        let mut ticks = interval(period);
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
}

async fn blocking<T: Send + 'static>(
    outbox: &Arc<Outbox>,
    op: impl FnOnce(&Outbox) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    let outbox = Arc::clone(outbox);
    match tokio::task::spawn_blocking(move || op(&outbox)).await {
        Ok(result) => result,
        Err(join) => Err(OutboxError::Storage(Box::new(redb::Error::Io(
            std::io::Error::other(join.to_string()),
        )))),
    }
}

/// Replay the outbox in order while connected; on shutdown keep draining until empty or `flush_timeout`.
///
/// Reads and removals run right here on the runtime thread: neither waits for the disk (a
/// removal is a non-durable commit, see [`Outbox::remove`]), and handing them to the blocking
/// pool cost more (two context switches each) than doing them. Only fsyncing operations (pushes,
/// the final `sync`) go to the blocking pool.
pub async fn run_drainer(
    sink: TelemetrySink,
    connection: ConnectionHandle,
    mut events: mpsc::UnboundedReceiver<LinkEvent>,
    max_in_flight: usize,
    mut shutdown: Shutdown,
    flush_timeout: Duration,
) -> DrainReport {
    let outbox = sink.outbox;
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(u64, u64, bool)>();
    let mut connected = false;
    let mut generation = 0u64;
    let mut in_flight = BTreeSet::new();
    let mut cursor = 0u64;
    let mut report = DrainReport::default();
    let mut flush_deadline: Option<tokio::time::Instant> = None;
    let mut retry_tick = tokio::time::interval(Duration::from_millis(500));
    retry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether the outbox may hold entries past `cursor`. Reading only then saves a read
    // transaction (and a hop to the blocking pool) after every acknowledgement.
    let mut maybe_unsent = true;

    loop {
        // Fill the window, oldest first.
        if connected && maybe_unsent && in_flight.len() < max_in_flight {
            let want = max_in_flight - in_flight.len();
            let from = cursor;
            match outbox.read_from(from, want) {
                Ok(batch) => {
                    maybe_unsent = batch.len() == want;
                    for message in batch {
                        match connection
                            .publish_tracked(message.topic, message.payload)
                            .await
                        {
                            Ok(notice) => {
                                in_flight.insert(message.seq);
                                cursor = message.seq + 1;
                                let ack_tx = ack_tx.clone();
                                let (seq, generation) = (message.seq, generation);
                                tokio::spawn(async move {
                                    let acknowledged = notice.wait_async().await.is_ok();
                                    let _ = ack_tx.send((generation, seq, acknowledged));
                                });
                            }
                            Err(error) => {
                                tracing::debug!(%error, "publish not admitted; retrying later");
                                maybe_unsent = true;
                                break;
                            }
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot read outbox"),
            }
        }
        if flush_deadline.is_some() {
            // Offline there is nothing to flush to: what is stored stays for the next start.
            if !connected {
                break;
            }
            if in_flight.is_empty() && outbox.is_empty().unwrap_or(true) {
                break;
            }
        }
        tokio::select! {
            event = events.recv() => match event {
                Some(LinkEvent::Connected { session_present }) => {
                    connected = true;
                    maybe_unsent = true;
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
            Some((ack_generation, seq, acknowledged)) = ack_rx.recv() => {
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
                handle((ack_generation, seq, acknowledged), &mut done);
                while let Ok(more) = ack_rx.try_recv() {
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
                    tracing::error!(%error, "cannot remove acknowledged messages; they will be sent again");
                }
            }
            _ = sink.wake_drainer.notified() => maybe_unsent = true,
            _ = retry_tick.tick() => maybe_unsent = true,
            _ = shutdown.recv(), if flush_deadline.is_none() => {
                flush_deadline = Some(tokio::time::Instant::now() + flush_timeout);
            }
            _ = async { if let Some(deadline) = flush_deadline { tokio::time::sleep_until(deadline).await } },
                if flush_deadline.is_some() => break,
        }
    }
    if let Err(error) = blocking(&outbox, |o| o.sync()).await {
        tracing::error!(%error, "cannot make the last removals durable; those messages will be sent again");
    }
    report.left_in_outbox = blocking(&outbox, |o| o.len()).await.unwrap_or(0);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn fahrenheit_conversion() {
        assert_eq!(celsius_in(TemperatureUnit::F, 100.0), 212.0);
        assert_eq!(celsius_in(TemperatureUnit::C, 48.3121), 48.31);
    }
}

//! Where readings come from: the sensor loops (temperature always, vibration while the motor is ON), the
//! contract's payloads, and the sink that hands each reading to the drainer.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::actuator::MotorState;
use crate::clock::epoch_millis;
use crate::config::TemperatureUnit;
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

    pub(super) async fn store(
        &self,
        topic: &str,
        render: impl FnOnce(u64) -> Vec<u8> + Send + 'static,
    ) {
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

//! The MOTOR actuator. The shadow sync calls `set` and reports only after it returned `Ok`, so the
//! reported state never runs ahead of the hardware (the Device Client bug #358 we avoid).

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ActuatorConfig, ActuatorKind};

/// `desired.MOTOR` / `reported.MOTOR` values of the classic shadow (architecture section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MotorState {
    #[serde(rename = "ON")]
    On,
    #[serde(rename = "OFF")]
    Off,
}

impl MotorState {
    pub fn as_str(self) -> &'static str {
        match self {
            MotorState::On => "ON",
            MotorState::Off => "OFF",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ON" => Some(MotorState::On),
            "OFF" => Some(MotorState::Off),
            _ => None,
        }
    }
}

impl std::fmt::Display for MotorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error(
        "cannot drive GPIO line {line} on {chip}: {message}; check the chip/line in [actuator] and that the \
         agent's user is in the `gpio` group (the unit's drop-in device-agent/packaging/gpio.conf)"
    )]
    Gpio {
        chip: PathBuf,
        line: u32,
        message: String,
    },
    #[error("simulated actuator failure: {0}")]
    Simulated(String),
}

/// Something that turns the motor on or off. `set` returns once the state is reached.
pub trait Actuator: Send + 'static {
    fn set(&mut self, state: MotorState) -> impl Future<Output = Result<(), ActuatorError>> + Send;
    /// The state the hardware is in now (after a restart: what `new` drove it to).
    fn current(&self) -> MotorState;
}

/// A motor simulated in memory. Clones share state, so a test can watch what the agent did.
#[derive(Debug, Clone)]
pub struct SimulatedMotor {
    state: Arc<Mutex<MotorState>>,
    fail_next: Arc<Mutex<bool>>,
    delay: Duration,
}

impl SimulatedMotor {
    pub fn new(delay: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(MotorState::Off)),
            fail_next: Arc::new(Mutex::new(false)),
            delay,
        }
    }

    /// Make the next `set` fail (tests the "never report a state not reached" rule).
    pub fn fail_next_set(&self) {
        if let Ok(mut fail) = self.fail_next.lock() {
            *fail = true;
        }
    }

    pub fn state(&self) -> MotorState {
        self.state.lock().map(|s| *s).unwrap_or(MotorState::Off)
    }
}

impl Actuator for SimulatedMotor {
    async fn set(&mut self, state: MotorState) -> Result<(), ActuatorError> {
        tokio::time::sleep(self.delay).await;
        let fail = self
            .fail_next
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or(false);
        if fail {
            return Err(ActuatorError::Simulated(format!(
                "could not switch {state}"
            )));
        }
        if let Ok(mut current) = self.state.lock() {
            *current = state;
        }
        Ok(())
    }

    fn current(&self) -> MotorState {
        self.state()
    }
}

/// A motor (relay, driver enable pin) on one GPIO line through the Linux GPIO character device (uAPI v2).
/// The line is requested once and held, so no other process can flip it behind the agent's back.
pub struct GpioMotor {
    request: gpiocdev::Request,
    chip: PathBuf,
    line: u32,
    state: MotorState,
}

impl std::fmt::Debug for GpioMotor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpioMotor")
            .field("chip", &self.chip)
            .field("line", &self.line)
            .field("state", &self.state)
            .finish()
    }
}

impl GpioMotor {
    /// Claim the line as an output driven OFF: after a reboot the motor is off until the shadow says otherwise.
    pub fn open(chip: PathBuf, line: u32, active_low: bool) -> Result<Self, ActuatorError> {
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(&chip)
            .with_consumer("device-agent")
            .with_line(line)
            .as_output(gpiocdev::line::Value::Inactive);
        if active_low {
            builder.as_active_low();
        }
        let request = builder.request().map_err(|e| ActuatorError::Gpio {
            chip: chip.clone(),
            line,
            message: e.to_string(),
        })?;
        Ok(Self {
            request,
            chip,
            line,
            state: MotorState::Off,
        })
    }
}

impl Actuator for GpioMotor {
    async fn set(&mut self, state: MotorState) -> Result<(), ActuatorError> {
        let value = match state {
            MotorState::On => gpiocdev::line::Value::Active,
            MotorState::Off => gpiocdev::line::Value::Inactive,
        };
        self.request
            .set_value(self.line, value)
            .map_err(|e| ActuatorError::Gpio {
                chip: self.chip.clone(),
                line: self.line,
                message: e.to_string(),
            })?;
        self.state = state;
        Ok(())
    }

    fn current(&self) -> MotorState {
        self.state
    }
}

/// The actuator chosen in `[actuator]`.
#[derive(Debug)]
pub enum ConfiguredActuator {
    Simulated(SimulatedMotor),
    Gpio(GpioMotor),
}

impl ConfiguredActuator {
    pub fn from_config(config: &ActuatorConfig) -> Result<Self, ActuatorError> {
        Ok(match config.kind {
            ActuatorKind::Simulated => ConfiguredActuator::Simulated(SimulatedMotor::new(
                Duration::from_millis(config.simulated_delay_ms),
            )),
            ActuatorKind::Gpio => ConfiguredActuator::Gpio(GpioMotor::open(
                config.gpio_chip.clone(),
                config.gpio_line,
                config.gpio_active_low,
            )?),
        })
    }
}

impl Actuator for ConfiguredActuator {
    async fn set(&mut self, state: MotorState) -> Result<(), ActuatorError> {
        match self {
            ConfiguredActuator::Simulated(motor) => motor.set(state).await,
            ConfiguredActuator::Gpio(motor) => motor.set(state).await,
        }
    }

    fn current(&self) -> MotorState {
        match self {
            ConfiguredActuator::Simulated(motor) => motor.current(),
            ConfiguredActuator::Gpio(motor) => motor.current(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motor_values_match_the_shadow_contract() {
        assert_eq!(serde_json::to_string(&MotorState::On).unwrap(), "\"ON\"");
        assert_eq!(MotorState::parse("OFF"), Some(MotorState::Off));
        assert_eq!(MotorState::parse("on"), None);
    }

    #[tokio::test]
    async fn simulated_motor_reaches_state_or_fails_without_changing() {
        let mut motor = SimulatedMotor::new(Duration::ZERO);
        let watcher = motor.clone();
        motor.set(MotorState::On).await.unwrap();
        assert_eq!(watcher.state(), MotorState::On);
        watcher.fail_next_set();
        assert!(motor.set(MotorState::Off).await.is_err());
        assert_eq!(motor.current(), MotorState::On);
    }

    #[test]
    fn missing_gpio_chip_explains_the_fix() {
        let err = GpioMotor::open(PathBuf::from("/dev/no-such-gpiochip"), 17, false).unwrap_err();
        assert!(err.to_string().contains("gpio"), "{err}");
    }
}

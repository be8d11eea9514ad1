//! Sensor sources. The traits let a real sensor (I²C, 1-Wire, an ADC on SPI) replace the simulated ones
//! without touching the telemetry loop.

use std::path::{Path, PathBuf};

use rand::Rng;

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} holds `{content}`, expected integer milli-degrees Celsius (thermal-zone format)"
    )]
    Format { path: PathBuf, content: String },
}

/// A temperature in degrees Celsius.
pub trait TemperatureSensor: Send {
    fn read_celsius(&mut self) -> Result<f64, SensorError>;
}

/// A vibration amplitude (unitless, like the workshop's `randint(-500, 500)`).
pub trait VibrationSensor: Send {
    fn read_vibration(&mut self) -> Result<f64, SensorError>;
}

impl<T: TemperatureSensor + ?Sized> TemperatureSensor for Box<T> {
    fn read_celsius(&mut self) -> Result<f64, SensorError> {
        (**self).read_celsius()
    }
}

impl<T: VibrationSensor + ?Sized> VibrationSensor for Box<T> {
    fn read_vibration(&mut self) -> Result<f64, SensorError> {
        (**self).read_vibration()
    }
}

/// The temperature source chosen in `[sensors]`.
pub fn temperature_from_config(
    config: &crate::config::SensorsConfig,
) -> Box<dyn TemperatureSensor> {
    match config.temperature {
        crate::config::TemperatureSource::ThermalZone => {
            Box::new(ThermalZone::new(&config.temperature_path))
        }
        crate::config::TemperatureSource::Simulated => Box::new(SimulatedTemperature::default()),
    }
}

/// The vibration source chosen in `[sensors]`.
pub fn vibration_from_config(config: &crate::config::SensorsConfig) -> Box<dyn VibrationSensor> {
    match config.vibration {
        crate::config::VibrationSource::Simulated => Box::new(SimulatedVibration),
    }
}

/// A file in the Linux thermal-zone format: the Pi's CPU is `/sys/class/thermal/thermal_zone0/temp`
/// holding e.g. `48312\n` = 48.312 °C.
#[derive(Debug, Clone)]
pub struct ThermalZone {
    path: PathBuf,
}

impl ThermalZone {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parse thermal-zone text (integer milli-°C) into °C.
pub fn parse_millidegrees(text: &str) -> Option<f64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .map(|milli| milli as f64 / 1000.0)
}

impl TemperatureSensor for ThermalZone {
    fn read_celsius(&mut self) -> Result<f64, SensorError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| SensorError::Read {
            path: self.path.clone(),
            source,
        })?;
        parse_millidegrees(&text).ok_or_else(|| SensorError::Format {
            path: self.path.clone(),
            content: text.trim().chars().take(40).collect(),
        })
    }
}

/// A random walk around 45 °C, so simulated telemetry looks like a Pi CPU.
#[derive(Debug, Clone)]
pub struct SimulatedTemperature {
    current: f64,
}

impl Default for SimulatedTemperature {
    fn default() -> Self {
        Self { current: 45.0 }
    }
}

impl TemperatureSensor for SimulatedTemperature {
    fn read_celsius(&mut self) -> Result<f64, SensorError> {
        let step: f64 = rand::rng().random_range(-0.5..=0.5);
        self.current = (self.current + step).clamp(30.0, 85.0);
        Ok((self.current * 10.0).round() / 10.0)
    }
}

/// The workshop's vibration source: uniform in -500..=500.
#[derive(Debug, Clone, Default)]
pub struct SimulatedVibration;

impl VibrationSensor for SimulatedVibration {
    fn read_vibration(&mut self) -> Result<f64, SensorError> {
        Ok(f64::from(rand::rng().random_range(-500..=500)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thermal_zone_text_is_millidegrees() {
        assert_eq!(parse_millidegrees("48312\n"), Some(48.312));
        assert_eq!(parse_millidegrees("-1500"), Some(-1.5));
        assert_eq!(parse_millidegrees("hot"), None);
    }

    #[test]
    fn reads_a_thermal_zone_file_and_explains_bad_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        std::fs::write(&path, "51000\n").unwrap();
        let mut zone = ThermalZone::new(&path);
        assert_eq!(zone.read_celsius().unwrap(), 51.0);
        std::fs::write(&path, "n/a").unwrap();
        assert!(
            zone.read_celsius()
                .unwrap_err()
                .to_string()
                .contains("milli-degrees")
        );
        let mut missing = ThermalZone::new(dir.path().join("nope"));
        assert!(matches!(
            missing.read_celsius(),
            Err(SensorError::Read { .. })
        ));
    }

    #[test]
    fn simulated_sources_stay_in_range() {
        let mut t = SimulatedTemperature::default();
        let mut v = SimulatedVibration;
        for _ in 0..1000 {
            assert!((30.0..=85.0).contains(&t.read_celsius().unwrap()));
            assert!((-500.0..=500.0).contains(&v.read_vibration().unwrap()));
        }
    }
}

//! Agent configuration: one TOML file, then `DEVICE_AGENT_*` environment variables, then CLI flags.
//!
//! The shape follows AWS IoT Device Client's config (endpoint, cert, key, root CA, thing name, one block per
//! feature) so Pi owners migrating from it find the same knobs. Every value except the connection identity
//! has a default; `validate` (in `validate.rs`) reports every problem at once with a hint on how to fix it.

mod validate;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use validate::ConfigProblem;
use validate::format_problems;

/// Placeholder replaced by the thing name in topic templates.
pub const THING_PLACEHOLDER: &str = "{thing}";

/// Environment variable prefix; nested keys use `__`, e.g. `DEVICE_AGENT_OUTBOX__PATH`.
pub const ENV_PREFIX: &str = "DEVICE_AGENT_";

/// `DEVICE_AGENT_LOG` sets the log filter (tracing `EnvFilter` syntax); it is not a config key.
pub const LOG_ENV_SUFFIX: &str = "LOG";

/// Where the systemd unit and `check` look when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/device-agent/config.toml";

/// ALPN protocol AWS IoT requires for MQTT with client certificates on port 443 (reference 6.8).
pub const AWS_MQTT_ALPN: &str = "x-amzn-mqtt-ca";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// ATS data endpoint, e.g. `abc123-ats.iot.eu-west-1.amazonaws.com` (also the TLS SNI name).
    pub endpoint: String,
    /// 8883, or 443 (the agent then sends ALPN `x-amzn-mqtt-ca`, reference 6.8).
    pub port: u16,
    /// Thing name; also the MQTT client id, which the device policy requires (architecture section 3).
    pub thing_name: String,
    /// MQTT keep-alive; AWS accepts 30..=1200 s (reference 2.4).
    pub keep_alive_secs: u16,
    /// Persistent session (`cleanSession = false`), so QoS 1 shadow deltas queue at the broker while offline.
    pub persistent_session: bool,
    /// How long a clean shutdown waits for the outbox to drain before it disconnects.
    pub shutdown_flush_secs: f64,
    pub tls: TlsConfig,
    pub topics: TopicsConfig,
    pub telemetry: TelemetryConfig,
    pub sensors: SensorsConfig,
    pub actuator: ActuatorConfig,
    pub outbox: OutboxConfig,
    pub reconnect: ReconnectConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Device certificate (PEM), as written by `aws iot create-keys-and-certificate`.
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#1, PKCS#8 or SEC1). Must not be readable by other users.
    pub key: PathBuf,
    /// CA that signs the broker certificate: AmazonRootCA1.pem for AWS IoT.
    pub root_ca: PathBuf,
    /// ALPN override; by default `x-amzn-mqtt-ca` on port 443 and none otherwise.
    pub alpn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    pub temperature: String,
    pub vibration: String,
    pub will: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Seconds between temperature readings (fractions allowed).
    pub temperature_interval_secs: f64,
    /// Seconds between vibration readings while the motor is ON.
    pub vibration_interval_secs: f64,
    /// Unit published in the `unit` field.
    pub unit: TemperatureUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemperatureUnit {
    C,
    F,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorsConfig {
    pub temperature: TemperatureSource,
    /// File in the Linux thermal-zone format (integer milli-degrees Celsius).
    pub temperature_path: PathBuf,
    pub vibration: VibrationSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemperatureSource {
    ThermalZone,
    Simulated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VibrationSource {
    Simulated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActuatorConfig {
    pub kind: ActuatorKind,
    /// GPIO character device, e.g. `/dev/gpiochip0` (Pi 5: `/dev/gpiochip4` on older kernels).
    pub gpio_chip: PathBuf,
    /// Line offset on that chip (BCM numbering on a Pi).
    pub gpio_line: u32,
    pub gpio_active_low: bool,
    /// Simulated motor: time it takes to spin up or down.
    pub simulated_delay_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActuatorKind {
    Simulated,
    Gpio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// The directory of segment files holding unacknowledged telemetry (created if missing).
    pub path: PathBuf,
    /// Bound on stored messages; what happens beyond it is `on_full`.
    pub max_messages: u64,
    pub on_full: OverflowPolicy,
    /// QoS 1 publishes in flight at once; AWS allows 100 unacknowledged per client (reference 6.5).
    pub max_in_flight: usize,
    /// When stored readings are forced to the disk (a crash of the agent never loses them either way).
    pub sync: OutboxSync,
    /// With `sync = "interval"`: the longest a reading waits for the disk while it is unacknowledged.
    pub sync_interval_ms: u64,
}

/// How the outbox protects readings against power loss (a crash of the agent alone cannot lose them:
/// every reading reaches the kernel before the next one is taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboxSync {
    /// Flush at most every `sync_interval_ms`, and only when a reading written since the last flush has
    /// no PUBACK yet: online, the broker's acknowledgement usually comes first and the disk is not touched.
    /// A power loss can lose at most the unacknowledged readings of the last interval.
    Interval,
    /// Flush every reading before it is sent (an fsync per reading: SD-card latency and wear).
    Always,
}

/// What the outbox does when it holds `max_messages`. Either way `dropped_total` counts the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverflowPolicy {
    /// Delete the oldest stored message to make room: the newest readings matter most after a long outage.
    DropOldest,
    /// Refuse the new reading: keeps the history that is already stored.
    DropNewest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectConfig {
    /// First backoff ceiling; the ceiling doubles per failed attempt.
    pub initial_delay_secs: f64,
    pub max_delay_secs: f64,
    /// A connection that lived this long resets the backoff; shorter ones keep growing it (no LWT floods).
    pub stable_after_secs: f64,
    /// AWS allows one CONNECT per second per client id (reference 6.5); never go below.
    pub min_connect_interval_secs: f64,
    /// TCP + TLS + CONNACK timeout per attempt.
    pub connect_timeout_secs: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            port: 8883,
            thing_name: String::new(),
            keep_alive_secs: 30,
            persistent_session: true,
            shutdown_flush_secs: 5.0,
            tls: TlsConfig::default(),
            topics: TopicsConfig::default(),
            telemetry: TelemetryConfig::default(),
            sensors: SensorsConfig::default(),
            actuator: ActuatorConfig::default(),
            outbox: OutboxConfig::default(),
            reconnect: ReconnectConfig::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: PathBuf::from("/etc/device-agent/certs/certificate.pem.crt"),
            key: PathBuf::from("/etc/device-agent/certs/private.pem.key"),
            root_ca: PathBuf::from("/etc/device-agent/certs/AmazonRootCA1.pem"),
            alpn: None,
        }
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            temperature: "data/{thing}/temperature".into(),
            vibration: "data/{thing}/vibration".into(),
            will: "device/{thing}/lwt".into(),
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            temperature_interval_secs: 5.0,
            vibration_interval_secs: 5.0,
            unit: TemperatureUnit::C,
        }
    }
}

impl Default for SensorsConfig {
    fn default() -> Self {
        Self {
            temperature: TemperatureSource::ThermalZone,
            temperature_path: PathBuf::from("/sys/class/thermal/thermal_zone0/temp"),
            vibration: VibrationSource::Simulated,
        }
    }
}

impl Default for ActuatorConfig {
    fn default() -> Self {
        Self {
            kind: ActuatorKind::Simulated,
            gpio_chip: PathBuf::from("/dev/gpiochip0"),
            gpio_line: 17,
            gpio_active_low: false,
            simulated_delay_ms: 200,
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/device-agent/outbox"),
            max_messages: 100_000,
            on_full: OverflowPolicy::DropOldest,
            max_in_flight: 20,
            sync: OutboxSync::Interval,
            sync_interval_ms: 1000,
        }
    }
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            initial_delay_secs: 1.0,
            max_delay_secs: 120.0,
            stable_after_secs: 60.0,
            min_connect_interval_secs: 1.0,
            connect_timeout_secs: 10,
        }
    }
}

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    pub thing_name: Option<String>,
    pub outbox_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {path} does not exist; copy device-agent/config.example.toml there or pass --config <file>"
    )]
    Missing { path: PathBuf },
    #[error(
        "cannot read config ({error}){hint}; fix the named key in the file or the DEVICE_AGENT_* variable"
    )]
    Parse {
        error: Box<figment::Error>,
        /// `; did you mean ...?` for a misspelt key, else empty.
        hint: String,
    },
    #[error("invalid configuration:\n{}", format_problems(.0))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    fn parse(error: figment::Error) -> Self {
        let hint = error
            .clone()
            .into_iter()
            .find_map(|error| match error.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    closest_key(&field, expected).map(|key| format!("; did you mean `{key}`?"))
                }
                _ => None,
            })
            .unwrap_or_default();
        ConfigError::Parse {
            error: Box::new(error),
            hint,
        }
    }
}

/// The expected key nearest to a misspelt one, if it is near enough to be a typo (an edit or two, a swap).
fn closest_key<'a>(field: &str, expected: &[&'a str]) -> Option<&'a str> {
    let limit = (field.chars().count() / 3).max(1);
    expected
        .iter()
        .map(|key| (edit_distance(field, key), *key))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

impl AgentConfig {
    /// Load file + environment + CLI flags, then validate.
    pub fn load(path: &Path, overrides: &CliOverrides) -> Result<Self, ConfigError> {
        let config = Self::load_unvalidated(path, overrides)?;
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    /// Load without validation, so `check` can report every problem next to the certificate checks.
    pub fn load_unvalidated(path: &Path, overrides: &CliOverrides) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing {
                path: path.to_path_buf(),
            });
        }
        let mut config: AgentConfig = Figment::from(Serialized::defaults(AgentConfig::default()))
            .merge(Toml::file_exact(path))
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .ignore(&[LOG_ENV_SUFFIX])
                    .split("__"),
            )
            .extract()
            .map_err(ConfigError::parse)?;
        config.apply(overrides);
        Ok(config)
    }

    /// Parse a TOML string (tests and embedding); the environment is not consulted.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        let config: AgentConfig = Figment::from(Serialized::defaults(AgentConfig::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(ConfigError::parse)?;
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    pub fn apply(&mut self, overrides: &CliOverrides) {
        if let Some(endpoint) = &overrides.endpoint {
            self.endpoint.clone_from(endpoint);
        }
        if let Some(port) = overrides.port {
            self.port = port;
        }
        if let Some(thing) = &overrides.thing_name {
            self.thing_name.clone_from(thing);
        }
        if let Some(path) = &overrides.outbox_path {
            self.outbox.path.clone_from(path);
        }
    }

    /// A topic template with `{thing}` replaced by the thing name.
    pub fn topic(&self, template: &str) -> String {
        template.replace(THING_PLACEHOLDER, &self.thing_name)
    }

    pub fn temperature_topic(&self) -> String {
        self.topic(&self.topics.temperature)
    }

    pub fn vibration_topic(&self) -> String {
        self.topic(&self.topics.vibration)
    }

    pub fn will_topic(&self) -> String {
        self.topic(&self.topics.will)
    }

    /// ALPN to offer: explicit override, else `x-amzn-mqtt-ca` on 443 (reference 6.8).
    pub fn alpn(&self) -> Option<String> {
        match &self.tls.alpn {
            Some(alpn) if alpn.is_empty() => None,
            Some(alpn) => Some(alpn.clone()),
            None if self.port == 443 => Some(AWS_MQTT_ALPN.to_string()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        endpoint = "abc-ats.iot.eu-west-1.amazonaws.com"
        thing_name = "ratchet"
    "#;

    #[test]
    fn minimal_file_gets_defaults_and_thing_topics() {
        let config = AgentConfig::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.port, 8883);
        assert_eq!(config.temperature_topic(), "data/ratchet/temperature");
        assert_eq!(config.will_topic(), "device/ratchet/lwt");
        assert_eq!(config.alpn(), None);
    }

    #[test]
    fn port_443_offers_the_aws_alpn() {
        let config = AgentConfig::from_toml_str(&format!("{MINIMAL}\nport = 443")).unwrap();
        assert_eq!(config.alpn().as_deref(), Some(AWS_MQTT_ALPN));
    }

    #[test]
    fn a_misspelt_key_gets_a_did_you_mean() {
        let error = AgentConfig::from_toml_str("endpiont = \"x\"").unwrap_err();
        assert!(
            error.to_string().contains("did you mean `endpoint`?"),
            "{error}"
        );
        let error =
            AgentConfig::from_toml_str("[telemetry]\ntemprature_interval_secs = 1").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("did you mean `temperature_interval_secs`?"),
            "{error}"
        );
        // Nothing close: no guess.
        let error = AgentConfig::from_toml_str("colour = \"blue\"").unwrap_err();
        assert!(!error.to_string().contains("did you mean"), "{error}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = AgentConfig::from_toml_str(&format!("{MINIMAL}\nendpiont = \"x\"")).unwrap_err();
        assert!(err.to_string().contains("endpiont"), "{err}");
    }

    #[test]
    fn cli_overrides_win() {
        let mut config = AgentConfig::from_toml_str(MINIMAL).unwrap();
        config.apply(&CliOverrides {
            port: Some(443),
            thing_name: Some("other".into()),
            ..Default::default()
        });
        assert_eq!((config.port, config.thing_name.as_str()), (443, "other"));
    }

    #[test]
    fn example_config_is_valid_and_documents_every_default() {
        let example =
            AgentConfig::from_toml_str(include_str!("../../config.example.toml")).unwrap();
        let defaults = AgentConfig {
            endpoint: example.endpoint.clone(),
            thing_name: example.thing_name.clone(),
            ..AgentConfig::default()
        };
        assert_eq!(
            example, defaults,
            "config.example.toml drifted from the defaults"
        );
    }

    #[test]
    fn missing_file_says_how_to_fix() {
        let err = AgentConfig::load(
            Path::new("/nonexistent/agent.toml"),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("config.example.toml"), "{err}");
    }
}

//! Agent configuration: one TOML file, then `DEVICE_AGENT_*` environment variables, then CLI flags.
//!
//! The shape follows AWS IoT Device Client's config (endpoint, cert, key, root CA, thing name, one block per
//! feature) so Pi owners migrating from it find the same knobs. Every value except the connection identity
//! has a default; `validate` reports every problem at once with a hint on how to fix it.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

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
        "cannot read config ({0}); fix the named key in the file or the DEVICE_AGENT_* variable"
    )]
    Parse(Box<figment::Error>),
    #[error("invalid configuration:\n{}", format_problems(.0))]
    Invalid(Vec<ConfigProblem>),
}

/// One thing wrong with the configuration and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: &'static str,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (fix: {})", self.key, self.problem, self.fix)
    }
}

fn format_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
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
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.apply(overrides);
        Ok(config)
    }

    /// Parse a TOML string (tests and embedding); the environment is not consulted.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        let config: AgentConfig = Figment::from(Serialized::defaults(AgentConfig::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
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

    /// Every problem in one pass, each with a fix.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key: &'static str, problem: String, fix: &str| {
            problems.push(ConfigProblem {
                key,
                problem,
                fix: fix.to_string(),
            });
        };
        if self.endpoint.trim().is_empty() {
            problem(
                "endpoint",
                "is empty".into(),
                "set it to the output of `aws iot describe-endpoint --endpoint-type iot:Data-ATS`",
            );
        } else if self.endpoint.contains("://")
            || self.endpoint.contains(':') && !self.endpoint.contains('[')
        {
            problem(
                "endpoint",
                format!("`{}` must be a host name only", self.endpoint),
                "remove any scheme (mqtts://) and port; set the port with `port`",
            );
        }
        if self.port == 0 {
            problem(
                "port",
                "is 0".into(),
                "use 8883, or 443 (ALPN x-amzn-mqtt-ca)",
            );
        }
        // AWS thing names: 1-128 of [a-zA-Z0-9:_-] (reference 3.1); also the client id (<= 128 bytes).
        if !shadow_doc::is_valid_thing_name(&self.thing_name) {
            problem(
                "thing_name",
                format!("`{}` is not a valid thing name", self.thing_name),
                "use 1-128 characters from a-z A-Z 0-9 : _ -, exactly as registered in AWS IoT",
            );
        }
        if !(30..=1200).contains(&self.keep_alive_secs) {
            problem(
                "keep_alive_secs",
                format!("{} is outside 30..=1200", self.keep_alive_secs),
                "AWS IoT clamps keep-alive to 30..=1200 s; 30-60 detects a dead link quickly",
            );
        }
        for (key, path) in [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("tls.root_ca", &self.tls.root_ca),
        ] {
            if path.as_os_str().is_empty() {
                problem(key, "is empty".into(), "give the path of the PEM file");
            }
        }
        for (key, template) in [
            ("topics.temperature", &self.topics.temperature),
            ("topics.vibration", &self.topics.vibration),
            ("topics.will", &self.topics.will),
        ] {
            let topic = self.topic(template);
            if topic.is_empty() || topic.contains(['+', '#']) || topic.starts_with('$') {
                problem(
                    key,
                    format!("`{topic}` is not a publishable topic"),
                    "no wildcards (+ #), no leading $",
                );
            } else if topic.len() > 256 || topic.matches('/').count() > 7 {
                problem(
                    key,
                    format!("`{topic}` is too long"),
                    "AWS IoT allows 256 bytes and 7 slashes per topic (reference 6.5)",
                );
            }
        }
        for (key, secs) in [
            (
                "telemetry.temperature_interval_secs",
                self.telemetry.temperature_interval_secs,
            ),
            (
                "telemetry.vibration_interval_secs",
                self.telemetry.vibration_interval_secs,
            ),
        ] {
            if !(secs.is_finite() && secs >= 0.01) {
                problem(
                    key,
                    format!("{secs} is not a usable interval"),
                    "use a number of seconds >= 0.01",
                );
            }
        }
        if self.sensors.temperature == TemperatureSource::ThermalZone
            && self.sensors.temperature_path.as_os_str().is_empty()
        {
            problem(
                "sensors.temperature_path",
                "is empty".into(),
                "use /sys/class/thermal/thermal_zone0/temp (Pi CPU) or set sensors.temperature = \"simulated\"",
            );
        }
        if self.outbox.path.as_os_str().is_empty() {
            problem(
                "outbox.path",
                "is empty".into(),
                "use a directory on persistent storage, e.g. /var/lib/device-agent/outbox",
            );
        }
        if self.outbox.max_messages == 0 {
            problem(
                "outbox.max_messages",
                "is 0".into(),
                "allow at least one message; 100000 ~ 5 days at 5 s",
            );
        }
        if !(10..=60_000).contains(&self.outbox.sync_interval_ms) {
            problem(
                "outbox.sync_interval_ms",
                format!("{} is outside 10..=60000", self.outbox.sync_interval_ms),
                "1000 bounds what a power loss can take to one second of unacknowledged readings",
            );
        }
        if !(1..=100).contains(&self.outbox.max_in_flight) {
            problem(
                "outbox.max_in_flight",
                format!("{} is outside 1..=100", self.outbox.max_in_flight),
                "AWS allows 100 unacknowledged QoS 1 publishes per client (reference 6.5)",
            );
        }
        let r = &self.reconnect;
        let all_finite = [
            r.initial_delay_secs,
            r.max_delay_secs,
            r.stable_after_secs,
            r.min_connect_interval_secs,
        ]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0);
        if !all_finite || r.initial_delay_secs > r.max_delay_secs {
            problem(
                "reconnect",
                "delays must be non-negative and initial_delay_secs <= max_delay_secs".into(),
                "e.g. initial_delay_secs = 1, max_delay_secs = 120",
            );
        }
        if r.min_connect_interval_secs < 1.0 {
            problem(
                "reconnect.min_connect_interval_secs",
                format!("{} is below 1 s", r.min_connect_interval_secs),
                "AWS IoT allows one CONNECT per second per client id; use >= 1",
            );
        }
        if r.connect_timeout_secs == 0 {
            problem(
                "reconnect.connect_timeout_secs",
                "is 0".into(),
                "use e.g. 10",
            );
        }
        if !(self.shutdown_flush_secs.is_finite() && self.shutdown_flush_secs >= 0.0) {
            problem("shutdown_flush_secs", "must be >= 0".into(), "e.g. 5");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
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
    fn every_problem_is_reported_with_a_fix() {
        let err = AgentConfig::from_toml_str(
            "thing_name = \"bad name\"\nkeep_alive_secs = 5\n[outbox]\nmax_messages = 0",
        )
        .unwrap_err();
        let ConfigError::Invalid(problems) = err else {
            panic!("expected Invalid, got {err}")
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "endpoint",
                "thing_name",
                "keep_alive_secs",
                "outbox.max_messages"
            ]
        );
        assert!(problems.iter().all(|p| !p.fix.is_empty()));
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
        let example = AgentConfig::from_toml_str(include_str!("../config.example.toml")).unwrap();
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

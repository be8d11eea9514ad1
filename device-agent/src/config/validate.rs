//! Validation: every problem with the configuration in one pass, each with the key, what is wrong and
//! how to fix it (the same rules `device-agent check` reports before anything connects).

use super::*;

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

pub(super) fn format_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl AgentConfig {
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
}

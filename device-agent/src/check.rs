//! `device-agent check`: everything that can be verified without the broker, each finding with its fix.
//!
//! The same checks run at start-up; an `Error` finding is fatal there (exit code 2), because retrying a
//! connection with an expired certificate or a foreign key only produces Last-Will noise.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{ActuatorKind, AgentConfig, TemperatureSource};
use crate::tls;

/// The endpoint `config.example.toml` ships with: a config still naming it has not been edited.
pub const EXAMPLE_ENDPOINT: &str = "abcdefghij1234-ats.iot.eu-west-1.amazonaws.com";

/// Certificates expiring sooner than this get a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub subject: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok     ",
            Severity::Warning => "warning",
            Severity::Error => "ERROR  ",
        };
        write!(f, "{tag} {}: {}", self.subject, self.message)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
}

impl CheckReport {
    fn push(&mut self, severity: Severity, subject: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            subject: subject.into(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

/// Run every check; `now` is a parameter so expiry is testable.
pub fn run_checks(config: &AgentConfig, now: SystemTime) -> CheckReport {
    let mut report = CheckReport::default();
    match config.validate() {
        Ok(()) => report.push(Severity::Ok, "config", "all keys valid"),
        Err(problems) => {
            for p in problems {
                report.push(
                    Severity::Error,
                    format!("config {}", p.key),
                    format!("{}; fix: {}", p.problem, p.fix),
                );
            }
        }
    }
    check_defaults_left_as_shipped(config, &mut report);
    check_key_permissions(&config.tls.key, &mut report);
    check_certificate(config, now, &mut report);
    match tls::load_certificates("root CA", &config.tls.root_ca) {
        Ok(_) => report.push(Severity::Ok, "tls.root_ca", "readable PEM certificate"),
        Err(e) => report.push(Severity::Error, "tls.root_ca", e.to_string()),
    }
    if config.sensors.temperature == TemperatureSource::ThermalZone {
        let path = &config.sensors.temperature_path;
        match std::fs::read_to_string(path).ok().and_then(|t| crate::sensors::parse_millidegrees(&t)) {
            Some(celsius) => report.push(Severity::Ok, "sensors.temperature_path", format!("reads {celsius} °C")),
            None => report.push(
                Severity::Warning,
                "sensors.temperature_path",
                format!("{} is not a readable thermal-zone file; readings will be skipped (or use \"simulated\")", path.display()),
            ),
        }
    }
    let outbox = &config.outbox.path;
    match outbox.parent() {
        _ if outbox.exists() && !outbox.is_dir() => report.push(
            Severity::Error,
            "outbox.path",
            format!(
                "{} is a file; the outbox is a directory of segment files: use e.g. /var/lib/device-agent/outbox",
                outbox.display()
            ),
        ),
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => report.push(
            Severity::Error,
            "outbox.path",
            format!(
                "directory {} does not exist; create it (systemd: StateDirectory=device-agent)",
                dir.display()
            ),
        ),
        _ => report.push(Severity::Ok, "outbox.path", outbox.display().to_string()),
    }
    report
}

fn check_key_permissions(key: &Path, report: &mut CheckReport) {
    let Ok(meta) = std::fs::metadata(key) else {
        report.push(
            Severity::Error,
            "tls.key",
            format!("cannot read {}; check the path", key.display()),
        );
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        report.push(
            Severity::Error,
            "tls.key",
            format!(
                "{} is accessible by other users (mode {mode:03o}); anyone on the Pi could impersonate the device. \
                 Fix: chmod 600 {} (and chown it to the agent's user)",
                key.display(),
                key.display()
            ),
        );
    } else if mode & 0o070 != 0 {
        report.push(
            Severity::Warning,
            "tls.key",
            format!(
                "{} is group-accessible (mode {mode:03o}); prefer chmod 600",
                key.display()
            ),
        );
    } else {
        report.push(Severity::Ok, "tls.key", format!("mode {mode:03o}"));
    }
}

fn check_certificate(config: &AgentConfig, now: SystemTime, report: &mut CheckReport) {
    let certs = match tls::load_certificates("certificate", &config.tls.cert) {
        Ok(certs) => certs,
        Err(e) => return report.push(Severity::Error, "tls.cert", e.to_string()),
    };
    match X509Certificate::from_der(certs[0].as_ref()) {
        Ok((_, cert)) => {
            let not_before = UNIX_EPOCH
                + Duration::from_secs(
                    u64::try_from(cert.validity().not_before.timestamp()).unwrap_or(0),
                );
            let not_after = UNIX_EPOCH
                + Duration::from_secs(
                    u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0),
                );
            let subject = cert.subject().to_string();
            if now > not_after {
                report.push(
                    Severity::Error,
                    "tls.cert",
                    format!(
                        "certificate ({subject}) expired at {}; create a new one (aws iot create-keys-and-certificate), \
                         attach the policy and the thing, and replace cert and key",
                        cert.validity().not_after
                    ),
                );
            } else if now < not_before {
                report.push(
                    Severity::Error,
                    "tls.cert",
                    format!(
                        "certificate is not valid before {}; the Pi's clock is probably wrong (no RTC): enable NTP \
                         (timedatectl set-ntp true)",
                        cert.validity().not_before
                    ),
                );
            } else if not_after.duration_since(now).unwrap_or_default() < EXPIRY_WARNING {
                report.push(
                    Severity::Warning,
                    "tls.cert",
                    format!(
                        "certificate expires soon ({}); plan a rotation",
                        cert.validity().not_after
                    ),
                );
            } else {
                report.push(
                    Severity::Ok,
                    "tls.cert",
                    format!("{subject}, valid until {}", cert.validity().not_after),
                );
            }
        }
        Err(e) => report.push(
            Severity::Error,
            "tls.cert",
            format!("not an X.509 certificate: {e}"),
        ),
    }
    match tls::load_private_key(&config.tls.key) {
        Ok(key) => match tls::check_key_matches(&config.tls.cert, &config.tls.key, &certs, &key) {
            Ok(()) => report.push(
                Severity::Ok,
                "tls.cert + tls.key",
                "the key belongs to the certificate",
            ),
            Err(e) => report.push(Severity::Error, "tls.cert + tls.key", e.to_string()),
        },
        Err(e) => report.push(Severity::Error, "tls.key", e.to_string()),
    }
}

/// What an unedited copy of `config.example.toml` leaves in place: valid, so not errors, but a device that then
/// cannot connect, or a motor that never turns, should not pass `check` without a word.
fn check_defaults_left_as_shipped(config: &AgentConfig, report: &mut CheckReport) {
    if config.endpoint == EXAMPLE_ENDPOINT {
        report.push(
            Severity::Warning,
            "endpoint",
            format!(
                "{EXAMPLE_ENDPOINT} is the example's placeholder; put your account's endpoint \
                 (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`, or the emulator's host)"
            ),
        );
    }
    if config.actuator.kind == ActuatorKind::Simulated {
        report.push(
            Severity::Warning,
            "actuator.kind",
            "\"simulated\": desired MOTOR changes are acted on and reported, but no motor turns; \
             set kind = \"gpio\" with gpio_chip/gpio_line where a motor is wired",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unedited_example_config_gets_warnings_not_errors() {
        let example = AgentConfig::from_toml_str(include_str!("../config.example.toml")).unwrap();
        assert_eq!(
            example.endpoint, EXAMPLE_ENDPOINT,
            "the example's endpoint changed"
        );
        let mut report = CheckReport::default();
        check_defaults_left_as_shipped(&example, &mut report);
        let subjects: Vec<_> = report
            .findings
            .iter()
            .map(|finding| (finding.severity, finding.subject.as_str()))
            .collect();
        assert_eq!(
            subjects,
            vec![
                (Severity::Warning, "endpoint"),
                (Severity::Warning, "actuator.kind")
            ]
        );
    }

    #[test]
    fn an_edited_config_passes_without_those_warnings() {
        let mut config =
            AgentConfig::from_toml_str(include_str!("../config.example.toml")).unwrap();
        config.endpoint = "a1b2c3-ats.iot.ap-northeast-1.amazonaws.com".into();
        config.actuator.kind = ActuatorKind::Gpio;
        let mut report = CheckReport::default();
        check_defaults_left_as_shipped(&config, &mut report);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }
}

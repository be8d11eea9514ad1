//! `{state-dir}/endpoints.json`: where `iot-emulator up` tells the other subcommands (and scripts) its
//! APIs listen. `up` writes it once everything is bound; the HTTP subcommands read it unless given URLs.
//!
//! ```json
//! {"mqtt": "127.0.0.1:8883", "controlPlane": "http://127.0.0.1:8090", "dataPlane": "http://127.0.0.1:8088",
//!  "logs": "http://127.0.0.1:8089", "rootCA": ".iot-emulator/ca/root-CA.pem", "region": "us-east-1",
//!  "console": "http://127.0.0.1:8091"}
//! ```
//!
//! `iot-emulator env` turns it into the environment the AWS CLI and SDKs need ([`Endpoints::shell_exports`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name, inside the state directory.
pub const ENDPOINTS_FILE: &str = "endpoints.json";

#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("reading {path} (is `iot-emulator up` running?): {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an endpoints file: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The addresses of a running emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// `host:port` of MQTT over mutual TLS.
    pub mqtt: String,
    /// Base URL of the control-plane HTTP API (`AWS_ENDPOINT_URL_IOT`); absent in files written before it
    /// existed, which still load.
    #[serde(
        rename = "controlPlane",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub control_plane: Option<String>,
    /// Base URL of the data-plane HTTP API (`AWS_ENDPOINT_URL_IOT_DATA_PLANE`).
    #[serde(rename = "dataPlane")]
    pub data_plane: String,
    /// Base URL of the CloudWatch Logs API (`AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`).
    pub logs: String,
    /// The emulator CA that devices trust.
    #[serde(rename = "rootCA")]
    pub root_ca: PathBuf,
    /// The region of the emulator's ARNs (`up --region`); absent in files written before it existed, which
    /// then mean [`DEFAULT_REGION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Base URL of the web console (`up --console-port`); absent in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
}

/// The region `up` uses unless given `--region`.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The credentials `iot-emulator env` exports: the emulator checks no signature, but the AWS CLI and SDKs
/// refuse to send a request without some ("Unable to locate credentials").
pub const DUMMY_ACCESS_KEY_ID: &str = "emulator";
pub const DUMMY_SECRET_ACCESS_KEY: &str = "emulator";

impl Endpoints {
    /// Where the file of the emulator with state directory `state_dir` is.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(ENDPOINTS_FILE)
    }

    /// Writes (replaces) the file in `state_dir`, pretty-printed for people reading it.
    pub fn write(&self, state_dir: &Path) -> Result<(), EndpointsError> {
        let path = Self::path(state_dir);
        let text = serde_json::to_vec_pretty(self).map_err(|source| EndpointsError::Encode {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text).map_err(|source| EndpointsError::Write { path, source })
    }

    /// `export NAME='value'` lines, one a line, that point the AWS CLI and SDKs at this emulator:
    /// the service endpoints (`AWS_ENDPOINT_URL_<SERVICE>`, honoured by the AWS CLI v2, botocore 1.31+ and the
    /// SDKs), the region (`AWS_REGION`, and `AWS_DEFAULT_REGION` for the AWS CLI v1) and dummy credentials.
    /// Without a control plane (an older file) `AWS_ENDPOINT_URL_IOT` is left out.
    pub fn shell_exports(&self) -> String {
        let region = self.region.as_deref().unwrap_or(DEFAULT_REGION);
        let mut variables = Vec::new();
        if let Some(control_plane) = &self.control_plane {
            variables.push(("AWS_ENDPOINT_URL_IOT", control_plane.as_str()));
        }
        variables.extend([
            ("AWS_ENDPOINT_URL_IOT_DATA_PLANE", self.data_plane.as_str()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", self.logs.as_str()),
            ("AWS_REGION", region),
            ("AWS_DEFAULT_REGION", region),
            ("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_ACCESS_KEY),
        ]);
        variables
            .into_iter()
            .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
            .collect()
    }

    /// Reads the file `up` wrote in `state_dir`.
    pub fn read(state_dir: &Path) -> Result<Endpoints, EndpointsError> {
        let path = Self::path(state_dir);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(source) => return Err(EndpointsError::Read { path, source }),
        };
        serde_json::from_slice(&text).map_err(|source| EndpointsError::Parse { path, source })
    }
}

/// `value` in single quotes, for a POSIX shell: nothing in it is expanded.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            mqtt: "127.0.0.1:8883".into(),
            control_plane: Some("http://127.0.0.1:8090".into()),
            data_plane: "http://127.0.0.1:8088".into(),
            logs: "http://127.0.0.1:8089".into(),
            root_ca: PathBuf::from("state/ca/root-CA.pem"),
            region: Some("eu-west-1".into()),
            console: Some("http://127.0.0.1:8091".into()),
        }
    }

    #[test]
    fn shell_exports_name_every_endpoint_the_region_and_dummy_credentials() {
        assert_eq!(
            endpoints().shell_exports(),
            "export AWS_ENDPOINT_URL_IOT='http://127.0.0.1:8090'\n\
             export AWS_ENDPOINT_URL_IOT_DATA_PLANE='http://127.0.0.1:8088'\n\
             export AWS_ENDPOINT_URL_CLOUDWATCH_LOGS='http://127.0.0.1:8089'\n\
             export AWS_REGION='eu-west-1'\n\
             export AWS_DEFAULT_REGION='eu-west-1'\n\
             export AWS_ACCESS_KEY_ID='emulator'\n\
             export AWS_SECRET_ACCESS_KEY='emulator'\n"
        );
        let older = Endpoints {
            control_plane: None,
            region: None,
            ..endpoints()
        };
        let exports = older.shell_exports();
        assert!(!exports.contains("AWS_ENDPOINT_URL_IOT="), "{exports}");
        assert!(
            exports.contains("export AWS_REGION='us-east-1'\n"),
            "{exports}"
        );
    }

    #[test]
    fn shell_quoting_keeps_every_character_literal() {
        assert_eq!(shell_quote("a b$c"), "'a b$c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn written_files_read_back_with_the_documented_keys() {
        let dir = tempfile::tempdir().unwrap();
        endpoints().write(dir.path()).unwrap();
        assert_eq!(Endpoints::read(dir.path()).unwrap(), endpoints());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(ENDPOINTS_FILE)).unwrap())
                .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "mqtt": "127.0.0.1:8883",
                "controlPlane": "http://127.0.0.1:8090",
                "dataPlane": "http://127.0.0.1:8088",
                "logs": "http://127.0.0.1:8089",
                "rootCA": "state/ca/root-CA.pem",
                "region": "eu-west-1",
                "console": "http://127.0.0.1:8091",
            })
        );
    }

    #[test]
    fn files_without_the_control_plane_still_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(ENDPOINTS_FILE),
            br#"{"mqtt": "127.0.0.1:8883", "dataPlane": "http://127.0.0.1:8088",
                "logs": "http://127.0.0.1:8089", "rootCA": "ca/root-CA.pem"}"#,
        )
        .unwrap();
        let endpoints = Endpoints::read(dir.path()).unwrap();
        assert_eq!(endpoints.control_plane, None);
        assert_eq!(endpoints.data_plane, "http://127.0.0.1:8088");
    }

    #[test]
    fn a_missing_or_foreign_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Endpoints::read(dir.path()).unwrap_err();
        assert!(matches!(missing, EndpointsError::Read { .. }));
        assert!(missing.to_string().contains("endpoints.json"));
        std::fs::write(dir.path().join(ENDPOINTS_FILE), br#"{"mqtt": "x"}"#).unwrap();
        assert!(matches!(
            Endpoints::read(dir.path()),
            Err(EndpointsError::Parse { .. })
        ));
    }
}

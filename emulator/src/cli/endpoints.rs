//! `{state-dir}/endpoints.json`: where `iot-emulator up` tells the other subcommands (and scripts) its
//! APIs listen. `up` writes it once everything is bound; the HTTP subcommands read it unless given URLs.
//!
//! ```json
//! {"mqtt": "127.0.0.1:8883", "controlPlane": "http://127.0.0.1:8090", "dataPlane": "http://127.0.0.1:8088",
//!  "logs": "http://127.0.0.1:8089", "rootCA": ".iot-emulator/ca/root-CA.pem"}
//! ```

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
}

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
        }
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

//! `GET /endpoint?endpointType=`: DescribeEndpoint.
//!
//! AWS answers a host name only; devices add the port (8883 for MQTT over mutual TLS, reference 6.8). The
//! emulator answers its MQTT listener's host, so code written for AWS (`endpointAddress` + port 8883) works
//! unchanged when `up` runs with its default `--mqtt-port 8883`; with another port, `up` prints it and
//! `endpoints.json` holds it under `mqtt`.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::ControlPlane;
use super::error::ControlPlaneError;
use super::wire::{AwsQuery, ok_json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EndpointQuery {
    endpoint_type: Option<String>,
}

pub(super) async fn describe_endpoint(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<EndpointQuery>,
) -> Result<Response, ControlPlaneError> {
    match query.endpoint_type.as_deref() {
        // No type is the legacy VeriSign-signed iot:Data endpoint; the emulator has one listener for both.
        None | Some("iot:Data" | "iot:Data-ATS") => Ok(ok_json(
            &json!({ "endpointAddress": plane.shared.mqtt_host }),
        )),
        Some(other @ ("iot:CredentialProvider" | "iot:Jobs")) => {
            Err(ControlPlaneError::invalid(format!(
                "Endpoint type {other} is not emulated (the emulator serves iot:Data-ATS and iot:Data)"
            )))
        }
        Some(other) => Err(ControlPlaneError::invalid(format!(
            "Invalid endpoint type {other}: expected iot:Data, iot:Data-ATS, iot:CredentialProvider or iot:Jobs"
        ))),
    }
}

//! `POST /things/{thingName}/connectivity-data`: GetThingConnectivityData, answered from the broker's sessions
//! (`Broker::thing_connectivity`): connected while a client whose id is the thing's name, or whose certificate is
//! exclusively attached to it, is connected; otherwise the time and lifecycle `disconnectReason` of its last
//! disconnect. A thing that never connected since the emulator started answers `connected: false` with no
//! further details, as AWS answers for a device it has no session data about. Otherwise the answer carries the
//! fields AWS added to it: the connection's client id (while connected), source and target address and port,
//! keep-alive and session kind (`sessionExpiry` and `vpcEndpointId` are not reported). AWS serves this from fleet
//! indexing's connectivity index (IndexNotReadyException until it is enabled); the emulator needs no index.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::ControlPlane;
use super::error::ControlPlaneError;
use super::wire::{AwsPath, epoch_seconds, ok_json};

pub(super) async fn get_thing_connectivity_data(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    // An unknown thing is ResourceNotFoundException, as on AWS.
    plane.registry().describe_thing(&name)?;
    let Some(broker) = &plane.broker else {
        return Err(ControlPlaneError::Internal(
            "this control plane runs without a broker".into(),
        ));
    };
    let connectivity = broker.thing_connectivity(&name);
    let mut body = json!({ "thingName": name, "connected": connectivity.connected });
    if let Some(at) = connectivity.timestamp_ms {
        body["timestamp"] = json!(epoch_seconds(at));
    }
    if let Some(reason) = connectivity.disconnect_reason {
        body["disconnectReason"] = json!(reason);
    }
    if let Some(client_id) = connectivity.client_id {
        body["clientId"] = json!(client_id);
    }
    if let Some(connection) = connectivity.connection {
        body["sourceIp"] = json!(connection.source.ip().to_string());
        body["sourcePort"] = json!(connection.source.port());
        body["targetIp"] = json!(connection.target.ip().to_string());
        body["targetPort"] = json!(connection.target.port());
        body["keepAliveDuration"] = json!(connection.keep_alive_secs);
        body["cleanSession"] = json!(connection.clean_session);
    }
    Ok(ok_json(&body))
}

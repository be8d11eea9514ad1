//! `GET /_emulator/denials`: the broker's policy refusals, newest first, each with the evaluation that decided it
//! ([`crate::broker::Denial`]), as `{"denials": [...], "total": N}` (`total` counts those no longer kept). Not an
//! AWS operation; the console's "why was it denied" page reads it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::DataPlane;
use super::error::{json_response, request_id};

pub const DENIALS_PATH: &str = "/_emulator/denials";

pub(crate) async fn list_denials(State(data_plane): State<DataPlane>) -> Response {
    let broker = match data_plane.broker() {
        Ok(broker) => broker,
        Err(error) => return error.into_response(),
    };
    let (denials, total) = broker.denials();
    let body = json!({ "denials": denials, "total": total });
    json_response(StatusCode::OK, body.to_string().into_bytes(), &request_id())
}

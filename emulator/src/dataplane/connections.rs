//! The connection operations of `iot-data` (2015-05-28 model; reference 3.10), answered from the broker's one
//! session registry:
//! `GET /connections/{clientId}?includeSocketInformation=` (GetConnection),
//! `DELETE /connections/{clientId}?cleanSession=&preventWillMessage=` (DeleteConnection),
//! `GET /connections/{clientId}/subscriptions?maxResults=&nextToken=` (ListSubscriptions) and
//! `POST /connections/{clientId}/messages?topic=&confirmation=&timeout=...` (SendDirectMessage).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::DataPlane;
use super::error::{DataPlaneError, json_response, request_id};
use super::paging::{PageToken, page_size};
use super::publish::{check_publish_topic, mqtt5_properties};
use super::shadow::{body_error, ok_json};
use crate::app::DATA_PLANE_SERVICE_NAME;
use crate::broker::{DirectMessageError, Origin};

/// The model's `ClientId`: 1–128 characters, not starting with `$` (reserved for AWS-generated ids).
const MAX_CLIENT_ID_CHARS: usize = 128;
/// ListSubscriptions' documented default page size.
const DEFAULT_SUBSCRIPTIONS_PAGE: usize = 20;
/// SendDirectMessage's `timeout`: 1–15 s, default 5 s (the model's documentation).
const DIRECT_TIMEOUT_RANGE_SECS: std::ops::RangeInclusive<u64> = 1..=15;
const DEFAULT_DIRECT_TIMEOUT_SECS: u64 = 5;

fn client_id(path: Result<Path<String>, PathRejection>) -> Result<String, DataPlaneError> {
    let Path(client_id) =
        path.map_err(|rejection| DataPlaneError::invalid_request(rejection.body_text()))?;
    let length = client_id.chars().count();
    if length == 0 || length > MAX_CLIENT_ID_CHARS || client_id.starts_with('$') {
        return Err(DataPlaneError::invalid_request(format!(
            "clientId must be 1 to {MAX_CLIENT_ID_CHARS} characters and must not start with $"
        )));
    }
    Ok(client_id)
}

/// A boolean query parameter as the SDKs send it (`true`/`false`).
fn flag(value: Option<&str>, name: &str) -> Result<bool, DataPlaneError> {
    match value {
        None => Ok(false),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(DataPlaneError::invalid_request(format!(
            "{name} must be true or false"
        ))),
    }
}

fn query_error(rejection: QueryRejection) -> DataPlaneError {
    DataPlaneError::invalid_request(rejection.body_text())
}

fn not_connected(client_id: &str) -> DataPlaneError {
    DataPlaneError::not_found(format!("No connection found for client ID {client_id}"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetConnectionQuery {
    include_socket_information: Option<String>,
}

/// GetConnection: the model's `GetConnectionResponse`. `connectedSince` only while connected,
/// `disconnectedSince` and `disconnectReason` only while not (for 30 minutes after the disconnect); socket
/// fields only with `includeSocketInformation=true`. A client the broker knows nothing of is 404.
pub(crate) async fn get_connection(
    State(plane): State<DataPlane>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GetConnectionQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let client_id = client_id(path)?;
    let Query(query) = query.map_err(query_error)?;
    let include_socket = flag(
        query.include_socket_information.as_deref(),
        "includeSocketInformation",
    )?;
    let info = plane
        .broker()?
        .connection_info(&client_id)
        .ok_or_else(|| not_connected(&client_id))?;
    let mut body = Map::new();
    body.insert("clientId".into(), json!(info.client_id));
    body.insert("connected".into(), json!(info.connected));
    body.insert("cleanSession".into(), json!(info.clean_session));
    if let Some(thing) = info.thing_name {
        body.insert("thingName".into(), json!(thing));
    }
    if let Some(keep_alive) = info.keep_alive_secs {
        body.insert("keepAliveDuration".into(), json!(keep_alive));
    }
    body.insert("sessionExpiry".into(), json!(info.session_expiry_secs));
    if let Some(since) = info.connected_since_ms {
        body.insert("connectedSince".into(), json!(since));
    }
    if let Some(since) = info.disconnected_since_ms {
        body.insert("disconnectedSince".into(), json!(since));
    }
    if let Some(reason) = info.disconnect_reason {
        body.insert("disconnectReason".into(), json!(reason.as_str()));
    }
    if include_socket && let (Some(source), Some(target)) = (info.source, info.target) {
        body.insert("sourceIp".into(), json!(source.ip().to_string()));
        body.insert("sourcePort".into(), json!(source.port()));
        body.insert("targetIp".into(), json!(target.ip().to_string()));
        body.insert("targetPort".into(), json!(target.port()));
    }
    Ok(ok_json(&Value::Object(body)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteConnectionQuery {
    clean_session: Option<String>,
    prevent_will_message: Option<String>,
}

/// DeleteConnection: 200 with an empty body; 404 ResourceNotFoundException when the client is neither
/// connected nor has a persistent session (reference 3.10).
pub(crate) async fn delete_connection(
    State(plane): State<DataPlane>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeleteConnectionQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let client_id = client_id(path)?;
    let Query(query) = query.map_err(query_error)?;
    let clean_session = flag(query.clean_session.as_deref(), "cleanSession")?;
    let prevent_will = flag(query.prevent_will_message.as_deref(), "preventWillMessage")?;
    if !plane
        .broker()?
        .delete_connection(&client_id, clean_session, prevent_will)
    {
        return Err(not_connected(&client_id));
    }
    Ok(json_response(StatusCode::OK, Vec::new(), &request_id()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListSubscriptionsQuery {
    next_token: Option<String>,
    max_results: Option<String>,
}

/// ListSubscriptions: `subscriptions` (`topicFilter`, `qos`) of the client's session, live or an offline
/// persistent one, in filter order; 404 when it has no session.
pub(crate) async fn list_subscriptions(
    State(plane): State<DataPlane>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListSubscriptionsQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let client_id = client_id(path)?;
    let Query(query) = query.map_err(query_error)?;
    let limit = page_size(query.max_results.as_deref(), DEFAULT_SUBSCRIPTIONS_PAGE)?;
    let after = query
        .next_token
        .as_deref()
        .map(PageToken::decode)
        .transpose()?;
    let subscriptions = plane
        .broker()?
        .subscriptions(&client_id)
        .ok_or_else(|| not_connected(&client_id))?;
    let remaining: Vec<_> = subscriptions
        .into_iter()
        .filter(|(filter, _)| {
            after
                .as_ref()
                .is_none_or(|token| filter.as_str() > token.key())
        })
        .collect();
    let more = remaining.len() > limit;
    let page = &remaining[..remaining.len().min(limit)];
    let mut body = Map::new();
    body.insert(
        "subscriptions".into(),
        Value::Array(
            page.iter()
                .map(|(filter, qos)| json!({"topicFilter": filter, "qos": qos.level()}))
                .collect(),
        ),
    );
    if more && let Some((last, _)) = page.last() {
        body.insert("nextToken".into(), json!(PageToken::encode(last)));
    }
    Ok(ok_json(&Value::Object(body)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendDirectMessageQuery {
    topic: Option<String>,
    confirmation: Option<String>,
    timeout: Option<String>,
    content_type: Option<String>,
    response_topic: Option<String>,
}

impl From<DirectMessageError> for DataPlaneError {
    fn from(error: DirectMessageError) -> Self {
        let (status, exception) = match &error {
            DirectMessageError::NotConnected(_) => (404, "ResourceNotFoundException"),
            DirectMessageError::NotAuthorized(_) => (403, "ForbiddenException"),
            DirectMessageError::Busy => (429, "ThrottlingException"),
            DirectMessageError::Timeout | DirectMessageError::ConnectionEnded => {
                (504, "GatewayTimeoutException")
            }
        };
        DataPlaneError {
            status,
            exception,
            message: error.to_string(),
        }
    }
}

/// SendDirectMessage (AWS's Direct Messaging guide): one message to one connected client, QoS 1 and wait
/// for its PUBACK with `confirmation=true` (504 GatewayTimeoutException after `timeout` seconds), else QoS 0.
/// The sender's `iot:SendDirectMessage` is not evaluated (requests are not authenticated, like every
/// data-plane call here); the receiver's `iot:Receive` is, and a denial is 403. MQTT 5 properties are
/// validated and dropped (the broker speaks 3.1.1; AWS drops them for 3.1.1 receivers too).
pub(crate) async fn send_direct_message(
    State(plane): State<DataPlane>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<SendDirectMessageQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DataPlaneError> {
    let client_id = client_id(path)?;
    let Query(query) = query.map_err(query_error)?;
    let payload = body.map_err(body_error)?;
    let topic = query
        .topic
        .as_deref()
        .ok_or_else(|| DataPlaneError::invalid_request("topic is required"))?;
    check_publish_topic(topic, false)?;
    let confirmation = flag(query.confirmation.as_deref(), "confirmation")?;
    let timeout_secs = match query.timeout.as_deref() {
        None => DEFAULT_DIRECT_TIMEOUT_SECS,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|secs| DIRECT_TIMEOUT_RANGE_SECS.contains(secs))
            .ok_or_else(|| {
                DataPlaneError::invalid_request("timeout must be an integer between 1 and 15")
            })?,
    };
    mqtt5_properties(
        query.content_type.as_deref(),
        query.response_topic.as_deref(),
        None,
        &headers,
        &payload,
    )?;
    plane
        .broker()?
        .send_direct_message(
            &client_id,
            topic,
            payload,
            confirmation,
            Duration::from_secs(timeout_secs),
            Origin::Service {
                name: DATA_PLANE_SERVICE_NAME.to_owned(),
            },
        )
        .await?;
    let trace_id = request_id();
    let body = json!({ "message": "OK", "traceId": trace_id }).to_string();
    Ok(json_response(StatusCode::OK, body.into_bytes(), &trace_id))
}

//! `GET /_emulator/subscribe?filter=<filter>&filter=...`: a live tail of the broker's traffic as
//! newline-delimited JSON, for `iot-emulator subscribe` (and anything that reads NDJSON over HTTP). Not an
//! AWS operation, hence the `_emulator` prefix, which no AWS data-plane path uses.
//!
//! It is an observer ([`crate::broker::Broker::observe`]): a service identity outside device policies,
//! lossy by design. Each line is one of
//!
//! ```json
//! {"timestamp":1764694302123,"topic":"data/ratchet/temperature","qos":0,"retain":false,
//!  "publisher":{"clientId":"ratchet"},"payload":"{\"celsius\":41.2}"}
//! {"dropped":12}
//! {"heartbeat":1764694317123}
//! ```
//!
//! `payload` is the payload when it is UTF-8, else `payloadBase64`. `publisher` is `{"clientId"}` for a
//! device, `{"service"}` for an in-process service (the shadow service, the data plane, a rule's
//! republish) and `{"broker":true}` for what the broker publishes (lifecycle events, wills carry the
//! device's client id). `dropped` (the running total) comes before the next line whenever the observer
//! missed messages for being at its bound. A heartbeat is sent after [`HEARTBEAT`] without traffic, so a
//! reader (and any proxy) can tell a quiet broker from a dead connection.
//!
//! Filters are percent-decoded but `+` is not read as a space: `+` is MQTT's single-level wildcard.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::DataPlane;
use super::error::DataPlaneError;
use crate::broker::{BrokerError, Message, Observation, ObserverBound, Origin};

/// The path of the tail.
pub const SUBSCRIBE_PATH: &str = "/_emulator/subscribe";

/// The longest quiet time on a tail before a heartbeat line.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Who published an observed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObservedPublisher {
    ClientId(String),
    Service(String),
    Broker(bool),
}

/// One message as a watcher sees it: the wire form of the tail's message lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedMessage {
    pub timestamp: i64,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub publisher: ObservedPublisher,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

impl From<&Message> for ObservedMessage {
    fn from(message: &Message) -> Self {
        let (payload, payload_base64) = match std::str::from_utf8(&message.payload) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(BASE64.encode(&message.payload))),
        };
        ObservedMessage {
            timestamp: message.timestamp_ms,
            topic: message.topic.clone(),
            qos: message.qos as u8,
            retain: message.retain,
            publisher: match &message.origin {
                Origin::Device { client_id, .. } => ObservedPublisher::ClientId(client_id.clone()),
                Origin::Service { name } => ObservedPublisher::Service(name.clone()),
                Origin::Broker => ObservedPublisher::Broker(true),
            },
            payload,
            payload_base64,
        }
    }
}

/// The topic filters of a query string: every `filter=` value, percent-decoded (a `+` stays a `+`).
pub fn filters_from_query(query: &str) -> Result<Vec<String>, DataPlaneError> {
    let mut filters = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "filter" {
            return Err(DataPlaneError::invalid_request(format!(
                "unknown query parameter {name:?}; the only one is filter"
            )));
        }
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| DataPlaneError::invalid_request("a filter is not UTF-8"))?;
        filters.push(value.into_owned());
    }
    if filters.is_empty() {
        return Err(DataPlaneError::invalid_request(
            "give at least one topic filter: ?filter=<filter>",
        ));
    }
    Ok(filters)
}

pub(crate) async fn subscribe(
    State(data_plane): State<DataPlane>,
    RawQuery(query): RawQuery,
) -> Response {
    match start(&data_plane, query.as_deref().unwrap_or_default()) {
        Ok(observation) => stream(observation),
        Err(error) => error.into_response(),
    }
}

fn start(data_plane: &DataPlane, query: &str) -> Result<Observation, DataPlaneError> {
    let filters = filters_from_query(query)?;
    data_plane
        .broker()?
        .observe(&filters, ObserverBound::default())
        .map_err(|error| match error {
            BrokerError::TooManyObservers(_) => DataPlaneError {
                status: 429,
                exception: "LimitExceededException",
                message: error.to_string(),
            },
            BrokerError::ShutDown => DataPlaneError::no_broker(),
            other => DataPlaneError::invalid_request(other.to_string()),
        })
}

struct Tail {
    observation: Observation,
    dropped_reported: u64,
    /// A message taken while a `dropped` line went out first.
    pending: Option<Message>,
}

fn json_line(value: &impl Serialize) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn stream(observation: Observation) -> Response {
    let tail = Tail {
        observation,
        dropped_reported: 0,
        pending: None,
    };
    let lines = futures_util::stream::unfold(tail, |mut tail| async move {
        let line = match tail.pending.take() {
            Some(message) => json_line(&ObservedMessage::from(&message)),
            None => {
                let next = tokio::time::timeout(HEARTBEAT, tail.observation.recv()).await;
                match next {
                    Ok(None) => return None,
                    Ok(Some(message)) => {
                        let dropped = tail.observation.dropped();
                        if dropped > tail.dropped_reported {
                            tail.dropped_reported = dropped;
                            tail.pending = Some(message);
                            json_line(&serde_json::json!({ "dropped": dropped }))
                        } else {
                            json_line(&ObservedMessage::from(&message))
                        }
                    }
                    Err(_) => {
                        let dropped = tail.observation.dropped();
                        if dropped > tail.dropped_reported {
                            tail.dropped_reported = dropped;
                            json_line(&serde_json::json!({ "dropped": dropped }))
                        } else {
                            json_line(
                                &serde_json::json!({ "heartbeat": crate::clock::now_millis() }),
                            )
                        }
                    }
                }
            }
        };
        Some((Ok::<_, Infallible>(line), tail))
    });
    let mut response = (StatusCode::OK, Body::from_stream(lines)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_percent_decoded_and_plus_stays_a_wildcard() {
        assert_eq!(
            filters_from_query("filter=data/+/temperature&filter=%24aws%2Fevents%2F%23").unwrap(),
            ["data/+/temperature", "$aws/events/#"]
        );
        assert_eq!(filters_from_query("").unwrap_err().status, 400);
        assert_eq!(filters_from_query("topic=a").unwrap_err().status, 400);
        assert_eq!(filters_from_query("filter=%FF").unwrap_err().status, 400);
    }

    #[test]
    fn binary_payloads_are_base64_and_publishers_are_named() {
        let message = Message {
            topic: "t".into(),
            payload: bytes::Bytes::from_static(&[0xff, 0x00]),
            qos: crate::broker::Qos::AtLeastOnce,
            retain: true,
            origin: Origin::Device {
                client_id: "ratchet".into(),
                principal: "p".into(),
                session_identifier: "s".into(),
            },
            is_will: false,
            timestamp_ms: 5,
        };
        let line: serde_json::Value =
            serde_json::to_value(ObservedMessage::from(&message)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"timestamp":5,"topic":"t","qos":1,"retain":true,
                "publisher":{"clientId":"ratchet"},"payloadBase64":"/wA="})
        );
    }
}

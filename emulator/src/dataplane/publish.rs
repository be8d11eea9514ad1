//! `POST /topics/{topic}?qos=&retain=&contentType=&responseTopic=&messageExpiry=` with the MQTT 5
//! headers (reference 3.10), as `aws-sdk-iotdataplane` 1.120 sends it (`operation/publish.rs`,
//! `protocol_serde/shape_publish.rs`): the topic is percent-encoded in the path, the body is the payload.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use iot_sql::{TopicError, TopicLimits};
use serde::Deserialize;
use serde_json::{Value, json};

use super::DataPlane;
use super::error::{DataPlaneError, json_response, request_id};
use super::shadow::body_error;
use crate::broker::{TopicError as BrokerTopicError, check_client_topic_name};
use crate::publish::{Mqtt5Properties, OutboundMessage, Qos};

/// AWS's topic limits (reference 6.5), as iot-sql's topic rules define them for the broker too.
pub use iot_sql::{MAX_TOPIC_BYTES, MAX_TOPIC_SLASHES};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublishQuery {
    qos: Option<String>,
    retain: Option<String>,
    content_type: Option<String>,
    response_topic: Option<String>,
    message_expiry: Option<String>,
}

/// Publishers cannot use wildcards, and topics have size and depth limits (reference 6.2, 6.5; the
/// Basic Ingest prefix does not count, reference 5.9). The rules are iot-sql's, shared with the broker;
/// the texts are the data plane's own.
pub(crate) fn validate_topic(topic: &str, what: &str) -> Result<(), DataPlaneError> {
    TopicLimits::AWS
        .check_topic_name(topic)
        .map_err(|error| invalid_topic(error, what))
}

fn invalid_topic(error: TopicError, what: &str) -> DataPlaneError {
    DataPlaneError::invalid_request(match error {
        TopicError::Empty => format!("{what} must not be empty"),
        TopicError::WildcardInTopicName => format!("{what} must not contain wildcard characters"),
        TopicError::TooLong(..) => format!("{what} exceeds {MAX_TOPIC_BYTES} bytes"),
        TopicError::TooDeep(..) => {
            format!("{what} has more than {MAX_TOPIC_SLASHES} forward slashes")
        }
        TopicError::Filter(error) => format!("{what}: {error}"),
    })
}

/// The topic of an HTTP Publish: AWS treats it as a client's publish, so the broker's one rule for client
/// topics decides ([`check_client_topic_name`]): reserved topics only AWS publishes (lifecycle events,
/// shadow responses, reference 6.2) and retained messages on reserved topics (6.3) are refused with 403
/// ForbiddenException, before anything reaches the broker or the rules.
pub(crate) fn check_publish_topic(topic: &str, retain: bool) -> Result<(), DataPlaneError> {
    check_client_topic_name(topic, retain, &TopicLimits::AWS).map_err(|error| match error {
        BrokerTopicError::Invalid(error) => invalid_topic(error, "Topic"),
        refused @ (BrokerTopicError::ReservedTopic(_)
        | BrokerTopicError::RetainOnReservedTopic
        | BrokerTopicError::SharedSubscription) => DataPlaneError::forbidden(refused.to_string()),
    })
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, DataPlaneError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| DataPlaneError::invalid_request(format!("Invalid {name} header")))
        })
        .transpose()
}

/// `x-amz-mqtt5-user-properties`: base64 of a JSON array of objects, e.g. `[{"deviceName":"alpha"}]`.
fn user_properties(encoded: &str) -> Result<Vec<(String, String)>, DataPlaneError> {
    let invalid = || DataPlaneError::invalid_request("Invalid userProperties");
    let decoded = BASE64.decode(encoded).map_err(|_| invalid())?;
    let Value::Array(entries) = serde_json::from_slice(&decoded).map_err(|_| invalid())? else {
        return Err(invalid());
    };
    let mut properties = Vec::new();
    for entry in entries {
        let Value::Object(map) = entry else {
            return Err(invalid());
        };
        for (key, value) in map {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            properties.push((key, value));
        }
    }
    Ok(properties)
}

/// The MQTT 5 properties of Publish and SendDirectMessage: query parameters and `x-amz-mqtt5-*` headers.
pub(crate) fn mqtt5_properties(
    content_type: Option<&str>,
    response_topic: Option<&str>,
    message_expiry: Option<&str>,
    headers: &HeaderMap,
    payload: &[u8],
) -> Result<Mqtt5Properties, DataPlaneError> {
    if let Some(response_topic) = response_topic {
        validate_topic(response_topic, "responseTopic")?;
    }
    let message_expiry_secs = message_expiry
        .map(|text| {
            text.parse::<u64>()
                .map_err(|_| DataPlaneError::invalid_request("Invalid messageExpiry"))
        })
        .transpose()?;
    let payload_is_utf8 = match header_text(headers, "x-amz-mqtt5-payload-format-indicator")? {
        None => None,
        Some("UNSPECIFIED_BYTES") => Some(false),
        Some("UTF8_DATA") => {
            if std::str::from_utf8(payload).is_err() {
                return Err(DataPlaneError::invalid_request(
                    "Payload is not UTF-8 but payloadFormatIndicator is UTF8_DATA",
                ));
            }
            Some(true)
        }
        Some(_) => {
            return Err(DataPlaneError::invalid_request(
                "Invalid payloadFormatIndicator",
            ));
        }
    };
    let correlation_data = header_text(headers, "x-amz-mqtt5-correlation-data")?
        .map(|encoded| {
            BASE64
                .decode(encoded)
                .map_err(|_| DataPlaneError::invalid_request("Invalid correlationData"))
        })
        .transpose()?;
    let user_properties = header_text(headers, "x-amz-mqtt5-user-properties")?
        .map(user_properties)
        .transpose()?
        .unwrap_or_default();
    Ok(Mqtt5Properties {
        content_type: content_type.map(str::to_owned),
        response_topic: response_topic.map(str::to_owned),
        message_expiry_secs,
        correlation_data,
        user_properties,
        payload_is_utf8,
    })
}

/// Publish (reference 3.10): `qos` 0 or 1 (default 0), `retain` default false, answered with
/// `{"message":"OK","traceId":...}`. The message goes to the broker through the [`crate::publish::Publisher`].
pub(crate) async fn publish(
    State(plane): State<DataPlane>,
    topic: Result<Path<String>, PathRejection>,
    query: Result<Query<PublishQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DataPlaneError> {
    let Path(topic) =
        topic.map_err(|rejection| DataPlaneError::invalid_request(rejection.body_text()))?;
    let Query(query) =
        query.map_err(|rejection| DataPlaneError::invalid_request(rejection.body_text()))?;
    let payload = body.map_err(body_error)?;
    let qos = match query.qos.as_deref() {
        None => Qos::AtMostOnce,
        Some(level) => level
            .parse::<u8>()
            .ok()
            .and_then(Qos::from_level)
            .ok_or_else(|| DataPlaneError::invalid_request("Invalid qos: must be 0 or 1"))?,
    };
    let retain = match query.retain.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(DataPlaneError::invalid_request("Invalid retain value")),
    };
    check_publish_topic(&topic, retain)?;
    let properties = mqtt5_properties(
        query.content_type.as_deref(),
        query.response_topic.as_deref(),
        query.message_expiry.as_deref(),
        &headers,
        &payload,
    )?;
    plane.publisher.publish(OutboundMessage {
        topic,
        payload: payload.to_vec(),
        qos,
        retain,
        properties,
    })?;
    let trace_id = request_id();
    let body = json!({ "message": "OK", "traceId": trace_id }).to_string();
    Ok(json_response(StatusCode::OK, body.into_bytes(), &trace_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data plane used to count the Basic Ingest prefix against the limits; AWS does not
    /// (reference 5.9, 6.5), and neither does the broker the message goes to.
    #[test]
    fn basic_ingest_prefix_does_not_count_against_the_topic_limits() {
        let deep = "$aws/rules/r/a/b/c/d/e/f/g/h";
        assert!(validate_topic(deep, "Topic").is_ok());
        let long = format!("$aws/rules/r/{}", "x".repeat(MAX_TOPIC_BYTES));
        assert!(validate_topic(&long, "Topic").is_ok());
        assert!(validate_topic(&format!("{long}x"), "Topic").is_err());
        assert!(validate_topic("a/b/c/d/e/f/g/h/i", "Topic").is_err());
        assert!(validate_topic("a/+", "Topic").is_err());
    }

    #[test]
    fn topics_only_aws_publishes_are_forbidden() {
        for topic in [
            "$aws/events/presence/connected/ghost",
            "$aws/things/t/shadow/update/accepted",
            "$aws/things/t/shadow/name/n/update/delta",
        ] {
            assert_eq!(check_publish_topic(topic, false).unwrap_err().status, 403);
        }
        assert_eq!(
            check_publish_topic("$aws/things/t/shadow/update", true)
                .unwrap_err()
                .exception,
            "ForbiddenException"
        );
        assert!(check_publish_topic("$aws/things/t/shadow/update", false).is_ok());
        assert_eq!(check_publish_topic("a/#", false).unwrap_err().status, 400);
    }
}

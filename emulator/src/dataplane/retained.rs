//! `GET /retainedMessage/{topic}` (GetRetainedMessage) and `GET /retainedMessage?maxResults=&nextToken=`
//! (ListRetainedMessages), as the `iot-data` model (2015-05-28) and `aws-sdk-iotdataplane` define them, read
//! from the broker's retained messages (reference 6.3).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::DataPlane;
use super::error::DataPlaneError;
use super::paging::{PageToken, page_size};
use super::shadow::ok_json;

/// ListRetainedMessages' page size when `maxResults` is absent: AWS documents none, so its maximum.
const DEFAULT_RETAINED_PAGE: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    next_token: Option<String>,
    max_results: Option<String>,
}

/// GetRetainedMessage: `topic`, `payload` (base64), `qos`, `lastModifiedTime` (ms). `userProperties` is
/// never present: the broker speaks MQTT 3.1.1, and HTTP Publish's MQTT 5 properties are not kept.
pub(crate) async fn get_retained_message(
    State(plane): State<DataPlane>,
    topic: Result<Path<String>, PathRejection>,
) -> Result<Response, DataPlaneError> {
    let Path(topic) =
        topic.map_err(|rejection| DataPlaneError::invalid_request(rejection.body_text()))?;
    let broker = plane.broker()?;
    let message = broker.retained_message(&topic).ok_or_else(|| {
        DataPlaneError::not_found(format!("No retained message exists for topic {topic}"))
    })?;
    Ok(ok_json(&json!({
        "topic": message.topic,
        "payload": BASE64.encode(&message.payload),
        "qos": message.qos.level(),
        "lastModifiedTime": message.timestamp_ms,
    })))
}

/// ListRetainedMessages: `retainedTopics` (topic, payloadSize, qos, lastModifiedTime) in topic order and
/// `nextToken` while more follow.
pub(crate) async fn list_retained_messages(
    State(plane): State<DataPlane>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let Query(query) =
        query.map_err(|rejection| DataPlaneError::invalid_request(rejection.body_text()))?;
    let limit = page_size(query.max_results.as_deref(), DEFAULT_RETAINED_PAGE)?;
    let after = query
        .next_token
        .as_deref()
        .map(PageToken::decode)
        .transpose()?;
    let broker = plane.broker()?;
    let (page, next) = broker.retained_messages(after.as_ref().map(PageToken::key), limit);
    let retained_topics: Vec<Value> = page
        .into_iter()
        .map(|summary| {
            json!({
                "topic": summary.topic,
                "payloadSize": summary.payload_size,
                "qos": summary.qos.level(),
                "lastModifiedTime": summary.last_modified_ms,
            })
        })
        .collect();
    let mut body = Map::new();
    body.insert("retainedTopics".into(), Value::Array(retained_topics));
    if let Some(next) = next {
        body.insert("nextToken".into(), Value::String(PageToken::encode(&next)));
    }
    Ok(ok_json(&Value::Object(body)))
}

//! The disconnect record, schema `iot.disconnect.v1` (architecture section 3).
//!
//! One JSON log event per disconnect signal, in log group `/iot/device-disconnects`, stream = thing
//! name. Each record carries an Embedded Metric Format block so CloudWatch turns the log into the
//! metric `IotPresence/Disconnects` by `Reason`, and the same metric without dimensions (all reasons
//! together, what the disconnect-storm alarm watches), without any other service.

use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::lifecycle::DisconnectedEvent;
use crate::signal::MalformedInput;
use crate::will::WillRuleEvent;

pub const SCHEMA_V1: &str = "iot.disconnect.v1";
pub const EMF_NAMESPACE: &str = "IotPresence";
pub const EMF_METRIC: &str = "Disconnects";
/// `reason` of a will record: the broker published the device's Last Will.
pub const REASON_LAST_WILL: &str = "LAST_WILL";
/// `reason` of a record made from input that could not be understood.
pub const REASON_MALFORMED: &str = "MALFORMED";
/// `reason` of a lifecycle disconnect that carried no `disconnectReason`.
pub const REASON_UNSPECIFIED: &str = "UNSPECIFIED";
/// Stream for malformed input that names no thing.
pub const UNKNOWN_THING_STREAM: &str = "_unknown";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordSource {
    Lifecycle,
    Will,
    Unknown,
}

/// One disconnect signal, as written to CloudWatch Logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectRecord {
    pub schema: &'static str,
    /// Same signal, same id: retried invocations and duplicated lifecycle events can be
    /// de-duplicated downstream.
    pub record_id: String,
    pub thing: Option<String>,
    pub client_id: Option<String>,
    pub source: RecordSource,
    /// AWS's `disconnectReason`, or [`REASON_LAST_WILL`] / [`REASON_MALFORMED`].
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_initiated: Option<bool>,
    /// True only for a disconnect the device asked for.
    pub expected: bool,
    /// When the disconnect happened, ms since the epoch, as far as the signal says.
    pub event_time: Option<i64>,
    /// When our system received the signal, ms since the epoch.
    pub received_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The will's own `reason` field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_reason: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub malformed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The original input, base64, for malformed records only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

impl DisconnectRecord {
    /// A record of a lifecycle `disconnected` event, received at `now_ms`.
    pub fn from_lifecycle(event: &DisconnectedEvent, now_ms: i64) -> Self {
        let reason = event
            .disconnect_reason
            .as_ref()
            .map_or_else(|| REASON_UNSPECIFIED.to_owned(), ToString::to_string);
        let client_initiated = event.is_client_initiated();
        Self {
            schema: SCHEMA_V1,
            // One session has exactly one disconnect, so AWS's duplicates of it share the id.
            record_id: record_id(&[
                b"lifecycle",
                event.client_id.as_bytes(),
                event.session_identifier.as_bytes(),
                event.version_number.to_string().as_bytes(),
            ]),
            thing: Some(
                event
                    .thing_name
                    .clone()
                    .unwrap_or_else(|| event.client_id.clone()),
            ),
            client_id: Some(event.client_id.clone()),
            source: RecordSource::Lifecycle,
            reason,
            client_initiated: Some(client_initiated),
            expected: client_initiated,
            event_time: Some(event.timestamp),
            received_at: now_ms,
            session_identifier: Some(event.session_identifier.clone()),
            version_number: Some(event.version_number),
            principal: event.principal_identifier.clone(),
            agent_session: None,
            agent_version: None,
            will_reason: None,
            malformed: false,
            error: None,
            payload_base64: None,
        }
    }

    /// A record of a Last Will delivered by the `DisconnectWill` rule.
    pub fn from_will(event: &WillRuleEvent) -> Self {
        let will = &event.will;
        Self {
            schema: SCHEMA_V1,
            // A will belongs to one connection of one agent session.
            record_id: record_id(&[
                b"will",
                will.thing.as_bytes(),
                will.agent_session.as_bytes(),
                will.connected_at.to_string().as_bytes(),
            ]),
            thing: Some(will.thing.clone()),
            client_id: Some(event.client_id.clone()),
            source: RecordSource::Will,
            reason: REASON_LAST_WILL.to_owned(),
            client_initiated: Some(false),
            expected: false,
            // The broker publishes the will when it notices the loss; the rule stamps that time.
            event_time: Some(event.received_at),
            received_at: event.received_at,
            session_identifier: None,
            version_number: None,
            principal: None,
            agent_session: Some(will.agent_session.clone()),
            agent_version: Some(will.agent_version.clone()),
            will_reason: Some(will.reason.clone()),
            malformed: false,
            error: None,
            payload_base64: None,
        }
    }

    /// A record of input that could not be understood: never a silent drop.
    pub fn from_malformed(input: &MalformedInput, now_ms: i64) -> Self {
        let source = match input.shape {
            "lifecycle" => RecordSource::Lifecycle,
            "will" => RecordSource::Will,
            _ => RecordSource::Unknown,
        };
        Self {
            schema: SCHEMA_V1,
            record_id: record_id(&[b"malformed", &input.raw]),
            thing: input.thing.clone(),
            client_id: input.client_id.clone(),
            source,
            reason: REASON_MALFORMED.to_owned(),
            client_initiated: None,
            expected: false,
            event_time: None,
            received_at: now_ms,
            session_identifier: None,
            version_number: None,
            principal: None,
            agent_session: None,
            agent_version: None,
            will_reason: None,
            malformed: true,
            error: Some(input.error.clone()),
            payload_base64: Some(base64::engine::general_purpose::STANDARD.encode(&input.raw)),
        }
    }

    /// The CloudWatch Logs stream this record belongs in: the thing's name.
    ///
    /// Stream names may not contain `:` or `*`, which thing names may (`:`), so those two are
    /// percent-encoded; a record without a thing goes to [`UNKNOWN_THING_STREAM`].
    pub fn log_stream(&self) -> String {
        match self.thing.as_deref() {
            Some(thing) if !thing.is_empty() => thing
                .chars()
                .take(512)
                .map(|c| match c {
                    ':' => "%3A".to_owned(),
                    '*' => "%2A".to_owned(),
                    c => c.to_string(),
                })
                .collect(),
            _ => UNKNOWN_THING_STREAM.to_owned(),
        }
    }

    /// The log event message: the record plus its Embedded Metric Format block.
    pub fn to_log_message(&self, now_ms: i64) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert(
                "_aws".into(),
                json!({
                    "Timestamp": now_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": EMF_NAMESPACE,
                        // The empty set publishes the fleet-wide total too: CloudWatch
                        // alarms cannot sum over a dimension's values (no SEARCH in alarms).
                        "Dimensions": [["Reason"], []],
                        "Metrics": [{"Name": EMF_METRIC, "Unit": "Count"}],
                    }],
                }),
            );
            // EMF reads dimension and metric values from root members of the same names.
            map.insert("Reason".into(), Value::String(self.reason.clone()));
            map.insert(EMF_METRIC.into(), json!(1));
        }
        value.to_string()
    }
}

/// 128 bits of SHA-256 over the length-prefixed parts, as 32 hex characters.
fn record_id(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(&hasher.finalize()[..16])
}

//! The CloudWatch Logs data model: the awsJson1.1 request and response shapes (camelCase), so the HTTP
//! front-end only dispatches and in-process callers (the rules engine's CloudWatch Logs action and error
//! action, reference 5.5, 5.6) get exactly what an SDK client would; and the event as the store keeps it.

use serde::{Deserialize, Serialize};

/// One event of a PutLogEvents request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLogEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// PutLogEvents response; `rejectedLogEventsInfo` lists the events refused individually for their
/// time (end indices are exclusive, the start index inclusive, as in the AWS API reference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    /// AWS ignores sequence tokens now but still returns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sequence_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_new_log_event_start_index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_old_log_event_end_index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_log_event_end_index: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsRequest {
    #[serde(default)]
    pub log_group_name_prefix: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupDescription {
    pub log_group_name: String,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<u32>,
    pub metric_filter_count: u32,
    pub arn: String,
    pub log_group_arn: String,
    pub stored_bytes: u64,
    pub log_group_class: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsResponse {
    pub log_groups: Vec<LogGroupDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsRequest {
    #[serde(default)]
    pub log_group_name: Option<String>,
    /// A name or an ARN; either this or `logGroupName`.
    #[serde(default)]
    pub log_group_identifier: Option<String>,
    #[serde(default)]
    pub log_stream_name_prefix: Option<String>,
    /// `LogStreamName` (default) or `LastEventTime`.
    #[serde(default)]
    pub order_by: Option<String>,
    #[serde(default)]
    pub descending: Option<bool>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamDescription {
    pub log_stream_name: String,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    pub arn: String,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsResponse {
    pub log_streams: Vec<LogStreamDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsRequest {
    #[serde(default)]
    pub log_group_name: Option<String>,
    #[serde(default)]
    pub log_group_identifier: Option<String>,
    pub log_stream_name: String,
    /// Inclusive, milliseconds since the epoch.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// Exclusive, milliseconds since the epoch.
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Without a token: read from the oldest event (`true`) or the newest (`false`, AWS's default).
    #[serde(default)]
    pub start_from_head: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
}

/// A GetLogEvents page. Following `nextForwardToken` until it comes back unchanged reads the stream to
/// its end, as with AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsResponse {
    pub events: Vec<OutputLogEvent>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsRequest {
    #[serde(default)]
    pub log_group_name: Option<String>,
    #[serde(default)]
    pub log_group_identifier: Option<String>,
    #[serde(default)]
    pub log_stream_names: Option<Vec<String>>,
    #[serde(default)]
    pub log_stream_name_prefix: Option<String>,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
    /// See [`super::FilterPattern`] for the supported syntax.
    #[serde(default)]
    pub filter_pattern: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    pub log_stream_name: String,
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    pub event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchedLogStream {
    pub log_stream_name: String,
    pub searched_completely: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsResponse {
    pub events: Vec<FilteredLogEvent>,
    pub searched_log_streams: Vec<SearchedLogStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// An event as stored, one JSON line of a stream's events (see [`super::event_log`]): `seq` is unique
/// across the store and orders events with equal timestamps, so pagination tokens stay valid while new
/// events arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredEvent {
    pub(crate) timestamp: i64,
    pub(crate) ingestion_time: i64,
    pub(crate) seq: u64,
    pub(crate) message: String,
}

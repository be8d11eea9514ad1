//! A local CloudWatch Logs: the API our functions and the rules engine write to, and that a user reads
//! with the AWS CLI (`aws --endpoint-url http://127.0.0.1:<port> logs get-log-events ...`).
//!
//! - [`LogsStore`] owns the state (groups, streams, events), in memory or in a state directory
//!   (append-only JSON lines per stream, indexed on start; only the index is in memory, messages are
//!   read from the files). In-process writers such as the rules engine's CloudWatch Logs action
//!   (reference 5.6) call it directly. Its parts: `model` (the awsJson1.1 shapes), `validation` (AWS's
//!   checks), `paging` (tokens, page cutting), `event_log` (the per-event index and reading the lines),
//!   `store` (the state and the operations), `persist` (the state directory).
//! - [`LogsService::router`] serves the awsJson1.1 API for the AWS SDK and CLI.
//! - [`FilterPattern`] (crate `logs-filter`) is the supported subset of CloudWatch filter patterns.
//!
//! Operations: CreateLogGroup, DeleteLogGroup, CreateLogStream, DeleteLogStream, DescribeLogGroups,
//! DescribeLogStreams, PutLogEvents, GetLogEvents, FilterLogEvents, PutRetentionPolicy,
//! DeleteRetentionPolicy.

mod api;
mod error;
mod event_log;
mod model;
mod paging;
mod persist;
mod store;
mod validation;

pub use api::LogsService;
pub use error::LogsError;
pub use event_log::INDEX_ENTRY_BYTES;
pub use logs_filter::FilterPattern;
pub use model::{
    DescribeLogGroupsRequest, DescribeLogGroupsResponse, DescribeLogStreamsRequest,
    DescribeLogStreamsResponse, FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent,
    GetLogEventsRequest, GetLogEventsResponse, InputLogEvent, LogGroupDescription,
    LogStreamDescription, OutputLogEvent, PutLogEventsResponse, RejectedLogEventsInfo,
    SearchedLogStream,
};
pub use paging::MAX_EVENTS_PER_PAGE;
pub use store::{LogsIdentity, LogsStore};
pub use validation::{
    EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_SPAN_MS, MAX_EVENT_AGE_MS,
    MAX_EVENT_FUTURE_MS, MAX_EVENTS_PER_BATCH, RETENTION_DAYS,
};

/// The emulator's clock, re-exported for writers that timestamp their log events.
pub use crate::clock::now_millis;

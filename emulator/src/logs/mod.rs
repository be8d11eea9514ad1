//! A local CloudWatch Logs: the API our functions and the rules engine write to, and that a user reads
//! with the AWS CLI (`aws --endpoint-url http://127.0.0.1:<port> logs get-log-events ...`).
//!
//! - [`LogsStore`] owns the state (groups, streams, events), in memory or in a state directory
//!   (append-only JSON lines per stream, reloaded on start). In-process writers such as the rules
//!   engine's CloudWatch Logs action (reference 5.6) call it directly.
//! - [`LogsService::router`] serves the awsJson1.1 API for the AWS SDK and CLI.
//! - [`FilterPattern`] is the supported subset of CloudWatch filter patterns.
//!
//! Operations: CreateLogGroup, DeleteLogGroup, CreateLogStream, DeleteLogStream, DescribeLogGroups,
//! DescribeLogStreams, PutLogEvents, GetLogEvents, FilterLogEvents, PutRetentionPolicy,
//! DeleteRetentionPolicy.

mod api;
mod error;
mod filter;
mod persist;
mod store;

pub use api::LogsService;
pub use error::LogsError;
pub use filter::FilterPattern;
pub use store::{
    DescribeLogGroupsRequest, DescribeLogGroupsResponse, DescribeLogStreamsRequest,
    DescribeLogStreamsResponse, EVENT_OVERHEAD_BYTES, FilterLogEventsRequest,
    FilterLogEventsResponse, FilteredLogEvent, GetLogEventsRequest, GetLogEventsResponse,
    InputLogEvent, LogGroupDescription, LogStreamDescription, LogsIdentity, LogsStore,
    MAX_BATCH_BYTES, MAX_BATCH_SPAN_MS, MAX_EVENT_AGE_MS, MAX_EVENT_FUTURE_MS,
    MAX_EVENTS_PER_BATCH, MAX_EVENTS_PER_PAGE, OutputLogEvent, PutLogEventsResponse,
    RETENTION_DAYS, RejectedLogEventsInfo, SearchedLogStream,
};

/// The emulator's clock, re-exported for writers that timestamp their log events.
pub use crate::clock::now_millis;

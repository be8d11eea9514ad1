//! disconnect-recorder: every disconnect signal becomes one record in CloudWatch Logs.
//!
//! Invoked asynchronously by two IoT rules (architecture section 3): `DisconnectWill` (the broker
//! published a device's Last Will) and `PresenceEvents` (every lifecycle event). Each disconnect
//! signal, a `disconnected` event or a will, becomes one `iot.disconnect.v1` record in the log group
//! `DISCONNECT_LOG_GROUP`, stream = thing name. Other lifecycle events are ignored. Input that is not
//! what the contract promised is still recorded, flagged `malformed`, never dropped.
//!
//! A record that cannot be written fails the invocation once the SDK's retries are spent, so
//! Lambda's async retries and the on-failure destination take over: nothing is lost silently.

mod sink;

use std::time::Duration;

use iot_events::{Classified, DisconnectRecord, IgnoredKind, classify};
use serde::Serialize;
use serde_json::Value;

pub use sink::{LogSink, SinkError};

/// Log group used when `DISCONNECT_LOG_GROUP` is not set.
pub const DEFAULT_LOG_GROUP: &str = "/iot/device-disconnects";

/// How the function answers an invocation (visible in `cargo lambda invoke` and in destinations).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    #[serde(rename_all = "camelCase")]
    Recorded {
        record_id: String,
        log_stream: String,
        reason: String,
        malformed: bool,
    },
    #[serde(rename_all = "camelCase")]
    Ignored { event_type: String },
}

/// The function's dependencies, built once per sandbox at init.
pub struct Recorder {
    sink: LogSink,
}

impl Recorder {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, log_group: impl Into<String>) -> Self {
        Self {
            sink: LogSink::new(client, log_group),
        }
    }

    /// Build the client from the Lambda environment (credentials, region, and any
    /// `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS` override used locally).
    pub async fn from_env() -> Self {
        let config = lambda_init::sdk_config().await;
        let log_group =
            std::env::var("DISCONNECT_LOG_GROUP").unwrap_or_else(|_| DEFAULT_LOG_GROUP.to_owned());
        Self::new(aws_sdk_cloudwatchlogs::Client::new(&config), log_group)
    }

    pub fn log_group(&self) -> &str {
        self.sink.log_group()
    }

    /// Open the HTTPS connection during init, where Lambda does not bill the wait against an
    /// event: the first TLS handshake from a 128 MB function costs most of a second.
    pub async fn warm_up(&self, budget: Duration) {
        self.sink.warm_up(budget).await;
    }

    /// Record one rule output. `now_ms` is the time of receipt.
    pub async fn handle(&self, event: &Value, now_ms: i64) -> Result<Outcome, SinkError> {
        let record = match classify(event) {
            Classified::Disconnected(e) => DisconnectRecord::from_lifecycle(&e, now_ms),
            Classified::Will(w) => DisconnectRecord::from_will(&w),
            Classified::Ignored(kind) => {
                let event_type = match kind {
                    IgnoredKind::Lifecycle(t) => t.to_owned(),
                    IgnoredKind::UnknownEventType(t) => t,
                };
                tracing::debug!(%event_type, "not a disconnect signal; ignored");
                return Ok(Outcome::Ignored { event_type });
            }
            Classified::Malformed(m) => {
                tracing::warn!(
                    shape = m.shape,
                    thing = m.thing.as_deref().unwrap_or("-"),
                    error = %m.error,
                    "malformed input; recording it flagged"
                );
                DisconnectRecord::from_malformed(&m, now_ms)
            }
        };
        let log_stream = record.log_stream();
        self.sink
            .put(&log_stream, now_ms, record.to_log_message(now_ms))
            .await?;
        tracing::info!(
            record_id = %record.record_id,
            thing = record.thing.as_deref().unwrap_or("-"),
            reason = %record.reason,
            source = ?record.source,
            "disconnect recorded"
        );
        Ok(Outcome::Recorded {
            record_id: record.record_id,
            log_stream,
            reason: record.reason,
            malformed: record.malformed,
        })
    }
}

impl From<SinkError> for lambda_runtime::Diagnostic {
    fn from(error: SinkError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.kind().to_owned(),
            error_message: error.to_string(),
        }
    }
}

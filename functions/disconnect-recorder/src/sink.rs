//! Writing one log event into the thing's stream, creating the stream on first use.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, SdkError};
use aws_sdk_cloudwatchlogs::operation::create_log_stream::CreateLogStreamError;
use aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsError;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("PutLogEvents to {group}/{stream} failed: {message}")]
    Put {
        group: String,
        stream: String,
        message: String,
    },
    #[error("CreateLogStream {group}/{stream} failed: {message}")]
    CreateStream {
        group: String,
        stream: String,
        message: String,
    },
    #[error(
        "log group {group} does not exist (the CDK stack creates it; locally, create it first)"
    )]
    MissingLogGroup { group: String },
    #[error("CloudWatch Logs rejected the record for {group}/{stream}: {detail}")]
    Rejected {
        group: String,
        stream: String,
        detail: String,
    },
}

impl SinkError {
    /// `errorType` reported to Lambda.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Put { .. } => "PutLogEventsFailed",
            Self::CreateStream { .. } => "CreateLogStreamFailed",
            Self::MissingLogGroup { .. } => "MissingLogGroup",
            Self::Rejected { .. } => "LogEventRejected",
        }
    }
}

/// One log group in CloudWatch Logs.
pub struct LogSink {
    client: Client,
    group: String,
}

impl LogSink {
    pub fn new(client: Client, group: impl Into<String>) -> Self {
        Self {
            client,
            group: group.into(),
        }
    }

    pub fn log_group(&self) -> &str {
        &self.group
    }

    /// Append one event to `stream`.
    ///
    /// Streams are created lazily: PutLogEvents is tried first (one call in the steady state), and a
    /// `ResourceNotFoundException` creates the stream and tries again. Throttling and 5xx are
    /// retried inside the SDK (see [`crate::retry_config`]).
    pub async fn put(
        &self,
        stream: &str,
        timestamp_ms: i64,
        message: String,
    ) -> Result<(), SinkError> {
        let event = InputLogEvent::builder()
            .timestamp(timestamp_ms)
            .message(message)
            .build()
            .map_err(|e| SinkError::Put {
                group: self.group.clone(),
                stream: stream.to_owned(),
                message: e.to_string(),
            })?;
        match self.put_once(stream, event.clone()).await {
            Err(PutFailure::Sdk(e)) if matches!(&*e, SdkError::ServiceError(e) if e.err().is_resource_not_found_exception()) =>
            {
                self.create_stream(stream).await?;
                self.put_once(stream, event)
                    .await
                    .map_err(|e| self.put_error(stream, e))
            }
            other => other.map_err(|e| self.put_error(stream, e)),
        }
    }

    async fn put_once(&self, stream: &str, event: InputLogEvent) -> Result<(), PutFailure> {
        let output = self
            .client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .log_events(event)
            // Records carry an EMF block; the header makes CloudWatch extract the metric.
            .customize()
            .mutate_request(|request| {
                request
                    .headers_mut()
                    .insert("x-amzn-logs-format", "json/emf");
            })
            .send()
            .await
            .map_err(|e| PutFailure::Sdk(Box::new(e)))?;
        match output.rejected_log_events_info() {
            // Only one event per call, so any rejection means ours.
            Some(rejected) => Err(PutFailure::Rejected(format!("{rejected:?}"))),
            None => Ok(()),
        }
    }

    async fn create_stream(&self, stream: &str) -> Result<(), SinkError> {
        match self
            .client
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(group = %self.group, stream, "log stream created");
                Ok(())
            }
            // Another invocation created it first: that is what we wanted.
            Err(SdkError::ServiceError(e)) if e.err().is_resource_already_exists_exception() => {
                Ok(())
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), CreateLogStreamError::ResourceNotFoundException(_)) =>
            {
                Err(SinkError::MissingLogGroup {
                    group: self.group.clone(),
                })
            }
            Err(e) => Err(SinkError::CreateStream {
                group: self.group.clone(),
                stream: stream.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    fn put_error(&self, stream: &str, failure: PutFailure) -> SinkError {
        match failure {
            PutFailure::Rejected(detail) => SinkError::Rejected {
                group: self.group.clone(),
                stream: stream.to_owned(),
                detail,
            },
            PutFailure::Sdk(error) => SinkError::Put {
                group: self.group.clone(),
                stream: stream.to_owned(),
                message: DisplayErrorContext(&error).to_string(),
            },
        }
    }

    /// Make one cheap call so the connection pool holds an open TLS connection.
    ///
    /// An empty PutLogEvents is the cheapest call the function's role allows (the role may only
    /// create streams and put events): the service rejects it without side effects, and the
    /// answer, whatever it is, proves the connection is up.
    pub async fn warm_up(&self, budget: Duration) {
        let call = self
            .client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name("warm-up")
            .set_log_events(Some(Vec::new()))
            .send();
        match tokio::time::timeout(budget, call).await {
            Ok(_) => tracing::debug!("CloudWatch Logs connection warmed"),
            Err(_) => tracing::warn!(?budget, "CloudWatch Logs warm-up timed out; continuing"),
        }
    }
}

enum PutFailure {
    Sdk(Box<SdkError<PutLogEventsError>>),
    /// The call succeeded but the service refused the event (outside its time window).
    Rejected(String),
}

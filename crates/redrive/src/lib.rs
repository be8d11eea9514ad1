//! Replaying events that failed for good.
//!
//! IoT rules invoke the presence functions asynchronously; an event whose invocation still fails after
//! Lambda's retries goes to the function's on-failure destination, an SQS queue, as a *destination record*
//! (`{"version","timestamp","requestContext":{"functionArn","condition",..},"requestPayload",
//! "responseContext","responsePayload"}`, AWS Lambda developer guide, "Capturing records of asynchronous
//! invocations"). Redrive feeds that queue back to the same function through an SQS event source
//! mapping, so a function is invoked either with a rule's event or with an SQS batch of such records.
//!
//! [`Invocation::from_payload`] tells the two apart; [`replay_batch`] unwraps each record's
//! `requestPayload`, hands it to the function's ordinary handler, and answers with the
//! `batchItemFailures` of the messages that failed (the mapping must report batch item failures), so a
//! good message is deleted from the queue and a bad one stays: a record that cannot be read is a
//! failure, never dropped. Replaying is safe because the handlers are idempotent (deterministic
//! `recordId`s, version-locked shadow writes).

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a function was invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// A rule's output (or anything else that is not an SQS batch): the function's own event.
    Event(Value),
    /// A batch from the redrive mapping.
    Redrive(SqsEvent),
}

impl Invocation {
    /// An SQS batch has `Records` whose items say `"eventSource": "aws:sqs"`; no rule output of this
    /// project has that shape (lifecycle events and wills have no `Records`).
    pub fn from_payload(payload: Value) -> Self {
        if is_sqs_batch(&payload) {
            match serde_json::from_value::<SqsEvent>(payload.clone()) {
                Ok(batch) => return Self::Redrive(batch),
                // Not readable as a batch after all: the handler sees it and records it as malformed.
                Err(error) => {
                    tracing::warn!(%error, "payload looks like an SQS batch but is not one")
                }
            }
        }
        Self::Event(payload)
    }
}

fn is_sqs_batch(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// The parts of a Lambda on-failure destination record that a replay needs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRecord {
    pub request_context: RequestContext,
    /// The event the function was invoked with, as it was.
    pub request_payload: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub request_id: String,
    /// The function that failed, with its qualifier (`...:function:disconnect-recorder:$LATEST`).
    pub function_arn: String,
    /// `RetriesExhausted` or `EventAgeExceeded` (AWS may add others).
    pub condition: String,
    #[serde(default)]
    pub approximate_invoke_count: u32,
}

impl RequestContext {
    /// The function name of `functionArn` (`arn:aws:lambda:region:account:function:name[:qualifier]`).
    pub fn function_name(&self) -> Option<&str> {
        let mut parts = self.function_arn.split(':');
        (parts.nth(5) == Some("function"))
            .then(|| parts.next())
            .flatten()
    }
}

/// The record Lambda sends to an on-failure destination when an asynchronous invocation failed after
/// its retries (`condition: RetriesExhausted`): the one shape this project writes (the emulator's
/// Lambda service) and reads back (redrive). `timestamp` is ISO 8601, as AWS writes it.
#[allow(clippy::too_many_arguments)]
pub fn failure_record(
    timestamp: &str,
    request_id: &str,
    function_arn: &str,
    attempts: u32,
    request_payload: Value,
    function_error: &str,
    error_type: &str,
    error_message: &str,
) -> Value {
    serde_json::json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": function_error,
        },
        "responsePayload": { "errorType": error_type, "errorMessage": error_message },
    })
}

/// The event Lambda's SQS poller sends for `messages` (`(messageId, body)`), as from `queue_arn`.
pub fn sqs_event(queue_arn: &str, messages: &[(&str, &str)]) -> Value {
    let region = queue_arn.split(':').nth(3).unwrap_or_default();
    let records: Vec<Value> = messages
        .iter()
        .map(|(message_id, body)| {
            serde_json::json!({
                "messageId": message_id,
                "receiptHandle": format!("local-{message_id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Why one message of a batch could not be replayed; the message stays in the queue.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("the message has no body")]
    NoBody,
    #[error("the body is not a Lambda destination record: {0}")]
    NotADestinationRecord(#[source] serde_json::Error),
    #[error("the record is for function {found}, not {expected}: it was sent to the wrong queue")]
    OtherFunction { found: String, expected: String },
    #[error("replaying it failed: {0}")]
    Handler(String),
    #[error(
        "an SQS message has no messageId, so it cannot be reported alone: failing the whole batch"
    )]
    MissingMessageId,
}

/// Reads one SQS message body as a destination record.
pub fn destination_record(message: &SqsMessage) -> Result<DestinationRecord, RedriveError> {
    let body = message.body.as_deref().ok_or(RedriveError::NoBody)?;
    serde_json::from_str(body).map_err(RedriveError::NotADestinationRecord)
}

/// Replays each message of `batch` through `handler`, in order, and reports the ones that failed.
///
/// `function_name` is the function doing the replay: a record written for another function is a failure
/// (replaying it here would run the wrong code), so a mis-wired queue shows up instead of being consumed.
/// A message without a `messageId` cannot be reported on its own; it fails the whole batch (`Err`), which
/// Lambda then retries as a whole, so it is still not lost.
pub async fn replay_batch<H, Fut, T, E>(
    batch: SqsEvent,
    function_name: &str,
    handler: H,
) -> Result<SqsBatchResponse, RedriveError>
where
    H: Fn(Value) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        let Some(message_id) = message.message_id.clone() else {
            return Err(RedriveError::MissingMessageId);
        };
        let outcome = match destination_record(&message) {
            Ok(record) => replay_one(record, function_name, &handler).await,
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            tracing::warn!(%message_id, %error, "redrive: message kept in the queue");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

async fn replay_one<H, Fut, T, E>(
    record: DestinationRecord,
    function_name: &str,
    handler: &H,
) -> Result<(), RedriveError>
where
    H: Fn(Value) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    match record.request_context.function_name() {
        Some(name) if name == function_name => {}
        other => {
            return Err(RedriveError::OtherFunction {
                found: other
                    .unwrap_or(&record.request_context.function_arn)
                    .to_owned(),
                expected: function_name.to_owned(),
            });
        }
    }
    tracing::info!(
        request_id = %record.request_context.request_id,
        condition = %record.request_context.condition,
        "redrive: replaying a failed event"
    );
    Box::pin(handler(record.request_payload))
        .await
        .map(|_| ())
        .map_err(|error| RedriveError::Handler(error.to_string()))
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError<E: std::error::Error + 'static> {
    /// The function's own event failed: Lambda retries it, then sends it to the on-failure destination.
    #[error(transparent)]
    Event(E),
    /// A redrive batch could not be answered item by item: Lambda retries the whole batch.
    #[error(transparent)]
    Redrive(RedriveError),
}

/// The function's own error keeps its Lambda error type; a batch that failed as a whole says so.
impl<E> From<InvokeError<E>> for lambda_runtime::Diagnostic
where
    E: std::error::Error + Into<lambda_runtime::Diagnostic> + 'static,
{
    fn from(error: InvokeError<E>) -> Self {
        match error {
            InvokeError::Event(error) => error.into(),
            InvokeError::Redrive(error) => lambda_runtime::Diagnostic {
                error_type: "RedriveBatchFailed".into(),
                error_message: error.to_string(),
            },
        }
    }
}

/// Runs `handler` on the function's event, or on every event of a redrive batch.
pub async fn invoke<H, Fut, T, E>(
    payload: Value,
    function_name: &str,
    handler: H,
) -> Result<Response<T>, InvokeError<E>>
where
    H: Fn(Value) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    match Invocation::from_payload(payload) {
        // Boxed: the handlers' futures are deep, and nesting them in this one and the runtime's
        // exceeds rustc's layout depth limit.
        Invocation::Event(event) => Box::pin(handler(event))
            .await
            .map(Response::Event)
            .map_err(InvokeError::Event),
        Invocation::Redrive(batch) => replay_batch(batch, function_name, handler)
            .await
            .map(Response::Redrive)
            .map_err(InvokeError::Redrive),
    }
}

/// The name destination records are checked against: Lambda's `AWS_LAMBDA_FUNCTION_NAME` (the emulator
/// sets it too), else `default` (the cargo package name, which the CDK app also uses as the function name).
pub fn function_name(default: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// What a function answers: its own outcome for an event, the failed items for a redrive batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response<T> {
    Event(T),
    Redrive(SqsBatchResponse),
}

#[cfg(test)]
mod tests;

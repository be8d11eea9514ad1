//! The recorder against mocked CloudWatch Logs responses (aws-smithy-mocks): throttling, missing
//! streams and exhausted retries, through the real SDK client with the function's retry policy.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::operation::create_log_stream::CreateLogStreamOutput;
use aws_sdk_cloudwatchlogs::operation::put_log_events::{PutLogEventsError, PutLogEventsOutput};
use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use disconnect_recorder::{Outcome, Recorder, SinkError};
use lambda_init::retry_config;
use serde_json::{Value, json};

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

fn will_event() -> Value {
    json!({
        "thing": "ratchet", "agentSession": "s-1", "connectedAt": 1, "agentVersion": "0.1.0",
        "reason": "unexpected", "clientId": "ratchet", "receivedAt": 1764144000123i64
    })
}

fn lifecycle_disconnect() -> Value {
    json!({
        "clientId": "ratchet", "timestamp": 1764144000000i64, "eventType": "disconnected",
        "sessionIdentifier": "a4666d2a7d844ae4ac5d7b38c9cb7967", "principalIdentifier": "abc",
        "clientInitiatedDisconnect": false, "disconnectReason": "CONNECTION_LOST", "versionNumber": 3
    })
}

/// The function's own retry policy, with backoff shortened so the test does not sleep seconds.
fn fast_retries(
    builder: aws_sdk_cloudwatchlogs::config::Builder,
) -> aws_sdk_cloudwatchlogs::config::Builder {
    builder.retry_config(
        retry_config()
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5)),
    )
}

fn not_found() -> PutLogEventsError {
    PutLogEventsError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message("The specified log stream does not exist.")
            .build(),
    )
}

#[tokio::test]
async fn throttling_is_retried_until_the_record_is_written() {
    let put = mock!(Client::put_log_events)
        .match_requests(|r| {
            r.log_group_name() == Some("/iot/device-disconnects")
                && r.log_stream_name() == Some("ratchet")
                && r.log_events().len() == 1
        })
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| PutLogEventsOutput::builder().build())
        .build();
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::Sequential,
        [&put],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");

    let outcome = recorder.handle(&will_event(), 1_000).await.unwrap();
    assert!(matches!(outcome, Outcome::Recorded { ref log_stream, .. } if log_stream == "ratchet"));
    assert_eq!(put.num_calls(), 3, "two throttled attempts, then success");
}

#[tokio::test]
async fn server_errors_are_retried_too() {
    let put = mock!(Client::put_log_events)
        .sequence()
        .http_status(
            503,
            Some(r#"{"__type":"ServiceUnavailableException","message":"busy"}"#.into()),
        )
        .output(|| PutLogEventsOutput::builder().build())
        .build();
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::Sequential,
        [&put],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");
    recorder
        .handle(&lifecycle_disconnect(), 1_000)
        .await
        .unwrap();
    assert_eq!(put.num_calls(), 2);
}

#[tokio::test]
async fn a_missing_stream_is_created_and_the_record_written() {
    let put = mock!(Client::put_log_events)
        .sequence()
        .error(not_found)
        .output(|| PutLogEventsOutput::builder().build())
        .build();
    let create = mock!(Client::create_log_stream)
        .match_requests(|r| {
            r.log_group_name() == Some("/iot/device-disconnects")
                && r.log_stream_name() == Some("ratchet")
        })
        .then_output(|| CreateLogStreamOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        [&put, &create],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");

    let outcome = recorder
        .handle(&lifecycle_disconnect(), 1_000)
        .await
        .unwrap();
    match outcome {
        Outcome::Recorded {
            reason, malformed, ..
        } => {
            assert_eq!(reason, "CONNECTION_LOST");
            assert!(!malformed);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(create.num_calls(), 1);
    assert_eq!(put.num_calls(), 2);
}

#[tokio::test]
async fn spent_retries_fail_the_invocation() {
    let put = mock!(Client::put_log_events)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::Sequential,
        [&put],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");

    let err = recorder.handle(&will_event(), 1_000).await.unwrap_err();
    assert!(matches!(err, SinkError::Put { .. }), "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert_eq!(
        put.num_calls(),
        4,
        "the function's policy allows four attempts"
    );
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "PutLogEventsFailed");
}

#[tokio::test]
async fn a_missing_log_group_is_a_clear_error() {
    let put = mock!(Client::put_log_events).then_error(not_found);
    let create = mock!(Client::create_log_stream).then_error(|| {
        aws_sdk_cloudwatchlogs::operation::create_log_stream::CreateLogStreamError::ResourceNotFoundException(
            ResourceNotFoundException::builder().message("The specified log group does not exist.").build(),
        )
    });
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        [&put, &create],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");
    let err = recorder.handle(&will_event(), 1_000).await.unwrap_err();
    assert!(matches!(err, SinkError::MissingLogGroup { .. }), "{err}");
    assert!(err.to_string().contains("/iot/device-disconnects"));
}

#[tokio::test]
async fn non_disconnect_events_write_nothing() {
    let put = mock!(Client::put_log_events).then_output(|| PutLogEventsOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        [&put],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");
    let connected = json!({
        "clientId": "ratchet", "timestamp": 1, "eventType": "connected",
        "sessionIdentifier": "s", "principalIdentifier": "p", "ipAddress": "127.0.0.1", "versionNumber": 1
    });
    let outcome = recorder.handle(&connected, 1_000).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Ignored {
            event_type: "connected".into()
        }
    );
    assert_eq!(put.num_calls(), 0);
}

#[tokio::test]
async fn malformed_input_is_recorded_not_dropped() {
    let put = mock!(Client::put_log_events)
        .match_requests(|r| {
            let message = r
                .log_events()
                .first()
                .map(|e| e.message())
                .unwrap_or_default();
            r.log_stream_name() == Some("_unknown") && message.contains("\"malformed\":true")
        })
        .then_output(|| PutLogEventsOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        [&put],
        fast_retries
    );
    let recorder = Recorder::new(client, "/iot/device-disconnects");
    let outcome = recorder.handle(&json!([1, 2, 3]), 1_000).await.unwrap();
    assert!(matches!(
        outcome,
        Outcome::Recorded {
            malformed: true,
            ..
        }
    ));
    assert_eq!(put.num_calls(), 1);
}

use std::sync::Mutex;

use serde_json::json;

use super::*;

const RECORDER_ARN: &str =
    "arn:aws:lambda:eu-west-1:123456789012:function:disconnect-recorder:$LATEST";

const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:failed-events";

/// A destination record as Lambda writes it (AWS Lambda developer guide, "Capturing records of
/// asynchronous invocations"), around `payload`.
fn destination_record(function_arn: &str, payload: Value) -> String {
    failure_record(
        "2026-12-02T10:00:00.000Z",
        "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
        function_arn,
        3,
        payload,
        "Unhandled",
        "SinkError",
        "PutLogEvents failed",
    )
    .to_string()
}

/// An SQS event; a `None` id or body is left out of the message, as a broken poller might.
fn sqs_batch(bodies: &[(Option<&str>, Option<String>)]) -> Value {
    let mut event = sqs_event(QUEUE_ARN, &[]);
    event["Records"] = bodies
        .iter()
        .map(|(id, body)| {
            let mut message = sqs_event(QUEUE_ARN, &[("x", "")])["Records"][0].clone();
            message["messageId"] = json!(id);
            message["body"] = json!(body);
            message
        })
        .collect();
    event
}

#[test]
fn the_sqs_event_names_its_queue_and_region() {
    let event = sqs_event(QUEUE_ARN, &[("m1", "{}")]);
    assert_eq!(event["Records"][0]["eventSourceARN"], QUEUE_ARN);
    assert_eq!(event["Records"][0]["awsRegion"], "eu-west-1");
    assert_eq!(event["Records"][0]["body"], "{}");
}

fn disconnected(thing: &str) -> Value {
    json!({"clientId": thing, "timestamp": 1, "eventType": "disconnected", "versionNumber": 2,
           "disconnectReason": "CONNECTION_LOST", "clientInitiatedDisconnect": false})
}

fn batch_of(payload: Value) -> SqsEvent {
    match Invocation::from_payload(payload) {
        Invocation::Redrive(batch) => batch,
        Invocation::Event(other) => panic!("not read as a batch: {other}"),
    }
}

#[test]
fn a_rule_event_is_an_event_and_an_sqs_batch_is_a_redrive() {
    assert_eq!(
        Invocation::from_payload(disconnected("pi-1")),
        Invocation::Event(disconnected("pi-1"))
    );
    let batch = batch_of(sqs_batch(&[(Some("m1"), Some("{}".into()))]));
    assert_eq!(batch.records.len(), 1);
    // Shapes that only look alike stay events, so the handler records them as malformed, not lost.
    for payload in [
        json!({"Records": []}),
        json!({"Records": [{"eventSource": "aws:s3"}]}),
        json!({"Records": "x"}),
        json!([1, 2]),
    ] {
        assert_eq!(
            Invocation::from_payload(payload.clone()),
            Invocation::Event(payload)
        );
    }
}

#[test]
fn function_name_comes_from_the_arn_with_or_without_qualifier() {
    let context = |arn: &str| RequestContext {
        request_id: "r".into(),
        function_arn: arn.into(),
        condition: "RetriesExhausted".into(),
        approximate_invoke_count: 3,
    };
    assert_eq!(
        context(RECORDER_ARN).function_name(),
        Some("disconnect-recorder")
    );
    assert_eq!(
        context("arn:aws-cn:lambda:cn-north-1:1:function:shadow-reconciler").function_name(),
        Some("shadow-reconciler")
    );
    assert_eq!(
        context("arn:aws:sqs:eu-west-1:1:queue").function_name(),
        None
    );
    assert_eq!(context("").function_name(), None);
}

#[tokio::test]
async fn each_request_payload_is_replayed_in_order_and_only_failures_are_reported() {
    let payload = sqs_batch(&[
        (
            Some("good-1"),
            Some(destination_record(RECORDER_ARN, disconnected("pi-1"))),
        ),
        (Some("not-json"), Some("{oops".into())),
        (
            Some("no-payload"),
            Some(json!({"version": "1.0"}).to_string()),
        ),
        (Some("no-body"), None),
        (
            Some("fails-again"),
            Some(destination_record(RECORDER_ARN, disconnected("pi-fail"))),
        ),
        (
            Some("other-function"),
            Some(destination_record(
                "arn:aws:lambda:eu-west-1:123456789012:function:shadow-reconciler:$LATEST",
                disconnected("pi-2"),
            )),
        ),
        (
            Some("good-2"),
            Some(destination_record(RECORDER_ARN, disconnected("pi-3"))),
        ),
    ]);
    let seen = Mutex::new(Vec::new());
    let response = replay_batch(batch_of(payload), "disconnect-recorder", |event: Value| {
        seen.lock().unwrap().push(event.clone());
        async move {
            if event["clientId"] == "pi-fail" {
                Err("still broken")
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "not-json",
            "no-payload",
            "no-body",
            "fails-again",
            "other-function"
        ]
    );
    // The handler got exactly the original events, in queue order; nothing else reached it.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            disconnected("pi-1"),
            disconnected("pi-fail"),
            disconnected("pi-3")
        ]
    );
}

#[tokio::test]
async fn a_message_without_an_id_fails_the_whole_batch() {
    let payload = sqs_batch(&[
        (
            Some("m1"),
            Some(destination_record(RECORDER_ARN, disconnected("pi-1"))),
        ),
        (
            None,
            Some(destination_record(RECORDER_ARN, disconnected("pi-2"))),
        ),
    ]);
    let result = replay_batch(
        batch_of(payload),
        "disconnect-recorder",
        |_event: Value| async { Ok::<_, String>(()) },
    )
    .await;
    assert!(matches!(result, Err(RedriveError::MissingMessageId)));
}

#[test]
fn responses_have_lambdas_shapes() {
    let mut failures = SqsBatchResponse::default();
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = "m2".into();
    failures.batch_item_failures.push(failure);
    assert_eq!(
        serde_json::to_value(Response::<Value>::Redrive(failures)).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    );
    assert_eq!(
        serde_json::to_value(Response::Event(json!({"outcome": "ignored"}))).unwrap(),
        json!({"outcome": "ignored"})
    );
}

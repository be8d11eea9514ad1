//! The Lambda service's async-invoke semantics with a test double for a function: a `/bin/sh` + curl
//! script that speaks the Lambda Runtime API and misbehaves on request (function error, hang, crash).
//! What the real functions do through it is in `e2e_*.rs`.

mod lambda_support;

use std::time::Duration;

use iot_emulator::lambda::{FAILURE_LOG_GROUP, InvokeError};
use iot_emulator::logs::{GetLogEventsRequest, LogsStore};
use lambda_support::{events_seen, start, start_aging, start_with};
use serde_json::{Value, json};

fn failure_records(logs: &LogsStore) -> Vec<Value> {
    logs.get_log_events(&GetLogEventsRequest {
        log_group_name: Some(FAILURE_LOG_GROUP.into()),
        log_stream_name: "double".into(),
        start_from_head: Some(true),
        ..Default::default()
    })
    .map(|page| {
        page.events
            .iter()
            .map(|event| serde_json::from_str(&event.message).unwrap())
            .collect()
    })
    .unwrap_or_default()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn events_are_queued_and_served_by_one_warm_instance() {
    let fixture = start(Duration::from_secs(5), 2);
    for n in 0..3 {
        fixture
            .service
            .invoke_async("double", json!({"n": n}).to_string().into_bytes())
            .unwrap();
    }
    wait_until("three events", || {
        events_seen(&fixture.events_file).len() == 3
    })
    .await;
    assert_eq!(
        events_seen(&fixture.events_file),
        vec![json!({"n": 0}), json!({"n": 1}), json!({"n": 2})],
        "in order, exactly the payload"
    );
    assert_eq!(fixture.service.cold_starts("double"), Some(1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(failure_records(&fixture.logs).is_empty());
}

#[tokio::test]
async fn an_unknown_function_is_the_only_synchronous_failure() {
    let fixture = start(Duration::from_secs(5), 2);
    let error = fixture
        .service
        .invoke_async("nope", b"{}".to_vec())
        .unwrap_err();
    assert!(matches!(error, InvokeError::FunctionNotFound { ref name, .. } if name == "nope"));
    assert!(
        error
            .to_string()
            .starts_with("Function not found: arn:aws:lambda:")
    );
    assert_eq!(fixture.service.cold_starts("nope"), None);
}

#[tokio::test]
async fn a_function_error_is_retried_in_the_warm_instance_then_recorded() {
    let fixture = start(Duration::from_secs(5), 2);
    fixture
        .service
        .invoke_async("double", br#"{"mode":"fail"}"#.to_vec())
        .unwrap();
    wait_until("the failure record", || {
        !failure_records(&fixture.logs).is_empty()
    })
    .await;
    assert_eq!(
        events_seen(&fixture.events_file).len(),
        3,
        "1 attempt + 2 retries"
    );
    let record = &failure_records(&fixture.logs)[0];
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"], json!({"mode": "fail"}));
    assert_eq!(
        record["responsePayload"],
        json!({"errorType": "Boom", "errorMessage": "asked to fail"})
    );
    assert_eq!(
        record["destination"],
        "arn:aws:sqs:us-east-1:123456789012:failed"
    );
    assert_eq!(fixture.service.cold_starts("double"), Some(1));
}

#[tokio::test]
async fn a_timeout_replaces_the_instance_and_later_events_still_run() {
    let fixture = start(Duration::from_millis(500), 1);
    fixture
        .service
        .invoke_async("double", br#"{"mode":"hang"}"#.to_vec())
        .unwrap();
    wait_until("the failure record", || {
        !failure_records(&fixture.logs).is_empty()
    })
    .await;
    let record = &failure_records(&fixture.logs)[0];
    assert_eq!(record["responsePayload"]["errorType"], "Sandbox.Timedout");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(
        fixture.service.cold_starts("double"),
        Some(2),
        "one instance per timed-out attempt"
    );
    fixture
        .service
        .invoke_async("double", br#"{"mode":"ok"}"#.to_vec())
        .unwrap();
    wait_until("the next event", || {
        events_seen(&fixture.events_file).len() == 3
    })
    .await;
    assert_eq!(fixture.service.cold_starts("double"), Some(3));
}

#[tokio::test]
async fn a_crash_during_an_invocation_is_a_runtime_exit_error() {
    let fixture = start(Duration::from_secs(20), 1);
    fixture
        .service
        .invoke_async("double", br#"{"mode":"crash"}"#.to_vec())
        .unwrap();
    wait_until("the failure record", || {
        !failure_records(&fixture.logs).is_empty()
    })
    .await;
    let record = &failure_records(&fixture.logs)[0];
    assert_eq!(record["responsePayload"]["errorType"], "Runtime.ExitError");
    assert!(
        record["responsePayload"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status: 3"),
        "{record}"
    );
    assert_eq!(fixture.service.cold_starts("double"), Some(2));
}

/// One instance per function let a hanging event hold every later one for its whole timeout: 2,000 events
/// behind a hanging one would have taken hours (issue 13, item 7). Now the events behind it get instances of
/// their own.
#[tokio::test]
async fn a_hanging_event_holds_one_instance_and_the_events_behind_it_still_run() {
    let fixture = start_with(Duration::from_secs(20), 0, None);
    fixture
        .service
        .invoke_async("double", br#"{"mode":"hang"}"#.to_vec())
        .unwrap();
    for n in 0..3 {
        fixture
            .service
            .invoke_async("double", json!({"n": n}).to_string().into_bytes())
            .unwrap();
    }
    // Well before the hanging event's 20 s timeout.
    wait_until("the three events behind the hanging one", || {
        events_seen(&fixture.events_file).len() == 4
    })
    .await;
    let started = fixture.service.cold_starts("double").unwrap();
    assert!(
        (2..=4).contains(&started),
        "the hanging instance plus at least one more: {started}"
    );
}

/// The queue is bounded: past MAX_QUEUED_EVENTS the invoke is throttled as Lambda throttles (the IoT rule's
/// error action then takes the event) instead of growing without limit.
#[tokio::test]
async fn a_full_queue_throttles_new_events() {
    let fixture = start_with(Duration::from_secs(20), 0, Some(1));
    fixture
        .service
        .invoke_async("double", br#"{"mode":"hang"}"#.to_vec())
        .unwrap();
    wait_until("the hanging event to hold the only instance", || {
        events_seen(&fixture.events_file).len() == 1
    })
    .await;
    for n in 0..iot_emulator::lambda::MAX_QUEUED_EVENTS {
        fixture
            .service
            .invoke_async("double", json!({"n": n}).to_string().into_bytes())
            .unwrap_or_else(|error| panic!("event {n} is within the bound: {error}"));
    }
    let throttled = fixture
        .service
        .invoke_async("double", b"{}".to_vec())
        .unwrap_err();
    assert!(
        matches!(throttled, InvokeError::Throttled { ref name, .. } if name == "double"),
        "{throttled:?}"
    );
    assert!(
        throttled
            .to_string()
            .starts_with("TooManyRequestsException")
    );
}

/// A clean shutdown with a hanging function and events queued behind it used to leave no failure record, no log
/// line and nothing after a restart (issue 13, item 5). Now every unfinished event is handed back, kept in the
/// state directory as `up` does, and runs after the restart.
#[tokio::test]
async fn a_shutdown_hands_back_unfinished_events_and_a_restart_runs_them() {
    let fixture = start_with(Duration::from_secs(20), 2, Some(1));
    fixture
        .service
        .invoke_async("double", br#"{"mode":"hang"}"#.to_vec())
        .unwrap();
    wait_until("the hanging event to hold the only instance", || {
        events_seen(&fixture.events_file).len() == 1
    })
    .await;
    for n in 0..4 {
        fixture
            .service
            .invoke_async("double", json!({"n": n}).to_string().into_bytes())
            .unwrap();
    }
    let started = std::time::Instant::now();
    let unfinished = fixture.service.shutdown(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the grace bounds the shutdown, not the function's timeout"
    );
    let mut payloads: Vec<Value> = unfinished
        .iter()
        .map(|event| serde_json::from_slice(&event.payload).unwrap())
        .collect();
    payloads.sort_by_key(|payload| payload.to_string());
    assert_eq!(
        payloads,
        vec![
            json!({"mode": "hang"}),
            json!({"n": 0}),
            json!({"n": 1}),
            json!({"n": 2}),
            json!({"n": 3})
        ]
    );
    assert!(unfinished.iter().all(|event| event.function == "double"));
    assert!(matches!(
        fixture.service.invoke_async("double", b"{}".to_vec()),
        Err(InvokeError::Stopped)
    ));

    // Kept across the restart as `up` keeps them, then resumed by a new service.
    let state = tempfile::tempdir().unwrap();
    iot_emulator::lambda::pending::save(state.path(), &unfinished).unwrap();
    let resumed = iot_emulator::lambda::pending::take(state.path()).unwrap();
    let ok_events: Vec<_> = resumed
        .into_iter()
        .filter(|event| !event.payload.starts_with(br#"{"mode""#))
        .collect();
    let restarted = start_with(Duration::from_secs(5), 2, Some(1));
    restarted.service.resume(ok_events).await;
    wait_until("the four resumed events", || {
        events_seen(&restarted.events_file).len() == 4
    })
    .await;
}

/// MaximumEventAgeInSeconds: an event that waited longer than the template allows is not invoked but recorded
/// with `condition: EventAgeExceeded`, as Lambda sends it to the on-failure destination.
#[tokio::test]
async fn an_event_older_than_its_maximum_age_goes_to_the_destination_uninvoked() {
    let fixture = start_aging(
        Duration::from_millis(800),
        0,
        Some(1),
        Duration::from_millis(300),
    );
    fixture
        .service
        .invoke_async("double", br#"{"mode":"hang"}"#.to_vec())
        .unwrap();
    fixture
        .service
        .invoke_async("double", br#"{"n":"waits too long"}"#.to_vec())
        .unwrap();
    wait_until("two failure records", || {
        failure_records(&fixture.logs).len() == 2
    })
    .await;
    let records = failure_records(&fixture.logs);
    let conditions: Vec<_> = records
        .iter()
        .map(|record| record["requestContext"]["condition"].clone())
        .collect();
    assert_eq!(
        conditions,
        [json!("RetriesExhausted"), json!("EventAgeExceeded")]
    );
    assert_eq!(records[1]["requestPayload"], json!({"n": "waits too long"}));
    assert_eq!(
        events_seen(&fixture.events_file),
        vec![json!({"mode": "hang"})],
        "the old event never reached the function"
    );
}

//! The reconciler through the real `aws-sdk-iotdataplane` client against mocked responses.

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::operation::get_thing_shadow::{
    GetThingShadowError, GetThingShadowOutput,
};
use aws_sdk_iotdataplane::operation::update_thing_shadow::{
    UpdateThingShadowError, UpdateThingShadowOutput,
};
use aws_sdk_iotdataplane::primitives::Blob;
use aws_sdk_iotdataplane::types::error::{ConflictException, ResourceNotFoundException};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::{Value, json};
use shadow_reconciler::{DataPlaneStore, Outcome, ReconcileError, Reconciler, RetryPolicy};
use std::time::Duration;

fn fast_sdk(b: aws_sdk_iotdataplane::config::Builder) -> aws_sdk_iotdataplane::config::Builder {
    b.retry_config(
        lambda_init::retry_config()
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5)),
    )
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    }
}

fn disconnected() -> Value {
    json!({"clientId": "ratchet", "timestamp": 1_764_000_000_000i64, "eventType": "disconnected",
           "sessionIdentifier": "s5", "principalIdentifier": "p", "clientInitiatedDisconnect": false,
           "disconnectReason": "CONNECTION_LOST", "versionNumber": 5})
}

fn shadow(version: u64, reported: Value) -> GetThingShadowOutput {
    let doc = json!({"state": {"reported": reported}, "metadata": {}, "version": version, "timestamp": 1});
    GetThingShadowOutput::builder()
        .payload(Blob::new(doc.to_string()))
        .build()
}

fn connected_state() -> Value {
    json!({"connected": true, "clientId": "ratchet", "sessionIdentifier": "s5", "versionNumber": 5,
           "eventTimestamp": 1_763_999_990_000i64, "disconnectReason": null})
}

fn accepted(version: u64) -> UpdateThingShadowOutput {
    UpdateThingShadowOutput::builder()
        .payload(Blob::new(
            json!({"state": {}, "version": version}).to_string(),
        ))
        .build()
}

fn conflict() -> UpdateThingShadowError {
    UpdateThingShadowError::ConflictException(
        ConflictException::builder()
            .message("Version conflict")
            .build(),
    )
}

#[tokio::test]
async fn conflict_rereads_and_retries() {
    let get = mock!(Client::get_thing_shadow)
        .match_requests(|r| {
            r.thing_name() == Some("ratchet") && r.shadow_name() == Some("connectivity")
        })
        .sequence()
        .output(|| shadow(7, connected_state()))
        .output(|| shadow(8, connected_state()))
        .build();
    let update = mock!(Client::update_thing_shadow)
        .sequence()
        .error(conflict)
        .output(|| accepted(9))
        .build();
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&get, &update],
        fast_sdk
    );
    let reconciler =
        Reconciler::new(DataPlaneStore::new(client), "connectivity").with_retry(fast());

    let outcome = reconciler.handle(&disconnected()).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Applied {
            thing: "ratchet".into(),
            reason: "same_connection_disconnected",
            shadow_version: 9,
            conflicts: 1
        }
    );
    assert_eq!(get.num_calls(), 2);
    assert_eq!(update.num_calls(), 2);
}

#[tokio::test]
async fn a_missing_shadow_is_created_then_written_under_the_lock() {
    let get = mock!(Client::get_thing_shadow)
        .sequence()
        .error(|| {
            GetThingShadowError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("No shadow exists with name: 'connectivity'")
                    .build(),
            )
        })
        .output(|| shadow(1, json!({"schema": "iot.connectivity.v1"})))
        .build();
    let update = mock!(Client::update_thing_shadow)
        .match_requests(|r| {
            let body: Value = serde_json::from_slice(r.payload().unwrap().as_ref()).unwrap();
            // First the merge-safe marker without a version, then the state locked to version 1.
            body.get("version").is_none()
                && body["state"]["reported"]["schema"] == "iot.connectivity.v1"
                || body["version"] == 1 && body["state"]["reported"]["connected"] == false
        })
        .sequence()
        .output(|| accepted(1))
        .output(|| accepted(2))
        .build();
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&get, &update],
        fast_sdk
    );
    let reconciler =
        Reconciler::new(DataPlaneStore::new(client), "connectivity").with_retry(fast());
    let outcome = reconciler.handle(&disconnected()).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Applied {
                shadow_version: 2,
                reason: "first_event",
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(update.num_calls(), 2);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let get = mock!(Client::get_thing_shadow)
        .sequence()
        .http_status(
            429,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .output(|| shadow(7, connected_state()))
        .build();
    let update = mock!(Client::update_thing_shadow).then_output(|| accepted(8));
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&get, &update],
        fast_sdk
    );
    let reconciler =
        Reconciler::new(DataPlaneStore::new(client), "connectivity").with_retry(fast());
    assert!(matches!(
        reconciler.handle(&disconnected()).await.unwrap(),
        Outcome::Applied { .. }
    ));
    assert_eq!(get.num_calls(), 2);
}

#[tokio::test]
async fn endless_conflicts_fail_the_invocation() {
    let get = mock!(Client::get_thing_shadow).then_output(|| shadow(7, connected_state()));
    let update = mock!(Client::update_thing_shadow).then_error(conflict);
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&get, &update],
        fast_sdk
    );
    let reconciler =
        Reconciler::new(DataPlaneStore::new(client), "connectivity").with_retry(fast());
    let err = reconciler.handle(&disconnected()).await.unwrap_err();
    assert!(
        matches!(err, ReconcileError::RetriesSpent { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(update.num_calls(), 4);
}

#[tokio::test]
async fn desired_hygiene_clears_matching_keys_with_the_version_lock() {
    let update = mock!(Client::update_thing_shadow)
        .match_requests(|r| {
            let body: Value = serde_json::from_slice(r.payload().unwrap().as_ref()).unwrap();
            r.shadow_name().is_none()
                && body == json!({"state": {"desired": {"MOTOR": null}}, "version": 12})
        })
        .then_output(|| accepted(13));
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&update],
        fast_sdk
    );
    let reconciler =
        Reconciler::new(DataPlaneStore::new(client), "connectivity").with_retry(fast());
    let documents = json!({
        "previous": {"state": {"desired": {"MOTOR": "ON"}, "reported": {"MOTOR": "OFF"}}, "metadata": {}, "version": 11},
        "current": {"state": {"desired": {"MOTOR": "ON", "LED": "RED"}, "reported": {"MOTOR": "ON", "LED": "OFF"}}, "metadata": {}, "version": 12},
        "timestamp": 1_764_000_000, "thing": "ratchet"
    });
    let outcome = reconciler.handle(&documents).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::DesiredCleared {
            thing: "ratchet".into(),
            keys: vec!["MOTOR".into()],
            shadow_version: 13,
            conflicts: 0
        }
    );
    // The documents event our own update causes has nothing left to clear: no loop.
    let after = json!({
        "previous": documents["current"],
        "current": {"state": {"desired": {"LED": "RED"}, "reported": {"MOTOR": "ON", "LED": "OFF"}}, "metadata": {}, "version": 13},
        "timestamp": 1_764_000_001, "thing": "ratchet"
    });
    assert_eq!(
        reconciler.handle(&after).await.unwrap(),
        Outcome::NothingToClear {
            thing: "ratchet".into()
        }
    );
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn bad_input_writes_nothing_and_does_not_fail() {
    let update = mock!(Client::update_thing_shadow).then_output(|| accepted(1));
    let get = mock!(Client::get_thing_shadow).then_output(|| shadow(1, json!({})));
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&get, &update],
        fast_sdk
    );
    let reconciler = Reconciler::new(DataPlaneStore::new(client), "connectivity");
    for bad in [
        json!([1, 2]),
        json!({"eventType": "disconnected", "clientId": "x"}),
        json!({"current": {"state": 5}, "thing": "t"}),
        json!({"current": {"state": {}, "version": 1}}),
    ] {
        let outcome = reconciler.handle(&bad).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Rejected { .. }),
            "{bad}: {outcome:?}"
        );
    }
    for skipped in [
        json!({"clientId": "iotconsole-1511213971966-0", "timestamp": 1, "eventType": "connected",
               "sessionIdentifier": "s", "versionNumber": 1}),
        json!({"clientId": "has space", "timestamp": 1, "eventType": "connected",
               "sessionIdentifier": "s", "versionNumber": 1}),
        json!({"clientId": "pi", "timestamp": 1, "eventType": "subscribed", "sessionIdentifier": "s", "topics": []}),
    ] {
        assert!(
            matches!(
                reconciler.handle(&skipped).await.unwrap(),
                Outcome::Skipped { .. }
            ),
            "{skipped}"
        );
    }
    assert_eq!(update.num_calls() + get.num_calls(), 0);
}

//! The real `shadow-reconciler` binary, driven through the Lambda Runtime API, against a real IoT
//! data-plane API (moto on 127.0.0.1).

use std::path::Path;
use std::time::Duration;

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_iotdataplane::primitives::Blob;
use lambda_host::{FunctionConfig, FunctionProcess, InvocationResult, RuntimeApi};
use moto_fixture::MotoServer;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

fn data_plane(endpoint: &str) -> Client {
    Client::from_conf(
        aws_sdk_iotdataplane::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(lambda_init::https_client())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build(),
    )
}

async fn start(moto: &MotoServer) -> (RuntimeApi, FunctionProcess) {
    let api = RuntimeApi::bind(
        "127.0.0.1:0".parse().unwrap(),
        "arn:aws:lambda:us-east-1:000000000000:function:shadow-reconciler",
    )
    .await
    .unwrap();
    let config = FunctionConfig::new("shadow-reconciler")
        .env("CONNECTIVITY_SHADOW_NAME", "connectivity")
        .env("AWS_ENDPOINT_URL_IOT_DATA_PLANE", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "info");
    let process = FunctionProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_shadow-reconciler")),
        &config,
        &api.address(),
    )
    .unwrap();
    (api, process)
}

async fn invoke(api: &RuntimeApi, event: &Value) -> Value {
    match api.invoke(event.to_string(), TIMEOUT).await.unwrap() {
        InvocationResult::Response(body) => serde_json::from_slice(&body).unwrap(),
        InvocationResult::Error {
            error_type,
            error_message,
        } => panic!("{error_type}: {error_message}"),
    }
}

async fn shadow(client: &Client, thing: &str, name: Option<&str>) -> Value {
    let out = client
        .get_thing_shadow()
        .thing_name(thing)
        .set_shadow_name(name.map(str::to_owned))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap()
}

fn lifecycle(kind: &str, version: u64, ts: i64, session: &str) -> Value {
    let mut event = json!({"clientId": "ratchet", "timestamp": ts, "eventType": kind,
                           "sessionIdentifier": session, "principalIdentifier": "p", "versionNumber": version});
    if kind == "disconnected" {
        event["disconnectReason"] = json!("CONNECTION_LOST");
        event["clientInitiatedDisconnect"] = json!(false);
    }
    event
}

#[tokio::test]
async fn lifecycle_events_maintain_the_connectivity_shadow() {
    let moto = MotoServer::start().await.unwrap();
    moto.create_thing("ratchet").await.unwrap();
    let client = data_plane(&moto.endpoint());
    let (api, _process) = start(&moto).await;

    // Delivered out of order, with a duplicate: the disconnect of session 2 first.
    let t = 1_764_000_000_000i64;
    let outcomes = [
        invoke(&api, &lifecycle("disconnected", 2, t + 60_000, "s2")).await,
        invoke(&api, &lifecycle("connected", 2, t, "s2")).await,
        invoke(&api, &lifecycle("connected", 1, t - 60_000, "s1")).await,
        invoke(&api, &lifecycle("disconnected", 2, t + 60_000, "s2")).await,
    ];
    assert_eq!(outcomes[0]["outcome"], "applied", "{outcomes:?}");
    for later in &outcomes[1..] {
        assert_eq!(later["outcome"], "unchanged", "{outcomes:?}");
    }
    let reported =
        shadow(&client, "ratchet", Some("connectivity")).await["state"]["reported"].clone();
    assert_eq!(reported["connected"], false);
    assert_eq!(reported["sessionIdentifier"], "s2");
    assert_eq!(reported["disconnectReason"], "CONNECTION_LOST");

    // A new connection wins.
    let applied = invoke(&api, &lifecycle("connected", 3, t + 120_000, "s3")).await;
    assert_eq!(applied["outcome"], "applied");
    let reported =
        shadow(&client, "ratchet", Some("connectivity")).await["state"]["reported"].clone();
    assert_eq!(reported["connected"], true);
    assert_eq!(reported["versionNumber"], 3);
    moto.stop().await;
}

#[tokio::test]
async fn documents_events_clear_satisfied_desired_keys() {
    let moto = MotoServer::start().await.unwrap();
    moto.create_thing("ratchet").await.unwrap();
    let client = data_plane(&moto.endpoint());
    let (api, _process) = start(&moto).await;

    let update = |doc: Value| {
        client
            .update_thing_shadow()
            .thing_name("ratchet")
            .payload(Blob::new(doc.to_string()))
            .send()
    };
    update(json!({"state": {"desired": {"MOTOR": "ON"}, "reported": {"MOTOR": "OFF"}}}))
        .await
        .unwrap();
    update(json!({"state": {"reported": {"MOTOR": "ON"}}}))
        .await
        .unwrap();
    let current = shadow(&client, "ratchet", None).await;
    assert_eq!(current["state"]["desired"]["MOTOR"], "ON");

    // What the ShadowDocuments rule would deliver for that second update.
    let documents = json!({"previous": null, "current": {"state": current["state"], "metadata": {}, "version": current["version"]},
                           "timestamp": 1_764_000_000, "thing": "ratchet"});
    let outcome = invoke(&api, &documents).await;
    assert_eq!(outcome["outcome"], "desiredCleared", "{outcome}");
    let after = shadow(&client, "ratchet", None).await;
    assert!(
        after["state"]
            .get("desired")
            .is_none_or(|d| d.get("MOTOR").is_none()),
        "{after}"
    );
    assert_eq!(after["state"]["reported"]["MOTOR"], "ON");

    // Replaying the now stale event: the version moved on, so it re-reads and finds nothing to clear.
    let replay = invoke(&api, &documents).await;
    assert_eq!(replay["outcome"], "nothingToClear", "{replay}");
    moto.stop().await;
}

#[tokio::test]
async fn events_for_unknown_things_are_skipped() {
    let moto = MotoServer::start().await.unwrap();
    let (api, _process) = start(&moto).await;
    let outcome = invoke(&api, &lifecycle("connected", 1, 1, "s1")).await;
    assert_eq!(outcome["outcome"], "skipped", "{outcome}");
    moto.stop().await;
}

#[tokio::test]
async fn a_redrive_batch_replays_failed_events_through_the_same_reducer() {
    let moto = MotoServer::start().await.unwrap();
    moto.create_thing("ratchet").await.unwrap();
    let client = data_plane(&moto.endpoint());
    let (api, _process) = start(&moto).await;
    let t = 1_764_000_000_000i64;
    let record = |function: &str, event: Value| {
        redrive::failure_record(
            "2026-12-02T10:00:00.000Z",
            "req-1",
            &format!("arn:aws:lambda:us-east-1:000000000000:function:{function}:$LATEST"),
            3,
            event,
            "Unhandled",
            "ShadowStoreError",
            "throttled",
        )
        .to_string()
    };
    // Two events that failed for good, replayed out of order, and one written for the other function.
    let disconnected = record(
        "shadow-reconciler",
        lifecycle("disconnected", 2, t + 60_000, "s2"),
    );
    let connected = record("shadow-reconciler", lifecycle("connected", 2, t, "s2"));
    let misrouted = record(
        "disconnect-recorder",
        lifecycle("connected", 9, t + 1, "s9"),
    );
    let batch = redrive::sqs_event(
        "arn:aws:sqs:us-east-1:000000000000:failed-events",
        &[
            ("d", &disconnected),
            ("c", &connected),
            ("other", &misrouted),
        ],
    );
    let response = invoke(&api, &batch).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "other"}]})
    );
    let reported =
        shadow(&client, "ratchet", Some("connectivity")).await["state"]["reported"].clone();
    assert_eq!(reported["connected"], false);
    assert_eq!(reported["sessionIdentifier"], "s2");
    // Replayed again (a redrive that ran twice): nothing moves.
    let again = invoke(&api, &batch).await;
    assert_eq!(again, response);
    let after = shadow(&client, "ratchet", Some("connectivity")).await["state"]["reported"].clone();
    assert_eq!(after, reported);
    moto.stop().await;
}

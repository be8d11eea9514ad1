//! The real `disconnect-recorder` binary, driven through the Lambda Runtime API, writing to a real
//! CloudWatch Logs API (moto on 127.0.0.1); the records are read back with GetLogEvents.

use std::path::Path;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use lambda_host::{FunctionConfig, FunctionProcess, HostError, InvocationResult, RuntimeApi};
use moto_fixture::MotoServer;
use serde_json::{Value, json};

const GROUP: &str = "/iot/device-disconnects";
const TIMEOUT: Duration = Duration::from_secs(20);

fn logs_client(endpoint: &str) -> Client {
    let config = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(lambda_init::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    Client::from_conf(config)
}

struct Function {
    api: RuntimeApi,
    _process: FunctionProcess,
}

async fn start_function(endpoint: &str, log_group: &str) -> Function {
    let api = RuntimeApi::bind(
        "127.0.0.1:0".parse().unwrap(),
        "arn:aws:lambda:us-east-1:000000000000:function:disconnect-recorder",
    )
    .await
    .unwrap();
    let config = FunctionConfig::new("disconnect-recorder")
        .env("DISCONNECT_LOG_GROUP", log_group)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "info");
    let process = FunctionProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_disconnect-recorder")),
        &config,
        &api.address(),
    )
    .unwrap();
    Function {
        api,
        _process: process,
    }
}

async fn invoke(function: &Function, event: &Value) -> Value {
    match function
        .api
        .invoke(event.to_string(), TIMEOUT)
        .await
        .unwrap()
    {
        InvocationResult::Response(body) => serde_json::from_slice(&body).unwrap(),
        InvocationResult::Error {
            error_type,
            error_message,
        } => {
            panic!("invocation failed: {error_type}: {error_message}")
        }
    }
}

async fn records(client: &Client, stream: &str) -> Vec<Value> {
    let out = client
        .get_log_events()
        .log_group_name(GROUP)
        .log_stream_name(stream)
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    out.events()
        .iter()
        .map(|e| serde_json::from_str(e.message().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn records_are_written_and_readable_with_get_log_events() {
    let moto = MotoServer::start().await.unwrap();
    let client = logs_client(&moto.endpoint());
    client
        .create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    let function = start_function(&moto.endpoint(), GROUP).await;

    let will = json!({
        "thing": "ratchet", "agentSession": "9b0e", "connectedAt": 1764140400000i64,
        "agentVersion": "0.1.0", "reason": "unexpected", "clientId": "ratchet",
        "receivedAt": 1764144000123i64
    });
    let disconnected = json!({
        "clientId": "ratchet", "timestamp": 1764144000456i64, "eventType": "disconnected",
        "sessionIdentifier": "a4666d2a7d844ae4ac5d7b38c9cb7967",
        "principalIdentifier": "1f8b9c", "clientInitiatedDisconnect": false,
        "disconnectReason": "MQTT_KEEP_ALIVE_TIMEOUT", "versionNumber": 7
    });
    let connected = json!({
        "clientId": "ratchet", "timestamp": 1764140400000i64, "eventType": "connected",
        "sessionIdentifier": "a4666d2a7d844ae4ac5d7b38c9cb7967", "principalIdentifier": "1f8b9c",
        "ipAddress": "127.0.0.1", "versionNumber": 7
    });

    let first = invoke(&function, &will).await;
    assert_eq!(first["outcome"], "recorded");
    assert_eq!(first["logStream"], "ratchet");
    let second = invoke(&function, &disconnected).await;
    assert_eq!(second["reason"], "MQTT_KEEP_ALIVE_TIMEOUT");
    let ignored = invoke(&function, &connected).await;
    assert_eq!(
        ignored,
        json!({"outcome": "ignored", "eventType": "connected"})
    );
    // Lambda retried the disconnect (async retry): same record id, so readers can de-duplicate.
    let retried = invoke(&function, &disconnected).await;
    assert_eq!(retried["recordId"], second["recordId"]);

    let stored = records(&client, "ratchet").await;
    assert_eq!(stored.len(), 3, "{stored:#?}");
    assert_eq!(stored[0]["source"], "will");
    assert_eq!(stored[0]["reason"], "LAST_WILL");
    assert_eq!(stored[0]["agentSession"], "9b0e");
    assert_eq!(stored[0]["recordId"], first["recordId"]);
    assert_eq!(stored[1]["source"], "lifecycle");
    assert_eq!(stored[1]["schema"], "iot.disconnect.v1");
    assert_eq!(stored[1]["versionNumber"], 7);
    assert_eq!(stored[1]["expected"], false);
    assert_eq!(
        stored[1]["sessionIdentifier"],
        "a4666d2a7d844ae4ac5d7b38c9cb7967"
    );
    assert_eq!(
        stored[1]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "IotPresence"
    );
    assert_eq!(stored[2]["recordId"], stored[1]["recordId"]);

    // Something that is not ours still leaves a trace, in the thing's stream.
    let foreign = json!({"state": {"reported": {"connected": "false"}}, "thing": "pi-7",
                         "clientId": "pi-7", "receivedAt": 5});
    let outcome = invoke(&function, &foreign).await;
    assert_eq!(outcome["malformed"], true);
    let stored = records(&client, "pi-7").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["malformed"], true);
    assert!(
        stored[0]["payloadBase64"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    moto.stop().await;
}

#[tokio::test]
async fn a_write_that_cannot_succeed_fails_the_invocation() {
    let moto = MotoServer::start().await.unwrap();
    // No log group: the stream cannot be created, so the record cannot be written.
    let function = start_function(&moto.endpoint(), "/iot/not-created").await;
    let event = json!({
        "clientId": "ratchet", "timestamp": 1i64, "eventType": "disconnected",
        "sessionIdentifier": "s", "disconnectReason": "CONNECTION_LOST", "versionNumber": 1
    });
    let result = function.api.invoke(event.to_string(), TIMEOUT).await;
    match result {
        Ok(InvocationResult::Error {
            error_type,
            error_message,
        }) => {
            assert_eq!(error_type, "MissingLogGroup");
            assert!(
                error_message.contains("/iot/not-created"),
                "{error_message}"
            );
        }
        Ok(other) => panic!("expected an invocation error, got {other:?}"),
        Err(HostError::InitError { .. }) | Err(_) => panic!("unexpected {result:?}"),
    }
    moto.stop().await;
}

#[tokio::test]
async fn a_redrive_batch_replays_failed_events_and_keeps_unreadable_ones_in_the_queue() {
    let moto = MotoServer::start().await.unwrap();
    let client = logs_client(&moto.endpoint());
    // The event failed for good while the log group was missing (the cause), then the cause was fixed.
    let function = start_function(&moto.endpoint(), GROUP).await;
    let event = json!({
        "clientId": "ratchet", "timestamp": 1764144000456i64, "eventType": "disconnected",
        "sessionIdentifier": "s-redrive", "disconnectReason": "CONNECTION_LOST", "versionNumber": 3
    });
    assert!(matches!(
        function.api.invoke(event.to_string(), TIMEOUT).await,
        Ok(InvocationResult::Error { .. })
    ));
    client
        .create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();

    let record = redrive::failure_record(
        "2026-12-02T10:00:00.000Z",
        "req-1",
        "arn:aws:lambda:us-east-1:000000000000:function:disconnect-recorder:$LATEST",
        3,
        event.clone(),
        "Unhandled",
        "MissingLogGroup",
        "no log group",
    )
    .to_string();
    let batch = redrive::sqs_event(
        "arn:aws:sqs:us-east-1:000000000000:failed-events",
        &[
            ("replayed", &record),
            ("unreadable", "not a destination record"),
        ],
    );
    let response = invoke(&function, &batch).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "unreadable"}]})
    );

    let stored = records(&client, "ratchet").await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["sessionIdentifier"], "s-redrive");
    assert_eq!(stored[0]["reason"], "CONNECTION_LOST");
    moto.stop().await;
}

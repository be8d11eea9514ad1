//! The AWS CLI's `iot-data` commands against the data-plane router on 127.0.0.1 (reference 3.10).
//! Needs the CLI in `.tools/venv` (`pip install awscli`); skipped when it is not installed.

mod broker_support;
mod http_support;
mod tool_support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use broker_support::{RawClient, Received, TestBroker};
use http_support::{ServedRouter, aws, aws_cli_installed};
use iot_emulator::dataplane::DataPlane;
use iot_emulator::shadow::{Publisher, QoS, RecordingPublisher, ShadowService, ShadowStore};
use rumqttc::mqttbytes::QoS as MqttQos;
use serde_json::{Value, json};

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "aws failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn aws_cli_iot_data_shadow_and_publish() {
    if !aws_cli_installed() {
        return;
    }
    let publisher = Arc::new(RecordingPublisher::new());
    let shadows = Arc::new(ShadowService::new(
        ShadowStore::in_memory(),
        publisher.clone() as Arc<dyn Publisher>,
    ));
    let router = DataPlane::new(shadows, publisher.clone()).router();
    let served = ServedRouter::start(router).await;
    let endpoint = served.endpoint();
    let out = tempfile::tempdir().unwrap();
    let outfile = |name: &str| out.path().join(name);

    let update = json!({"state": {"desired": {"led": "on"}}}).to_string();
    let updated = outfile("update.json");
    assert_ok(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "update-thing-shadow",
                "--thing-name",
                "pi-1",
                "--shadow-name",
                "config",
                "--payload",
                &update,
                updated.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(read_json(&updated)["version"], 1);
    assert_eq!(publisher.take().len(), 3, "accepted, documents, delta");

    let got = outfile("get.json");
    assert_ok(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "get-thing-shadow",
                "--thing-name",
                "pi-1",
                "--shadow-name",
                "config",
                got.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(read_json(&got)["state"]["delta"], json!({"led": "on"}));

    let listed = aws(
        &endpoint,
        &[
            "iot-data",
            "list-named-shadows-for-thing",
            "--thing-name",
            "pi-1",
        ],
    )
    .await;
    assert_ok(&listed);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["results"], json!(["config"]));

    assert_ok(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "publish",
                "--topic",
                "devices/pi-1/cmd",
                "--qos",
                "1",
                "--payload",
                "reboot",
            ],
        )
        .await,
    );
    let message = publisher.take().remove(0);
    assert_eq!(message.topic, "devices/pi-1/cmd");

    // A forged lifecycle event: only AWS publishes on $aws/events (reference 1.1, 6.2). Refused before it
    // reaches the broker, so no rule (and no reconciler) ever sees it.
    let forged = aws(
        &endpoint,
        &[
            "iot-data",
            "publish",
            "--topic",
            "$aws/events/presence/connected/ghost",
            "--payload",
            r#"{"clientId":"ghost","eventType":"connected"}"#,
        ],
    )
    .await;
    assert!(!forged.status.success());
    let stderr = String::from_utf8_lossy(&forged.stderr);
    assert!(stderr.contains("ForbiddenException"), "{stderr}");
    assert!(publisher.take().is_empty());
    assert_eq!(message.payload, b"reboot");
    assert_eq!(message.qos, QoS::AtLeastOnce);

    let deleted = outfile("delete.json");
    assert_ok(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "delete-thing-shadow",
                "--thing-name",
                "pi-1",
                "--shadow-name",
                "config",
                deleted.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(read_json(&deleted)["version"], 1);

    let missing = aws(
        &endpoint,
        &[
            "iot-data",
            "get-thing-shadow",
            "--thing-name",
            "pi-1",
            "--shadow-name",
            "config",
            got.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("ResourceNotFoundException") && stderr.contains("No shadow exists"),
        "{stderr}"
    );

    served.stop().await;
}

fn stdout_json(output: &Output) -> Value {
    assert_ok(output);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_error(output: &Output, exception: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(exception), "{exception}: {stderr}");
}

/// The connection and retained-message commands, against a data plane over a real broker's sessions.
#[tokio::test]
async fn aws_cli_iot_data_connections_and_retained_messages() {
    if !aws_cli_installed() {
        return;
    }
    let broker = TestBroker::start().await;
    let publisher = Arc::new(RecordingPublisher::new());
    let shadows = Arc::new(ShadowService::new(
        ShadowStore::in_memory(),
        publisher.clone() as Arc<dyn Publisher>,
    ));
    let router = DataPlane::new(shadows, publisher)
        .with_broker(broker.broker().clone())
        .router();
    let served = ServedRouter::start(router).await;
    let endpoint = served.endpoint();
    let device = broker.device("lamp");
    let mut lamp = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.clean_session = false;
    })
    .await;
    lamp.subscribe_ok("device/lamp/cmd", MqttQos::AtLeastOnce)
        .await;
    assert!(matches!(
        lamp.publish("data/lamp/state", b"on", MqttQos::AtLeastOnce, true)
            .await,
        Received::Packet(_)
    ));

    let retained = stdout_json(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "get-retained-message",
                "--topic",
                "data/lamp/state",
            ],
        )
        .await,
    );
    assert_eq!(retained["topic"], "data/lamp/state");
    assert_eq!(retained["payload"], "b24=", "base64 of 'on'");
    assert_eq!(retained["qos"], 1);
    assert!(retained["lastModifiedTime"].as_i64().unwrap() > 0);
    let listed = stdout_json(&aws(&endpoint, &["iot-data", "list-retained-messages"]).await);
    assert_eq!(
        listed["retainedTopics"],
        json!([{"topic": "data/lamp/state", "payloadSize": 2, "qos": 1,
                "lastModifiedTime": retained["lastModifiedTime"]}])
    );
    assert_error(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "get-retained-message",
                "--topic",
                "data/lamp/none",
            ],
        )
        .await,
        "ResourceNotFoundException",
    );

    let connection = stdout_json(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "get-connection",
                "--client-id",
                "lamp",
                "--include-socket-information",
            ],
        )
        .await,
    );
    assert_eq!(connection["connected"], true);
    assert_eq!(connection["cleanSession"], false);
    assert_eq!(connection["thingName"], "lamp");
    assert_eq!(connection["sourceIp"], "127.0.0.1");
    assert_eq!(connection["targetPort"], broker.port());
    let subscriptions = stdout_json(
        &aws(
            &endpoint,
            &["iot-data", "list-subscriptions", "--client-id", "lamp"],
        )
        .await,
    );
    assert_eq!(
        subscriptions["subscriptions"],
        json!([{"topicFilter": "device/lamp/cmd", "qos": 1}])
    );

    // A direct message needs no subscription: device/lamp/direct is not one of lamp's.
    let sent = stdout_json(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "send-direct-message",
                "--client-id",
                "lamp",
                "--topic",
                "device/lamp/direct",
                "--payload",
                "ping",
            ],
        )
        .await,
    );
    assert_eq!(sent["message"], "OK");
    let direct = lamp.next_publish(broker_support::WAIT).await.unwrap();
    assert_eq!(
        (&direct.topic[..], &direct.payload[..]),
        (&b"device/lamp/direct"[..], &b"ping"[..])
    );

    assert_ok(
        &aws(
            &endpoint,
            &[
                "iot-data",
                "delete-connection",
                "--client-id",
                "lamp",
                "--clean-session",
                "--prevent-will-message",
            ],
        )
        .await,
    );
    lamp.expect_closed(broker_support::WAIT).await;
    for args in [
        &["iot-data", "list-subscriptions", "--client-id", "lamp"][..],
        &["iot-data", "delete-connection", "--client-id", "lamp"][..],
        &["iot-data", "get-connection", "--client-id", "nobody"][..],
        &[
            "iot-data",
            "send-direct-message",
            "--client-id",
            "lamp",
            "--topic",
            "device/lamp/direct",
        ][..],
    ] {
        assert_error(&aws(&endpoint, args).await, "ResourceNotFoundException");
    }
    assert_error(
        &aws(
            &endpoint,
            &["iot-data", "get-connection", "--client-id", "$aws-id"],
        )
        .await,
        "InvalidRequestException",
    );

    served.stop().await;
    broker.stop().await;
}

//! The AWS CLI's `iot-data` commands against the data-plane router on 127.0.0.1 (reference 3.10).
//! Needs the CLI in `.tools/venv` (`pip install awscli`); skipped when it is not installed.

mod http_support;
mod tool_support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use http_support::{ServedRouter, aws, aws_cli_installed};
use iot_emulator::dataplane::DataPlane;
use iot_emulator::shadow::{Publisher, QoS, RecordingPublisher, ShadowService, ShadowStore};
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

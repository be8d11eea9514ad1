//! The AWS CLI's `iot-data` commands against the data-plane router on 127.0.0.1 (reference 3.10).
//! Needs the CLI in `.tools/venv` (`pip install awscli`); skipped when it is not installed.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use iot_emulator::dataplane::DataPlane;
use iot_emulator::shadow::{Publisher, QoS, RecordingPublisher, ShadowService, ShadowStore};
use serde_json::{Value, json};

const AWS_CLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/aws");

async fn aws(endpoint: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(AWS_CLI)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .output()
        .await
        .unwrap()
}

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
    if !Path::new(AWS_CLI).exists() {
        // CI installs the CLI (`make setup`); there a missing CLI is a failure, not a skip.
        assert!(
            std::env::var_os("REQUIRE_TEST_TOOLS").is_none(),
            "REQUIRE_TEST_TOOLS is set but {AWS_CLI} is not installed"
        );
        eprintln!("skipping: {AWS_CLI} is not installed");
        return;
    }
    let publisher = Arc::new(RecordingPublisher::new());
    let shadows = Arc::new(ShadowService::new(
        ShadowStore::in_memory(),
        publisher.clone() as Arc<dyn Publisher>,
    ));
    let router = DataPlane::new(shadows, publisher.clone()).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
            .unwrap();
    });
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

    let _ = shutdown.send(());
    server.await.unwrap();
}

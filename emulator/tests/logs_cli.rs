//! A user reading records with the AWS CLI (`aws --endpoint-url ... logs ...`), against the router on
//! 127.0.0.1. Needs the CLI in `.tools/venv` (`pip install awscli`); skipped when it is not installed.

use std::path::Path;
use std::process::Output;

use iot_emulator::logs::{LogsService, LogsStore, now_millis};
use serde_json::{Value, json};

const AWS_CLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/aws");

async fn aws(endpoint: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(AWS_CLI)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS")
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

fn ok_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "aws failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn aws_cli_reads_and_filters_log_records() {
    if !Path::new(AWS_CLI).exists() {
        // CI installs the CLI (`make setup`); there a missing CLI is a failure, not a skip.
        assert!(
            std::env::var_os("REQUIRE_TEST_TOOLS").is_none(),
            "REQUIRE_TEST_TOOLS is set but {AWS_CLI} is not installed"
        );
        eprintln!("skipping: {AWS_CLI} is not installed");
        return;
    }
    let store = LogsStore::in_memory();
    let router = LogsService::new(store).router();
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

    let group = "/iot/presence/disconnects";
    ok_json(
        &aws(
            &endpoint,
            &["logs", "create-log-group", "--log-group-name", group],
        )
        .await,
    );
    ok_json(
        &aws(
            &endpoint,
            &[
                "logs",
                "create-log-stream",
                "--log-group-name",
                group,
                "--log-stream-name",
                "pi-1",
            ],
        )
        .await,
    );
    let now = now_millis();
    let events = json!([
        {"timestamp": now - 2, "message": r#"{"clientId":"pi-1","disconnectReason":"MQTT_KEEP_ALIVE_TIMEOUT"}"#},
        {"timestamp": now - 1, "message": r#"{"clientId":"pi-2","disconnectReason":"CLIENT_INITIATED_DISCONNECT"}"#},
        {"timestamp": now, "message": "plain text line"}
    ])
    .to_string();
    let put = ok_json(
        &aws(
            &endpoint,
            &[
                "logs",
                "put-log-events",
                "--log-group-name",
                group,
                "--log-stream-name",
                "pi-1",
                "--log-events",
                &events,
            ],
        )
        .await,
    );
    assert!(put.get("rejectedLogEventsInfo").is_none(), "{put}");

    let read = ok_json(
        &aws(
            &endpoint,
            &[
                "logs",
                "get-log-events",
                "--log-group-name",
                group,
                "--log-stream-name",
                "pi-1",
                "--start-from-head",
            ],
        )
        .await,
    );
    let messages: Vec<_> = read["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2], "plain text line");
    assert!(read["nextForwardToken"].as_str().unwrap().starts_with("f/"));

    // The CLI paginates FilterLogEvents itself until nextToken is absent.
    let filtered = ok_json(
        &aws(
            &endpoint,
            &[
                "logs",
                "filter-log-events",
                "--log-group-name",
                group,
                "--filter-pattern",
                r#"{ $.disconnectReason = "MQTT_*" }"#,
            ],
        )
        .await,
    );
    let events = filtered["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["logStreamName"], "pi-1");
    assert!(events[0]["message"].as_str().unwrap().contains("pi-1"));

    let groups = ok_json(
        &aws(
            &endpoint,
            &[
                "logs",
                "describe-log-groups",
                "--log-group-name-prefix",
                "/iot",
            ],
        )
        .await,
    );
    assert_eq!(groups["logGroups"][0]["logGroupName"], group);

    let missing = aws(
        &endpoint,
        &[
            "logs",
            "get-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            "nobody",
        ],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("ResourceNotFoundException")
            && stderr.contains("The specified log stream does not exist."),
        "{stderr}"
    );

    let _ = shutdown.send(());
    server.await.unwrap();
}

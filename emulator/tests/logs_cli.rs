//! A user reading records with the AWS CLI (`aws --endpoint-url ... logs ...`), against the router on
//! 127.0.0.1. Needs the CLI in `.tools/venv` (`pip install awscli`); skipped when it is not installed.

mod http_support;
mod tool_support;

use std::process::Output;

use http_support::{ServedRouter, aws, aws_cli_installed};
use iot_emulator::logs::{LogsService, LogsStore, now_millis};
use serde_json::{Value, json};

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
    if !aws_cli_installed() {
        return;
    }
    let store = LogsStore::in_memory();
    let router = LogsService::new(store).router();
    let served = ServedRouter::start(router).await;
    let endpoint = served.endpoint();

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

    served.stop().await;
}

//! The Lambda service with a test double for a function: a `/bin/sh` + curl script that speaks the Lambda
//! Runtime API, appends every event it receives to `EVENTS_FILE` and misbehaves on request (function error, hang,
//! crash). Shared by `lambda_service.rs` and the `shutdown_drain` bench.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use iot_emulator::lambda::{FunctionSpec, LambdaService, LambdaSettings};
use iot_emulator::logs::LogsStore;
use serde_json::Value;

/// `$$` keeps the instances that run at once from reading each other's headers (and answering another's
/// request id).
const SCRIPT: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while :; do
  headers="$EVENTS_FILE.$$.headers"
  body=$(curl -s -D "$headers" "$api/invocation/next") || exit 1
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\r')
  echo "$body" >> "$EVENTS_FILE"
  case "$body" in
    *hang*) [ -e "$EVENTS_FILE.released" ] || exec sleep 30
            curl -sS -X POST -d '{"ok":true}' "$api/invocation/$id/response" >/dev/null ;;
    *crash*) exit 3 ;;
    *fail*) curl -sS -X POST -d '{"errorType":"Boom","errorMessage":"asked to fail"}' "$api/invocation/$id/error" >/dev/null ;;
    *) curl -sS -X POST -d '{"ok":true}' "$api/invocation/$id/response" >/dev/null ;;
  esac
done
"#;

pub struct Fixture {
    pub service: LambdaService,
    pub logs: LogsStore,
    pub events_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// From now on a `hang` event is answered like any other, by every instance of this fixture.
    pub fn release_hanging(&self) {
        let mut marker = self.events_file.clone().into_os_string();
        marker.push(".released");
        std::fs::write(marker, b"").unwrap();
    }
}

pub fn start(timeout: Duration, retries: u32) -> Fixture {
    start_with(timeout, retries, Some(1))
}

pub fn start_with(timeout: Duration, retries: u32, max_concurrency: Option<u32>) -> Fixture {
    start_aging(
        timeout,
        retries,
        max_concurrency,
        Duration::from_secs(6 * 60 * 60),
    )
}

pub fn start_aging(
    timeout: Duration,
    retries: u32,
    max_concurrency: Option<u32>,
    maximum_event_age: Duration,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("bootstrap");
    std::fs::write(&binary, SCRIPT).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&binary)
        .status()
        .unwrap();
    let events_file = dir.path().join("events.txt");
    let logs = LogsStore::in_memory();
    let spec = FunctionSpec {
        name: "double".into(),
        binary,
        environment: [("EVENTS_FILE".to_owned(), events_file.display().to_string())].into(),
        timeout,
        memory_mb: 128,
        maximum_retry_attempts: retries,
        maximum_event_age,
        on_failure_destination: Some("arn:aws:sqs:us-east-1:123456789012:failed".into()),
        log_file: None,
        max_concurrency,
    };
    let settings = LambdaSettings {
        retry_delay: Duration::from_millis(50),
        ..LambdaSettings::default()
    };
    Fixture {
        service: LambdaService::start(vec![spec], settings, logs.clone()),
        logs,
        events_file,
        _dir: dir,
    }
}

pub fn events_seen(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

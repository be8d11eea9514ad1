//! The `iot-emulator` binary on a newcomer's path (issue 18): what it prints when something goes wrong or is
//! missing, `logs tail`, `subscribe`, `env`.

mod http_support;
mod tool_support;

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

fn emulator() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_iot-emulator"));
    command.kill_on_drop(true);
    command
}

/// A `http://127.0.0.1:<port>` URL that nothing listens on.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn ordinary_errors_are_one_short_message_even_with_rust_backtrace_set() {
    let state = tempfile::tempdir().unwrap();
    let url = closed_url();
    let failing: [Vec<&str>; 2] = [
        vec!["shadow", "get", "ratchet", "--data-plane-url", &url],
        vec!["certificate", "0123", "BOGUS"],
    ];
    for args in failing {
        for backtrace in ["1", "full"] {
            let output = emulator()
                .env("RUST_BACKTRACE", backtrace)
                .env("RUST_LIB_BACKTRACE", backtrace)
                .arg("--state-dir")
                .arg(state.path())
                .args(&args)
                .output()
                .await
                .unwrap();
            let text = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
            assert!(text.starts_with("error: "), "{args:?}: {text}");
            assert!(
                !text.to_lowercase().contains("backtrace"),
                "{args:?}: {text}"
            );
            assert!(text.lines().count() <= 3, "{args:?}: {text}");
            if args[0] == "shadow" {
                assert!(
                    text.contains(&format!("cannot reach {url}")) && text.contains("refused"),
                    "the message and its causes: {text}"
                );
            }
        }
    }
}

/// `iot-emulator up` on free ports in `state`, with its stdout and stderr piped; killed when dropped.
fn spawn_up(state: &std::path::Path, extra: &[&str]) -> tokio::process::Child {
    spawn_up_with_logs_port(state, "0", extra)
}

/// `spawn_up` with the CloudWatch Logs API on `logs_port`.
fn spawn_up_with_logs_port(
    state: &std::path::Path,
    logs_port: &str,
    extra: &[&str],
) -> tokio::process::Child {
    emulator()
        .arg("--state-dir")
        .arg(state)
        .args(["up", "--free-ports", "--logs-port", logs_port])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first line of `lines` that contains `needle`, within 10 s.
async fn line_containing<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    needle: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("no line with {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no line with {needle:?} within 10 s"))
}

#[tokio::test]
async fn up_without_a_template_says_what_is_missing_and_how_to_pass_one() {
    let state = tempfile::tempdir().unwrap();
    let mut up = spawn_up(state.path(), &[]);
    let mut stderr = BufReader::new(up.stderr.take().unwrap()).lines();
    let warning = line_containing(&mut stderr, "no --template given").await;
    assert!(warning.contains("WARN"), "{warning}");
    for expected in [
        "no rules, no functions and no policies",
        "--template target/demo/cdk.out/IotPresence.template.json",
        "make demo",
        "make synth",
    ] {
        assert!(warning.contains(expected), "{expected:?} in {warning}");
    }
    let mut stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    let rules = line_containing(&mut stdout, "rules ").await;
    assert!(rules.ends_with("none (no --template)"), "{rules}");
    up.kill().await.unwrap();
}

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;

/// Runs `provision` with `extra` arguments; returns its JSON summary and stderr.
async fn provision(state: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let output = emulator()
        .arg("--state-dir")
        .arg(state)
        .args(["provision", "ratchet"])
        .args(extra)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    (
        serde_json::from_slice(&output.stdout).unwrap(),
        stderr(&output),
    )
}

fn warnings(summary: &serde_json::Value) -> Vec<String> {
    summary["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| warning.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn provision_warns_about_no_policy_and_earlier_active_certificates() {
    let state = tempfile::tempdir().unwrap();
    // On the files (no emulator running).
    let (first, first_stderr) = provision(state.path(), &[]).await;
    let first_id = first["certificateId"].as_str().unwrap().to_owned();
    assert_eq!(first["policies"], serde_json::json!([]));
    let first_warnings = warnings(&first);
    assert_eq!(first_warnings.len(), 1, "{first_warnings:?}");
    assert!(first_warnings[0].starts_with("no policy is attached"));
    assert!(first_stderr.contains(&format!("warning: {}", first_warnings[0])));

    let (second, second_stderr) = provision(state.path(), &[]).await;
    let second_id = second["certificateId"].as_str().unwrap().to_owned();
    let second_warnings = warnings(&second);
    assert_eq!(second_warnings.len(), 2, "{second_warnings:?}");
    assert!(
        second_warnings[1].contains(&format!("already had 1 ACTIVE certificate ({first_id})")),
        "{second_warnings:?}"
    );
    assert!(second_stderr.contains(&format!("warning: {}", second_warnings[1])));

    // Through the control plane of a running emulator, with a policy.
    let mut up = spawn_up(state.path(), &[]);
    let mut stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    line_containing(&mut stdout, "endpoints file").await;
    let policy = state.path().join("device.json");
    std::fs::write(&policy, POLICY).unwrap();
    let policy_file = format!("device={}", policy.display());
    let (third, _) = provision(state.path(), &["--policy-file", &policy_file]).await;
    assert_eq!(third["policies"], serde_json::json!(["device"]));
    let third_warnings = warnings(&third);
    assert_eq!(third_warnings.len(), 1, "{third_warnings:?}");
    let mut earlier = [first_id, second_id];
    earlier.sort();
    assert!(
        third_warnings[0].contains(&format!(
            "already had 2 ACTIVE certificates ({}, {})",
            earlier[0], earlier[1]
        )),
        "{third_warnings:?}"
    );
    up.kill().await.unwrap();
}

/// One CloudWatch Logs call (awsJson1.1) to `url`; it must succeed.
async fn logs_call(url: &str, operation: &str, body: serde_json::Value) {
    let target = format!("Logs_20140328.{operation}");
    let response = iot_emulator::cli::client::request(
        "POST",
        url,
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &target),
        ],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert!(response.is_success(), "{operation}: {response:?}");
}

async fn put_event(url: &str, message: &str) {
    let now = iot_emulator::logs::now_millis();
    logs_call(
        url,
        "PutLogEvents",
        serde_json::json!({"logGroupName": "/t", "logStreamName": "s",
                           "logEvents": [{"timestamp": now, "message": message}]}),
    )
    .await;
}

/// Stops `up` as Ctrl-C would and waits for it.
async fn interrupt(mut up: tokio::process::Child) {
    let pid = up.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(15), up.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn logs_tail_follow_prints_human_times_and_survives_a_restart_of_the_emulator() {
    let state = tempfile::tempdir().unwrap();
    let mut up = spawn_up(state.path(), &[]);
    let mut up_stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    line_containing(&mut up_stdout, "endpoints file").await;
    let logs_url = iot_emulator::cli::endpoints::Endpoints::read(state.path())
        .unwrap()
        .logs;
    let logs_port = logs_url.rsplit(':').next().unwrap().to_owned();
    logs_call(
        &logs_url,
        "CreateLogGroup",
        serde_json::json!({"logGroupName": "/t"}),
    )
    .await;
    logs_call(
        &logs_url,
        "CreateLogStream",
        serde_json::json!({"logGroupName": "/t", "logStreamName": "s"}),
    )
    .await;
    put_event(&logs_url, "before").await;

    let mut follow = emulator()
        .arg("--state-dir")
        .arg(state.path())
        .args(["logs", "tail", "/t", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = BufReader::new(follow.stdout.take().unwrap()).lines();
    let mut complaints = BufReader::new(follow.stderr.take().unwrap()).lines();
    let first = line_containing(&mut printed, "before").await;
    // 2026-12-02T16:51:42.123Z s before
    let (time, rest) = first.split_once(' ').unwrap();
    assert_eq!(rest, "s before");
    assert_eq!(time.len(), "2026-12-02T16:51:42.123Z".len(), "{first}");
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T' && time.as_bytes()[19] == b'.');

    interrupt(up).await;
    let warning = line_containing(&mut complaints, "retrying").await;
    assert!(warning.contains("cannot reach"), "{warning}");

    let mut again = spawn_up_with_logs_port(state.path(), &logs_port, &[]);
    let mut again_stdout = BufReader::new(again.stdout.take().unwrap()).lines();
    line_containing(&mut again_stdout, "endpoints file").await;
    put_event(&logs_url, "after").await;
    let next = tokio::time::timeout(Duration::from_secs(15), printed.next_line())
        .await
        .expect("the follow prints the event written after the restart")
        .unwrap()
        .unwrap();
    assert!(next.ends_with(" s after"), "no duplicate, no gap: {next}");
    line_containing(&mut complaints, "answers again").await;
    follow.kill().await.unwrap();
    again.kill().await.unwrap();
}

#[tokio::test]
async fn env_without_a_running_emulator_says_how_to_start_one() {
    let state = tempfile::tempdir().unwrap();
    let output = emulator()
        .arg("--state-dir")
        .arg(state.path().join("nothing-here"))
        .arg("env")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let text = stderr(&output);
    assert!(
        text.starts_with("error: no running emulator found: ")
            && text.contains("endpoints.json does not exist")
            && text.contains("iot-emulator up"),
        "{text}"
    );
    assert!(
        !state.path().join("nothing-here").exists(),
        "env creates nothing"
    );
}

#[tokio::test]
async fn env_exports_the_running_emulators_endpoints_and_the_aws_cli_works_with_them() {
    let state = tempfile::tempdir().unwrap();
    let mut up = spawn_up(state.path(), &[]);
    let mut up_stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    line_containing(&mut up_stdout, "endpoints file").await;
    let endpoints = iot_emulator::cli::endpoints::Endpoints::read(state.path()).unwrap();

    let output = emulator()
        .arg("--state-dir")
        .arg(state.path())
        .arg("env")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut exported = std::collections::BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let assignment = line.strip_prefix("export ").expect(line);
        let (name, quoted) = assignment.split_once('=').expect(line);
        let value = quoted
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .expect(line);
        assert!(!value.contains('\''), "{line}");
        exported.insert(name.to_owned(), value.to_owned());
    }
    let expected: std::collections::BTreeMap<String, String> = [
        (
            "AWS_ENDPOINT_URL_IOT",
            endpoints.control_plane.clone().unwrap(),
        ),
        (
            "AWS_ENDPOINT_URL_IOT_DATA_PLANE",
            endpoints.data_plane.clone(),
        ),
        ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", endpoints.logs.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "emulator".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "emulator".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(exported, expected);

    // The README's lines as written: eval, then plain `aws` without --endpoint-url, region or credentials.
    if http_support::aws_cli_installed() {
        let script = format!(
            "eval \"$('{}' --state-dir '{}' env)\" && '{aws}' logs describe-log-groups && '{aws}' iot list-things",
            env!("CARGO_BIN_EXE_iot-emulator"),
            state.path().display(),
            aws = http_support::AWS_CLI,
        );
        let mut shell = tokio::process::Command::new("sh");
        shell.args(["-c", &script]);
        for name in expected.keys() {
            shell.env_remove(name);
        }
        let run = shell
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_PAGER", "")
            .output()
            .await
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        let listed = String::from_utf8_lossy(&run.stdout);
        assert!(
            listed.contains("logGroups") && listed.contains("things"),
            "{listed}"
        );
    }
    up.kill().await.unwrap();
}

async fn http_publish(data_plane: &str, topic: &str, payload: &str, retain: bool) {
    let path = format!(
        "/topics/{}?qos=1&retain={retain}",
        iot_emulator::percent::url_component(topic)
    );
    let response =
        iot_emulator::cli::client::request("POST", data_plane, &path, &[], payload.as_bytes())
            .await
            .unwrap();
    assert!(response.is_success(), "{response:?}");
}

fn subscriber(state: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    emulator()
        .arg("--state-dir")
        .arg(state)
        .arg("subscribe")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_tails_the_traffic_retained_first_and_survives_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let mut up = spawn_up(state.path(), &[]);
    let mut up_stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    line_containing(&mut up_stdout, "endpoints file").await;
    let data_plane = iot_emulator::cli::endpoints::Endpoints::read(state.path())
        .unwrap()
        .data_plane;
    let data_plane_port = data_plane.rsplit(':').next().unwrap().to_owned();
    http_publish(&data_plane, "status/pi-01", r#"{"up":true}"#, true).await;

    let mut watch = subscriber(
        state.path(),
        &["data/+/temperature", "status/pi-01", "--json"],
    );
    let mut printed = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut notes = BufReader::new(watch.stderr.take().unwrap()).lines();
    line_containing(&mut notes, "subscribed to").await;
    // The retained message of a filter without wildcards comes first, as for an MQTT subscriber.
    let retained: serde_json::Value =
        serde_json::from_str(&line_containing(&mut printed, "status/pi-01").await).unwrap();
    assert_eq!(retained["retain"], true);
    assert_eq!(retained["payload"], r#"{"up":true}"#);
    assert_eq!(
        retained["publisher"],
        serde_json::json!({"service": "data-plane"})
    );

    http_publish(&data_plane, "other/topic", "not watched", false).await;
    http_publish(
        &data_plane,
        "data/pi-01/temperature",
        "{\"temp\":41.2}",
        false,
    )
    .await;
    let line: serde_json::Value =
        serde_json::from_str(&line_containing(&mut printed, "temperature").await).unwrap();
    assert_eq!(line["topic"], "data/pi-01/temperature");
    assert_eq!(line["qos"], 1);
    assert_eq!(line["payload"], "{\"temp\":41.2}");

    // The emulator restarts on the same data-plane port: the tail says so and goes on.
    interrupt(up).await;
    line_containing(&mut notes, "stopped; subscribing again").await;
    let mut again = emulator()
        .arg("--state-dir")
        .arg(state.path())
        .args(["up", "--free-ports", "--data-plane-port", &data_plane_port])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut again_stdout = BufReader::new(again.stdout.take().unwrap()).lines();
    line_containing(&mut again_stdout, "endpoints file").await;
    line_containing(&mut notes, "subscribed to").await;
    http_publish(&data_plane, "data/pi-02/temperature", "after", false).await;
    let next = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = printed.next_line().await.unwrap().unwrap();
            if !line.contains("status/pi-01") {
                return line;
            }
        }
    })
    .await
    .expect("a message published after the restart");
    assert!(next.contains("data/pi-02/temperature"), "{next}");
    watch.kill().await.unwrap();

    // The human format, --count and --duration end it with status 0; a bad filter is a one-line error.
    let counted = subscriber(state.path(), &["data/#", "--count", "1"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    http_publish(&data_plane, "data/pi-03/vibration", "a\nb", false).await;
    let counted = tokio::time::timeout(Duration::from_secs(10), counted.wait_with_output())
        .await
        .expect("--count 1 exits after one message")
        .unwrap();
    assert!(counted.status.success(), "{counted:?}");
    let text = String::from_utf8(counted.stdout).unwrap();
    let (time, rest) = text.trim_end().split_once(' ').unwrap();
    assert_eq!(rest, "data/pi-03/vibration a\\nb");
    assert_eq!(time.len(), "2026-12-02T16:51:42.123Z".len(), "{text}");
    let quiet = subscriber(state.path(), &["nothing/here", "--duration", "0.5"])
        .wait_with_output()
        .await
        .unwrap();
    assert!(
        quiet.status.success() && quiet.stdout.is_empty(),
        "{quiet:?}"
    );
    let invalid = subscriber(state.path(), &["data/#/x"])
        .wait_with_output()
        .await
        .unwrap();
    assert_eq!(invalid.status.code(), Some(1), "{invalid:?}");
    let message = stderr(&invalid);
    assert!(
        message.starts_with("error: HTTP 400") && message.lines().count() == 1,
        "{message}"
    );
    again.kill().await.unwrap();
}

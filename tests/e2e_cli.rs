//! The CLI a user has: `iot-emulator up --template` runs the rules and the real functions (found next to the
//! executable, as `cargo build` lays them out), writes `endpoints.json`, and `publish`, `shadow update|get` and
//! `logs tail` talk to it over its HTTP APIs, and its control plane answers on the port `endpoints.json` names.
//! SIGTERM stops it cleanly.
//!
//! Runs the emulator's and the functions' binaries (see `system_tests::binaries`).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use iot_emulator::cli::client;
use system_tests::binaries::{DEVICE_AGENT, EMULATOR_CLI, FUNCTIONS, project_binary};
use system_tests::template_support::stack_template_path;

fn emulator(state: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(project_binary(EMULATOR_CLI));
    command.arg("--state-dir").arg(state);
    command
}

async fn run(state: &Path, args: &[&str]) -> Output {
    emulator(state).args(args).output().await.unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_template_then_publish_shadow_and_logs_subcommands() {
    for function in FUNCTIONS {
        project_binary(function);
    }
    let template = stack_template_path();
    let state = tempfile::tempdir().unwrap();
    let mut up = emulator(state.path())
        .args(["up", "--template"])
        .arg(&template)
        .args(["--free-ports"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let endpoints = state.path().join("endpoints.json");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !endpoints.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("endpoints.json written by up");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let endpoints: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&endpoints).unwrap()).unwrap();
    assert!(
        endpoints["dataPlane"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(
        endpoints["logs"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    // The control plane answers where endpoints.json says: DescribeEndpoint names the MQTT host, and the
    // template's rules are listed.
    let control_plane = endpoints["controlPlane"].as_str().unwrap();
    assert!(
        control_plane.starts_with("http://127.0.0.1:"),
        "{endpoints}"
    );
    let described = client::request(
        "GET",
        control_plane,
        "/endpoint?endpointType=iot:Data-ATS",
        &[],
        b"",
    )
    .await
    .unwrap();
    let described: serde_json::Value = serde_json::from_slice(&described.body).unwrap();
    let mqtt_host = endpoints["mqtt"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    assert_eq!(described["endpointAddress"], mqtt_host);
    let rule = client::request("GET", control_plane, "/rules/DisconnectWill", &[], b"")
        .await
        .unwrap();
    assert!(
        rule.is_success(),
        "{:?}",
        String::from_utf8_lossy(&rule.body)
    );

    // A will published over HTTP goes through rule DisconnectWill to the real disconnect-recorder.
    let will = r#"{"thing":"ratchet","agentSession":"cli","connectedAt":1,"agentVersion":"cli","reason":"unexpected"}"#;
    let published = run(
        state.path(),
        &["publish", "device/ratchet/lwt", will, "--qos", "1"],
    )
    .await;
    assert!(published.status.success(), "{published:?}");
    let mut tail = String::new();
    for _ in 0..100 {
        let output = run(
            state.path(),
            &[
                "logs",
                "tail",
                "/iot/device-disconnects",
                "--stream",
                "ratchet",
            ],
        )
        .await;
        tail = stdout(&output);
        if tail.contains("LAST_WILL") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = tail
        .lines()
        .find(|line| line.contains("LAST_WILL"))
        .expect(&tail);
    let record: serde_json::Value =
        serde_json::from_str(line.splitn(3, ' ').nth(2).unwrap()).unwrap();
    assert_eq!(record["agentSession"], "cli");
    assert_eq!(record["clientId"], "n/a", "clientid() of an HTTP publish");

    let updated = run(
        state.path(),
        &[
            "shadow",
            "update",
            "ratchet",
            r#"{"state":{"desired":{"MOTOR":"ON"}}}"#,
        ],
    )
    .await;
    assert!(updated.status.success(), "{updated:?}");
    let got = run(state.path(), &["shadow", "get", "ratchet"]).await;
    let document: serde_json::Value = serde_json::from_str(&stdout(&got)).unwrap();
    assert_eq!(document["state"]["delta"]["MOTOR"], "ON");
    let missing = run(
        state.path(),
        &["shadow", "get", "ratchet", "--name", "nope"],
    )
    .await;
    assert!(!missing.status.success(), "a 404 is an error exit");

    // Issue 18: provision writes a ready agent config, and the real agent runs with it as it is.
    let provisioned = run(state.path(), &["provision", "ratchet"]).await;
    assert!(provisioned.status.success(), "{provisioned:?}");
    let provisioned: serde_json::Value = serde_json::from_str(&stdout(&provisioned)).unwrap();
    let agent_config = provisioned["agentConfig"].as_str().unwrap().to_owned();
    assert!(
        provisioned["runAgent"]
            .as_str()
            .unwrap()
            .ends_with(&format!("--config {agent_config} run")),
        "{provisioned}"
    );
    let agent = project_binary(DEVICE_AGENT);
    let check = tokio::process::Command::new(&agent)
        .args(["--config", &agent_config, "check"])
        .output()
        .await
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let mut running_agent = tokio::process::Command::new(&agent)
        .args(["--config", &agent_config, "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut connectivity = serde_json::Value::Null;
    for _ in 0..100 {
        let output = run(
            state.path(),
            &["shadow", "get", "ratchet", "--name", "connectivity"],
        )
        .await;
        if output.status.success() {
            connectivity = serde_json::from_str(&stdout(&output)).unwrap();
            if connectivity["state"]["reported"]["connected"] == true {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        connectivity["state"]["reported"]["connected"], true,
        "the agent did not connect with the written config: {connectivity}"
    );
    running_agent.kill().await.unwrap();

    // things list, shadow list, shadow delete (issue 18).
    let things = run(state.path(), &["things", "list"]).await;
    assert!(things.status.success(), "{things:?}");
    let things: serde_json::Value = serde_json::from_str(&stdout(&things)).unwrap();
    assert!(
        things["things"]
            .as_array()
            .unwrap()
            .iter()
            .any(|thing| thing["thingName"] == "ratchet"),
        "{things}"
    );
    let named = run(state.path(), &["shadow", "list", "ratchet"]).await;
    assert!(named.status.success(), "{named:?}");
    let named: serde_json::Value = serde_json::from_str(&stdout(&named)).unwrap();
    assert!(
        named["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|name| name == "connectivity"),
        "{named}"
    );
    let deleted = run(state.path(), &["shadow", "delete", "ratchet"]).await;
    assert!(deleted.status.success(), "{deleted:?}");
    let gone = run(state.path(), &["shadow", "get", "ratchet"]).await;
    assert!(!gone.status.success(), "the classic shadow is deleted");

    let pid = up.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), up.wait())
        .await
        .expect("up stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

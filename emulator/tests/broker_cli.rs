//! The `iot-emulator` binary as a user runs it: `provision` writes the device files like
//! `create-keys-and-certificate`, `up` prints where it listens, mosquitto connects with the files, Ctrl-C (SIGINT)
//! stops it cleanly, and a second `up` on the same state directory is refused with the first one's pid.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
  {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/data/${iot:Connection.Thing.ThingName}/*"}]}"#;

fn emulator() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_iot-emulator"))
}

#[tokio::test]
async fn provision_then_up_then_publish_then_ctrl_c() {
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("device.json");
    std::fs::write(&policy, POLICY).unwrap();
    let output = emulator()
        .arg("--state-dir")
        .arg(state.path())
        .args(["provision", "ratchet", "--policy-file"])
        .arg(format!("device={}", policy.display()))
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["thingName"], "ratchet");
    assert_eq!(summary["policies"], serde_json::json!(["device"]));
    let certificate_id = summary["certificateId"].as_str().unwrap();
    assert_eq!(certificate_id.len(), 64);
    assert!(
        summary["certificateArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("cert/{certificate_id}"))
    );
    let files = &summary["files"];
    let path = |key: &str| files[key].as_str().unwrap().to_owned();
    for key in ["certificate", "privateKey", "publicKey", "rootCA"] {
        assert!(std::path::Path::new(&path(key)).exists(), "{key}");
    }

    let mut up = emulator()
        .arg("--state-dir")
        .arg(state.path())
        .args(["up", "--free-ports"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let port: u16 = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.split("mqtts://").nth(1) {
                return address.rsplit(':').next().unwrap().trim().parse().unwrap();
            }
        }
        panic!("`up` did not print its MQTT address");
    })
    .await
    .unwrap();

    let publish = tokio::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "-i",
            "ratchet",
            "-q",
            "1",
        ])
        .args([
            "--cafile",
            &path("rootCA"),
            "--cert",
            &path("certificate"),
            "--key",
            &path("privateKey"),
        ])
        .args(["-t", "data/ratchet/temperature", "-m", "{}"])
        .output()
        .await
        .unwrap();
    assert!(publish.status.success(), "{publish:?}");

    let pid = up.id().unwrap().to_string();
    // A second `up` on the same state directory would overwrite endpoints.json and split the registry.
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        emulator()
            .arg("--state-dir")
            .arg(state.path())
            .args(["up", "--free-ports"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("a second `up` must be refused at once, not run")
    .unwrap();
    assert!(!second.status.success(), "{second:?}");
    let refusal = String::from_utf8_lossy(&second.stderr);
    assert!(
        refusal.contains(&format!("in use by iot-emulator up (pid {pid})")),
        "{refusal}"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), up.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "clean exit on Ctrl-C: {exit:?}");
}

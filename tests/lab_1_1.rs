//! Lab 1.1 of the AWS IoT Immersion Day, as the seed article's author did it, against `iot-emulator up` with the
//! real AWS CLI: create the thing, the keys and certificate and the article's least-privilege policy (verbatim),
//! attach them, connect. Then the author's two observations:
//! - an updated policy is a new *version*, used only once it is made the default, and then at once for a device
//!   that is already connected (reference 4.1);
//! - deactivating the certificate does not cut the device that is connected, while a new connection is refused.
//!
//! And what a newcomer does next: a thing provisioned while the emulator runs (through the AWS CLI or
//! `iot-emulator provision`) connects without a restart.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use iot_emulator::identity::IssuedCertificate;
use iot_emulator::registry::{self, ProvisionedDevice};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Connect, Packet};
use serde_json::Value;
use system_tests::binaries::{EMULATOR_CLI, project_binary};
use system_tests::broker_support::{Device, RawClient, Received};
use system_tests::http_support::{aws, aws_cli_installed};

/// The article's least-privilege policy for thing `ratchet` in account 123456789012, character for character;
/// the README's lab 1.1 uses the same file.
const SEED_POLICY: &str = include_str!("../examples/lab-1-1/policy-v1.json");

/// Version 2: the same, plus publishing to `device/ratchet/status`.
const SECOND_VERSION: &str = include_str!("../examples/lab-1-1/policy-v2.json");
/// Any thing may connect as itself and publish under its own name (a thing-name policy variable).
const THING_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
  {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/device/${iot:Connection.Thing.ThingName}/*"}]}"#;

const WAIT: Duration = Duration::from_secs(5);

struct Emulator {
    process: tokio::process::Child,
    state: tempfile::TempDir,
    mqtt_port: u16,
    control_plane: String,
}

impl Emulator {
    async fn up() -> Emulator {
        let state = tempfile::tempdir().unwrap();
        let process = tokio::process::Command::new(project_binary(EMULATOR_CLI))
            .arg("--state-dir")
            .arg(state.path())
            .args(["up", "--free-ports"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let path = state.path().join("endpoints.json");
        let endpoints: Value = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Ok(text) = std::fs::read(&path)
                    && let Ok(json) = serde_json::from_slice(&text)
                {
                    return json;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("`up` writes endpoints.json");
        let mqtt_port = endpoints["mqtt"]
            .as_str()
            .and_then(|address| address.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .expect("endpoints.json names the MQTT address");
        let control_plane = endpoints["controlPlane"]
            .as_str()
            .expect("endpoints.json names the control plane")
            .to_owned();
        Emulator {
            process,
            state,
            mqtt_port,
            control_plane,
        }
    }

    async fn aws(&self, args: &[&str]) -> Value {
        let output = aws(&self.control_plane, args).await;
        assert!(
            output.status.success(),
            "aws {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&output.stdout).unwrap()
        }
    }

    async fn aws_error(&self, args: &[&str]) -> String {
        let output = aws(&self.control_plane, args).await;
        assert!(!output.status.success(), "aws {} succeeded", args.join(" "));
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    fn root_ca(&self) -> PathBuf {
        self.state.path().join("ca").join(registry::ROOT_CA_FILE)
    }

    /// `create-thing` + `create-keys-and-certificate --set-as-active` + `attach-policy` + `attach-thing-principal`,
    /// the console wizard's steps, with the AWS CLI; the device's files as the wizard downloads them.
    async fn create_device(&self, thing: &str, policy: &str) -> (Device, String) {
        self.aws(&["iot", "create-thing", "--thing-name", thing])
            .await;
        let keys = self
            .aws(&["iot", "create-keys-and-certificate", "--set-as-active"])
            .await;
        let certificate_arn = keys["certificateArn"].as_str().unwrap().to_owned();
        let certificate_pem = keys["certificatePem"].as_str().unwrap().to_owned();
        self.aws(&[
            "iot",
            "attach-policy",
            "--policy-name",
            policy,
            "--target",
            &certificate_arn,
        ])
        .await;
        self.aws(&[
            "iot",
            "attach-thing-principal",
            "--thing-name",
            thing,
            "--principal",
            &certificate_arn,
        ])
        .await;
        let provisioned = ProvisionedDevice {
            thing_name: thing.to_owned(),
            certificate: IssuedCertificate {
                certificate_id: keys["certificateId"].as_str().unwrap().to_owned(),
                certificate_der: iot_emulator::identity::pem_to_der(&certificate_pem).unwrap(),
                certificate_pem,
                private_key_pem: keys["keyPair"]["PrivateKey"].as_str().unwrap().to_owned(),
                public_key_pem: keys["keyPair"]["PublicKey"].as_str().unwrap().to_owned(),
            },
            policies: vec![policy.to_owned()],
        };
        let dir = self.state.path().join("downloads").join(thing);
        let root_ca = std::fs::read_to_string(self.root_ca()).unwrap();
        registry::write_device_files(&dir, &provisioned, &root_ca).unwrap();
        let device = Device {
            client_id: thing.to_owned(),
            dir,
            provisioned,
        };
        (device, certificate_arn)
    }

    async fn stop(mut self) {
        let pid = self.process.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.process.wait())
            .await
            .expect("`up` stops on SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    format!("file://{}", path.display())
}

fn is_puback(received: &Received) -> bool {
    matches!(received, Received::Packet(Packet::PubAck(_)))
}

async fn connect(port: u16, device: &Device) -> Received {
    let mut connect = Connect::new(device.client_id.clone());
    connect.keep_alive = 60;
    RawClient::connect_with(port, device, connect).await.1
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_1_1_with_the_aws_cli_policy_versions_and_certificate_status() {
    if !aws_cli_installed() {
        return;
    }
    let emulator = Emulator::up().await;
    let files = tempfile::tempdir().unwrap();
    let port = emulator.mqtt_port;

    let endpoint = emulator
        .aws(&[
            "iot",
            "describe-endpoint",
            "--endpoint-type",
            "iot:Data-ATS",
        ])
        .await;
    assert!(endpoint["endpointAddress"].as_str().is_some(), "{endpoint}");

    let seed = write_file(files.path(), "seed-policy.json", SEED_POLICY);
    let created = emulator
        .aws(&[
            "iot",
            "create-policy",
            "--policy-name",
            "ratchet-policy",
            "--policy-document",
            &seed,
        ])
        .await;
    assert_eq!(created["policyVersionId"], "1");
    let (ratchet, certificate_arn) = emulator.create_device("ratchet", "ratchet-policy").await;

    // Confined by the seed policy: its own data topic yes, anything else no (AWS closes the connection).
    let mut device = RawClient::connect(port, &ratchet).await;
    device.subscribe_ok("app/data", QoS::AtLeastOnce).await;
    let published = device
        .publish("device/ratchet/data", b"{}", QoS::AtLeastOnce, false)
        .await;
    assert!(is_puback(&published), "{published:?}");
    let denied = device
        .publish("device/ratchet/status", b"{}", QoS::AtLeastOnce, false)
        .await;
    assert!(matches!(denied, Received::Closed), "{denied:?}");

    // A second version created without --set-as-default changes nothing.
    let version_two = write_file(files.path(), "v2.json", SECOND_VERSION);
    let created = emulator
        .aws(&[
            "iot",
            "create-policy-version",
            "--policy-name",
            "ratchet-policy",
            "--policy-document",
            &version_two,
        ])
        .await;
    assert_eq!(created["policyVersionId"], "2");
    assert_eq!(created["isDefaultVersion"], false);
    let mut device = RawClient::connect(port, &ratchet).await;
    let still_denied = device
        .publish("device/ratchet/status", b"{}", QoS::AtLeastOnce, false)
        .await;
    assert!(matches!(still_denied, Received::Closed), "{still_denied:?}");

    // Made the default, it applies at once to the connection that is already open.
    let mut device = RawClient::connect(port, &ratchet).await;
    emulator
        .aws(&[
            "iot",
            "set-default-policy-version",
            "--policy-name",
            "ratchet-policy",
            "--policy-version-id",
            "2",
        ])
        .await;
    let allowed = device
        .publish("device/ratchet/status", b"{}", QoS::AtLeastOnce, false)
        .await;
    assert!(is_puback(&allowed), "{allowed:?}");
    let versions = emulator
        .aws(&[
            "iot",
            "list-policy-versions",
            "--policy-name",
            "ratchet-policy",
        ])
        .await;
    let defaults: Vec<_> = versions["policyVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|version| version["isDefaultVersion"] == true)
        .map(|version| version["versionId"].clone())
        .collect();
    assert_eq!(defaults, ["2"]);
    let conflict = emulator
        .aws_error(&[
            "iot",
            "delete-policy-version",
            "--policy-name",
            "ratchet-policy",
            "--policy-version-id",
            "2",
        ])
        .await;
    assert!(conflict.contains("DeleteConflictException"), "{conflict}");

    // INACTIVE: the open connection goes on, a new one is refused at the handshake.
    let certificate_id = certificate_arn.rsplit('/').next().unwrap();
    emulator
        .aws(&[
            "iot",
            "update-certificate",
            "--certificate-id",
            certificate_id,
            "--new-status",
            "INACTIVE",
        ])
        .await;
    let described = emulator
        .aws(&[
            "iot",
            "describe-certificate",
            "--certificate-id",
            certificate_id,
        ])
        .await;
    assert_eq!(described["certificateDescription"]["status"], "INACTIVE");
    let open_connection_goes_on = device
        .publish("device/ratchet/data", b"{}", QoS::AtLeastOnce, false)
        .await;
    assert!(
        is_puback(&open_connection_goes_on),
        "{open_connection_goes_on:?}"
    );
    let refused = connect(port, &ratchet).await;
    assert!(matches!(refused, Received::Closed), "{refused:?}");

    // Things provisioned while the emulator runs connect without a restart: through the AWS CLI ...
    let thing_policy = write_file(files.path(), "thing-policy.json", THING_POLICY);
    emulator
        .aws(&[
            "iot",
            "create-policy",
            "--policy-name",
            "thing-policy",
            "--policy-document",
            &thing_policy,
        ])
        .await;
    let (pi_2, _) = emulator.create_device("pi-2", "thing-policy").await;
    let mut second = RawClient::connect(port, &pi_2).await;
    let published = second
        .publish("device/pi-2/data", b"{}", QoS::AtLeastOnce, false)
        .await;
    assert!(is_puback(&published), "{published:?}");

    // ... and through `iot-emulator provision`, which talks to the running emulator's API.
    let provisioned = tokio::process::Command::new(project_binary(EMULATOR_CLI))
        .arg("--state-dir")
        .arg(emulator.state.path())
        .args(["provision", "pi-3", "--policy", "thing-policy"])
        .output()
        .await
        .unwrap();
    assert!(provisioned.status.success(), "{}", stderr(&provisioned));
    let summary: Value = serde_json::from_slice(&provisioned.stdout).unwrap();
    let pi_3_dir = PathBuf::from(
        summary["files"]["certificate"]
            .as_str()
            .unwrap()
            .trim_end_matches(registry::CERTIFICATE_FILE),
    );
    let listed = emulator
        .aws(&["iot", "list-thing-principals", "--thing-name", "pi-3"])
        .await;
    assert_eq!(listed["principals"].as_array().map(Vec::len), Some(1));
    let pi_3 = Device {
        client_id: "pi-3".to_owned(),
        provisioned: pi_2.provisioned.clone(),
        dir: pi_3_dir,
    };
    match connect(port, &pi_3).await {
        Received::Packet(Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, rumqttc::mqttbytes::v4::ConnectReturnCode::Success)
        }
        other => panic!("pi-3 could not connect: {other:?}"),
    }
    // GetThingConnectivityData, from the broker's sessions.
    let connectivity = emulator
        .aws(&["iot", "get-thing-connectivity-data", "--thing-name", "pi-2"])
        .await;
    assert_eq!(connectivity["connected"], true, "{connectivity}");
    assert_eq!(connectivity["clientId"], "pi-2", "{connectivity}");
    assert_eq!(connectivity["sourceIp"], "127.0.0.1", "{connectivity}");
    assert_eq!(connectivity["targetPort"], port, "{connectivity}");
    assert_eq!(connectivity["cleanSession"], true, "{connectivity}");
    assert!(
        tokio::time::timeout(WAIT, second.disconnect())
            .await
            .is_ok()
    );
    let mut disconnected = Value::Null;
    for _ in 0..100 {
        disconnected = emulator
            .aws(&["iot", "get-thing-connectivity-data", "--thing-name", "pi-2"])
            .await;
        if disconnected["connected"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(disconnected["connected"], false, "{disconnected}");
    assert_eq!(
        disconnected["disconnectReason"],
        "CLIENT_INITIATED_DISCONNECT"
    );
    assert!(disconnected["timestamp"].is_number(), "{disconnected}");
    let unknown = emulator
        .aws_error(&[
            "iot",
            "get-thing-connectivity-data",
            "--thing-name",
            "ghost",
        ])
        .await;
    assert!(unknown.contains("ResourceNotFoundException"), "{unknown}");
    emulator.stop().await;
}

//! boto3 against the control-plane router on 127.0.0.1: `controlplane_boto3.py` beside this file calls every
//! operation the emulator serves and checks AWS's answers and errors; this side then checks that what boto3
//! did reached the registry the broker authorizes with. Needs the venv's Python with boto3 (`make setup`).

mod controlplane_support;
mod http_support;
mod template_support;
mod tool_support;

use std::path::Path;
use std::sync::Arc;

use controlplane_support::{MQTT_HOST, control_plane};
use http_support::{ServedRouter, python, python_installed};
use iot_emulator::registry::{CertificateStatus, Registry};

#[tokio::test]
async fn boto3_every_operation_and_its_errors() {
    if !python_installed() {
        return;
    }
    let registry = Arc::new(Registry::in_memory());
    let served = ServedRouter::start(control_plane(&registry).router()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/controlplane_boto3.py");
    let output = python(&script, &[&served.endpoint(), MQTT_HOST]).await;
    served.stop().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the boto3 suite failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();

    // What boto3 left attached is what a connecting device would get.
    let certificate = summary["certificateId"].as_str().unwrap();
    let principal = registry.principal(certificate).unwrap();
    assert_eq!(principal.status, CertificateStatus::Active);
    let mut policies: Vec<&str> = principal
        .policies
        .policies()
        .iter()
        .map(|policy| policy.name())
        .collect();
    policies.sort_unstable();
    assert_eq!(policies, ["lab-policy", "thing-policy"]);
    assert_eq!(
        principal
            .thing_for_client("lab-thing")
            .map(|thing| thing.name),
        Some("lab-thing".to_owned())
    );
}

//! The `iot-policy audit` binary: exit codes and output formats (the logic itself is tested in the library).

use std::process::Command;

fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_iot-policy"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn clean_template_exits_zero_with_zero_findings() {
    let (code, stdout, _) = run(&[
        "audit",
        &fixture("device-policy.template.json"),
        "--account",
        "111122223333",
        "--region",
        "eu-west-1",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.trim(), "0 findings");
}

#[test]
fn clean_plain_policy_exits_zero() {
    let (code, stdout, _) = run(&["audit", &fixture("device-policy.json")]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("0 findings"));
}

#[test]
fn findings_exit_one_and_are_readable() {
    let (code, stdout, _) = run(&["audit", &fixture("audit/connectivity-shadow-writable.json")]);
    assert_eq!(code, 1);
    assert!(stdout.contains("[DEVICE_ISOLATION_PROBE] ConnectivityShadowWritable policy \"connectivity-shadow-writable\" statement 1"), "{stdout}");
    assert!(stdout.trim_end().ends_with("1 finding"), "{stdout}");
}

#[test]
fn json_format_lists_the_findings() {
    let (code, stdout, _) = run(&[
        "audit",
        &fixture("audit/mqtt-wildcard-in-deny.json"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let findings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let first = &findings.as_array().unwrap()[0];
    assert_eq!(first["kind"], "MqttWildcardInDeny");
    assert_eq!(
        first["check"],
        "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"
    );
    assert_eq!(first["statement"], 2);
}

#[test]
fn thing_properties_feed_attribute_variables() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("by-fleet.json");
    // Telemetry of every device whose name starts with the device's fleet attribute: with fleet=audit, thing A
    // ("audit-thing-a") reaches thing B ("audit-thing-b").
    std::fs::write(
        &path,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish",
            "Resource":"arn:aws:iot:us-east-1:123456789012:topic/data/${iot:Connection.Thing.Attributes[fleet]}-*"}]}"#,
    )
    .unwrap();
    let (code, stdout, _) = run(&[
        "audit",
        path.to_str().unwrap(),
        "--thing-property",
        "fleet=audit",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("CrossDeviceAccess"), "{stdout}");
    // Without the attribute the variable stays literal text and matches no topic.
    let (code, stdout, _) = run(&["audit", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let (code, _, stderr) = run(&[
        "audit",
        path.to_str().unwrap(),
        "--thing-property",
        "no-equals-sign",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn unreadable_input_exits_two() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("broken.json");
    std::fs::write(&path, r#"{"Resources": {"P": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Allow"}]}}}}}"#).unwrap();
    let (code, _, stderr) = run(&["audit", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing \"Action\""), "{stderr}");
    let (code, _, _) = run(&["audit", "/nonexistent/template.json"]);
    assert_eq!(code, 2);
}

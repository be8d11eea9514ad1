//! One bad policy per finding kind, each found; the contract's device policy is clean.

use iot_policy::{
    AuditCheck, AuditOptions, FindingKind, PolicyDocument, audit, audit_template,
    load_policies_from_template,
};

fn audit_fixture(file_stem: &str) -> Vec<iot_policy::Finding> {
    let path = format!(
        "{}/tests/fixtures/audit/{file_stem}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let document = PolicyDocument::from_json_str(&text).unwrap();
    audit(
        &[(file_stem.to_owned(), document)],
        &AuditOptions::default(),
    )
}

#[test]
fn every_finding_kind_has_a_fixture_that_triggers_it() {
    let cases = [
        ("wildcard-resource", FindingKind::WildcardResource, Some(1)),
        (
            "client-id-without-attached-thing",
            FindingKind::ClientIdWithoutAttachedThing,
            Some(0),
        ),
        (
            "cross-device-access",
            FindingKind::CrossDeviceAccess,
            Some(1),
        ),
        (
            "mqtt-wildcard-in-deny",
            FindingKind::MqttWildcardInDeny,
            Some(2),
        ),
        (
            "deny-bypassed-by-wildcard-subscription",
            FindingKind::DenyBypassedByWildcardSubscription,
            Some(3),
        ),
        (
            "action-resource-mismatch",
            FindingKind::ActionResourceMismatch,
            Some(1),
        ),
        (
            "unsupported-condition-operator",
            FindingKind::UnsupportedConditionOperator,
            Some(1),
        ),
        (
            "unknown-policy-variable",
            FindingKind::UnknownPolicyVariable,
            Some(1),
        ),
        (
            "policy-variables-ignored",
            FindingKind::PolicyVariablesIgnored,
            Some(0),
        ),
        (
            "connect-as-other-client",
            FindingKind::ConnectAsOtherClient,
            Some(0),
        ),
        (
            "subscribe-to-all-topics",
            FindingKind::SubscribeToAllTopics,
            Some(1),
        ),
        (
            "connectivity-shadow-writable",
            FindingKind::ConnectivityShadowWritable,
            Some(1),
        ),
    ];
    for (fixture, kind, statement) in cases {
        let findings = audit_fixture(fixture);
        let finding = findings
            .iter()
            .find(|finding| finding.kind == kind)
            .unwrap_or_else(|| panic!("{fixture}: expected {kind:?}, got {findings:#?}"));
        assert_eq!(finding.policy, fixture);
        assert_eq!(finding.statement, statement, "{fixture}: {finding}");
        assert_eq!(finding.check, kind.check());
        assert!(!finding.message.is_empty());
    }
}

#[test]
fn the_checks_split_like_device_defender() {
    assert_eq!(
        FindingKind::WildcardResource.check(),
        AuditCheck::OverlyPermissive
    );
    assert_eq!(
        FindingKind::CrossDeviceAccess.check(),
        AuditCheck::OverlyPermissive
    );
    assert_eq!(
        FindingKind::MqttWildcardInDeny.check(),
        AuditCheck::PotentialMisconfiguration
    );
    assert_eq!(
        FindingKind::DenyBypassedByWildcardSubscription.check(),
        AuditCheck::PotentialMisconfiguration
    );
    assert_eq!(
        FindingKind::ConnectivityShadowWritable.check(),
        AuditCheck::DeviceIsolation
    );
    assert_eq!(
        AuditCheck::OverlyPermissive.id(),
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"
    );
}

#[test]
fn the_contract_device_policy_has_no_findings() {
    let text = include_str!("fixtures/device-policy.json");
    let document = PolicyDocument::from_json_str(text).unwrap();
    assert!(document.size_without_whitespace() <= iot_policy::MAX_POLICY_DOCUMENT_CHARS);
    let findings = audit(&[("device".to_owned(), document)], &AuditOptions::default());
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn the_contract_template_has_no_findings_in_any_region() {
    let text = include_str!("fixtures/device-policy.template.json");
    for (account, region) in [
        ("123456789012", "us-east-1"),
        ("111122223333", "cn-north-1"),
        // The longest ARNs: this one used to exceed the 2,048-character limit.
        ("444455556666", "us-gov-west-1"),
    ] {
        let options = AuditOptions {
            account: account.to_owned(),
            region: region.to_owned(),
            thing_a: "ratchet".to_owned(),
            thing_b: "sprocket".to_owned(),
            ..AuditOptions::default()
        };
        let findings = audit_template(text, &options).unwrap();
        assert!(findings.is_empty(), "{region}: {findings:#?}");
    }
}

#[test]
fn the_deny_bypass_is_fixed_by_also_denying_receive() {
    let path = format!(
        "{}/tests/fixtures/audit/deny-bypassed-by-wildcard-subscription.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // Reference 4.3's fix: deny the delivery too, so `data/<thing>/#` no longer leaks restricted messages.
    value["Statement"][3]["Action"] = serde_json::json!(["iot:Subscribe", "iot:Receive"]);
    value["Statement"][3]["Resource"] = serde_json::json!([
        "arn:aws:iot:us-east-1:123456789012:topicfilter/data/${iot:Connection.Thing.ThingName}/restricted/*",
        "arn:aws:iot:us-east-1:123456789012:topic/data/${iot:Connection.Thing.ThingName}/restricted/*"
    ]);
    let document = PolicyDocument::from_value(&value).unwrap();
    let findings = audit(&[("fixed".to_owned(), document)], &AuditOptions::default());
    assert!(
        findings
            .iter()
            .all(|finding| finding.kind != FindingKind::DenyBypassedByWildcardSubscription),
        "{findings:#?}"
    );
}

#[test]
fn audit_reads_all_policies_of_a_template() {
    let template = serde_json::json!({"Resources": {
        "Good": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument":
            serde_json::from_str::<serde_json::Value>(include_str!("fixtures/device-policy.json")).unwrap()}},
        "Bad": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "workshop", "PolicyDocument":
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
              "Action": ["iot:Publish", "iot:Subscribe", "iot:Connect", "iot:Receive"], "Resource": ["*"]}]}}}
    }});
    let policies =
        load_policies_from_template(&template.to_string(), "123456789012", "us-east-1").unwrap();
    assert_eq!(policies.len(), 2);
    let findings = audit(&policies, &AuditOptions::default());
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|finding| finding.policy == "workshop"));
    for kind in [
        FindingKind::WildcardResource,
        FindingKind::CrossDeviceAccess,
        FindingKind::ConnectAsOtherClient,
        FindingKind::SubscribeToAllTopics,
        FindingKind::ConnectivityShadowWritable,
    ] {
        assert!(
            findings.iter().any(|finding| finding.kind == kind),
            "{kind:?}"
        );
    }
}

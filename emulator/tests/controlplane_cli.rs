//! The real AWS CLI (`aws iot ...`, v1 from `.tools/venv`) against the control-plane router on 127.0.0.1:
//! every operation the emulator serves and the errors a user meets first. Skipped without the CLI.

mod controlplane_support;
mod http_support;
mod template_support;
mod tool_support;

use std::sync::Arc;

use controlplane_support::{ACCOUNT, MQTT_HOST, REGION, control_plane};
use http_support::{ServedRouter, aws, aws_cli_installed};
use iot_emulator::registry::Registry;
use serde_json::{Value, json};

struct Cli {
    endpoint: String,
}

impl Cli {
    /// Runs `aws iot <args>`; fails the test unless it succeeds. Returns the JSON output (`null` when none).
    async fn ok(&self, args: &[&str]) -> Value {
        let output = aws(&self.endpoint, &[&["iot"], args].concat()).await;
        assert!(
            output.status.success(),
            "aws iot {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&output.stdout).unwrap()
        }
    }

    /// Every page of a marker-paged list, one item a page. For ListCertificates and ListPolicies the
    /// operation's own `pageSize` member is the CLI's `--page-size`, which turns the CLI's automatic paging
    /// off (also against AWS), so the markers are followed here as a script would.
    async fn marker_pages(
        &self,
        operation: &str,
        items: &str,
        field: &str,
    ) -> (Vec<String>, usize) {
        let (mut collected, mut pages, mut marker) = (Vec::new(), 0, None::<String>);
        loop {
            let mut args = vec![operation, "--page-size", "1"];
            if let Some(marker) = &marker {
                args.extend(["--marker", marker.as_str()]);
            }
            let page = self.ok(&args).await;
            collected.extend(names(&page[items], field));
            pages += 1;
            match page["nextMarker"].as_str() {
                Some(next) => marker = Some(next.to_owned()),
                None => break,
            }
            assert!(pages < 20, "{operation}: paging does not end");
        }
        collected.sort();
        (collected, pages)
    }

    /// Runs `aws iot <args>`; fails the test unless the CLI reports AWS's `exception`.
    async fn fails(&self, args: &[&str], exception: &str) {
        let output = aws(&self.endpoint, &[&["iot"], args].concat()).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(&format!("({exception})")),
            "aws iot {args:?}: expected {exception}, got {stderr}"
        );
    }
}

fn arn(resource: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:{resource}")
}

fn policy_document(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn aws_cli_iot_every_operation_and_its_errors() {
    if !aws_cli_installed() {
        return;
    }
    let registry = Arc::new(Registry::in_memory());
    let served = ServedRouter::start(control_plane(&registry).router()).await;
    let cli = Cli {
        endpoint: served.endpoint(),
    };

    // DescribeEndpoint
    let endpoint = cli
        .ok(&["describe-endpoint", "--endpoint-type", "iot:Data-ATS"])
        .await;
    assert_eq!(endpoint["endpointAddress"], MQTT_HOST);

    // Things
    let attributes = r#"{"attributes":{"room":"kitchen"}}"#;
    let created = cli
        .ok(&[
            "create-thing",
            "--thing-name",
            "ratchet",
            "--attribute-payload",
            attributes,
        ])
        .await;
    assert_eq!(created["thingArn"], arn("thing/ratchet"));
    cli.fails(
        &[
            "create-thing",
            "--thing-name",
            "ratchet",
            "--attribute-payload",
            r#"{"attributes":{"room":"attic"}}"#,
        ],
        "ResourceAlreadyExistsException",
    )
    .await;
    for thing in ["spare-1", "spare-2"] {
        cli.ok(&["create-thing", "--thing-name", thing]).await;
    }
    cli.ok(&[
        "update-thing",
        "--thing-name",
        "ratchet",
        "--attribute-payload",
        r#"{"attributes":{"floor":"2"},"merge":true}"#,
    ])
    .await;
    let described = cli.ok(&["describe-thing", "--thing-name", "ratchet"]).await;
    assert_eq!(
        described["attributes"],
        json!({"room": "kitchen", "floor": "2"})
    );
    assert_eq!(described["version"], 2);
    assert_eq!(described["defaultClientId"], "ratchet");
    // --page-size 1: the CLI follows nextToken through three pages.
    let listed = cli.ok(&["list-things", "--page-size", "1"]).await;
    assert_eq!(
        names(&listed["things"], "thingName"),
        ["ratchet", "spare-1", "spare-2"]
    );
    let filtered = cli
        .ok(&[
            "list-things",
            "--attribute-name",
            "room",
            "--attribute-value",
            "kitchen",
        ])
        .await;
    assert_eq!(names(&filtered["things"], "thingName"), ["ratchet"]);
    cli.ok(&["delete-thing", "--thing-name", "spare-2"]).await;
    cli.fails(
        &["describe-thing", "--thing-name", "spare-2"],
        "ResourceNotFoundException",
    )
    .await;

    // Certificates
    let keys = cli
        .ok(&["create-keys-and-certificate", "--set-as-active"])
        .await;
    let certificate_id = keys["certificateId"].as_str().unwrap().to_owned();
    let certificate_arn = arn(&format!("cert/{certificate_id}"));
    assert_eq!(keys["certificateArn"], certificate_arn);
    assert!(
        keys["keyPair"]["PrivateKey"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let csr_file = files.path().join("device.csr");
    std::fs::write(&csr_file, csr).unwrap();
    let csr_argument = format!("file://{}", csr_file.display());
    let from_csr = cli
        .ok(&[
            "create-certificate-from-csr",
            "--certificate-signing-request",
            &csr_argument,
        ])
        .await;
    let csr_id = from_csr["certificateId"].as_str().unwrap().to_owned();
    let description = cli
        .ok(&["describe-certificate", "--certificate-id", &csr_id])
        .await;
    assert_eq!(description["certificateDescription"]["status"], "INACTIVE");
    assert_eq!(description["certificateDescription"]["ownedBy"], ACCOUNT);
    let mut expected = vec![certificate_id.clone(), csr_id.clone()];
    expected.sort();
    assert_eq!(
        cli.marker_pages("list-certificates", "certificates", "certificateId")
            .await,
        (expected, 2)
    );
    cli.ok(&[
        "update-certificate",
        "--certificate-id",
        &csr_id,
        "--new-status",
        "REVOKED",
    ])
    .await;
    cli.fails(
        &["delete-certificate", "--certificate-id", &certificate_id],
        "CertificateStateException",
    )
    .await;
    cli.ok(&["delete-certificate", "--certificate-id", &csr_id])
        .await;
    cli.fails(
        &["describe-certificate", "--certificate-id", &csr_id],
        "ResourceNotFoundException",
    )
    .await;

    // Policies and versions
    let connect = policy_document(json!([{"Effect": "Allow", "Action": "iot:Connect",
        "Resource": arn("client/ratchet")}]));
    let publish = policy_document(json!([{"Effect": "Allow", "Action": "iot:Publish",
        "Resource": arn("topic/device/ratchet/data")}]));
    let created = cli
        .ok(&[
            "create-policy",
            "--policy-name",
            "lab",
            "--policy-document",
            &connect,
        ])
        .await;
    assert_eq!(created["policyVersionId"], "1");
    cli.fails(
        &[
            "create-policy",
            "--policy-name",
            "bad",
            "--policy-document",
            "{not json",
        ],
        "MalformedPolicyException",
    )
    .await;
    for version in 2..=5 {
        let made = cli
            .ok(&[
                "create-policy-version",
                "--policy-name",
                "lab",
                "--policy-document",
                &publish,
            ])
            .await;
        assert_eq!(made["policyVersionId"], version.to_string());
    }
    cli.fails(
        &[
            "create-policy-version",
            "--policy-name",
            "lab",
            "--policy-document",
            &publish,
        ],
        "VersionsLimitExceededException",
    )
    .await;
    let versions = cli
        .ok(&["list-policy-versions", "--policy-name", "lab"])
        .await;
    assert_eq!(versions["policyVersions"].as_array().unwrap().len(), 5);
    cli.ok(&[
        "set-default-policy-version",
        "--policy-name",
        "lab",
        "--policy-version-id",
        "2",
    ])
    .await;
    cli.fails(
        &[
            "delete-policy-version",
            "--policy-name",
            "lab",
            "--policy-version-id",
            "2",
        ],
        "DeleteConflictException",
    )
    .await;
    for version in ["3", "4", "5"] {
        cli.ok(&[
            "delete-policy-version",
            "--policy-name",
            "lab",
            "--policy-version-id",
            version,
        ])
        .await;
    }
    let both = policy_document(json!([
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": arn("client/ratchet")},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": arn("topic/device/ratchet/data")}]));
    let made = cli
        .ok(&[
            "create-policy-version",
            "--policy-name",
            "lab",
            "--policy-document",
            &both,
            "--set-as-default",
        ])
        .await;
    assert_eq!(made["isDefaultVersion"], true);
    let version = made["policyVersionId"].as_str().unwrap().to_owned();
    let got = cli
        .ok(&[
            "get-policy-version",
            "--policy-name",
            "lab",
            "--policy-version-id",
            &version,
        ])
        .await;
    assert_eq!(got["isDefaultVersion"], true);
    let policy = cli.ok(&["get-policy", "--policy-name", "lab"]).await;
    assert_eq!(policy["defaultVersionId"], version.as_str());
    let deny = policy_document(json!([{"Effect": "Deny", "Action": "iot:Publish",
        "Resource": arn("topic/device/*")}]));
    cli.ok(&[
        "create-policy",
        "--policy-name",
        "deny",
        "--policy-document",
        &deny,
    ])
    .await;
    cli.ok(&[
        "create-policy",
        "--policy-name",
        "gone",
        "--policy-document",
        &deny,
    ])
    .await;
    // A policy with a version besides the default cannot be deleted until that version is.
    cli.ok(&[
        "create-policy-version",
        "--policy-name",
        "gone",
        "--policy-document",
        &connect,
    ])
    .await;
    cli.fails(
        &["delete-policy", "--policy-name", "gone"],
        "DeleteConflictException",
    )
    .await;
    cli.ok(&[
        "delete-policy-version",
        "--policy-name",
        "gone",
        "--policy-version-id",
        "2",
    ])
    .await;
    cli.ok(&["delete-policy", "--policy-name", "gone"]).await;
    assert_eq!(
        cli.marker_pages("list-policies", "policies", "policyName")
            .await,
        (vec!["deny".to_owned(), "lab".to_owned()], 2)
    );

    // Attachments
    cli.ok(&[
        "attach-policy",
        "--policy-name",
        "lab",
        "--target",
        &certificate_arn,
    ])
    .await;
    cli.fails(
        &[
            "attach-policy",
            "--policy-name",
            "lab",
            "--target",
            "not-an-arn",
        ],
        "InvalidRequestException",
    )
    .await;
    cli.fails(
        &["delete-policy", "--policy-name", "lab"],
        "DeleteConflictException",
    )
    .await;
    let attached = cli
        .ok(&["list-attached-policies", "--target", &certificate_arn])
        .await;
    assert_eq!(names(&attached["policies"], "policyName"), ["lab"]);
    let targets = cli
        .ok(&["list-targets-for-policy", "--policy-name", "lab"])
        .await;
    assert_eq!(targets["targets"], json!([certificate_arn]));
    cli.ok(&[
        "attach-thing-principal",
        "--thing-name",
        "ratchet",
        "--principal",
        &certificate_arn,
    ])
    .await;
    let principals = cli
        .ok(&["list-thing-principals", "--thing-name", "ratchet"])
        .await;
    assert_eq!(principals["principals"], json!([certificate_arn]));
    let things = cli
        .ok(&["list-principal-things", "--principal", &certificate_arn])
        .await;
    assert_eq!(things["things"], json!(["ratchet"]));
    cli.ok(&[
        "attach-thing-principal",
        "--thing-name",
        "spare-1",
        "--principal",
        &certificate_arn,
    ])
    .await;
    cli.ok(&[
        "detach-thing-principal",
        "--thing-name",
        "spare-1",
        "--principal",
        &certificate_arn,
    ])
    .await;
    cli.ok(&[
        "attach-principal-policy",
        "--policy-name",
        "deny",
        "--principal",
        &certificate_arn,
    ])
    .await;
    let principal_policies = cli
        .ok(&["list-principal-policies", "--principal", &certificate_arn])
        .await;
    assert_eq!(
        names(&principal_policies["policies"], "policyName"),
        ["deny", "lab"]
    );
    cli.ok(&[
        "detach-principal-policy",
        "--policy-name",
        "deny",
        "--principal",
        &certificate_arn,
    ])
    .await;
    cli.ok(&[
        "attach-policy",
        "--policy-name",
        "deny",
        "--target",
        &certificate_arn,
    ])
    .await;
    cli.ok(&[
        "detach-policy",
        "--policy-name",
        "deny",
        "--target",
        &certificate_arn,
    ])
    .await;

    // TestAuthorization: the lab's policy allows its own topic, not another; a Deny added on top wins.
    let infos = json!([
        {"actionType": "CONNECT", "resources": [arn("client/ratchet")]},
        {"actionType": "PUBLISH", "resources": [arn("topic/device/ratchet/data")]},
        {"actionType": "PUBLISH", "resources": [arn("topic/elsewhere")]}])
    .to_string();
    let tested = cli
        .ok(&[
            "test-authorization",
            "--principal",
            &certificate_arn,
            "--client-id",
            "ratchet",
            "--auth-infos",
            &infos,
        ])
        .await;
    let decisions: Vec<&str> = tested["authResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["authDecision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["ALLOWED", "ALLOWED", "IMPLICIT_DENY"]);
    assert!(
        tested["authResults"][0]
            .get("emulatorExplanation")
            .is_none(),
        "the CLI prints the modelled members only"
    );
    let denied = cli
        .ok(&[
            "test-authorization",
            "--principal",
            &certificate_arn,
            "--client-id",
            "ratchet",
            "--auth-infos",
            &infos,
            "--policy-names-to-add",
            "deny",
        ])
        .await;
    assert_eq!(denied["authResults"][1]["authDecision"], "EXPLICIT_DENY");
    assert_eq!(
        denied["authResults"][1]["denied"]["explicitDeny"]["policies"][0]["policyName"],
        "deny"
    );

    // Topic rules from the template
    let rules = cli.ok(&["list-topic-rules"]).await;
    assert!(
        names(&rules["rules"], "ruleName").contains(&"DisconnectWill".to_owned()),
        "{rules}"
    );
    let rule = cli
        .ok(&["get-topic-rule", "--rule-name", "DisconnectWill"])
        .await;
    assert_eq!(rule["rule"]["ruleName"], "DisconnectWill");
    cli.fails(
        &["get-topic-rule", "--rule-name", "NoSuchRule"],
        "UnauthorizedException",
    )
    .await;

    served.stop().await;
}

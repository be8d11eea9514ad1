use super::*;
use iot_policy::{ArnScope, ConnectionContext, actions};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",
    "Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;

#[test]
fn provisioned_principal_survives_a_reopen_with_policies_and_thing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = EmulatorCa::load_or_create(dir.path()).unwrap();
    let device = {
        let registry = Registry::open(dir.path()).unwrap();
        registry.put_policy_json("device", POLICY).unwrap();
        provision_thing(&registry, &ca, "ratchet", &["device".into()]).unwrap()
    };
    let registry = Registry::open(dir.path()).unwrap();
    let id = &device.certificate.certificate_id;
    assert_eq!(
        registry.certificate_status(id),
        Some(CertificateStatus::Active)
    );
    let principal = registry.principal(id).unwrap();
    let thing = principal.thing_for_client("ratchet").unwrap();
    let context = ConnectionContext::new("ratchet").with_thing(thing);
    let arns = ArnScope::new("us-east-1", "123456789012");
    assert!(
        principal
            .policies
            .decide(actions::CONNECT, &arns.client("ratchet"), &context)
            .is_allowed()
    );
    assert!(principal.thing_for_client("other").is_none());

    registry
        .set_certificate_status(id, CertificateStatus::Revoked)
        .unwrap();
    drop(registry);
    let reopened = Registry::open(dir.path()).unwrap();
    assert_eq!(
        reopened.certificate_status(id),
        Some(CertificateStatus::Revoked)
    );
}

#[test]
fn attaching_unknown_names_fails() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    assert!(matches!(
        provision_thing(&registry, &ca, "t", &["missing".into()]),
        Err(RegistryError::NoSuchPolicy(_))
    ));
    assert!(matches!(
        registry.attach_thing_principal("nope", &"a".repeat(64), AttachmentKind::NonExclusiveThing),
        Err(RegistryError::NoSuchThing(_))
    ));
}

const OTHER_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish",
    "Resource":"*"}]}"#;

fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn page(size: usize) -> Page {
    Page {
        marker: None,
        page_size: size,
    }
}

fn code(result: Result<impl std::fmt::Debug, RegistryError>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.aws_error_code(),
    }
}

/// A certificate in the registry that is INACTIVE, so it can be deleted.
fn inactive_certificate(registry: &Registry, ca: &EmulatorCa) -> String {
    registry
        .create_keys_and_certificate(ca, false)
        .unwrap()
        .certificate_id
}

#[test]
fn error_codes_map_to_aws_names_and_statuses() {
    let cases = [
        (
            RegistryError::NoSuchThing("t".into()),
            "ResourceNotFoundException",
            404,
        ),
        (
            RegistryError::PolicyAlreadyExists("p".into()),
            "ResourceAlreadyExistsException",
            409,
        ),
        (
            RegistryError::DeleteConflict("x".into()),
            "DeleteConflictException",
            409,
        ),
        (
            RegistryError::VersionsLimitExceeded("p".into()),
            "VersionsLimitExceededException",
            409,
        ),
        (
            RegistryError::VersionConflict {
                name: "t".into(),
                expected: 1,
                actual: 2,
            },
            "VersionConflictException",
            409,
        ),
        (
            RegistryError::CertificateState("x".into()),
            "CertificateStateException",
            406,
        ),
        (
            RegistryError::MalformedPolicy {
                name: "p".into(),
                reason: "x".into(),
            },
            "MalformedPolicyException",
            400,
        ),
        (
            RegistryError::InvalidRequest("x".into()),
            "InvalidRequestException",
            400,
        ),
        (
            RegistryError::Corrupt {
                path: "f".into(),
                message: "x".into(),
            },
            "InternalFailureException",
            500,
        ),
    ];
    for (error, name, status) in cases {
        assert_eq!(error.aws_error_code(), name, "{error}");
        assert_eq!(error.http_status(), status, "{error}");
    }
}

#[test]
fn create_thing_is_idempotent_only_when_identical() {
    let registry = Registry::in_memory();
    let first = registry
        .create_thing("lamp", Some("light"), attributes(&[("room", "kitchen")]))
        .unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(
        uuid::Uuid::parse_str(&first.id).unwrap().get_version_num(),
        4
    );
    let again = registry
        .create_thing("lamp", Some("light"), attributes(&[("room", "kitchen")]))
        .unwrap();
    assert_eq!(
        again, first,
        "an identical CreateThing returns the same thing"
    );
    assert_eq!(
        code(registry.create_thing("lamp", Some("light"), attributes(&[("room", "hall")]))),
        "ResourceAlreadyExistsException"
    );
    assert_eq!(
        code(registry.create_thing("lamp", None, attributes(&[("room", "kitchen")]))),
        "ResourceAlreadyExistsException"
    );
    assert_eq!(registry.describe_thing("lamp").unwrap(), first);
    assert_eq!(
        code(registry.describe_thing("ghost")),
        "ResourceNotFoundException"
    );
}

#[test]
fn names_and_attributes_are_validated_as_aws() {
    let registry = Registry::in_memory();
    for bad in ["", "has space", "slash/y", &"x".repeat(129)] {
        assert_eq!(
            code(registry.create_thing(bad, None, BTreeMap::new())),
            "InvalidRequestException",
            "{bad:?}"
        );
    }
    registry
        .create_thing("ok:name_-1", None, BTreeMap::new())
        .unwrap();
    assert_eq!(
        code(registry.create_thing("t", None, attributes(&[("bad key", "v")]))),
        "InvalidRequestException"
    );
    assert_eq!(
        code(registry.create_thing("t", None, attributes(&[("k", "bad value")]))),
        "InvalidRequestException"
    );
    assert_eq!(
        code(registry.create_policy("bad name!", POLICY)),
        "InvalidRequestException"
    );
    assert_eq!(
        code(registry.describe_certificate("abc")),
        "InvalidRequestException"
    );
    assert_eq!(
        code(registry.describe_certificate(&"g".repeat(64))),
        "InvalidRequestException"
    );
    assert_eq!(
        code(registry.describe_certificate(&"A".repeat(64))),
        "ResourceNotFoundException",
        "a well-formed id (any case) that is not registered"
    );
}

#[test]
fn update_thing_merges_replaces_and_checks_the_expected_version() {
    let registry = Registry::in_memory();
    registry
        .create_thing("t", None, attributes(&[("a", "1"), ("b", "2")]))
        .unwrap();
    registry
        .update_thing(
            "t",
            ThingUpdate {
                attributes: Some(attributes(&[("a", ""), ("c", "3")])),
                merge: true,
                expected_version: Some(1),
                ..ThingUpdate::default()
            },
        )
        .unwrap();
    let thing = registry.describe_thing("t").unwrap();
    assert_eq!(thing.attributes, attributes(&[("b", "2"), ("c", "3")]));
    assert_eq!(thing.version, 2);
    assert_eq!(
        code(registry.update_thing(
            "t",
            ThingUpdate {
                expected_version: Some(1),
                ..ThingUpdate::default()
            }
        )),
        "VersionConflictException"
    );
    registry
        .update_thing(
            "t",
            ThingUpdate {
                attributes: Some(attributes(&[("z", "9")])),
                type_name: Some("sensor".into()),
                ..ThingUpdate::default()
            },
        )
        .unwrap();
    let thing = registry.describe_thing("t").unwrap();
    assert_eq!(
        thing.attributes,
        attributes(&[("z", "9")]),
        "without merge the attributes are replaced"
    );
    assert_eq!(thing.type_name.as_deref(), Some("sensor"));
    registry
        .update_thing(
            "t",
            ThingUpdate {
                remove_thing_type: true,
                ..ThingUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(registry.describe_thing("t").unwrap().type_name, None);
    assert_eq!(
        code(registry.update_thing(
            "t",
            ThingUpdate {
                remove_thing_type: true,
                type_name: Some("x".into()),
                ..ThingUpdate::default()
            }
        )),
        "InvalidRequestException"
    );
    assert_eq!(
        code(registry.update_thing("ghost", ThingUpdate::default())),
        "ResourceNotFoundException"
    );
}

#[test]
fn delete_thing_is_quiet_for_missing_things_and_refuses_attached_principals() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    registry.delete_thing("ghost", None).unwrap();
    registry.create_thing("t", None, BTreeMap::new()).unwrap();
    assert_eq!(
        code(registry.delete_thing("t", Some(7))),
        "VersionConflictException"
    );
    let id = inactive_certificate(&registry, &ca);
    registry
        .attach_thing_principal("t", &id, AttachmentKind::NonExclusiveThing)
        .unwrap();
    assert_eq!(
        code(registry.delete_thing("t", None)),
        "InvalidRequestException"
    );
    registry.detach_thing_principal("t", &id).unwrap();
    registry.delete_thing("t", Some(1)).unwrap();
    assert!(!registry.thing_exists("t"));
    assert!(
        registry
            .list_principal_things(&id, &page(10))
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn list_things_pages_in_a_stable_order_and_filters_by_attribute() {
    let registry = Registry::in_memory();
    for index in 0..7 {
        let colour = if index % 2 == 0 { "red" } else { "blue" };
        registry
            .create_thing(
                &format!("thing-{index}"),
                None,
                attributes(&[("colour", colour)]),
            )
            .unwrap();
    }
    let mut names = Vec::new();
    let mut marker = None;
    let mut pages = 0;
    loop {
        let result = registry
            .list_things(
                &ThingFilter::default(),
                &Page {
                    marker: marker.clone(),
                    page_size: 3,
                },
            )
            .unwrap();
        pages += 1;
        names.extend(result.items.into_iter().map(|thing| thing.name));
        // A thing created behind the marker does not shift the pages.
        if pages == 1 {
            registry
                .create_thing("thing-00", None, BTreeMap::new())
                .unwrap();
        }
        match result.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|index| format!("thing-{index}")).collect();
    assert_eq!(names, expected);
    let red = registry
        .list_things(
            &ThingFilter {
                attribute_name: Some("colour".into()),
                attribute_value: Some("red".into()),
                ..ThingFilter::default()
            },
            &page(100),
        )
        .unwrap();
    assert_eq!(red.items.len(), 4);
    assert!(red.next_marker.is_none());
    assert_eq!(
        code(registry.list_things(
            &ThingFilter::default(),
            &Page {
                marker: Some("not base64!".into()),
                page_size: 3
            }
        )),
        "InvalidRequestException"
    );
}

#[test]
fn certificates_are_created_inactive_unless_set_as_active_and_listed_by_creation() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    let mut ids = Vec::new();
    for index in 0..5 {
        let issued = registry
            .create_keys_and_certificate(&ca, index % 2 == 0)
            .unwrap();
        ids.push(issued.certificate_id);
    }
    let view = registry.describe_certificate(&ids[1]).unwrap();
    assert_eq!(view.status, CertificateStatus::Inactive);
    assert_eq!(view.customer_version, 1);
    assert_eq!(
        registry.describe_certificate(&ids[0]).unwrap().status,
        CertificateStatus::Active
    );

    let collect = |ascending: bool| {
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let result = registry
                .list_certificates(
                    &Page {
                        marker: marker.clone(),
                        page_size: 2,
                    },
                    ascending,
                )
                .unwrap();
            seen.extend(result.items.into_iter().map(|certificate| certificate.id));
            match result.next_marker {
                Some(next) => marker = Some(next),
                None => return seen,
            }
        }
    };
    let ascending = collect(true);
    let mut descending = collect(false);
    assert_eq!(ascending.len(), 5);
    descending.reverse();
    assert_eq!(ascending, descending);
    let mut sorted = ascending.clone();
    sorted.sort_by_key(|id| {
        let view = registry.describe_certificate(id).unwrap();
        (view.created_ms, view.id)
    });
    assert_eq!(ascending, sorted);
}

#[test]
fn register_certificate_refuses_a_registered_one_and_non_pem() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    let issued = ca.issue_device_certificate().unwrap();
    let id = registry
        .register_certificate(&issued.certificate_pem, CertificateStatus::Active)
        .unwrap();
    assert_eq!(id, issued.certificate_id);
    assert_eq!(
        code(registry.register_certificate(&issued.certificate_pem, CertificateStatus::Active)),
        "ResourceAlreadyExistsException"
    );
    assert_eq!(
        code(registry.register_certificate("hello", CertificateStatus::Active)),
        "InvalidRequestException"
    );
}

#[test]
fn a_csr_is_signed_for_its_own_public_key() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "from-csr");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let view = registry
        .create_certificate_from_csr(&ca, &csr, true)
        .unwrap();
    assert_eq!(view.status, CertificateStatus::Active);
    let der = identity::pem_to_der(&view.pem).unwrap();
    assert_eq!(identity::certificate_id(&der), view.id);
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        certificate.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
    );
    let (_, root) = x509_parser::parse_x509_certificate(ca.root_der()).unwrap();
    assert_eq!(certificate.issuer(), root.subject());
    assert!(
        certificate
            .verify_signature(Some(root.public_key()))
            .is_ok()
    );

    assert_eq!(
        code(registry.create_certificate_from_csr(&ca, "not a csr", true)),
        "InvalidRequestException"
    );
    let inactive = registry
        .create_certificate_from_csr(
            &ca,
            &params
                .serialize_request(&rcgen::KeyPair::generate().unwrap())
                .unwrap()
                .pem()
                .unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(inactive.status, CertificateStatus::Inactive);
}

#[test]
fn update_certificate_counts_versions_and_never_reactivates_a_revoked_one() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    let id = inactive_certificate(&registry, &ca);
    let before = registry.describe_certificate(&id).unwrap();
    registry
        .set_certificate_status(&id, CertificateStatus::Active)
        .unwrap();
    let after = registry.describe_certificate(&id).unwrap();
    assert_eq!(after.customer_version, 2);
    assert_ne!(after.generation_id, before.generation_id);
    registry
        .set_certificate_status(&id, CertificateStatus::Revoked)
        .unwrap();
    assert_eq!(
        code(registry.set_certificate_status(&id, CertificateStatus::Active)),
        "CertificateStateException"
    );
    assert_eq!(
        code(registry.set_certificate_status(&"0".repeat(64), CertificateStatus::Active)),
        "ResourceNotFoundException"
    );
}

#[test]
fn delete_certificate_follows_aws_preconditions() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    registry.create_policy("p", POLICY).unwrap();
    registry.create_thing("t", None, BTreeMap::new()).unwrap();
    let active = registry
        .create_keys_and_certificate(&ca, true)
        .unwrap()
        .certificate_id;
    assert_eq!(
        code(registry.delete_certificate(&active, true)),
        "CertificateStateException"
    );

    let id = inactive_certificate(&registry, &ca);
    registry.attach_policy("p", &id).unwrap();
    registry
        .attach_thing_principal("t", &id, AttachmentKind::NonExclusiveThing)
        .unwrap();
    assert_eq!(
        code(registry.delete_certificate(&id, true)),
        "DeleteConflictException",
        "forceDelete does not detach things"
    );
    registry.detach_thing_principal("t", &id).unwrap();
    assert_eq!(
        code(registry.delete_certificate(&id, false)),
        "DeleteConflictException",
        "attached policies without forceDelete"
    );
    registry.delete_certificate(&id, true).unwrap();
    assert_eq!(
        code(registry.describe_certificate(&id)),
        "ResourceNotFoundException"
    );
    assert!(
        registry
            .list_targets_for_policy("p", &page(10))
            .unwrap()
            .items
            .is_empty(),
        "forceDelete detached the policy"
    );
    // The policy is no longer attached, so it can go.
    registry.delete_policy("p").unwrap();
    assert_eq!(
        code(registry.delete_certificate(&id, false)),
        "ResourceNotFoundException"
    );
}

#[test]
fn policy_documents_are_validated() {
    let registry = Registry::in_memory();
    assert_eq!(
        code(registry.create_policy("p", "{not json")),
        "MalformedPolicyException"
    );
    assert_eq!(
        code(registry.create_policy(
            "p",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}"#
        )),
        "MalformedPolicyException"
    );
    // 2,048 characters without whitespace are allowed however much whitespace there is; one more is not.
    let statement = r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/"#;
    let build = |significant: usize| {
        let head = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}"#);
        let tail = r#""}]}"#;
        let padding = significant - head.len() - tail.len();
        format!("{head}{}{tail}", "a".repeat(padding))
    };
    let at_limit = build(2048);
    let padded = at_limit.replace(',', " ,\n   ");
    registry.create_policy("at-limit", &padded).unwrap();
    assert_eq!(
        registry.get_policy("at-limit").unwrap().document,
        padded,
        "the document is kept as given"
    );
    assert_eq!(
        code(registry.create_policy("over", &build(2049))),
        "MalformedPolicyException"
    );
    let mostly_whitespace = at_limit.replacen(',', &format!("{},", " ".repeat(404_600)), 1);
    assert_eq!(
        code(registry.create_policy("whitespace", &mostly_whitespace)),
        "MalformedPolicyException",
        "the service model's total length still applies"
    );
    assert_eq!(
        code(registry.create_policy("at-limit", POLICY)),
        "ResourceAlreadyExistsException"
    );
}

#[test]
fn policy_versions_are_limited_numbered_and_protected() {
    let registry = Registry::in_memory();
    let created = registry.create_policy("p", POLICY).unwrap();
    assert_eq!(
        (created.version_id.as_str(), created.is_default),
        ("1", true)
    );
    for expected in 2..=5 {
        let version = registry
            .create_policy_version("p", OTHER_POLICY, false)
            .unwrap();
        assert_eq!(version.version_id, expected.to_string());
        assert!(!version.is_default);
    }
    assert_eq!(
        code(registry.create_policy_version("p", OTHER_POLICY, true)),
        "VersionsLimitExceededException"
    );
    assert_eq!(
        code(registry.delete_policy_version("p", "1")),
        "DeleteConflictException",
        "the default version"
    );
    assert_eq!(
        code(registry.delete_policy_version("p", "9")),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.get_policy_version("p", "x")),
        "InvalidRequestException"
    );
    registry.delete_policy_version("p", "2").unwrap();
    let sixth = registry
        .create_policy_version("p", OTHER_POLICY, true)
        .unwrap();
    assert_eq!(sixth.version_id, "6", "version ids are never reused");
    assert_eq!(registry.get_policy("p").unwrap().default_version_id, "6");
    let versions: Vec<(String, bool)> = registry
        .list_policy_versions("p")
        .unwrap()
        .into_iter()
        .map(|version| (version.version_id, version.is_default))
        .collect();
    assert_eq!(
        versions,
        [
            ("1", false),
            ("3", false),
            ("4", false),
            ("5", false),
            ("6", true)
        ]
        .map(|(id, default)| (id.to_owned(), default))
    );
    assert_eq!(
        code(registry.set_default_policy_version("p", "2")),
        "ResourceNotFoundException"
    );
    registry.set_default_policy_version("p", "1").unwrap();
    assert_eq!(registry.get_policy("p").unwrap().document, POLICY);
    assert_eq!(
        code(registry.delete_policy("p")),
        "DeleteConflictException",
        "non-default versions exist"
    );
    for version in ["3", "4", "5", "6"] {
        registry.delete_policy_version("p", version).unwrap();
    }
    registry.delete_policy("p").unwrap();
    assert_eq!(code(registry.get_policy("p")), "ResourceNotFoundException");
    assert_eq!(
        code(registry.delete_policy("p")),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.create_policy_version("p", POLICY, true)),
        "ResourceNotFoundException"
    );
}

#[test]
fn the_default_version_is_what_principals_get_and_a_new_default_moves_the_generation() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    registry.put_policy_json("device", POLICY).unwrap();
    let device = provision_thing(&registry, &ca, "ratchet", &["device".into()]).unwrap();
    let id = &device.certificate.certificate_id;
    let arns = ArnScope::new("us-east-1", "123456789012");
    let allowed_to_connect = |registry: &Registry| {
        let principal = registry.principal(id).unwrap();
        let context = ConnectionContext::new("ratchet")
            .with_thing(principal.thing_for_client("ratchet").unwrap());
        principal
            .policies
            .decide(actions::CONNECT, &arns.client("ratchet"), &context)
            .is_allowed()
    };
    assert!(allowed_to_connect(&registry));
    let generation = registry.generation();
    registry
        .create_policy_version("device", OTHER_POLICY, false)
        .unwrap();
    assert!(
        allowed_to_connect(&registry),
        "a version that is not the default changes nothing"
    );
    registry.set_default_policy_version("device", "2").unwrap();
    assert!(registry.generation() > generation);
    assert!(
        !allowed_to_connect(&registry),
        "the new default (publish only) applies at once"
    );
}

#[test]
fn put_policy_adds_a_default_version_only_for_a_changed_document_and_prunes_at_five() {
    let registry = Registry::in_memory();
    registry.put_policy_json("p", POLICY).unwrap();
    let generation = registry.generation();
    // The same document, differently formatted: nothing changes.
    let reformatted: serde_json::Value = serde_json::from_str(POLICY).unwrap();
    registry
        .put_policy_json("p", &serde_json::to_string_pretty(&reformatted).unwrap())
        .unwrap();
    assert_eq!(registry.generation(), generation);
    assert_eq!(registry.list_policy_versions("p").unwrap().len(), 1);

    for index in 0..6 {
        let document = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/{index}"}}]}}"#
        );
        registry.put_policy_json("p", &document).unwrap();
        let policy = registry.get_policy("p").unwrap();
        assert_eq!(policy.document, document);
    }
    let versions: Vec<String> = registry
        .list_policy_versions("p")
        .unwrap()
        .into_iter()
        .map(|version| version.version_id)
        .collect();
    assert_eq!(versions, ["3", "4", "5", "6", "7"]);
    assert_eq!(registry.get_policy("p").unwrap().default_version_id, "7");
}

#[test]
fn provisioning_an_existing_thing_adds_a_certificate() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    registry
        .create_thing("t", None, attributes(&[("kept", "yes")]))
        .unwrap();
    let first = provision_thing(&registry, &ca, "t", &[]).unwrap();
    let second = provision_thing(&registry, &ca, "t", &[]).unwrap();
    assert_ne!(
        first.certificate.certificate_id,
        second.certificate.certificate_id
    );
    assert_eq!(
        registry
            .list_thing_principals("t", &page(10))
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        registry.describe_thing("t").unwrap().attributes,
        attributes(&[("kept", "yes")])
    );
}

#[test]
fn a_things_active_certificates_leave_out_inactive_and_revoked_ones() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    assert!(registry.active_thing_certificates("t").is_empty());
    let ids: Vec<String> = (0..3)
        .map(|_| {
            provision_thing(&registry, &ca, "t", &[])
                .unwrap()
                .certificate
                .certificate_id
        })
        .collect();
    registry
        .set_certificate_status(&ids[0], CertificateStatus::Inactive)
        .unwrap();
    registry
        .set_certificate_status(&ids[1], CertificateStatus::Revoked)
        .unwrap();
    assert_eq!(registry.active_thing_certificates("t"), [ids[2].clone()]);
}

#[test]
fn attachments_list_both_ways_and_report_missing_resources() {
    let registry = Registry::in_memory();
    let ca = EmulatorCa::generate().unwrap();
    registry.create_policy("a", POLICY).unwrap();
    registry.create_policy("b", POLICY).unwrap();
    registry.create_thing("t1", None, BTreeMap::new()).unwrap();
    registry.create_thing("t2", None, BTreeMap::new()).unwrap();
    let id = inactive_certificate(&registry, &ca);
    let missing = "f".repeat(64);

    assert_eq!(
        code(registry.attach_policy("nope", &id)),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.attach_policy("a", &missing)),
        "ResourceNotFoundException"
    );
    registry.attach_policy("b", &id).unwrap();
    registry.attach_policy("a", &id).unwrap();
    registry.attach_policy("a", &id).unwrap();
    let first = registry.list_attached_policies(&id, &page(1)).unwrap();
    assert_eq!(first.items, ["a"]);
    let second = registry
        .list_attached_policies(
            &id,
            &Page {
                marker: first.next_marker,
                page_size: 1,
            },
        )
        .unwrap();
    assert_eq!(second.items, ["b"]);
    assert!(second.next_marker.is_none());
    assert_eq!(
        registry
            .list_targets_for_policy("a", &page(10))
            .unwrap()
            .items,
        vec![id.clone()]
    );
    assert_eq!(
        code(registry.list_attached_policies(&missing, &page(10))),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.list_targets_for_policy("nope", &page(10))),
        "ResourceNotFoundException"
    );
    registry.detach_policy("a", &id).unwrap();
    registry.detach_policy("a", &id).unwrap();
    assert_eq!(
        registry
            .list_attached_policies(&id, &page(10))
            .unwrap()
            .items,
        ["b"]
    );

    registry
        .attach_thing_principal("t1", &id, AttachmentKind::NonExclusiveThing)
        .unwrap();
    registry
        .attach_thing_principal("t2", &id, AttachmentKind::NonExclusiveThing)
        .unwrap();
    assert_eq!(
        registry
            .list_principal_things(&id, &page(10))
            .unwrap()
            .items,
        ["t1", "t2"]
    );
    assert_eq!(
        registry
            .list_thing_principals("t1", &page(10))
            .unwrap()
            .items,
        vec![id.clone()]
    );
    assert_eq!(
        code(registry.attach_thing_principal("t1", &id, AttachmentKind::ExclusiveThing)),
        "InvalidRequestException",
        "exclusive while attached to another thing"
    );
    assert_eq!(
        code(registry.attach_thing_principal("t1", &missing, AttachmentKind::NonExclusiveThing)),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.list_thing_principals("ghost", &page(10))),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.list_principal_things(&missing, &page(10))),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(registry.detach_thing_principal("ghost", &id)),
        "ResourceNotFoundException"
    );
    registry.detach_thing_principal("t2", &id).unwrap();
    registry
        .attach_thing_principal("t1", &id, AttachmentKind::ExclusiveThing)
        .unwrap();
    assert_eq!(
        code(registry.attach_thing_principal("t2", &id, AttachmentKind::NonExclusiveThing)),
        "InvalidRequestException",
        "the principal is exclusively attached to t1"
    );
    let principal = registry.principal(&id).unwrap();
    assert_eq!(
        principal.thing_for_client("any-client").unwrap().name,
        "t1",
        "an exclusive thing is the connection's thing whatever the client id"
    );
}

/// Everything the registry can tell, for comparing a registry with its reopened self.
fn dump(registry: &Registry) -> String {
    let all = Page {
        marker: None,
        page_size: 100_000,
    };
    let mut out = String::new();
    for thing in registry
        .list_things(&ThingFilter::default(), &all)
        .unwrap()
        .items
    {
        let principals = registry
            .list_thing_principals(&thing.name, &all)
            .unwrap()
            .items;
        out += &format!("{thing:?} {principals:?}\n");
    }
    for certificate in registry.list_certificates(&all, true).unwrap().items {
        let policies = registry
            .list_attached_policies(&certificate.id, &all)
            .unwrap()
            .items;
        let things = registry
            .list_principal_things(&certificate.id, &all)
            .unwrap()
            .items;
        out += &format!("{certificate:?} {policies:?} {things:?}\n");
    }
    for policy in registry.list_policies(&all, true).unwrap().items {
        let versions = registry.list_policy_versions(&policy.name).unwrap();
        let targets = registry
            .list_targets_for_policy(&policy.name, &all)
            .unwrap()
            .items;
        out += &format!("{policy:?} {versions:?} {targets:?}\n");
    }
    out
}

/// One change to a registry.
type Step = Box<dyn Fn(&Registry)>;

#[test]
fn every_kind_of_change_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ca = EmulatorCa::generate().unwrap();
    let mut expected = String::new();
    // Each step changes the registry in one more way, then reopens it and compares everything.
    let steps: Vec<Step> = vec![
        Box::new(|r| {
            r.create_thing("t", Some("type"), attributes(&[("a", "1")]))
                .unwrap();
        }),
        Box::new(|r| {
            r.update_thing(
                "t",
                ThingUpdate {
                    attributes: Some(attributes(&[("b", "2")])),
                    merge: true,
                    ..ThingUpdate::default()
                },
            )
            .unwrap();
        }),
        Box::new(|r| {
            r.create_policy("p", POLICY).unwrap();
        }),
        Box::new(|r| {
            r.create_policy_version("p", OTHER_POLICY, true).unwrap();
        }),
        Box::new(|r| {
            r.set_default_policy_version("p", "1").unwrap();
        }),
        Box::new(|r| {
            r.create_policy_version("p", OTHER_POLICY, false).unwrap();
            r.delete_policy_version("p", "2").unwrap();
        }),
        Box::new(|r| {
            let ca = EmulatorCa::generate().unwrap();
            r.create_keys_and_certificate(&ca, false).unwrap();
        }),
        Box::new(|r| {
            let id = first_certificate(r);
            r.attach_policy("p", &id).unwrap();
            r.attach_thing_principal("t", &id, AttachmentKind::ExclusiveThing)
                .unwrap();
        }),
        Box::new(|r| {
            let id = first_certificate(r);
            r.set_certificate_status(&id, CertificateStatus::Revoked)
                .unwrap();
        }),
        Box::new(|r| {
            let id = first_certificate(r);
            r.detach_thing_principal("t", &id).unwrap();
            r.detach_policy("p", &id).unwrap();
        }),
        Box::new(|r| {
            let id = first_certificate(r);
            r.attach_policy("p", &id).unwrap();
            r.delete_certificate(&id, true).unwrap();
        }),
        Box::new(|r| {
            r.delete_thing("t", None).unwrap();
            r.delete_policy_version("p", "3").unwrap();
            r.delete_policy("p").unwrap();
        }),
    ];
    for (index, step) in steps.iter().enumerate() {
        let registry = Registry::open(dir.path()).unwrap();
        assert_eq!(dump(&registry), expected, "before step {index}");
        step(&registry);
        expected = dump(&registry);
        drop(registry);
        let reopened = Registry::open(dir.path()).unwrap();
        assert_eq!(dump(&reopened), expected, "after step {index} and a reopen");
    }
    assert_eq!(expected, "", "the last step deleted everything");
    let _ = ca;
}

fn first_certificate(registry: &Registry) -> String {
    registry
        .list_certificates(&page(1), true)
        .unwrap()
        .items
        .first()
        .map(|certificate| certificate.id.clone())
        .unwrap()
}

/// Opens a registry, makes `changes`, and returns the registry's dump and the journal's bytes before the next
/// open compacts it.
fn journal_after(dir: &Path, changes: impl FnOnce(&Registry)) -> (String, Vec<u8>) {
    let registry = Registry::open(dir).unwrap();
    changes(&registry);
    let state = dump(&registry);
    drop(registry);
    (state, std::fs::read(dir.join(JOURNAL_FILE)).unwrap())
}

#[test]
fn a_torn_last_journal_line_is_ignored_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (state, journal) = journal_after(dir.path(), |registry| {
        registry
            .create_thing("kept", None, BTreeMap::new())
            .unwrap();
        registry.create_policy("p", POLICY).unwrap();
    });
    assert_eq!(
        journal.iter().filter(|byte| **byte == b'\n').count(),
        2,
        "one line per change"
    );
    // A crash in the middle of the third write.
    let mut torn = journal.clone();
    torn.extend_from_slice(br#"{"seq":3,"ops":[{"putThing":{"name":"lost","th"#);
    std::fs::write(dir.path().join(JOURNAL_FILE), &torn).unwrap();

    let registry = Registry::open(dir.path()).unwrap();
    assert_eq!(dump(&registry), state);
    assert_eq!(
        std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len(),
        0,
        "the open compacted the journal, torn tail included"
    );
    registry
        .create_thing("after", None, BTreeMap::new())
        .unwrap();
    drop(registry);
    let reopened = Registry::open(dir.path()).unwrap();
    assert!(
        reopened.thing_exists("after"),
        "the next change was not swallowed"
    );
    assert!(reopened.thing_exists("kept"));
    assert!(!reopened.thing_exists("lost"));
}

#[test]
fn a_damaged_line_before_intact_ones_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let (_, journal) = journal_after(dir.path(), |registry| {
        registry.create_thing("a", None, BTreeMap::new()).unwrap();
        registry.create_thing("b", None, BTreeMap::new()).unwrap();
    });
    let mut damaged = b"{\"seq\":1,\"ops\":[{\"putTh\n".to_vec();
    damaged.extend_from_slice(&journal);
    std::fs::write(dir.path().join(JOURNAL_FILE), damaged).unwrap();
    assert_eq!(code(Registry::open(dir.path())), "InternalFailureException");
}

#[test]
fn journal_lines_already_in_the_snapshot_are_not_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (_, journal) = journal_after(dir.path(), |registry| {
        registry.create_policy("p", POLICY).unwrap();
        registry
            .create_policy_version("p", OTHER_POLICY, true)
            .unwrap();
    });
    // The next open folds the journal into the snapshot; a crash before it emptied the journal would leave
    // these lines behind.
    let state = dump(&Registry::open(dir.path()).unwrap());
    std::fs::write(dir.path().join(JOURNAL_FILE), &journal).unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    assert_eq!(dump(&registry), state);
    registry.set_default_policy_version("p", "1").unwrap();
    drop(registry);
    assert_eq!(
        Registry::open(dir.path())
            .unwrap()
            .get_policy("p")
            .unwrap()
            .default_version_id,
        "1"
    );
}

#[test]
fn a_failing_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry.create_policy("p", POLICY).unwrap();
    let length = std::fs::metadata(dir.path().join(JOURNAL_FILE))
        .unwrap()
        .len();
    let generation = registry.generation();
    assert!(registry.create_policy("p", OTHER_POLICY).is_err());
    assert!(registry.delete_thing("ghost", None).is_ok(), "a no-op");
    assert_eq!(
        std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len(),
        length
    );
    assert_eq!(registry.generation(), generation);
}

#[test]
fn the_first_file_format_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let ca = EmulatorCa::generate().unwrap();
    let issued = ca.issue_device_certificate().unwrap();
    let id = &issued.certificate_id;
    let policy: serde_json::Value = serde_json::from_str(POLICY).unwrap();
    let old = serde_json::json!({
        "things": {"ratchet": {"attributes": {"colour": "red"}}},
        "certificates": {id.as_str(): {
            "certificatePem": issued.certificate_pem,
            "status": "ACTIVE",
            "creationDateMs": 1_700_000_000_000_i64
        }},
        "policies": {"device": policy},
        "principalPolicies": {id.as_str(): ["device"]},
        "thingPrincipals": {"ratchet": {id.as_str(): "NON_EXCLUSIVE_THING"}}
    });
    std::fs::write(
        dir.path().join(SNAPSHOT_FILE),
        serde_json::to_string_pretty(&old).unwrap(),
    )
    .unwrap();

    let registry = Registry::open(dir.path()).unwrap();
    let thing = registry.describe_thing("ratchet").unwrap();
    assert_eq!(
        (thing.version, thing.attributes),
        (1, attributes(&[("colour", "red")]))
    );
    let certificate = registry.describe_certificate(id).unwrap();
    assert_eq!(certificate.created_ms, 1_700_000_000_000);
    assert_eq!(certificate.status, CertificateStatus::Active);
    let versions = registry.list_policy_versions("device").unwrap();
    assert_eq!(versions.len(), 1);
    assert!(versions[0].is_default);
    let principal = registry.principal(id).unwrap();
    let context = ConnectionContext::new("ratchet")
        .with_thing(principal.thing_for_client("ratchet").unwrap());
    let arns = ArnScope::new("us-east-1", "123456789012");
    assert!(
        principal
            .policies
            .decide(actions::CONNECT, &arns.client("ratchet"), &context)
            .is_allowed()
    );
    let rewritten: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap()).unwrap();
    assert_eq!(rewritten["formatVersion"], 2, "rewritten in the new format");
    let state = dump(&registry);
    drop(registry);
    assert_eq!(dump(&Registry::open(dir.path()).unwrap()), state);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    match Registry::open(dir.path()) {
        Err(RegistryError::InUse { holder, .. }) => {
            assert_eq!(holder, std::process::id().to_string())
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(registry);
    Registry::open(dir.path()).unwrap();
}

#[test]
fn the_journal_is_compacted_while_running_once_it_outgrows_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let journal_length = || {
        std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len()
    };
    let registry = Registry::open(dir.path())
        .unwrap()
        .with_compaction_floor(2048);
    let mut longest = 0;
    let mut compactions = 0;
    for index in 0..200 {
        let before = journal_length();
        registry
            .create_thing(&format!("thing-{index}"), None, attributes(&[("n", "1")]))
            .unwrap();
        let after = journal_length();
        if after < before {
            compactions += 1;
        }
        longest = longest.max(after);
    }
    assert!(compactions >= 2, "compacted {compactions} times");
    let snapshot = std::fs::metadata(dir.path().join(SNAPSHOT_FILE))
        .unwrap()
        .len();
    assert!(
        longest <= (2 * snapshot).max(2048) + 512,
        "the journal ({longest} bytes) stays within twice the snapshot ({snapshot} bytes)"
    );
    let state = dump(&registry);
    drop(registry);
    assert_eq!(dump(&Registry::open(dir.path()).unwrap()), state);
}

#[test]
fn a_buffered_registry_keeps_its_changes_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open_with(dir.path(), Durability::Buffered).unwrap();
    registry.create_policy("p", POLICY).unwrap();
    registry.create_thing("t", None, BTreeMap::new()).unwrap();
    assert!(
        std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len()
            > 0,
        "written to the journal before returning"
    );
    let state = dump(&registry);
    drop(registry);
    assert_eq!(dump(&Registry::open(dir.path()).unwrap()), state);
}

#[test]
fn concurrent_changes_share_syncs_and_all_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(Registry::open(dir.path()).unwrap());
    let generation = registry.generation();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                for index in 0..50 {
                    registry
                        .create_thing(&format!("w{writer}-{index}"), None, BTreeMap::new())
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(
        registry.generation(),
        generation + 200,
        "one move per change"
    );
    let state = dump(&registry);
    drop(registry);
    let reopened = Registry::open(dir.path()).unwrap();
    assert_eq!(dump(&reopened), state);
    let all = reopened
        .list_things(
            &ThingFilter::default(),
            &Page {
                marker: None,
                page_size: 1000,
            },
        )
        .unwrap();
    assert_eq!(all.items.len(), 200);
}

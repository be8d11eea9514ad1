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

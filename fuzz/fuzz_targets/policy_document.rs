//! IoT policy documents: `document \0 resource \0 client id`. A document that parses is compiled, decides every
//! action on the resource (and on the ARNs the broker builds for the client) for a connection with a thing and a
//! certificate, is audited, and reads back the same from its own JSON.
#![no_main]

use iot_policy::{
    ArnScope, AuditOptions, CertificateContext, CompiledPolicy, ConnectionContext, DnAttribute,
    PolicyDocument, ThingContext, actions, audit,
};
use libfuzzer_sys::fuzz_target;

const ACTIONS: [&str; 9] = [
    actions::CONNECT,
    actions::PUBLISH,
    actions::SUBSCRIBE,
    actions::RECEIVE,
    actions::RETAIN_PUBLISH,
    actions::GET_THING_SHADOW,
    actions::UPDATE_THING_SHADOW,
    actions::DELETE_THING_SHADOW,
    actions::LIST_NAMED_SHADOWS_FOR_THING,
];

fuzz_target!(|data: &[u8]| {
    let parts = iot_presence_fuzz::parts(data);
    let Some(text) = parts.first() else {
        return;
    };
    let Ok(document) = PolicyDocument::from_json_str(text) else {
        return;
    };
    let again = PolicyDocument::from_value(&document.to_json())
        .expect("a parsed document's own JSON parses again");
    assert_eq!(
        again, document,
        "a document reads back the same from its JSON"
    );

    let resource = parts.get(1).map_or("", String::as_str);
    let client_id = parts.get(2).map_or("ratchet", String::as_str);
    let context = ConnectionContext::new(client_id)
        .with_thing(ThingContext::named(client_id).with_attribute("room", "kitchen"))
        .with_certificate(
            CertificateContext::new("fuzz-certificate")
                .with_subject(DnAttribute::ALL[0], client_id),
        );
    let arns = ArnScope::new("eu-west-1", "123456789012");
    let policy = CompiledPolicy::compile("fuzz", &document);
    for action in ACTIONS {
        policy.decide(action, resource, &context);
        policy.decide(action, &arns.client(client_id), &context);
        policy.decide(action, &arns.topic(resource), &context);
    }
    audit(&[("fuzz".to_owned(), document)], &AuditOptions::default());
});

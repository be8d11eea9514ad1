//! Substitution templates in action parameters (reference 5.7, 5.10).

mod common;

use common::*;
use iot_sql::{DeterministicContext, EvalError, Message, ParseErrorKind, Template};

fn render(template: &str, topic: &str, payload: &[u8]) -> Result<String, EvalError> {
    let message = Message::mqtt(topic, payload, "dev-1", NOW_MS);
    Template::parse(template, V2016)
        .unwrap()
        .render(&message, &mut DeterministicContext::default())
}

#[test]
fn republish_to_a_reserved_topic_with_double_dollar() {
    // reference 5.7: republish trimmed deltas to ${topic(3)}/delta, and $$ reaches a $ topic.
    assert_eq!(
        render(
            "${topic(3)}/delta",
            "$aws/things/ratchet/shadow/update/delta",
            b"{}"
        )
        .unwrap(),
        "ratchet/delta"
    );
    assert_eq!(
        render(
            "$$aws/things/${topic(2)}/shadow/update",
            "device/ratchet/lwt",
            b"{}"
        )
        .unwrap(),
        "$aws/things/ratchet/shadow/update"
    );
}

#[test]
fn templates_see_the_payload_and_functions_but_render_undefined_as_empty() {
    let payload = br#"{"device_id": "d-7", "n": 3, "obj": {"a": [1]}, "nothing": null}"#;
    assert_eq!(
        render(
            "device/${device_id}/${n + 1}/${obj}/${missing}/${nothing}/${clientid()}",
            "a/b",
            payload
        )
        .unwrap(),
        r#"device/d-7/4/{"a":[1]}//null/dev-1"#
    );
}

#[test]
fn braces_inside_strings_and_literals_do_not_end_the_substitution() {
    assert_eq!(
        render("${concat('}', get({'k': 'v'}, 'k'))}!", "a/b", b"{}").unwrap(),
        "}v!"
    );
}

#[test]
fn plain_text_and_lone_dollars_stay_as_they_are() {
    let template = Template::parse("arn:aws:lambda:eu-west-1:1:function:f", V2016).unwrap();
    assert!(template.is_literal());
    assert_eq!(template.text(), "arn:aws:lambda:eu-west-1:1:function:f");
    assert_eq!(render("cost $5", "a/b", b"{}").unwrap(), "cost $5");
    assert!(!Template::parse("${topic()}", V2016).unwrap().is_literal());
}

#[test]
fn binary_payloads_refuse_templates_with_json_names() {
    // AWS binary-payloads page: republish to device/${device_id} cannot be used with binary payloads.
    assert_eq!(
        render("device/${device_id}", "a/b", &[0xff, 0x00]),
        Err(EvalError::BinaryPayloadReferencesJsonNames)
    );
    assert_eq!(
        render("t/${topic(1)}", "a/b", &[0xff, 0x00]).unwrap(),
        "t/a"
    );
}

#[test]
fn template_parse_errors_point_into_the_parameter() {
    let error = Template::parse("a/${topic(}", V2016).unwrap_err();
    assert_eq!(error.column, 11);
    let error = Template::parse("a/${topic()", V2016).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::UnterminatedSubstitution);
    assert_eq!(error.column, 3);
    let error = Template::parse("${a b}", V2016).unwrap_err();
    assert_eq!(error.column, 5);
}

//! The rules this project deploys (architecture section 3 "Rules") and the suggested Lambda SQL of
//! reference 5.4, on the payloads they will see.

mod common;

use common::*;
use iot_sql::{DeterministicContext, Message, Output, Rule, SqlVersion};
use serde_json::json;

const DISCONNECT_WILL: &str = "SELECT *, topic(2) AS thing, clientid() AS clientId, timestamp() AS receivedAt FROM 'device/+/lwt'";
const PRESENCE_EVENTS: &str = "SELECT * FROM '$aws/events/presence/+/+'";
const SHADOW_DOCUMENTS: &str =
    "SELECT *, topic(3) AS thing FROM '$aws/things/+/shadow/update/documents'";

const WILL: &[u8] = br#"{"thing":"ratchet","agentSession":"s-1","connectedAt":1764140000000,"agentVersion":"0.1.0","reason":"unexpected"}"#;

fn evaluate(sql: &str, message: &Message<'_>) -> Option<Output> {
    Rule::parse(sql, SqlVersion::V2016_03_23)
        .unwrap()
        .evaluate(message, &mut DeterministicContext::default())
        .unwrap()
}

#[test]
fn disconnect_will_adds_thing_client_and_receive_time() {
    let message = Message::mqtt("device/ratchet/lwt", WILL, "ratchet", NOW_MS);
    assert_eq!(
        evaluate(DISCONNECT_WILL, &message),
        Some(Output::Json(json!({
            "thing": "ratchet",
            "agentSession": "s-1",
            "connectedAt": 1764140000000_i64,
            "agentVersion": "0.1.0",
            "reason": "unexpected",
            "clientId": "ratchet",
            "receivedAt": NOW_MS,
        })))
    );
}

#[test]
fn disconnect_will_topic_segment_overrides_a_payload_thing() {
    // Later SELECT items win: the thing name comes from the topic, not from what the payload claims.
    let message = Message::mqtt(
        "device/ratchet/lwt",
        br#"{"thing":"impostor"}"#,
        "ratchet",
        NOW_MS,
    );
    let output = evaluate(DISCONNECT_WILL, &message).unwrap();
    assert_eq!(output.as_json().unwrap()["thing"], json!("ratchet"));
}

#[test]
fn disconnect_will_ignores_other_topics() {
    for topic in [
        "device/ratchet/lwt/extra",
        "device/lwt",
        "data/ratchet/temperature",
        "device/ratchet",
    ] {
        let message = Message::mqtt(topic, WILL, "ratchet", NOW_MS);
        assert_eq!(evaluate(DISCONNECT_WILL, &message), None, "{topic}");
    }
}

#[test]
fn disconnect_will_published_over_http_has_client_id_n_a() {
    let message = Message::http("device/ratchet/lwt", WILL, NOW_MS);
    let output = evaluate(DISCONNECT_WILL, &message).unwrap();
    assert_eq!(output.as_json().unwrap()["clientId"], json!("n/a"));
}

#[test]
fn disconnect_will_with_a_malformed_payload_is_refused_as_binary() {
    // The will is not JSON, and `*, topic(2) AS thing` breaks binary rule 2, so the rule fails
    // (and the emulator fires the error action) instead of inventing an event.
    let message = Message::mqtt("device/ratchet/lwt", b"not json", "ratchet", NOW_MS);
    let rule = Rule::parse(DISCONNECT_WILL, SqlVersion::V2016_03_23).unwrap();
    assert_eq!(
        rule.evaluate(&message, &mut DeterministicContext::default()),
        Err(iot_sql::EvalError::BinaryPayloadSelectShape)
    );
}

#[test]
fn presence_events_pass_lifecycle_payloads_unchanged() {
    let connected = json!({
        "clientId": "ratchet", "timestamp": 1764140000000_i64, "eventType": "connected",
        "sessionIdentifier": "00000000-0000-0000-0000-000000000000",
        "principalIdentifier": "12345678901234567890123456789012", "ipAddress": "192.0.2.0",
        "versionNumber": 0
    });
    let bytes = connected.to_string();
    let message = Message::mqtt(
        "$aws/events/presence/connected/ratchet",
        bytes.as_bytes(),
        "iot",
        NOW_MS,
    );
    assert_eq!(
        evaluate(PRESENCE_EVENTS, &message),
        Some(Output::Json(connected))
    );

    let disconnected = json!({
        "clientId": "ratchet", "timestamp": 1764140001000_i64, "eventType": "disconnected",
        "clientInitiatedDisconnect": false, "sessionIdentifier": "00000000-0000-0000-0000-000000000000",
        "principalIdentifier": "12345678901234567890123456789012",
        "disconnectReason": "MQTT_KEEP_ALIVE_TIMEOUT", "versionNumber": 0
    });
    let bytes = disconnected.to_string();
    let message = Message::mqtt(
        "$aws/events/presence/disconnected/ratchet",
        bytes.as_bytes(),
        "iot",
        NOW_MS,
    );
    assert_eq!(
        evaluate(PRESENCE_EVENTS, &message),
        Some(Output::Json(disconnected))
    );
}

#[test]
fn presence_events_match_only_presence_topics() {
    let rule = Rule::parse(PRESENCE_EVENTS, SqlVersion::V2016_03_23).unwrap();
    assert!(rule.matches_topic("$aws/events/presence/connected/ratchet"));
    assert!(rule.matches_topic("$aws/events/presence/disconnected/ratchet"));
    assert!(!rule.matches_topic("$aws/events/subscriptions/subscribed/ratchet"));
    assert!(!rule.matches_topic("$aws/events/presence/connected"));
}

#[test]
fn shadow_documents_add_the_thing_name() {
    let documents = json!({
        "previous": {"state": {"desired": {"MOTOR": "ON"}}, "version": 1},
        "current": {"state": {"desired": {"MOTOR": "ON"}, "reported": {"MOTOR": "ON"}}, "version": 2},
        "timestamp": 1764140000
    });
    let bytes = documents.to_string();
    let message = Message::mqtt(
        "$aws/things/ratchet/shadow/update/documents",
        bytes.as_bytes(),
        "ratchet",
        NOW_MS,
    );
    let mut expected = documents.clone();
    expected["thing"] = json!("ratchet");
    assert_eq!(
        evaluate(SHADOW_DOCUMENTS, &message),
        Some(Output::Json(expected))
    );
}

#[test]
fn shadow_documents_ignore_named_shadows_and_other_shadow_topics() {
    let rule = Rule::parse(SHADOW_DOCUMENTS, SqlVersion::V2016_03_23).unwrap();
    assert!(!rule.matches_topic("$aws/things/ratchet/shadow/name/connectivity/update/documents"));
    assert!(!rule.matches_topic("$aws/things/ratchet/shadow/update/accepted"));
}

#[test]
fn suggested_lambda_sql_carries_the_envelope() {
    let sql = "SELECT *, topic() AS topic, clientid() AS clientId, timestamp() AS receivedAt, principal() AS principal FROM 'device/+/data'";
    let thumbprint = "ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373";
    let message = Message::mqtt(
        "device/ratchet/data",
        br#"{"temp": 21.5}"#,
        "ratchet",
        NOW_MS,
    )
    .with_principal(thumbprint);
    assert_eq!(
        evaluate(sql, &message),
        Some(Output::Json(json!({
            "temp": 21.5, "topic": "device/ratchet/data", "clientId": "ratchet",
            "receivedAt": NOW_MS, "principal": thumbprint
        })))
    );
}

#[test]
fn trimming_shadow_deltas_example() {
    // reference 5.7: SELECT state, version FROM '$aws/things/+/shadow/update/delta'
    let delta = br#"{"version": 7, "timestamp": 1764140000, "state": {"MOTOR": "OFF"}, "metadata": {"MOTOR": {"timestamp": 1764140000}}}"#;
    let message = Message::mqtt(
        "$aws/things/ratchet/shadow/update/delta",
        delta,
        "iot",
        NOW_MS,
    );
    assert_eq!(
        evaluate(
            "SELECT state, version FROM '$aws/things/+/shadow/update/delta'",
            &message
        ),
        Some(Output::Json(
            json!({"state": {"MOTOR": "OFF"}, "version": 7})
        ))
    );
}

#[test]
fn architecture_rules_parse_in_both_versions() {
    for sql in [DISCONNECT_WILL, PRESENCE_EVENTS, SHADOW_DOCUMENTS] {
        for version in [V2015, V2016] {
            rule(sql, version);
        }
    }
}

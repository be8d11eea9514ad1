//! The example payloads of AWS's lifecycle-event documentation (reference section 1) and the
//! contract's will, through classification and record building.

use iot_events::record::{REASON_LAST_WILL, REASON_MALFORMED, REASON_UNSPECIFIED};
use iot_events::{
    Classified, DisconnectReason, DisconnectRecord, IgnoredKind, LifecycleEvent, RecordSource,
    RuleErrorPayload, classify, classify_bytes,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_documented_lifecycle_example_parses_and_round_trips() {
    for (file, event_type) in [
        ("connected.json", "connected"),
        ("disconnected.json", "disconnected"),
        ("connect_failed.json", "connect_failed"),
        ("subscribed.json", "subscribed"),
        ("unsubscribed.json", "unsubscribed"),
    ] {
        let original = fixture(file);
        let event: LifecycleEvent = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(event.event_type(), event_type, "{file}");
        assert_eq!(event.client_id(), "186b5");
        assert_eq!(event.thing_name(), Some("exampleThing"));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            original,
            "{file} round trip"
        );
    }
}

#[test]
fn documented_disconnect_example_is_a_clean_disconnect() {
    let Classified::Disconnected(e) = classify(&fixture("disconnected.json")) else {
        panic!("not classified as a disconnect");
    };
    assert_eq!(
        e.disconnect_reason,
        Some(DisconnectReason::ClientInitiatedDisconnect)
    );
    assert!(e.is_client_initiated());
    assert_eq!(e.version_number, 0);
    assert_eq!(e.timestamp, 1573002340451);
}

#[test]
fn non_disconnect_lifecycle_events_are_ignored() {
    for (file, kind) in [
        ("connected.json", "connected"),
        ("connect_failed.json", "connect_failed"),
        ("subscribed.json", "subscribed"),
        ("unsubscribed.json", "unsubscribed"),
    ] {
        assert_eq!(
            classify(&fixture(file)),
            Classified::Ignored(IgnoredKind::Lifecycle(kind)),
            "{file}"
        );
    }
    let future = json!({"eventType": "hibernated", "clientId": "x"});
    assert_eq!(
        classify(&future),
        Classified::Ignored(IgnoredKind::UnknownEventType("hibernated".into()))
    );
}

#[test]
fn every_disconnect_reason_gives_a_record() {
    let mut reasons: Vec<String> = DisconnectReason::DOCUMENTED
        .iter()
        .map(ToString::to_string)
        .collect();
    reasons.push("A_REASON_FROM_THE_FUTURE".into());
    for reason in reasons {
        let mut event = fixture("disconnected.json");
        event["disconnectReason"] = json!(reason);
        let clean = reason == "CLIENT_INITIATED_DISCONNECT";
        event["clientInitiatedDisconnect"] = json!(clean);
        let Classified::Disconnected(e) = classify(&event) else {
            panic!("{reason}: not a disconnect");
        };
        let record = DisconnectRecord::from_lifecycle(&e, 1_000);
        assert_eq!(record.reason, reason);
        assert_eq!(record.expected, clean, "{reason}");
        assert_eq!(record.client_initiated, Some(clean));
        assert_eq!(record.source, RecordSource::Lifecycle);
        assert_eq!(record.thing.as_deref(), Some("exampleThing"));
        assert_eq!(record.log_stream(), "exampleThing");
        let message: Value = serde_json::from_str(&record.to_log_message(1_000)).unwrap();
        assert_eq!(message["Reason"], json!(reason));
        assert_eq!(message["reason"], json!(reason));
    }
}

#[test]
fn a_disconnect_without_reason_is_still_recorded() {
    let mut event = fixture("disconnected.json");
    let map = event.as_object_mut().unwrap();
    map.remove("disconnectReason");
    map.remove("clientInitiatedDisconnect");
    map.remove("thingName");
    let Classified::Disconnected(e) = classify(&event) else {
        panic!("not a disconnect");
    };
    let record = DisconnectRecord::from_lifecycle(&e, 5);
    assert_eq!(record.reason, REASON_UNSPECIFIED);
    assert!(!record.expected);
    // Without an exclusive-thing association AWS sends no thingName: the client id is the thing.
    assert_eq!(record.thing.as_deref(), Some("186b5"));
}

#[test]
fn record_ids_identify_the_signal_not_the_delivery() {
    let Classified::Disconnected(e) = classify(&fixture("disconnected.json")) else {
        panic!()
    };
    let first = DisconnectRecord::from_lifecycle(&e, 1);
    let duplicate = DisconnectRecord::from_lifecycle(&e, 99_999);
    assert_eq!(first.record_id, duplicate.record_id);
    assert_eq!(first.record_id.len(), 32);

    let mut next_session = e.clone();
    next_session.session_identifier = "11111111-0000-0000-0000-000000000000".into();
    next_session.version_number = 1;
    assert_ne!(
        DisconnectRecord::from_lifecycle(&next_session, 1).record_id,
        first.record_id
    );
}

#[test]
fn will_rule_output_becomes_a_will_record() {
    let Classified::Will(will) = classify(&fixture("will_rule_output.json")) else {
        panic!("not a will");
    };
    let record = DisconnectRecord::from_will(&will);
    assert_eq!(record.source, RecordSource::Will);
    assert_eq!(record.reason, REASON_LAST_WILL);
    assert!(!record.expected);
    assert_eq!(record.thing.as_deref(), Some("ratchet"));
    assert_eq!(record.client_id.as_deref(), Some("ratchet"));
    assert_eq!(record.event_time, Some(1764144000123));
    assert_eq!(
        record.agent_session.as_deref(),
        Some("4f1c2a9e-5d1b-4c53-9d43-2f1e0c7b9a10")
    );
    assert_eq!(record.will_reason.as_deref(), Some("unexpected"));

    // The same will delivered again (a retried invocation) has the same id.
    let mut again = fixture("will_rule_output.json");
    again["receivedAt"] = json!(1764144999999u64);
    let Classified::Will(again) = classify(&again) else {
        panic!()
    };
    assert_eq!(
        DisconnectRecord::from_will(&again).record_id,
        record.record_id
    );
}

#[test]
fn record_message_is_valid_emf() {
    let Classified::Will(will) = classify(&fixture("will_rule_output.json")) else {
        panic!()
    };
    let message: Value =
        serde_json::from_str(&DisconnectRecord::from_will(&will).to_log_message(42)).unwrap();
    assert_eq!(message["schema"], "iot.disconnect.v1");
    let aws = &message["_aws"];
    assert_eq!(aws["Timestamp"], 42);
    let directive = &aws["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "IotPresence");
    assert_eq!(directive["Dimensions"], json!([["Reason"], []]));
    assert_eq!(directive["Metrics"][0]["Name"], "Disconnects");
    // Every dimension and metric named must be a root member (EMF "target members").
    assert_eq!(message["Reason"], "LAST_WILL");
    assert_eq!(message["Disconnects"], 1);
    assert!(
        message.get("malformed").is_none(),
        "only malformed records carry the flag"
    );
}

fn expect_malformed(value: Classified) -> iot_events::MalformedInput {
    match value {
        Classified::Malformed(m) => m,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn malformed_inputs_become_flagged_records_with_the_original_payload() {
    use base64::Engine;
    let cases: Vec<(Vec<u8>, &str, Option<&str>)> = vec![
        (b"{not json".to_vec(), "unknown", None),
        (b"[1,2,3]".to_vec(), "unknown", None),
        (b"\"just a string\"".to_vec(), "unknown", None),
        (br#"{"hello":"world"}"#.to_vec(), "unknown", None),
        // A will from a payload that is not ours: the rule still adds thing/clientId/receivedAt.
        (
            br#"{"state":{"reported":{"connected":"false"}},"thing":"pi-7","clientId":"pi-7","receivedAt":5}"#.to_vec(),
            "will",
            Some("pi-7"),
        ),
        // A lifecycle disconnect missing its sessionIdentifier and versionNumber.
        (
            br#"{"eventType":"disconnected","clientId":"pi-8","timestamp":1}"#.to_vec(),
            "lifecycle",
            None,
        ),
        (br#"{"eventType":42,"clientId":"pi-9"}"#.to_vec(), "lifecycle", None),
    ];
    for (raw, shape, thing) in cases {
        let m = expect_malformed(classify_bytes(&raw));
        assert_eq!(m.shape, shape, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(m.thing.as_deref(), thing);
        let record = DisconnectRecord::from_malformed(&m, 7);
        assert!(record.malformed);
        assert_eq!(record.reason, REASON_MALFORMED);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(record.payload_base64.as_deref().unwrap())
            .unwrap();
        assert_eq!(decoded, raw, "original payload must survive");
        let message: Value = serde_json::from_str(&record.to_log_message(7)).unwrap();
        assert_eq!(message["malformed"], true);
        assert!(message["error"].as_str().is_some_and(|e| !e.is_empty()));
        let expected_stream = thing.unwrap_or("_unknown");
        assert_eq!(record.log_stream(), expected_stream);
    }
}

#[test]
fn thing_names_with_colons_make_valid_stream_names() {
    let Classified::Disconnected(mut e) = classify(&fixture("disconnected.json")) else {
        panic!()
    };
    e.thing_name = Some("plant:line-1:pi".into());
    let stream = DisconnectRecord::from_lifecycle(&e, 1).log_stream();
    assert_eq!(stream, "plant%3Aline-1%3Api");
    assert!(!stream.contains(':') && !stream.contains('*'));
}

#[test]
fn rule_error_payload_matches_the_documented_example() {
    let original = fixture("rule_error.json");
    let payload: RuleErrorPayload = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(payload.rule_name, "TestAction");
    assert_eq!(payload.failures[0].failed_action, "S3Action");
    assert_eq!(serde_json::to_value(&payload).unwrap(), original);
}

//! Get, delete, recreate, named shadows, delta triggering and desired hygiene (reference 3.5–3.7).

use serde_json::{Value, json};
use shadow_doc::{
    DeleteRequest, DeltaTrigger, GetRequest, ShadowConfig, ShadowDocument, ShadowId, ShadowRecord,
    UpdateOutcome, UpdateRequest, apply_update, apply_update_to_record, clear_satisfied_desired,
    delete, get_response, update_from_payload,
};

fn request(value: Value) -> UpdateRequest {
    UpdateRequest::parse(value.to_string().as_bytes()).unwrap()
}

fn apply(current: Option<&ShadowDocument>, value: Value, now: u64) -> UpdateOutcome {
    apply_update(current, &request(value), now).unwrap()
}

#[test]
fn get_on_a_missing_classic_shadow_is_the_observed_404() {
    // AWSCRT.jl live test: exactly {"code":404,"message":"No shadow exists with name: '<thing>'"}.
    let shadow = ShadowId::classic("ratchet").unwrap();
    let error = get_response(None, &shadow, &GetRequest::parse(b""), 5).unwrap_err();
    assert_eq!(
        String::from_utf8(error.to_json_bytes()).unwrap(),
        r#"{"code":404,"message":"No shadow exists with name: 'ratchet'"}"#
    );

    // The SDK v2 sends a token with get and gets it back on the 404.
    let error = get_response(
        None,
        &shadow,
        &GetRequest::parse(br#"{"clientToken":"u"}"#),
        5,
    )
    .unwrap_err();
    assert_eq!(error.client_token.as_deref(), Some("u"));

    let named = ShadowId::named("ratchet", "connectivity").unwrap();
    let error = delete(None, &named, &DeleteRequest::default(), 5).unwrap_err();
    assert_eq!(
        error.message,
        "No shadow exists with name: 'ratchet~connectivity'"
    );
    assert_eq!(error.http_exception_name(), "ResourceNotFoundException");
}

#[test]
fn get_returns_full_document_with_delta_and_token() {
    let outcome = apply(
        None,
        json!({"state": {"desired": {"MOTOR": "ON", "fan": 1}, "reported": {"MOTOR": "OFF", "fan": 1, "temp": 40}}}),
        100,
    );
    let shadow = ShadowId::classic("ratchet").unwrap();
    let response = get_response(
        Some(&outcome.document),
        &shadow,
        &GetRequest::with_client_token("g1"),
        130,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({
            "state": {
                "desired": {"MOTOR": "ON", "fan": 1},
                "reported": {"MOTOR": "OFF", "fan": 1, "temp": 40},
                "delta": {"MOTOR": "ON"}
            },
            "metadata": {
                "desired": {"MOTOR": {"timestamp": 100}, "fan": {"timestamp": 100}},
                "reported": {"MOTOR": {"timestamp": 100}, "fan": {"timestamp": 100}, "temp": {"timestamp": 100}}
            },
            "version": 1,
            "timestamp": 130,
            "clientToken": "g1"
        })
    );

    // In sync: no delta key at all (reference 3.6: each section only if non-empty).
    let synced = apply(
        Some(&outcome.document),
        json!({"state": {"reported": {"MOTOR": "ON"}}}),
        140,
    );
    let body = serde_json::to_value(
        get_response(Some(&synced.document), &shadow, &GetRequest::default(), 141).unwrap(),
    )
    .unwrap();
    assert!(body["state"].get("delta").is_none(), "{body}");
    assert!(body.get("clientToken").is_none(), "{body}");
}

#[test]
fn delete_keeps_the_version_and_a_recreate_continues_from_it() {
    let config = ShadowConfig::default();
    let shadow = ShadowId::classic("ratchet").unwrap();
    let mut record: Option<ShadowRecord> = None;
    for now in 1..=4 {
        let outcome = apply_update_to_record(
            record.as_ref(),
            &request(json!({"state": {"reported": {"n": now}}})),
            &config,
            now,
        )
        .unwrap();
        record = Some(ShadowRecord::Live(outcome.document));
    }
    let live = record.as_ref().and_then(ShadowRecord::live).unwrap();
    assert_eq!(live.version, 4);

    let deleted = delete(
        Some(live),
        &shadow,
        &DeleteRequest::with_client_token("d"),
        10,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&deleted.response).unwrap(),
        json!({"version": 4, "timestamp": 10, "clientToken": "d"})
    );
    let record = ShadowRecord::Deleted(deleted.tombstone);

    // A deleted shadow reads as missing.
    assert_eq!(
        get_response(record.live(), &shadow, &GetRequest::default(), 11)
            .unwrap_err()
            .code,
        404
    );

    // Within 48 h: continues at 5, and `version` is checked against the deleted version.
    let conflict = apply_update_to_record(
        Some(&record),
        &request(json!({"state": {"reported": {"n": 0}}, "version": 0})),
        &config,
        20,
    )
    .unwrap_err();
    assert_eq!(conflict.code, 409);
    let recreated = apply_update_to_record(
        Some(&record),
        &request(json!({"state": {"reported": {"n": 5}}, "version": 4})),
        &config,
        20,
    )
    .unwrap();
    assert_eq!(recreated.document.version, 5);
    assert_eq!(recreated.documents.previous, None);

    // Exactly 48 h later still continues; one second more starts again from 0 (first update -> 1).
    let at_limit = apply_update_to_record(
        Some(&record),
        &request(json!({"state": {}})),
        &config,
        10 + 48 * 3600,
    )
    .unwrap();
    assert_eq!(at_limit.document.version, 5);
    let after = apply_update_to_record(
        Some(&record),
        &request(json!({"state": {}})),
        &config,
        10 + 48 * 3600 + 1,
    )
    .unwrap();
    assert_eq!(after.document.version, 1);
}

#[test]
fn record_round_trips_through_json_for_persistence() {
    let outcome = apply(None, json!({"state": {"desired": {"a": [1, {"b": 2}]}}}), 3);
    for record in [
        ShadowRecord::Live(outcome.document.clone()),
        ShadowRecord::Deleted(shadow_doc::DeletedShadow {
            version: 9,
            deleted_at: 4,
        }),
    ] {
        let text = serde_json::to_string(&record).unwrap();
        let back: ShadowRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
    }
}

#[test]
fn empty_state_update_is_accepted_and_bumps_the_version() {
    let first = apply(None, json!({"state": {}}), 1);
    assert_eq!(first.document.version, 1);
    assert!(first.document.state.is_empty());
    assert_eq!(
        serde_json::to_value(&first.accepted).unwrap(),
        json!({"state": {}, "metadata": {}, "version": 1, "timestamp": 1})
    );
}

#[test]
fn nulls_empty_objects_and_type_changes_merge_like_aws() {
    let outcome = apply(
        None,
        json!({"state": {"reported": {"a": {"b": 1, "c": {"d": 2}}, "s": 5, "arr": [1, 2]}}}),
        1,
    );
    // Deleting the last key of a nested object removes the object; deleting an absent key is a no-op;
    // an object replaces a scalar; an empty object adds nothing.
    let outcome = apply(
        Some(&outcome.document),
        json!({"state": {"reported": {"a": {"c": {"d": null}}, "ghost": null, "s": {"x": 1}, "e": {}, "arr": [3]}}}),
        2,
    );
    assert_eq!(
        Value::Object(outcome.document.state.reported.clone().unwrap()),
        json!({"a": {"b": 1}, "s": {"x": 1}, "arr": [3]})
    );
    assert_eq!(
        serde_json::to_value(&outcome.document.metadata.reported).unwrap(),
        json!({"a": {"b": {"timestamp": 1}}, "s": {"x": {"timestamp": 2}}, "arr": [{"timestamp": 2}]})
    );
    // The accepted echo keeps the request verbatim, nulls included, with a timestamp per touched leaf.
    assert_eq!(
        serde_json::to_value(&outcome.accepted.metadata).unwrap(),
        json!({"reported": {
            "a": {"c": {"d": {"timestamp": 2}}}, "ghost": {"timestamp": 2}, "s": {"x": {"timestamp": 2}},
            "e": {}, "arr": [{"timestamp": 2}]
        }})
    );

    // Nulling the last reported key removes the section; the shadow still exists (reference 3.7).
    let outcome = apply(
        Some(&outcome.document),
        json!({"state": {"reported": {"a": null, "s": null, "arr": null}}}),
        3,
    );
    assert!(outcome.document.state.is_empty());
    assert_eq!(outcome.document.metadata, Default::default());
    assert_eq!(outcome.document.version, 3);
}

#[test]
fn delta_trigger_follows_the_observed_cases() {
    let base = apply(
        None,
        json!({"state": {"desired": {"LOCK": "unlock", "color": "red"}, "reported": {"LOCK": "unlock"}}}),
        1,
    )
    .document;

    // Reported-only update creating a difference: delta (embedded-C#229), carrying all differing keys.
    let locked = apply(
        Some(&base),
        json!({"state": {"reported": {"LOCK": "locked"}}}),
        2,
    );
    assert_eq!(
        Value::Object(locked.delta.unwrap().state),
        json!({"LOCK": "unlock", "color": "red"})
    );

    // Reported-only update of a key desired does not mention: no delta under the default rule.
    let unrelated = apply(Some(&base), json!({"state": {"reported": {"temp": 20}}}), 2);
    assert!(unrelated.delta.is_none());

    // Only nulls in desired: no delta (awsdocs/aws-iot-docs#54) even though one remains.
    let cleared = apply(
        Some(&base),
        json!({"state": {"desired": {"LOCK": null}}}),
        2,
    );
    assert!(cleared.delta.is_none());
    assert_eq!(
        cleared.document.delta(),
        json!({"color": "red"}).as_object().unwrap().clone()
    );

    // Clearing reported while desired exists re-opens every desired key.
    let reset = apply(Some(&base), json!({"state": {"reported": null}}), 2);
    assert_eq!(
        Value::Object(reset.delta.unwrap().state),
        json!({"LOCK": "unlock", "color": "red"})
    );

    // The permissive rule publishes whenever a delta remains.
    let config = ShadowConfig {
        delta_trigger: DeltaTrigger::WheneverNonEmpty,
        ..ShadowConfig::default()
    };
    let record = ShadowRecord::Live(base);
    let outcome = update_from_payload(
        Some(&record),
        br#"{"state":{"reported":{"temp":20}}}"#,
        &config,
        3,
    )
    .unwrap();
    assert_eq!(
        Value::Object(outcome.delta.unwrap().state),
        json!({"color": "red"})
    );
}

#[test]
fn desired_hygiene_clears_only_satisfied_keys_with_a_version_lock() {
    let outcome = apply(
        None,
        json!({"state": {"desired": {"MOTOR": "ON", "fan": 2, "cfg": {"a": 1}}, "reported": {"MOTOR": "ON", "fan": 2.0, "cfg": {"a": 2}}}}),
        1,
    );
    let cleanup = clear_satisfied_desired(&outcome.documents.current).unwrap();
    assert_eq!(
        cleanup.to_json(),
        json!({"state": {"desired": {"MOTOR": null, "fan": null}}, "version": 1})
    );
    let cleaned = apply_update(Some(&outcome.document), &cleanup, 2).unwrap();
    assert_eq!(
        Value::Object(cleaned.document.state.desired.clone().unwrap()),
        json!({"cfg": {"a": 1}})
    );
    assert!(cleaned.delta.is_none());
    assert!(clear_satisfied_desired(&cleaned.documents.current).is_none());
}

#[test]
fn publications_name_the_topics_of_the_shadow() {
    let shadow = ShadowId::named("ratchet", "connectivity").unwrap();
    let outcome = apply(
        None,
        json!({"state": {"desired": {"a": 1}}, "clientToken": "p"}),
        4,
    );
    let publications = outcome.publications(&shadow);
    let topics: Vec<&str> = publications.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "$aws/things/ratchet/shadow/name/connectivity/update/accepted",
            "$aws/things/ratchet/shadow/name/connectivity/update/documents",
            "$aws/things/ratchet/shadow/name/connectivity/update/delta",
        ]
    );
    let delta: shadow_doc::DeltaMessage = serde_json::from_slice(&publications[2].payload).unwrap();
    assert_eq!(Some(&delta), outcome.delta.as_ref());
    let documents: shadow_doc::DocumentsMessage =
        serde_json::from_slice(&publications[1].payload).unwrap();
    assert_eq!(documents, outcome.documents);

    // No delta, no delta publication.
    let synced = apply(
        Some(&outcome.document),
        json!({"state": {"reported": {"a": 1}}}),
        5,
    );
    assert_eq!(synced.publications(&shadow).len(), 2);
}

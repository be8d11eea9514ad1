//! One test per shadow gap of moto listed in anchors.md section 3.2 (probe: moto_iotdata_probe.py), each
//! asserting what AWS does instead.

use serde_json::{Value, json};
use shadow_doc::{
    GetRequest, ShadowDocument, ShadowError, ShadowId, UpdateRequest, apply_update, get_response,
};

fn update(current: Option<&ShadowDocument>, request: Value, now: u64) -> ShadowDocument {
    let request = UpdateRequest::parse(request.to_string().as_bytes()).unwrap();
    apply_update(current, &request, now).unwrap().document
}

fn try_update(
    current: Option<&ShadowDocument>,
    request: Value,
    now: u64,
) -> Result<ShadowDocument, ShadowError> {
    let request = UpdateRequest::parse(request.to_string().as_bytes())?;
    Ok(apply_update(current, &request, now)?.document)
}

fn get(document: &ShadowDocument) -> Value {
    let shadow = ShadowId::classic("pi").unwrap();
    serde_json::to_value(
        get_response(Some(document), &shadow, &GetRequest::default(), 999).unwrap(),
    )
    .unwrap()
}

/// Gap 1: moto treats `"desired": null` as "absent"; AWS removes the section (reference 3.4).
#[test]
fn gap1_desired_null_clears_desired_and_the_delta() {
    let document = update(
        None,
        json!({"state": {"reported": {"motor": "OFF", "temp": 20}, "desired": {"motor": "ON"}}}),
        10,
    );
    assert_eq!(get(&document)["state"]["delta"], json!({"motor": "ON"}));

    let document = update(Some(&document), json!({"state": {"desired": null}}), 11);
    let body = get(&document);
    assert_eq!(
        body["state"],
        json!({"reported": {"motor": "OFF", "temp": 20}})
    );
    assert_eq!(
        body["metadata"],
        json!({"reported": {"motor": {"timestamp": 10}, "temp": {"timestamp": 10}}})
    );
    assert_eq!(document.version, 2);
}

/// Gap 2: moto rewrites every metadata timestamp on each update (cf. moto#3849); AWS stamps only the
/// leaves the request touched.
#[test]
fn gap2_untouched_metadata_timestamps_are_kept() {
    let document = update(
        None,
        json!({"state": {"reported": {"motor": "OFF", "temp": 20, "cfg": {"a": 1, "b": 2}}}}),
        100,
    );
    let document = update(
        Some(&document),
        json!({"state": {"reported": {"motor": "ON", "cfg": {"b": 3}}}}),
        160,
    );
    assert_eq!(
        get(&document)["metadata"]["reported"],
        json!({
            "motor": {"timestamp": 160},
            "temp": {"timestamp": 100},
            "cfg": {"a": {"timestamp": 100}, "b": {"timestamp": 160}}
        })
    );

    // The moto#3849 scenario: two desired keys written by two updates both keep their metadata.
    let document = update(None, json!({"state": {"desired": {"new_state": 1}}}), 1);
    let document = update(
        Some(&document),
        json!({"state": {"desired": {"next_state": 2}}}),
        2,
    );
    assert_eq!(
        get(&document)["metadata"]["desired"],
        json!({"new_state": {"timestamp": 1}, "next_state": {"timestamp": 2}})
    );
}

/// Gap 3: moto drops `clientToken` from the update response; AWS echoes it on accepted, delta,
/// documents and rejected (reference 3.3).
#[test]
fn gap3_client_token_is_echoed_everywhere() {
    let request = UpdateRequest::parse(
        br#"{"state":{"desired":{"x":1},"reported":{"x":2}},"clientToken":"tok-1"}"#,
    )
    .unwrap();
    let outcome = apply_update(None, &request, 5).unwrap();
    assert_eq!(outcome.accepted.client_token.as_deref(), Some("tok-1"));
    assert_eq!(
        outcome.delta.unwrap().client_token.as_deref(),
        Some("tok-1")
    );
    assert_eq!(outcome.documents.client_token.as_deref(), Some("tok-1"));

    let stale = UpdateRequest::parse(
        br#"{"state":{"reported":{"x":3}},"version":0,"clientToken":"tok-2"}"#,
    )
    .unwrap();
    let error = apply_update(Some(&outcome.document), &stale, 6).unwrap_err();
    assert_eq!(error.client_token.as_deref(), Some("tok-2"));

    // A request without a token gets responses without one (no `"clientToken": null`).
    let plain = UpdateRequest::parse(br#"{"state":{"reported":{"x":4}}}"#).unwrap();
    let outcome = apply_update(None, &plain, 7).unwrap();
    let accepted = serde_json::to_value(&outcome.accepted).unwrap();
    assert!(accepted.get("clientToken").is_none(), "{accepted}");
}

/// Gap 4a: moto has no size limit. AWS limits desired+reported of the **merged** document to 8 KB
/// (8192 bytes of compact JSON); metadata is free; a tiny update is refused when the merged document
/// would exceed the limit (reference 3.9, re:Post 413 answer).
#[test]
fn gap4_state_size_limit_is_8_kib_on_the_merged_document() {
    // {"big":"xxxx..."} has 10 bytes of overhead around the string.
    let exactly_full = update(
        None,
        json!({"state": {"reported": {"big": "x".repeat(8192 - 10)}}}),
        1,
    );
    assert_eq!(exactly_full.state_size_bytes(), 8192);

    // 44-byte-class update on top of a full document: rejected with 413, stored document unchanged.
    let error = try_update(
        Some(&exactly_full),
        json!({"state": {"desired": {"a": 1}}, "clientToken": "c"}),
        2,
    )
    .unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (413, "The payload exceeds the maximum size allowed")
    );
    assert_eq!(error.client_token.as_deref(), Some("c"));

    // The moto probe's 9000-byte value.
    let error = try_update(
        None,
        json!({"state": {"reported": {"big": "x".repeat(9000)}}}),
        3,
    )
    .unwrap_err();
    assert_eq!(error.code, 413);

    // A request larger than 8 KB is fine when the merged result is small: only the result counts.
    let mut deletions = serde_json::Map::new();
    for index in 0..1000 {
        deletions.insert(format!("gone{index:04}"), Value::Null);
    }
    deletions.insert("kept".into(), json!(1));
    let request = json!({"state": {"reported": deletions}});
    assert!(request.to_string().len() > 8192);
    let document = update(None, request, 4);
    assert_eq!(
        document.state.reported,
        Some(json!({"kept": 1}).as_object().unwrap().clone())
    );

    // Metadata does not count: a document whose metadata pushes the total over 8 KB is still accepted.
    let mut many = serde_json::Map::new();
    for index in 0..400 {
        many.insert(format!("k{index:03}"), json!(1));
    }
    let document = update(None, json!({"state": {"reported": many}}), 5);
    assert!(document.state_size_bytes() <= 8192);
    assert!(serde_json::to_vec(&document.metadata).unwrap().len() > 8192);
}

/// Gap 4b: moto has no depth limit. AWS refuses more than 6 levels counted from the section object
/// (5 below it), with `JSON contains too many levels of nesting; maximum is 6` (reference 3.8, 3.9).
#[test]
fn gap4_nesting_depth_limit() {
    // The moto probe's document: 7 levels under `reported`.
    let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}});
    let error = try_update(
        None,
        json!({"state": {"reported": deep}, "clientToken": "d"}),
        1,
    )
    .unwrap_err();
    assert_eq!(error.code, 400);
    assert_eq!(
        error.message,
        "JSON contains too many levels of nesting; maximum is 6"
    );
    assert_eq!(error.client_token.as_deref(), Some("d"));

    // The deepest example on the old quota page is allowed.
    let deepest_allowed = json!({"one": {"two": {"three": {"four": {"five": {}}}}}});
    assert!(try_update(None, json!({"state": {"desired": deepest_allowed}}), 1).is_ok());
    // Arrays are levels too: the section plus five arrays is the maximum.
    assert!(try_update(None, json!({"state": {"desired": {"a": [[[[[1]]]]]}}}), 1).is_ok());
    assert_eq!(
        try_update(None, json!({"state": {"desired": {"a": [[[[[[1]]]]]]}}}), 1)
            .unwrap_err()
            .code,
        400
    );
}

/// Gap 8: moto crashes (`None.version`) when a `version` is sent for a shadow that does not exist.
/// AWS treats a missing shadow as being at version 0: `version: 0` creates it at 1, anything else is a
/// 409 (reference 3.3, 3.7).
#[test]
fn gap8_version_on_a_missing_shadow_behaves_like_version_zero() {
    let error = try_update(
        None,
        json!({"state": {"reported": {"a": 1}}, "version": 5}),
        1,
    )
    .unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (409, "Version conflict")
    );
    assert_eq!(error.timestamp, None);

    let document = update(
        None,
        json!({"state": {"reported": {"a": 1}}, "version": 0}),
        1,
    );
    assert_eq!(document.version, 1);
}

/// Probe item 5: a stale version is refused, the matching one accepted.
#[test]
fn stale_version_is_a_conflict_matching_version_applies() {
    let document = update(None, json!({"state": {"reported": {"x": 1}}}), 1);
    let document = update(Some(&document), json!({"state": {"reported": {"x": 2}}}), 2);
    assert_eq!(document.version, 2);
    assert_eq!(
        try_update(
            Some(&document),
            json!({"state": {"reported": {"x": 3}}, "version": 1}),
            3
        )
        .unwrap_err()
        .code,
        409
    );
    let document = update(
        Some(&document),
        json!({"state": {"reported": {"x": 3}}, "version": 2}),
        3,
    );
    assert_eq!(document.version, 3);
}

/// Probe item 7 and reference 3.5: delta direction and nesting.
#[test]
fn nested_delta_walks_desired() {
    let document = update(
        None,
        json!({"state": {"desired": {"cfg": {"a": 1, "b": 2}}, "reported": {"cfg": {"a": 1, "b": 3}, "only": 1}}}),
        1,
    );
    assert_eq!(get(&document)["state"]["delta"], json!({"cfg": {"b": 2}}));
}

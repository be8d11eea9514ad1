//! Request validation: AWS's codes and messages (reference 3.8) and the order in which they are checked.

use serde_json::json;
use shadow_doc::{
    SectionUpdate, ShadowConfig, ShadowError, ShadowLimits, UpdateRequest, update_from_payload,
};

fn rejection(payload: &[u8]) -> (u16, String, Option<String>) {
    let error = UpdateRequest::parse(payload).unwrap_err();
    (error.code, error.message, error.client_token)
}

fn bad_request(message: &str) -> (u16, String, Option<String>) {
    (400, message.to_string(), None)
}

#[test]
fn each_documented_400_message() {
    let cases: [(&[u8], &str); 14] = [
        (b"", "Invalid JSON"),
        (b"{\"state\":", "Invalid JSON"),
        (b"not json", "Invalid JSON"),
        // A bare JSON value: AWS answered `66` with "missing required node: state" (aws-iot-device-sdk-js#22).
        (b"66", "Missing required node: state"),
        (b"[]", "Missing required node: state"),
        (b"{}", "Missing required node: state"),
        (br#"{"desired":{"a":1}}"#, "Missing required node: state"),
        (br#"{"state":5}"#, "State node must be an object"),
        (br#"{"state":[]}"#, "State node must be an object"),
        (
            br#"{"state":{"delta":{"a":1}}}"#,
            "State contains an invalid node",
        ),
        (
            br#"{"state":{"desired":{"a":1},"extra":1}}"#,
            "State contains an invalid node",
        ),
        (
            br#"{"state":{"desired":"ON"}}"#,
            "Desired node must be an object",
        ),
        (
            br#"{"state":{"reported":[1]}}"#,
            "Reported node must be an object",
        ),
        (
            br#"{"state":{"desired":{"colors":[null,"RED","GREEN"]}}}"#,
            "Invalid JSON",
        ),
    ];
    for (payload, message) in cases {
        assert_eq!(
            rejection(payload),
            bad_request(message),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn version_must_be_a_non_negative_integer() {
    for version in [json!(-1), json!(1.5), json!("3"), json!(null), json!({})] {
        let payload = json!({"state": {"reported": {"a": 1}}, "version": version}).to_string();
        assert_eq!(
            rejection(payload.as_bytes()),
            bad_request("Invalid version"),
            "{payload}"
        );
    }
    let request = UpdateRequest::parse(br#"{"state":{"reported":{"a":1}},"version":7}"#).unwrap();
    assert_eq!(request.version(), Some(7));
}

#[test]
fn client_token_is_limited_to_64_bytes_not_characters() {
    let ok = json!({"state": {}, "clientToken": "x".repeat(64)}).to_string();
    assert!(UpdateRequest::parse(ok.as_bytes()).is_ok());

    let too_long = json!({"state": {}, "clientToken": "x".repeat(65)}).to_string();
    assert_eq!(
        rejection(too_long.as_bytes()),
        bad_request("Invalid clientToken")
    );

    // 33 two-byte characters = 66 bytes.
    let multibyte = json!({"state": {}, "clientToken": "é".repeat(33)}).to_string();
    assert_eq!(
        rejection(multibyte.as_bytes()),
        bad_request("Invalid clientToken")
    );

    let not_a_string = json!({"state": {}, "clientToken": 12}).to_string();
    assert_eq!(
        rejection(not_a_string.as_bytes()),
        bad_request("Invalid clientToken")
    );
}

#[test]
fn non_utf8_payload_is_415() {
    assert_eq!(
        rejection(b"{\"state\":{\"reported\":{\"a\":\"\xff\"}}}"),
        (
            415,
            "Unsupported documented encoding; supported encoding is UTF-8".to_string(),
            None
        )
    );
}

#[test]
fn checks_run_in_order_and_later_errors_echo_the_token() {
    // Token problems win over everything after them.
    assert_eq!(
        rejection(br#"{"clientToken":5,"version":"x"}"#),
        bad_request("Invalid clientToken")
    );
    // Version is checked before state, and the valid token is echoed.
    assert_eq!(
        rejection(br#"{"clientToken":"t","version":"x"}"#),
        (400, "Invalid version".to_string(), Some("t".to_string()))
    );
    assert_eq!(
        rejection(br#"{"clientToken":"t"}"#),
        (
            400,
            "Missing required node: state".to_string(),
            Some("t".to_string())
        )
    );
    // Invalid node under state is reported before a bad section type.
    assert_eq!(
        rejection(br#"{"state":{"desired":5,"other":1},"clientToken":"t"}"#),
        (
            400,
            "State contains an invalid node".to_string(),
            Some("t".to_string())
        )
    );
    // Depth is checked before arrays with null.
    let deep_and_null = json!({"state": {"reported": {"n": [null], "a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}});
    assert_eq!(
        rejection(deep_and_null.to_string().as_bytes()).1,
        "JSON contains too many levels of nesting; maximum is 6"
    );
}

#[test]
fn unknown_top_level_fields_are_ignored_not_stored() {
    let request = UpdateRequest::parse(
        br#"{"state":{"reported":{"a":1}},"metadata":{"x":1},"timestamp":5,"whatever":[1]}"#,
    )
    .unwrap();
    assert_eq!(request.to_json(), json!({"state": {"reported": {"a": 1}}}));
}

#[test]
fn state_null_and_section_null_are_valid() {
    let request = UpdateRequest::parse(br#"{"state":null}"#).unwrap();
    assert_eq!(request.desired(), &SectionUpdate::Clear);
    assert_eq!(request.reported(), &SectionUpdate::Clear);
    assert_eq!(request.state_json(), json!(null));

    let request = UpdateRequest::parse(br#"{"state":{"desired":null}}"#).unwrap();
    assert_eq!(request.desired(), &SectionUpdate::Clear);
    assert_eq!(request.reported(), &SectionUpdate::Untouched);
}

#[test]
fn objects_inside_arrays_are_plain_values() {
    // Only direct array elements may not be null; objects in arrays are stored as sent.
    assert!(UpdateRequest::parse(br#"{"state":{"desired":{"a":[{"b":null}]}}}"#).is_ok());
    assert_eq!(
        rejection(br#"{"state":{"desired":{"a":[[1,null]]}}}"#),
        bad_request("Invalid JSON")
    );
}

#[test]
fn limits_are_configurable() {
    let strict = ShadowLimits {
        max_state_bytes: 16,
        max_nesting_levels: 2,
    };
    let error =
        UpdateRequest::parse_with_limits(br#"{"state":{"desired":{"a":{"b":{}}}}}"#, &strict)
            .unwrap_err();
    assert_eq!(
        error.message,
        "JSON contains too many levels of nesting; maximum is 2"
    );

    let config = ShadowConfig {
        limits: strict,
        ..ShadowConfig::default()
    };
    let error = update_from_payload(
        None,
        br#"{"state":{"desired":{"abcdefgh":"12345678"}}}"#,
        &config,
        1,
    )
    .unwrap_err();
    assert_eq!(error.code, 413);
}

#[test]
fn payload_errors_are_stamped_ready_to_publish() {
    let config = ShadowConfig::default();
    let error = update_from_payload(None, br#"{"clientToken":"t"}"#, &config, 77).unwrap_err();
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"code": 400, "message": "Missing required node: state", "timestamp": 77, "clientToken": "t"})
    );
    assert_eq!(error.http_exception_name(), "InvalidRequestException");
    assert_eq!(
        serde_json::from_slice::<ShadowError>(&error.to_json_bytes()).unwrap(),
        error
    );
}

#[test]
fn requests_built_in_code_round_trip_through_the_parser() {
    let mut reported = serde_json::Map::new();
    reported.insert("MOTOR".into(), json!("ON"));
    let request = UpdateRequest::report(reported)
        .with_client_token("agent-1")
        .with_version(4);
    let parsed = UpdateRequest::parse(&request.to_json_bytes()).unwrap();
    assert_eq!(parsed, request);
    assert_eq!(
        request.to_json(),
        json!({"state": {"reported": {"MOTOR": "ON"}}, "clientToken": "agent-1", "version": 4})
    );
}

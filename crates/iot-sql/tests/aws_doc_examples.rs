//! The examples of the AWS IoT SQL reference pages (reference section 5 sources: iot-sql-select,
//! -from, -where, -case, -literals, -json, -nested-queries, iot-rule-sql-version, binary-payloads,
//! iot-sql-data-types), used as test vectors.

mod common;

use common::*;
use iot_sql::{EvalError, Message, Output, ParseErrorKind, Rule};
use serde_json::json;

const COLOR_TEMP: &str = r#"{"color":"red", "temperature":50}"#;

#[test]
fn select_star_returns_the_payload() {
    for version in [V2015, V2016] {
        assert_eq!(
            select_json("SELECT * FROM 'a/b'", version, COLOR_TEMP),
            Some(json!({"color":"red", "temperature":50}))
        );
    }
}

#[test]
fn select_a_key() {
    assert_eq!(
        select_json("SELECT color FROM 'a/b'", V2015, COLOR_TEMP),
        Some(json!({"color":"red"}))
    );
}

#[test]
fn as_renames_keys() {
    assert_eq!(
        select_json("SELECT color AS my_color FROM 'a/b'", V2015, COLOR_TEMP),
        Some(json!({"my_color":"red"}))
    );
    assert_eq!(
        select_json(
            "SELECT color as my_color, temperature as fahrenheit FROM 'a/b'",
            V2015,
            COLOR_TEMP
        ),
        Some(json!({"my_color":"red","fahrenheit":50}))
    );
}

#[test]
fn star_with_extra_items_adds_keys_next_to_the_payload() {
    assert_eq!(
        select_json("SELECT *, 15 as speed FROM 'a/b'", V2015, COLOR_TEMP),
        Some(json!({"color":"red", "temperature":50, "speed":15}))
    );
}

#[test]
fn select_value_outputs_a_bare_value() {
    let output = run_on(
        "SELECT VALUE color FROM 'a/b'",
        V2015,
        "a/b",
        COLOR_TEMP.as_bytes(),
    )
    .unwrap();
    assert_eq!(output, Some(Output::Json(json!("red"))));
    assert_eq!(output.unwrap().to_bytes(), b"\"red\"");
}

#[test]
fn dot_drills_into_nested_objects() {
    assert_eq!(
        select_json(
            "SELECT color.red as red_value FROM 'a/b'",
            V2015,
            r#"{"color":{"red":255,"green":0,"blue":0}, "temperature":50}"#
        ),
        Some(json!({"red_value":255}))
    );
}

#[test]
fn arithmetic_and_functions_in_select() {
    for version in [V2015, V2016] {
        assert_eq!(
            select_json(
                "SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color FROM 'a/b'",
                version,
                COLOR_TEMP
            ),
            Some(json!({"celsius":10,"my_color":"RED"}))
        );
    }
}

#[test]
fn the_doc_typo_en_dash_is_a_parse_error_with_its_position() {
    // The AWS page prints "(temperature – 32)" with an en dash; AWS SQL has no such operator.
    let error = Rule::parse(
        "SELECT (temperature – 32) * 5 / 9 AS celsius FROM 'a/b'",
        V2015,
    )
    .unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::UnexpectedCharacter('–'));
    assert_eq!((error.line, error.column), (1, 21));
    assert_eq!(error.offset, 20);
}

#[test]
fn sql_reference_overview_example() {
    assert_eq!(
        select_json(
            "SELECT color AS rgb FROM 'topic/subtopic' WHERE temperature > 50",
            V2015,
            r#"{"color":"red","temperature":100}"#
        )
        .map(|_| ()),
        None,
        "the topic a/b does not match 'topic/subtopic'"
    );
    let output = run_on(
        "SELECT color AS rgb FROM 'topic/subtopic' WHERE temperature > 50",
        V2015,
        "topic/subtopic",
        br#"{"color":"red","temperature":100}"#,
    )
    .unwrap();
    assert_eq!(output, Some(Output::Json(json!({"rgb":"red"}))));
}

#[test]
fn where_false_means_no_output() {
    assert_eq!(
        select_json(
            "SELECT color AS my_color FROM 'a/b' WHERE temperature > 50 AND color <> 'red'",
            V2015,
            r#"{"color":"red", "temperature":40}"#
        ),
        None
    );
}

#[test]
fn where_cannot_see_select_aliases() {
    // WHERE runs first and only sees the payload, so the alias `t` is an unknown (Undefined) name.
    assert_eq!(
        select_json(
            "SELECT temperature AS t FROM 'a/b' WHERE t > 10",
            V2015,
            r#"{"temperature":40}"#
        ),
        None
    );
    assert_eq!(
        select_json(
            "SELECT temperature AS t FROM 'a/b' WHERE temperature > 10",
            V2015,
            r#"{"temperature":40}"#
        ),
        Some(json!({"t":40}))
    );
}

#[test]
fn from_multi_level_wildcard_example() {
    let sql = "SELECT temperature AS t FROM 'a/#'";
    let cases = [
        ("a/b", r#"{"temperature": 50}"#, Some(json!({"t":50}))),
        ("a/c", r#"{"temperature": 60}"#, Some(json!({"t":60}))),
        ("a/e/f", r#"{"temperature": 70}"#, Some(json!({"t":70}))),
        ("b/x", r#"{"temperature": 80}"#, None),
    ];
    for (topic, payload, expected) in cases {
        let output = run_on(sql, V2015, topic, payload.as_bytes()).unwrap();
        assert_eq!(
            output.map(|o| o.as_json().cloned().unwrap()),
            expected,
            "{topic}"
        );
    }
}

#[test]
fn from_single_level_wildcard_example() {
    let rule = rule("SELECT temperature AS t FROM 'a/+'", V2015);
    assert!(rule.matches_topic("a/b"));
    assert!(rule.matches_topic("a/c"));
    assert!(!rule.matches_topic("a/e/f"));
    assert!(!rule.matches_topic("b/x"));
    assert_eq!(rule.topic_filter(), Some("a/+"));
}

#[test]
fn case_statement_example() {
    let sql = "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' THEN 'stop' \
               ELSE 'you are not at a stop light' END as instructions FROM 'a/b'";
    assert_eq!(
        select_json(sql, V2015, r#"{"color":"yellow"}"#),
        Some(json!({"instructions":"caution"}))
    );
    assert_eq!(
        select_json(sql, V2015, r#"{"color":"blue"}"#),
        Some(json!({"instructions":"you are not at a stop light"}))
    );
    // An Undefined operand makes the CASE Undefined, so the key is dropped.
    assert_eq!(select_json(sql, V2015, r#"{}"#), Some(json!({})));
}

#[test]
fn case_without_else_and_no_match_is_undefined() {
    assert_eq!(
        select_json(
            "SELECT CASE color WHEN 'green' THEN 'go' END AS go FROM 'a/b'",
            V2015,
            r#"{"color":"red"}"#
        ),
        Some(json!({}))
    );
}

#[test]
fn object_literal_example() {
    assert_eq!(
        select_json(
            "SELECT {'latitude': get(lat_long, 0),'longitude':get(lat_long, 1)} as lat_long FROM 'a/b'",
            V2016,
            r#"{"lat_long": [47.606,-122.332]}"#
        ),
        Some(json!({"lat_long":{"latitude":47.606,"longitude":-122.332}}))
    );
}

#[test]
fn array_literal_example() {
    assert_eq!(
        select_json(
            "SELECT [lat,long] as lat_long FROM 'a/b'",
            V2016,
            r#"{"lat": 47.696, "long": -122.332}"#
        ),
        Some(json!({"lat_long": [47.696,-122.332]}))
    );
}

#[test]
fn literals_need_2016() {
    for sql in [
        "SELECT [lat,long] as lat_long FROM 'a/b'",
        "SELECT {'a': 1} AS o FROM 'a/b'",
    ] {
        let error = Rule::parse(sql, V2015).unwrap_err();
        assert!(
            matches!(error.kind, ParseErrorKind::NotInVersion { .. }),
            "{sql}: {error}"
        );
        assert_eq!(error.column, 8);
    }
}

const SENSORS: &str = r#"{ "e": [
    { "n": "temperature", "u": "Cel", "t": 1234, "v": 22.5 },
    { "n": "light", "u": "lm", "t": 1235, "v": 135 },
    { "n": "acidity", "u": "pH", "t": 1235, "v": 7 } ] }"#;

#[test]
fn nested_query_select_value_builds_an_array() {
    assert_eq!(
        select_json(
            "SELECT (SELECT VALUE n FROM e) as sensors FROM 'a/b'",
            V2016,
            SENSORS
        ),
        Some(json!({"sensors": ["temperature", "light", "acidity"]}))
    );
}

#[test]
fn nested_query_with_where() {
    assert_eq!(
        select_json(
            "SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'a/b'",
            V2016,
            SENSORS
        ),
        Some(json!({"temperature": [{"v": 22.5}]}))
    );
}

#[test]
fn nested_query_flattened_with_get() {
    assert_eq!(
        select_json(
            "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'a/b'",
            V2016,
            SENSORS
        ),
        Some(json!({"temperature": 22.5}))
    );
}

#[test]
fn nested_query_over_an_object_runs_once() {
    // As used by the transform() examples: `(select a, b from data2)` is an object.
    assert_eq!(
        select_json(
            "SELECT (select a, b from data2) AS ab, (select value c from data2) AS c FROM 'a/b'",
            V2016,
            r#"{"data2": {"a": "first", "b": "second", "c": [1, 2]}}"#
        ),
        Some(json!({"ab": {"a": "first", "b": "second"}, "c": [1, 2]}))
    );
}

#[test]
fn nested_queries_need_2016() {
    let error = Rule::parse(
        "SELECT (SELECT VALUE n FROM e) as sensors FROM 'a/b'",
        V2015,
    )
    .unwrap_err();
    assert!(matches!(error.kind, ParseErrorKind::NotInVersion { .. }));
    assert_eq!(error.column, 8);
}

#[test]
fn dotted_alias_builds_a_nested_object() {
    // JSON extensions page: `SELECT foo.bar AS bar.baz FROM 'a/b'`.
    assert_eq!(
        select_json(
            "SELECT foo.bar AS bar.baz, 1 AS bar.one FROM 'a/b'",
            V2015,
            r#"{"foo":{"bar":42}}"#
        ),
        Some(json!({"bar": {"baz": 42, "one": 1}}))
    );
}

#[test]
fn star_as_nests_the_whole_payload() {
    assert_eq!(
        select_json(
            "SELECT * AS payload, topic() AS topic FROM 'a/b'",
            V2015,
            COLOR_TEMP
        ),
        Some(json!({"payload": {"color":"red", "temperature":50}, "topic": "a/b"}))
    );
}

#[test]
fn select_value_array_is_2016_only() {
    let message = br#"{"a": {"b":"c"}, "arr":[1,2,3,4]}"#;
    assert_eq!(
        run_on("SELECT VALUE arr FROM 'a/b'", V2016, "a/b", message).unwrap(),
        Some(Output::Json(json!([1, 2, 3, 4])))
    );
    assert_eq!(
        run_on("SELECT VALUE arr FROM 'a/b'", V2015, "a/b", message),
        Err(EvalError::TopLevelArrayRequires2016)
    );
}

#[test]
fn decode_example() {
    assert_eq!(
        select_json(
            r#"SELECT decode(encoded_temp,"base64").temperature AS temp from 'a/b'"#,
            V2016,
            r#"{"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="}"#
        ),
        Some(json!({"temp": 33}))
    );
}

#[test]
fn null_keyword_creates_null() {
    assert_eq!(
        select_json("SELECT NULL AS n FROM 'a/b'", V2015, "{}"),
        Some(json!({"n": null}))
    );
}

#[test]
fn attribute_names_with_spaces_pass_through_star() {
    assert_eq!(
        select_json("SELECT * FROM 'a/b'", V2015, r#"{"with space": 1}"#),
        Some(json!({"with space": 1}))
    );
}

#[test]
fn get_reaches_keys_dot_notation_cannot() {
    assert_eq!(
        select_json(
            r#"SELECT get(*, "x-ray") AS xray, get(*, "1st") AS first FROM 'a/b'"#,
            V2015,
            r#"{"x-ray": true, "1st": 1}"#
        ),
        Some(json!({"xray": true, "first": 1}))
    );
}

// ----- binary payloads (reference 5.4; AWS binary-payloads page) -----

const BINARY: &[u8] = &[0xde, 0xad, 0xbe, 0xef, 0x00];

#[test]
fn binary_select_star_passes_the_bytes_through() {
    assert_eq!(
        run_on("SELECT * FROM 'a/b'", V2015, "a/b", BINARY).unwrap(),
        Some(Output::Binary(BINARY.to_vec()))
    );
    // Plain text is not JSON either.
    assert_eq!(
        run_on("SELECT * FROM 'a/b'", V2016, "a/b", b"hello").unwrap(),
        Some(Output::Binary(b"hello".to_vec()))
    );
}

#[test]
fn binary_payload_may_not_refer_to_json_names() {
    let sql = "SELECT * FROM 'a/b' WHERE device_type = 'thermostat'";
    assert_eq!(
        run_on(sql, V2016, "a/b", BINARY),
        Err(EvalError::BinaryPayloadReferencesJsonNames)
    );
    // The same rule is fine with a JSON payload.
    assert!(
        run_on(sql, V2016, "a/b", br#"{"device_type":"thermostat"}"#)
            .unwrap()
            .is_some()
    );
}

#[test]
fn binary_payload_select_must_be_star_alone_or_only_functions() {
    assert_eq!(
        run_on(
            "SELECT *, timestamp() AS timestamp FROM 'a/b'",
            V2016,
            "a/b",
            BINARY
        ),
        Err(EvalError::BinaryPayloadSelectShape)
    );
    assert_eq!(
        run_on("SELECT 'x' AS constant FROM 'a/b'", V2016, "a/b", BINARY),
        Err(EvalError::BinaryPayloadSelectShape)
    );
}

#[test]
fn binary_payload_where_with_functions_only() {
    let sql = "SELECT * FROM 'a/b' WHERE timestamp() % 12 = 0";
    let rule = rule(sql, V2016);
    let mut context = iot_sql::DeterministicContext::default();
    let divisible = Message::mqtt("a/b", BINARY, "dev-1", 1_764_140_123_448);
    assert_eq!(1_764_140_123_448_i64 % 12, 0);
    assert_eq!(
        rule.evaluate(&divisible, &mut context).unwrap(),
        Some(Output::Binary(BINARY.to_vec()))
    );
    let not_divisible = Message::mqtt("a/b", BINARY, "dev-1", 1_764_140_123_449);
    assert_eq!(rule.evaluate(&not_divisible, &mut context).unwrap(), None);
}

#[test]
fn binary_payload_encoded_for_lambda() {
    assert_eq!(
        run_on(
            "SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'a/b'",
            V2016,
            "a/b",
            BINARY
        )
        .unwrap(),
        Some(Output::Json(json!({"data": "3q2+7wA=", "ts": NOW_MS})))
    );
    assert_eq!(
        run_on(
            "SELECT encode(*, 'base64') AS data FROM 'my_topic'",
            V2016,
            "my_topic",
            BINARY
        )
        .unwrap(),
        Some(Output::Json(json!({"data": "3q2+7wA="})))
    );
}

#[test]
fn encode_star_on_json_encodes_the_original_bytes() {
    let payload = br#"{"a": 1}"#;
    assert_eq!(
        run_on(
            "SELECT encode(*, 'base64') AS data FROM 'a/b'",
            V2016,
            "a/b",
            payload
        )
        .unwrap(),
        Some(Output::Json(json!({"data": "eyJhIjogMX0="})))
    );
}

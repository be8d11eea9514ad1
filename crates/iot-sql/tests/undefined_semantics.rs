//! AWS's Undefined (reference 5.2; AWS "Data types" and the "Other value → Undefined" rows of
//! the operator tables).

mod common;

use common::*;
use iot_sql::Output;
use serde_json::json;

#[test]
fn missing_keys_are_dropped_from_the_output() {
    // {"foo": null, "bar": undefined} serializes as {"foo": null}.
    assert_eq!(
        select_json("SELECT foo, bar FROM 'a/b'", V2015, r#"{"foo": null}"#),
        Some(json!({"foo": null}))
    );
}

#[test]
fn missing_nested_keys_and_paths_through_non_objects_are_undefined() {
    let payload = r#"{"a": {"b": 1}, "s": "text", "n": null, "arr": [10, 20]}"#;
    assert_eq!(
        select_json(
            "SELECT a.b AS found, a.x AS missing, a.b.c AS below_a_number, s.length AS on_string, \
             n.x AS on_null, nope.deeper.still AS chain, arr[1] AS second, arr[5] AS out_of_range FROM 'a/b'",
            V2016,
            payload
        ),
        Some(json!({"found": 1, "second": 20}))
    );
}

#[test]
fn all_items_undefined_gives_an_empty_object() {
    assert_eq!(
        select_json("SELECT missing FROM 'a/b'", V2015, "{}"),
        Some(json!({}))
    );
}

#[test]
fn a_lone_undefined_serializes_as_an_empty_payload() {
    let output = run_on("SELECT VALUE missing FROM 'a/b'", V2015, "a/b", b"{}").unwrap();
    assert_eq!(output, Some(Output::Empty));
    assert_eq!(output.unwrap().to_bytes(), b"");
}

#[test]
fn undefined_operands_make_operators_undefined() {
    for expr in [
        "missing = 1",
        "1 = missing",
        "missing <> 1",
        "missing = missing",
        "missing < 1",
        "missing >= 1",
        "missing + 1",
        "1 - missing",
        "missing * 2",
        "missing / 2",
        "missing % 2",
        "-missing",
        "NOT missing",
        "missing AND true",
        "true OR missing",
        "'a' + missing",
    ] {
        assert_eq!(eval(expr), None, "{expr}");
    }
}

#[test]
fn logical_operators_do_not_short_circuit_over_non_booleans() {
    // The AND/OR tables: any "Other Value" operand gives Undefined.
    assert_eq!(eval("false AND 5"), None);
    assert_eq!(eval("true OR 5"), None);
    assert_eq!(eval("false AND null"), None);
}

#[test]
fn where_with_undefined_or_non_boolean_is_false() {
    for condition in [
        "missing",
        "missing = 1",
        "missing <> 1",
        "1",
        "'yes'",
        "null",
        "temperature",
        "NOT missing",
    ] {
        let sql = format!("SELECT * FROM 'a/b' WHERE {condition}");
        assert_eq!(
            select_json(&sql, V2016, r#"{"temperature": 40}"#),
            None,
            "WHERE {condition}"
        );
    }
    assert!(select_json("SELECT * FROM 'a/b' WHERE true", V2016, "{}").is_some());
}

#[test]
fn functions_given_bad_arguments_return_undefined() {
    for expr in [
        "abs(true)",
        "abs('abc')",
        "abs(null)",
        "upper(null)",
        "lower(missing)",
        "substring(missing, 1)",
        "substring('abc', 'x')",
        "startswith(null, 'a')",
        "get(5, 0)",
        "get([1], 'x')",
        "get({'a': 1}, 1)",
        "floor([1,2,3])",
        "topic(0)",
        "topic(9)",
        "topic('x')",
        "concat()",
        "concat('a', null)",
        // Wrong number of arguments is Undefined too, not a parse error (AWS "Data types").
        "upper('a', 'b')",
        "abs()",
        "clientid(1)",
        "encode('a')",
        "encode('a', 'hex')",
    ] {
        assert_eq!(eval(expr), None, "{expr}");
    }
}

#[test]
fn undefined_inside_literals_is_dropped() {
    assert_eq!(eval("{'a': missing, 'b': 1}"), Some(json!({"b": 1})));
    assert_eq!(eval("[1, missing, 2]"), Some(json!([1, 2])));
}

#[test]
fn principal_and_traceid_are_undefined_when_not_known() {
    // Message::mqtt sets neither a principal nor a trace ID.
    assert_eq!(
        select_json(
            "SELECT principal() AS p, traceid() AS t, accountid() AS a, clientid() AS c FROM 'a/b'",
            V2015,
            "{}"
        ),
        Some(json!({"c": "dev-1"}))
    );
}

//! Built-in functions (reference 5.3), using the examples of the AWS "Functions" page as vectors.

mod common;

use common::*;
use iot_sql::{DeterministicContext, EvalContext, Message, Output, ParseErrorKind, Rule};
use serde_json::json;

#[test]
fn topic_whole_and_segments() {
    let sql =
        "SELECT topic() AS t, topic(1) AS t1, topic(3) AS t3, topic(4) AS t4 FROM 'things/+/+'";
    assert_eq!(
        run_on(sql, V2015, "things/myThings/thingOne", b"{}").unwrap(),
        Some(Output::Json(json!({
            "t": "things/myThings/thingOne", "t1": "things", "t3": "thingOne"
        })))
    );
}

#[test]
fn topic_with_basic_ingest_strips_the_rule_prefix() {
    // reference 5.9: for $aws/rules/BuildingManager/Buildings/Building5/Floor2/Room201/Lights
    // topic() = "Buildings/Building5/Floor2/Room201/Lights" and topic(3) = "Floor2".
    let rule = rule(
        "SELECT topic() AS t, topic(3) AS floor FROM 'Buildings/#'",
        V2016,
    );
    let message = Message::mqtt(
        "$aws/rules/BuildingManager/Buildings/Building5/Floor2/Room201/Lights",
        b"{}",
        "dev-1",
        NOW_MS,
    );
    assert_eq!(
        rule.evaluate(&message, &mut DeterministicContext::default())
            .unwrap(),
        Some(Output::Json(
            json!({"t": "Buildings/Building5/Floor2/Room201/Lights", "floor": "Floor2"})
        ))
    );
}

#[test]
fn basic_ingest_only_rule_has_no_from() {
    let rule = rule("SELECT * FROM 'x/y'", V2016);
    assert_eq!(rule.topic_filter(), Some("x/y"));
    let ingest_only = iot_sql::Rule::parse("SELECT *, topic() AS t", V2016).unwrap();
    assert_eq!(ingest_only.topic_filter(), None);
    assert!(!ingest_only.matches_topic("x/y"));
    let message = Message::mqtt("$aws/rules/Ingest/x/y", br#"{"a":1}"#, "dev-1", NOW_MS);
    assert_eq!(
        ingest_only
            .evaluate(&message, &mut DeterministicContext::default())
            .unwrap(),
        Some(Output::Json(json!({"a": 1, "t": "x/y"})))
    );
    let broker_message = Message::mqtt("x/y", br#"{"a":1}"#, "dev-1", NOW_MS);
    assert_eq!(
        ingest_only
            .evaluate(&broker_message, &mut DeterministicContext::default())
            .unwrap(),
        None
    );
}

#[test]
fn clientid_is_n_a_over_http() {
    let rule = rule("SELECT VALUE clientid() FROM 'a/b'", V2015);
    let mut context = DeterministicContext::default();
    let over_mqtt = Message::mqtt("a/b", b"{}", "123456789012", NOW_MS);
    assert_eq!(
        rule.evaluate(&over_mqtt, &mut context).unwrap(),
        Some(Output::Json(json!("123456789012")))
    );
    let over_http = Message::http("a/b", b"{}", NOW_MS);
    assert_eq!(
        rule.evaluate(&over_http, &mut context).unwrap(),
        Some(Output::Json(json!("n/a")))
    );
}

#[test]
fn timestamp_principal_traceid_accountid_come_from_the_message() {
    let rule = rule(
        "SELECT timestamp() AS ts, principal() AS p, traceid() AS trace, accountid() AS account FROM 'a/b'",
        V2015,
    );
    let message = Message::mqtt("a/b", b"{}", "dev-1", 1_481_825_251_155)
        .with_principal("ABCD1EFG3HIJK2LMNOP5:my-session-name")
        .with_trace_id("12345678-1234-1234-1234-123456789012")
        .with_account_id("123456789012");
    assert_eq!(
        rule.evaluate(&message, &mut DeterministicContext::default())
            .unwrap(),
        Some(Output::Json(json!({
            "ts": 1_481_825_251_155_i64,
            "p": "ABCD1EFG3HIJK2LMNOP5:my-session-name",
            "trace": "12345678-1234-1234-1234-123456789012",
            "account": "123456789012"
        })))
    );
}

struct CountingContext {
    uuids: u32,
}

impl EvalContext for CountingContext {
    fn new_uuid(&mut self) -> String {
        self.uuids += 1;
        format!("uuid-{}", self.uuids)
    }
    fn random(&mut self) -> f64 {
        0.25
    }
}

#[test]
fn newuuid_and_rand_come_from_the_context() {
    let rule = rule(
        "SELECT newuuid() AS a, newuuid() AS b, rand() AS r FROM 'a/b'",
        V2015,
    );
    let mut context = CountingContext { uuids: 0 };
    let message = Message::mqtt("a/b", b"{}", "dev-1", NOW_MS);
    assert_eq!(
        rule.evaluate(&message, &mut context).unwrap(),
        Some(Output::Json(
            json!({"a": "uuid-1", "b": "uuid-2", "r": 0.25})
        ))
    );
    let mut deterministic = DeterministicContext::default();
    assert_eq!(
        deterministic.new_uuid(),
        "00000000-0000-4000-8000-000000000001"
    );
}

#[test]
fn sql_version_reports_the_rule_version() {
    assert_eq!(eval_2015("sql_version()"), Some(json!("2015-10-08")));
    assert_eq!(eval("sql_version()"), Some(json!("2016-03-23")));
}

#[test]
fn encode_values_and_version_gate() {
    assert_eq!(eval("encode('hello', 'base64')"), Some(json!("aGVsbG8=")));
    assert_eq!(eval("encode(42, 'base64')"), Some(json!("NDI=")));
    let error = Rule::parse("SELECT encode(*, 'base64') AS data FROM 'a/b'", V2015).unwrap_err();
    assert!(matches!(error.kind, ParseErrorKind::NotInVersion { .. }));
    assert_eq!(error.column, 8);
}

#[test]
fn decode_returns_strings_or_null() {
    assert_eq!(eval("decode('aGVsbG8=', 'base64')"), Some(json!("hello")));
    assert_eq!(eval("decode('!!!', 'base64')"), Some(json!(null)));
    assert_eq!(eval("decode('aGVsbG8=', 'hex')"), None);
}

#[test]
fn abs_examples() {
    assert_eq!(eval("abs(-5)"), Some(json!(5)));
    assert_eq!(eval_2015("abs(-5.5)"), Some(json!(5.5)));
    // AWS "Conversions": abs("-5.123") is treated as abs(-5.123).
    assert_eq!(eval("abs('-5.123')"), Some(json!(5.123)));
}

#[test]
fn concat_examples() {
    assert_eq!(eval("concat()"), None);
    assert_eq!(eval("concat(1)"), Some(json!("1")));
    assert_eq!(eval("concat([1, 2, 3], 4)"), Some(json!([1, 2, 3, 4])));
    assert_eq!(
        eval("concat([1, 2, 3], 'hello')"),
        Some(json!([1, 2, 3, "hello"]))
    );
    assert_eq!(eval("concat('con', 'cat')"), Some(json!("concat")));
    assert_eq!(eval("concat(1, 'hello')"), Some(json!("1hello")));
    assert_eq!(eval("concat('he','is','man')"), Some(json!("heisman")));
    assert_eq!(
        eval("concat([1, 2, 3], 'hello', [4, 5, 6])"),
        Some(json!([1, 2, 3, "hello", 4, 5, 6]))
    );
}

#[test]
fn get_examples() {
    assert_eq!(eval(r#"get(["a", "b", "c"], 1)"#), Some(json!("b")));
    assert_eq!(eval(r#"get({"a":"b"}, "a")"#), Some(json!("b")));
    // The AWS page says get("abc", 1) = "a"; with the 0-based rule its own table states, it is "b".
    assert_eq!(eval(r#"get("abc", 1)"#), Some(json!("b")));
    assert_eq!(eval(r#"get(["a"], -1)"#), None);
    assert_eq!(
        eval(r#"get(["a", "b"], '1')"#),
        Some(json!("b")),
        "index converted to Int"
    );
}

#[test]
fn array_index_syntax() {
    let payload = r#"{"arr": [{"v": 1}, {"v": 2}], "s": "xyz", "i": 1}"#;
    assert_eq!(eval_on("arr[1].v", V2016, payload), Some(json!(2)));
    assert_eq!(eval_on("arr[i].v", V2016, payload), Some(json!(2)));
    assert_eq!(eval_on("arr[0]", V2016, payload), Some(json!({"v": 1})));
    assert_eq!(eval_on("s[2]", V2016, payload), Some(json!("z")));
}

#[test]
fn null_and_undefined_predicates() {
    assert_eq!(eval("isNull(5)"), Some(json!(false)));
    assert_eq!(eval("isNull(Null)"), Some(json!(true)));
    assert_eq!(eval("isNull(missing)"), Some(json!(false)));
    assert_eq!(eval("isUndefined(5)"), Some(json!(false)));
    assert_eq!(eval("isUndefined(floor([1,2,3]))"), Some(json!(true)));
    assert_eq!(eval("isUndefined(null)"), Some(json!(false)));
    assert_eq!(eval_2015("isNull(missing)"), Some(json!(false)));
    let error = Rule::parse("SELECT isUndefined(x) AS u FROM 'a/b'", V2015).unwrap_err();
    assert!(matches!(error.kind, ParseErrorKind::NotInVersion { .. }));
}

#[test]
fn string_functions_examples() {
    assert_eq!(eval(r#"lower("HELLO")"#), Some(json!("hello")));
    assert_eq!(eval(r#"lower(["HELLO"])"#), Some(json!("[\"hello\"]")));
    assert_eq!(eval(r#"upper("hello")"#), Some(json!("HELLO")));
    assert_eq!(eval(r#"upper(["hello"])"#), Some(json!("[\"HELLO\"]")));
    assert_eq!(eval(r#"Trim(" hi ")"#), Some(json!("hi")));
    assert_eq!(eval(r#"Ltrim(" h i ")"#), Some(json!("h i ")));
    assert_eq!(eval(r#"rtrim(" h i ")"#), Some(json!(" h i")));
    assert_eq!(eval(r#"replace("abcd", "bc", "x")"#), Some(json!("axd")));
    assert_eq!(
        eval(r#"replace("abcdabcd", "b", "x")"#),
        Some(json!("axcdaxcd"))
    );
    assert_eq!(eval(r#"startswith("ranger","ran")"#), Some(json!(true)));
    assert_eq!(eval(r#"startswith("ranger","x")"#), Some(json!(false)));
    assert_eq!(eval(r#"endswith("cat","at")"#), Some(json!(true)));
    assert_eq!(
        eval(r#"endswith(123, 3)"#),
        Some(json!(true)),
        "converted to strings"
    );
    assert_eq!(eval(r#"length("hi")"#), Some(json!(2)));
    assert_eq!(eval(r#"length(false)"#), Some(json!(5)));
    assert_eq!(eval(r#"numbytes("hi")"#), Some(json!(2)));
    assert_eq!(eval(r#"numbytes("€")"#), Some(json!(3)));
    assert_eq!(eval(r#"indexof("abcd", "bc")"#), Some(json!(1)));
    assert_eq!(eval(r#"indexof("abcd", "x")"#), Some(json!(-1)));
}

#[test]
fn substring_examples() {
    let cases = [
        (r#"substring("012345", 0)"#, "012345"),
        (r#"substring("012345", 2)"#, "2345"),
        (r#"substring("012345", 2.745)"#, "2345"),
        (r#"substring(123, 2)"#, "3"),
        (r#"substring("012345", -1)"#, "012345"),
        (r#"substring(true, 1.2)"#, "rue"),
        (r#"substring(false, -2.411E247)"#, "false"),
        (r#"substring("012345", 1, 3)"#, "12"),
        (r#"substring("012345", -50, 50)"#, "012345"),
        (r#"substring("012345", 3, 1)"#, ""),
    ];
    for (expr, expected) in cases {
        assert_eq!(eval(expr), Some(json!(expected)), "{expr}");
    }
}

#[test]
fn rounding_examples() {
    assert_eq!(eval("ceil(1.2)"), Some(json!(2)));
    assert_eq!(eval("ceil(-1.2)"), Some(json!(-1)));
    assert_eq!(eval("floor(1.2)"), Some(json!(1)));
    assert_eq!(eval("floor(-1.2)"), Some(json!(-2)));
    assert_eq!(eval("Round(1.2)"), Some(json!(1)));
    assert_eq!(eval("Round(1.5)"), Some(json!(2)));
    assert_eq!(eval("Round(1.7)"), Some(json!(2)));
    assert_eq!(eval("Round(-1.1)"), Some(json!(-1)));
    assert_eq!(eval("Round(-1.5)"), Some(json!(-2)));
    assert_eq!(eval("floor('2.5')"), Some(json!(2)));
    assert_eq!(eval("sign(-7)"), Some(json!(-1)));
    assert_eq!(eval("sign(0)"), Some(json!(0)));
    assert_eq!(eval("sign(13)"), Some(json!(1)));
    assert_eq!(eval("sign(-0.5)"), Some(json!(-1)));
}

#[test]
fn numeric_function_examples() {
    assert_eq!(eval("mod(8, 3)"), Some(json!(2)));
    assert_eq!(eval("remainder(8, 3)"), Some(json!(2)));
    assert_eq!(eval("Nanvl(8, 3)"), Some(json!(8)));
    assert_eq!(eval("nanvl(missing, 3)"), Some(json!(3)));
    assert_eq!(eval("nanvl(null, 3)"), Some(json!(3)));
    assert_eq!(eval_2015("power(2, 5)"), Some(json!(32.0)));
    assert_eq!(eval("power(2, 5)"), Some(json!(32)));
    assert_eq!(eval_2015("sqrt(9)"), Some(json!(3.0)));
    assert_eq!(eval("sqrt(-1)"), None, "imaginary results are Undefined");
}

#[test]
fn cast_examples_and_version_gate() {
    assert_eq!(eval("cast(true as Int)"), Some(json!(1)));
    assert_eq!(eval("cast('2.7' as Int)"), Some(json!(2)));
    assert_eq!(
        eval("cast(-2.7 as Integer)"),
        Some(json!(-3)),
        "rounded down"
    );
    assert_eq!(eval("cast(12 as String)"), Some(json!("12")));
    assert_eq!(eval("cast([1] as varchar)"), Some(json!("[1]")));
    assert_eq!(eval("cast(null as String)"), None);
    assert_eq!(eval_2015("cast(10 as Double)"), Some(json!(10.0)));
    assert_eq!(
        eval("cast(10.0 as Decimal)"),
        Some(json!(10)),
        "2016 returns whole decimals as Int"
    );
    assert_eq!(eval("cast(0 as Boolean)"), Some(json!(false)));
    assert_eq!(eval("cast(2.5 as Bool)"), Some(json!(true)));
    assert_eq!(eval("cast('TRUE' as Boolean)"), Some(json!(true)));
    assert_eq!(eval("cast('yes' as Boolean)"), None);
    for sql in [
        "SELECT cast(1 as Decimal) AS d FROM 'a/b'",
        "SELECT cast(1 as Bool) AS b FROM 'a/b'",
    ] {
        let error = Rule::parse(sql, V2015).unwrap_err();
        assert!(
            matches!(error.kind, ParseErrorKind::NotInVersion { .. }),
            "{sql}"
        );
    }
}

#[test]
fn unaliased_items_are_named_after_the_path_or_function() {
    assert_eq!(
        select_json(
            "SELECT state.reported.temp, upper(name), topic(1), arr[0], 1 + 1 FROM 'a/b'",
            V2016,
            r#"{"state": {"reported": {"temp": 21}}, "name": "x", "arr": [5]}"#
        ),
        Some(json!({"temp": 21, "upper": "X", "topic": "a", "arr": 5, "_5": 2}))
    );
}

#[test]
fn function_names_are_case_insensitive() {
    assert_eq!(eval("UPPER('a')"), Some(json!("A")));
    assert_eq!(eval("IsNull(null)"), Some(json!(true)));
}

//! Helpers shared by the integration tests: run SQL against a payload through the public API only.

#![allow(dead_code)]

use iot_sql::{DeterministicContext, EvalError, Message, Output, Rule, SqlVersion};
use serde_json::Value;

pub const V2015: SqlVersion = SqlVersion::V2015_10_08;
pub const V2016: SqlVersion = SqlVersion::V2016_03_23;

/// A fixed rules-engine clock for every test.
pub const NOW_MS: i64 = 1_764_140_123_456;

pub fn rule(sql: &str, version: SqlVersion) -> Rule {
    Rule::parse(sql, version).unwrap_or_else(|error| panic!("{sql:?} should parse: {error}"))
}

/// Evaluates `sql` on a message published over MQTT by client `dev-1` to `topic`.
pub fn run_on(
    sql: &str,
    version: SqlVersion,
    topic: &str,
    payload: &[u8],
) -> Result<Option<Output>, EvalError> {
    let message = Message::mqtt(topic, payload, "dev-1", NOW_MS);
    rule(sql, version).evaluate(&message, &mut DeterministicContext::default())
}

/// The JSON output of a rule on the topic `a/b`; `None` when no action would run.
pub fn select_json(sql: &str, version: SqlVersion, payload: &str) -> Option<Value> {
    match run_on(sql, version, "a/b", payload.as_bytes()).expect("evaluation succeeds") {
        None => None,
        Some(Output::Json(json)) => Some(json),
        Some(other) => panic!("expected JSON output, got {other:?}"),
    }
}

/// The value of one expression, via `SELECT VALUE <expr> FROM 'a/b'`, on `payload`;
/// `None` is Undefined (AWS's lone-Undefined empty output).
pub fn eval_on(expr: &str, version: SqlVersion, payload: &str) -> Option<Value> {
    let sql = format!("SELECT VALUE {expr} FROM 'a/b'");
    match run_on(&sql, version, "a/b", payload.as_bytes()).expect("evaluation succeeds") {
        Some(Output::Json(json)) => Some(json),
        Some(Output::Empty) => None,
        other => panic!("unexpected output {other:?} for {expr}"),
    }
}

/// The value of an expression that needs no payload, in 2016-03-23.
pub fn eval(expr: &str) -> Option<Value> {
    eval_on(expr, V2016, "{}")
}

/// The value of an expression that needs no payload, in 2015-10-08.
pub fn eval_2015(expr: &str) -> Option<Value> {
    eval_on(expr, V2015, "{}")
}

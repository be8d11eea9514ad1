//! Evaluates a parsed rule against one message: WHERE first, then SELECT (reference 5.2).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ast::{Expr, KeyPath, Projection, Query, SelectItem, Source};
use crate::functions::{self, Function};
use crate::operators;
use crate::value::{SqlValue, sql_equals};
use crate::version::SqlVersion;

/// One message as the rules engine sees it. Everything that is not in the payload (who sent it, when,
/// its trace ID) comes from the caller, so evaluation is deterministic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Message<'a> {
    /// The topic the message was published to. A Basic Ingest topic `$aws/rules/<rule>/<rest>` is
    /// accepted as is: the prefix is stripped for `topic()` and FROM is not consulted (reference 5.9).
    pub topic: &'a str,
    /// The raw payload; JSON if it parses as JSON, otherwise binary (reference 5.4).
    pub payload: &'a [u8],
    /// The MQTT client ID; `None` when the message did not arrive over MQTT (HTTP publish), where
    /// `clientid()` returns the literal `"n/a"` (reference 5.3).
    pub client_id: Option<&'a str>,
    /// What `principal()` returns: a certificate thumbprint, `roleId:sessionName`, or a user ID
    /// (reference 5.3); `None` makes it Undefined.
    pub principal: Option<&'a str>,
    /// The MQTT message's trace ID; `None` (not MQTT) makes `traceid()` Undefined (reference 5.3).
    pub trace_id: Option<&'a str>,
    /// What `accountid()` returns; `None` makes it Undefined.
    pub account_id: Option<&'a str>,
    /// The rules engine's clock in milliseconds since the epoch: what `timestamp()` returns.
    pub timestamp_ms: i64,
}

impl<'a> Message<'a> {
    /// A message published over MQTT by `client_id`.
    pub fn mqtt(topic: &'a str, payload: &'a [u8], client_id: &'a str, timestamp_ms: i64) -> Self {
        Message {
            topic,
            payload,
            client_id: Some(client_id),
            timestamp_ms,
            ..Message::default()
        }
    }

    /// A message published over HTTP (the data-plane Publish API): no client ID, no trace ID.
    pub fn http(topic: &'a str, payload: &'a [u8], timestamp_ms: i64) -> Self {
        Message {
            topic,
            payload,
            timestamp_ms,
            ..Message::default()
        }
    }

    pub fn with_principal(mut self, principal: &'a str) -> Self {
        self.principal = Some(principal);
        self
    }

    pub fn with_trace_id(mut self, trace_id: &'a str) -> Self {
        self.trace_id = Some(trace_id);
        self
    }

    pub fn with_account_id(mut self, account_id: &'a str) -> Self {
        self.account_id = Some(account_id);
        self
    }
}

/// The sources of non-determinism a rule can ask for. The emulator supplies random ones; tests and
/// benches supply fixed ones.
pub trait EvalContext {
    /// `newuuid()`: a fresh UUID string per call.
    fn new_uuid(&mut self) -> String;
    /// `rand()`: a uniformly distributed number in `[0.0, 1.0)`.
    fn random(&mut self) -> f64;
}

/// A repeatable [`EvalContext`]: UUIDs count up from `00000000-0000-4000-8000-000000000001`, and
/// `rand()` always returns `random_value`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeterministicContext {
    pub uuids_issued: u64,
    pub random_value: f64,
}

impl Default for DeterministicContext {
    fn default() -> Self {
        DeterministicContext {
            uuids_issued: 0,
            random_value: 0.5,
        }
    }
}

impl EvalContext for DeterministicContext {
    fn new_uuid(&mut self) -> String {
        self.uuids_issued += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uuids_issued)
    }

    fn random(&mut self) -> f64 {
        self.random_value
    }
}

/// What the rule's actions receive.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The SELECT result, which is the Lambda event exactly, with no envelope (reference 5.4).
    Json(Value),
    /// `SELECT *` on a non-JSON payload passes the raw bytes through (reference 5.4). The Lambda action
    /// cannot take this; the rule must `encode(*, 'base64')` instead.
    Binary(Vec<u8>),
    /// `SELECT VALUE` of Undefined: AWS serializes a lone Undefined as an empty string (reference 5.2).
    Empty,
}

impl Output {
    /// The bytes an action would publish or send.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Output::Json(json) => json.to_string().into_bytes(),
            Output::Binary(bytes) => bytes.clone(),
            Output::Empty => Vec::new(),
        }
    }

    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Output::Json(json) => Some(json),
            Output::Binary(_) | Output::Empty => None,
        }
    }
}

/// Basic Ingest topics (`$aws/rules/{rule}/...`) go to the rules engine only, never to subscribers
/// (reference 5.9).
pub const BASIC_INGEST_PREFIX: &str = "$aws/rules/";

/// Splits a Basic Ingest topic `$aws/rules/<rule>/<rest>` into `<rest>`, which is all `topic()` sees
/// (reference 5.3, 5.9). Other topics are returned unchanged with `false`.
pub(crate) fn strip_basic_ingest(topic: &str) -> (&str, bool) {
    match topic.strip_prefix(BASIC_INGEST_PREFIX) {
        Some(rest) => (rest.split_once('/').map_or("", |(_, tail)| tail), true),
        None => (topic, false),
    }
}

/// The document names are looked up in: the payload, or the element a nested query is visiting.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'d> {
    pub(crate) document: &'d SqlValue,
    /// Only the rule's own query sees the raw payload bytes through `encode(*, ...)`.
    pub(crate) top_level: bool,
}

pub(crate) struct Evaluator<'e, C: EvalContext + ?Sized> {
    pub(crate) message: &'e Message<'e>,
    /// The topic as `topic()` sees it (Basic Ingest prefix removed).
    pub(crate) topic: &'e str,
    pub(crate) version: SqlVersion,
    pub(crate) context: &'e mut C,
}

enum PathLookup<'d> {
    Found(&'d SqlValue),
    Missing,
    NotAPath,
}

impl<C: EvalContext + ?Sized> Evaluator<'_, C> {
    /// WHERE passes only when it evaluates to the Boolean true; Undefined, false and every other
    /// value mean "no output" (AWS "WHERE clause").
    pub(crate) fn condition_holds(&mut self, query: &Query, scope: Scope<'_>) -> bool {
        query
            .condition
            .as_ref()
            .is_none_or(|condition| self.eval(condition, scope) == SqlValue::Bool(true))
    }

    /// SELECT items in order into one object. `*` flattens the document's keys (reference 5.2), an
    /// Undefined value adds no key, and when two items write the same key **the later one wins**
    /// (so `SELECT *, topic(2) AS thing` overrides a payload key `thing`) [INF: AWS does not document it].
    pub(crate) fn project_items(
        &mut self,
        items: &[SelectItem],
        scope: Scope<'_>,
    ) -> BTreeMap<String, SqlValue> {
        let mut output = BTreeMap::new();
        for item in items {
            match item {
                SelectItem::Wildcard => {
                    if let SqlValue::Object(fields) = scope.document {
                        output.extend(
                            fields
                                .iter()
                                .map(|(key, value)| (key.clone(), value.clone())),
                        );
                    }
                }
                SelectItem::WildcardAs(key) => {
                    if !scope.document.is_undefined() {
                        insert_at(&mut output, key, scope.document.clone());
                    }
                }
                SelectItem::Expr { expr, key } => {
                    let value = self.eval(expr, scope);
                    if !value.is_undefined() {
                        insert_at(&mut output, key, value);
                    }
                }
            }
        }
        output
    }

    pub(crate) fn eval(&mut self, expr: &Expr, scope: Scope<'_>) -> SqlValue {
        match lookup_path(expr, scope.document) {
            PathLookup::Found(value) => return value.clone(),
            PathLookup::Missing => return SqlValue::Undefined,
            PathLookup::NotAPath => {}
        }
        match expr {
            Expr::Literal(value) => value.clone(),
            Expr::Wildcard => scope.document.clone(),
            Expr::Field(_) => SqlValue::Undefined,
            Expr::Member(base, key) => match self.eval(base, scope) {
                SqlValue::Object(mut fields) => fields.remove(key).unwrap_or(SqlValue::Undefined),
                _ => SqlValue::Undefined,
            },
            Expr::Index(base, index) => {
                let base = self.eval(base, scope);
                let index = self.eval(index, scope);
                functions::get(&base, &index)
            }
            Expr::Negate(inner) => operators::negate(&self.eval(inner, scope)),
            Expr::Not(inner) => operators::not(&self.eval(inner, scope)),
            Expr::Binary(op, left, right) => {
                let left = self.eval(left, scope);
                let right = self.eval(right, scope);
                operators::binary(*op, &left, &right)
            }
            Expr::Call(function, args) => self.call(*function, args, scope),
            Expr::Cast(inner, target) => {
                functions::cast(&self.eval(inner, scope), *target, self.version)
            }
            Expr::Case {
                operand,
                branches,
                otherwise,
            } => {
                // An Undefined operand makes the whole CASE Undefined (AWS "Case statements").
                let operand = self.eval(operand, scope);
                if operand.is_undefined() {
                    return SqlValue::Undefined;
                }
                for (when, then) in branches {
                    let candidate = self.eval(when, scope);
                    if sql_equals(&operand, &candidate) == Some(true) {
                        return self.eval(then, scope);
                    }
                }
                otherwise
                    .as_ref()
                    .map_or(SqlValue::Undefined, |other| self.eval(other, scope))
            }
            Expr::Array(items) => {
                SqlValue::Array(items.iter().map(|item| self.eval(item, scope)).collect())
            }
            Expr::Object(entries) => {
                let mut fields = BTreeMap::new();
                for (key, value) in entries {
                    let value = self.eval(value, scope);
                    if !value.is_undefined() {
                        fields.insert(key.clone(), value);
                    }
                }
                SqlValue::Object(fields)
            }
            Expr::Subquery(query) => self.nested_query(query, scope),
        }
    }

    /// A nested object query (2016-03-23): over an array it maps every element that passes WHERE
    /// to its SELECT result, giving an array; over anything else it runs once (AWS "Nested object
    /// queries", and the transform() examples that use `(select a, b from data2)` as an object).
    fn nested_query(&mut self, query: &Query, scope: Scope<'_>) -> SqlValue {
        let Source::Value(source) = &query.source else {
            return SqlValue::Undefined;
        };
        match self.eval(source, scope) {
            SqlValue::Undefined => SqlValue::Undefined,
            SqlValue::Array(elements) => SqlValue::Array(
                elements
                    .iter()
                    .filter_map(|element| self.nested_row(query, element))
                    .collect(),
            ),
            other => self
                .nested_row(query, &other)
                .unwrap_or(SqlValue::Undefined),
        }
    }

    fn nested_row(&mut self, query: &Query, element: &SqlValue) -> Option<SqlValue> {
        let scope = Scope {
            document: element,
            top_level: false,
        };
        if !self.condition_holds(query, scope) {
            return None;
        }
        let row = match &query.projection {
            Projection::Value(expr) => self.eval(expr, scope),
            Projection::Items(items) => SqlValue::Object(self.project_items(items, scope)),
        };
        (!row.is_undefined()).then_some(row)
    }

    fn call(&mut self, function: Function, args: &[Expr], scope: Scope<'_>) -> SqlValue {
        let message = self.message;
        let optional = |text: Option<&str>| {
            text.map_or(SqlValue::Undefined, |t| SqlValue::String(t.to_string()))
        };
        match (function, args) {
            (Function::Topic, []) => SqlValue::String(self.topic.to_string()),
            (Function::Topic, [segment]) => {
                // 1-based segment number; out of range is Undefined.
                let segment = self.eval(segment, scope).to_int_standard();
                segment
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n >= 1)
                    .and_then(|n| self.topic.split('/').nth(n - 1))
                    .map_or(SqlValue::Undefined, |level| {
                        SqlValue::String(level.to_string())
                    })
            }
            (Function::ClientId, []) => {
                SqlValue::String(message.client_id.unwrap_or("n/a").to_string())
            }
            (Function::Timestamp, []) => SqlValue::Int(message.timestamp_ms),
            (Function::Principal, []) => optional(message.principal),
            (Function::TraceId, []) => optional(message.trace_id),
            (Function::AccountId, []) => optional(message.account_id),
            (Function::SqlVersion, []) => SqlValue::String(self.version.as_str().to_string()),
            (Function::NewUuid, []) => SqlValue::String(self.context.new_uuid()),
            (Function::Rand, []) => SqlValue::decimal(self.context.random()),
            (Function::Encode, [Expr::Wildcard, scheme]) if scope.top_level => {
                let scheme = self.eval(scheme, scope);
                functions::encode_bytes(message.payload, &scheme)
            }
            (Function::Encode, [value, scheme]) => {
                let value = self.eval(value, scope);
                let scheme = self.eval(scheme, scope);
                functions::encode_value(&value, &scheme)
            }
            (
                Function::Topic
                | Function::ClientId
                | Function::Timestamp
                | Function::Principal
                | Function::TraceId
                | Function::AccountId
                | Function::SqlVersion
                | Function::NewUuid
                | Function::Rand
                | Function::Encode,
                _,
            ) => SqlValue::Undefined,
            (pure, args) => {
                let values: Vec<SqlValue> = args.iter().map(|arg| self.eval(arg, scope)).collect();
                functions::apply(pure, &values)
            }
        }
    }
}

/// Resolves `a.b[0].c`-style paths by reference into the document, so that reading one leaf does not
/// copy the objects around it.
fn lookup_path<'d>(expr: &Expr, document: &'d SqlValue) -> PathLookup<'d> {
    match expr {
        Expr::Field(name) => match document {
            SqlValue::Object(fields) => fields
                .get(name)
                .map_or(PathLookup::Missing, PathLookup::Found),
            _ => PathLookup::Missing,
        },
        Expr::Member(base, key) => match lookup_path(base, document) {
            PathLookup::Found(SqlValue::Object(fields)) => fields
                .get(key)
                .map_or(PathLookup::Missing, PathLookup::Found),
            PathLookup::Found(_) | PathLookup::Missing => PathLookup::Missing,
            PathLookup::NotAPath => PathLookup::NotAPath,
        },
        Expr::Index(base, index) => match (lookup_path(base, document), index.as_ref()) {
            (PathLookup::Found(SqlValue::Array(items)), Expr::Literal(SqlValue::Int(i))) => {
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| items.get(i))
                    .map_or(PathLookup::Missing, PathLookup::Found)
            }
            (PathLookup::Missing, _) => PathLookup::Missing,
            _ => PathLookup::NotAPath,
        },
        _ => PathLookup::NotAPath,
    }
}

/// Writes `value` at `key`, creating the nested objects of a dotted alias (`AS a.b`).
fn insert_at(output: &mut BTreeMap<String, SqlValue>, key: &KeyPath, value: SqlValue) {
    let Some((last, parents)) = key.split_last() else {
        return;
    };
    let mut current = output;
    for parent in parents {
        let slot = current
            .entry(parent.clone())
            .or_insert_with(|| SqlValue::Object(BTreeMap::new()));
        if !matches!(slot, SqlValue::Object(_)) {
            *slot = SqlValue::Object(BTreeMap::new());
        }
        let SqlValue::Object(fields) = slot else {
            return;
        };
        current = fields;
    }
    current.insert(last.clone(), value);
}

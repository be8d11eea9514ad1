//! The built-in functions (reference 5.3; AWS "Functions" page). Functions that need the message or the
//! caller's context (`topic()`, `newuuid()`, ...) are evaluated in `eval.rs`; the pure ones live here.
//! Every function answers bad arguments, including a wrong number of them, with Undefined (AWS
//! "Data types": "Functions called with invalid arguments ... return Undefined").

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::ast::{BinaryOp, CastType};
use crate::operators;
use crate::value::{Number, SqlValue, parse_decimal_string};
use crate::version::SqlVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    // Message and context functions.
    Topic,
    ClientId,
    Timestamp,
    Principal,
    NewUuid,
    TraceId,
    AccountId,
    SqlVersion,
    Rand,
    Encode,
    // Pure functions.
    Decode,
    Lower,
    Upper,
    Concat,
    Abs,
    Substring,
    StartsWith,
    EndsWith,
    IsUndefined,
    IsNull,
    Get,
    Floor,
    Ceil,
    Round,
    Sign,
    Mod,
    Remainder,
    Trim,
    Ltrim,
    Rtrim,
    Replace,
    Length,
    NumBytes,
    IndexOf,
    Nanvl,
    Power,
    Sqrt,
}

pub(crate) enum Lookup {
    Implemented(Function),
    /// A documented AWS function this crate does not evaluate.
    NotImplemented,
    Unknown,
}

/// Documented AWS functions that are deliberately not implemented: external calls (they need AWS
/// services), hashing, regular expressions, time parsing and trigonometry.
const NOT_IMPLEMENTED: &[&str] = &[
    "acos",
    "asin",
    "atan",
    "atan2",
    "aws_lambda",
    "bitand",
    "bitor",
    "bitxor",
    "bitnot",
    "chr",
    "cos",
    "cosh",
    "exp",
    "get_dynamodb",
    "get_secret",
    "get_thing_shadow",
    "ln",
    "log",
    "lpad",
    "rpad",
    "machinelearning_predict",
    "md2",
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "parse_time",
    "time_to_epoch",
    "regexp_matches",
    "regexp_replace",
    "regexp_substr",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "transform",
    "trunc",
];

impl Function {
    /// Function names are case-insensitive: AWS's own examples write `Round(1.5)` and `Trim(" hi ")`.
    pub(crate) fn lookup(name: &str) -> Lookup {
        let lower = name.to_ascii_lowercase();
        let function = match lower.as_str() {
            "topic" => Function::Topic,
            "clientid" => Function::ClientId,
            "timestamp" => Function::Timestamp,
            "principal" => Function::Principal,
            "newuuid" => Function::NewUuid,
            "traceid" => Function::TraceId,
            "accountid" => Function::AccountId,
            "sql_version" => Function::SqlVersion,
            "rand" => Function::Rand,
            "encode" => Function::Encode,
            "decode" => Function::Decode,
            "lower" => Function::Lower,
            "upper" => Function::Upper,
            "concat" => Function::Concat,
            "abs" => Function::Abs,
            "substring" => Function::Substring,
            "startswith" => Function::StartsWith,
            "endswith" => Function::EndsWith,
            "isundefined" => Function::IsUndefined,
            "isnull" => Function::IsNull,
            "get" => Function::Get,
            "floor" => Function::Floor,
            "ceil" => Function::Ceil,
            "round" => Function::Round,
            "sign" => Function::Sign,
            "mod" => Function::Mod,
            "remainder" => Function::Remainder,
            "trim" => Function::Trim,
            "ltrim" => Function::Ltrim,
            "rtrim" => Function::Rtrim,
            "replace" => Function::Replace,
            "length" => Function::Length,
            "numbytes" => Function::NumBytes,
            "indexof" => Function::IndexOf,
            "nanvl" => Function::Nanvl,
            "power" => Function::Power,
            "sqrt" => Function::Sqrt,
            other if NOT_IMPLEMENTED.contains(&other) => return Lookup::NotImplemented,
            _ => return Lookup::Unknown,
        };
        Lookup::Implemented(function)
    }

    /// The first SQL version that has the function (AWS "Functions": "Supported by SQL version ...").
    pub(crate) fn min_version(self) -> SqlVersion {
        match self {
            Function::Encode
            | Function::Decode
            | Function::IsUndefined
            | Function::Length
            | Function::NumBytes
            | Function::IndexOf => SqlVersion::V2016_03_23,
            _ => SqlVersion::V2015_10_08,
        }
    }
}

/// Applies a pure function to evaluated arguments.
pub(crate) fn apply(function: Function, args: &[SqlValue]) -> SqlValue {
    use SqlValue::Undefined;
    match (function, args) {
        (Function::Decode, [value, scheme]) => decode(value, scheme),
        (Function::Lower, [value]) => map_string(value, |text| text.to_lowercase()),
        (Function::Upper, [value]) => map_string(value, |text| text.to_uppercase()),
        (Function::Concat, args) => concat(args),
        (Function::Abs, [value]) => abs(value),
        (Function::Substring, [text, start]) => substring(text, start, None),
        (Function::Substring, [text, start, end]) => substring(text, start, Some(end)),
        (Function::StartsWith, [text, prefix]) => {
            with_strings(text, prefix, |text, prefix| text.starts_with(prefix))
        }
        (Function::EndsWith, [text, suffix]) => {
            with_strings(text, suffix, |text, suffix| text.ends_with(suffix))
        }
        (Function::IsUndefined, [value]) => SqlValue::Bool(value.is_undefined()),
        (Function::IsNull, [value]) => SqlValue::Bool(matches!(value, SqlValue::Null)),
        (Function::Get, [collection, key]) => get(collection, key),
        (Function::Floor, [value]) => to_int_with(value, f64::floor),
        (Function::Ceil, [value]) => to_int_with(value, f64::ceil),
        // f64::round rounds half away from zero: Round(1.5) = 2 and Round(-1.5) = -2, as AWS documents.
        (Function::Round, [value]) => to_int_with(value, f64::round),
        (Function::Sign, [value]) => match value.to_number() {
            Some(Number::Int(int)) => SqlValue::Int(int.signum()),
            Some(Number::Decimal(0.0)) => SqlValue::Int(0),
            Some(Number::Decimal(decimal)) => SqlValue::Int(decimal.signum() as i64),
            None => Undefined,
        },
        (Function::Mod | Function::Remainder, [left, right]) => {
            operators::binary(BinaryOp::Modulo, left, right)
        }
        (Function::Trim, [value]) => map_string(value, |text| text.trim().to_string()),
        (Function::Ltrim, [value]) => map_string(value, |text| {
            text.trim_start_matches([' ', '\t']).to_string()
        }),
        (Function::Rtrim, [value]) => {
            map_string(value, |text| text.trim_end_matches([' ', '\t']).to_string())
        }
        (Function::Replace, [text, from, to]) => {
            match (
                text.to_sql_string(),
                from.to_sql_string(),
                to.to_sql_string(),
            ) {
                (Some(text), Some(from), Some(to)) => SqlValue::String(text.replace(&from, &to)),
                _ => Undefined,
            }
        }
        (Function::Length, [value]) => string_measure(value, |text| text.chars().count()),
        (Function::NumBytes, [value]) => string_measure(value, str::len),
        (Function::IndexOf, [text, needle]) => match (text.to_sql_string(), needle.to_sql_string())
        {
            (Some(text), Some(needle)) => SqlValue::Int(text.find(&needle).map_or(-1, |byte| {
                i64::try_from(text[..byte].chars().count()).unwrap_or(i64::MAX)
            })),
            _ => Undefined,
        },
        (Function::Nanvl, [first, second]) => match first {
            SqlValue::Undefined | SqlValue::Null => second.clone(),
            SqlValue::Decimal(decimal) if decimal.is_nan() => second.clone(),
            other => other.clone(),
        },
        (Function::Power, [base, exponent]) => match (base.to_number(), exponent.to_number()) {
            (Some(base), Some(exponent)) => {
                SqlValue::decimal(base.as_f64().powf(exponent.as_f64()))
            }
            _ => Undefined,
        },
        (Function::Sqrt, [value]) => value.to_number().map_or(Undefined, |number| {
            SqlValue::decimal(number.as_f64().sqrt())
        }),
        _ => Undefined,
    }
}

/// `encode(value, 'base64')` for anything but `*`: the value's string form, base64-encoded.
pub(crate) fn encode_value(value: &SqlValue, scheme: &SqlValue) -> SqlValue {
    match (value.to_sql_string(), is_base64_scheme(scheme)) {
        (Some(text), true) => SqlValue::String(STANDARD.encode(text.as_bytes())),
        _ => SqlValue::Undefined,
    }
}

/// `encode(*, 'base64')`: the raw payload bytes, JSON or not (reference 5.4).
pub(crate) fn encode_bytes(bytes: &[u8], scheme: &SqlValue) -> SqlValue {
    if is_base64_scheme(scheme) {
        SqlValue::String(STANDARD.encode(bytes))
    } else {
        SqlValue::Undefined
    }
}

/// Only `'base64'` is supported by AWS for encode/decode.
fn is_base64_scheme(scheme: &SqlValue) -> bool {
    matches!(scheme, SqlValue::String(name) if name == "base64")
}

/// `decode(value, 'base64')`: a JSON document comes back addressable, anything else as a string,
/// and undecodable input gives Null (AWS "decode").
fn decode(value: &SqlValue, scheme: &SqlValue) -> SqlValue {
    let (Some(text), true) = (value.to_sql_string(), is_base64_scheme(scheme)) else {
        return SqlValue::Undefined;
    };
    match STANDARD.decode(text.trim().as_bytes()) {
        Ok(bytes) => match serde_json::from_slice::<SqlValue>(&bytes) {
            Ok(document) => document,
            Err(_) => SqlValue::String(String::from_utf8_lossy(&bytes).into_owned()),
        },
        Err(_) => SqlValue::Null,
    }
}

fn map_string(value: &SqlValue, transform: impl Fn(&str) -> String) -> SqlValue {
    value.to_sql_string().map_or(SqlValue::Undefined, |text| {
        SqlValue::String(transform(&text))
    })
}

fn string_measure(value: &SqlValue, measure: impl Fn(&str) -> usize) -> SqlValue {
    value.to_sql_string().map_or(SqlValue::Undefined, |text| {
        SqlValue::Int(i64::try_from(measure(&text)).unwrap_or(i64::MAX))
    })
}

/// startswith/endswith: both sides converted to strings; Null or Undefined on either side is Undefined.
fn with_strings(left: &SqlValue, right: &SqlValue, test: impl Fn(&str, &str) -> bool) -> SqlValue {
    match (left.to_sql_string(), right.to_sql_string()) {
        (Some(left), Some(right)) => SqlValue::Bool(test(&left, &right)),
        _ => SqlValue::Undefined,
    }
}

/// concat(): no arguments is Undefined; if any argument is an Array the result is one array of all
/// arguments (arrays spliced in); otherwise the string forms are joined. A lone non-array argument is
/// returned in string form, following AWS's example `concat(1)` = `"1"`.
fn concat(args: &[SqlValue]) -> SqlValue {
    if args.is_empty() {
        return SqlValue::Undefined;
    }
    if args.iter().any(|arg| matches!(arg, SqlValue::Array(_))) {
        let mut items = Vec::new();
        for arg in args {
            match arg {
                SqlValue::Array(inner) => items.extend(inner.iter().cloned()),
                other => items.push(other.clone()),
            }
        }
        return SqlValue::Array(items);
    }
    let mut joined = String::new();
    for arg in args {
        match arg.to_sql_string() {
            Some(text) => joined.push_str(&text),
            None => return SqlValue::Undefined,
        }
    }
    SqlValue::String(joined)
}

fn abs(value: &SqlValue) -> SqlValue {
    match value {
        SqlValue::Int(int) => int
            .checked_abs()
            .map_or_else(|| SqlValue::decimal((*int as f64).abs()), SqlValue::Int),
        SqlValue::Decimal(decimal) => SqlValue::decimal(decimal.abs()),
        SqlValue::String(text) => {
            parse_decimal_string(text).map_or(SqlValue::Undefined, |d| SqlValue::decimal(d.abs()))
        }
        _ => SqlValue::Undefined,
    }
}

/// floor/ceil/round: Int stays, Decimal and numeric strings are rounded to an Int.
fn to_int_with(value: &SqlValue, rounding: fn(f64) -> f64) -> SqlValue {
    match value.to_number() {
        Some(Number::Int(int)) => SqlValue::Int(int),
        Some(Number::Decimal(decimal)) => {
            let rounded = rounding(decimal);
            if rounded >= i64::MIN as f64 && rounded < i64::MAX as f64 {
                SqlValue::Int(rounded as i64)
            } else {
                SqlValue::decimal(rounded)
            }
        }
        None => SqlValue::Undefined,
    }
}

/// substring(String, Int[, Int]) with AWS's clamping: indices below zero become zero, beyond the end
/// become the length, and start >= end gives "". Indices count characters.
fn substring(text: &SqlValue, start: &SqlValue, end: Option<&SqlValue>) -> SqlValue {
    let Some(text) = text.to_sql_string() else {
        return SqlValue::Undefined;
    };
    let length = text.chars().count();
    let clamp = |index: i64| {
        usize::try_from(index.max(0))
            .unwrap_or(usize::MAX)
            .min(length)
    };
    let Some(start) = start.to_int_floor().map(clamp) else {
        return SqlValue::Undefined;
    };
    let end = match end {
        None => length,
        Some(end) => match end.to_int_floor() {
            Some(end) => clamp(end),
            None => return SqlValue::Undefined,
        },
    };
    if start >= end {
        return SqlValue::String(String::new());
    }
    SqlValue::String(text.chars().skip(start).take(end - start).collect())
}

/// get(): Array by 0-based Int-converted index, String by character index, Object by string key
/// (no conversion of the key); anything else is Undefined. Also backs `a[i]` in expressions.
pub(crate) fn get(collection: &SqlValue, key: &SqlValue) -> SqlValue {
    match collection {
        SqlValue::Array(items) => key
            .to_int_standard()
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| items.get(index))
            .cloned()
            .unwrap_or(SqlValue::Undefined),
        SqlValue::String(text) => key
            .to_int_standard()
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| text.chars().nth(index))
            .map_or(SqlValue::Undefined, |c| SqlValue::String(c.to_string())),
        SqlValue::Object(map) => match key {
            SqlValue::String(name) => map.get(name).cloned().unwrap_or(SqlValue::Undefined),
            _ => SqlValue::Undefined,
        },
        _ => SqlValue::Undefined,
    }
}

/// cast(value AS type) (AWS "cast"): the standard conversions plus numbers to and from Booleans.
/// In 2016-03-23 a whole-number result of a cast to Decimal/Double comes back as an Int.
pub(crate) fn cast(value: &SqlValue, target: CastType, version: SqlVersion) -> SqlValue {
    match target {
        CastType::String => value
            .to_sql_string()
            .map_or(SqlValue::Undefined, SqlValue::String),
        CastType::Int => match value {
            SqlValue::Bool(flag) => SqlValue::Int(i64::from(*flag)),
            other => other
                .to_int_floor()
                .map_or(SqlValue::Undefined, SqlValue::Int),
        },
        CastType::Double | CastType::Decimal => {
            let decimal = match value {
                SqlValue::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
                other => other.to_number().map(Number::as_f64),
            };
            match decimal {
                Some(decimal)
                    if version >= SqlVersion::V2016_03_23
                        && decimal.fract() == 0.0
                        && decimal >= i64::MIN as f64
                        && decimal < i64::MAX as f64 =>
                {
                    SqlValue::Int(decimal as i64)
                }
                Some(decimal) => SqlValue::decimal(decimal),
                None => SqlValue::Undefined,
            }
        }
        CastType::Boolean => match value {
            SqlValue::Int(int) => SqlValue::Bool(*int != 0),
            SqlValue::Decimal(decimal) => SqlValue::Bool(*decimal != 0.0),
            other => other.to_bool().map_or(SqlValue::Undefined, SqlValue::Bool),
        },
    }
}

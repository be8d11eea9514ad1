//! The rules engine's data types and its standard conversions (reference 5.2, AWS "Data types").

use std::collections::BTreeMap;

use serde_json::Value;

use crate::version::SqlVersion;

/// A value inside the rules engine. Unlike JSON it has **Undefined**: a missing key, a function
/// given bad arguments, or an operator given operands of the wrong type (reference 5.2).
///
/// Deviation from AWS (documented in docs/rules-sql.md): AWS's Int has 34 digits and its Decimal 34-digit
/// precision; here Int is 64-bit (falling back to Decimal on overflow) and Decimal is an `f64`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Undefined,
    Null,
    Bool(bool),
    Int(i64),
    Decimal(f64),
    String(String),
    Array(Vec<SqlValue>),
    Object(BTreeMap<String, SqlValue>),
}

/// A number after the conversion "to Decimal" has been attempted, keeping Int-ness so that
/// Int op Int stays an Int as the operator tables require.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Decimal(f64),
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Int(int) => int as f64,
            Number::Decimal(decimal) => decimal,
        }
    }

    pub(crate) fn into_value(self) -> SqlValue {
        match self {
            Number::Int(int) => SqlValue::Int(int),
            Number::Decimal(decimal) => SqlValue::decimal(decimal),
        }
    }
}

impl SqlValue {
    /// A Decimal result; NaN and infinities are not JSON numbers, so they become Undefined (as the
    /// function tables say for "imaginary results").
    pub(crate) fn decimal(decimal: f64) -> SqlValue {
        if decimal.is_finite() {
            SqlValue::Decimal(decimal)
        } else {
            SqlValue::Undefined
        }
    }

    pub(crate) fn is_undefined(&self) -> bool {
        matches!(self, SqlValue::Undefined)
    }

    /// Serializes to JSON; `None` is Undefined, which JSON can only express by leaving the key out
    /// (reference 5.2: `{"foo":null,"bar":undefined}` → `{"foo":null}`). Undefined array items are
    /// dropped the same way [INF: AWS does not document arrays].
    ///
    /// In 2016-03-23 whole-number Decimals such as `10.0` are written as the Int `10` (reference 5.2);
    /// 2015-10-08 keeps them as `10.0`.
    pub(crate) fn to_json(&self, version: SqlVersion) -> Option<Value> {
        match self {
            SqlValue::Undefined => None,
            SqlValue::Null => Some(Value::Null),
            SqlValue::Bool(flag) => Some(Value::Bool(*flag)),
            SqlValue::Int(int) => Some(Value::from(*int)),
            SqlValue::Decimal(decimal) => {
                if version >= SqlVersion::V2016_03_23
                    && let Some(whole) = whole_number(*decimal)
                {
                    return Some(Value::from(whole));
                }
                serde_json::Number::from_f64(*decimal).map(Value::Number)
            }
            SqlValue::String(text) => Some(Value::String(text.clone())),
            SqlValue::Array(items) => Some(Value::Array(
                items
                    .iter()
                    .filter_map(|item| item.to_json(version))
                    .collect(),
            )),
            SqlValue::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(key, value)| Some((key.clone(), value.to_json(version)?)))
                    .collect(),
            )),
        }
    }

    /// Int and Decimal only: what the `+` table calls "Int/Decimal".
    pub(crate) fn as_number(&self) -> Option<Number> {
        match self {
            SqlValue::Int(int) => Some(Number::Int(*int)),
            SqlValue::Decimal(decimal) => Some(Number::Decimal(*decimal)),
            _ => None,
        }
    }

    /// The "String/Int/Decimal" operand rule: numbers as they are, strings that match AWS's decimal
    /// pattern as Decimal, everything else (Boolean, Null, containers, Undefined) fails.
    pub(crate) fn to_number(&self) -> Option<Number> {
        match self {
            SqlValue::String(text) => parse_decimal_string(text).map(Number::Decimal),
            other => other.as_number(),
        }
    }

    /// The standard conversion "to Int" (AWS Data types): a Decimal is rounded to the nearest Int, a
    /// String is parsed as a Decimal and truncated.
    pub(crate) fn to_int_standard(&self) -> Option<i64> {
        match self {
            SqlValue::Int(int) => Some(*int),
            SqlValue::Decimal(decimal) => float_to_int(decimal.round()),
            SqlValue::String(text) => {
                parse_decimal_string(text).and_then(|d| float_to_int(d.trunc()))
            }
            _ => None,
        }
    }

    /// The "rounded down to the nearest Int" conversion most functions use (substring, cast, floor,
    /// bit functions); out-of-range values saturate so that index clamping still works.
    pub(crate) fn to_int_floor(&self) -> Option<i64> {
        match self.to_number()? {
            Number::Int(int) => Some(int),
            Number::Decimal(decimal) => Some(decimal.floor() as i64),
        }
    }

    /// The standard conversion "to Boolean": only Booleans and the strings "true"/"false" (any case).
    pub(crate) fn to_bool(&self) -> Option<bool> {
        match self {
            SqlValue::Bool(flag) => Some(*flag),
            SqlValue::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
            SqlValue::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// The standard conversion "to String": numbers in standard notation, booleans lowercase,
    /// containers serialized to JSON; Null and Undefined have no string form.
    pub(crate) fn to_sql_string(&self) -> Option<String> {
        match self {
            SqlValue::Undefined | SqlValue::Null => None,
            SqlValue::Bool(flag) => Some(flag.to_string()),
            SqlValue::Int(int) => Some(int.to_string()),
            SqlValue::Decimal(decimal) => Some(format_decimal(*decimal)),
            SqlValue::String(text) => Some(text.clone()),
            SqlValue::Array(_) | SqlValue::Object(_) => {
                // Undefined parts vanish exactly as they would in an output payload.
                self.to_json(SqlVersion::V2015_10_08)
                    .map(|json| json.to_string())
            }
        }
    }
}

/// Payloads are read straight into `SqlValue` (no intermediate `serde_json::Value`): the rules engine
/// parses every message once per rule, so this is the hot path of evaluation.
impl<'de> serde::Deserialize<'de> for SqlValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SqlValueVisitor)
    }
}

struct SqlValueVisitor;

impl<'de> serde::de::Visitor<'de> for SqlValueVisitor {
    type Value = SqlValue;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<SqlValue, E> {
        Ok(SqlValue::Null)
    }

    fn visit_bool<E>(self, flag: bool) -> Result<SqlValue, E> {
        Ok(SqlValue::Bool(flag))
    }

    fn visit_i64<E>(self, int: i64) -> Result<SqlValue, E> {
        Ok(SqlValue::Int(int))
    }

    fn visit_u64<E>(self, int: u64) -> Result<SqlValue, E> {
        Ok(i64::try_from(int).map_or(SqlValue::Decimal(int as f64), SqlValue::Int))
    }

    fn visit_f64<E>(self, decimal: f64) -> Result<SqlValue, E> {
        Ok(SqlValue::decimal(decimal))
    }

    fn visit_str<E>(self, text: &str) -> Result<SqlValue, E> {
        Ok(SqlValue::String(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<SqlValue, E> {
        Ok(SqlValue::String(text))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<SqlValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(SqlValue::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SqlValue, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<String, SqlValue>()? {
            fields.insert(key, value);
        }
        Ok(SqlValue::Object(fields))
    }
}

/// Decimal to text: `10.0` stays `10.0`, very large or small values use exponent notation,
/// like the Java BigDecimal AWS uses ("possibly in scientific notation").
pub(crate) fn format_decimal(decimal: f64) -> String {
    serde_json::Number::from_f64(decimal).map_or_else(|| decimal.to_string(), |n| n.to_string())
}

fn whole_number(decimal: f64) -> Option<i64> {
    if decimal.fract() == 0.0 {
        float_to_int(decimal)
    } else {
        None
    }
}

fn float_to_int(decimal: f64) -> Option<i64> {
    // i64::MAX as f64 rounds up to 2^63, so the upper bound must be exclusive.
    if decimal.is_finite() && decimal >= i64::MIN as f64 && decimal < i64::MAX as f64 {
        Some(decimal as i64)
    } else {
        None
    }
}

/// AWS converts a string to Decimal only when it matches `^-?\d+(\.\d+)?((?i)E-?\d+)?$` (reference 5.2):
/// no leading `+`, no surrounding spaces, no bare `.5`.
pub(crate) fn parse_decimal_string(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut position = 0;
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    if bytes.first() == Some(&b'-') {
        position += 1;
    }
    let integer_digits = digits(position);
    if integer_digits == 0 {
        return None;
    }
    position += integer_digits;
    if bytes.get(position) == Some(&b'.') {
        let fraction_digits = digits(position + 1);
        if fraction_digits == 0 {
            return None;
        }
        position += 1 + fraction_digits;
    }
    if matches!(bytes.get(position), Some(b'e' | b'E')) {
        position += 1;
        if bytes.get(position) == Some(&b'-') {
            position += 1;
        }
        let exponent_digits = digits(position);
        if exponent_digits == 0 {
            return None;
        }
        position += exponent_digits;
    }
    if position != bytes.len() {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .filter(|decimal| decimal.is_finite())
}

/// The `=` table (AWS Operators): `None` is Undefined. Int and Decimal compare numerically, same-type
/// values compare by value (objects ignore key order, arrays do not), Null equals Null, and
/// mismatched types are simply unequal: `'5' = 5` is false, there is no string conversion here.
pub(crate) fn sql_equals(left: &SqlValue, right: &SqlValue) -> Option<bool> {
    use SqlValue::*;
    match (left, right) {
        (Undefined, _) | (_, Undefined) => None,
        (Null, Null) => Some(true),
        (Bool(a), Bool(b)) => Some(a == b),
        (Int(a), Int(b)) => Some(a == b),
        (Int(_) | Decimal(_), Int(_) | Decimal(_)) => {
            let (a, b) = (left.as_number()?, right.as_number()?);
            Some(a.as_f64() == b.as_f64())
        }
        (String(a), String(b)) => Some(a == b),
        (Array(a), Array(b)) => {
            if a.len() != b.len() {
                return Some(false);
            }
            for (x, y) in a.iter().zip(b) {
                if !sql_equals(x, y)? {
                    return Some(false);
                }
            }
            Some(true)
        }
        (Object(a), Object(b)) => {
            if a.len() != b.len() {
                return Some(false);
            }
            for (key, x) in a {
                match b.get(key) {
                    Some(y) if sql_equals(x, y)? => {}
                    _ => return Some(false),
                }
            }
            Some(true)
        }
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_follow_the_aws_pattern() {
        assert_eq!(parse_decimal_string("0"), Some(0.0));
        assert_eq!(parse_decimal_string("-1.2"), Some(-1.2));
        assert_eq!(parse_decimal_string("5E-12"), Some(5e-12));
        assert_eq!(parse_decimal_string("5e3"), Some(5000.0));
        for rejected in [
            "", "-", "+5", " 5", "5 ", ".5", "5.", "1e", "1e+3", "0x10", "abc",
        ] {
            assert_eq!(parse_decimal_string(rejected), None, "{rejected:?}");
        }
    }

    #[test]
    fn string_conversion_table() {
        assert_eq!(SqlValue::Int(-3).to_sql_string().as_deref(), Some("-3"));
        assert_eq!(
            SqlValue::Decimal(10.0).to_sql_string().as_deref(),
            Some("10.0")
        );
        assert_eq!(
            SqlValue::Bool(true).to_sql_string().as_deref(),
            Some("true")
        );
        assert_eq!(SqlValue::Null.to_sql_string(), None);
        assert_eq!(SqlValue::Undefined.to_sql_string(), None);
        let array = SqlValue::Array(vec![
            SqlValue::String("a".into()),
            SqlValue::Int(1),
            SqlValue::Null,
        ]);
        assert_eq!(array.to_sql_string().as_deref(), Some(r#"["a",1,null]"#));
    }

    #[test]
    fn payloads_deserialize_with_aws_number_types() {
        let parsed: SqlValue = serde_json::from_str(
            r#"{"i": 50, "d": 10.0, "big": 18446744073709551615, "a": [null, true, "s"]}"#,
        )
        .unwrap();
        let SqlValue::Object(fields) = parsed else {
            panic!("expected an object");
        };
        assert_eq!(fields["i"], SqlValue::Int(50));
        assert_eq!(fields["d"], SqlValue::Decimal(10.0));
        assert_eq!(
            fields["big"],
            SqlValue::Decimal(18_446_744_073_709_551_615.0)
        );
        assert_eq!(
            fields["a"],
            SqlValue::Array(vec![
                SqlValue::Null,
                SqlValue::Bool(true),
                SqlValue::String("s".into())
            ])
        );
        assert!(serde_json::from_slice::<SqlValue>(b"not json").is_err());
    }

    #[test]
    fn int_conversions() {
        assert_eq!(SqlValue::Decimal(2.5).to_int_standard(), Some(3));
        assert_eq!(SqlValue::String("2.9".into()).to_int_standard(), Some(2));
        assert_eq!(SqlValue::Decimal(-1.2).to_int_floor(), Some(-2));
        assert_eq!(SqlValue::Bool(true).to_int_standard(), None);
        assert_eq!(SqlValue::Null.to_int_standard(), None);
    }
}

//! Operator semantics, row by row from AWS's operator tables (reference 5.2; AWS "Operators").
//! Any operand combination outside a table's rows yields Undefined.

use std::cmp::Ordering;

use crate::ast::BinaryOp;
use crate::value::{Number, SqlValue, sql_equals};

pub(crate) fn binary(op: BinaryOp, left: &SqlValue, right: &SqlValue) -> SqlValue {
    match op {
        BinaryOp::And => logical(left, right, |a, b| a && b),
        BinaryOp::Or => logical(left, right, |a, b| a || b),
        BinaryOp::Equal => sql_equals(left, right).map_or(SqlValue::Undefined, SqlValue::Bool),
        // `<>` is the negation of `=` in every row, including Null <> Null = false and
        // mismatched types = true.
        BinaryOp::NotEqual => {
            sql_equals(left, right).map_or(SqlValue::Undefined, |eq| SqlValue::Bool(!eq))
        }
        BinaryOp::Less => compare(left, right, Ordering::is_lt),
        BinaryOp::LessEqual => compare(left, right, Ordering::is_le),
        BinaryOp::Greater => compare(left, right, Ordering::is_gt),
        BinaryOp::GreaterEqual => compare(left, right, Ordering::is_ge),
        BinaryOp::Add => add(left, right),
        BinaryOp::Subtract | BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Modulo => {
            arithmetic(op, left, right)
        }
    }
}

/// Unary minus: not in AWS's tables; it behaves as `0 - value`, so Int stays Int and numeric strings
/// become Decimal [INF].
pub(crate) fn negate(value: &SqlValue) -> SqlValue {
    arithmetic(BinaryOp::Subtract, &SqlValue::Int(0), value)
}

/// NOT: a Boolean or a "true"/"false" string (any case) is negated; anything else is Undefined.
pub(crate) fn not(value: &SqlValue) -> SqlValue {
    value
        .to_bool()
        .map_or(SqlValue::Undefined, |flag| SqlValue::Bool(!flag))
}

/// AND / OR: both operands must be Booleans or "true"/"false" strings, otherwise the result is
/// Undefined, with no short-circuit: `false AND 5` is Undefined, as the "Other Value" row says.
fn logical(left: &SqlValue, right: &SqlValue, combine: fn(bool, bool) -> bool) -> SqlValue {
    match (left.to_bool(), right.to_bool()) {
        (Some(a), Some(b)) => SqlValue::Bool(combine(a, b)),
        _ => SqlValue::Undefined,
    }
}

/// `<`, `<=`, `>`, `>=`: both operands are converted to Decimal (numeric strings included); anything
/// that does not convert makes the result Undefined.
fn compare(left: &SqlValue, right: &SqlValue, accept: fn(Ordering) -> bool) -> SqlValue {
    let (Some(a), Some(b)) = (left.to_number(), right.to_number()) else {
        return SqlValue::Undefined;
    };
    let ordering = match (a, b) {
        (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    };
    ordering.map_or(SqlValue::Undefined, |ordering| {
        SqlValue::Bool(accept(ordering))
    })
}

/// `+` is overloaded: a String on either side concatenates with the other side's string form; else
/// Int + Int is Int and Int/Decimal mixes are Decimal. Numeric strings are not added as numbers.
fn add(left: &SqlValue, right: &SqlValue) -> SqlValue {
    if let SqlValue::String(text) = left {
        return right.to_sql_string().map_or(SqlValue::Undefined, |tail| {
            SqlValue::String(format!("{text}{tail}"))
        });
    }
    if let SqlValue::String(tail) = right {
        return left.to_sql_string().map_or(SqlValue::Undefined, |head| {
            SqlValue::String(format!("{head}{tail}"))
        });
    }
    match (left.as_number(), right.as_number()) {
        (Some(a), Some(b)) => numeric(BinaryOp::Add, a, b),
        _ => SqlValue::Undefined,
    }
}

/// `-`, `*`, `/`, `%`: Int op Int is Int; any other mix of Int, Decimal and numeric strings is a
/// Decimal; anything else, and division by zero, is Undefined.
fn arithmetic(op: BinaryOp, left: &SqlValue, right: &SqlValue) -> SqlValue {
    match (left.to_number(), right.to_number()) {
        (Some(a), Some(b)) => numeric(op, a, b),
        _ => SqlValue::Undefined,
    }
}

fn numeric(op: BinaryOp, left: Number, right: Number) -> SqlValue {
    if let (Number::Int(a), Number::Int(b)) = (left, right) {
        let exact = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Subtract => a.checked_sub(b),
            BinaryOp::Multiply => a.checked_mul(b),
            // Integer division truncates toward zero; `/ 0` is Undefined rather than an error.
            BinaryOp::Divide if b == 0 => return SqlValue::Undefined,
            BinaryOp::Divide => a.checked_div(b),
            BinaryOp::Modulo if b == 0 => return SqlValue::Undefined,
            BinaryOp::Modulo => a.checked_rem(b),
            _ => None,
        };
        // AWS's Int has 34 digits; ours is 64-bit, so an overflow continues as a Decimal.
        if let Some(result) = exact {
            return SqlValue::Int(result);
        }
    }
    let (a, b) = (left.as_f64(), right.as_f64());
    let result = match op {
        BinaryOp::Add => a + b,
        BinaryOp::Subtract => a - b,
        BinaryOp::Multiply => a * b,
        BinaryOp::Divide => a / b,
        BinaryOp::Modulo => a % b,
        _ => f64::NAN,
    };
    // NaN and infinities (division by zero) become Undefined.
    Number::Decimal(result).into_value()
}

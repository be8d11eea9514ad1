//! The operator tables of the AWS "Operators" page (reference 5.2), row by row, and the
//! Int/Decimal differences between SQL versions.

mod common;

use common::*;
use serde_json::json;

#[test]
fn and_or_not_accept_booleans_and_boolean_strings() {
    assert_eq!(eval("true AND true"), Some(json!(true)));
    assert_eq!(eval("true AND false"), Some(json!(false)));
    assert_eq!(eval("false OR true"), Some(json!(true)));
    assert_eq!(eval("false OR false"), Some(json!(false)));
    assert_eq!(eval("'TRUE' AND 'true'"), Some(json!(true)));
    assert_eq!(eval("'False' OR true"), Some(json!(true)));
    assert_eq!(eval("NOT false"), Some(json!(true)));
    assert_eq!(eval("NOT 'TrUe'"), Some(json!(false)));
    assert_eq!(eval("NOT 'yes'"), None);
    assert_eq!(eval("NOT 1"), None);
    assert_eq!(eval("1 AND true"), None);
    assert_eq!(eval("'yes' OR true"), None);
}

#[test]
fn ordering_comparisons_convert_to_decimal() {
    assert_eq!(eval("2 > 1"), Some(json!(true)));
    assert_eq!(eval("2 >= 2.0"), Some(json!(true)));
    assert_eq!(eval("1.5 < 2"), Some(json!(true)));
    assert_eq!(eval("2 <= 1"), Some(json!(false)));
    // Strings that look like decimals are converted.
    assert_eq!(eval("'10' > 9"), Some(json!(true)));
    assert_eq!(eval("'5E-12' < 1"), Some(json!(true)));
    assert_eq!(eval("'-1.2' < '0'"), Some(json!(true)));
    // Anything else is Undefined.
    assert_eq!(eval("'abc' > 1"), None);
    assert_eq!(eval("true > false"), None);
    assert_eq!(eval("null < 1"), None);
    assert_eq!(eval("[1] < [2]"), None);
}

#[test]
fn equality_table() {
    assert_eq!(eval("1 = 1"), Some(json!(true)));
    assert_eq!(
        eval("1 = 1.0"),
        Some(json!(true)),
        "Int is converted to Decimal"
    );
    assert_eq!(eval("'a' = 'a'"), Some(json!(true)));
    assert_eq!(eval("'a' = 'A'"), Some(json!(false)));
    assert_eq!(eval("[1, 2] = [1, 2]"), Some(json!(true)));
    assert_eq!(
        eval("[1, 2] = [2, 1]"),
        Some(json!(false)),
        "array order matters"
    );
    assert_eq!(
        eval("{'a': 1, 'b': 2} = {'b': 2, 'a': 1}"),
        Some(json!(true)),
        "object key order does not"
    );
    assert_eq!(eval("null = null"), Some(json!(true)));
    // Mismatched types are unequal; there is no string-to-number conversion for =.
    assert_eq!(eval("'5' = 5"), Some(json!(false)));
    assert_eq!(eval("true = 'true'"), Some(json!(false)));
    assert_eq!(eval("null = 0"), Some(json!(false)));
}

#[test]
fn not_equal_table() {
    assert_eq!(eval("1 <> 2"), Some(json!(true)));
    assert_eq!(eval("1 <> 1.0"), Some(json!(false)));
    assert_eq!(eval("'a' <> 'b'"), Some(json!(true)));
    assert_eq!(eval("null <> null"), Some(json!(false)));
    assert_eq!(eval("'5' <> 5"), Some(json!(true)), "mismatched types");
    assert_eq!(eval("[1] <> [1]"), Some(json!(false)));
}

#[test]
fn plus_concatenates_when_either_side_is_a_string() {
    assert_eq!(eval("'a' + 'b'"), Some(json!("ab")));
    assert_eq!(eval("'n=' + 5"), Some(json!("n=5")));
    assert_eq!(
        eval("5 + '1'"),
        Some(json!("51")),
        "numeric strings are not added"
    );
    assert_eq!(eval("true + '!'"), Some(json!("true!")));
    assert_eq!(eval("'a' + [1, 'b']"), Some(json!("a[1,\"b\"]")));
    assert_eq!(eval("'a' + null"), None, "Null has no string form");
}

#[test]
fn plus_adds_numbers() {
    assert_eq!(eval("1 + 2"), Some(json!(3)));
    assert_eq!(eval_2015("1 + 2.5"), Some(json!(3.5)));
    assert_eq!(eval("true + 1"), None);
    assert_eq!(eval("null + 1"), None);
    assert_eq!(eval("[1] + 1"), None);
}

#[test]
fn minus_times_divide_modulo() {
    assert_eq!(eval("7 - 2"), Some(json!(5)));
    assert_eq!(eval("7 * 2"), Some(json!(14)));
    assert_eq!(eval("7 / 2"), Some(json!(3)), "Int / Int is an Int");
    assert_eq!(eval("-7 / 2"), Some(json!(-3)), "truncates toward zero");
    assert_eq!(eval("7 % 3"), Some(json!(1)));
    assert_eq!(eval("-7 % 3"), Some(json!(-1)));
    assert_eq!(eval_2015("7.0 / 2"), Some(json!(3.5)));
    assert_eq!(eval_2015("7 % 2.5"), Some(json!(2.0)));
    // Numeric strings convert to Decimal for - * / %.
    assert_eq!(eval_2015("'7' - 2"), Some(json!(5.0)));
    assert_eq!(eval_2015("'3' * '2'"), Some(json!(6.0)));
    assert_eq!(eval("'abc' - 1"), None);
    assert_eq!(eval("true * 2"), None);
}

#[test]
fn division_by_zero_is_undefined() {
    assert_eq!(eval("1 / 0"), None);
    assert_eq!(eval("1.5 / 0"), None);
    assert_eq!(eval("1 % 0"), None);
}

#[test]
fn int_overflow_continues_as_decimal() {
    assert_eq!(
        eval_2015("9223372036854775807 + 1"),
        Some(json!(9_223_372_036_854_775_808.0_f64))
    );
}

#[test]
fn unary_minus() {
    assert_eq!(eval("-5"), Some(json!(-5)));
    assert_eq!(eval_2015("-2.5"), Some(json!(-2.5)));
    assert_eq!(eval_on("-t", V2016, r#"{"t": 4}"#), Some(json!(-4)));
    assert_eq!(eval_on("-t", V2015, r#"{"t": "4.5"}"#), Some(json!(-4.5)));
    assert_eq!(eval_on("-t", V2016, r#"{"t": "x"}"#), None);
}

#[test]
fn precedence_and_parentheses() {
    assert_eq!(eval("1 + 2 * 3"), Some(json!(7)));
    assert_eq!(eval("(1 + 2) * 3"), Some(json!(9)));
    assert_eq!(eval("10 - 4 - 3"), Some(json!(3)), "left associative");
    assert_eq!(eval("1 < 2 AND 3 < 4"), Some(json!(true)));
    assert_eq!(
        eval("NOT 1 = 2"),
        Some(json!(true)),
        "NOT binds looser than ="
    );
    assert_eq!(
        eval("true OR false AND false"),
        Some(json!(true)),
        "AND binds tighter than OR"
    );
}

#[test]
fn whole_decimals_become_ints_only_in_2016() {
    // reference 5.2: in SQL 2016-03-23, whole-number decimals such as 10.0 become Int 10.
    assert_eq!(eval_2015("10.0"), Some(json!(10.0)));
    assert_eq!(eval("10.0"), Some(json!(10)));
    assert_eq!(eval_2015("2.5 * 4"), Some(json!(10.0)));
    assert_eq!(eval("2.5 * 4"), Some(json!(10)));
    assert_eq!(eval("2.5 * 3"), Some(json!(7.5)));
    let payload = r#"{"t": 10.0, "u": 1.5}"#;
    assert_eq!(
        select_json("SELECT * FROM 'a/b'", V2015, payload),
        Some(json!({"t": 10.0, "u": 1.5}))
    );
    assert_eq!(
        select_json("SELECT * FROM 'a/b'", V2016, payload),
        Some(json!({"t": 10, "u": 1.5}))
    );
}

#[test]
fn case_matches_with_equality_semantics() {
    assert_eq!(
        eval("CASE 1 WHEN 1.0 THEN 'one' ELSE 'other' END"),
        Some(json!("one"))
    );
    assert_eq!(
        eval("CASE '1' WHEN 1 THEN 'one' ELSE 'other' END"),
        Some(json!("other"))
    );
    assert_eq!(
        eval("CASE 2 WHEN 1 THEN 'a' WHEN 2 THEN 'b' WHEN 2 THEN 'c' END"),
        Some(json!("b"))
    );
}

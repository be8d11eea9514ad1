//! Parse errors: what AWS would refuse, or what iot-sql does not implement, with a position.

mod common;

use common::*;
use iot_sql::{ParseErrorKind, Rule, TopicFilterError};

fn parse_error(sql: &str) -> iot_sql::ParseError {
    Rule::parse(sql, V2016).expect_err(sql)
}

fn unexpected(sql: &str) -> (String, String, usize) {
    let error = parse_error(sql);
    match error.kind {
        ParseErrorKind::UnexpectedToken { expected, found } => (expected, found, error.column),
        other => panic!("{sql}: expected UnexpectedToken, got {other:?}"),
    }
}

#[test]
fn select_is_required() {
    assert_eq!(
        unexpected("FROM 'a/b'"),
        ("SELECT".to_string(), "'FROM'".to_string(), 1)
    );
    assert_eq!(unexpected("").1, "end of input");
}

#[test]
fn from_needs_a_single_quoted_topic_filter() {
    for sql in [
        r#"SELECT * FROM "a/b""#,
        "SELECT * FROM a/b",
        "SELECT * FROM topic/#",
    ] {
        let error = parse_error(sql);
        assert_eq!(error.kind, ParseErrorKind::FromNeedsSingleQuotes, "{sql}");
        assert_eq!(error.column, 15, "{sql}");
    }
}

#[test]
fn from_topic_filter_is_validated() {
    let cases = [
        (
            "SELECT * FROM 'a/#/b'",
            TopicFilterError::MisplacedMultiLevelWildcard,
        ),
        (
            "SELECT * FROM 'a/b#'",
            TopicFilterError::MisplacedMultiLevelWildcard,
        ),
        (
            "SELECT * FROM 'a+/b'",
            TopicFilterError::MisplacedSingleLevelWildcard,
        ),
        ("SELECT * FROM ''", TopicFilterError::Empty),
    ];
    for (sql, expected) in cases {
        let error = parse_error(sql);
        assert_eq!(
            error.kind,
            ParseErrorKind::InvalidTopicFilter(expected),
            "{sql}"
        );
        assert_eq!(error.column, 15);
    }
}

#[test]
fn positions_are_line_and_column() {
    let error = parse_error("SELECT a,\n  b c\nFROM 'x'");
    assert_eq!((error.line, error.column), (2, 5));
    assert_eq!(error.offset, 14);
    assert_eq!(
        error.to_string(),
        "expected WHERE or end of input, found 'c' at line 2, column 5"
    );
}

#[test]
fn trailing_garbage_and_unbalanced_parentheses() {
    assert_eq!(unexpected("SELECT * FROM 'a' extra").2, 19);
    assert_eq!(unexpected("SELECT (a + 1 FROM 'a'").0, "')'");
    assert_eq!(unexpected("SELECT a + FROM 'a'").0, "an expression");
    assert_eq!(unexpected("SELECT a, FROM 'a'").0, "an expression");
    assert_eq!(unexpected("SELECT * FROM 'a' WHERE").0, "an expression");
}

#[test]
fn other_dialects_operators_get_hints() {
    let cases = [
        ("SELECT * FROM 'a' WHERE x != 1", "!=", 27),
        ("SELECT a || b AS c FROM 'a'", "||", 10),
        ("SELECT * FROM 'a' WHERE x IN (1, 2)", "IN", 27),
        ("SELECT * FROM 'a' WHERE x LIKE 'a%'", "LIKE", 27),
        ("SELECT * FROM 'a' WHERE x IS NULL", "IS", 27),
        ("SELECT * FROM 'a' WHERE x BETWEEN 1 AND 2", "BETWEEN", 27),
    ];
    for (sql, operator, column) in cases {
        let error = parse_error(sql);
        match error.kind {
            ParseErrorKind::UnsupportedOperator {
                operator: found, ..
            } => {
                assert_eq!(found, operator, "{sql}")
            }
            other => panic!("{sql}: {other:?}"),
        }
        assert_eq!(error.column, column, "{sql}");
    }
}

#[test]
fn comments_are_not_supported() {
    // AWS: "Comments are not currently supported in AWS IoT SQL syntax."
    assert!(Rule::parse("SELECT * FROM 'a' /* note */", V2016).is_err());
    assert!(Rule::parse("SELECT * FROM 'a' -- note", V2016).is_err());
}

#[test]
fn lexical_errors() {
    // 'open FROM ' is one string, so the quote after `a` opens a string that never closes.
    let error = parse_error("SELECT 'open FROM 'a'");
    assert_eq!(error.kind, ParseErrorKind::UnterminatedString);
    assert_eq!(error.column, 21);
    let error = parse_error("SELECT 'x\\q' AS a FROM 'a'");
    assert_eq!(error.kind, ParseErrorKind::InvalidEscape);
    let error = parse_error("SELECT 1e AS a FROM 'a'");
    assert_eq!(error.kind, ParseErrorKind::InvalidNumber);
    assert_eq!(error.column, 8);
    let error = parse_error("SELECT a; FROM 'a'");
    assert_eq!(error.kind, ParseErrorKind::UnexpectedCharacter(';'));
    let error = parse_error("SELECT 'never closed");
    assert_eq!(error.kind, ParseErrorKind::UnterminatedString);
    assert_eq!(error.column, 8);
}

#[test]
fn unknown_and_unimplemented_functions() {
    let error = parse_error("SELECT frobnicate(a) AS f FROM 'a'");
    assert_eq!(
        error.kind,
        ParseErrorKind::UnknownFunction("frobnicate".into())
    );
    assert_eq!(error.column, 8);
    for name in [
        "get_thing_shadow",
        "aws_lambda",
        "md5",
        "regexp_matches",
        "parse_time",
    ] {
        let error = parse_error(&format!("SELECT {name}(a) AS f FROM 'a'"));
        assert_eq!(error.kind, ParseErrorKind::UnsupportedFunction(name.into()));
    }
}

#[test]
fn select_value_takes_one_expression() {
    let (expected, _, column) = unexpected("SELECT VALUE a, b FROM 'a'");
    assert!(expected.contains("exactly one"), "{expected}");
    assert_eq!(column, 15);
}

#[test]
fn case_needs_a_when_and_an_end() {
    assert_eq!(
        unexpected("SELECT CASE a ELSE 1 END AS x FROM 'a'").0,
        "WHEN"
    );
    assert_eq!(
        unexpected("SELECT CASE a WHEN 1 THEN 2 AS x FROM 'a'").0,
        "END"
    );
    // Searched CASE (no operand) is not in AWS's syntax.
    assert!(Rule::parse("SELECT CASE WHEN a = 1 THEN 2 END AS x FROM 'a'", V2016).is_err());
}

#[test]
fn reserved_words_cannot_be_bare_names_but_work_after_a_dot() {
    assert!(Rule::parse("SELECT from FROM 'a'", V2016).is_err());
    assert!(Rule::parse("SELECT a AS select FROM 'a'", V2016).is_err());
    let output = select_json(
        "SELECT state.end AS e, get(*, 'from') AS f FROM 'a/b'",
        V2016,
        r#"{"state": {"end": 1}, "from": 2}"#,
    );
    assert_eq!(output, Some(serde_json::json!({"e": 1, "f": 2})));
}

#[test]
fn value_is_only_a_keyword_before_an_expression() {
    let payload = r#"{"value": 7, "x": 1}"#;
    assert_eq!(
        select_json("SELECT value FROM 'a/b'", V2016, payload),
        Some(serde_json::json!({"value": 7}))
    );
    assert_eq!(
        select_json("SELECT value AS v, x FROM 'a/b'", V2016, payload),
        Some(serde_json::json!({"v": 7, "x": 1}))
    );
    assert_eq!(
        select_json("SELECT VALUE value FROM 'a/b'", V2016, payload),
        Some(serde_json::json!(7))
    );
    assert_eq!(
        select_json("SELECT VALUE * FROM 'a/b'", V2016, payload),
        Some(serde_json::json!({"value": 7, "x": 1}))
    );
}

#[test]
fn keywords_are_case_insensitive() {
    assert_eq!(
        select_json(
            "select color as c from 'a/b' where temperature > 1 and not false",
            V2015,
            r#"{"color": "red", "temperature": 2}"#
        ),
        Some(serde_json::json!({"c": "red"}))
    );
}

#[test]
fn display_names_the_problem_and_the_place() {
    let error = parse_error("SELECT * FROM 'a' WHERE x != 1");
    assert_eq!(
        error.to_string(),
        "operator != is not part of AWS IoT SQL; use <> at line 1, column 27"
    );
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        "SELECT {}1{} AS x FROM 'a'",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(parse_error(&deep).kind, ParseErrorKind::TooDeeplyNested);
    let negations = format!("SELECT {}1 AS x FROM 'a'", "-".repeat(10_000));
    assert_eq!(
        parse_error(&negations).kind,
        ParseErrorKind::TooDeeplyNested
    );
    let nots = format!("SELECT * FROM 'a' WHERE {}true", "NOT ".repeat(10_000));
    assert_eq!(parse_error(&nots).kind, ParseErrorKind::TooDeeplyNested);
    // Reasonable nesting is fine.
    let fine = format!(
        "SELECT VALUE {}1{} FROM 'a/b'",
        "(".repeat(50),
        ")".repeat(50)
    );
    assert_eq!(select_json(&fine, V2016, "{}"), Some(serde_json::json!(1)));
}

/// A chain of binary operators, member accesses or alias keys builds a tree as deep as the chain is long, although the parser
/// itself loops instead of recursing; evaluating (and dropping) that tree recursed once per link, so a rule of
/// `1+1+…` within AWS's 256 KB rule size overflowed the stack of the thread that ran it (issue 13, found while
/// writing the fuzz targets). The whole rule runs on a thread with a tokio worker's 2 MiB stack.
#[test]
fn long_operator_and_member_chains_are_refused_not_a_stack_overflow() {
    fn parse_and_run(sql: String) -> Result<(), ParseErrorKind> {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let rule = Rule::parse(&sql, V2016).map_err(|error| error.kind)?;
                let message = iot_sql::Message::mqtt("a/b", br#"{"a":{"a":1}}"#, "dev-1", NOW_MS);
                let _ = rule.evaluate(&message, &mut iot_sql::DeterministicContext::default());
                Ok(())
            })
            .unwrap()
            .join()
            .expect("parsing and evaluating must not overflow the stack")
    }
    const AWS_RULE_BYTES: usize = 256 * 1024;
    let links = AWS_RULE_BYTES / 8;
    for chain in [
        format!("SELECT VALUE 1{} FROM 'a/b'", "+1".repeat(links)),
        format!("SELECT VALUE a{} FROM 'a/b'", ".a".repeat(links)),
        format!("SELECT VALUE a{} FROM 'a/b'", "[0]".repeat(links)),
        format!(
            "SELECT * FROM 'a/b' WHERE a = 1{}",
            " OR a = 1".repeat(links / 2)
        ),
        format!(
            "SELECT * FROM 'a/b' WHERE a = 1{}",
            " AND a = 1".repeat(links / 2)
        ),
        format!("SELECT VALUE 1{} FROM 'a/b'", " = 1".repeat(links / 2)),
        format!("SELECT 1 AS a{} FROM 'a/b'", ".a".repeat(links)),
    ] {
        assert_eq!(parse_and_run(chain), Err(ParseErrorKind::TooDeeplyNested));
    }
    // Chains of a realistic length still parse and run.
    for chain in [
        format!("SELECT VALUE 1{} FROM 'a/b'", "+1".repeat(100)),
        format!("SELECT * FROM 'a/b' WHERE a = 1{}", " OR a = 1".repeat(100)),
        format!("SELECT VALUE a{} FROM 'a/b'", ".a".repeat(100)),
    ] {
        assert_eq!(parse_and_run(chain), Ok(()));
    }
}

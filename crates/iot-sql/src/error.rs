//! Errors: parse errors point at the offending character; evaluation errors are the cases where
//! AWS fails the rule instead of producing Undefined.

use std::fmt;

use crate::topic::TopicFilterError;
use crate::version::SqlVersion;

/// A rule whose SQL AWS would refuse (or that this crate does not implement), with the position of
/// the problem so a CDK author can find it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// Byte offset into the SQL text.
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// 1-based column of `offset`, counted in characters.
    pub column: usize,
}

impl ParseError {
    pub(crate) fn new(sql: &str, offset: usize, kind: ParseErrorKind) -> ParseError {
        let offset = offset.min(sql.len());
        let before = sql.get(..offset).unwrap_or(sql);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        ParseError {
            kind,
            offset,
            line,
            column,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.kind, self.line, self.column
        )
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    #[error("unterminated string literal")]
    UnterminatedString,
    #[error("invalid escape sequence in string literal")]
    InvalidEscape,
    #[error("invalid number")]
    InvalidNumber,
    #[error("expected {expected}, found {found}")]
    UnexpectedToken { expected: String, found: String },
    /// Operators from other SQL dialects that AWS IoT SQL does not have (reference 5.2).
    #[error("operator {operator} is not part of AWS IoT SQL; {hint}")]
    UnsupportedOperator {
        operator: &'static str,
        hint: &'static str,
    },
    #[error("unknown function {0}()")]
    UnknownFunction(String),
    /// An AWS function (often an external one such as `get_thing_shadow`) this crate does not evaluate.
    #[error("function {0}() exists in AWS IoT SQL but is not implemented by iot-sql")]
    UnsupportedFunction(String),
    /// A 2016-03-23 feature used in a 2015-10-08 rule (reference 5.1).
    #[error("{feature} requires SQL version 2016-03-23 (this rule uses {version})")]
    NotInVersion {
        feature: String,
        version: SqlVersion,
    },
    #[error("invalid topic filter in FROM: {0}")]
    InvalidTopicFilter(TopicFilterError),
    /// AWS requires the FROM topic filter in single quotes (AWS "FROM clause").
    #[error("the FROM topic filter must be in single quotes, e.g. FROM 'a/b'")]
    FromNeedsSingleQuotes,
    #[error("unknown cast type {0}")]
    UnknownCastType(String),
    #[error("expression nested too deeply")]
    TooDeeplyNested,
    /// A substitution template `${` without its closing `}` (reference 5.10).
    #[error("substitution template '${{' is never closed")]
    UnterminatedSubstitution,
}

/// Evaluation failures: AWS refuses to run the rule on this message, rather than yielding Undefined.
/// An emulator routes these to the rule's error action (reference 5.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Reference 5.4, rule 1: with a non-JSON payload the SQL may not refer to JSON names other than `*`.
    #[error(
        "the payload is not JSON, and the rule refers to JSON names other than * (binary payload rule 1)"
    )]
    BinaryPayloadReferencesJsonNames,
    /// Reference 5.4, rule 2: with a non-JSON payload SELECT must be `*` alone or only functions.
    #[error(
        "the payload is not JSON, and SELECT is neither * alone nor only functions (binary payload rule 2)"
    )]
    BinaryPayloadSelectShape,
    /// `SELECT VALUE` of an array needs 2016-03-23 (reference 5.1 "output an array as a top-level object").
    #[error("SELECT VALUE produced an array, which requires SQL version 2016-03-23")]
    TopLevelArrayRequires2016,
}

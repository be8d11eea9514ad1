//! CloudWatch Logs filter patterns, the subset `FilterLogEvents` needs for our functions and for people
//! reading disconnect records by hand.
//!
//! Supported (CloudWatch "Filter pattern syntax"):
//! - empty pattern: every event;
//! - terms: `ERROR`, `"connection lost"` (quoted phrase), all must occur (case-sensitive substring);
//!   `?ERROR ?WARN` (at least one of the `?` terms); `-DEBUG` (must not occur);
//! - JSON patterns on messages that are JSON objects: `{ $.field = "value" }`, `!=`, `*` wildcards in
//!   strings, numeric `= != < <= > >=`, `IS TRUE|FALSE|NULL`, `NOT EXISTS`, `&&`, `||`, parentheses,
//!   selectors `$.a.b`, `$.list[0]`.
//!
//! Not supported, refused (the emulator answers `InvalidParameterException`): space-delimited patterns
//! (`[ip, user, ...]`), regular expressions (`%...%`) and `$.*` wildcard selectors.
//!
//! A crate of its own, apart from the emulator's CloudWatch Logs service, so that the fuzz target (`fuzz/`)
//! builds it without the emulator.

use serde_json::Value;

/// A pattern that is refused, with the text CloudWatch Logs' `InvalidParameterException` carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

impl PatternError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPattern {
    kind: PatternKind,
}

#[derive(Debug, Clone, PartialEq)]
enum PatternKind {
    MatchAll,
    Terms(TermPattern),
    Json(JsonExpr),
}

#[derive(Debug, Clone, PartialEq, Default)]
struct TermPattern {
    required: Vec<String>,
    any_of: Vec<String>,
    excluded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum JsonExpr {
    Or(Box<JsonExpr>, Box<JsonExpr>),
    And(Box<JsonExpr>, Box<JsonExpr>),
    Compare {
        selector: Vec<PathStep>,
        op: CompareOp,
        value: Literal,
    },
    Is {
        selector: Vec<PathStep>,
        expected: IsValue,
    },
    NotExists(Vec<PathStep>),
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum IsValue {
    True,
    False,
    Null,
}

/// AWS's length constraint on `filterPattern` (FilterLogEvents API reference: maximum length 1024).
pub const MAX_FILTER_PATTERN_CHARS: usize = 1024;
/// Parentheses nest at most this deep. The parser recurses per level, so without a bound a pattern of nested
/// parentheses overflowed the stack and aborted the emulator (issue 13); AWS documents no depth, and real
/// patterns nest a few levels.
pub const MAX_PATTERN_NESTING: usize = 32;

fn invalid_pattern() -> PatternError {
    PatternError::new("Invalid filter pattern")
}

impl FilterPattern {
    /// Parse a pattern; `None` or blank matches everything.
    pub fn parse(pattern: Option<&str>) -> Result<Self, PatternError> {
        let raw = pattern.unwrap_or("");
        if raw.chars().count() > MAX_FILTER_PATTERN_CHARS {
            return Err(PatternError::new(format!(
                "1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: \
                 Member must have length less than or equal to {MAX_FILTER_PATTERN_CHARS}"
            )));
        }
        let text = raw.trim();
        let kind = if text.is_empty() {
            PatternKind::MatchAll
        } else if text.starts_with('{') {
            PatternKind::Json(JsonParser::new(text)?.parse_pattern()?)
        } else if text.starts_with('[') || text.starts_with('%') {
            return Err(invalid_pattern());
        } else {
            PatternKind::Terms(parse_terms(text)?)
        };
        Ok(Self { kind })
    }

    /// Whether a log event's message matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.kind {
            PatternKind::MatchAll => true,
            PatternKind::Terms(terms) => terms.matches(message),
            PatternKind::Json(expr) => match serde_json::from_str::<Value>(message) {
                Ok(document @ Value::Object(_)) => expr.matches(&document),
                _ => false,
            },
        }
    }
}

impl TermPattern {
    fn matches(&self, message: &str) -> bool {
        self.required
            .iter()
            .all(|term| message.contains(term.as_str()))
            && !self
                .excluded
                .iter()
                .any(|term| message.contains(term.as_str()))
            && (self.any_of.is_empty()
                || self
                    .any_of
                    .iter()
                    .any(|term| message.contains(term.as_str())))
    }
}

fn parse_terms(text: &str) -> Result<TermPattern, PatternError> {
    let mut pattern = TermPattern::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let modifier = match first {
            '?' | '-' => {
                chars.next();
                Some(first)
            }
            _ => None,
        };
        let term = if chars.peek() == Some(&'"') {
            chars.next();
            let mut term = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => term.extend(chars.next()),
                    Some(c) => term.push(c),
                    None => return Err(invalid_pattern()),
                }
            }
            term
        } else {
            let mut term = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                term.push(c);
            }
            term
        };
        if term.is_empty() {
            return Err(invalid_pattern());
        }
        match modifier {
            Some('?') => pattern.any_of.push(term),
            Some(_) => pattern.excluded.push(term),
            None => pattern.required.push(term),
        }
    }
    Ok(pattern)
}

impl JsonExpr {
    fn matches(&self, document: &Value) -> bool {
        match self {
            Self::Or(left, right) => left.matches(document) || right.matches(document),
            Self::And(left, right) => left.matches(document) && right.matches(document),
            Self::NotExists(selector) => select(document, selector).is_none(),
            Self::Is { selector, expected } => matches!(
                (select(document, selector), expected),
                (Some(Value::Bool(true)), IsValue::True)
                    | (Some(Value::Bool(false)), IsValue::False)
                    | (Some(Value::Null), IsValue::Null)
            ),
            Self::Compare {
                selector,
                op,
                value,
            } => select(document, selector).is_some_and(|field| compare(field, *op, value)),
        }
    }
}

fn select<'a>(document: &'a Value, selector: &[PathStep]) -> Option<&'a Value> {
    selector
        .iter()
        .try_fold(document, |value, step| match step {
            PathStep::Key(key) => value.get(key.as_str()),
            PathStep::Index(index) => value.get(*index),
        })
}

fn compare(field: &Value, op: CompareOp, literal: &Literal) -> bool {
    match (field, literal) {
        (Value::Number(number), Literal::Number(expected)) => {
            let Some(actual) = number.as_f64() else {
                return false;
            };
            match op {
                CompareOp::Eq => actual == *expected,
                CompareOp::Ne => actual != *expected,
                CompareOp::Lt => actual < *expected,
                CompareOp::Le => actual <= *expected,
                CompareOp::Gt => actual > *expected,
                CompareOp::Ge => actual >= *expected,
            }
        }
        (Value::String(_) | Value::Bool(_) | Value::Number(_), _)
            if matches!(op, CompareOp::Eq | CompareOp::Ne) =>
        {
            let actual = match field {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let expected = match literal {
                Literal::Text(text) => text.clone(),
                Literal::Number(number) => number.to_string(),
            };
            (op == CompareOp::Eq) == glob_match(&expected, &actual)
        }
        _ => false,
    }
}

/// `*` matches any run of characters (CloudWatch string wildcards); everything else is literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some(split) => split,
        None => return true,
    };
    for part in middle {
        match remaining.find(part) {
            Some(position) => remaining = &remaining[position + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    OpenBrace,
    CloseBrace,
    OpenParen,
    CloseParen,
    And,
    Or,
    Op(CompareOp),
    Selector(Vec<PathStep>),
    Quoted(String),
    Word(String),
}

struct JsonParser {
    tokens: Vec<Token>,
    position: usize,
    /// Parentheses open around the current position (bounded by MAX_PATTERN_NESTING).
    depth: usize,
}

impl JsonParser {
    fn new(text: &str) -> Result<Self, PatternError> {
        Ok(Self {
            tokens: tokenize(text)?,
            position: 0,
            depth: 0,
        })
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn expect(&mut self, expected: &Token) -> Result<(), PatternError> {
        match self.next() {
            Some(token) if &token == expected => Ok(()),
            _ => Err(invalid_pattern()),
        }
    }

    fn parse_pattern(mut self) -> Result<JsonExpr, PatternError> {
        self.expect(&Token::OpenBrace)?;
        let expr = self.parse_or()?;
        self.expect(&Token::CloseBrace)?;
        if self.peek().is_some() {
            return Err(invalid_pattern());
        }
        Ok(expr)
    }

    fn parse_or(&mut self) -> Result<JsonExpr, PatternError> {
        let mut left = self.parse_and()?;
        while self.peek() == Some(&Token::Or) {
            self.next();
            left = JsonExpr::Or(Box::new(left), Box::new(self.parse_and()?));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<JsonExpr, PatternError> {
        let mut left = self.parse_primary()?;
        while self.peek() == Some(&Token::And) {
            self.next();
            left = JsonExpr::And(Box::new(left), Box::new(self.parse_primary()?));
        }
        Ok(left)
    }

    fn parse_primary(&mut self) -> Result<JsonExpr, PatternError> {
        match self.next() {
            Some(Token::OpenParen) => {
                if self.depth >= MAX_PATTERN_NESTING {
                    return Err(PatternError::new(format!(
                        "Invalid filter pattern: parentheses nest deeper than {MAX_PATTERN_NESTING}"
                    )));
                }
                self.depth += 1;
                let expr = self.parse_or()?;
                self.depth -= 1;
                self.expect(&Token::CloseParen)?;
                Ok(expr)
            }
            Some(Token::Selector(selector)) => self.parse_condition(selector),
            _ => Err(invalid_pattern()),
        }
    }

    fn parse_condition(&mut self, selector: Vec<PathStep>) -> Result<JsonExpr, PatternError> {
        match self.next() {
            Some(Token::Op(op)) => {
                let value = match self.next() {
                    Some(Token::Quoted(text)) => Literal::Text(text),
                    Some(Token::Word(word)) => match word.parse::<f64>() {
                        Ok(number) => Literal::Number(number),
                        Err(_) => Literal::Text(word),
                    },
                    _ => return Err(invalid_pattern()),
                };
                if matches!(value, Literal::Text(_)) && !matches!(op, CompareOp::Eq | CompareOp::Ne)
                {
                    return Err(invalid_pattern());
                }
                Ok(JsonExpr::Compare {
                    selector,
                    op,
                    value,
                })
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("IS") => {
                let expected = match self.next() {
                    Some(Token::Word(word)) if word.eq_ignore_ascii_case("TRUE") => IsValue::True,
                    Some(Token::Word(word)) if word.eq_ignore_ascii_case("FALSE") => IsValue::False,
                    Some(Token::Word(word)) if word.eq_ignore_ascii_case("NULL") => IsValue::Null,
                    _ => return Err(invalid_pattern()),
                };
                Ok(JsonExpr::Is { selector, expected })
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("NOT") => match self.next() {
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("EXISTS") => {
                    Ok(JsonExpr::NotExists(selector))
                }
                _ => Err(invalid_pattern()),
            },
            _ => Err(invalid_pattern()),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let next = chars.get(index + 1).copied();
        index += 1;
        let token = match (c, next) {
            (c, _) if c.is_whitespace() => continue,
            ('{', _) => Token::OpenBrace,
            ('}', _) => Token::CloseBrace,
            ('(', _) => Token::OpenParen,
            (')', _) => Token::CloseParen,
            ('&', Some('&')) => {
                index += 1;
                Token::And
            }
            ('|', Some('|')) => {
                index += 1;
                Token::Or
            }
            ('!', Some('=')) => {
                index += 1;
                Token::Op(CompareOp::Ne)
            }
            ('<', Some('=')) => {
                index += 1;
                Token::Op(CompareOp::Le)
            }
            ('>', Some('=')) => {
                index += 1;
                Token::Op(CompareOp::Ge)
            }
            ('=', _) => Token::Op(CompareOp::Eq),
            ('<', _) => Token::Op(CompareOp::Lt),
            ('>', _) => Token::Op(CompareOp::Gt),
            ('"', _) => {
                let mut value = String::new();
                loop {
                    match chars.get(index) {
                        Some('"') => {
                            index += 1;
                            break;
                        }
                        Some('\\') => {
                            value.extend(chars.get(index + 1));
                            index += 2;
                        }
                        Some(c) => {
                            value.push(*c);
                            index += 1;
                        }
                        None => return Err(invalid_pattern()),
                    }
                }
                Token::Quoted(value)
            }
            ('$', _) => {
                let start = index;
                while index < chars.len() && is_selector_char(chars[index]) {
                    index += 1;
                }
                let raw: String = chars[start..index].iter().collect();
                Token::Selector(parse_selector(&raw)?)
            }
            _ => {
                let start = index - 1;
                while index < chars.len() && is_word_char(chars[index]) {
                    index += 1;
                }
                if index == start + 1 && !is_word_char(c) {
                    return Err(invalid_pattern());
                }
                Token::Word(chars[start..index].iter().collect())
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

fn is_selector_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '[' | ']' | '$' | '@')
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '{' | '}' | '(' | ')' | '=' | '!' | '<' | '>' | '&' | '|' | '"'
        )
}

/// `.a.b[0]` after the `$`.
fn parse_selector(raw: &str) -> Result<Vec<PathStep>, PatternError> {
    let mut steps = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after_dot) = rest.strip_prefix('.') {
            let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
            let key = &after_dot[..end];
            if key.is_empty() || key == "*" {
                return Err(invalid_pattern());
            }
            steps.push(PathStep::Key(key.to_string()));
            rest = &after_dot[end..];
        } else if let Some(after_bracket) = rest.strip_prefix('[') {
            let end = after_bracket.find(']').ok_or_else(invalid_pattern)?;
            let index = after_bracket[..end]
                .parse::<usize>()
                .map_err(|_| invalid_pattern())?;
            steps.push(PathStep::Index(index));
            rest = &after_bracket[end + 1..];
        } else {
            return Err(invalid_pattern());
        }
    }
    if steps.is_empty() {
        return Err(invalid_pattern());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(Some(pattern))
            .unwrap()
            .matches(message)
    }

    #[test]
    fn empty_pattern_matches_everything() {
        assert!(FilterPattern::parse(None).unwrap().matches("anything"));
        assert!(matches("  ", ""));
    }

    #[test]
    fn terms_are_and_ed_case_sensitive_substrings() {
        assert!(matches("ERROR disk", "ERROR: disk full"));
        assert!(!matches("ERROR disk", "ERROR: memory"));
        assert!(!matches("error", "ERROR"));
        assert!(matches("\"disk full\"", "ERROR: disk full"));
        assert!(!matches("\"disk full\"", "full disk"));
    }

    #[test]
    fn optional_and_excluded_terms() {
        assert!(matches("?ERROR ?WARN", "WARN low battery"));
        assert!(!matches("?ERROR ?WARN", "INFO ok"));
        assert!(matches("ERROR -timeout", "ERROR disk"));
        assert!(!matches("ERROR -timeout", "ERROR timeout"));
    }

    #[test]
    fn json_string_equality_with_wildcards() {
        let record = r#"{"clientId":"pi-1","disconnectReason":"MQTT_KEEP_ALIVE_TIMEOUT","n":3,"ok":true,"list":["a","b"],"nested":{"x":null}}"#;
        assert!(matches(r#"{ $.clientId = "pi-1" }"#, record));
        assert!(!matches(r#"{ $.clientId = "pi-2" }"#, record));
        assert!(matches(r#"{ $.clientId != "pi-2" }"#, record));
        assert!(matches(r#"{ $.disconnectReason = "MQTT_*" }"#, record));
        assert!(matches(r#"{ $.disconnectReason = *TIMEOUT }"#, record));
        assert!(!matches(r#"{ $.disconnectReason = "CLIENT*" }"#, record));
        assert!(matches(r#"{ $.list[1] = "b" }"#, record));
        assert!(matches(r#"{ $.nested.x IS NULL }"#, record));
        assert!(matches(r#"{ $.ok IS TRUE }"#, record));
        assert!(matches(r#"{ $.missing NOT EXISTS }"#, record));
        assert!(!matches(r#"{ $.clientId NOT EXISTS }"#, record));
    }

    #[test]
    fn json_numbers_and_boolean_operators() {
        let record = r#"{"latency":120,"status":"FAIL","region":"eu"}"#;
        assert!(matches("{ $.latency > 100 }", record));
        assert!(!matches("{ $.latency <= 100 }", record));
        assert!(matches("{ $.latency = 120 }", record));
        assert!(matches(
            r#"{ ($.status = "FAIL" || $.status = "ERROR") && $.latency >= 120 }"#,
            record
        ));
        assert!(!matches(r#"{ $.status = "OK" && $.latency > 1 }"#, record));
        assert!(!matches(r#"{ $.status = "FAIL" }"#, "not json"));
    }

    #[test]
    fn unsupported_and_broken_patterns_are_refused() {
        for pattern in [
            "[ip, user]",
            "%ERR.*%",
            "{ $.a = }",
            "{ $.a = \"x\"",
            "{ $.* = 1 }",
            "{ $.a > \"x\" }",
            "\"unterminated",
        ] {
            assert!(
                FilterPattern::parse(Some(pattern)).is_err(),
                "{pattern} should be refused"
            );
        }
    }

    /// 1,000 nested parentheses overflowed the parser's stack and aborted the whole emulator (issue 13). The
    /// parse runs on a small thread stack, so a depth bound that stopped working would overflow here too.
    #[test]
    fn deeply_nested_and_overlong_patterns_are_refused_not_a_crash() {
        let nested =
            |depth: usize| format!("{{ {}$.a = 1{} }}", "(".repeat(depth), ")".repeat(depth));
        let parse_on_small_stack = |pattern: String| {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || FilterPattern::parse(Some(&pattern)).map(|_| ()))
                .unwrap()
                .join()
                .expect("parsing must not overflow the stack")
        };
        assert!(parse_on_small_stack(nested(MAX_PATTERN_NESTING)).is_ok());
        let too_deep = parse_on_small_stack(nested(MAX_PATTERN_NESTING + 1)).unwrap_err();
        assert!(too_deep.to_string().contains("nest deeper"), "{too_deep}");
        // Within the length limit, but deep enough to overflow 256 KiB without the bound.
        assert!(parse_on_small_stack(nested(480)).is_err());

        let longest = "x".repeat(MAX_FILTER_PATTERN_CHARS);
        assert!(FilterPattern::parse(Some(&longest)).is_ok());
        let overlong = "x".repeat(MAX_FILTER_PATTERN_CHARS + 1);
        let refused = FilterPattern::parse(Some(&overlong)).unwrap_err();
        assert!(refused.to_string().contains("1024"), "{refused}");
    }
}

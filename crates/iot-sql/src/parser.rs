//! Recursive-descent parser for the AWS IoT SQL subset (reference 5.2).
//!
//! Precedence, lowest first: `OR`, `AND`, `NOT`, comparisons (`= <> < <= > >=`), `+ -`, `* / %`,
//! unary `-`, then postfix `.name` and `[index]`.

use crate::ast::{BinaryOp, CastType, Expr, KeyPath, Projection, Query, SelectItem, Source};
use crate::error::{ParseError, ParseErrorKind};
use crate::functions::{Function, Lookup};
use crate::lexer::{Token, TokenKind, tokenize};
use crate::topic::validate_topic_filter;
use crate::value::SqlValue;
use crate::version::SqlVersion;

/// Words that cannot be used as bare payload names. `VALUE` is contextual (only right after SELECT),
/// so a payload key called `value` still works.
const RESERVED: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "CASE", "WHEN", "THEN", "ELSE", "END",
    "TRUE", "FALSE", "NULL",
];

/// Keywords of other SQL dialects that get a targeted error message instead of a generic one.
const FOREIGN_OPERATORS: &[(&str, &str, &str)] = &[
    ("IN", "IN", "compare with = and combine with OR"),
    (
        "LIKE",
        "LIKE",
        "use startswith(), endswith() or regexp functions",
    ),
    ("BETWEEN", "BETWEEN", "use >= AND <="),
    ("IS", "IS", "use isNull() or isUndefined()"),
];

pub(crate) fn parse_rule(sql: &str, version: SqlVersion) -> Result<Query, ParseError> {
    let mut parser = Parser::new(sql, version)?;
    let query = parser.query(true)?;
    parser.expect_end()?;
    Ok(query)
}

/// One expression on its own, as inside a substitution template's `${...}` (reference 5.10).
pub(crate) fn parse_expression(text: &str, version: SqlVersion) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(text, version)?;
    let expr = parser.expression()?;
    if parser.peek().kind != TokenKind::Eof {
        return Err(parser.unexpected("'}' after the expression"));
    }
    Ok(expr)
}

struct Parser<'s> {
    sql: &'s str,
    tokens: Vec<Token>,
    position: usize,
    version: SqlVersion,
    /// Current recursion depth, bounded by [`MAX_NESTING`] so that hostile SQL cannot overflow the stack.
    depth: usize,
}

/// Far deeper than any real rule (AWS caps a rule at 256 KB, reference 5.1), shallow enough for any stack.
const MAX_NESTING: usize = 128;

impl<'s> Parser<'s> {
    fn new(sql: &'s str, version: SqlVersion) -> Result<Self, ParseError> {
        Ok(Parser {
            sql,
            tokens: tokenize(sql)?,
            position: 0,
            version,
            depth: 0,
        })
    }

    // ----- token helpers -------------------------------------------------------------------------

    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `advance` never moves past it.
        &self.tokens[self.position.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &TokenKind {
        &self.tokens[(self.position + ahead).min(self.tokens.len() - 1)].kind
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.position += 1;
        }
        token
    }

    fn is_keyword(kind: &TokenKind, keyword: &str) -> bool {
        matches!(kind, TokenKind::Ident(name) if name.eq_ignore_ascii_case(keyword))
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        Self::is_keyword(&self.peek().kind, keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = &self.peek().kind == kind;
        if found {
            self.advance();
        }
        found
    }

    fn error_here(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.sql, self.peek().offset, kind)
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        let token = self.peek();
        if let TokenKind::Unknown(character) = token.kind {
            return self.error_here(ParseErrorKind::UnexpectedCharacter(character));
        }
        if let Some(error) = self.foreign_operator_error(&token.kind) {
            return error;
        }
        ParseError::new(
            self.sql,
            token.offset,
            ParseErrorKind::UnexpectedToken {
                expected: expected.to_string(),
                found: token.kind.describe(),
            },
        )
    }

    fn foreign_operator_error(&self, kind: &TokenKind) -> Option<ParseError> {
        let (operator, hint) = match kind {
            TokenKind::BangEqual => ("!=", "use <>"),
            TokenKind::DoublePipe => ("||", "use + or concat()"),
            TokenKind::Ident(name) => FOREIGN_OPERATORS
                .iter()
                .find(|(keyword, _, _)| name.eq_ignore_ascii_case(keyword))
                .map(|&(_, operator, hint)| (operator, hint))?,
            _ => return None,
        };
        Some(self.error_here(ParseErrorKind::UnsupportedOperator { operator, hint }))
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<(), ParseError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.unexpected(&kind.describe()))
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), ParseError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(keyword))
        }
    }

    fn expect_end(&mut self) -> Result<(), ParseError> {
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.unexpected("WHERE or end of input"))
        }
    }

    fn require_version(&self, offset: usize, feature: &str) -> Result<(), ParseError> {
        if self.version >= SqlVersion::V2016_03_23 {
            Ok(())
        } else {
            Err(ParseError::new(
                self.sql,
                offset,
                ParseErrorKind::NotInVersion {
                    feature: feature.to_string(),
                    version: self.version,
                },
            ))
        }
    }

    /// A name: any identifier that is not reserved.
    fn name(&mut self, expected: &str) -> Result<String, ParseError> {
        match &self.peek().kind {
            TokenKind::Ident(name)
                if !RESERVED.iter().any(|word| name.eq_ignore_ascii_case(word)) =>
            {
                let name = name.clone();
                self.advance();
                Ok(name)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    /// After `.`, any identifier is a key, even a reserved word: `state.desired.value`, `a.end`.
    fn member_name(&mut self) -> Result<String, ParseError> {
        if let TokenKind::Ident(name) = &self.peek().kind {
            let name = name.clone();
            self.advance();
            Ok(name)
        } else {
            Err(self.unexpected("a key name after '.'"))
        }
    }

    // ----- statements ----------------------------------------------------------------------------

    /// `SELECT ... [FROM ...] [WHERE ...]`. The rule's FROM is a single-quoted topic filter (and may
    /// be omitted for Basic-Ingest-only rules, reference 5.9); a nested query's FROM is an expression.
    fn query(&mut self, top_level: bool) -> Result<Query, ParseError> {
        self.expect_keyword("SELECT")?;
        let projection = self.projection()?;
        let source = if self.eat_keyword("FROM") {
            if top_level {
                Source::Topic(Some(self.topic_filter()?))
            } else {
                Source::Value(self.expression()?)
            }
        } else if top_level {
            Source::Topic(None)
        } else {
            return Err(self.unexpected("FROM"));
        };
        let condition = if self.eat_keyword("WHERE") {
            Some(self.expression()?)
        } else {
            None
        };
        Ok(Query {
            projection,
            source,
            condition,
        })
    }

    fn topic_filter(&mut self) -> Result<String, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Str { value, quote: '\'' } => {
                validate_topic_filter(&value).map_err(|error| {
                    ParseError::new(
                        self.sql,
                        token.offset,
                        ParseErrorKind::InvalidTopicFilter(error),
                    )
                })?;
                self.advance();
                Ok(value)
            }
            _ => Err(self.error_here(ParseErrorKind::FromNeedsSingleQuotes)),
        }
    }

    fn projection(&mut self) -> Result<Projection, ParseError> {
        if self.at_value_keyword() {
            self.advance();
            let expr = if self.peek().kind == TokenKind::Star {
                self.advance();
                Expr::Wildcard
            } else {
                self.expression()?
            };
            if self.peek().kind == TokenKind::Comma {
                return Err(self.unexpected("FROM (SELECT VALUE takes exactly one expression)"));
            }
            return Ok(Projection::Value(expr));
        }
        let mut items = Vec::new();
        loop {
            let position = items.len() + 1;
            items.push(self.select_item(position)?);
            if !self.eat(&TokenKind::Comma) {
                return Ok(Projection::Items(items));
            }
        }
    }

    /// `VALUE` is a keyword only when an expression follows it, so `SELECT value FROM 'a'` and
    /// `SELECT value AS v` still select the payload key `value`.
    fn at_value_keyword(&self) -> bool {
        if !self.at_keyword("VALUE") {
            return false;
        }
        match self.peek_at(1) {
            TokenKind::Ident(name) => !["FROM", "AS", "WHERE", "AND", "OR"]
                .iter()
                .any(|word| name.eq_ignore_ascii_case(word)),
            TokenKind::Star => {
                matches!(self.peek_at(2), TokenKind::Eof)
                    || Self::is_keyword(self.peek_at(2), "FROM")
            }
            // `SELECT VALUE -x` is far likelier than an unaliased `value - x`.
            TokenKind::Minus
            | TokenKind::Number(_)
            | TokenKind::Str { .. }
            | TokenKind::LeftParen
            | TokenKind::LeftBracket
            | TokenKind::LeftBrace => true,
            _ => false,
        }
    }

    fn select_item(&mut self, position: usize) -> Result<SelectItem, ParseError> {
        if self.peek().kind == TokenKind::Star {
            self.advance();
            return Ok(if self.eat_keyword("AS") {
                SelectItem::WildcardAs(self.key_path()?)
            } else {
                SelectItem::Wildcard
            });
        }
        let call_name = match (&self.peek().kind, self.peek_at(1)) {
            (TokenKind::Ident(name), TokenKind::LeftParen) => Some(name.clone()),
            _ => None,
        };
        let expr = self.expression()?;
        let key = if self.eat_keyword("AS") {
            self.key_path()?
        } else {
            vec![derived_key(&expr, call_name, position)]
        };
        Ok(SelectItem::Expr { expr, key })
    }

    /// `AS a.b.c` nests the value that deep in the output, which is converted and dropped recursively: a chain.
    fn key_path(&mut self) -> Result<KeyPath, ParseError> {
        let mut path = vec![self.name("an alias after AS")?];
        let mut links = 0;
        while self.eat(&TokenKind::Dot) {
            self.link(&mut links)?;
            path.push(self.member_name()?);
        }
        self.depth -= links;
        Ok(path)
    }

    // ----- expressions ---------------------------------------------------------------------------

    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.nested(Self::or)
    }

    /// Runs one level of recursive descent, refusing to go deeper than [`MAX_NESTING`].
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(self.error_here(ParseErrorKind::TooDeeplyNested));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// One more link of a chain (`a OR b OR c`, `1+2+3`, `a.b.c`, `AS a.b.c`), counted in `links` so that the chain
    /// gives its levels back at its end (an error ends the whole parse, so a failed chain need not). The parser
    /// loops over a chain, but the tree it builds is as deep as the chain is long, and evaluating, converting or
    /// dropping a tree recurses once per level: a rule of 30,000 `+1` overflowed the stack of the thread that
    /// evaluated it (issue 13). So a link counts against [`MAX_NESTING`] like a parenthesis.
    fn link(&mut self, links: &mut usize) -> Result<(), ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(self.error_here(ParseErrorKind::TooDeeplyNested));
        }
        self.depth += 1;
        *links += 1;
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        let mut links = 0;
        while self.eat_keyword("OR") {
            self.link(&mut links)?;
            let right = self.and()?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(right));
        }
        self.depth -= links;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        let mut links = 0;
        while self.eat_keyword("AND") {
            self.link(&mut links)?;
            let right = self.not()?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(right));
        }
        self.depth -= links;
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.nested(Self::not)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.additive()?;
        let mut links = 0;
        loop {
            let op = match self.peek().kind {
                TokenKind::Equal => BinaryOp::Equal,
                TokenKind::NotEqual => BinaryOp::NotEqual,
                TokenKind::Less => BinaryOp::Less,
                TokenKind::LessEqual => BinaryOp::LessEqual,
                TokenKind::Greater => BinaryOp::Greater,
                TokenKind::GreaterEqual => BinaryOp::GreaterEqual,
                ref other => match self.foreign_operator_error(other) {
                    Some(error) => return Err(error),
                    None => break,
                },
            };
            self.advance();
            self.link(&mut links)?;
            let right = self.additive()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth -= links;
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.multiplicative()?;
        let mut links = 0;
        loop {
            let op = match self.peek().kind {
                TokenKind::Plus => BinaryOp::Add,
                TokenKind::Minus => BinaryOp::Subtract,
                _ => break,
            };
            self.advance();
            self.link(&mut links)?;
            let right = self.multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth -= links;
        Ok(left)
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        let mut links = 0;
        loop {
            let op = match self.peek().kind {
                TokenKind::Star => BinaryOp::Multiply,
                TokenKind::Slash => BinaryOp::Divide,
                TokenKind::Percent => BinaryOp::Modulo,
                _ => break,
            };
            self.advance();
            self.link(&mut links)?;
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth -= links;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat(&TokenKind::Minus) {
            return Ok(match self.nested(Self::unary)? {
                // Fold negative literals so `-5` is the Int -5, not an expression.
                Expr::Literal(SqlValue::Int(int)) => Expr::Literal(
                    int.checked_neg()
                        .map_or(SqlValue::Decimal(-(int as f64)), SqlValue::Int),
                ),
                Expr::Literal(SqlValue::Decimal(decimal)) => {
                    Expr::Literal(SqlValue::Decimal(-decimal))
                }
                other => Expr::Negate(Box::new(other)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.primary()?;
        let mut links = 0;
        loop {
            if self.eat(&TokenKind::Dot) {
                self.link(&mut links)?;
                expr = Expr::Member(Box::new(expr), self.member_name()?);
            } else if self.eat(&TokenKind::LeftBracket) {
                self.link(&mut links)?;
                let index = self.expression()?;
                self.expect(&TokenKind::RightBracket)?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                break;
            }
        }
        self.depth -= links;
        Ok(expr)
    }

    /// Only dispatches: its frame is on the stack once per nesting level, so the arms that need room of their own
    /// (in a debug build, a few KiB) live in functions of their own, off the recursive path.
    fn primary(&mut self) -> Result<Expr, ParseError> {
        match &self.peek().kind {
            TokenKind::LeftParen => self.parenthesized(),
            TokenKind::LeftBracket => self.array_literal(),
            TokenKind::LeftBrace => self.object_literal(),
            TokenKind::Ident(name) if name.eq_ignore_ascii_case("CASE") => self.case(),
            TokenKind::Ident(name)
                if !is_constant_name(name) && self.peek_at(1) == &TokenKind::LeftParen =>
            {
                self.call()
            }
            _ => self.atom(),
        }
    }

    /// `( expression )` or a nested object query `(SELECT ...)`.
    fn parenthesized(&mut self) -> Result<Expr, ParseError> {
        let open = self.advance();
        if self.at_keyword("SELECT") {
            self.require_version(open.offset, "a nested object query")?;
            let query = self.query(false)?;
            self.expect(&TokenKind::RightParen)?;
            return Ok(Expr::Subquery(Box::new(query)));
        }
        let inner = self.expression()?;
        self.expect(&TokenKind::RightParen)?;
        Ok(inner)
    }

    fn array_literal(&mut self) -> Result<Expr, ParseError> {
        self.require_version(self.peek().offset, "an array literal")?;
        self.advance();
        let items = self.list(&TokenKind::RightBracket, Self::expression)?;
        Ok(Expr::Array(items))
    }

    fn object_literal(&mut self) -> Result<Expr, ParseError> {
        self.require_version(self.peek().offset, "an object literal")?;
        self.advance();
        let entries = self.list(&TokenKind::RightBrace, Self::object_entry)?;
        Ok(Expr::Object(entries))
    }

    /// A literal number, string, `TRUE`/`FALSE`/`NULL`, or a payload field.
    fn atom(&mut self) -> Result<Expr, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Number(text) => {
                self.advance();
                Ok(Expr::Literal(number_literal(&text).ok_or_else(|| {
                    ParseError::new(self.sql, token.offset, ParseErrorKind::InvalidNumber)
                })?))
            }
            TokenKind::Str { value, .. } => {
                self.advance();
                Ok(Expr::Literal(SqlValue::String(value)))
            }
            TokenKind::Ident(ref name) => {
                let upper = name.to_ascii_uppercase();
                match upper.as_str() {
                    "TRUE" | "FALSE" => {
                        self.advance();
                        Ok(Expr::Literal(SqlValue::Bool(upper == "TRUE")))
                    }
                    "NULL" => {
                        self.advance();
                        Ok(Expr::Literal(SqlValue::Null))
                    }
                    _ => Ok(Expr::Field(self.name("an expression")?)),
                }
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// Comma-separated items up to `close`, which is consumed; an empty list is allowed.
    fn list<T>(
        &mut self,
        close: &TokenKind,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(close) {
                return Ok(items);
            }
            if !self.eat(&TokenKind::Comma) {
                return Err(self.unexpected(&format!("',' or {}", close.describe())));
            }
        }
    }

    /// `'key': expr` inside an object literal; keys are strings, as in JSON (AWS "Literals").
    fn object_entry(&mut self) -> Result<(String, Expr), ParseError> {
        let key = match &self.peek().kind {
            TokenKind::Str { value, .. } => value.clone(),
            _ => return Err(self.unexpected("a quoted object key")),
        };
        self.advance();
        self.expect(&TokenKind::Colon)?;
        Ok((key, self.expression()?))
    }

    /// `CASE v WHEN t THEN r ... [ELSE e] END`, at least one WHEN (AWS "Case statements").
    fn case(&mut self) -> Result<Expr, ParseError> {
        self.expect_keyword("CASE")?;
        let operand = self.expression()?;
        let mut branches = Vec::new();
        while self.eat_keyword("WHEN") {
            let when = self.expression()?;
            self.expect_keyword("THEN")?;
            branches.push((when, self.expression()?));
        }
        if branches.is_empty() {
            return Err(self.unexpected("WHEN"));
        }
        let otherwise = if self.eat_keyword("ELSE") {
            Some(Box::new(self.expression()?))
        } else {
            None
        };
        self.expect_keyword("END")?;
        Ok(Expr::Case {
            operand: Box::new(operand),
            branches,
            otherwise,
        })
    }

    fn call(&mut self) -> Result<Expr, ParseError> {
        let token = self.advance();
        let TokenKind::Ident(name) = token.kind else {
            return Err(self.unexpected("a function name"));
        };
        let error_at_name = |kind| ParseError::new(self.sql, token.offset, kind);
        self.expect(&TokenKind::LeftParen)?;
        if name.eq_ignore_ascii_case("cast") {
            return self.cast();
        }
        let function = match Function::lookup(&name) {
            Lookup::Implemented(function) => function,
            Lookup::NotImplemented => {
                return Err(error_at_name(ParseErrorKind::UnsupportedFunction(name)));
            }
            Lookup::Unknown => return Err(error_at_name(ParseErrorKind::UnknownFunction(name))),
        };
        if function.min_version() > self.version {
            return Err(error_at_name(ParseErrorKind::NotInVersion {
                feature: format!("function {name}()"),
                version: self.version,
            }));
        }
        let args = self.list(&TokenKind::RightParen, Self::argument)?;
        Ok(Expr::Call(function, args))
    }

    /// A function argument; a lone `*` is the whole payload (`encode(*, 'base64')`, `get(*, "k-1")`).
    fn argument(&mut self) -> Result<Expr, ParseError> {
        if self.peek().kind == TokenKind::Star
            && matches!(self.peek_at(1), TokenKind::Comma | TokenKind::RightParen)
        {
            self.advance();
            return Ok(Expr::Wildcard);
        }
        self.expression()
    }

    /// `cast(value AS type)`; Decimal and Bool/Boolean targets need 2016-03-23 (AWS "cast").
    fn cast(&mut self) -> Result<Expr, ParseError> {
        let value = self.expression()?;
        self.expect_keyword("AS")?;
        let type_token = self.peek().clone();
        let TokenKind::Ident(type_name) = type_token.kind else {
            return Err(self.unexpected("a type name"));
        };
        let target = match type_name.to_ascii_lowercase().as_str() {
            "string" | "nvarchar" | "text" | "ntext" | "varchar" => CastType::String,
            "int" | "integer" => CastType::Int,
            "double" => CastType::Double,
            "decimal" => CastType::Decimal,
            "bool" | "boolean" => CastType::Boolean,
            _ => {
                return Err(ParseError::new(
                    self.sql,
                    type_token.offset,
                    ParseErrorKind::UnknownCastType(type_name),
                ));
            }
        };
        if matches!(target, CastType::Decimal | CastType::Boolean) {
            self.require_version(type_token.offset, &format!("cast to {type_name}"))?;
        }
        self.advance();
        self.expect(&TokenKind::RightParen)?;
        Ok(Expr::Cast(Box::new(value), target))
    }
}

/// Integer literals are Int (falling back to Decimal beyond 64 bits); anything with a fraction or
/// exponent is Decimal.
/// `TRUE`, `FALSE` and `NULL` are literals even before a `(`.
fn is_constant_name(name: &str) -> bool {
    ["TRUE", "FALSE", "NULL"]
        .iter()
        .any(|constant| name.eq_ignore_ascii_case(constant))
}

fn number_literal(text: &str) -> Option<SqlValue> {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(int) = text.parse::<i64>()
    {
        return Some(SqlValue::Int(int));
    }
    text.parse::<f64>()
        .ok()
        .filter(|decimal| decimal.is_finite())
        .map(SqlValue::Decimal)
}

/// The key of an unaliased SELECT item: the last path segment (`state.reported.temp` → `temp`) or
/// the function name as written (reference 5.2, [OBS]); for any other expression AWS's naming is not
/// documented, so we use `_<position>` (1-based) [INF].
fn derived_key(expr: &Expr, call_name: Option<String>, position: usize) -> String {
    match expr {
        Expr::Field(name) | Expr::Member(_, name) => name.clone(),
        Expr::Index(base, _) => derived_key(base, None, position),
        Expr::Call(..) | Expr::Cast(..) => call_name.unwrap_or_else(|| format!("_{position}")),
        _ => format!("_{position}"),
    }
}

//! Turns rule SQL into tokens, each with the byte offset where it starts so parse errors can point at it.

use crate::error::{ParseError, ParseErrorKind};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A name or a keyword; keywords are recognised by the parser, case-insensitively.
    Ident(String),
    /// The literal's text; the parser decides between Int and Decimal.
    Number(String),
    /// A string literal; AWS SQL accepts both quote styles for strings (e.g. `decode(x, "base64")`),
    /// but the `FROM` topic must be single-quoted, so the quote is kept.
    Str {
        value: String,
        quote: char,
    },
    Star,
    Comma,
    Dot,
    Colon,
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    LeftBrace,
    RightBrace,
    Plus,
    Minus,
    Slash,
    Percent,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    /// `!=` is lexed only to reject it with a hint: AWS documents `<>` (reference 5.2).
    BangEqual,
    /// `||` is lexed only to reject it with a hint: AWS concatenates with `+` or `concat()`.
    DoublePipe,
    /// A character AWS SQL has no use for. It becomes an error only where the parser meets it, so
    /// that `FROM a/#` can be reported as a missing quote rather than as a stray `#`.
    Unknown(char),
    Eof,
}

impl TokenKind {
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Ident(name) => format!("'{name}'"),
            TokenKind::Number(text) => format!("number {text}"),
            TokenKind::Str { value, quote } => format!("string {quote}{value}{quote}"),
            TokenKind::Unknown(character) => format!("{character:?}"),
            TokenKind::Eof => "end of input".to_string(),
            symbol => format!("'{}'", symbol.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            TokenKind::Star => "*",
            TokenKind::Comma => ",",
            TokenKind::Dot => ".",
            TokenKind::Colon => ":",
            TokenKind::LeftParen => "(",
            TokenKind::RightParen => ")",
            TokenKind::LeftBracket => "[",
            TokenKind::RightBracket => "]",
            TokenKind::LeftBrace => "{",
            TokenKind::RightBrace => "}",
            TokenKind::Plus => "+",
            TokenKind::Minus => "-",
            TokenKind::Slash => "/",
            TokenKind::Percent => "%",
            TokenKind::Equal => "=",
            TokenKind::NotEqual => "<>",
            TokenKind::Less => "<",
            TokenKind::LessEqual => "<=",
            TokenKind::Greater => ">",
            TokenKind::GreaterEqual => ">=",
            TokenKind::BangEqual => "!=",
            TokenKind::DoublePipe => "||",
            TokenKind::Ident(_)
            | TokenKind::Number(_)
            | TokenKind::Str { .. }
            | TokenKind::Unknown(_)
            | TokenKind::Eof => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte offset of the token's first character in the SQL text.
    pub(crate) offset: usize,
}

pub(crate) fn tokenize(sql: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some(&(offset, current)) = chars.peek() {
        if current.is_whitespace() {
            chars.next();
            continue;
        }
        let kind = if current.is_ascii_alphabetic() || current == '_' {
            let mut name = String::new();
            while let Some(&(_, next)) = chars.peek() {
                if next.is_ascii_alphanumeric() || next == '_' {
                    name.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            TokenKind::Ident(name)
        } else if current.is_ascii_digit() {
            lex_number(sql, offset, &mut chars)?
        } else if current == '\'' || current == '"' {
            chars.next();
            lex_string(sql, offset, current, &mut chars)?
        } else {
            chars.next();
            let next = chars.peek().map(|&(_, next)| next);
            let (kind, two_chars) = match (current, next) {
                ('<', Some('>')) => (TokenKind::NotEqual, true),
                ('<', Some('=')) => (TokenKind::LessEqual, true),
                ('>', Some('=')) => (TokenKind::GreaterEqual, true),
                ('!', Some('=')) => (TokenKind::BangEqual, true),
                ('|', Some('|')) => (TokenKind::DoublePipe, true),
                ('<', _) => (TokenKind::Less, false),
                ('>', _) => (TokenKind::Greater, false),
                ('=', _) => (TokenKind::Equal, false),
                ('*', _) => (TokenKind::Star, false),
                (',', _) => (TokenKind::Comma, false),
                ('.', _) => (TokenKind::Dot, false),
                (':', _) => (TokenKind::Colon, false),
                ('(', _) => (TokenKind::LeftParen, false),
                (')', _) => (TokenKind::RightParen, false),
                ('[', _) => (TokenKind::LeftBracket, false),
                (']', _) => (TokenKind::RightBracket, false),
                ('{', _) => (TokenKind::LeftBrace, false),
                ('}', _) => (TokenKind::RightBrace, false),
                ('+', _) => (TokenKind::Plus, false),
                ('-', _) => (TokenKind::Minus, false),
                ('/', _) => (TokenKind::Slash, false),
                ('%', _) => (TokenKind::Percent, false),
                (other, _) => (TokenKind::Unknown(other), false),
            };
            if two_chars {
                chars.next();
            }
            kind
        };
        tokens.push(Token { kind, offset });
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        offset: sql.len(),
    });
    Ok(tokens)
}

type CharStream<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// Digits, an optional fraction (only when a digit follows the dot, so `get(x, 0).v` still works),
/// and an optional exponent.
fn lex_number(
    sql: &str,
    start: usize,
    chars: &mut CharStream<'_>,
) -> Result<TokenKind, ParseError> {
    let mut end = start;
    take_digits(chars, &mut end);
    let rest = &sql[end..];
    if rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        chars.next();
        take_digits(chars, &mut end);
    }
    let rest = &sql[end..];
    if rest.starts_with(['e', 'E']) {
        let sign = usize::from(rest[1..].starts_with(['-', '+']));
        if rest[1 + sign..].starts_with(|c: char| c.is_ascii_digit()) {
            for _ in 0..=sign {
                chars.next();
            }
            take_digits(chars, &mut end);
        } else {
            return Err(ParseError::new(sql, start, ParseErrorKind::InvalidNumber));
        }
    }
    if sql[end..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err(ParseError::new(sql, start, ParseErrorKind::InvalidNumber));
    }
    Ok(TokenKind::Number(sql[start..end].to_string()))
}

fn take_digits(chars: &mut CharStream<'_>, end: &mut usize) {
    while let Some(&(offset, next)) = chars.peek() {
        if !next.is_ascii_digit() {
            break;
        }
        *end = offset + 1;
        chars.next();
    }
}

/// A quoted string with JSON-style backslash escapes (`\'`, `\"`, `\\`, `\n`, `\t`, `\uXXXX`, ...).
fn lex_string(
    sql: &str,
    start: usize,
    quote: char,
    chars: &mut CharStream<'_>,
) -> Result<TokenKind, ParseError> {
    let mut value = String::new();
    loop {
        let Some((offset, current)) = chars.next() else {
            return Err(ParseError::new(
                sql,
                start,
                ParseErrorKind::UnterminatedString,
            ));
        };
        if current == quote {
            return Ok(TokenKind::Str { value, quote });
        }
        if current != '\\' {
            value.push(current);
            continue;
        }
        let Some((_, escaped)) = chars.next() else {
            return Err(ParseError::new(
                sql,
                start,
                ParseErrorKind::UnterminatedString,
            ));
        };
        let unescaped = match escaped {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'u' => {
                let hex: String = (0..4)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| ParseError::new(sql, offset, ParseErrorKind::InvalidEscape))?
            }
            '\\' | '/' | '\'' | '"' => escaped,
            _ => return Err(ParseError::new(sql, offset, ParseErrorKind::InvalidEscape)),
        };
        value.push(unescaped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<TokenKind> {
        tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn lexes_numbers_paths_and_operators() {
        assert_eq!(
            kinds("a.b[0].c <> 1.5e-3"),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Dot,
                TokenKind::Ident("b".into()),
                TokenKind::LeftBracket,
                TokenKind::Number("0".into()),
                TokenKind::RightBracket,
                TokenKind::Dot,
                TokenKind::Ident("c".into()),
                TokenKind::NotEqual,
                TokenKind::Number("1.5e-3".into()),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn lexes_both_quote_styles_with_escapes() {
        assert_eq!(
            kinds(r#"'it\'s' "say \"hi\"\u0041""#),
            vec![
                TokenKind::Str {
                    value: "it's".into(),
                    quote: '\''
                },
                TokenKind::Str {
                    value: "say \"hi\"A".into(),
                    quote: '"'
                },
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn reports_offsets() {
        let tokens = tokenize("SELECT  x").unwrap();
        assert_eq!(tokens[1].offset, 8);
        assert_eq!(tokens[2].offset, 9);
    }

    #[test]
    fn rejects_malformed_numbers_and_strings() {
        assert_eq!(
            tokenize("1e+").unwrap_err().kind,
            ParseErrorKind::InvalidNumber
        );
        assert_eq!(
            tokenize("12abc").unwrap_err().kind,
            ParseErrorKind::InvalidNumber
        );
        let error = tokenize("x = 'open").unwrap_err();
        assert_eq!(error.kind, ParseErrorKind::UnterminatedString);
        assert_eq!(error.offset, 4);
    }
}

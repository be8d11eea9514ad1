//! Substitution templates in action parameters, e.g. a republish topic `$$aws/things/${topic(3)}/delta`
//! (reference 5.7, 5.10).

use crate::ast::Expr;
use crate::error::{EvalError, ParseError, ParseErrorKind};
use crate::eval::{EvalContext, Evaluator, Message, Scope, strip_basic_ingest};
use crate::parser::parse_expression;
use crate::value::SqlValue;
use crate::version::SqlVersion;

/// An action parameter with `${expression}` parts. Templates are evaluated **separately** from
/// SELECT: they see the original payload, functions and operators, never SELECT's aliases (reference
/// 5.10). `$$` stands for a literal `$`, which is how a republish action reaches `$aws/...` topics
/// (reference 5.7).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    text: String,
    version: SqlVersion,
    parts: Vec<Part>,
    /// Whether a substitution names payload fields (decided once; a non-JSON payload then fails).
    refers_to_json_names: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Substitution(Expr),
}

impl Template {
    /// Parses a parameter value; expressions use the rule's SQL `version`.
    pub fn parse(text: &str, version: SqlVersion) -> Result<Template, ParseError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut position = 0;
        while let Some(dollar) = text[position..].find('$').map(|found| position + found) {
            literal.push_str(&text[position..dollar]);
            let rest = &text[dollar..];
            if rest.starts_with("$$") {
                literal.push('$');
                position = dollar + 2;
            } else if rest.starts_with("${") {
                let inner_start = dollar + 2;
                let inner_end = closing_brace(&text[inner_start..])
                    .map(|length| inner_start + length)
                    .ok_or_else(|| {
                        ParseError::new(text, dollar, ParseErrorKind::UnterminatedSubstitution)
                    })?;
                let expr =
                    parse_expression(&text[inner_start..inner_end], version).map_err(|error| {
                        ParseError::new(text, inner_start + error.offset, error.kind)
                    })?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Substitution(expr));
                position = inner_end + 1;
            } else {
                literal.push('$');
                position = dollar + 1;
            }
        }
        literal.push_str(&text[position..]);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let refers_to_json_names = parts.iter().any(|part| match part {
            Part::Substitution(expr) => expr.refers_to_json_names(),
            Part::Literal(_) => false,
        });
        Ok(Template {
            text: text.to_string(),
            version,
            parts,
            refers_to_json_names,
        })
    }

    /// The parameter as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the parameter has no substitutions (its value never changes).
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
    }

    /// Renders the parameter for one message. Each substitution is converted to a string: strings as
    /// they are, numbers and booleans in their SQL form, objects and arrays as JSON, Null as `null`,
    /// and Undefined as the empty string (reference 5.2: a lone Undefined serializes as "") [INF for Null].
    ///
    /// With a non-JSON payload a template may not refer to JSON names (reference 5.4, rule 1).
    pub fn render<C: EvalContext + ?Sized>(
        &self,
        message: &Message<'_>,
        context: &mut C,
    ) -> Result<String, EvalError> {
        if self.is_literal() {
            // Nothing to evaluate: the payload need not even be parsed.
            return Ok(self
                .parts
                .iter()
                .map(|part| match part {
                    Part::Literal(text) => text.as_str(),
                    Part::Substitution(_) => "",
                })
                .collect());
        }
        let parsed = serde_json::from_slice::<SqlValue>(message.payload).ok();
        if parsed.is_none() && self.refers_to_json_names {
            return Err(EvalError::BinaryPayloadReferencesJsonNames);
        }
        let document = parsed.unwrap_or(SqlValue::Undefined);
        let mut evaluator = Evaluator {
            message,
            topic: strip_basic_ingest(message.topic).0,
            version: self.version,
            context,
        };
        let scope = Scope {
            document: &document,
            top_level: true,
        };
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => rendered.push_str(text),
                Part::Substitution(expr) => match evaluator.eval(expr, scope) {
                    SqlValue::Undefined => {}
                    SqlValue::Null => rendered.push_str("null"),
                    value => rendered.push_str(&value.to_sql_string().unwrap_or_default()),
                },
            }
        }
        Ok(rendered)
    }
}

/// Length of a `${...}` body up to its closing brace, skipping braces inside quoted strings and
/// nested object literals.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (offset, character) in body.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == open {
                quote = None;
            }
            continue;
        }
        match character {
            '\'' | '"' => quote = Some(character),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(offset),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

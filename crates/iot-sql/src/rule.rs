//! A parsed rule: its topic filter, and evaluation of one message into the actions' payload.

use crate::ast::{Expr, Projection, Query, SelectItem, Source};
use crate::error::{EvalError, ParseError};
use crate::eval::{EvalContext, Evaluator, Message, Output, Scope, strip_basic_ingest};
use crate::parser::parse_rule;
use crate::topic::matches_valid_filter;
use crate::value::SqlValue;
use crate::version::SqlVersion;

/// A rule's SQL statement, parsed once and evaluated per message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    sql: String,
    version: SqlVersion,
    query: Query,
    binary_payloads: BinaryPayloads,
}

/// What a non-JSON payload may do with this rule, decided once at parse time (reference 5.4).
#[derive(Debug, Clone, PartialEq)]
enum BinaryPayloads {
    /// `SELECT *` (or `SELECT VALUE *`): the raw bytes pass through.
    PassThrough,
    /// SELECT has only functions, e.g. `encode(*, 'base64') AS data, timestamp() AS ts`.
    FunctionsOnly,
    Refused(EvalError),
}

impl Rule {
    /// Parses `sql` as AWS would for a rule created with `version` (use `SqlVersion::default()`,
    /// 2015-10-08, when the rule omits `awsIotSqlVersion`, reference 5.1).
    pub fn parse(sql: &str, version: SqlVersion) -> Result<Rule, ParseError> {
        let query = parse_rule(sql, version)?;
        let binary_payloads = binary_payloads(&query);
        Ok(Rule {
            sql: sql.to_string(),
            version,
            query,
            binary_payloads,
        })
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn version(&self) -> SqlVersion {
        self.version
    }

    /// The FROM topic filter; `None` for a rule that only Basic Ingest can trigger (reference 5.9).
    pub fn topic_filter(&self) -> Option<&str> {
        match &self.query.source {
            Source::Topic(filter) => filter.as_deref(),
            Source::Value(_) => None,
        }
    }

    /// Whether a message published to `topic` triggers the rule through the broker, with AWS's
    /// matching (reference 6.1, 6.2; see [`crate::topic_matches`]).
    pub fn matches_topic(&self, topic: &str) -> bool {
        self.topic_filter()
            .is_some_and(|filter| matches_valid_filter(filter, topic))
    }

    /// Runs the rule on one message. `Ok(None)` means no action runs: the topic does not match
    /// the FROM filter, or WHERE was not true. WHERE runs before SELECT and cannot see SELECT's
    /// aliases (reference 5.2).
    ///
    /// A Basic Ingest topic (`$aws/rules/<rule>/...`) is taken to be addressed to this rule:
    /// FROM is not consulted, and routing by rule name is the caller's job (reference 5.9).
    pub fn evaluate<C: EvalContext + ?Sized>(
        &self,
        message: &Message<'_>,
        context: &mut C,
    ) -> Result<Option<Output>, EvalError> {
        let (visible_topic, basic_ingest) = strip_basic_ingest(message.topic);
        if !basic_ingest && !self.matches_topic(message.topic) {
            return Ok(None);
        }
        // A payload that does not parse as JSON is binary (reference 5.4).
        let parsed = serde_json::from_slice::<SqlValue>(message.payload).ok();
        let is_json = parsed.is_some();
        let document = parsed.unwrap_or(SqlValue::Undefined);
        if !is_json && let BinaryPayloads::Refused(error) = &self.binary_payloads {
            return Err(error.clone());
        }
        let mut evaluator = Evaluator {
            message,
            topic: visible_topic,
            version: self.version,
            context,
        };
        let scope = Scope {
            document: &document,
            top_level: true,
        };
        if !evaluator.condition_holds(&self.query, scope) {
            return Ok(None);
        }
        if !is_json && self.binary_payloads == BinaryPayloads::PassThrough {
            return Ok(Some(Output::Binary(message.payload.to_vec())));
        }
        let output = match &self.query.projection {
            // `SELECT *` alone hands the payload over as it is, even when it is not an object.
            Projection::Items(items) if items.as_slice() == [SelectItem::Wildcard] => document
                .to_json(self.version)
                .map_or(Output::Empty, Output::Json),
            Projection::Items(items) => {
                let object = SqlValue::Object(evaluator.project_items(items, scope));
                object
                    .to_json(self.version)
                    .map_or(Output::Empty, Output::Json)
            }
            Projection::Value(expr) => {
                let value = evaluator.eval(expr, scope);
                if matches!(value, SqlValue::Array(_)) && self.version < SqlVersion::V2016_03_23 {
                    return Err(EvalError::TopLevelArrayRequires2016);
                }
                value
                    .to_json(self.version)
                    .map_or(Output::Empty, Output::Json)
            }
        };
        Ok(Some(output))
    }
}

/// Reference 5.4: with a non-JSON payload, (1) the SQL may refer to no JSON name other than `*`, and
/// (2) SELECT must be `*` alone or only functions.
fn binary_payloads(query: &Query) -> BinaryPayloads {
    let select_exprs: Vec<&Expr> = match &query.projection {
        Projection::Value(expr) => vec![expr],
        Projection::Items(items) => items
            .iter()
            .filter_map(|item| match item {
                SelectItem::Expr { expr, .. } => Some(expr),
                SelectItem::Wildcard | SelectItem::WildcardAs(_) => None,
            })
            .collect(),
    };
    let refers_to_json_names = select_exprs.iter().any(|expr| expr.refers_to_json_names())
        || query
            .condition
            .as_ref()
            .is_some_and(Expr::refers_to_json_names);
    if refers_to_json_names {
        return BinaryPayloads::Refused(EvalError::BinaryPayloadReferencesJsonNames);
    }
    let is_function = |expr: &Expr| matches!(expr, Expr::Call(..) | Expr::Cast(..));
    match &query.projection {
        Projection::Value(Expr::Wildcard) => BinaryPayloads::PassThrough,
        Projection::Items(items) if items.as_slice() == [SelectItem::Wildcard] => {
            BinaryPayloads::PassThrough
        }
        Projection::Value(expr) if is_function(expr) => BinaryPayloads::FunctionsOnly,
        Projection::Items(items)
            if items
                .iter()
                .all(|item| matches!(item, SelectItem::Expr { expr, .. } if is_function(expr))) =>
        {
            BinaryPayloads::FunctionsOnly
        }
        _ => BinaryPayloads::Refused(EvalError::BinaryPayloadSelectShape),
    }
}

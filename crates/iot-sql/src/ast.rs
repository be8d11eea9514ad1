//! The parsed form of a rule's SQL.

use crate::functions::Function;
use crate::value::SqlValue;

/// `SELECT ... [FROM ...] [WHERE ...]`, either the rule itself or a nested object query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub(crate) projection: Projection,
    pub(crate) source: Source,
    pub(crate) condition: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// The rule's `FROM '<topic filter>'`; `None` for a Basic-Ingest-only rule (reference 5.9).
    Topic(Option<String>),
    /// A nested query's `FROM <expression>` over an array or object of the payload (2016-03-23).
    Value(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Projection {
    /// `SELECT VALUE expr`: the output is the bare value, not an object.
    Value(Expr),
    /// `SELECT item, item, ...`: the output is an object.
    Items(Vec<SelectItem>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SelectItem {
    /// `*`: the payload's keys are flattened into the output (reference 5.2).
    Wildcard,
    /// `* AS name`: the whole payload nested under one key.
    WildcardAs(KeyPath),
    /// An expression and the key it is written to.
    Expr { expr: Expr, key: KeyPath },
}

/// An output key; `AS a.b` writes the nested object `{"a":{"b":...}}` (AWS "JSON extensions").
pub(crate) type KeyPath = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(SqlValue),
    /// A top-level name, looked up in the payload (or in the element of a nested query).
    Field(String),
    /// `*` used as a value, e.g. `encode(*, 'base64')` or `get(*, "key-name")`.
    Wildcard,
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Negate(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
    Cast(Box<Expr>, CastType),
    Case {
        operand: Box<Expr>,
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    Subquery(Box<Query>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    And,
    Or,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

/// Target types of `cast(value AS type)` (AWS functions, cast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CastType {
    String,
    Int,
    /// `Double`: Decimal with double precision.
    Double,
    /// `Decimal` (2016-03-23 only).
    Decimal,
    /// `Bool` / `Boolean` (2016-03-23 only).
    Boolean,
}

impl Expr {
    /// Whether the expression reads a JSON name of the payload, which a non-JSON payload forbids
    /// (reference 5.4, rule 1). A nested query's own names count too.
    pub(crate) fn refers_to_json_names(&self) -> bool {
        match self {
            Expr::Field(_) => true,
            Expr::Literal(_) | Expr::Wildcard => false,
            Expr::Member(base, _) => base.refers_to_json_names(),
            Expr::Index(base, index) => base.refers_to_json_names() || index.refers_to_json_names(),
            Expr::Negate(inner) | Expr::Not(inner) | Expr::Cast(inner, _) => {
                inner.refers_to_json_names()
            }
            Expr::Binary(_, left, right) => {
                left.refers_to_json_names() || right.refers_to_json_names()
            }
            Expr::Call(_, args) | Expr::Array(args) => args.iter().any(Expr::refers_to_json_names),
            Expr::Object(entries) => entries
                .iter()
                .any(|(_, value)| value.refers_to_json_names()),
            Expr::Case {
                operand,
                branches,
                otherwise,
            } => {
                operand.refers_to_json_names()
                    || branches.iter().any(|(when, then)| {
                        when.refers_to_json_names() || then.refers_to_json_names()
                    })
                    || otherwise
                        .as_ref()
                        .is_some_and(|other| other.refers_to_json_names())
            }
            Expr::Subquery(_) => true,
        }
    }
}

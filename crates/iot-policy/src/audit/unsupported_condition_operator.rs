//! `UnsupportedConditionOperator`: a condition operator we do not model makes the statement never apply.

use super::FindingKind;
use super::runner::PolicyAuditor;
use crate::evaluate::CompiledStatement;

impl PolicyAuditor<'_> {
    pub(super) fn check_unsupported_operators(
        &mut self,
        index: usize,
        statement: &CompiledStatement,
    ) {
        if !statement.unsupported_operators().is_empty() {
            self.push(
                FindingKind::UnsupportedConditionOperator,
                Some(index),
                format!(
                    "condition operator(s) {} are not supported here, so this {:?} statement never applies",
                    statement.unsupported_operators().join(", "),
                    statement.effect()
                ),
            );
        }
    }
}

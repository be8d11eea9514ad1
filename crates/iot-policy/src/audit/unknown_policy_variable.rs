//! `UnknownPolicyVariable`: `${...}` that is not a documented policy variable stays literal text (reference 4.4).

use super::FindingKind;
use super::runner::PolicyAuditor;
use crate::evaluate::CompiledStatement;

impl PolicyAuditor<'_> {
    pub(super) fn check_unknown_variables(&mut self, index: usize, statement: &CompiledStatement) {
        if !statement.unknown_variables().is_empty() {
            self.push(
                FindingKind::UnknownPolicyVariable,
                Some(index),
                format!(
                    "{} is not a documented AWS IoT policy variable (reference 4.4); it stays literal text, so \
                     the statement matches no real resource",
                    statement.unknown_variables().join(", ")
                ),
            );
        }
    }
}

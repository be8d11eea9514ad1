//! `PolicyVariablesIgnored`: `${...}` in a policy whose Version is not 2012-10-17 is literal text.

use super::FindingKind;
use super::runner::PolicyAuditor;

impl PolicyAuditor<'_> {
    pub(super) fn check_variables_ignored(&mut self) {
        if self.policy.variables_enabled() {
            return;
        }
        let uses_variables = self.document.statements.iter().position(|statement| {
            statement
                .resources
                .patterns()
                .iter()
                .any(|pattern| pattern.contains("${"))
                || statement
                    .conditions
                    .iter()
                    .any(|entry| entry.values.iter().any(|value| value.contains("${")))
        });
        if let Some(index) = uses_variables {
            let version = self.document.version.as_deref().unwrap_or("(missing)");
            self.push(
                FindingKind::PolicyVariablesIgnored,
                Some(index),
                format!(
                    "the policy uses ${{...}} but its Version is {version}; policy variables only work with \
                     \"Version\": \"2012-10-17\", otherwise they are literal text and match nothing"
                ),
            );
        }
    }
}

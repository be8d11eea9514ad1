//! `PolicyTooLarge`: over 2,048 characters without whitespace, CreatePolicy would reject the policy (reference 4.1).

use super::FindingKind;
use super::runner::PolicyAuditor;
use crate::document::MAX_POLICY_DOCUMENT_CHARS;

impl PolicyAuditor<'_> {
    pub(super) fn check_size(&mut self) {
        let size = self.document.size_without_whitespace();
        if size > MAX_POLICY_DOCUMENT_CHARS {
            self.push(
                FindingKind::PolicyTooLarge,
                None,
                format!(
                    "the document has {size} characters without whitespace; AWS IoT accepts at most \
                     {MAX_POLICY_DOCUMENT_CHARS} (reference 4.1), so creating the policy fails; merge resources \
                     with * or split the policy"
                ),
            );
        }
    }
}

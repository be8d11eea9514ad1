//! `ActionResourceMismatch`: an action listed only with resources of a type it is never checked against
//! (reference 4.2), e.g. `iot:Subscribe` on `topic/`.

use super::FindingKind;
use super::runner::PolicyAuditor;
use crate::arn::ResourceType;
use crate::document::Effect;
use crate::evaluate::CompiledStatement;

impl PolicyAuditor<'_> {
    pub(super) fn check_action_resource_mismatch(
        &mut self,
        index: usize,
        statement: &CompiledStatement,
    ) {
        if statement.is_not_resource() {
            return;
        }
        let resource_types: Vec<Option<ResourceType>> = statement
            .resources()
            .iter()
            .map(|pattern| ResourceType::of_arn(pattern.raw()))
            .collect();
        for action in statement.actions() {
            if action.has_wildcards() {
                continue;
            }
            let Some(expected) = ResourceType::for_action(action.raw()) else {
                continue;
            };
            let reachable = resource_types.iter().any(|resource_type| {
                resource_type.is_none_or(|resource_type| resource_type == expected)
            });
            if reachable {
                continue;
            }
            let why = match expected {
                ResourceType::TopicFilter => {
                    "iot:Subscribe is checked against topicfilter/ ARNs (the literal filter the client sends), \
                     not topic/ (reference 4.2)"
                        .to_owned()
                }
                ResourceType::Thing => format!(
                    "{} is an HTTP shadow action checked against thing/ ARNs; over MQTT a shadow is plain topic \
                     access with iot:Publish/iot:Subscribe/iot:Receive on $aws/things/... (reference 3.2)",
                    action.raw()
                ),
                ResourceType::Topic => format!(
                    "{} is checked against topic/ ARNs (reference 4.2); topicfilter/ is only for iot:Subscribe",
                    action.raw()
                ),
                ResourceType::Client => "iot:Connect is checked against client/ ARNs (reference 4.2)".to_owned(),
            };
            self.push(
                FindingKind::ActionResourceMismatch,
                Some(index),
                format!(
                    "{why}; none of this statement's resources is a {}... ARN, so it never {} {}",
                    expected.arn_prefix(),
                    if statement.effect() == Effect::Allow {
                        "allows"
                    } else {
                        "denies"
                    },
                    action.raw()
                ),
            );
        }
    }
}

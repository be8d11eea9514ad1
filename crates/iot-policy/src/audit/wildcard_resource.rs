//! `WildcardResource`: an Allow that matches an unrelated name of a resource type (`*`, `client/*`, `topic/*`, ...).

use super::FindingKind;
use super::runner::{
    PolicyAuditor, UNRELATED_CLIENT, UNRELATED_FILTER, UNRELATED_THING, UNRELATED_TOPIC,
    raw_resources,
};
use crate::arn::{ResourceType, actions};
use crate::evaluate::CompiledStatement;

/// The MQTT / HTTP actions checked against each resource type (reference 4.2).
const ACTIONS_BY_TYPE: [(ResourceType, &[&str]); 4] = [
    (ResourceType::Client, &[actions::CONNECT]),
    (
        ResourceType::Topic,
        &[actions::PUBLISH, actions::RECEIVE, actions::RETAIN_PUBLISH],
    ),
    (ResourceType::TopicFilter, &[actions::SUBSCRIBE]),
    (
        ResourceType::Thing,
        &[
            actions::GET_THING_SHADOW,
            actions::UPDATE_THING_SHADOW,
            actions::DELETE_THING_SHADOW,
        ],
    ),
];

impl PolicyAuditor<'_> {
    pub(super) fn check_wildcard_resource(&mut self, index: usize, statement: &CompiledStatement) {
        for (resource_type, type_actions) in ACTIONS_BY_TYPE {
            let probe_name = match resource_type {
                ResourceType::Client => UNRELATED_CLIENT,
                ResourceType::Topic => UNRELATED_TOPIC,
                ResourceType::TopicFilter => UNRELATED_FILTER,
                ResourceType::Thing => UNRELATED_THING,
            };
            let arn = self.arns.arn(resource_type, probe_name);
            let granted: Vec<&str> = type_actions
                .iter()
                .copied()
                .filter(|action| statement.applies(action, &arn, &self.device_a))
                .collect();
            if !granted.is_empty() {
                self.push(
                    FindingKind::WildcardResource,
                    Some(index),
                    format!(
                        "allows {} on every {}... resource (resources: {}); scope it to the device with \
                         ${{iot:Connection.Thing.ThingName}}",
                        granted.join(", "),
                        resource_type.arn_prefix(),
                        raw_resources(statement)
                    ),
                );
            }
        }
    }
}

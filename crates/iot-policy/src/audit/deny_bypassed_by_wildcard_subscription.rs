//! `DenyBypassedByWildcardSubscription`: a Deny on subscriptions that an allowed wildcard subscription plus
//! Receive walks around (reference 4.3).

use super::FindingKind;
use super::runner::PolicyAuditor;
use crate::arn::{ResourceType, actions};
use crate::evaluate::CompiledStatement;

impl PolicyAuditor<'_> {
    /// Reference 4.3: Allow `topicfilter/a/*` + Deny `topicfilter/a/restricted/*` still lets a client subscribe
    /// to `a/#` and receive `a/restricted/...`.
    pub(super) fn check_deny_bypass(&mut self, index: usize, statement: &CompiledStatement) {
        if statement.is_not_resource() || !statement.matches_action(actions::SUBSCRIBE) {
            return;
        }
        for pattern in statement.resources() {
            if ResourceType::of_arn(pattern.raw()) != Some(ResourceType::TopicFilter) {
                continue;
            }
            let example = pattern.example(&self.device_a, "zz-audit-probe");
            let Some((_, denied_topic)) =
                example.split_once(ResourceType::TopicFilter.arn_prefix())
            else {
                continue;
            };
            let denied_topic = denied_topic.to_owned();
            if denied_topic.is_empty() || denied_topic.contains(['+', '#']) {
                continue;
            }
            let denied_filter_arn = self.arns.topic_filter(&denied_topic);
            if !statement.applies(actions::SUBSCRIBE, &denied_filter_arn, &self.device_a) {
                continue;
            }
            let receive_arn = self.arns.topic(&denied_topic);
            if !self
                .policy
                .decide(actions::RECEIVE, &receive_arn, &self.device_a)
                .is_allowed()
            {
                continue;
            }
            let bypass = bypass_filters(&denied_topic).into_iter().find(|filter| {
                self.policy
                    .decide(
                        actions::SUBSCRIBE,
                        &self.arns.topic_filter(filter),
                        &self.device_a,
                    )
                    .is_allowed()
            });
            if let Some(filter) = bypass {
                self.push(
                    FindingKind::DenyBypassedByWildcardSubscription,
                    Some(index),
                    format!(
                        "Deny iot:Subscribe on {} is bypassed: the policy allows subscribing to the filter {filter:?} \
                         and iot:Receive on topic/{denied_topic}, so messages on the denied topics are still \
                         delivered (reference 4.3); also deny iot:Receive on the topic/ form, or allow Receive with \
                         NotResource",
                        pattern.raw()
                    ),
                );
            }
        }
    }
}

/// MQTT filters that would deliver messages on `topic` without naming it: `#`, `a/#`, `a/b/#`, ... and each
/// level replaced by `+`.
fn bypass_filters(topic: &str) -> Vec<String> {
    let levels: Vec<&str> = topic.split('/').collect();
    let mut filters = vec!["#".to_owned()];
    for depth in 1..levels.len() {
        filters.push(format!("{}/#", levels[..depth].join("/")));
    }
    for position in 0..levels.len() {
        let mut replaced = levels.clone();
        replaced[position] = "+";
        filters.push(replaced.join("/"));
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_filter_candidates() {
        assert_eq!(
            bypass_filters("a/restricted/x"),
            vec![
                "#",
                "a/#",
                "a/restricted/#",
                "+/restricted/x",
                "a/+/x",
                "a/restricted/+"
            ]
        );
    }
}

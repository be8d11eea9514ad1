//! `SubscribeToAllTopics`: thing A subscribing to `#` or another filter spanning other devices.

use super::FindingKind;
use super::runner::{PolicyAuditor, Probe};
use crate::arn::{ResourceType, actions};

impl PolicyAuditor<'_> {
    pub(super) fn probe_broad_subscriptions(&mut self) {
        let probes: Vec<Probe> = [
            "#",
            "+/#",
            "data/#",
            "data/+/temperature",
            "$aws/things/+/shadow/#",
        ]
        .into_iter()
        .map(|filter| Probe::new(actions::SUBSCRIBE, ResourceType::TopicFilter, filter))
        .collect();
        let allowed = self.run_probes(&probes, &self.device_a);
        let thing_a = self.options.thing_a.clone();
        self.push_probe_findings(FindingKind::SubscribeToAllTopics, allowed, |probes| {
            format!(
                "device {thing_a:?} may subscribe to filters spanning other devices: {probes} (the filter is \
                 matched literally against topicfilter/, reference 4.2)"
            )
        });
    }
}

//! `CrossDeviceAccess`: thing A reaching thing B's topics, shadows or thing resource.

use super::FindingKind;
use super::runner::{PolicyAuditor, Probe};
use crate::arn::{ResourceType, actions};

impl PolicyAuditor<'_> {
    pub(super) fn probe_cross_device_access(&mut self) {
        let other = self.options.thing_b.as_str();
        let shadow = format!("$aws/things/{other}/shadow");
        let probes = [
            Probe::new(
                actions::PUBLISH,
                ResourceType::Topic,
                format!("data/{other}/temperature"),
            ),
            Probe::new(
                actions::PUBLISH,
                ResourceType::Topic,
                format!("device/{other}/lwt"),
            ),
            Probe::new(
                actions::PUBLISH,
                ResourceType::Topic,
                format!("{shadow}/update"),
            ),
            Probe::new(
                actions::PUBLISH,
                ResourceType::Topic,
                format!("{shadow}/get"),
            ),
            Probe::new(
                actions::SUBSCRIBE,
                ResourceType::TopicFilter,
                format!("{shadow}/update/delta"),
            ),
            Probe::new(
                actions::SUBSCRIBE,
                ResourceType::TopicFilter,
                format!("{shadow}/get/accepted"),
            ),
            Probe::new(
                actions::SUBSCRIBE,
                ResourceType::TopicFilter,
                format!("data/{other}/temperature"),
            ),
            Probe::new(
                actions::RECEIVE,
                ResourceType::Topic,
                format!("{shadow}/update/delta"),
            ),
            Probe::new(
                actions::RECEIVE,
                ResourceType::Topic,
                format!("{shadow}/get/accepted"),
            ),
            Probe::new(
                actions::RECEIVE,
                ResourceType::Topic,
                format!("data/{other}/temperature"),
            ),
            Probe::new(actions::GET_THING_SHADOW, ResourceType::Thing, other),
            Probe::new(actions::UPDATE_THING_SHADOW, ResourceType::Thing, other),
        ];
        let allowed = self.run_probes(&probes, &self.device_a);
        let thing_a = self.options.thing_a.clone();
        let thing_b = self.options.thing_b.clone();
        self.push_probe_findings(FindingKind::CrossDeviceAccess, allowed, |probes| {
            format!("device {thing_a:?} can reach device {thing_b:?}'s resources: {probes}")
        });
    }
}

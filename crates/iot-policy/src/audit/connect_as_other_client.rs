//! `ConnectAsOtherClient`: thing A's certificate connecting with another client id.

use std::collections::BTreeMap;

use super::FindingKind;
use super::runner::{PolicyAuditor, Probe, UNRELATED_CLIENT};
use crate::arn::{ResourceType, actions};

impl PolicyAuditor<'_> {
    pub(super) fn probe_connect_as_other_client(&mut self) {
        let thing_a = self.options.thing_a.clone();
        let mut allowed = BTreeMap::<usize, Vec<String>>::new();
        for client_id in [self.options.thing_b.as_str(), UNRELATED_CLIENT] {
            // The broker checks client/{the client id in CONNECT}; thing A's certificate stays attached to A.
            let mut context = self.device_a.clone();
            context.client_id = client_id.to_owned();
            let probes = [Probe::new(
                actions::CONNECT,
                ResourceType::Client,
                client_id,
            )];
            for (index, mut described) in self.run_probes(&probes, &context) {
                allowed.entry(index).or_default().append(&mut described);
            }
        }
        self.push_probe_findings(FindingKind::ConnectAsOtherClient, allowed, |probes| {
            format!(
                "the certificate of {thing_a:?} can connect with another client id ({probes}); the contract \
                 requires client id = thing name"
            )
        });
    }
}

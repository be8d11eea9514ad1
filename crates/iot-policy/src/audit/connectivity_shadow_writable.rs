//! `ConnectivityShadowWritable`: thing A writing its cloud-owned `connectivity` named shadow.

use super::FindingKind;
use super::runner::{PolicyAuditor, Probe};
use crate::arn::{ResourceType, actions};

impl PolicyAuditor<'_> {
    pub(super) fn probe_connectivity_shadow(&mut self) {
        let thing_a = self.options.thing_a.clone();
        let named = format!("$aws/things/{thing_a}/shadow/name/connectivity");
        let probes = [
            Probe::new(
                actions::PUBLISH,
                ResourceType::Topic,
                format!("{named}/update"),
            ),
            Probe::new(
                actions::PUBLISH,
                ResourceType::Topic,
                format!("{named}/delete"),
            ),
            Probe::new(
                actions::UPDATE_THING_SHADOW,
                ResourceType::Thing,
                thing_a.as_str(),
            ),
            Probe::new(
                actions::DELETE_THING_SHADOW,
                ResourceType::Thing,
                thing_a.as_str(),
            ),
        ];
        let allowed = self.run_probes(&probes, &self.device_a);
        self.push_probe_findings(FindingKind::ConnectivityShadowWritable, allowed, |probes| {
            format!(
                "device {thing_a:?} may write its cloud-owned named shadow \"connectivity\" ({probes}); only \
                 shadow-reconciler writes it (architecture.md section 3)"
            )
        });
    }
}

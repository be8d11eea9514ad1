//! `ClientIdWithoutAttachedThing`: `${iot:ClientId}` grants access while any client id may connect without an
//! attached thing, so the client picks the value (reference 4.3).

use super::FindingKind;
use super::runner::{PolicyAuditor, UNRELATED_CLIENT, raw_resources};
use crate::arn::actions;
use crate::context::ConnectionContext;
use crate::document::Effect;
use crate::variables::PolicyVariable;

impl PolicyAuditor<'_> {
    pub(super) fn check_client_id_without_attached_thing(&mut self) {
        let stranger = ConnectionContext::new(UNRELATED_CLIENT);
        let stranger_can_connect = self
            .policy
            .decide(
                actions::CONNECT,
                &self.arns.client(UNRELATED_CLIENT),
                &stranger,
            )
            .is_allowed();
        if !stranger_can_connect {
            return;
        }
        let offending: Vec<usize> = self
            .policy
            .statements()
            .iter()
            .enumerate()
            .filter(|(_, statement)| {
                statement.effect() == Effect::Allow
                    && !statement.requires_attached_thing()
                    && statement.resources().iter().any(|pattern| {
                        pattern
                            .variables()
                            .any(|variable| *variable == PolicyVariable::ClientId)
                    })
            })
            .map(|(index, _)| index)
            .collect();
        for index in offending {
            self.push(
                FindingKind::ClientIdWithoutAttachedThing,
                Some(index),
                format!(
                    "uses ${{iot:ClientId}} while any client id may connect without an attached thing (no \
                     Bool iot:Connection.Thing.IsAttached = true), so a client chooses the value itself, e.g. a \
                     client id \"+\" or \"#\" gets those literal filters (reference 4.3); pin iot:Connect to \
                     client/${{iot:Connection.Thing.ThingName}} with the IsAttached condition (resources: {})",
                    raw_resources(&self.policy.statements()[index])
                ),
            );
        }
    }
}

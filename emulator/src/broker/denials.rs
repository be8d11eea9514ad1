//! Why was it denied: every policy refusal the broker makes (a CONNECT, a PUBLISH or a will that ends the
//! connection with AUTH_ERROR, a SUBSCRIBE), with the request and the policy evaluation that decided it: the
//! Deny statements for an explicit deny, or the policies that were evaluated when no statement allowed it.
//! AWS does not show this; the seed's author worked it out by trial. Read by the console (`/denied`) through
//! the data plane's `/_emulator/denials`.
//!
//! The evaluation with reasons is computed only on a denial (the hot path keeps the allocation-free
//! `decide`). The log keeps the newest [`MAX_DENIALS`]; older ones are dropped and counted in `total`.

use std::collections::VecDeque;
use std::sync::Mutex;

use iot_policy::{ConnectionContext, Decision, Effect, PolicySet};
use serde::Serialize;

/// Denials kept; beyond it the oldest is dropped (the total still counts it).
pub const MAX_DENIALS: usize = 1_000;

/// What the refusal did to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DenialOutcome {
    /// CONNACK refused and `connect_failed` (AUTHORIZATION_FAILED) published.
    ConnectRefused,
    /// The connection was closed, lifecycle reason AUTH_ERROR (MQTT 3.1.1, reference 4.5).
    Disconnected,
    /// The filter got SUBACK 0x80 (`--suback-on-denied-subscribe`).
    SubackFailure,
}

/// A statement that decided a denial: its policy, its index in the policy's `Statement` array, its effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecidingStatement {
    pub policy: String,
    pub statement_index: usize,
    pub effect: Effect,
}

/// One refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub timestamp: i64,
    pub client_id: String,
    /// The certificate id.
    pub principal: String,
    pub thing: Option<String>,
    pub action: String,
    pub resource: String,
    pub outcome: DenialOutcome,
    /// `ExplicitDeny` (a Deny statement matched) or `ImplicitDeny` (no Allow did).
    pub decision: Decision,
    /// The Deny statements of an explicit deny; empty for an implicit deny.
    pub statements: Vec<DecidingStatement>,
    /// Every policy attached to the certificate (the ones that did not allow it, for an implicit deny).
    pub policies: Vec<String>,
}

/// The request a denial is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeniedRequest<'a> {
    pub client_id: &'a str,
    pub principal: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub outcome: DenialOutcome,
}

#[derive(Debug, Default)]
struct Kept {
    newest_last: VecDeque<Denial>,
    total: u64,
}

/// The broker's bounded log of denials.
#[derive(Debug, Default)]
pub struct Denials {
    kept: Mutex<Kept>,
}

impl Denials {
    /// Evaluates `request` again with reasons and keeps the result.
    pub(crate) fn record(
        &self,
        request: DeniedRequest<'_>,
        policies: &PolicySet,
        context: &ConnectionContext,
    ) {
        let evaluation = policies.evaluate(request.action, request.resource, context);
        let names = |index: usize| {
            policies
                .policies()
                .get(index)
                .map(|policy| policy.name().to_owned())
                .unwrap_or_default()
        };
        let denial = Denial {
            timestamp: crate::clock::now_millis(),
            client_id: request.client_id.to_owned(),
            principal: request.principal.to_owned(),
            thing: context.thing.as_ref().map(|thing| thing.name.clone()),
            action: request.action.to_owned(),
            resource: request.resource.to_owned(),
            outcome: request.outcome,
            decision: evaluation.decision,
            statements: evaluation
                .reasons
                .iter()
                .filter(|reason| reason.effect == Effect::Deny)
                .map(|reason| DecidingStatement {
                    policy: names(reason.policy_index),
                    statement_index: reason.statement_index,
                    effect: reason.effect,
                })
                .collect(),
            policies: policies
                .policies()
                .iter()
                .map(|policy| policy.name().to_owned())
                .collect(),
        };
        let mut kept = self.lock();
        if kept.newest_last.len() == MAX_DENIALS {
            kept.newest_last.pop_front();
        }
        kept.newest_last.push_back(denial);
        kept.total += 1;
    }

    /// The kept denials, newest first, and how many there have been in all.
    pub fn newest_first(&self) -> (Vec<Denial>, u64) {
        let kept = self.lock();
        (kept.newest_last.iter().rev().cloned().collect(), kept.total)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock leaves a consistent log: keep serving it.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iot_policy::{CompiledPolicy, PolicyDocument};

    fn policies() -> PolicySet {
        let allow = PolicyDocument::from_json_str(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:1:topic/*"},
              {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:1:topic/secret"}]}"#,
        )
        .unwrap();
        PolicySet::new(vec![CompiledPolicy::compile("devices", &allow)])
    }

    fn request<'a>(action: &'a str, resource: &'a str) -> DeniedRequest<'a> {
        DeniedRequest {
            client_id: "pi-01",
            principal: "cert",
            action,
            resource,
            outcome: DenialOutcome::Disconnected,
        }
    }

    #[test]
    fn an_explicit_deny_names_its_statement_an_implicit_one_the_policies_evaluated() {
        let denials = Denials::default();
        let context = ConnectionContext::new("pi-01".to_owned());
        denials.record(
            request("iot:Publish", "arn:aws:iot:us-east-1:1:topic/secret"),
            &policies(),
            &context,
        );
        denials.record(
            request("iot:Subscribe", "arn:aws:iot:us-east-1:1:topicfilter/x"),
            &policies(),
            &context,
        );
        let (kept, total) = denials.newest_first();
        assert_eq!(total, 2);
        assert_eq!(kept[0].decision, Decision::ImplicitDeny);
        assert!(kept[0].statements.is_empty());
        assert_eq!(kept[0].policies, ["devices"]);
        assert_eq!(kept[1].decision, Decision::ExplicitDeny);
        assert_eq!(
            kept[1].statements,
            [DecidingStatement {
                policy: "devices".into(),
                statement_index: 1,
                effect: Effect::Deny
            }]
        );
    }

    #[test]
    fn the_log_keeps_the_newest_and_counts_every_one() {
        let denials = Denials::default();
        let context = ConnectionContext::new("pi-01".to_owned());
        for n in 0..MAX_DENIALS + 5 {
            let resource = format!("arn:aws:iot:us-east-1:1:topicfilter/{n}");
            denials.record(request("iot:Subscribe", &resource), &policies(), &context);
        }
        let (kept, total) = denials.newest_first();
        assert_eq!((kept.len(), total), (MAX_DENIALS, (MAX_DENIALS + 5) as u64));
        assert!(kept[0].resource.ends_with(&format!("/{}", MAX_DENIALS + 4)));
        assert!(kept[MAX_DENIALS - 1].resource.ends_with("/5"));
    }
}

//! Policy evaluation (reference 4.1): implicit deny by default, any matching Allow grants, any matching Deny beats
//! every Allow, across all the policies attached to a principal.
//!
//! The broker calls this on every CONNECT, PUBLISH, SUBSCRIBE and delivery (reference 4.2), so policies are
//! compiled once into [`CompiledPolicy`] and [`PolicySet::decide`] does not allocate.

use serde::Serialize;

use crate::condition::{CompiledCondition, CompiledEntry, compile_condition};
use crate::context::ConnectionContext;
use crate::document::{Effect, PolicyDocument, ResourceSpec};
use crate::pattern::{CompileNotes, Pattern, Wildcards};

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    Allow,
    /// A matching Deny statement; no Allow can override it.
    ExplicitDeny,
    /// Nothing allowed the request.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// A statement that matched the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MatchedStatement {
    /// Index into the [`PolicySet`] (0 when a single [`CompiledPolicy`] was evaluated).
    pub policy_index: usize,
    /// Index of the statement in its policy's `Statement` array.
    pub statement_index: usize,
    pub effect: Effect,
}

/// A decision with the statements that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub decision: Decision,
    /// Every matching statement: the Deny statements for an explicit deny, the Allow statements for an allow,
    /// empty for an implicit deny.
    pub reasons: Vec<MatchedStatement>,
}

/// One statement, pre-parsed.
#[derive(Debug, Clone)]
pub struct CompiledStatement {
    pub(crate) effect: Effect,
    pub(crate) actions: Vec<Pattern>,
    pub(crate) resources: Vec<Pattern>,
    pub(crate) not_resource: bool,
    pub(crate) conditions: Vec<CompiledCondition>,
    /// Operators we do not model: the statement never applies (see [`crate::condition`]).
    pub(crate) unsupported_operators: Vec<String>,
    /// `${...}` texts that are not documented variables, kept literal.
    pub(crate) unknown_variables: Vec<String>,
}

impl CompiledStatement {
    pub fn effect(&self) -> Effect {
        self.effect
    }

    pub fn actions(&self) -> &[Pattern] {
        &self.actions
    }

    pub fn resources(&self) -> &[Pattern] {
        &self.resources
    }

    pub fn is_not_resource(&self) -> bool {
        self.not_resource
    }

    pub fn unsupported_operators(&self) -> &[String] {
        &self.unsupported_operators
    }

    pub fn unknown_variables(&self) -> &[String] {
        &self.unknown_variables
    }

    /// Whether the statement is guarded by `Bool: {iot:Connection.Thing.IsAttached: true}`.
    pub fn requires_attached_thing(&self) -> bool {
        self.conditions
            .iter()
            .any(CompiledCondition::requires_attached_thing)
    }

    /// Whether the statement applies to the request: action, resource and every condition match.
    pub fn applies(&self, action: &str, resource: &str, context: &ConnectionContext) -> bool {
        self.matches_action(action)
            && self.matches_resource(resource, context)
            && self.unsupported_operators.is_empty()
            && self
                .conditions
                .iter()
                .all(|condition| condition.is_satisfied(context))
    }

    /// Whether one of the statement's `Action` patterns names `action` (case-insensitive, with wildcards).
    pub fn matches_action(&self, action: &str) -> bool {
        // Actions never contain policy variables; the context is only a formality for the matcher.
        static NO_CONTEXT: ConnectionContext = ConnectionContext {
            client_id: String::new(),
            thing: None,
            certificate: None,
            source_ip: None,
            connect_attributes: Vec::new(),
        };
        self.actions
            .iter()
            .any(|pattern| pattern.matches(action, &NO_CONTEXT))
    }

    fn matches_resource(&self, resource: &str, context: &ConnectionContext) -> bool {
        let listed = self
            .resources
            .iter()
            .any(|pattern| pattern.matches(resource, context));
        listed != self.not_resource
    }
}

/// A named policy, compiled for evaluation.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    name: String,
    variables_enabled: bool,
    statements: Vec<CompiledStatement>,
}

impl CompiledPolicy {
    pub fn compile(name: impl Into<String>, document: &PolicyDocument) -> CompiledPolicy {
        let variables_enabled = document.variables_enabled();
        let statements = document
            .statements
            .iter()
            .map(|statement| {
                let mut notes = CompileNotes::default();
                let actions = statement
                    .actions
                    .iter()
                    .map(|action| {
                        Pattern::compile(action, false, Wildcards::Glob, true, &mut notes)
                    })
                    .collect();
                let resources = statement
                    .resources
                    .patterns()
                    .iter()
                    .map(|resource| {
                        Pattern::compile(
                            resource,
                            variables_enabled,
                            Wildcards::Glob,
                            false,
                            &mut notes,
                        )
                    })
                    .collect();
                let mut conditions = Vec::new();
                let mut unsupported_operators = Vec::new();
                for entry in &statement.conditions {
                    match compile_condition(entry, variables_enabled, &mut notes) {
                        CompiledEntry::Condition(condition) => conditions.push(condition),
                        CompiledEntry::UnsupportedOperator(operator) => {
                            if !unsupported_operators.contains(&operator) {
                                unsupported_operators.push(operator);
                            }
                        }
                    }
                }
                CompiledStatement {
                    effect: statement.effect,
                    actions,
                    resources,
                    not_resource: matches!(statement.resources, ResourceSpec::NotResource(_)),
                    conditions,
                    unsupported_operators,
                    unknown_variables: notes.unknown_variables,
                }
            })
            .collect();
        CompiledPolicy {
            name: name.into(),
            variables_enabled,
            statements,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `${...}` were read as policy variables (Version 2012-10-17).
    pub fn variables_enabled(&self) -> bool {
        self.variables_enabled
    }

    pub fn statements(&self) -> &[CompiledStatement] {
        &self.statements
    }

    /// Evaluates this policy alone.
    pub fn evaluate(
        &self,
        action: &str,
        resource: &str,
        context: &ConnectionContext,
    ) -> Evaluation {
        evaluate_policies(std::slice::from_ref(self), action, resource, context)
    }

    /// [`CompiledPolicy::evaluate`] without the reasons, allocation-free.
    pub fn decide(&self, action: &str, resource: &str, context: &ConnectionContext) -> Decision {
        decide_policies(std::slice::from_ref(self), action, resource, context)
    }
}

/// All the policies attached to one principal (reference 4.1: up to 10 per certificate).
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<CompiledPolicy>,
}

impl PolicySet {
    pub fn new(policies: Vec<CompiledPolicy>) -> PolicySet {
        PolicySet { policies }
    }

    /// Compiles `(name, document)` pairs, e.g. the output of [`crate::load_policies_from_template`].
    pub fn from_documents<'a>(
        documents: impl IntoIterator<Item = (&'a str, &'a PolicyDocument)>,
    ) -> PolicySet {
        PolicySet {
            policies: documents
                .into_iter()
                .map(|(name, document)| CompiledPolicy::compile(name, document))
                .collect(),
        }
    }

    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    pub fn push(&mut self, policy: CompiledPolicy) {
        self.policies.push(policy);
    }

    /// The decision with every matching statement, for logs and the audit.
    pub fn evaluate(
        &self,
        action: &str,
        resource: &str,
        context: &ConnectionContext,
    ) -> Evaluation {
        evaluate_policies(&self.policies, action, resource, context)
    }

    /// The decision only; does not allocate (the broker's hot path).
    pub fn decide(&self, action: &str, resource: &str, context: &ConnectionContext) -> Decision {
        decide_policies(&self.policies, action, resource, context)
    }
}

/// Evaluates a request against every policy attached to the principal.
pub fn evaluate_policies(
    policies: &[CompiledPolicy],
    action: &str,
    resource: &str,
    context: &ConnectionContext,
) -> Evaluation {
    let mut allows = Vec::new();
    let mut denies = Vec::new();
    for (policy_index, policy) in policies.iter().enumerate() {
        for (statement_index, statement) in policy.statements.iter().enumerate() {
            if statement.applies(action, resource, context) {
                let matched = MatchedStatement {
                    policy_index,
                    statement_index,
                    effect: statement.effect,
                };
                match statement.effect {
                    Effect::Allow => allows.push(matched),
                    Effect::Deny => denies.push(matched),
                }
            }
        }
    }
    if !denies.is_empty() {
        Evaluation {
            decision: Decision::ExplicitDeny,
            reasons: denies,
        }
    } else if !allows.is_empty() {
        Evaluation {
            decision: Decision::Allow,
            reasons: allows,
        }
    } else {
        Evaluation {
            decision: Decision::ImplicitDeny,
            reasons: Vec::new(),
        }
    }
}

/// The decision only: stops at the first matching Deny.
pub fn decide_policies(
    policies: &[CompiledPolicy],
    action: &str,
    resource: &str,
    context: &ConnectionContext,
) -> Decision {
    let mut allowed = false;
    for statement in policies.iter().flat_map(|policy| policy.statements.iter()) {
        // An Allow already found only needs Deny statements checked.
        if allowed && statement.effect == Effect::Allow {
            continue;
        }
        if statement.applies(action, resource, context) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> CompiledPolicy {
        CompiledPolicy::compile("test", &PolicyDocument::from_json_str(json).unwrap())
    }

    const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

    #[test]
    fn implicit_deny_by_default() {
        let policy = policy(r#"{"Version":"2012-10-17","Statement":[]}"#);
        let evaluation = policy.evaluate(
            "iot:Connect",
            &format!("{ARN}:client/a"),
            &ConnectionContext::new("a"),
        );
        assert_eq!(evaluation.decision, Decision::ImplicitDeny);
        assert!(evaluation.reasons.is_empty());
    }

    #[test]
    fn explicit_deny_beats_allow_across_policies() {
        let allow_all = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
        );
        let deny_secret = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"iot:Publish","Resource":"{ARN}:topic/secret/*"}}]}}"#
        ));
        let set = PolicySet::new(vec![allow_all, deny_secret]);
        let context = ConnectionContext::new("a");
        let denied = set.evaluate("iot:Publish", &format!("{ARN}:topic/secret/x"), &context);
        assert_eq!(denied.decision, Decision::ExplicitDeny);
        assert_eq!(
            denied.reasons,
            vec![MatchedStatement {
                policy_index: 1,
                statement_index: 0,
                effect: Effect::Deny
            }]
        );
        assert_eq!(
            set.decide("iot:Publish", &format!("{ARN}:topic/secret/x"), &context),
            Decision::ExplicitDeny
        );
        let allowed = set.evaluate("iot:Publish", &format!("{ARN}:topic/open"), &context);
        assert_eq!(allowed.decision, Decision::Allow);
        assert_eq!(allowed.reasons[0].policy_index, 0);
        assert_eq!(
            set.decide(
                "iot:Subscribe",
                &format!("{ARN}:topicfilter/secret/x"),
                &context
            ),
            Decision::Allow
        );
    }

    #[test]
    fn action_wildcards_and_case() {
        let policy = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Pub*","iot:Receive"],"Resource":"*"}]}"#,
        );
        let context = ConnectionContext::new("a");
        for action in ["iot:Publish", "iot:publish", "iot:Receive"] {
            assert_eq!(
                policy.decide(action, "x", &context),
                Decision::Allow,
                "{action}"
            );
        }
        assert_eq!(
            policy.decide("iot:Subscribe", "x", &context),
            Decision::ImplicitDeny
        );
        assert_eq!(
            policy.decide("iot:Connect", "x", &context),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn not_resource_allows_everything_but_the_listed() {
        // Reference 4.3: the fix for the Deny-bypass pitfall.
        let policy = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"iot:Receive","NotResource":"{ARN}:topic/a/restricted/*"}}]}}"#
        ));
        let context = ConnectionContext::new("a");
        assert_eq!(
            policy.decide("iot:Receive", &format!("{ARN}:topic/a/open"), &context),
            Decision::Allow
        );
        assert_eq!(
            policy.decide(
                "iot:Receive",
                &format!("{ARN}:topic/a/restricted/x"),
                &context
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn deny_with_not_resource_denies_outside_the_list() {
        let policy = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}},
                {{"Effect":"Deny","Action":"iot:Publish","NotResource":"{ARN}:topic/mine/*"}}]}}"#
        ));
        let context = ConnectionContext::new("a");
        assert_eq!(
            policy.decide("iot:Publish", &format!("{ARN}:topic/mine/x"), &context),
            Decision::Allow
        );
        assert_eq!(
            policy.decide("iot:Publish", &format!("{ARN}:topic/theirs/x"), &context),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn conditions_gate_statements() {
        let policy = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Connect",
                "Resource":"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
                "Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}}]}}"#
        ));
        assert!(policy.statements()[0].requires_attached_thing());
        assert_eq!(
            policy.decide(
                "iot:Connect",
                &format!("{ARN}:client/a"),
                &ConnectionContext::attached_thing("a")
            ),
            Decision::Allow
        );
        assert_eq!(
            policy.decide(
                "iot:Connect",
                &format!("{ARN}:client/a"),
                &ConnectionContext::new("a")
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn unsupported_operator_makes_the_statement_not_apply() {
        let policy = policy(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"iot:*","Resource":"*"},
                {"Effect":"Deny","Action":"iot:*","Resource":"*","Condition":{"NumericLessThan":{"iot:ClientId":"5"}}}]}"#,
        );
        assert_eq!(
            policy.statements()[1].unsupported_operators(),
            ["NumericLessThan"]
        );
        assert_eq!(
            policy.decide("iot:Connect", "x", &ConnectionContext::new("1")),
            Decision::Allow
        );
    }
}

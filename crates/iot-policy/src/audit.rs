//! A policy audit: what AWS IoT Device Defender's two policy audit checks would flag, plus our own
//! device-isolation probes for the contract's device policy (architecture.md section 3, docs/policy.md).
//!
//! Every policy is audited on its own, as Device Defender does. Most checks *probe* the compiled policy: they
//! evaluate it for a device "thing A" (client id = thing name, certificate attached) against resources it must
//! not reach (thing B's topics, `#`, the cloud-owned `connectivity` shadow), so the audit agrees with the
//! evaluator the broker uses instead of second-guessing pattern text.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::arn::{ArnScope, ResourceType, actions};
use crate::context::{CertificateContext, ConnectionContext, DnAttribute, ThingContext};
use crate::document::{Effect, MAX_POLICY_DOCUMENT_CHARS, PolicyDocument};
use crate::evaluate::{CompiledPolicy, CompiledStatement, Decision};
use crate::template::{TemplateError, load_policies_from_template};
use crate::variables::PolicyVariable;

/// The audit check a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AuditCheck {
    /// Device Defender `IOT_POLICY_OVERLY_PERMISSIVE_CHECK`.
    #[serde(rename = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")]
    OverlyPermissive,
    /// Device Defender `IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK` (plus our own static checks of the same
    /// spirit: wrong resource type for an action, unknown variables or operators).
    #[serde(rename = "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK")]
    PotentialMisconfiguration,
    /// Our own probes of the contract: a device stays inside its own resources.
    #[serde(rename = "DEVICE_ISOLATION_PROBE")]
    DeviceIsolation,
}

impl AuditCheck {
    pub fn id(self) -> &'static str {
        match self {
            AuditCheck::OverlyPermissive => "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
            AuditCheck::PotentialMisconfiguration => "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
            AuditCheck::DeviceIsolation => "DEVICE_ISOLATION_PROBE",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FindingKind {
    /// An Allow matches every resource of a type (`*`, `client/*`, `topic/*`, ...).
    WildcardResource,
    /// `${iot:ClientId}` grants access while any client id may connect without an attached thing (reference 4.3).
    ClientIdWithoutAttachedThing,
    /// Thing A may use thing B's topics, shadows or thing resource.
    CrossDeviceAccess,
    /// MQTT `+`/`#` in a Deny resource: literal in policies, so the Deny misses what it seems to cover (4.3).
    MqttWildcardInDeny,
    /// A Deny on subscriptions that an allowed wildcard subscription plus Receive walks around (reference 4.3).
    DenyBypassedByWildcardSubscription,
    /// An action listed only with resources of a type it is never checked against (reference 4.2), e.g.
    /// `iot:Subscribe` on `topic/`, or `iot:UpdateThingShadow` on a shadow topic.
    ActionResourceMismatch,
    /// A condition operator we do not model: the statement never applies.
    UnsupportedConditionOperator,
    /// `${...}` that is not a documented policy variable: it stays literal text (reference 4.4).
    UnknownPolicyVariable,
    /// `${...}` in a policy whose Version is not 2012-10-17, so the variables are literal text.
    PolicyVariablesIgnored,
    /// Over 2048 characters without whitespace: CreatePolicy would reject it, so the deploy fails (reference 4.1).
    PolicyTooLarge,
    /// Thing A's certificate may connect with another client id.
    ConnectAsOtherClient,
    /// Thing A may subscribe to `#` or another filter spanning other devices.
    SubscribeToAllTopics,
    /// Thing A may write its cloud-owned `connectivity` named shadow.
    ConnectivityShadowWritable,
}

impl FindingKind {
    pub fn check(self) -> AuditCheck {
        match self {
            FindingKind::WildcardResource
            | FindingKind::ClientIdWithoutAttachedThing
            | FindingKind::CrossDeviceAccess => AuditCheck::OverlyPermissive,
            FindingKind::MqttWildcardInDeny
            | FindingKind::DenyBypassedByWildcardSubscription
            | FindingKind::ActionResourceMismatch
            | FindingKind::UnsupportedConditionOperator
            | FindingKind::UnknownPolicyVariable
            | FindingKind::PolicyVariablesIgnored
            | FindingKind::PolicyTooLarge => AuditCheck::PotentialMisconfiguration,
            FindingKind::ConnectAsOtherClient
            | FindingKind::SubscribeToAllTopics
            | FindingKind::ConnectivityShadowWritable => AuditCheck::DeviceIsolation,
        }
    }
}

/// One audit result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub check: AuditCheck,
    /// The policy name.
    pub policy: String,
    /// Index in the policy's `Statement` array, when one statement is responsible.
    pub statement: Option<usize>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "[{}] {:?} policy {:?}",
            self.check.id(),
            self.kind,
            self.policy
        )?;
        if let Some(statement) = self.statement {
            write!(formatter, " statement {statement}")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// The account, region and probe devices of an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    pub account: String,
    pub region: String,
    /// The device the policy is evaluated for.
    pub thing_a: String,
    /// Another device whose resources thing A must not reach.
    pub thing_b: String,
    /// `${iot:Connection.Thing.ThingTypeName}` of both probe things.
    pub thing_type: Option<String>,
    /// `${iot:Connection.Thing.Attributes[...]}` of both probe things.
    pub thing_attributes: BTreeMap<String, String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            account: "123456789012".to_owned(),
            region: "us-east-1".to_owned(),
            thing_a: "audit-thing-a".to_owned(),
            thing_b: "audit-thing-b".to_owned(),
            thing_type: None,
            thing_attributes: BTreeMap::new(),
        }
    }
}

impl AuditOptions {
    /// The connection of a well-behaved device: client id = thing name, certificate attached, a Last Will set
    /// (the agent always registers one, architecture.md section 3).
    fn device_context(&self, thing_name: &str) -> ConnectionContext {
        let mut thing = ThingContext::named(thing_name);
        thing.type_name = self.thing_type.clone();
        thing.attributes = self.thing_attributes.clone();
        ConnectionContext::new(thing_name)
            .with_thing(thing)
            .with_certificate(
                CertificateContext::new(format!("{:0>64}", thing_name.len()))
                    .with_subject(DnAttribute::CommonName, thing_name),
            )
            .with_source_ip("192.0.2.10")
            .with_connect_attribute("LastWill")
    }
}

/// Probe names no sensible policy grants on purpose.
const UNRELATED_CLIENT: &str = "zz-audit-unrelated-client";
const UNRELATED_TOPIC: &str = "zz-audit/unrelated/topic";
const UNRELATED_FILTER: &str = "zz-audit/unrelated/filter";
const UNRELATED_THING: &str = "zz-audit-unrelated-thing";

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

/// Audits every policy of a CloudFormation template.
pub fn audit_template(
    template_json: &str,
    options: &AuditOptions,
) -> Result<Vec<Finding>, TemplateError> {
    let policies = load_policies_from_template(template_json, &options.account, &options.region)?;
    Ok(audit(&policies, options))
}

/// Audits each policy on its own; findings come per policy, static checks first, then probes.
pub fn audit(policies: &[(String, PolicyDocument)], options: &AuditOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (name, document) in policies {
        let policy = CompiledPolicy::compile(name.clone(), document);
        let mut auditor = PolicyAuditor {
            policy: &policy,
            document,
            options,
            arns: ArnScope::new(&options.region, &options.account),
            device_a: options.device_context(&options.thing_a),
            findings: Vec::new(),
        };
        auditor.run();
        findings.append(&mut auditor.findings);
    }
    findings
}

struct PolicyAuditor<'a> {
    policy: &'a CompiledPolicy,
    document: &'a PolicyDocument,
    options: &'a AuditOptions,
    arns: ArnScope,
    device_a: ConnectionContext,
    findings: Vec<Finding>,
}

/// One probe: an action on a resource that must stay denied.
struct Probe {
    action: &'static str,
    resource_type: ResourceType,
    name: String,
}

impl Probe {
    fn new(action: &'static str, resource_type: ResourceType, name: impl Into<String>) -> Probe {
        Probe {
            action,
            resource_type,
            name: name.into(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}{}",
            self.action,
            self.resource_type.arn_prefix(),
            self.name
        )
    }
}

impl PolicyAuditor<'_> {
    fn run(&mut self) {
        self.check_size();
        self.check_variables_ignored();
        for (index, statement) in self.policy.statements().iter().enumerate() {
            self.check_unsupported_operators(index, statement);
            self.check_unknown_variables(index, statement);
            self.check_action_resource_mismatch(index, statement);
            if statement.effect() == Effect::Allow {
                self.check_wildcard_resource(index, statement);
            } else {
                self.check_mqtt_wildcard_in_deny(index, statement);
                self.check_deny_bypass(index, statement);
            }
        }
        self.check_client_id_without_attached_thing();
        self.probe_cross_device_access();
        self.probe_connect_as_other_client();
        self.probe_broad_subscriptions();
        self.probe_connectivity_shadow();
    }

    fn push(&mut self, kind: FindingKind, statement: Option<usize>, message: String) {
        self.findings.push(Finding {
            kind,
            check: kind.check(),
            policy: self.policy.name().to_owned(),
            statement,
            message,
        });
    }

    fn check_size(&mut self) {
        let size = self.document.size_without_whitespace();
        if size > MAX_POLICY_DOCUMENT_CHARS {
            self.push(
                FindingKind::PolicyTooLarge,
                None,
                format!(
                    "the document has {size} characters without whitespace; AWS IoT accepts at most \
                     {MAX_POLICY_DOCUMENT_CHARS} (reference 4.1), so creating the policy fails; merge resources \
                     with * or split the policy"
                ),
            );
        }
    }

    fn check_variables_ignored(&mut self) {
        if self.policy.variables_enabled() {
            return;
        }
        let uses_variables = self.document.statements.iter().position(|statement| {
            statement
                .resources
                .patterns()
                .iter()
                .any(|pattern| pattern.contains("${"))
                || statement
                    .conditions
                    .iter()
                    .any(|entry| entry.values.iter().any(|value| value.contains("${")))
        });
        if let Some(index) = uses_variables {
            let version = self.document.version.as_deref().unwrap_or("(missing)");
            self.push(
                FindingKind::PolicyVariablesIgnored,
                Some(index),
                format!(
                    "the policy uses ${{...}} but its Version is {version}; policy variables only work with \
                     \"Version\": \"2012-10-17\", otherwise they are literal text and match nothing"
                ),
            );
        }
    }

    fn check_unsupported_operators(&mut self, index: usize, statement: &CompiledStatement) {
        if !statement.unsupported_operators().is_empty() {
            self.push(
                FindingKind::UnsupportedConditionOperator,
                Some(index),
                format!(
                    "condition operator(s) {} are not supported here, so this {:?} statement never applies",
                    statement.unsupported_operators().join(", "),
                    statement.effect()
                ),
            );
        }
    }

    fn check_unknown_variables(&mut self, index: usize, statement: &CompiledStatement) {
        if !statement.unknown_variables().is_empty() {
            self.push(
                FindingKind::UnknownPolicyVariable,
                Some(index),
                format!(
                    "{} is not a documented AWS IoT policy variable (reference 4.4); it stays literal text, so \
                     the statement matches no real resource",
                    statement.unknown_variables().join(", ")
                ),
            );
        }
    }

    fn check_action_resource_mismatch(&mut self, index: usize, statement: &CompiledStatement) {
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

    fn check_wildcard_resource(&mut self, index: usize, statement: &CompiledStatement) {
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

    fn check_mqtt_wildcard_in_deny(&mut self, index: usize, statement: &CompiledStatement) {
        for pattern in statement.resources() {
            let text = without_variables(pattern.raw());
            let resource_part = crate::arn::resource_part(&text).unwrap_or(&text);
            let wildcards: Vec<&str> = ["+", "#"]
                .into_iter()
                .filter(|wildcard| resource_part.contains(wildcard))
                .collect();
            if !wildcards.is_empty() {
                self.push(
                    FindingKind::MqttWildcardInDeny,
                    Some(index),
                    format!(
                        "Deny resource {} contains MQTT wildcard {}; in policies + and # are literal characters \
                         (reference 4.3), so this only denies that exact string, not the topics it seems to \
                         cover; use * (and ? for one character)",
                        pattern.raw(),
                        wildcards.join(" and ")
                    ),
                );
            }
        }
    }

    /// Reference 4.3: Allow `topicfilter/a/*` + Deny `topicfilter/a/restricted/*` still lets a client subscribe
    /// to `a/#` and receive `a/restricted/...`.
    fn check_deny_bypass(&mut self, index: usize, statement: &CompiledStatement) {
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

    fn check_client_id_without_attached_thing(&mut self) {
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

    /// Runs probes with `context`, grouping the allowed ones by the statement that allowed them.
    fn run_probes(
        &self,
        probes: &[Probe],
        context: &ConnectionContext,
    ) -> BTreeMap<usize, Vec<String>> {
        let mut by_statement: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for probe in probes {
            let arn = self.arns.arn(probe.resource_type, &probe.name);
            let evaluation = self.policy.evaluate(probe.action, &arn, context);
            if evaluation.decision == Decision::Allow {
                for reason in evaluation.reasons {
                    by_statement
                        .entry(reason.statement_index)
                        .or_default()
                        .push(probe.describe());
                }
            }
        }
        by_statement
    }

    fn push_probe_findings(
        &mut self,
        kind: FindingKind,
        allowed: BTreeMap<usize, Vec<String>>,
        describe: impl Fn(&str) -> String,
    ) {
        for (index, probes) in allowed {
            let message = describe(&probes.join(", "));
            self.push(kind, Some(index), message);
        }
    }

    fn probe_cross_device_access(&mut self) {
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

    fn probe_connect_as_other_client(&mut self) {
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

    fn probe_broad_subscriptions(&mut self) {
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

    fn probe_connectivity_shadow(&mut self) {
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

fn raw_resources(statement: &CompiledStatement) -> String {
    let list: Vec<&str> = statement
        .resources()
        .iter()
        .map(|pattern| pattern.raw())
        .collect();
    if statement.is_not_resource() {
        format!("NotResource {}", list.join(", "))
    } else {
        list.join(", ")
    }
}

/// The text with `${...}` sections removed (a variable's name never holds an MQTT wildcard the author meant).
fn without_variables(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        output.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(close) => rest = &rest[start + close + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    output.push_str(rest);
    output
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

    #[test]
    fn variables_are_stripped_before_looking_for_mqtt_wildcards() {
        assert_eq!(without_variables("topic/${iot:ClientId}/#"), "topic//#");
        assert_eq!(without_variables("a${b"), "a${b");
    }

    #[test]
    fn finding_display_names_check_policy_and_statement() {
        let finding = Finding {
            kind: FindingKind::WildcardResource,
            check: FindingKind::WildcardResource.check(),
            policy: "p".to_owned(),
            statement: Some(2),
            message: "m".to_owned(),
        };
        assert_eq!(
            finding.to_string(),
            "[IOT_POLICY_OVERLY_PERMISSIVE_CHECK] WildcardResource policy \"p\" statement 2: m"
        );
    }
}

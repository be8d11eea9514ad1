//! Runs every check on each policy, in a fixed order: static checks of the whole document first, then per
//! statement, then the probes. The checks themselves are `impl PolicyAuditor` blocks, one file per check.

use std::collections::BTreeMap;

use super::{AuditOptions, Finding, FindingKind};
use crate::arn::{ArnScope, ResourceType};
use crate::context::ConnectionContext;
use crate::document::{Effect, PolicyDocument};
use crate::evaluate::{CompiledPolicy, CompiledStatement, Decision};
use crate::template::{TemplateError, load_policies_from_template};

/// Probe names no sensible policy grants on purpose.
pub(super) const UNRELATED_CLIENT: &str = "zz-audit-unrelated-client";
pub(super) const UNRELATED_TOPIC: &str = "zz-audit/unrelated/topic";
pub(super) const UNRELATED_FILTER: &str = "zz-audit/unrelated/filter";
pub(super) const UNRELATED_THING: &str = "zz-audit-unrelated-thing";

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

/// One policy under audit: the compiled policy the probes evaluate, its document for the static checks,
/// and the findings so far.
pub(super) struct PolicyAuditor<'a> {
    pub(super) policy: &'a CompiledPolicy,
    pub(super) document: &'a PolicyDocument,
    pub(super) options: &'a AuditOptions,
    pub(super) arns: ArnScope,
    pub(super) device_a: ConnectionContext,
    pub(super) findings: Vec<Finding>,
}

/// One probe: an action on a resource that must stay denied.
pub(super) struct Probe {
    action: &'static str,
    resource_type: ResourceType,
    name: String,
}

impl Probe {
    pub(super) fn new(
        action: &'static str,
        resource_type: ResourceType,
        name: impl Into<String>,
    ) -> Probe {
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

    pub(super) fn push(&mut self, kind: FindingKind, statement: Option<usize>, message: String) {
        self.findings.push(Finding {
            kind,
            check: kind.check(),
            policy: self.policy.name().to_owned(),
            statement,
            message,
        });
    }

    /// Runs probes with `context`, grouping the allowed ones by the statement that allowed them.
    pub(super) fn run_probes(
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

    pub(super) fn push_probe_findings(
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
}

/// The statement's resources as written, for messages.
pub(super) fn raw_resources(statement: &CompiledStatement) -> String {
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

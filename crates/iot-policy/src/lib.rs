//! AWS IoT Core policies for the emulator, the CDK tests and the audit: parse policy documents, evaluate
//! `(action, resource, connection)` requests the way AWS IoT does (reference section 4), read the
//! `AWS::IoT::Policy` resources of a synthesized CloudFormation template (the template itself, with its
//! intrinsics, is read by the `cfn-template` crate), and audit a policy for what AWS IoT
//! Device Defender's policy checks would flag plus the device-isolation rules of our contract
//! (architecture.md section 3, "Device policy").
//!
//! ```
//! use iot_policy::{ArnScope, CompiledPolicy, ConnectionContext, Decision, PolicyDocument, actions};
//!
//! let document = PolicyDocument::from_json_str(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{"Effect": "Allow", "Action": "iot:Publish",
//!                    "Resource": "arn:aws:iot:us-east-1:123456789012:topic/data/${iot:Connection.Thing.ThingName}/*"}]
//! }"#).unwrap();
//! let policy = CompiledPolicy::compile("device", &document);
//! let arns = ArnScope::new("us-east-1", "123456789012");
//! let device = ConnectionContext::attached_thing("ratchet");
//! assert_eq!(policy.decide(actions::PUBLISH, &arns.topic("data/ratchet/temperature"), &device), Decision::Allow);
//! assert_eq!(policy.decide(actions::PUBLISH, &arns.topic("data/other/temperature"), &device), Decision::ImplicitDeny);
//! ```

mod arn;
mod audit;
mod condition;
mod context;
mod document;
mod evaluate;
mod pattern;
mod template;
mod variables;

pub use arn::{ArnBuffer, ArnScope, ResourceType, actions};
pub use audit::{AuditCheck, AuditOptions, Finding, FindingKind, audit, audit_template};
pub use context::{
    AltNameKind, CertificateContext, ConnectionContext, DnAttribute, ThingAssociation, ThingContext,
};
pub use document::{
    ConditionEntry, Effect, MAX_POLICY_DOCUMENT_CHARS, POLICY_VERSION_WITH_VARIABLES,
    PolicyDocument, PolicyError, ResourceSpec, Statement, StatementProblem,
};
pub use evaluate::{
    CompiledPolicy, CompiledStatement, Decision, Evaluation, MatchedStatement, PolicySet,
    decide_policies, evaluate_policies,
};
pub use pattern::Pattern;
pub use template::{TemplateError, load_policies_from_template, load_policies_from_template_value};
pub use variables::{PolicyVariable, ResolvedValues};

//! A policy audit: what AWS IoT Device Defender's two policy audit checks would flag, plus our own
//! device-isolation probes for the contract's device policy (architecture.md section 3, docs/policy.md).
//!
//! Every policy is audited on its own, as Device Defender does. Most checks *probe* the compiled policy: they
//! evaluate it for a device "thing A" (client id = thing name, certificate attached) against resources it must
//! not reach (thing B's topics, `#`, the cloud-owned `connectivity` shadow), so the audit agrees with the
//! evaluator the broker uses instead of second-guessing pattern text.
//!
//! One file per check, named after the [`FindingKind`] it reports (as the fixtures in `tests/fixtures/audit/`
//! are); the findings model is in `finding.rs`, the probe devices in `options.rs`, and `runner.rs` runs the
//! checks in a fixed order.

mod finding;
mod options;
mod runner;

mod action_resource_mismatch;
mod client_id_without_attached_thing;
mod connect_as_other_client;
mod connectivity_shadow_writable;
mod cross_device_access;
mod deny_bypassed_by_wildcard_subscription;
mod mqtt_wildcard_in_deny;
mod policy_too_large;
mod policy_variables_ignored;
mod subscribe_to_all_topics;
mod unknown_policy_variable;
mod unsupported_condition_operator;
mod wildcard_resource;

pub use finding::{AuditCheck, Finding, FindingKind};
pub use options::AuditOptions;
pub use runner::{audit, audit_template};

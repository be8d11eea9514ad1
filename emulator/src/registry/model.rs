//! The registry's records, the indexes derived from them, and the typed operations that change them.
//!
//! Every change is a list of [`Op`]s: the registry validates a request against the current data, writes the ops
//! to the journal, then applies them here. Replaying the journal at open applies the same ops, so there is one
//! code path from an operation to its effect on the data. Ops carry whole records (a thing, a certificate, a
//! policy with its at most five versions), which makes applying one idempotent and its size that of the change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use iot_policy::{CompiledPolicy, PolicyDocument};
use serde::{Deserialize, Serialize};

use super::{AttachmentKind, CertificateStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThingRecord {
    /// `thingId`: a UUID given at creation, stable for the thing's life.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Starts at 1; every UpdateThing adds one (`expectedVersion` compares against it).
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CertificateRecord {
    pub pem: String,
    pub status: CertificateStatus,
    pub created_ms: i64,
    pub last_modified_ms: i64,
    /// Starts at 1; every UpdateCertificate adds one, as AWS's `customerVersion`.
    pub customer_version: i64,
    /// A UUID renewed on every change, as AWS's `generationId`.
    pub generation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PolicyVersionRecord {
    /// The document text as the caller gave it (GetPolicy returns it verbatim).
    pub document: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PolicyRecord {
    /// Version number -> version; at most five.
    pub versions: BTreeMap<u32, PolicyVersionRecord>,
    pub default_version: u32,
    /// Version ids are never reused, as on AWS: the next CreatePolicyVersion gets this one.
    pub next_version: u32,
    pub created_ms: i64,
    pub last_modified_ms: i64,
    pub generation_id: String,
}

impl PolicyRecord {
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .get(&self.default_version)
            .map(|version| version.document.as_str())
    }
}

/// What is persisted: the snapshot's content and what the journal's ops change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct State {
    #[serde(default)]
    pub things: BTreeMap<String, ThingRecord>,
    #[serde(default)]
    pub certificates: BTreeMap<String, CertificateRecord>,
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyRecord>,
    /// Certificate id -> attached policy names.
    #[serde(default)]
    pub principal_policies: BTreeMap<String, BTreeSet<String>>,
    /// Thing name -> certificate id -> association kind.
    #[serde(default)]
    pub thing_principals: BTreeMap<String, BTreeMap<String, AttachmentKind>>,
}

/// The state and the lookups the API needs in the other direction, kept in step by [`RegistryData::apply`] so
/// that `principal()`, ListTargetsForPolicy, ListPrincipalThings and ListCertificates never scan everything.
#[derive(Debug, Default)]
pub(super) struct RegistryData {
    pub state: State,
    /// Policy name -> certificate ids it is attached to.
    pub policy_targets: HashMap<String, BTreeSet<String>>,
    /// Certificate id -> thing names it is attached to.
    pub principal_things: HashMap<String, BTreeSet<String>>,
    /// (creation time, id): ListCertificates' order.
    pub certificates_by_creation: BTreeSet<(i64, String)>,
    /// Policy name -> its compiled default version.
    pub compiled: HashMap<String, Arc<CompiledPolicy>>,
}

/// One typed change, externally tagged (`{"putThing":{...}}`): an internally tagged enum would buffer its
/// content and lose the numeric keys of policy versions. A journal line holds the ops of one API call, so a call is applied whole or not at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum Op {
    #[serde(rename_all = "camelCase")]
    PutThing { name: String, thing: ThingRecord },
    #[serde(rename_all = "camelCase")]
    DeleteThing { name: String },
    #[serde(rename_all = "camelCase")]
    PutCertificate {
        id: String,
        certificate: CertificateRecord,
    },
    /// Also detaches the certificate's policies (DeleteCertificate with forceDelete).
    #[serde(rename_all = "camelCase")]
    DeleteCertificate { id: String },
    #[serde(rename_all = "camelCase")]
    PutPolicy { name: String, policy: PolicyRecord },
    #[serde(rename_all = "camelCase")]
    DeletePolicy { name: String },
    #[serde(rename_all = "camelCase")]
    AttachPolicy {
        policy: String,
        certificate_id: String,
    },
    #[serde(rename_all = "camelCase")]
    DetachPolicy {
        policy: String,
        certificate_id: String,
    },
    #[serde(rename_all = "camelCase")]
    AttachThingPrincipal {
        thing: String,
        certificate_id: String,
        kind: AttachmentKind,
    },
    #[serde(rename_all = "camelCase")]
    DetachThingPrincipal {
        thing: String,
        certificate_id: String,
    },
}

impl RegistryData {
    /// Builds the indexes and compiled policies of a loaded state.
    pub fn from_state(state: State) -> Result<RegistryData, String> {
        let mut data = RegistryData {
            state,
            ..RegistryData::default()
        };
        for (id, policies) in &data.state.principal_policies {
            for policy in policies {
                data.policy_targets
                    .entry(policy.clone())
                    .or_default()
                    .insert(id.clone());
            }
        }
        for (thing, principals) in &data.state.thing_principals {
            for id in principals.keys() {
                data.principal_things
                    .entry(id.clone())
                    .or_default()
                    .insert(thing.clone());
            }
        }
        data.certificates_by_creation = data
            .state
            .certificates
            .iter()
            .map(|(id, record)| (record.created_ms, id.clone()))
            .collect();
        let names: Vec<String> = data.state.policies.keys().cloned().collect();
        for name in names {
            data.recompile(&name)?;
        }
        Ok(data)
    }

    fn recompile(&mut self, name: &str) -> Result<(), String> {
        let Some(document) = self
            .state
            .policies
            .get(name)
            .and_then(PolicyRecord::default_document)
        else {
            self.compiled.remove(name);
            return Ok(());
        };
        let parsed = PolicyDocument::from_json_str(document)
            .map_err(|error| format!("policy {name}: {error}"))?;
        self.compiled.insert(
            name.to_owned(),
            Arc::new(CompiledPolicy::compile(name, &parsed)),
        );
        Ok(())
    }

    /// Applies one op. Ops are validated before they are journaled; an `Err` here means a stored document no
    /// longer parses (a corrupt or hand-edited journal).
    pub fn apply(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::PutThing { name, thing } => {
                self.state.things.insert(name, thing);
            }
            Op::DeleteThing { name } => {
                self.state.things.remove(&name);
                for id in self
                    .state
                    .thing_principals
                    .remove(&name)
                    .unwrap_or_default()
                    .into_keys()
                {
                    self.unindex_principal_thing(&id, &name);
                }
            }
            Op::PutCertificate { id, certificate } => {
                if let Some(old) = self.state.certificates.get(&id) {
                    self.certificates_by_creation
                        .remove(&(old.created_ms, id.clone()));
                }
                self.certificates_by_creation
                    .insert((certificate.created_ms, id.clone()));
                self.state.certificates.insert(id, certificate);
            }
            Op::DeleteCertificate { id } => {
                if let Some(old) = self.state.certificates.remove(&id) {
                    self.certificates_by_creation
                        .remove(&(old.created_ms, id.clone()));
                }
                for policy in self
                    .state
                    .principal_policies
                    .remove(&id)
                    .unwrap_or_default()
                {
                    self.unindex_policy_target(&policy, &id);
                }
                for thing in self.principal_things.remove(&id).unwrap_or_default() {
                    if let Some(principals) = self.state.thing_principals.get_mut(&thing) {
                        principals.remove(&id);
                        if principals.is_empty() {
                            self.state.thing_principals.remove(&thing);
                        }
                    }
                }
            }
            Op::PutPolicy { name, policy } => {
                self.state.policies.insert(name.clone(), policy);
                self.recompile(&name)?;
            }
            Op::DeletePolicy { name } => {
                self.state.policies.remove(&name);
                self.compiled.remove(&name);
                for id in self.policy_targets.remove(&name).unwrap_or_default() {
                    if let Some(policies) = self.state.principal_policies.get_mut(&id) {
                        policies.remove(&name);
                        if policies.is_empty() {
                            self.state.principal_policies.remove(&id);
                        }
                    }
                }
            }
            Op::AttachPolicy {
                policy,
                certificate_id,
            } => {
                self.state
                    .principal_policies
                    .entry(certificate_id.clone())
                    .or_default()
                    .insert(policy.clone());
                self.policy_targets
                    .entry(policy)
                    .or_default()
                    .insert(certificate_id);
            }
            Op::DetachPolicy {
                policy,
                certificate_id,
            } => {
                if let Some(policies) = self.state.principal_policies.get_mut(&certificate_id) {
                    policies.remove(&policy);
                    if policies.is_empty() {
                        self.state.principal_policies.remove(&certificate_id);
                    }
                }
                self.unindex_policy_target(&policy, &certificate_id);
            }
            Op::AttachThingPrincipal {
                thing,
                certificate_id,
                kind,
            } => {
                self.state
                    .thing_principals
                    .entry(thing.clone())
                    .or_default()
                    .insert(certificate_id.clone(), kind);
                self.principal_things
                    .entry(certificate_id)
                    .or_default()
                    .insert(thing);
            }
            Op::DetachThingPrincipal {
                thing,
                certificate_id,
            } => {
                if let Some(principals) = self.state.thing_principals.get_mut(&thing) {
                    principals.remove(&certificate_id);
                    if principals.is_empty() {
                        self.state.thing_principals.remove(&thing);
                    }
                }
                self.unindex_principal_thing(&certificate_id, &thing);
            }
        }
        Ok(())
    }

    fn unindex_policy_target(&mut self, policy: &str, certificate_id: &str) {
        if let Some(targets) = self.policy_targets.get_mut(policy) {
            targets.remove(certificate_id);
            if targets.is_empty() {
                self.policy_targets.remove(policy);
            }
        }
    }

    fn unindex_principal_thing(&mut self, certificate_id: &str, thing: &str) {
        if let Some(things) = self.principal_things.get_mut(certificate_id) {
            things.remove(thing);
            if things.is_empty() {
                self.principal_things.remove(certificate_id);
            }
        }
    }
}

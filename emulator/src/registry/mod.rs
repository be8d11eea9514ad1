//! The registry of things, certificates, policies (with versions) and their attachments: what the AWS IoT
//! control plane manages (`CreateThing`, `CreateKeysAndCertificate`, `CreatePolicyVersion`, `AttachPolicy`, ...).
//! The broker asks it who a certificate is at the TLS handshake and which policies apply at CONNECT; the control
//! plane (`crate::controlplane`) serves its operations over HTTP.
//!
//! The registry is ARN-free and HTTP-free: it speaks names and certificate ids and answers with typed errors that
//! carry AWS's error names ([`RegistryError::aws_error_code`]). All validation lives here, so the API, the CLI and
//! the template loader refuse the same inputs.
//!
//! State is a snapshot plus a journal in the state directory (see [`persistence`]): each change is one appended,
//! synced line, so a provisioned device keeps working across restarts and a change costs the size of the change.

mod errors;
mod model;
mod persistence;
pub mod validation;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::Engine as _;
use iot_policy::{PolicyDocument, PolicySet, ThingAssociation, ThingContext};
use serde::{Deserialize, Serialize};

use crate::identity::{self, EmulatorCa, IssuedCertificate};

pub use errors::RegistryError;
pub use persistence::{Durability, JOURNAL_FILE, LOCK_FILE, SNAPSHOT_FILE};

use model::{CertificateRecord, Op, PolicyRecord, PolicyVersionRecord, RegistryData, ThingRecord};
use persistence::Store;

/// AWS keeps at most five versions of a policy (CreatePolicyVersion answers VersionsLimitExceededException).
pub const MAX_POLICY_VERSIONS: usize = 5;

/// `ACTIVE`, `INACTIVE` or `REVOKED`, as `UpdateCertificate` sets them. Only ACTIVE certificates may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
}

impl CertificateStatus {
    /// The status as AWS spells it.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Revoked => "REVOKED",
        }
    }
}

impl std::str::FromStr for CertificateStatus {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_uppercase().as_str() {
            "ACTIVE" => Ok(CertificateStatus::Active),
            "INACTIVE" => Ok(CertificateStatus::Inactive),
            "REVOKED" => Ok(CertificateStatus::Revoked),
            _ => Err(RegistryError::UnknownStatus(text.to_owned())),
        }
    }
}

/// `thingPrincipalType` of AttachThingPrincipal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttachmentKind {
    #[default]
    NonExclusiveThing,
    ExclusiveThing,
}

/// Where a page starts (`marker` as a previous [`Paged::next_marker`] returned it) and how long it is. The caller
/// clamps `page_size` (AWS: 1..=250); 0 is read as 1.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub marker: Option<String>,
    pub page_size: usize,
}

/// One page of a listing; `next_marker` is opaque to callers (base64, as AWS's `Marker` pattern) and `None` on
/// the last page.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingView {
    pub name: String,
    /// `thingId`: a UUID (v4), stable for the thing's life.
    pub id: String,
    pub type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Starts at 1.
    pub version: i64,
}

/// ListThings' filters; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct ThingFilter {
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub thing_type_name: Option<String>,
}

/// UpdateThing's request.
#[derive(Debug, Clone, Default)]
pub struct ThingUpdate {
    pub type_name: Option<String>,
    pub remove_thing_type: bool,
    /// With `merge`, merged into the stored attributes (an empty value removes that attribute); without, they
    /// replace them.
    pub attributes: Option<BTreeMap<String, String>>,
    pub merge: bool,
    pub expected_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateView {
    pub id: String,
    pub pem: String,
    pub status: CertificateStatus,
    pub created_ms: i64,
    pub last_modified_ms: i64,
    pub customer_version: i64,
    pub generation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    pub name: String,
    pub default_version_id: String,
    /// The default version's document.
    pub document: String,
    pub created_ms: i64,
    pub last_modified_ms: i64,
    pub generation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionView {
    pub name: String,
    pub version_id: String,
    pub document: String,
    pub is_default: bool,
    pub created_ms: i64,
}

/// What the broker needs to know about an authenticated certificate.
#[derive(Debug, Clone)]
pub struct PrincipalView {
    pub certificate_id: String,
    pub status: CertificateStatus,
    /// The compiled default version of each attached policy.
    pub policies: PolicySet,
    /// Things this certificate is attached to, as policy thing contexts.
    pub things: Vec<ThingContext>,
}

impl PrincipalView {
    /// The thing a connection with `client_id` is associated with (reference 4.4): an exclusive thing always; a
    /// non-exclusive one only when the client id is its name.
    pub fn thing_for_client(&self, client_id: &str) -> Option<ThingContext> {
        self.things
            .iter()
            .find(|thing| thing.association == ThingAssociation::Exclusive)
            .or_else(|| self.things.iter().find(|thing| thing.name == client_id))
            .cloned()
    }
}

/// A mutex guard that survives a panic in another holder: the registry's data is changed only after validation
/// and journaling, so a panicking holder cannot leave it half-changed.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The emulator's registry. Cheap to share (`Arc`); all methods take `&self`.
#[derive(Debug)]
pub struct Registry {
    data: RwLock<RegistryData>,
    /// `None` for an in-memory registry.
    store: Option<Store>,
    /// Bumped on every change, so connected sessions notice new policies and attachments cheaply.
    generation: AtomicU64,
}

impl Registry {
    /// Opens the registry in `state_dir` (snapshot `registry.json` plus journal `registry.journal`), migrating a
    /// registry of the first format, or starts empty when there is none yet.
    pub fn open(state_dir: &Path) -> Result<Registry, RegistryError> {
        Registry::open_with(state_dir, Durability::EveryChange)
    }

    /// [`Registry::open`] with a choice of when changes reach stable storage.
    pub fn open_with(state_dir: &Path, durability: Durability) -> Result<Registry, RegistryError> {
        let (store, data) = Store::open(state_dir, durability)?;
        Ok(Registry {
            data: RwLock::new(data),
            store: Some(store),
            generation: AtomicU64::new(0),
        })
    }

    /// A registry that is never written to disk (tests, benches).
    pub fn in_memory() -> Registry {
        Registry {
            data: RwLock::new(RegistryData::default()),
            store: None,
            generation: AtomicU64::new(0),
        }
    }

    /// Compacts the journal at run time from `bytes` on instead of [`persistence::MIN_COMPACTION_BYTES`].
    #[cfg(test)]
    fn with_compaction_floor(mut self, bytes: u64) -> Registry {
        if let Some(store) = &mut self.store {
            store.compaction_floor = bytes;
        }
        self
    }

    // ----- Things -----

    /// `CreateThing`: idempotent when the thing exists with the same type and attributes, otherwise
    /// ResourceAlreadyExistsException (AWS documents both).
    pub fn create_thing(
        &self,
        name: &str,
        type_name: Option<&str>,
        attributes: BTreeMap<String, String>,
    ) -> Result<ThingView, RegistryError> {
        validation::thing_name(name)?;
        if let Some(type_name) = type_name {
            validation::thing_type_name(type_name)?;
        }
        validation::attributes(&attributes)?;
        self.change(|data| {
            if let Some(existing) = data.state.things.get(name) {
                if existing.type_name.as_deref() == type_name && existing.attributes == attributes {
                    return Ok((Vec::new(), thing_view(name, existing)));
                }
                return Err(RegistryError::ThingAlreadyExists(name.to_owned()));
            }
            let thing = ThingRecord {
                id: uuid::Uuid::new_v4().to_string(),
                type_name: type_name.map(str::to_owned),
                attributes,
                version: 1,
            };
            let view = thing_view(name, &thing);
            Ok((
                vec![Op::PutThing {
                    name: name.to_owned(),
                    thing,
                }],
                view,
            ))
        })
    }

    /// Creates the thing unless it exists (whatever its attributes): provisioning an existing thing again adds a
    /// certificate to it instead of failing.
    pub fn ensure_thing(&self, name: &str) -> Result<ThingView, RegistryError> {
        match self.describe_thing(name) {
            Ok(view) => Ok(view),
            Err(RegistryError::NoSuchThing(_)) => {
                match self.create_thing(name, None, BTreeMap::new()) {
                    // Another caller created it in between.
                    Err(RegistryError::ThingAlreadyExists(_)) => self.describe_thing(name),
                    other => other,
                }
            }
            Err(error) => Err(error),
        }
    }

    pub fn describe_thing(&self, name: &str) -> Result<ThingView, RegistryError> {
        validation::thing_name(name)?;
        let data = self.read();
        let thing = data
            .state
            .things
            .get(name)
            .ok_or_else(|| RegistryError::NoSuchThing(name.to_owned()))?;
        Ok(thing_view(name, thing))
    }

    pub fn thing_exists(&self, name: &str) -> bool {
        self.read().state.things.contains_key(name)
    }

    /// `ListThings` in name order.
    pub fn list_things(
        &self,
        filter: &ThingFilter,
        page: &Page,
    ) -> Result<Paged<ThingView>, RegistryError> {
        let after = decode_marker(page)?;
        let data = self.read();
        let matches = |thing: &ThingRecord| {
            let type_matches = filter
                .thing_type_name
                .as_ref()
                .is_none_or(|wanted| thing.type_name.as_ref() == Some(wanted));
            let attribute_matches = match (&filter.attribute_name, &filter.attribute_value) {
                (Some(name), Some(value)) => thing.attributes.get(name) == Some(value),
                (Some(name), None) => thing.attributes.contains_key(name),
                (None, _) => true,
            };
            type_matches && attribute_matches
        };
        let entries = data
            .state
            .things
            .range::<str, _>(after_bound(after.as_deref()))
            .filter(|(_, thing)| matches(thing))
            .map(|(name, thing)| (name.clone(), thing_view(name, thing)));
        Ok(paginate(entries, page.page_size))
    }

    /// `UpdateThing`.
    pub fn update_thing(&self, name: &str, update: ThingUpdate) -> Result<(), RegistryError> {
        validation::thing_name(name)?;
        if let Some(type_name) = &update.type_name {
            validation::thing_type_name(type_name)?;
            if update.remove_thing_type {
                return Err(RegistryError::InvalidRequest(
                    "Cannot both set thingTypeName and removeThingType".to_owned(),
                ));
            }
        }
        if let Some(attributes) = &update.attributes {
            validation::attributes(attributes)?;
        }
        self.change(|data| {
            let existing = data
                .state
                .things
                .get(name)
                .ok_or_else(|| RegistryError::NoSuchThing(name.to_owned()))?;
            check_expected_version(name, update.expected_version, existing.version)?;
            let mut thing = existing.clone();
            if update.remove_thing_type {
                thing.type_name = None;
            } else if let Some(type_name) = update.type_name {
                thing.type_name = Some(type_name);
            }
            if let Some(attributes) = update.attributes {
                if !update.merge {
                    thing.attributes.clear();
                }
                // AWS: "To remove an attribute, call UpdateThing with an empty attribute value."
                for (key, value) in attributes {
                    if value.is_empty() {
                        thing.attributes.remove(&key);
                    } else {
                        thing.attributes.insert(key, value);
                    }
                }
                if thing.attributes.len() > validation::MAX_ATTRIBUTES {
                    return Err(RegistryError::InvalidRequest(format!(
                        "A thing can have at most {} attributes",
                        validation::MAX_ATTRIBUTES
                    )));
                }
            }
            thing.version += 1;
            Ok((
                vec![Op::PutThing {
                    name: name.to_owned(),
                    thing,
                }],
                (),
            ))
        })
    }

    /// `DeleteThing`: deleting a thing that does not exist succeeds (AWS documents this). A thing with attached
    /// principals is refused with InvalidRequestException, as AWS refuses it; detach them first.
    pub fn delete_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<(), RegistryError> {
        validation::thing_name(name)?;
        self.change(|data| {
            let Some(existing) = data.state.things.get(name) else {
                return Ok((Vec::new(), ()));
            };
            check_expected_version(name, expected_version, existing.version)?;
            if data
                .state
                .thing_principals
                .get(name)
                .is_some_and(|principals| !principals.is_empty())
            {
                return Err(RegistryError::InvalidRequest(format!(
                    "Cannot delete thing {name}: it has attached principals; detach them with DetachThingPrincipal first"
                )));
            }
            Ok((
                vec![Op::DeleteThing {
                    name: name.to_owned(),
                }],
                (),
            ))
        })
    }

    // ----- Certificates -----

    /// `CreateKeysAndCertificate`: a new key pair and a certificate signed by the emulator CA, ACTIVE with
    /// `set_as_active`, INACTIVE otherwise (as AWS).
    pub fn create_keys_and_certificate(
        &self,
        ca: &EmulatorCa,
        set_as_active: bool,
    ) -> Result<IssuedCertificate, RegistryError> {
        let issued = ca.issue_device_certificate()?;
        self.insert_certificate(
            &issued.certificate_id,
            &issued.certificate_pem,
            status_for(set_as_active),
        )?;
        Ok(issued)
    }

    /// `CreateCertificateFromCsr`: the emulator CA signs the CSR's public key (the subject is the CSR's).
    pub fn create_certificate_from_csr(
        &self,
        ca: &EmulatorCa,
        csr_pem: &str,
        set_as_active: bool,
    ) -> Result<CertificateView, RegistryError> {
        if csr_pem.is_empty() || csr_pem.len() > validation::MAX_CSR_CHARS {
            return Err(RegistryError::InvalidRequest(format!(
                "The certificate signing request must have between 1 and {} characters",
                validation::MAX_CSR_CHARS
            )));
        }
        let (pem, der) = ca
            .sign_certificate_request(csr_pem)
            .map_err(|error| RegistryError::InvalidRequest(format!("Invalid CSR: {error}")))?;
        let id = identity::certificate_id(&der);
        self.insert_certificate(&id, &pem, status_for(set_as_active))?;
        self.describe_certificate(&id)
    }

    /// `RegisterCertificate` (without a CA, as `RegisterCertificateWithoutCA`) of a PEM certificate; returns its
    /// id. An already registered certificate is ResourceAlreadyExistsException.
    pub fn register_certificate(
        &self,
        certificate_pem: &str,
        status: CertificateStatus,
    ) -> Result<String, RegistryError> {
        if certificate_pem.len() > validation::MAX_CERTIFICATE_PEM_CHARS {
            return Err(RegistryError::InvalidRequest(format!(
                "The certificate PEM must have at most {} characters",
                validation::MAX_CERTIFICATE_PEM_CHARS
            )));
        }
        let der = identity::pem_to_der(certificate_pem).map_err(|_| {
            RegistryError::InvalidRequest(
                "The certificate is not a PEM X.509 certificate".to_owned(),
            )
        })?;
        let id = identity::certificate_id(&der);
        self.insert_certificate(&id, certificate_pem, status)?;
        Ok(id)
    }

    fn insert_certificate(
        &self,
        id: &str,
        pem: &str,
        status: CertificateStatus,
    ) -> Result<(), RegistryError> {
        self.change(|data| {
            if data.state.certificates.contains_key(id) {
                return Err(RegistryError::CertificateAlreadyExists(id.to_owned()));
            }
            let now = crate::clock::now_millis();
            let certificate = CertificateRecord {
                pem: pem.to_owned(),
                status,
                created_ms: now,
                last_modified_ms: now,
                customer_version: 1,
                generation_id: uuid::Uuid::new_v4().to_string(),
            };
            Ok((
                vec![Op::PutCertificate {
                    id: id.to_owned(),
                    certificate,
                }],
                (),
            ))
        })
    }

    pub fn describe_certificate(&self, id: &str) -> Result<CertificateView, RegistryError> {
        let id = validation::certificate_id(id)?;
        let data = self.read();
        let record = data
            .state
            .certificates
            .get(&id)
            .ok_or_else(|| RegistryError::NoSuchCertificate(id.clone()))?;
        Ok(certificate_view(&id, record))
    }

    /// `ListCertificates` by creation time (then id), oldest first with `ascending`.
    pub fn list_certificates(
        &self,
        page: &Page,
        ascending: bool,
    ) -> Result<Paged<CertificateView>, RegistryError> {
        let after = match decode_marker(page)? {
            None => None,
            Some(text) => Some(
                text.split_once(':')
                    .and_then(|(millis, id)| Some((millis.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(invalid_marker)?,
            ),
        };
        let data = self.read();
        let index = &data.certificates_by_creation;
        let keys: Box<dyn Iterator<Item = &(i64, String)>> = match (after, ascending) {
            (None, true) => Box::new(index.iter()),
            (None, false) => Box::new(index.iter().rev()),
            (Some(key), true) => Box::new(index.range((Bound::Excluded(key), Bound::Unbounded))),
            (Some(key), false) => {
                Box::new(index.range((Bound::Unbounded, Bound::Excluded(key))).rev())
            }
        };
        let entries = keys.filter_map(|(millis, id)| {
            let record = data.state.certificates.get(id)?;
            Some((format!("{millis}:{id}"), certificate_view(id, record)))
        });
        Ok(paginate(entries, page.page_size))
    }

    /// `UpdateCertificate --new-status`. A REVOKED certificate cannot be made ACTIVE again
    /// (CertificateStateException), as on AWS.
    pub fn set_certificate_status(
        &self,
        certificate_id: &str,
        status: CertificateStatus,
    ) -> Result<(), RegistryError> {
        let id = validation::certificate_id(certificate_id)?;
        self.change(|data| {
            let existing = data
                .state
                .certificates
                .get(&id)
                .ok_or_else(|| RegistryError::NoSuchCertificate(id.clone()))?;
            if existing.status == CertificateStatus::Revoked && status == CertificateStatus::Active
            {
                return Err(RegistryError::CertificateState(format!(
                    "Certificate {id} is REVOKED and cannot be activated"
                )));
            }
            let mut certificate = existing.clone();
            certificate.status = status;
            certificate.last_modified_ms = crate::clock::now_millis();
            certificate.customer_version += 1;
            certificate.generation_id = uuid::Uuid::new_v4().to_string();
            Ok((
                vec![Op::PutCertificate {
                    id: id.clone(),
                    certificate,
                }],
                (),
            ))
        })
    }

    pub fn certificate_status(&self, certificate_id: &str) -> Option<CertificateStatus> {
        self.read()
            .state
            .certificates
            .get(certificate_id)
            .map(|record| record.status)
    }

    /// `DeleteCertificate`. As AWS: an ACTIVE certificate is CertificateStateException; one attached to a thing
    /// is DeleteConflictException; one with attached policies is DeleteConflictException unless `force_delete`,
    /// which detaches them (forceDelete never detaches things).
    pub fn delete_certificate(&self, id: &str, force_delete: bool) -> Result<(), RegistryError> {
        let id = validation::certificate_id(id)?;
        self.change(|data| {
            let existing = data
                .state
                .certificates
                .get(&id)
                .ok_or_else(|| RegistryError::NoSuchCertificate(id.clone()))?;
            if existing.status == CertificateStatus::Active {
                return Err(RegistryError::CertificateState(format!(
                    "Certificate {id} is ACTIVE; set it INACTIVE with UpdateCertificate before deleting it"
                )));
            }
            if data.principal_things.contains_key(&id) {
                return Err(RegistryError::DeleteConflict(format!(
                    "Things must be detached before deleting the certificate (id={id})"
                )));
            }
            if !force_delete && data.state.principal_policies.contains_key(&id) {
                return Err(RegistryError::DeleteConflict(format!(
                    "Certificate policies must be detached before deleting the certificate (id={id})"
                )));
            }
            Ok((vec![Op::DeleteCertificate { id: id.clone() }], ()))
        })
    }

    // ----- Policies -----

    /// `CreatePolicy`: version "1", the default.
    pub fn create_policy(
        &self,
        name: &str,
        document: &str,
    ) -> Result<PolicyVersionView, RegistryError> {
        validation::policy_name(name)?;
        validation::policy_document(name, document)?;
        self.change(|data| {
            if data.state.policies.contains_key(name) {
                return Err(RegistryError::PolicyAlreadyExists(name.to_owned()));
            }
            let policy = new_policy(document);
            let view = version_view(name, &policy, 1);
            Ok((
                vec![Op::PutPolicy {
                    name: name.to_owned(),
                    policy,
                }],
                view,
            ))
        })
    }

    pub fn get_policy(&self, name: &str) -> Result<PolicyView, RegistryError> {
        validation::policy_name(name)?;
        let data = self.read();
        let policy = data
            .state
            .policies
            .get(name)
            .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
        Ok(policy_view(name, policy))
    }

    pub fn policy_names(&self) -> Vec<String> {
        self.read().state.policies.keys().cloned().collect()
    }

    /// `ListPolicies` in name order.
    pub fn list_policies(
        &self,
        page: &Page,
        ascending: bool,
    ) -> Result<Paged<PolicyView>, RegistryError> {
        let after = decode_marker(page)?;
        let data = self.read();
        let policies = &data.state.policies;
        let view =
            |(name, policy): (&String, &PolicyRecord)| (name.clone(), policy_view(name, policy));
        let entries: Box<dyn Iterator<Item = (String, PolicyView)>> = match (after, ascending) {
            (None, true) => Box::new(policies.iter().map(view)),
            (None, false) => Box::new(policies.iter().rev().map(view)),
            (Some(after), true) => Box::new(
                policies
                    .range::<str, _>((Bound::Excluded(after.as_str()), Bound::Unbounded))
                    .map(view),
            ),
            (Some(after), false) => Box::new(
                policies
                    .range::<str, _>((Bound::Unbounded, Bound::Excluded(after.as_str())))
                    .rev()
                    .map(view),
            ),
        };
        Ok(paginate(entries, page.page_size))
    }

    /// `DeletePolicy`: refused (DeleteConflictException) while the policy is attached or has versions other than
    /// the default.
    pub fn delete_policy(&self, name: &str) -> Result<(), RegistryError> {
        validation::policy_name(name)?;
        self.change(|data| {
            let policy = data
                .state
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
            if data.policy_targets.contains_key(name) {
                return Err(RegistryError::DeleteConflict(format!(
                    "The policy cannot be deleted as the policy is attached to one or more principals (name={name})"
                )));
            }
            if policy.versions.len() > 1 {
                return Err(RegistryError::DeleteConflict(format!(
                    "Cannot delete the policy because it has one or more policy versions attached to it (name={name})"
                )));
            }
            Ok((
                vec![Op::DeletePolicy {
                    name: name.to_owned(),
                }],
                (),
            ))
        })
    }

    /// `CreatePolicyVersion`; a sixth version is VersionsLimitExceededException. With `set_as_default` the new
    /// version applies at once, also to open connections (reference 4.1).
    pub fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersionView, RegistryError> {
        validation::policy_name(name)?;
        validation::policy_document(name, document)?;
        self.change(|data| {
            let existing = data
                .state
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
            if existing.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(RegistryError::VersionsLimitExceeded(name.to_owned()));
            }
            let (policy, version) = with_new_version(existing, document, set_as_default);
            let view = version_view(name, &policy, version);
            Ok((
                vec![Op::PutPolicy {
                    name: name.to_owned(),
                    policy,
                }],
                view,
            ))
        })
    }

    pub fn get_policy_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<PolicyVersionView, RegistryError> {
        validation::policy_name(name)?;
        let version = validation::policy_version_id(name, version_id)?;
        let data = self.read();
        let policy = data
            .state
            .policies
            .get(name)
            .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
        if !policy.versions.contains_key(&version) {
            return Err(no_such_version(name, version_id));
        }
        Ok(version_view(name, policy, version))
    }

    /// `ListPolicyVersions`, oldest first (at most five, so never paged).
    pub fn list_policy_versions(
        &self,
        name: &str,
    ) -> Result<Vec<PolicyVersionView>, RegistryError> {
        validation::policy_name(name)?;
        let data = self.read();
        let policy = data
            .state
            .policies
            .get(name)
            .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
        Ok(policy
            .versions
            .keys()
            .map(|version| version_view(name, policy, *version))
            .collect())
    }

    /// `SetDefaultPolicyVersion`: applies at once, also to open connections (reference 4.1).
    pub fn set_default_policy_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<(), RegistryError> {
        validation::policy_name(name)?;
        let version = validation::policy_version_id(name, version_id)?;
        self.change(|data| {
            let existing = data
                .state
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
            if !existing.versions.contains_key(&version) {
                return Err(no_such_version(name, version_id));
            }
            let mut policy = existing.clone();
            policy.default_version = version;
            policy.last_modified_ms = crate::clock::now_millis();
            policy.generation_id = uuid::Uuid::new_v4().to_string();
            Ok((
                vec![Op::PutPolicy {
                    name: name.to_owned(),
                    policy,
                }],
                (),
            ))
        })
    }

    /// `DeletePolicyVersion`; the default version cannot be deleted (DeleteConflictException).
    pub fn delete_policy_version(&self, name: &str, version_id: &str) -> Result<(), RegistryError> {
        validation::policy_name(name)?;
        let version = validation::policy_version_id(name, version_id)?;
        self.change(|data| {
            let existing = data
                .state
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::NoSuchPolicy(name.to_owned()))?;
            if !existing.versions.contains_key(&version) {
                return Err(no_such_version(name, version_id));
            }
            if existing.default_version == version {
                return Err(RegistryError::DeleteConflict(format!(
                    "Cannot delete the default version of a policy (name={name}, version={version_id})"
                )));
            }
            let mut policy = existing.clone();
            policy.versions.remove(&version);
            policy.last_modified_ms = crate::clock::now_millis();
            Ok((
                vec![Op::PutPolicy {
                    name: name.to_owned(),
                    policy,
                }],
                (),
            ))
        })
    }

    /// Creates the policy, or makes `document` its new default version when it differs from the current default
    /// (an identical document changes nothing). This is what `up --template` and `iot-emulator policy` do on every
    /// run; when the policy already has five versions, the oldest non-default one is deleted to make room, which
    /// AWS would refuse (VersionsLimitExceededException) but a template reload should not.
    pub fn put_policy(&self, name: &str, document: &PolicyDocument) -> Result<(), RegistryError> {
        self.put_policy_text(name, &document.to_json().to_string())
    }

    /// `put_policy` for a document given as JSON text (stored as given).
    pub fn put_policy_json(&self, name: &str, json: &str) -> Result<(), RegistryError> {
        self.put_policy_text(name, json)
    }

    fn put_policy_text(&self, name: &str, document: &str) -> Result<(), RegistryError> {
        validation::policy_name(name)?;
        validation::policy_document(name, document)?;
        let wanted: serde_json::Value =
            serde_json::from_str(document).map_err(|error| RegistryError::MalformedPolicy {
                name: name.to_owned(),
                reason: error.to_string(),
            })?;
        self.change(|data| {
            let Some(existing) = data.state.policies.get(name) else {
                return Ok((
                    vec![Op::PutPolicy {
                        name: name.to_owned(),
                        policy: new_policy(document),
                    }],
                    (),
                ));
            };
            let current = existing
                .default_document()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
            if current.as_ref() == Some(&wanted) {
                return Ok((Vec::new(), ()));
            }
            let mut pruned = existing.clone();
            while pruned.versions.len() >= MAX_POLICY_VERSIONS {
                let Some(oldest) = pruned
                    .versions
                    .keys()
                    .copied()
                    .find(|version| *version != pruned.default_version)
                else {
                    break;
                };
                pruned.versions.remove(&oldest);
            }
            let (policy, _) = with_new_version(&pruned, document, true);
            Ok((
                vec![Op::PutPolicy {
                    name: name.to_owned(),
                    policy,
                }],
                (),
            ))
        })
    }

    /// Every `AWS::IoT::Policy` of a synthesized CloudFormation template (intrinsics resolved for `account` and
    /// `region`), put under its `PolicyName` (see [`Registry::put_policy`]). Returns the names.
    pub fn load_policies_from_template(
        &self,
        template_json: &str,
        account: &str,
        region: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let policies = iot_policy::load_policies_from_template(template_json, account, region)?;
        let mut names = Vec::with_capacity(policies.len());
        for (name, document) in policies {
            self.put_policy(&name, &document)?;
            names.push(name);
        }
        Ok(names)
    }

    // ----- Attachments -----

    /// `AttachPolicy --target <certificate>`; attaching an attached policy again changes nothing.
    pub fn attach_policy(&self, policy: &str, certificate_id: &str) -> Result<(), RegistryError> {
        validation::policy_name(policy)?;
        let id = validation::certificate_id(certificate_id)?;
        self.change(|data| {
            if !data.state.policies.contains_key(policy) {
                return Err(RegistryError::NoSuchPolicy(policy.to_owned()));
            }
            if !data.state.certificates.contains_key(&id) {
                return Err(RegistryError::NoSuchCertificate(id.clone()));
            }
            if data
                .state
                .principal_policies
                .get(&id)
                .is_some_and(|policies| policies.contains(policy))
            {
                return Ok((Vec::new(), ()));
            }
            Ok((
                vec![Op::AttachPolicy {
                    policy: policy.to_owned(),
                    certificate_id: id.clone(),
                }],
                (),
            ))
        })
    }

    /// `DetachPolicy`; detaching a policy that is not attached succeeds (AWS's DetachPolicy has no
    /// ResourceNotFoundException).
    pub fn detach_policy(&self, policy: &str, certificate_id: &str) -> Result<(), RegistryError> {
        validation::policy_name(policy)?;
        let id = validation::certificate_id(certificate_id)?;
        self.change(|data| {
            let attached = data
                .state
                .principal_policies
                .get(&id)
                .is_some_and(|policies| policies.contains(policy));
            if !attached {
                return Ok((Vec::new(), ()));
            }
            Ok((
                vec![Op::DetachPolicy {
                    policy: policy.to_owned(),
                    certificate_id: id.clone(),
                }],
                (),
            ))
        })
    }

    /// `ListAttachedPolicies` of a certificate, in name order.
    pub fn list_attached_policies(
        &self,
        certificate_id: &str,
        page: &Page,
    ) -> Result<Paged<String>, RegistryError> {
        let id = validation::certificate_id(certificate_id)?;
        let after = decode_marker(page)?;
        let data = self.read();
        if !data.state.certificates.contains_key(&id) {
            return Err(RegistryError::NoSuchCertificate(id));
        }
        let names = data.state.principal_policies.get(&id);
        Ok(page_of_names(names, after.as_deref(), page.page_size))
    }

    /// `ListTargetsForPolicy`: the certificate ids it is attached to, in id order.
    pub fn list_targets_for_policy(
        &self,
        policy: &str,
        page: &Page,
    ) -> Result<Paged<String>, RegistryError> {
        validation::policy_name(policy)?;
        let after = decode_marker(page)?;
        let data = self.read();
        if !data.state.policies.contains_key(policy) {
            return Err(RegistryError::NoSuchPolicy(policy.to_owned()));
        }
        let ids = data.policy_targets.get(policy);
        Ok(page_of_names(ids, after.as_deref(), page.page_size))
    }

    /// `AttachThingPrincipal` (with `thingPrincipalType`). An EXCLUSIVE_THING attachment must be the
    /// certificate's only thing (AWS: "The thing will be the only thing that's attached to the principal"), so
    /// attaching exclusively to a certificate with other things, or anything to a certificate with an exclusive
    /// thing, is InvalidRequestException.
    pub fn attach_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
        kind: AttachmentKind,
    ) -> Result<(), RegistryError> {
        validation::thing_name(thing)?;
        let id = validation::certificate_id(certificate_id)?;
        self.change(|data| {
            if !data.state.things.contains_key(thing) {
                return Err(RegistryError::NoSuchThing(thing.to_owned()));
            }
            if !data.state.certificates.contains_key(&id) {
                return Err(RegistryError::NoSuchCertificate(id.clone()));
            }
            let others: Vec<(&String, AttachmentKind)> = data
                .principal_things
                .get(&id)
                .into_iter()
                .flatten()
                .filter(|other| other.as_str() != thing)
                .filter_map(|other| {
                    let kind = data.state.thing_principals.get(other)?.get(&id)?;
                    Some((other, *kind))
                })
                .collect();
            if let Some((other, _)) = others
                .iter()
                .find(|(_, kind)| *kind == AttachmentKind::ExclusiveThing)
            {
                return Err(RegistryError::InvalidRequest(format!(
                    "The principal is exclusively attached to thing {other}"
                )));
            }
            if kind == AttachmentKind::ExclusiveThing && !others.is_empty() {
                return Err(RegistryError::InvalidRequest(format!(
                    "Cannot attach the principal exclusively to {thing}: it is attached to other things"
                )));
            }
            let current = data
                .state
                .thing_principals
                .get(thing)
                .and_then(|principals| principals.get(&id));
            if current == Some(&kind) {
                return Ok((Vec::new(), ()));
            }
            Ok((
                vec![Op::AttachThingPrincipal {
                    thing: thing.to_owned(),
                    certificate_id: id.clone(),
                    kind,
                }],
                (),
            ))
        })
    }

    /// `DetachThingPrincipal`; the thing and the certificate must exist, detaching one that is not attached
    /// succeeds.
    pub fn detach_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
    ) -> Result<(), RegistryError> {
        validation::thing_name(thing)?;
        let id = validation::certificate_id(certificate_id)?;
        self.change(|data| {
            if !data.state.things.contains_key(thing) {
                return Err(RegistryError::NoSuchThing(thing.to_owned()));
            }
            if !data.state.certificates.contains_key(&id) {
                return Err(RegistryError::NoSuchCertificate(id.clone()));
            }
            let attached = data
                .state
                .thing_principals
                .get(thing)
                .is_some_and(|principals| principals.contains_key(&id));
            if !attached {
                return Ok((Vec::new(), ()));
            }
            Ok((
                vec![Op::DetachThingPrincipal {
                    thing: thing.to_owned(),
                    certificate_id: id.clone(),
                }],
                (),
            ))
        })
    }

    /// `ListThingPrincipals`: certificate ids, in id order.
    pub fn list_thing_principals(
        &self,
        thing: &str,
        page: &Page,
    ) -> Result<Paged<String>, RegistryError> {
        validation::thing_name(thing)?;
        let after = decode_marker(page)?;
        let data = self.read();
        if !data.state.things.contains_key(thing) {
            return Err(RegistryError::NoSuchThing(thing.to_owned()));
        }
        let ids = data
            .state
            .thing_principals
            .get(thing)
            .into_iter()
            .flat_map(|principals| principals.range::<str, _>(after_bound(after.as_deref())))
            .map(|(id, _)| (id.clone(), id.clone()));
        Ok(paginate(ids, page.page_size))
    }

    /// The ACTIVE certificates attached to `thing`, in id order; none when the thing does not exist.
    pub fn active_thing_certificates(&self, thing: &str) -> Vec<String> {
        let data = self.read();
        let Some(principals) = data.state.thing_principals.get(thing) else {
            return Vec::new();
        };
        principals
            .keys()
            .filter(|id| {
                data.state
                    .certificates
                    .get(*id)
                    .is_some_and(|record| record.status == CertificateStatus::Active)
            })
            .cloned()
            .collect()
    }

    /// `ListPrincipalThings`: thing names, in name order.
    pub fn list_principal_things(
        &self,
        certificate_id: &str,
        page: &Page,
    ) -> Result<Paged<String>, RegistryError> {
        let id = validation::certificate_id(certificate_id)?;
        let after = decode_marker(page)?;
        let data = self.read();
        if !data.state.certificates.contains_key(&id) {
            return Err(RegistryError::NoSuchCertificate(id));
        }
        let names = data.principal_things.get(&id);
        Ok(page_of_names(names, after.as_deref(), page.page_size))
    }

    /// The certificate's status, the compiled default version of each attached policy, and its things; `None`
    /// for an unknown certificate.
    pub fn principal(&self, certificate_id: &str) -> Option<PrincipalView> {
        let data = self.read();
        let record = data.state.certificates.get(certificate_id)?;
        let policies = data
            .state
            .principal_policies
            .get(certificate_id)
            .into_iter()
            .flatten()
            .filter_map(|name| data.compiled.get(name).map(|policy| (**policy).clone()))
            .collect();
        let things = data
            .principal_things
            .get(certificate_id)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                let kind = data.state.thing_principals.get(name)?.get(certificate_id)?;
                let thing = data.state.things.get(name)?;
                let mut context = ThingContext::named(name.clone());
                context.type_name = thing.type_name.clone();
                context.attributes = thing.attributes.clone();
                context.association = match kind {
                    AttachmentKind::ExclusiveThing => ThingAssociation::Exclusive,
                    AttachmentKind::NonExclusiveThing => ThingAssociation::NonExclusive,
                };
                Some(context)
            })
            .collect();
        Some(PrincipalView {
            certificate_id: certificate_id.to_owned(),
            status: record.status,
            policies: PolicySet::new(policies),
            things,
        })
    }

    /// Changes with every mutation. AWS applies a new default policy version to connected devices (observed at
    /// once, documented within minutes, reference 4.1), so sessions re-read their policies when it moves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn read(&self) -> RwLockReadGuard<'_, RegistryData> {
        self.data
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, RegistryData> {
        self.data
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The one way data changes: `plan` validates against the current data and returns the ops (none: nothing to
    /// change) and the answer; the ops are journaled, then applied, then made durable (outside the lock, so
    /// concurrent callers share syncs). A failing `plan` writes nothing.
    fn change<R>(
        &self,
        plan: impl FnOnce(&RegistryData) -> Result<(Vec<Op>, R), RegistryError>,
    ) -> Result<R, RegistryError> {
        let (answer, seq) = {
            let mut data = self.write();
            let (ops, answer) = plan(&data)?;
            if ops.is_empty() {
                return Ok(answer);
            }
            let seq = match &self.store {
                Some(store) => Some(store.append(&ops)?),
                None => None,
            };
            for op in ops {
                if let Err(message) = data.apply(op) {
                    // Unreachable for validated ops; the journal has the change, so the next open applies it
                    // (or reports the damage).
                    tracing::error!(%message, "applying a registry change failed");
                }
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
            (answer, seq)
        };
        if let (Some(store), Some(seq)) = (&self.store, seq) {
            store.make_durable(seq)?;
            if store.wants_compaction() {
                let data = self.read();
                // Checked again under the lock: another caller may have compacted meanwhile.
                if store.wants_compaction()
                    && let Err(error) = store.compact(&data.state)
                {
                    // The journal still has every change; compaction is retried on the next change.
                    tracing::warn!(%error, "compacting the registry journal failed");
                }
            }
        }
        Ok(answer)
    }
}

fn status_for(set_as_active: bool) -> CertificateStatus {
    if set_as_active {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    }
}

fn check_expected_version(
    name: &str,
    expected: Option<i64>,
    actual: i64,
) -> Result<(), RegistryError> {
    match expected {
        Some(expected) if expected != actual => Err(RegistryError::VersionConflict {
            name: name.to_owned(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

fn no_such_version(policy: &str, version_id: &str) -> RegistryError {
    RegistryError::NoSuchPolicyVersion {
        policy: policy.to_owned(),
        version_id: version_id.to_owned(),
    }
}

fn new_policy(document: &str) -> PolicyRecord {
    let now = crate::clock::now_millis();
    PolicyRecord {
        versions: BTreeMap::from([(
            1,
            PolicyVersionRecord {
                document: document.to_owned(),
                created_ms: now,
            },
        )]),
        default_version: 1,
        next_version: 2,
        created_ms: now,
        last_modified_ms: now,
        generation_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// `existing` with `document` as its next version; returns the policy and the new version number.
fn with_new_version(
    existing: &PolicyRecord,
    document: &str,
    set_as_default: bool,
) -> (PolicyRecord, u32) {
    let now = crate::clock::now_millis();
    let mut policy = existing.clone();
    let version = policy.next_version;
    policy.versions.insert(
        version,
        PolicyVersionRecord {
            document: document.to_owned(),
            created_ms: now,
        },
    );
    policy.next_version += 1;
    if set_as_default {
        policy.default_version = version;
    }
    policy.last_modified_ms = now;
    policy.generation_id = uuid::Uuid::new_v4().to_string();
    (policy, version)
}

fn thing_view(name: &str, thing: &ThingRecord) -> ThingView {
    ThingView {
        name: name.to_owned(),
        id: thing.id.clone(),
        type_name: thing.type_name.clone(),
        attributes: thing.attributes.clone(),
        version: thing.version,
    }
}

fn certificate_view(id: &str, record: &CertificateRecord) -> CertificateView {
    CertificateView {
        id: id.to_owned(),
        pem: record.pem.clone(),
        status: record.status,
        created_ms: record.created_ms,
        last_modified_ms: record.last_modified_ms,
        customer_version: record.customer_version,
        generation_id: record.generation_id.clone(),
    }
}

fn policy_view(name: &str, policy: &PolicyRecord) -> PolicyView {
    PolicyView {
        name: name.to_owned(),
        default_version_id: policy.default_version.to_string(),
        document: policy.default_document().unwrap_or_default().to_owned(),
        created_ms: policy.created_ms,
        last_modified_ms: policy.last_modified_ms,
        generation_id: policy.generation_id.clone(),
    }
}

/// `version` must exist in `policy`.
fn version_view(name: &str, policy: &PolicyRecord, version: u32) -> PolicyVersionView {
    let record = policy.versions.get(&version);
    PolicyVersionView {
        name: name.to_owned(),
        version_id: version.to_string(),
        document: record
            .map(|record| record.document.clone())
            .unwrap_or_default(),
        is_default: policy.default_version == version,
        created_ms: record.map_or(policy.created_ms, |record| record.created_ms),
    }
}

fn invalid_marker() -> RegistryError {
    RegistryError::InvalidRequest("The marker is not valid".to_owned())
}

/// The key a page starts after. Markers are base64 of that key: opaque to callers and within AWS's `Marker`
/// pattern (`[A-Za-z0-9+/]+={0,2}`), and stable under inserts and deletes (the next page starts after the key,
/// not at an offset).
fn decode_marker(page: &Page) -> Result<Option<String>, RegistryError> {
    let Some(marker) = page.marker.as_deref().filter(|marker| !marker.is_empty()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(marker)
        .map_err(|_| invalid_marker())?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| invalid_marker())
}

fn encode_marker(key: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn after_bound(after: Option<&str>) -> (Bound<&str>, Bound<&str>) {
    match after {
        Some(key) => (Bound::Excluded(key), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

/// Takes one page from `(key, item)` pairs in listing order.
fn paginate<T>(entries: impl Iterator<Item = (String, T)>, page_size: usize) -> Paged<T> {
    let page_size = page_size.max(1);
    let mut items = Vec::new();
    let mut last_key = None;
    for (key, item) in entries {
        if items.len() == page_size {
            return Paged {
                items,
                next_marker: last_key.as_deref().map(encode_marker),
            };
        }
        items.push(item);
        last_key = Some(key);
    }
    Paged {
        items,
        next_marker: None,
    }
}

fn page_of_names(
    names: Option<&std::collections::BTreeSet<String>>,
    after: Option<&str>,
    page_size: usize,
) -> Paged<String> {
    let entries = names
        .into_iter()
        .flat_map(|names| names.range::<str, _>(after_bound(after)))
        .map(|name| (name.clone(), name.clone()));
    paginate(entries, page_size)
}

/// What `iot-emulator provision` produced for one thing.
#[derive(Debug, Clone)]
pub struct ProvisionedDevice {
    pub thing_name: String,
    pub certificate: IssuedCertificate,
    pub policies: Vec<String>,
}

/// `create-thing` (unless the thing exists) + `create-keys-and-certificate --set-as-active` + `attach-policy`
/// (each of `policies`) + `attach-thing-principal`, the sequence a real device's provisioning runs.
pub fn provision_thing(
    registry: &Registry,
    ca: &EmulatorCa,
    thing_name: &str,
    policies: &[String],
) -> Result<ProvisionedDevice, RegistryError> {
    for policy in policies {
        if !registry.read().state.policies.contains_key(policy) {
            return Err(RegistryError::NoSuchPolicy(policy.clone()));
        }
    }
    registry.ensure_thing(thing_name)?;
    let certificate = registry.create_keys_and_certificate(ca, true)?;
    for policy in policies {
        registry.attach_policy(policy, &certificate.certificate_id)?;
    }
    registry.attach_thing_principal(
        thing_name,
        &certificate.certificate_id,
        AttachmentKind::NonExclusiveThing,
    )?;
    Ok(ProvisionedDevice {
        thing_name: thing_name.to_owned(),
        certificate,
        policies: policies.to_vec(),
    })
}

/// File names `provision` writes, as the AWS console names a device's downloads.
pub const CERTIFICATE_FILE: &str = "certificate.pem.crt";
pub const PRIVATE_KEY_FILE: &str = "private.pem.key";
pub const PUBLIC_KEY_FILE: &str = "public.pem.key";
pub const ROOT_CA_FILE: &str = "root-CA.pem";

/// Writes the certificate, the key pair and the emulator's root CA into `dir` (the private key readable by the
/// owner only).
pub fn write_device_files(
    dir: &Path,
    device: &ProvisionedDevice,
    root_ca_pem: &str,
) -> Result<(), RegistryError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| RegistryError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    for (name, text) in [
        (
            CERTIFICATE_FILE,
            device.certificate.certificate_pem.as_str(),
        ),
        (
            PRIVATE_KEY_FILE,
            device.certificate.private_key_pem.as_str(),
        ),
        (PUBLIC_KEY_FILE, device.certificate.public_key_pem.as_str()),
        (ROOT_CA_FILE, root_ca_pem),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io_error(&path))?;
        #[cfg(unix)]
        if name == PRIVATE_KEY_FILE {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! The registry of things, certificates, policies and their attachments: what `CreateThing`,
//! `RegisterCertificate`/`CreateKeysAndCertificate`, `UpdateCertificate`, `CreatePolicy`, `AttachPolicy` and
//! `AttachThingPrincipal` manage on AWS. The broker asks it who a certificate is at the TLS handshake and which
//! policies apply at CONNECT.
//!
//! State is one JSON file (`{state}/registry.json`), rewritten atomically after every change, so a provisioned
//! device keeps working across emulator restarts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use iot_policy::{
    CompiledPolicy, PolicyDocument, PolicyError, PolicySet, TemplateError, ThingAssociation,
    ThingContext,
};
use serde::{Deserialize, Serialize};

use crate::identity::{self, EmulatorCa, IdentityError, IssuedCertificate};

/// `ACTIVE`, `INACTIVE` or `REVOKED`, as `UpdateCertificate` sets them. Only ACTIVE certificates may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
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

/// Errors of registry operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("reading or writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid registry file: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("no thing named {0}")]
    NoSuchThing(String),
    #[error("no certificate with id {0}")]
    NoSuchCertificate(String),
    #[error("no policy named {0}")]
    NoSuchPolicy(String),
    #[error("unknown certificate status {0} (ACTIVE, INACTIVE or REVOKED)")]
    UnknownStatus(String),
    #[error("policy {name}: {source}")]
    Policy {
        name: String,
        #[source]
        source: PolicyError,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thing_type_name: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateRecord {
    certificate_pem: String,
    status: CertificateStatus,
    creation_date_ms: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttachmentKind {
    #[default]
    NonExclusiveThing,
    ExclusiveThing,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistryData {
    #[serde(default)]
    things: BTreeMap<String, ThingRecord>,
    #[serde(default)]
    certificates: BTreeMap<String, CertificateRecord>,
    /// Policy name -> document JSON (the default version).
    #[serde(default)]
    policies: BTreeMap<String, serde_json::Value>,
    /// Certificate id -> attached policy names.
    #[serde(default)]
    principal_policies: BTreeMap<String, BTreeSet<String>>,
    /// Thing name -> certificate id -> association kind.
    #[serde(default)]
    thing_principals: BTreeMap<String, BTreeMap<String, AttachmentKind>>,
}

/// What the broker needs to know about an authenticated certificate.
#[derive(Debug, Clone)]
pub struct PrincipalView {
    pub certificate_id: String,
    pub status: CertificateStatus,
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

/// The emulator's registry. Cheap to share (`Arc`); all methods take `&self`.
#[derive(Debug)]
pub struct Registry {
    path: Option<PathBuf>,
    data: RwLock<RegistryData>,
    compiled: RwLock<HashMap<String, Arc<CompiledPolicy>>>,
    /// Bumped on every change, so connected sessions notice new policies and attachments cheaply.
    generation: AtomicU64,
}

impl Registry {
    /// Opens `{state_dir}/registry.json`, or starts empty when it does not exist yet.
    pub fn open(state_dir: &Path) -> Result<Registry, RegistryError> {
        let path = state_dir.join("registry.json");
        let data = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|error| RegistryError::Corrupt {
                path: path.clone(),
                message: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(state_dir).map_err(|source| RegistryError::Io {
                    path: state_dir.to_owned(),
                    source,
                })?;
                RegistryData::default()
            }
            Err(source) => return Err(RegistryError::Io { path, source }),
        };
        let registry = Registry {
            path: Some(path),
            data: RwLock::new(data),
            compiled: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        };
        registry.recompile()?;
        Ok(registry)
    }

    /// A registry that is never written to disk (tests, benches).
    pub fn in_memory() -> Registry {
        Registry {
            path: None,
            data: RwLock::new(RegistryData::default()),
            compiled: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// `CreateThing`; a no-op for an existing thing except that given attributes are merged in.
    pub fn create_thing(
        &self,
        name: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        self.mutate(|data| {
            data.things
                .entry(name.to_owned())
                .or_default()
                .attributes
                .extend(attributes);
            Ok(())
        })
    }

    pub fn thing_exists(&self, name: &str) -> bool {
        self.read().things.contains_key(name)
    }

    /// `RegisterCertificate` of a PEM certificate; returns its id.
    pub fn register_certificate(
        &self,
        certificate_pem: &str,
        status: CertificateStatus,
    ) -> Result<String, RegistryError> {
        let der = identity::pem_to_der(certificate_pem)?;
        let id = identity::certificate_id(&der);
        self.mutate(|data| {
            data.certificates.insert(
                id.clone(),
                CertificateRecord {
                    certificate_pem: certificate_pem.to_owned(),
                    status,
                    creation_date_ms: crate::clock::now_millis(),
                },
            );
            Ok(())
        })?;
        Ok(id)
    }

    /// `CreateKeysAndCertificate --set-as-active`: a new key pair and a certificate signed by the emulator CA.
    pub fn create_keys_and_certificate(
        &self,
        ca: &EmulatorCa,
    ) -> Result<IssuedCertificate, RegistryError> {
        let issued = ca.issue_device_certificate()?;
        self.register_certificate(&issued.certificate_pem, CertificateStatus::Active)?;
        Ok(issued)
    }

    /// `UpdateCertificate --new-status`.
    pub fn set_certificate_status(
        &self,
        certificate_id: &str,
        status: CertificateStatus,
    ) -> Result<(), RegistryError> {
        self.mutate(|data| {
            let record = data
                .certificates
                .get_mut(certificate_id)
                .ok_or_else(|| RegistryError::NoSuchCertificate(certificate_id.to_owned()))?;
            record.status = status;
            Ok(())
        })
    }

    pub fn certificate_status(&self, certificate_id: &str) -> Option<CertificateStatus> {
        self.read()
            .certificates
            .get(certificate_id)
            .map(|record| record.status)
    }

    /// `CreatePolicy`, or a new default version of an existing policy.
    pub fn put_policy(&self, name: &str, document: &PolicyDocument) -> Result<(), RegistryError> {
        let json = document.to_json();
        self.mutate(|data| {
            data.policies.insert(name.to_owned(), json);
            Ok(())
        })?;
        self.compiled
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(
                name.to_owned(),
                Arc::new(CompiledPolicy::compile(name, document)),
            );
        // Again after the compiled form is in place, so a session that refreshed in between reads it.
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// `put_policy` for a document given as JSON text.
    pub fn put_policy_json(&self, name: &str, json: &str) -> Result<(), RegistryError> {
        let document =
            PolicyDocument::from_json_str(json).map_err(|source| RegistryError::Policy {
                name: name.to_owned(),
                source,
            })?;
        self.put_policy(name, &document)
    }

    /// Every `AWS::IoT::Policy` of a synthesized CloudFormation template (intrinsics resolved for `account` and
    /// `region`), stored under its `PolicyName`. Returns the names.
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

    pub fn policy_names(&self) -> Vec<String> {
        self.read().policies.keys().cloned().collect()
    }

    /// `AttachPolicy --target <certificate>`.
    pub fn attach_policy(&self, policy: &str, certificate_id: &str) -> Result<(), RegistryError> {
        self.mutate(|data| {
            if !data.policies.contains_key(policy) {
                return Err(RegistryError::NoSuchPolicy(policy.to_owned()));
            }
            if !data.certificates.contains_key(certificate_id) {
                return Err(RegistryError::NoSuchCertificate(certificate_id.to_owned()));
            }
            data.principal_policies
                .entry(certificate_id.to_owned())
                .or_default()
                .insert(policy.to_owned());
            Ok(())
        })
    }

    /// `DetachPolicy`.
    pub fn detach_policy(&self, policy: &str, certificate_id: &str) -> Result<(), RegistryError> {
        self.mutate(|data| {
            if let Some(policies) = data.principal_policies.get_mut(certificate_id) {
                policies.remove(policy);
            }
            Ok(())
        })
    }

    /// `AttachThingPrincipal` (with `thingPrincipalType`).
    pub fn attach_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
        kind: AttachmentKind,
    ) -> Result<(), RegistryError> {
        self.mutate(|data| {
            if !data.things.contains_key(thing) {
                return Err(RegistryError::NoSuchThing(thing.to_owned()));
            }
            if !data.certificates.contains_key(certificate_id) {
                return Err(RegistryError::NoSuchCertificate(certificate_id.to_owned()));
            }
            data.thing_principals
                .entry(thing.to_owned())
                .or_default()
                .insert(certificate_id.to_owned(), kind);
            Ok(())
        })
    }

    /// The certificate's status, compiled policies and attached things; `None` for an unknown certificate.
    pub fn principal(&self, certificate_id: &str) -> Option<PrincipalView> {
        let data = self.read();
        let record = data.certificates.get(certificate_id)?;
        let compiled = self
            .compiled
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let policies = data
            .principal_policies
            .get(certificate_id)
            .into_iter()
            .flatten()
            .filter_map(|name| compiled.get(name).map(|policy| (**policy).clone()))
            .collect();
        let things = data
            .thing_principals
            .iter()
            .filter_map(|(name, principals)| {
                let kind = principals.get(certificate_id)?;
                let thing = data.things.get(name)?;
                let mut context = ThingContext::named(name.clone());
                context.type_name = thing.thing_type_name.clone();
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RegistryData> {
        self.data
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mutate(
        &self,
        change: impl FnOnce(&mut RegistryData) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut data = self
            .data
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut updated = data.clone();
        change(&mut updated)?;
        if let Some(path) = &self.path {
            save(path, &updated)?;
        }
        *data = updated;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Changes with every mutation. AWS applies a new default policy version to connected devices (observed at
    /// once, documented within minutes, reference 4.1), so sessions re-read their policies when it moves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn recompile(&self) -> Result<(), RegistryError> {
        let data = self.read();
        let mut compiled = HashMap::new();
        for (name, json) in &data.policies {
            let document =
                PolicyDocument::from_value(json).map_err(|source| RegistryError::Policy {
                    name: name.clone(),
                    source,
                })?;
            compiled.insert(
                name.clone(),
                Arc::new(CompiledPolicy::compile(name, &document)),
            );
        }
        *self
            .compiled
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = compiled;
        Ok(())
    }
}

fn save(path: &Path, data: &RegistryData) -> Result<(), RegistryError> {
    let io_error = |source| RegistryError::Io {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_string_pretty(data).map_err(|error| RegistryError::Corrupt {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text).map_err(io_error)?;
    std::fs::rename(&temporary, path).map_err(io_error)
}

/// What `iot-emulator provision` produced for one thing.
#[derive(Debug, Clone)]
pub struct ProvisionedDevice {
    pub thing_name: String,
    pub certificate: IssuedCertificate,
    pub policies: Vec<String>,
}

/// `create-thing` + `create-keys-and-certificate --set-as-active` + `attach-policy` (each of `policies`) +
/// `attach-thing-principal`, the sequence a real device's provisioning runs.
pub fn provision_thing(
    registry: &Registry,
    ca: &EmulatorCa,
    thing_name: &str,
    policies: &[String],
) -> Result<ProvisionedDevice, RegistryError> {
    for policy in policies {
        if !registry.read().policies.contains_key(policy) {
            return Err(RegistryError::NoSuchPolicy(policy.clone()));
        }
    }
    registry.create_thing(thing_name, BTreeMap::new())?;
    let certificate = registry.create_keys_and_certificate(ca)?;
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
mod tests {
    use super::*;
    use iot_policy::{ArnScope, ConnectionContext, actions};

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",
        "Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;

    #[test]
    fn provisioned_principal_survives_a_reopen_with_policies_and_thing() {
        let dir = tempfile::tempdir().unwrap();
        let ca = EmulatorCa::load_or_create(dir.path()).unwrap();
        let device = {
            let registry = Registry::open(dir.path()).unwrap();
            registry.put_policy_json("device", POLICY).unwrap();
            provision_thing(&registry, &ca, "ratchet", &["device".into()]).unwrap()
        };
        let registry = Registry::open(dir.path()).unwrap();
        let id = &device.certificate.certificate_id;
        assert_eq!(
            registry.certificate_status(id),
            Some(CertificateStatus::Active)
        );
        let principal = registry.principal(id).unwrap();
        let thing = principal.thing_for_client("ratchet").unwrap();
        let context = ConnectionContext::new("ratchet").with_thing(thing);
        let arns = ArnScope::new("us-east-1", "123456789012");
        assert!(
            principal
                .policies
                .decide(actions::CONNECT, &arns.client("ratchet"), &context)
                .is_allowed()
        );
        assert!(principal.thing_for_client("other").is_none());

        registry
            .set_certificate_status(id, CertificateStatus::Revoked)
            .unwrap();
        let reopened = Registry::open(dir.path()).unwrap();
        assert_eq!(
            reopened.certificate_status(id),
            Some(CertificateStatus::Revoked)
        );
    }

    #[test]
    fn attaching_unknown_names_fails() {
        let registry = Registry::in_memory();
        let ca = EmulatorCa::generate().unwrap();
        assert!(matches!(
            provision_thing(&registry, &ca, "t", &["missing".into()]),
            Err(RegistryError::NoSuchPolicy(_))
        ));
        assert!(matches!(
            registry.attach_thing_principal("nope", "id", AttachmentKind::NonExclusiveThing),
            Err(RegistryError::NoSuchThing(_))
        ));
    }
}

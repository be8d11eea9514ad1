//! The registry's typed errors, each mapped to the AWS error name and HTTP status the control plane answers with.

use std::path::PathBuf;

use iot_policy::TemplateError;

use crate::identity::IdentityError;

/// Errors of registry operations. The messages read like AWS's, because the control plane returns them as the
/// `message` of the error body.
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
    #[error(
        "the registry in {dir} is in use by process {holder} (an `iot-emulator up` on this state directory?)"
    )]
    InUse { dir: PathBuf, holder: String },
    #[error("Thing {0} cannot be found.")]
    NoSuchThing(String),
    #[error("The certificate {0} does not exist.")]
    NoSuchCertificate(String),
    #[error("Policy {0} does not exist.")]
    NoSuchPolicy(String),
    #[error("Policy {policy} version {version_id} does not exist.")]
    NoSuchPolicyVersion { policy: String, version_id: String },
    #[error("Thing {0} already exists in account with different attributes")]
    ThingAlreadyExists(String),
    #[error("Policy cannot be created - name already exists (name={0})")]
    PolicyAlreadyExists(String),
    #[error("The certificate is already provisioned or registered (id={0})")]
    CertificateAlreadyExists(String),
    /// `DeleteConflictException`: the resource is still referenced (attached, or has versions).
    #[error("{0}")]
    DeleteConflict(String),
    #[error(
        "The policy {0} already has the maximum number of versions (5); delete one with DeletePolicyVersion first"
    )]
    VersionsLimitExceeded(String),
    #[error(
        "The expected version {expected} of thing {name} does not match the current version {actual}"
    )]
    VersionConflict {
        name: String,
        expected: i64,
        actual: i64,
    },
    /// `CertificateStateException`: the operation is not allowed in the certificate's current status.
    #[error("{0}")]
    CertificateState(String),
    #[error("The policy {name} is malformed: {reason}")]
    MalformedPolicy { name: String, reason: String },
    /// `InvalidRequestException`: a name, value or argument AWS would reject.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("unknown certificate status {0} (ACTIVE, INACTIVE or REVOKED)")]
    UnknownStatus(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl RegistryError {
    /// The AWS error name (`x-amzn-ErrorType` / `__type`) of this error.
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            RegistryError::NoSuchThing(_)
            | RegistryError::NoSuchCertificate(_)
            | RegistryError::NoSuchPolicy(_)
            | RegistryError::NoSuchPolicyVersion { .. } => "ResourceNotFoundException",
            RegistryError::ThingAlreadyExists(_)
            | RegistryError::PolicyAlreadyExists(_)
            | RegistryError::CertificateAlreadyExists(_) => "ResourceAlreadyExistsException",
            RegistryError::DeleteConflict(_) => "DeleteConflictException",
            RegistryError::VersionsLimitExceeded(_) => "VersionsLimitExceededException",
            RegistryError::VersionConflict { .. } => "VersionConflictException",
            RegistryError::CertificateState(_) => "CertificateStateException",
            RegistryError::MalformedPolicy { .. } => "MalformedPolicyException",
            RegistryError::InvalidRequest(_)
            | RegistryError::UnknownStatus(_)
            | RegistryError::Template(_) => "InvalidRequestException",
            RegistryError::Io { .. }
            | RegistryError::Corrupt { .. }
            | RegistryError::InUse { .. }
            | RegistryError::Identity(_) => "InternalFailureException",
        }
    }

    /// The HTTP status AWS answers this error with.
    pub fn http_status(&self) -> u16 {
        match self.aws_error_code() {
            "ResourceNotFoundException" => 404,
            "ResourceAlreadyExistsException"
            | "DeleteConflictException"
            | "VersionsLimitExceededException"
            | "VersionConflictException" => 409,
            "CertificateStateException" => 406,
            "MalformedPolicyException" | "InvalidRequestException" => 400,
            _ => 500,
        }
    }
}

//! The few control-plane calls the `provision`, `policy` and `certificate` subcommands make when `up` owns the
//! state directory: the same requests the AWS CLI sends (`create-thing`, `create-keys-and-certificate`,
//! `attach-policy`, ...), so that a change reaches the running emulator at once instead of files it has already
//! read.

use serde::Deserialize;
use serde_json::json;

use super::client::{self, ClientError};
use crate::identity::{self, IssuedCertificate};
use crate::percent::url_component;
use crate::registry::CertificateStatus;

/// Pages of ListPolicies; a registry with more policies than this many pages is refused, not looped over forever.
const MAX_POLICY_PAGES: usize = 1_000;
/// Pages of ListThingPrincipals, bounded as `MAX_POLICY_PAGES`.
const MAX_PRINCIPAL_PAGES: usize = 1_000;
/// AWS keeps at most five versions of a policy.
const MAX_POLICY_VERSIONS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{operation}: {code}: {message}")]
    Api {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{operation}: unexpected response: {detail}")]
    Unexpected {
        operation: &'static str,
        detail: String,
    },
}

impl ControlPlaneError {
    fn code(&self) -> Option<&str> {
        match self {
            ControlPlaneError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What `iot-emulator provision` needs back from CreateKeysAndCertificate.
#[derive(Debug, Clone)]
pub struct CreatedCertificate {
    pub arn: String,
    pub issued: IssuedCertificate,
}

/// A client for the emulator's control plane at `base_url` (`http://host:port`).
#[derive(Debug, Clone)]
pub struct ControlPlaneClient {
    base_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeysAndCertificate {
    certificate_arn: String,
    certificate_id: String,
    certificate_pem: String,
    key_pair: KeyPair,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPair {
    public_key: String,
    private_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyList {
    #[serde(default)]
    policies: Vec<PolicySummary>,
    next_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicySummary {
    policy_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrincipalList {
    #[serde(default)]
    principals: Vec<String>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateDescription {
    certificate_description: CertificateSummary,
}

#[derive(Deserialize)]
struct CertificateSummary {
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    policy_document: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyVersions {
    #[serde(default)]
    policy_versions: Vec<PolicyVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyVersion {
    version_id: String,
    is_default_version: bool,
}

/// What `put_policy` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyChange {
    Created,
    NewDefaultVersion,
    Unchanged,
}

impl ControlPlaneClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
        }
    }

    async fn call(
        &self,
        operation: &'static str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, ControlPlaneError> {
        let body = body.map(|json| json.to_string()).unwrap_or_default();
        let mut all_headers = vec![("content-type", "application/json")];
        all_headers.extend_from_slice(headers);
        let response =
            client::request(method, &self.base_url, path, &all_headers, body.as_bytes()).await?;
        if response.is_success() {
            return Ok(response.body);
        }
        let error: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let text = |key: &str| error.get(key).and_then(|value| value.as_str());
        Err(ControlPlaneError::Api {
            operation,
            status: response.status,
            code: response
                .error_type
                .as_deref()
                .or_else(|| text("__type"))
                .or_else(|| text("code"))
                .map(|code| code.rsplit('#').next().unwrap_or(code).to_owned())
                .unwrap_or_else(|| format!("HTTP {}", response.status)),
            message: text("message")
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned()),
        })
    }

    fn parse<T: for<'de> Deserialize<'de>>(
        operation: &'static str,
        body: &[u8],
    ) -> Result<T, ControlPlaneError> {
        serde_json::from_slice(body).map_err(|error| ControlPlaneError::Unexpected {
            operation,
            detail: error.to_string(),
        })
    }

    /// CreateThing, accepting a thing that already exists (provisioning a thing again adds a certificate).
    pub async fn ensure_thing(&self, thing: &str) -> Result<(), ControlPlaneError> {
        let path = format!("/things/{}", url_component(thing));
        match self
            .call("CreateThing", "POST", &path, &[], Some(json!({})))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ResourceAlreadyExistsException") => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// CreateKeysAndCertificate `--set-as-active`.
    pub async fn create_keys_and_certificate(
        &self,
    ) -> Result<CreatedCertificate, ControlPlaneError> {
        const OPERATION: &str = "CreateKeysAndCertificate";
        let body = self
            .call(
                OPERATION,
                "POST",
                "/keys-and-certificate?setAsActive=true",
                &[],
                None,
            )
            .await?;
        let created: KeysAndCertificate = Self::parse(OPERATION, &body)?;
        let der = identity::pem_to_der(&created.certificate_pem).map_err(|error| {
            ControlPlaneError::Unexpected {
                operation: OPERATION,
                detail: error.to_string(),
            }
        })?;
        Ok(CreatedCertificate {
            arn: created.certificate_arn,
            issued: IssuedCertificate {
                certificate_id: created.certificate_id,
                certificate_pem: created.certificate_pem,
                certificate_der: der,
                private_key_pem: created.key_pair.private_key,
                public_key_pem: created.key_pair.public_key,
            },
        })
    }

    /// AttachPolicy to a certificate ARN.
    pub async fn attach_policy(
        &self,
        policy: &str,
        certificate_arn: &str,
    ) -> Result<(), ControlPlaneError> {
        let path = format!("/target-policies/{}", url_component(policy));
        self.call(
            "AttachPolicy",
            "PUT",
            &path,
            &[],
            Some(json!({ "target": certificate_arn })),
        )
        .await
        .map(drop)
    }

    /// AttachThingPrincipal.
    pub async fn attach_thing_principal(
        &self,
        thing: &str,
        certificate_arn: &str,
    ) -> Result<(), ControlPlaneError> {
        let path = format!("/things/{}/principals", url_component(thing));
        self.call(
            "AttachThingPrincipal",
            "PUT",
            &path,
            &[("x-amzn-principal", certificate_arn)],
            None,
        )
        .await
        .map(drop)
    }

    /// The ids of the ACTIVE certificates attached to `thing` (ListThingPrincipals, all pages, then
    /// DescribeCertificate of each), in the order listed; none when the thing does not exist.
    pub async fn active_thing_certificates(
        &self,
        thing: &str,
    ) -> Result<Vec<String>, ControlPlaneError> {
        const OPERATION: &str = "ListThingPrincipals";
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        let base = format!("/things/{}/principals", url_component(thing));
        for page in 0.. {
            if page == MAX_PRINCIPAL_PAGES {
                return Err(ControlPlaneError::Unexpected {
                    operation: OPERATION,
                    detail: format!("more than {MAX_PRINCIPAL_PAGES} pages"),
                });
            }
            let path = match &token {
                Some(token) => format!("{base}?nextToken={}", url_component(token)),
                None => base.clone(),
            };
            let body = match self.call(OPERATION, "GET", &path, &[], None).await {
                Ok(body) => body,
                Err(error) if error.code() == Some("ResourceNotFoundException") => {
                    return Ok(Vec::new());
                }
                Err(error) => return Err(error),
            };
            let listed: PrincipalList = Self::parse(OPERATION, &body)?;
            arns.extend(listed.principals);
            match listed.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        let mut active = Vec::new();
        for arn in arns {
            let Some(id) = arn.split_once(":cert/").map(|(_, id)| id.to_owned()) else {
                continue;
            };
            let path = format!("/certificates/{}", url_component(&id));
            let body = self
                .call("DescribeCertificate", "GET", &path, &[], None)
                .await?;
            let described: CertificateDescription = Self::parse("DescribeCertificate", &body)?;
            if described.certificate_description.status == "ACTIVE" {
                active.push(id);
            }
        }
        Ok(active)
    }

    /// Every policy name (ListPolicies, all pages).
    pub async fn policy_names(&self) -> Result<Vec<String>, ControlPlaneError> {
        const OPERATION: &str = "ListPolicies";
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_POLICY_PAGES {
            let path = match &marker {
                Some(marker) => format!("/policies?marker={}", url_component(marker)),
                None => "/policies".to_owned(),
            };
            let body = self.call(OPERATION, "GET", &path, &[], None).await?;
            let page: PolicyList = Self::parse(OPERATION, &body)?;
            names.extend(page.policies.into_iter().map(|policy| policy.policy_name));
            match page.next_marker {
                Some(next) if !next.is_empty() => marker = Some(next),
                _ => return Ok(names),
            }
        }
        Err(ControlPlaneError::Unexpected {
            operation: OPERATION,
            detail: format!("more than {MAX_POLICY_PAGES} pages"),
        })
    }

    /// CreatePolicy, or a new default version when the policy exists with another document (the oldest
    /// non-default version makes room when five exist), or nothing when the document is the same: what
    /// `iot-emulator policy` does on the files.
    pub async fn put_policy(
        &self,
        name: &str,
        document: &str,
    ) -> Result<PolicyChange, ControlPlaneError> {
        let path = format!("/policies/{}", url_component(name));
        match self
            .call(
                "CreatePolicy",
                "POST",
                &path,
                &[],
                Some(json!({ "policyDocument": document })),
            )
            .await
        {
            Ok(_) => return Ok(PolicyChange::Created),
            Err(error) if error.code() == Some("ResourceAlreadyExistsException") => {}
            Err(error) => return Err(error),
        }
        let current: Policy = Self::parse(
            "GetPolicy",
            &self.call("GetPolicy", "GET", &path, &[], None).await?,
        )?;
        if same_document(&current.policy_document, document) {
            return Ok(PolicyChange::Unchanged);
        }
        let versions_path = format!("{path}/version");
        let versions: PolicyVersions = Self::parse(
            "ListPolicyVersions",
            &self
                .call("ListPolicyVersions", "GET", &versions_path, &[], None)
                .await?,
        )?;
        if versions.policy_versions.len() >= MAX_POLICY_VERSIONS
            && let Some(oldest) = versions
                .policy_versions
                .iter()
                .filter(|version| !version.is_default_version)
                .min_by_key(|version| version.version_id.parse::<u64>().unwrap_or(u64::MAX))
        {
            let delete = format!("{versions_path}/{}", url_component(&oldest.version_id));
            self.call("DeletePolicyVersion", "DELETE", &delete, &[], None)
                .await?;
        }
        self.call(
            "CreatePolicyVersion",
            "POST",
            &format!("{versions_path}?setAsDefault=true"),
            &[],
            Some(json!({ "policyDocument": document })),
        )
        .await?;
        Ok(PolicyChange::NewDefaultVersion)
    }

    /// UpdateCertificate `--new-status`.
    pub async fn update_certificate(
        &self,
        certificate_id: &str,
        status: CertificateStatus,
    ) -> Result<(), ControlPlaneError> {
        let status = match status {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Revoked => "REVOKED",
        };
        let path = format!(
            "/certificates/{}?newStatus={status}",
            url_component(certificate_id)
        );
        self.call("UpdateCertificate", "PUT", &path, &[], None)
            .await
            .map(drop)
    }
}

/// Two policy documents are the same when they parse to the same JSON (whitespace and key order aside).
fn same_document(left: &str, right: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(left),
        serde_json::from_str::<serde_json::Value>(right),
    ) {
        (Ok(left), Ok(right)) => left == right,
        _ => left == right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_compare_as_json() {
        assert!(same_document(r#"{"a": 1, "b": [2]}"#, r#"{"b":[2],"a":1}"#));
        assert!(!same_document(r#"{"a": 1}"#, r#"{"a": 2}"#));
    }
}

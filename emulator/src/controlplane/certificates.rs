//! Certificates: CreateKeysAndCertificate, CreateCertificateFromCsr, DescribeCertificate, ListCertificates,
//! UpdateCertificate, DeleteCertificate. The emulator CA signs what AWS's CA would; status rules and delete
//! preconditions are the registry's.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ControlPlane;
use super::arns::certificate_id;
use super::error::ControlPlaneError;
use super::wire::{AwsJson, AwsPath, AwsQuery, epoch_seconds, ok_empty, ok_json, registry_page};
use crate::identity;
use crate::registry::{CertificateStatus, CertificateView};

/// AWS's certificates are `DEFAULT` mode (`SNI_ONLY` is for certificates of unregistered CAs).
const CERTIFICATE_MODE: &str = "DEFAULT";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SetAsActiveQuery {
    set_as_active: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CsrRequest {
    certificate_signing_request: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListCertificatesQuery {
    page_size: Option<i64>,
    marker: Option<String>,
    is_ascending_order: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateCertificateQuery {
    new_status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteCertificateQuery {
    force_delete: Option<bool>,
}

/// `Certificate` of ListCertificates.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateSummary {
    certificate_arn: String,
    certificate_id: String,
    status: CertificateStatus,
    certificate_mode: &'static str,
    creation_date: f64,
}

pub(super) async fn create_keys_and_certificate(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<SetAsActiveQuery>,
) -> Result<Response, ControlPlaneError> {
    let issued = plane
        .registry()
        .create_keys_and_certificate(&plane.shared.ca, query.set_as_active.unwrap_or(false))?;
    Ok(ok_json(&json!({
        "certificateArn": plane.arns().certificate(&issued.certificate_id),
        "certificateId": issued.certificate_id,
        "certificatePem": issued.certificate_pem,
        "keyPair": {
            "PublicKey": issued.public_key_pem,
            "PrivateKey": issued.private_key_pem,
        },
    })))
}

pub(super) async fn create_certificate_from_csr(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<SetAsActiveQuery>,
    AwsJson(request): AwsJson<CsrRequest>,
) -> Result<Response, ControlPlaneError> {
    let csr = request
        .certificate_signing_request
        .filter(|csr| !csr.is_empty())
        .ok_or_else(|| {
            ControlPlaneError::invalid("Missing required member certificateSigningRequest")
        })?;
    if csr.len() > 4096 {
        return Err(ControlPlaneError::invalid(
            "1 validation error detected: Value at 'certificateSigningRequest' failed to satisfy \
             constraint: Member must have length less than or equal to 4096",
        ));
    }
    let certificate = plane.registry().create_certificate_from_csr(
        &plane.shared.ca,
        &csr,
        query.set_as_active.unwrap_or(false),
    )?;
    Ok(ok_json(&json!({
        "certificateArn": plane.arns().certificate(&certificate.id),
        "certificateId": certificate.id,
        "certificatePem": certificate.pem,
    })))
}

pub(super) async fn describe_certificate(
    State(plane): State<ControlPlane>,
    AwsPath(id): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    let certificate = plane
        .registry()
        .describe_certificate(&certificate_id(&id)?)?;
    Ok(ok_json(&json!({
        "certificateDescription": description(&plane, certificate),
    })))
}

fn description(plane: &ControlPlane, certificate: CertificateView) -> serde_json::Value {
    let mut description = json!({
        "certificateArn": plane.arns().certificate(&certificate.id),
        "certificateId": certificate.id,
        "status": certificate.status,
        "ownedBy": plane.arns().account(),
        "creationDate": epoch_seconds(certificate.created_ms),
        "lastModifiedDate": epoch_seconds(certificate.last_modified_ms),
        "customerVersion": certificate.customer_version,
        "generationId": certificate.generation_id,
        "certificateMode": CERTIFICATE_MODE,
    });
    if let Some((not_before, not_after)) = validity(&certificate.pem) {
        description["validity"] = json!({ "notBefore": not_before, "notAfter": not_after });
    }
    description["certificatePem"] = json!(certificate.pem);
    description
}

/// `notBefore` / `notAfter` in epoch seconds; `None` for a certificate x509-parser cannot read (it was
/// accepted by the registry, so this does not happen for certificates the emulator issued).
fn validity(pem: &str) -> Option<(i64, i64)> {
    let der = identity::pem_to_der(pem).ok()?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).ok()?;
    let validity = certificate.validity();
    Some((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

pub(super) async fn list_certificates(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<ListCertificatesQuery>,
) -> Result<Response, ControlPlaneError> {
    let page = registry_page("pageSize", query.page_size, query.marker)?;
    let listed = plane
        .registry()
        .list_certificates(&page, query.is_ascending_order.unwrap_or(false))?;
    let certificates: Vec<CertificateSummary> = listed
        .items
        .into_iter()
        .map(|certificate| CertificateSummary {
            certificate_arn: plane.arns().certificate(&certificate.id),
            certificate_id: certificate.id,
            status: certificate.status,
            certificate_mode: CERTIFICATE_MODE,
            creation_date: epoch_seconds(certificate.created_ms),
        })
        .collect();
    let mut body = json!({ "certificates": certificates });
    if let Some(marker) = listed.next_marker {
        body["nextMarker"] = json!(marker);
    }
    Ok(ok_json(&body))
}

/// `newStatus` as UpdateCertificate takes it: the modelled enum, of which only three can be set by a caller.
fn new_status(value: Option<&str>) -> Result<CertificateStatus, ControlPlaneError> {
    match value {
        None | Some("") => Err(ControlPlaneError::invalid(
            "Missing required member newStatus",
        )),
        Some("ACTIVE") => Ok(CertificateStatus::Active),
        Some("INACTIVE") => Ok(CertificateStatus::Inactive),
        Some("REVOKED") => Ok(CertificateStatus::Revoked),
        Some(other @ ("PENDING_TRANSFER" | "REGISTER_INACTIVE" | "PENDING_ACTIVATION")) => {
            Err(ControlPlaneError::invalid(format!(
                "A certificate's status cannot be set to {other} with UpdateCertificate"
            )))
        }
        Some(other) => Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value '{other}' at 'newStatus' failed to satisfy constraint: \
             Member must satisfy enum value set: [ACTIVE, INACTIVE, REVOKED, PENDING_TRANSFER, \
             REGISTER_INACTIVE, PENDING_ACTIVATION]"
        ))),
    }
}

pub(super) async fn update_certificate(
    State(plane): State<ControlPlane>,
    AwsPath(id): AwsPath<String>,
    AwsQuery(query): AwsQuery<UpdateCertificateQuery>,
) -> Result<Response, ControlPlaneError> {
    let id = certificate_id(&id)?;
    let status = new_status(query.new_status.as_deref())?;
    plane.registry().set_certificate_status(&id, status)?;
    Ok(ok_empty())
}

pub(super) async fn delete_certificate(
    State(plane): State<ControlPlane>,
    AwsPath(id): AwsPath<String>,
    AwsQuery(query): AwsQuery<DeleteCertificateQuery>,
) -> Result<Response, ControlPlaneError> {
    let id = certificate_id(&id)?;
    plane
        .registry()
        .delete_certificate(&id, query.force_delete.unwrap_or(false))?;
    Ok(ok_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_settable_statuses_pass() {
        assert_eq!(
            new_status(Some("ACTIVE")).unwrap(),
            CertificateStatus::Active
        );
        assert_eq!(
            new_status(Some("REVOKED")).unwrap(),
            CertificateStatus::Revoked
        );
        for refused in [None, Some("active"), Some("PENDING_TRANSFER"), Some("GONE")] {
            assert_eq!(
                new_status(refused).unwrap_err().wire(),
                (400, "InvalidRequestException"),
                "{refused:?}"
            );
        }
    }
}

//! Policies and their versions: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, CreatePolicyVersion,
//! GetPolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion, DeletePolicyVersion. Documents (JSON, the
//! 2,048-character limit), the five-version limit and the delete preconditions are the registry's
//! (reference 4.1).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::ControlPlane;
use super::error::ControlPlaneError;
use super::wire::{AwsJson, AwsPath, AwsQuery, epoch_seconds, ok_empty, ok_json, registry_page};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PolicyDocumentRequest {
    policy_document: Option<String>,
}

impl PolicyDocumentRequest {
    fn document(self) -> Result<String, ControlPlaneError> {
        self.policy_document
            .filter(|document| !document.is_empty())
            .ok_or_else(|| ControlPlaneError::invalid("Missing required member policyDocument"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListPoliciesQuery {
    marker: Option<String>,
    page_size: Option<i64>,
    is_ascending_order: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SetAsDefaultQuery {
    set_as_default: Option<bool>,
}

/// `PolicyVersionId` is `[0-9]+` in the service model.
fn version_id(id: &str) -> Result<&str, ControlPlaneError> {
    if !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value '{id}' at 'policyVersionId' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [0-9]+"
        )))
    }
}

pub(super) async fn create_policy(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
    AwsJson(request): AwsJson<PolicyDocumentRequest>,
) -> Result<Response, ControlPlaneError> {
    let version = plane
        .registry()
        .create_policy(&name, &request.document()?)?;
    Ok(ok_json(&json!({
        "policyName": version.name,
        "policyArn": plane.arns().policy(&version.name),
        "policyDocument": version.document,
        "policyVersionId": version.version_id,
    })))
}

pub(super) async fn get_policy(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    let policy = plane.registry().get_policy(&name)?;
    Ok(ok_json(&json!({
        "policyName": policy.name,
        "policyArn": plane.arns().policy(&policy.name),
        "policyDocument": policy.document,
        "defaultVersionId": policy.default_version_id,
        "creationDate": epoch_seconds(policy.created_ms),
        "lastModifiedDate": epoch_seconds(policy.last_modified_ms),
        "generationId": policy.generation_id,
    })))
}

pub(super) async fn list_policies(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<ListPoliciesQuery>,
) -> Result<Response, ControlPlaneError> {
    let page = registry_page("pageSize", query.page_size, query.marker)?;
    let listed = plane
        .registry()
        .list_policies(&page, query.is_ascending_order.unwrap_or(false))?;
    let policies: Vec<_> = listed
        .items
        .iter()
        .map(|policy| policy_summary(&plane, &policy.name))
        .collect();
    let mut body = json!({ "policies": policies });
    if let Some(marker) = listed.next_marker {
        body["nextMarker"] = json!(marker);
    }
    Ok(ok_json(&body))
}

/// The `Policy` shape of the list operations and TestAuthorization.
pub(super) fn policy_summary(plane: &ControlPlane, name: &str) -> serde_json::Value {
    json!({ "policyName": name, "policyArn": plane.arns().policy(name) })
}

pub(super) async fn delete_policy(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    plane.registry().delete_policy(&name)?;
    Ok(ok_empty())
}

pub(super) async fn create_policy_version(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(query): AwsQuery<SetAsDefaultQuery>,
    AwsJson(request): AwsJson<PolicyDocumentRequest>,
) -> Result<Response, ControlPlaneError> {
    let version = plane.registry().create_policy_version(
        &name,
        &request.document()?,
        query.set_as_default.unwrap_or(false),
    )?;
    Ok(ok_json(&json!({
        "policyArn": plane.arns().policy(&version.name),
        "policyDocument": version.document,
        "policyVersionId": version.version_id,
        "isDefaultVersion": version.is_default,
    })))
}

pub(super) async fn get_policy_version(
    State(plane): State<ControlPlane>,
    AwsPath((name, version)): AwsPath<(String, String)>,
) -> Result<Response, ControlPlaneError> {
    let version = plane
        .registry()
        .get_policy_version(&name, version_id(&version)?)?;
    // A version never changes once created; the policy's generation id is the one AWS reports for it.
    let generation_id = plane.registry().get_policy(&name)?.generation_id;
    Ok(ok_json(&json!({
        "policyArn": plane.arns().policy(&version.name),
        "policyName": version.name,
        "policyDocument": version.document,
        "policyVersionId": version.version_id,
        "isDefaultVersion": version.is_default,
        "creationDate": epoch_seconds(version.created_ms),
        "lastModifiedDate": epoch_seconds(version.created_ms),
        "generationId": generation_id,
    })))
}

pub(super) async fn list_policy_versions(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    let versions: Vec<_> = plane
        .registry()
        .list_policy_versions(&name)?
        .into_iter()
        .map(|version| {
            json!({
                "versionId": version.version_id,
                "isDefaultVersion": version.is_default,
                "createDate": epoch_seconds(version.created_ms),
            })
        })
        .collect();
    Ok(ok_json(&json!({ "policyVersions": versions })))
}

pub(super) async fn set_default_policy_version(
    State(plane): State<ControlPlane>,
    AwsPath((name, version)): AwsPath<(String, String)>,
) -> Result<Response, ControlPlaneError> {
    plane
        .registry()
        .set_default_policy_version(&name, version_id(&version)?)?;
    Ok(ok_empty())
}

pub(super) async fn delete_policy_version(
    State(plane): State<ControlPlane>,
    AwsPath((name, version)): AwsPath<(String, String)>,
) -> Result<Response, ControlPlaneError> {
    plane
        .registry()
        .delete_policy_version(&name, version_id(&version)?)?;
    Ok(ok_empty())
}

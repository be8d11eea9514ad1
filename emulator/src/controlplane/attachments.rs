//! Attachments: policies to certificates (AttachPolicy, DetachPolicy, ListAttachedPolicies,
//! ListTargetsForPolicy and the deprecated AttachPrincipalPolicy, DetachPrincipalPolicy,
//! ListPrincipalPolicies) and certificates to things (AttachThingPrincipal, DetachThingPrincipal,
//! ListThingPrincipals, ListPrincipalThings). Principals and targets arrive as certificate ARNs; the
//! registry takes certificate ids.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::ControlPlane;
use super::error::ControlPlaneError;
use super::policies::policy_summary;
use super::wire::{AwsJson, AwsPath, AwsQuery, ok_empty, ok_json, registry_page, required_header};
use crate::registry::AttachmentKind;

/// The principal header of AttachThingPrincipal, DetachThingPrincipal and ListPrincipalThings.
const PRINCIPAL_HEADER: &str = "x-amzn-principal";
/// The principal header of the deprecated *PrincipalPolicy operations.
const IOT_PRINCIPAL_HEADER: &str = "x-amzn-iot-principal";

#[derive(Debug, Deserialize)]
pub(super) struct TargetRequest {
    target: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MarkerQuery {
    marker: Option<String>,
    page_size: Option<i64>,
    /// ListAttachedPolicies' `recursive` (thing-group inheritance) and ListPrincipalPolicies'
    /// `isAscendingOrder`: accepted and ignored, certificates have no groups and lists are in name order.
    #[allow(dead_code)]
    recursive: Option<bool>,
    #[allow(dead_code)]
    is_ascending_order: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenQuery {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttachThingPrincipalQuery {
    thing_principal_type: Option<String>,
}

fn target_certificate(
    plane: &ControlPlane,
    request: TargetRequest,
) -> Result<String, ControlPlaneError> {
    let target = request
        .target
        .filter(|target| !target.is_empty())
        .ok_or_else(|| ControlPlaneError::invalid("Missing required member target"))?;
    plane.arns().certificate_id("target", &target)
}

fn header_certificate(
    plane: &ControlPlane,
    headers: &HeaderMap,
    header: &str,
) -> Result<String, ControlPlaneError> {
    let principal = required_header(headers, header)?;
    plane.arns().certificate_id("principal", &principal)
}

fn policies_page(
    plane: &ControlPlane,
    certificate_id: &str,
    query: MarkerQuery,
) -> Result<Response, ControlPlaneError> {
    let page = registry_page("pageSize", query.page_size, query.marker)?;
    let listed = plane
        .registry()
        .list_attached_policies(certificate_id, &page)?;
    let policies: Vec<_> = listed
        .items
        .iter()
        .map(|name| policy_summary(plane, name))
        .collect();
    let mut body = json!({ "policies": policies });
    if let Some(marker) = listed.next_marker {
        body["nextMarker"] = json!(marker);
    }
    Ok(ok_json(&body))
}

pub(super) async fn attach_policy(
    State(plane): State<ControlPlane>,
    AwsPath(policy): AwsPath<String>,
    AwsJson(request): AwsJson<TargetRequest>,
) -> Result<Response, ControlPlaneError> {
    let certificate = target_certificate(&plane, request)?;
    plane.registry().attach_policy(&policy, &certificate)?;
    Ok(ok_empty())
}

pub(super) async fn detach_policy(
    State(plane): State<ControlPlane>,
    AwsPath(policy): AwsPath<String>,
    AwsJson(request): AwsJson<TargetRequest>,
) -> Result<Response, ControlPlaneError> {
    let certificate = target_certificate(&plane, request)?;
    plane.registry().detach_policy(&policy, &certificate)?;
    Ok(ok_empty())
}

pub(super) async fn list_attached_policies(
    State(plane): State<ControlPlane>,
    AwsPath(target): AwsPath<String>,
    AwsQuery(query): AwsQuery<MarkerQuery>,
) -> Result<Response, ControlPlaneError> {
    let certificate = plane.arns().certificate_id("target", &target)?;
    policies_page(&plane, &certificate, query)
}

pub(super) async fn list_targets_for_policy(
    State(plane): State<ControlPlane>,
    AwsPath(policy): AwsPath<String>,
    AwsQuery(query): AwsQuery<MarkerQuery>,
) -> Result<Response, ControlPlaneError> {
    let page = registry_page("pageSize", query.page_size, query.marker)?;
    let listed = plane.registry().list_targets_for_policy(&policy, &page)?;
    let targets: Vec<String> = listed
        .items
        .iter()
        .map(|id| plane.arns().certificate(id))
        .collect();
    let mut body = json!({ "targets": targets });
    if let Some(marker) = listed.next_marker {
        body["nextMarker"] = json!(marker);
    }
    Ok(ok_json(&body))
}

pub(super) async fn attach_principal_policy(
    State(plane): State<ControlPlane>,
    AwsPath(policy): AwsPath<String>,
    headers: HeaderMap,
) -> Result<Response, ControlPlaneError> {
    let certificate = header_certificate(&plane, &headers, IOT_PRINCIPAL_HEADER)?;
    plane.registry().attach_policy(&policy, &certificate)?;
    Ok(ok_empty())
}

pub(super) async fn detach_principal_policy(
    State(plane): State<ControlPlane>,
    AwsPath(policy): AwsPath<String>,
    headers: HeaderMap,
) -> Result<Response, ControlPlaneError> {
    let certificate = header_certificate(&plane, &headers, IOT_PRINCIPAL_HEADER)?;
    plane.registry().detach_policy(&policy, &certificate)?;
    Ok(ok_empty())
}

pub(super) async fn list_principal_policies(
    State(plane): State<ControlPlane>,
    headers: HeaderMap,
    AwsQuery(query): AwsQuery<MarkerQuery>,
) -> Result<Response, ControlPlaneError> {
    let certificate = header_certificate(&plane, &headers, IOT_PRINCIPAL_HEADER)?;
    policies_page(&plane, &certificate, query)
}

fn attachment_kind(value: Option<&str>) -> Result<AttachmentKind, ControlPlaneError> {
    match value {
        None | Some("NON_EXCLUSIVE_THING") => Ok(AttachmentKind::NonExclusiveThing),
        Some("EXCLUSIVE_THING") => Ok(AttachmentKind::ExclusiveThing),
        Some(other) => Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value '{other}' at 'thingPrincipalType' failed to satisfy \
             constraint: Member must satisfy enum value set: [EXCLUSIVE_THING, NON_EXCLUSIVE_THING]"
        ))),
    }
}

pub(super) async fn attach_thing_principal(
    State(plane): State<ControlPlane>,
    AwsPath(thing): AwsPath<String>,
    headers: HeaderMap,
    AwsQuery(query): AwsQuery<AttachThingPrincipalQuery>,
) -> Result<Response, ControlPlaneError> {
    let certificate = header_certificate(&plane, &headers, PRINCIPAL_HEADER)?;
    let kind = attachment_kind(query.thing_principal_type.as_deref())?;
    plane
        .registry()
        .attach_thing_principal(&thing, &certificate, kind)?;
    Ok(ok_empty())
}

pub(super) async fn detach_thing_principal(
    State(plane): State<ControlPlane>,
    AwsPath(thing): AwsPath<String>,
    headers: HeaderMap,
) -> Result<Response, ControlPlaneError> {
    let certificate = header_certificate(&plane, &headers, PRINCIPAL_HEADER)?;
    plane
        .registry()
        .detach_thing_principal(&thing, &certificate)?;
    Ok(ok_empty())
}

pub(super) async fn list_thing_principals(
    State(plane): State<ControlPlane>,
    AwsPath(thing): AwsPath<String>,
    AwsQuery(query): AwsQuery<TokenQuery>,
) -> Result<Response, ControlPlaneError> {
    let page = registry_page("maxResults", query.max_results, query.next_token)?;
    let listed = plane.registry().list_thing_principals(&thing, &page)?;
    let principals: Vec<String> = listed
        .items
        .iter()
        .map(|id| plane.arns().certificate(id))
        .collect();
    let mut body = json!({ "principals": principals });
    if let Some(token) = listed.next_marker {
        body["nextToken"] = json!(token);
    }
    Ok(ok_json(&body))
}

pub(super) async fn list_principal_things(
    State(plane): State<ControlPlane>,
    headers: HeaderMap,
    AwsQuery(query): AwsQuery<TokenQuery>,
) -> Result<Response, ControlPlaneError> {
    let certificate = header_certificate(&plane, &headers, PRINCIPAL_HEADER)?;
    let page = registry_page("maxResults", query.max_results, query.next_token)?;
    let listed = plane
        .registry()
        .list_principal_things(&certificate, &page)?;
    let mut body = json!({ "things": listed.items });
    if let Some(token) = listed.next_marker {
        body["nextToken"] = json!(token);
    }
    Ok(ok_json(&body))
}

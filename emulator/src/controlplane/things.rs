//! Things: CreateThing, DescribeThing, ListThings, UpdateThing, DeleteThing. Names, attributes, versions and
//! idempotence are the registry's; this is the wire.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ControlPlane;
use super::error::ControlPlaneError;
use super::wire::{AwsJson, AwsPath, AwsQuery, ok_empty, ok_json, registry_page};
use crate::registry::{ThingFilter, ThingUpdate, ThingView};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttributePayload {
    attributes: Option<BTreeMap<String, String>>,
    merge: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateThingRequest {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
    billing_group_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateThingRequest {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
    expected_version: Option<i64>,
    remove_thing_type: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListThingsQuery {
    next_token: Option<String>,
    max_results: Option<i64>,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    thing_type_name: Option<String>,
    use_prefix_attribute_value: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteThingQuery {
    expected_version: Option<i64>,
}

/// `ThingAttribute` of ListThings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingAttribute {
    thing_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_type_name: Option<String>,
    thing_arn: String,
    attributes: BTreeMap<String, String>,
    version: i64,
}

pub(super) async fn create_thing(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
    AwsJson(request): AwsJson<CreateThingRequest>,
) -> Result<Response, ControlPlaneError> {
    if let Some(group) = request.billing_group_name {
        return Err(ControlPlaneError::invalid(format!(
            "Billing groups are not emulated (billingGroupName {group})"
        )));
    }
    let attributes = request
        .attribute_payload
        .and_then(|payload| payload.attributes)
        .unwrap_or_default();
    let thing =
        plane
            .registry()
            .create_thing(&name, request.thing_type_name.as_deref(), attributes)?;
    Ok(ok_json(&json!({
        "thingName": thing.name,
        "thingArn": plane.arns().thing(&thing.name),
        "thingId": thing.id,
    })))
}

pub(super) async fn describe_thing(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    let thing = plane.registry().describe_thing(&name)?;
    let mut body = json!({
        // AWS's default client id is the thing name (what the thing policy variables expect).
        "defaultClientId": thing.name,
        "thingName": thing.name,
        "thingId": thing.id,
        "thingArn": plane.arns().thing(&thing.name),
        "attributes": thing.attributes,
        "version": thing.version,
    });
    if let Some(type_name) = thing.type_name {
        body["thingTypeName"] = json!(type_name);
    }
    Ok(ok_json(&body))
}

pub(super) async fn list_things(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<ListThingsQuery>,
) -> Result<Response, ControlPlaneError> {
    if query.use_prefix_attribute_value == Some(true) {
        return Err(ControlPlaneError::invalid(
            "usePrefixAttributeValue is not emulated: filter on the whole attribute value",
        ));
    }
    if query.attribute_value.is_some() && query.attribute_name.is_none() {
        return Err(ControlPlaneError::invalid(
            "attributeValue needs attributeName",
        ));
    }
    let page = registry_page("maxResults", query.max_results, query.next_token)?;
    let filter = ThingFilter {
        attribute_name: query.attribute_name,
        attribute_value: query.attribute_value,
        thing_type_name: query.thing_type_name,
    };
    let listed = plane.registry().list_things(&filter, &page)?;
    let things: Vec<ThingAttribute> = listed
        .items
        .into_iter()
        .map(|thing: ThingView| ThingAttribute {
            thing_arn: plane.arns().thing(&thing.name),
            thing_name: thing.name,
            thing_type_name: thing.type_name,
            attributes: thing.attributes,
            version: thing.version,
        })
        .collect();
    let mut body = json!({ "things": things });
    if let Some(token) = listed.next_marker {
        body["nextToken"] = json!(token);
    }
    Ok(ok_json(&body))
}

pub(super) async fn update_thing(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
    AwsJson(request): AwsJson<UpdateThingRequest>,
) -> Result<Response, ControlPlaneError> {
    let remove_thing_type = request.remove_thing_type.unwrap_or(false);
    if remove_thing_type && request.thing_type_name.is_some() {
        return Err(ControlPlaneError::invalid(
            "Cannot specify both thingTypeName and removeThingType",
        ));
    }
    let payload = request.attribute_payload.unwrap_or_default();
    plane.registry().update_thing(
        &name,
        ThingUpdate {
            type_name: request.thing_type_name,
            remove_thing_type,
            attributes: payload.attributes,
            merge: payload.merge.unwrap_or(false),
            expected_version: request.expected_version,
        },
    )?;
    Ok(ok_empty())
}

pub(super) async fn delete_thing(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(query): AwsQuery<DeleteThingQuery>,
) -> Result<Response, ControlPlaneError> {
    plane
        .registry()
        .delete_thing(&name, query.expected_version)?;
    Ok(ok_empty())
}

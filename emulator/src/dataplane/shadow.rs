//! `GET|POST|DELETE /things/{thingName}/shadow[?name=]` and
//! `GET /api/things/shadow/ListNamedShadowsForThing/{thingName}` (reference 3.10), as
//! `aws-sdk-iotdataplane` 1.120 builds them (`operation/*_thing_shadow.rs`, `list_named_shadows_for_thing.rs`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shadow_doc::{ShadowId, ShadowName};

use super::DataPlane;
use super::error::{DataPlaneError, json_response, request_id};

#[derive(Debug, Deserialize)]
pub(crate) struct ShadowQuery {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    next_token: Option<String>,
    page_size: Option<String>,
}

pub(crate) fn ok_json<T: serde::Serialize>(body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    json_response(StatusCode::OK, bytes, &request_id())
}

fn path_error(rejection: PathRejection) -> DataPlaneError {
    DataPlaneError::invalid_request(rejection.body_text())
}

fn query_error(rejection: QueryRejection) -> DataPlaneError {
    DataPlaneError::invalid_request(rejection.body_text())
}

/// Payloads over the transport limit answer 413 like AWS, not axum's plain-text rejection.
pub(crate) fn body_error(rejection: BytesRejection) -> DataPlaneError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        DataPlaneError::too_large()
    } else {
        DataPlaneError::invalid_request(rejection.body_text())
    }
}

fn shadow_id(
    thing: Result<Path<String>, PathRejection>,
    query: Result<Query<ShadowQuery>, QueryRejection>,
) -> Result<ShadowId, DataPlaneError> {
    let Path(thing) = thing.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let name = ShadowName::from_query(query.name.as_deref())
        .map_err(|error| DataPlaneError::invalid_request(error.to_string()))?;
    ShadowId::new(thing, name).map_err(|error| DataPlaneError::invalid_request(error.to_string()))
}

pub(crate) async fn get_shadow(
    State(plane): State<DataPlane>,
    thing: Result<Path<String>, PathRejection>,
    query: Result<Query<ShadowQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let shadow = shadow_id(thing, query)?;
    Ok(ok_json(&plane.shadows.get(&shadow)?))
}

pub(crate) async fn update_shadow(
    State(plane): State<DataPlane>,
    thing: Result<Path<String>, PathRejection>,
    query: Result<Query<ShadowQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DataPlaneError> {
    let shadow = shadow_id(thing, query)?;
    let body = body.map_err(body_error)?;
    Ok(ok_json(&plane.shadows.update(&shadow, &body)?))
}

pub(crate) async fn delete_shadow(
    State(plane): State<DataPlane>,
    thing: Result<Path<String>, PathRejection>,
    query: Result<Query<ShadowQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let shadow = shadow_id(thing, query)?;
    Ok(ok_json(&plane.shadows.delete(&shadow)?))
}

pub(crate) async fn list_named_shadows(
    State(plane): State<DataPlane>,
    thing: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, DataPlaneError> {
    let Path(thing) = thing.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let page_size = query
        .page_size
        .as_deref()
        .map(str::parse::<usize>)
        .transpose()
        .map_err(|_| DataPlaneError::invalid_request("pageSize must be an integer"))?;
    let list = plane
        .shadows
        .list_named(&thing, page_size, query.next_token.as_deref())?;
    Ok(ok_json(&list))
}

pub(crate) async fn method_not_allowed() -> Response {
    DataPlaneError::method_not_allowed().into_response()
}

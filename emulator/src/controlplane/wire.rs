//! The restJson1 plumbing every handler shares: extractors that refuse bad input with AWS's
//! InvalidRequestException instead of axum's plain-text rejections, JSON answers with a request id, AWS's
//! range checks for page sizes, and timestamps as epoch seconds (restJson1's default for body members).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ControlPlaneError;
use crate::dataplane::DataPlaneError;
use crate::dataplane::error::{json_response, request_id};
use crate::registry::Page;

/// AWS does not document the page size of its registry lists when none is asked for; 50 keeps code that
/// ignores `nextToken`/`nextMarker` failing here as it would against a large AWS account.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// `RegistryMaxResults` and `PageSize` in the service model: 1..=250.
pub const MAX_PAGE_SIZE: i64 = 250;

/// Path parameters, percent-decoded; a malformed one is InvalidRequestException.
pub struct AwsPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AwsPath<T> {
    type Rejection = ControlPlaneError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| AwsPath(value))
            .map_err(|rejection| ControlPlaneError::invalid(rejection.body_text()))
    }
}

/// Query members; a value of the wrong type (`maxResults=ten`) is InvalidRequestException.
pub struct AwsQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AwsQuery<T> {
    type Rejection = ControlPlaneError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| AwsQuery(value))
            .map_err(|rejection| ControlPlaneError::invalid(rejection.body_text()))
    }
}

/// The JSON body. botocore sends no body at all for operations whose members all live in the URI, so an
/// empty body reads as `{}`.
pub struct AwsJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AwsJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    DataPlaneError::too_large().into_response()
                } else {
                    ControlPlaneError::invalid(rejection.body_text()).into_response()
                }
            })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(body).map(AwsJson).map_err(|error| {
            ControlPlaneError::invalid(format!("The request body is not valid: {error}"))
                .into_response()
        })
    }
}

/// A 200 answer with AWS's request-id header.
pub fn ok_json<T: Serialize>(body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    json_response(StatusCode::OK, bytes, &request_id())
}

/// The 200 answer of operations without output members.
pub fn ok_empty() -> Response {
    json_response(StatusCode::OK, b"{}".to_vec(), &request_id())
}

/// restJson1 body timestamps are epoch seconds, fractional for milliseconds.
pub fn epoch_seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// AWS's message for a member outside its modelled range.
fn out_of_range(member: &str, value: i64, min: i64, max: i64) -> ControlPlaneError {
    let constraint = if value < min {
        format!("Member must have value greater than or equal to {min}")
    } else {
        format!("Member must have value less than or equal to {max}")
    };
    ControlPlaneError::invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

/// A `maxResults` / `pageSize` member checked against `min..=max`, or `default` when absent.
pub fn page_size(
    member: &str,
    value: Option<i64>,
    max: i64,
    default: usize,
) -> Result<usize, ControlPlaneError> {
    match value {
        None => Ok(default),
        Some(value) if (1..=max).contains(&value) => {
            usize::try_from(value).map_err(|_| out_of_range(member, value, 1, max))
        }
        Some(value) => Err(out_of_range(member, value, 1, max)),
    }
}

/// A registry page from the request's size and token members.
pub fn registry_page(
    member: &str,
    size: Option<i64>,
    marker: Option<String>,
) -> Result<Page, ControlPlaneError> {
    Ok(Page {
        marker: marker.filter(|marker| !marker.is_empty()),
        page_size: page_size(member, size, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)?,
    })
}

/// A required header member (`x-amzn-principal`, `x-amzn-iot-principal`).
pub fn required_header(headers: &HeaderMap, name: &str) -> Result<String, ControlPlaneError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ControlPlaneError::invalid(format!("Missing required header {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_stay_in_the_modelled_range() {
        assert_eq!(page_size("maxResults", None, 250, 50).unwrap(), 50);
        assert_eq!(page_size("maxResults", Some(1), 250, 50).unwrap(), 1);
        assert_eq!(page_size("maxResults", Some(250), 250, 50).unwrap(), 250);
        let high = page_size("maxResults", Some(251), 250, 50).unwrap_err();
        assert!(
            high.to_string()
                .contains("Value '251' at 'maxResults' failed to satisfy constraint"),
            "{high}"
        );
        assert!(page_size("pageSize", Some(0), 250, 50).is_err());
        assert_eq!(high.wire(), (400, "InvalidRequestException"));
    }

    #[test]
    fn timestamps_are_epoch_seconds() {
        assert_eq!(epoch_seconds(1_700_000_000_500), 1_700_000_000.5);
    }
}

//! Errors of the iot-data API in restJson1 form: the exception name in `x-amzn-ErrorType` and
//! `{"message": ...}` in the body, which is what the Rust SDK and the AWS CLI decode (the SDK reads the
//! header first, see `aws-sdk-iotdataplane` `json_errors.rs`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shadow_doc::ShadowError;

use crate::shadow::PublishError;

/// One failed data-plane request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exception} ({status}): {message}")]
pub struct DataPlaneError {
    pub status: u16,
    /// E.g. `ResourceNotFoundException` (reference 3.8, HTTP API exceptions).
    pub exception: &'static str,
    pub message: String,
}

impl DataPlaneError {
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            exception: "InvalidRequestException",
            message: message.into(),
        }
    }

    pub fn method_not_allowed() -> Self {
        Self {
            status: 405,
            exception: "MethodNotAllowedException",
            message: "The specified combination of HTTP verb and URI is not supported".into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            exception: "ForbiddenException",
            message: message.into(),
        }
    }

    /// The data plane was built without a broker (`DataPlane::with_broker`), so it has no sessions to read.
    pub fn no_broker() -> Self {
        Self {
            status: 503,
            exception: "ServiceUnavailableException",
            message: "This data plane has no MQTT broker".into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            exception: "ResourceNotFoundException",
            message: message.into(),
        }
    }

    pub fn too_large() -> Self {
        Self {
            status: 413,
            exception: "RequestEntityTooLargeException",
            message: "The payload exceeds the maximum size allowed".into(),
        }
    }
}

impl From<ShadowError> for DataPlaneError {
    /// The shadow error's `code` is the HTTP status (reference 3.8).
    fn from(error: ShadowError) -> Self {
        Self {
            status: error.code,
            exception: error.http_exception_name(),
            message: error.message,
        }
    }
}

impl From<PublishError> for DataPlaneError {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::Unavailable => Self {
                status: 503,
                exception: "ServiceUnavailableException",
                message: error.to_string(),
            },
            // Reference 3.10: Publish's ThrottlingException (429).
            PublishError::Throttled => Self {
                status: 429,
                exception: "ThrottlingException",
                message: error.to_string(),
            },
            PublishError::Refused(_) => Self {
                status: 403,
                exception: "ForbiddenException",
                message: error.to_string(),
            },
        }
    }
}

/// A fresh request id, sent as `x-amzn-RequestId` (the SDK exposes it) and as `traceId` in bodies.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A JSON response with AWS's request-id header.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

impl IntoResponse for DataPlaneError {
    fn into_response(self) -> Response {
        let trace_id = request_id();
        let body = json!({ "message": self.message, "traceId": trace_id }).to_string();
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(status, body.into_bytes(), &trace_id);
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.exception));
        response
    }
}

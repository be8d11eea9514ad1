//! Errors of the control plane. On the wire they take the data plane's restJson1 error shape
//! ([`DataPlaneError`]: the exception name in `x-amzn-ErrorType`, `{"message": ...}` in the body), which is
//! what botocore's `RestJSONParser` and the SDKs decode: both APIs are restJson1 and answer errors alike.

use axum::http::Method;
use axum::response::{IntoResponse, Response};

use crate::dataplane::DataPlaneError;
use crate::registry::RegistryError;

/// One failed control-plane request.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// Refused by the registry (names, documents, preconditions, unknown resources); it knows AWS's exception.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A request the HTTP layer refuses: a missing or malformed member, a value out of range, an ARN that is
    /// not one, something the emulator does not model.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    ResourceNotFound(String),
    /// AWS answers GetTopicRule for a rule that does not exist with 401 UnauthorizedException (it is in the
    /// operation's modelled errors; ResourceNotFoundException is not).
    #[error("{0}")]
    Unauthorized(String),
    /// Stored state the emulator cannot read back (a policy document or certificate that no longer parses).
    #[error("{0}")]
    Internal(String),
    /// No operation is served at this method and path.
    #[error(
        "The emulator's IoT control plane has no operation {method} {path} (docs/emulator.md lists the ones it serves)"
    )]
    UnknownOperation { method: Method, path: String },
}

impl ControlPlaneError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }

    /// The HTTP status and the exception name botocore and the SDKs map to their modelled errors.
    pub fn wire(&self) -> (u16, &'static str) {
        match self {
            Self::Registry(error) => (error.http_status(), error.aws_error_code()),
            Self::InvalidRequest(_) => (400, "InvalidRequestException"),
            Self::ResourceNotFound(_) => (404, "ResourceNotFoundException"),
            Self::Unauthorized(_) => (401, "UnauthorizedException"),
            Self::Internal(_) => (500, "InternalFailureException"),
            // Not ResourceNotFoundException: a client must not read "no such operation" as "no such thing".
            Self::UnknownOperation { .. } => (404, "UnknownOperationException"),
        }
    }
}

impl IntoResponse for ControlPlaneError {
    fn into_response(self) -> Response {
        let (status, exception) = self.wire();
        if status >= 500 {
            tracing::error!(error = %self, "control-plane request failed");
        }
        DataPlaneError {
            status,
            exception,
            message: self.to_string(),
        }
        .into_response()
    }
}

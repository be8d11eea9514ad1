//! Error documents of the Device Shadow service.
//!
//! On MQTT an error goes to the `/rejected` topic of the failing request; on HTTP the same `code` is the
//! HTTP status (reference 3.2, 3.8). The JSON shape is `{"code","message","timestamp"?,"clientToken"?}`
//! (reference 3.6); `timestamp` is not always present.

use serde::{Deserialize, Serialize};

use crate::topic::ShadowId;

/// A rejected shadow request, serialized exactly like AWS's error document (reference 3.6, 3.8).
///
/// `code` doubles as the HTTP status of the data-plane API, so the emulator can answer HTTP and MQTT
/// from the same value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("shadow request rejected with {code}: {message}")]
#[serde(rename_all = "camelCase")]
pub struct ShadowError {
    /// HTTP status code (the MQTT error document uses the same number).
    pub code: u16,
    /// AWS's message text, verbatim from reference 3.8.
    pub message: String,
    /// Epoch seconds; AWS omits it on some errors (see [`ShadowError::stamp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Echo of the request's `clientToken`, when the request carried a valid one (reference 3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// Largest `clientToken` AWS accepts, in bytes (reference 3.3).
pub const MAX_CLIENT_TOKEN_BYTES: usize = 64;

impl ShadowError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            timestamp: None,
            client_token: None,
        }
    }

    /// 400 `Invalid JSON`: the payload does not parse (reference 3.8).
    pub fn invalid_json() -> Self {
        Self::new(400, "Invalid JSON")
    }

    /// 400 for an array holding `null`. AWS rejects these (reference 3.4) but its message is not
    /// documented (reference 9, item 7); we answer `Invalid JSON`, as the emulator checklist suggests.
    pub fn array_contains_null() -> Self {
        Self::invalid_json()
    }

    /// 400 `Missing required node: state` (reference 3.3, 3.8).
    pub fn missing_state() -> Self {
        Self::new(400, "Missing required node: state")
    }

    /// 400 `State node must be an object` (reference 3.3).
    pub fn state_not_object() -> Self {
        Self::new(400, "State node must be an object")
    }

    /// 400 `Desired node must be an object` (reference 3.3).
    pub fn desired_not_object() -> Self {
        Self::new(400, "Desired node must be an object")
    }

    /// 400 `Reported node must be an object` (reference 3.3).
    pub fn reported_not_object() -> Self {
        Self::new(400, "Reported node must be an object")
    }

    /// 400 `State contains an invalid node`: a key other than `desired`/`reported` under `state`.
    pub fn invalid_state_node() -> Self {
        Self::new(400, "State contains an invalid node")
    }

    /// 400 `Invalid version`: `version` is not a non-negative integer (reference 3.8).
    pub fn invalid_version() -> Self {
        Self::new(400, "Invalid version")
    }

    /// 400 `Invalid clientToken`: not a string, or longer than 64 bytes (reference 3.3).
    pub fn invalid_client_token() -> Self {
        Self::new(400, "Invalid clientToken")
    }

    /// 400 `JSON contains too many levels of nesting; maximum is N` (reference 3.8, 3.9).
    pub fn too_many_levels(max_levels: usize) -> Self {
        Self::new(
            400,
            format!("JSON contains too many levels of nesting; maximum is {max_levels}"),
        )
    }

    /// 401 `Unauthorized` (reference 3.8).
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    /// 403 `Forbidden` (reference 3.8).
    pub fn forbidden() -> Self {
        Self::new(403, "Forbidden")
    }

    /// 404 `Thing not found` (reference 3.8).
    pub fn thing_not_found() -> Self {
        Self::new(404, "Thing not found")
    }

    /// 404 for a get/delete of a shadow that does not exist (reference 3.6, 3.7).
    ///
    /// Observed text for a classic shadow: `No shadow exists with name: '<thing>'`. For a named shadow a
    /// device script compared the payload against `No shadow exists with name: '<thing>~<shadow>'`, while a
    /// console tutorial shows `'<shadow>'`; we follow the script, which was matched against live AWS.
    pub fn no_shadow(shadow: &ShadowId) -> Self {
        Self::new(
            404,
            format!("No shadow exists with name: '{}'", shadow.not_found_name()),
        )
    }

    /// 409 `Version conflict`: `version` in the request differs from the stored one (reference 3.3).
    pub fn version_conflict() -> Self {
        Self::new(409, "Version conflict")
    }

    /// 413 `The payload exceeds the maximum size allowed` (reference 3.8, 3.9).
    pub fn payload_too_large() -> Self {
        Self::new(413, "The payload exceeds the maximum size allowed")
    }

    /// 415 for a payload that is not UTF-8; the typo "documented" is AWS's (reference 3.8).
    pub fn unsupported_encoding() -> Self {
        Self::new(
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
        )
    }

    /// 429 for more than 10 in-flight requests on one connection (reference 3.8). AWS documents the code
    /// but not the message; the text here is ours.
    pub fn too_many_requests() -> Self {
        Self::new(429, "Too Many Requests")
    }

    /// 500 `Internal service failure` (reference 3.8).
    pub fn internal_failure() -> Self {
        Self::new(500, "Internal service failure")
    }

    /// Attach the request's `clientToken` so the rejection can be matched to its request (reference 3.3).
    pub fn with_client_token(mut self, client_token: Option<String>) -> Self {
        self.client_token = client_token;
        self
    }

    /// Set `timestamp` the way AWS does: the documented error format carries it, but the documented
    /// 409 example and the observed 404 (`{"code":404,"message":"No shadow exists ..."}`) do not
    /// (reference 3.6), so those two codes stay without one.
    pub fn stamp(mut self, now_secs: u64) -> Self {
        self.timestamp = match self.code {
            404 | 409 => None,
            _ => Some(now_secs),
        };
        self
    }

    /// The iot-data HTTP exception name for this code (reference 3.8, HTTP API exceptions), which the
    /// emulator puts in `x-amzn-ErrorType`.
    pub fn http_exception_name(&self) -> &'static str {
        match self.code {
            400 => "InvalidRequestException",
            401 => "UnauthorizedException",
            403 => "ForbiddenException",
            404 => "ResourceNotFoundException",
            405 => "MethodNotAllowedException",
            409 => "ConflictException",
            413 => "RequestEntityTooLargeException",
            415 => "UnsupportedDocumentEncodingException",
            429 => "ThrottlingException",
            503 => "ServiceUnavailableException",
            _ => "InternalFailureException",
        }
    }

    /// The error document as JSON bytes, ready to publish on `/rejected`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing a struct of integers and strings cannot fail; fall back to a literal anyway so
        // library code never panics.
        serde_json::to_vec(self)
            .unwrap_or_else(|_| br#"{"code":500,"message":"Internal service failure"}"#.to_vec())
    }
}

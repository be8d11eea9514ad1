//! Reading and deleting shadows, and what a store keeps per shadow (reference 3.6, 3.7).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::{ShadowDocument, ShadowMetadata};
use crate::error::ShadowError;
use crate::request::{DeleteRequest, GetRequest};
use crate::topic::ShadowId;

/// What a shadow store holds for one [`ShadowId`].
///
/// A deleted shadow is not forgotten at once: its version carries on if the shadow is recreated within
/// 48 hours (reference 3.7), so the store keeps a [`DeletedShadow`] in its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "shadow")]
// Nearly every record is live; boxing the common variant to shrink the rare one would cost an
// allocation per shadow for nothing.
#[allow(clippy::large_enum_variant)]
pub enum ShadowRecord {
    Live(ShadowDocument),
    Deleted(DeletedShadow),
}

impl ShadowRecord {
    /// The live document, if the shadow currently exists (a deleted one answers 404, reference 3.7).
    pub fn live(&self) -> Option<&ShadowDocument> {
        match self {
            Self::Live(document) => Some(document),
            Self::Deleted(_) => None,
        }
    }
}

/// The remembered version of a deleted shadow (reference 3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedShadow {
    /// The version the shadow had when it was deleted.
    pub version: u64,
    /// When it was deleted, epoch seconds.
    pub deleted_at: u64,
}

impl DeletedShadow {
    /// The version a recreated shadow continues from: the deleted one within the retention window
    /// (48 h on AWS), 0 afterwards (reference 3.7: "deleted for more than 48 hours ... will be 0").
    pub fn version_for_recreate(&self, now_secs: u64, retention_secs: u64) -> u64 {
        if now_secs.saturating_sub(self.deleted_at) <= retention_secs {
            self.version
        } else {
            0
        }
    }
}

/// `state` of a `/get/accepted` body: each section only when non-empty (reference 3.6).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GetState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Map<String, Value>>,
}

/// `/get/accepted` and the HTTP GET body (reference 3.6). `metadata` covers desired and reported only;
/// `timestamp` is the time of the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetResponse {
    pub state: GetState,
    pub metadata: ShadowMetadata,
    pub version: u64,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `/delete/accepted` and the HTTP DELETE body: the deleted version and the time (reference 3.6); the
/// token is echoed like elsewhere (aws-iot-device-sdk-js-v2 shadow sample transcript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResponse {
    pub version: u64,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// The result of an accepted delete: the reply, and what the store keeps instead of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub response: DeleteResponse,
    pub tombstone: DeletedShadow,
}

/// Answer a get (reference 3.6): the full document with the delta, or 404 if the shadow does not exist
/// (never created, or deleted, reference 3.7).
pub fn get_response(
    current: Option<&ShadowDocument>,
    shadow: &ShadowId,
    request: &GetRequest,
    now_secs: u64,
) -> Result<GetResponse, ShadowError> {
    let Some(document) = current else {
        return Err(ShadowError::no_shadow(shadow)
            .with_client_token(request.client_token.clone())
            .stamp(now_secs));
    };
    let delta = document.delta();
    Ok(GetResponse {
        state: GetState {
            desired: document.state.desired.clone(),
            reported: document.state.reported.clone(),
            delta: (!delta.is_empty()).then_some(delta),
        },
        metadata: document.metadata.clone(),
        version: document.version,
        timestamp: now_secs,
        client_token: request.client_token.clone(),
    })
}

/// Delete a shadow (reference 3.6, 3.7): the reply carries the version of the deleted document, and the
/// tombstone remembers it so that a recreate continues from it rather than from 0.
pub fn delete(
    current: Option<&ShadowDocument>,
    shadow: &ShadowId,
    request: &DeleteRequest,
    now_secs: u64,
) -> Result<DeleteOutcome, ShadowError> {
    let Some(document) = current else {
        return Err(ShadowError::no_shadow(shadow)
            .with_client_token(request.client_token.clone())
            .stamp(now_secs));
    };
    Ok(DeleteOutcome {
        response: DeleteResponse {
            version: document.version,
            timestamp: now_secs,
            client_token: request.client_token.clone(),
        },
        tombstone: DeletedShadow {
            version: document.version,
            deleted_at: now_secs,
        },
    })
}

//! Where shadows live: the IoT data-plane API in production, memory in tests.
//!
//! The reconciler only needs "read a shadow with its version" and "update it, optionally only if
//! the version still matches" (reference 3.7); keeping that behind a trait lets the concurrency
//! tests interleave two reconcilers deterministically.

use std::future::Future;

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::error::{DisplayErrorContext, SdkError};
use aws_sdk_iotdataplane::operation::get_thing_shadow::GetThingShadowError;
use aws_sdk_iotdataplane::operation::update_thing_shadow::UpdateThingShadowError;
use aws_sdk_iotdataplane::primitives::Blob;
use serde_json::Value;

/// A shadow document as read, with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredShadow {
    pub version: u64,
    pub document: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// 409: the `version` in the update is not the shadow's current version.
    #[error("version conflict")]
    Conflict,
    /// 404 on update: there is no such thing (e.g. a console client id).
    #[error("thing not found: {0}")]
    ThingNotFound(String),
    #[error("{operation} failed: {message}")]
    Service {
        operation: &'static str,
        message: String,
    },
}

pub trait ShadowStore: Send + Sync {
    /// `None` when the shadow does not exist (404).
    fn get(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> impl Future<Output = Result<Option<StoredShadow>, StoreError>> + Send;

    /// Apply an update request document (`{"state":…, "version":…}`); returns the new version.
    fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &Value,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The IoT data-plane HTTP API (`GetThingShadow` / `UpdateThingShadow`).
pub struct DataPlaneStore {
    client: Client,
}

impl DataPlaneStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl ShadowStore for DataPlaneStore {
    async fn get(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<Option<StoredShadow>, StoreError> {
        let result = self
            .client
            .get_thing_shadow()
            .thing_name(thing)
            .set_shadow_name(shadow.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(output) => {
                let bytes = output.payload().map(Blob::as_ref).unwrap_or_default();
                let document: Value =
                    serde_json::from_slice(bytes).map_err(|e| StoreError::Service {
                        operation: "GetThingShadow",
                        message: format!("shadow document is not JSON: {e}"),
                    })?;
                let version = document.get("version").and_then(Value::as_u64).unwrap_or(0);
                Ok(Some(StoredShadow { version, document }))
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), GetThingShadowError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(StoreError::Service {
                operation: "GetThingShadow",
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    async fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &Value,
    ) -> Result<u64, StoreError> {
        let result = self
            .client
            .update_thing_shadow()
            .thing_name(thing)
            .set_shadow_name(shadow.map(str::to_owned))
            .payload(Blob::new(request.to_string()))
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .payload()
                .and_then(|p| serde_json::from_slice::<Value>(p.as_ref()).ok())
                .and_then(|d| d.get("version").and_then(Value::as_u64))
                .unwrap_or(0)),
            Err(SdkError::ServiceError(e)) => match e.err() {
                UpdateThingShadowError::ConflictException(_) => Err(StoreError::Conflict),
                // Not modeled for UpdateThingShadow, but a missing thing answers 404 with this code.
                other if other.meta().code() == Some("ResourceNotFoundException") => {
                    Err(StoreError::ThingNotFound(thing.to_owned()))
                }
                other => Err(StoreError::Service {
                    operation: "UpdateThingShadow",
                    message: DisplayErrorContext(other).to_string(),
                }),
            },
            Err(e) => Err(StoreError::Service {
                operation: "UpdateThingShadow",
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}

//! The AWS IoT data-plane HTTP API (`iot-data`, reference 3.10), wire-compatible with
//! `aws-sdk-iotdataplane` and `aws iot-data --endpoint-url ...`: GetThingShadow, UpdateThingShadow,
//! DeleteThingShadow, ListNamedShadowsForThing (through [`ShadowService`]) and Publish (through the
//! broker's [`Publisher`]). Requests are not authenticated: SigV4 signatures are accepted unchecked.

pub(crate) mod error;
mod publish;
mod shadow;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub use error::DataPlaneError;
pub use publish::{MAX_TOPIC_BYTES, MAX_TOPIC_SLASHES};

pub use crate::publish::Publisher;
use crate::shadow::ShadowService;

/// Largest request body: the MQTT payload limit (reference 6.5). Shadow documents are further limited
/// to 8 KB of state by the shadow service (reference 3.9).
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// The data-plane front-end; clone it freely (it holds two `Arc`s).
#[derive(Clone)]
pub struct DataPlane {
    shadows: Arc<ShadowService>,
    publisher: Arc<dyn Publisher>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}

impl DataPlane {
    pub fn new(shadows: Arc<ShadowService>, publisher: Arc<dyn Publisher>) -> Self {
        Self { shadows, publisher }
    }

    /// The axum router; serve it on its own port and point clients at it with `endpoint_url` or
    /// `AWS_ENDPOINT_URL_IOT_DATA_PLANE`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/things/{thing}/shadow",
                get(shadow::get_shadow)
                    .post(shadow::update_shadow)
                    .delete(shadow::delete_shadow)
                    .fallback(shadow::method_not_allowed),
            )
            .route(
                "/api/things/shadow/ListNamedShadowsForThing/{thing}",
                get(shadow::list_named_shadows).fallback(shadow::method_not_allowed),
            )
            .route(
                "/topics/{*topic}",
                post(publish::publish).fallback(shadow::method_not_allowed),
            )
            .fallback(|| async {
                DataPlaneError::not_found("No such data-plane resource").into_response()
            })
            .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
            .with_state(self.clone())
    }
}

//! The AWS IoT data-plane HTTP API (`iot-data`, reference 3.10), wire-compatible with
//! `aws-sdk-iotdataplane` and `aws iot-data --endpoint-url ...`, all 11 operations of the 2015-05-28 model:
//! GetThingShadow, UpdateThingShadow, DeleteThingShadow, ListNamedShadowsForThing (through
//! [`ShadowService`]), Publish (through the broker's [`Publisher`]), and GetRetainedMessage,
//! ListRetainedMessages, GetConnection, DeleteConnection, ListSubscriptions and SendDirectMessage (read from
//! and acting on the broker's sessions, [`DataPlane::with_broker`]). Requests are not authenticated: SigV4
//! signatures are accepted unchecked. Two paths are the emulator's own: the live tail of [`observe`] and the policy refusals of [`denials`].

mod connections;
pub mod denials;
pub(crate) mod error;
pub mod observe;
mod paging;
mod publish;
mod retained;
mod shadow;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::broker::Broker;

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
    /// The broker whose sessions and retained messages the connection and retained-message operations read;
    /// without one they answer 503.
    broker: Option<Broker>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}

impl DataPlane {
    pub fn new(shadows: Arc<ShadowService>, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            shadows,
            publisher,
            broker: None,
        }
    }

    /// Serves the operations that need the broker's state from `broker` (the emulator passes the broker that
    /// `publisher` publishes into).
    pub fn with_broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    fn broker(&self) -> Result<&Broker, DataPlaneError> {
        self.broker.as_ref().ok_or_else(DataPlaneError::no_broker)
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
            .route(
                "/retainedMessage",
                get(retained::list_retained_messages).fallback(shadow::method_not_allowed),
            )
            .route(
                "/retainedMessage/{*topic}",
                get(retained::get_retained_message).fallback(shadow::method_not_allowed),
            )
            .route(
                "/connections/{client_id}",
                get(connections::get_connection)
                    .delete(connections::delete_connection)
                    .fallback(shadow::method_not_allowed),
            )
            .route(
                "/connections/{client_id}/subscriptions",
                get(connections::list_subscriptions).fallback(shadow::method_not_allowed),
            )
            .route(
                "/connections/{client_id}/messages",
                post(connections::send_direct_message).fallback(shadow::method_not_allowed),
            )
            .route(
                denials::DENIALS_PATH,
                get(denials::list_denials).fallback(shadow::method_not_allowed),
            )
            .route(
                observe::SUBSCRIBE_PATH,
                get(observe::subscribe).fallback(shadow::method_not_allowed),
            )
            .fallback(|| async {
                DataPlaneError::not_found("No such data-plane resource").into_response()
            })
            .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
            .with_state(self.clone())
    }
}

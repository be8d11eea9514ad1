//! The Device Shadow service (reference section 3), classic and named shadows.
//!
//! - [`ShadowService::handle_mqtt`]: the broker hands it every message published on a shadow request
//!   topic (`$aws/things/{thing}/shadow[/name/{shadow}]/{get|update|delete}`, see
//!   [`ShadowService::is_request_topic`]) with its [`MessageOrigin`], and publishes the returned
//!   [`Publication`]s at [`SHADOW_RESPONSE_QOS`]. Last Will deliveries are ignored (reference 2.3).
//! - [`ShadowService::get`], [`update`](ShadowService::update), [`delete`](ShadowService::delete),
//!   [`list_named`](ShadowService::list_named): the operations behind the HTTP data plane
//!   (`crate::dataplane`); updates and deletes publish their MQTT messages through the
//!   [`crate::publish::Publisher`] the broker implements.
//! - [`ShadowStore`]: the records, in memory or one JSON file per shadow in a state directory.
//!
//! The document rules (validation, merge, metadata, delta, versions, error texts) are `shadow_doc`'s;
//! this module only stores records and routes messages.

mod service;
mod store;

/// The publish interface lives in [`crate::publish`] (below the services and the broker); these
/// re-exports keep the paths callers of the shadow service have long used. `QoS` is [`crate::publish::Qos`].
pub use crate::publish::{
    DiscardPublisher, Mqtt5Properties, OutboundMessage, PublishError, Publisher, Qos as QoS,
    RecordingPublisher,
};
pub use service::{
    MAX_NAMED_SHADOW_PAGE, MessageOrigin, NamedShadowList, SHADOW_RESPONSE_QOS, ShadowService,
};
pub use shadow_doc::{Publication, ShadowError, ShadowId};
pub use store::{ShadowStore, ShadowStoreError};

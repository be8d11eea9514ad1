//! The broker as the [`Publisher`] of the in-process services (shadow service, data-plane publish): their
//! messages are routed like any publish, under a service identity, with AWS's refusals.

use crate::publish::{OutboundMessage, PublishError, Publisher};

use super::{Broker, BrokerError, Origin};

/// A [`Publisher`] that publishes into the broker as the service `name` (`Origin::Service`).
#[derive(Debug, Clone)]
pub struct ServicePublisher {
    broker: Broker,
    name: String,
}

impl Broker {
    /// The publisher handle for the in-process service `name` (e.g. `"shadow"`, `"data-plane"`).
    pub fn service_publisher(&self, name: impl Into<String>) -> ServicePublisher {
        ServicePublisher {
            broker: self.clone(),
            name: name.into(),
        }
    }
}

impl Publisher for ServicePublisher {
    /// MQTT 5 properties are dropped: the broker speaks MQTT 3.1.1 only (docs/emulator.md).
    fn publish(&self, message: OutboundMessage) -> Result<(), PublishError> {
        self.broker
            .publish_internal(
                &message.topic,
                message.payload,
                message.qos,
                message.retain,
                Origin::Service {
                    name: self.name.clone(),
                },
            )
            .map_err(|error| match error {
                BrokerError::ShutDown => PublishError::Unavailable,
                other => PublishError::Refused(other.to_string()),
            })
    }
}

//! The broker as the [`Publisher`] of the in-process services (shadow service, data-plane publish): their
//! messages are routed like any publish, under a service identity, with AWS's refusals.

use crate::publish::{OutboundMessage, PublishError, Publisher};

use super::{Admission, Broker, BrokerError, Origin};

/// A [`Publisher`] that publishes into the broker as the service `name` (`Origin::Service`).
#[derive(Debug, Clone)]
pub struct ServicePublisher {
    broker: Broker,
    name: String,
    admission: Admission,
}

impl Broker {
    /// The publisher handle for an in-process service `name` whose messages answer admitted input (the shadow
    /// service's responses): never refused for a full in-process queue (`broker::internal`).
    pub fn service_publisher(&self, name: impl Into<String>) -> ServicePublisher {
        ServicePublisher {
            broker: self.clone(),
            name: name.into(),
            admission: Admission::Always,
        }
    }

    /// The publisher handle for a service that carries input from outside (the data plane's HTTP Publish):
    /// refused with [`PublishError::Throttled`] while an in-process subscriber it matches is at its bound.
    pub fn bounded_service_publisher(&self, name: impl Into<String>) -> ServicePublisher {
        ServicePublisher {
            admission: Admission::Bounded,
            ..self.service_publisher(name)
        }
    }
}

impl Publisher for ServicePublisher {
    /// MQTT 5 properties are dropped: the broker speaks MQTT 3.1.1 only (docs/emulator.md).
    fn publish(&self, message: OutboundMessage) -> Result<(), PublishError> {
        self.broker
            .publish_as(
                &message.topic,
                message.payload,
                message.qos,
                message.retain,
                Origin::Service {
                    name: self.name.clone(),
                },
                self.admission,
            )
            .map_err(|error| match error {
                BrokerError::ShutDown => PublishError::Unavailable,
                BrokerError::Throttled => PublishError::Throttled,
                other => PublishError::Refused(other.to_string()),
            })
    }
}

//! How in-process services (the shadow service, the data-plane API) hand messages to the broker, and the
//! QoS every part of the emulator speaks.
//!
//! This module sits below the services and the broker alike: the broker implements [`Publisher`]
//! (`broker::ServicePublisher`), the services only see the trait, so neither depends on the other's
//! internals. Until a broker exists (and in tests) [`RecordingPublisher`] keeps what was published and
//! [`DiscardPublisher`] drops it. The call is synchronous so that a broker can implement it with a
//! channel send.

use std::sync::Mutex;

/// MQTT quality of service. AWS IoT supports 0 and 1 only (reference 6.1, 6.6 "Maximum QoS (=1)"), so
/// QoS 2 has no representation on purpose. Ordered, so that a delivery's QoS is the minimum of the
/// publish and the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Qos {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
}

impl Qos {
    /// From the wire value; 2 (and anything else) is not supported by AWS IoT.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            _ => None,
        }
    }

    pub fn level(self) -> u8 {
        match self {
            Self::AtMostOnce => 0,
            Self::AtLeastOnce => 1,
        }
    }
}

/// MQTT 5 properties an HTTP Publish may carry (reference 3.10); all empty for shadow messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mqtt5Properties {
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub message_expiry_secs: Option<u64>,
    pub correlation_data: Option<Vec<u8>>,
    /// In the order given (reference 6.6: order preserved).
    pub user_properties: Vec<(String, String)>,
    /// `Some(true)` for `UTF8_DATA`, `Some(false)` for `UNSPECIFIED_BYTES`.
    pub payload_is_utf8: Option<bool>,
}

/// A message a service asks the broker to publish. It has no client id: for rules, `clientid()` of an
/// HTTP publish is `"n/a"` (reference 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: Qos,
    pub retain: bool,
    pub properties: Mqtt5Properties,
}

impl OutboundMessage {
    /// A plain message without retain or MQTT 5 properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>, qos: Qos) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain: false,
            properties: Mqtt5Properties::default(),
        }
    }
}

/// Why the broker did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The broker is shut down or not started.
    #[error("the broker is not available")]
    Unavailable,
    /// A subscriber inside the emulator (a rule, the shadow service) is not keeping up; try again later.
    #[error("throttled: the emulator is not keeping up with messages on this topic")]
    Throttled,
    /// The broker refused the message (e.g. retained publish on a reserved topic, reference 6.3).
    #[error("the broker refused the message: {0}")]
    Refused(String),
}

/// Publish into the broker as AWS's own services do: the broker routes the message like any inbound
/// publish (subscribers, rules, and, for `$aws/things/.../shadow/...` request topics, the shadow
/// service's `handle_mqtt`).
pub trait Publisher: Send + Sync {
    fn publish(&self, message: OutboundMessage) -> Result<(), PublishError>;
}

/// Keeps every message, for tests and for wiring a service before the broker exists.
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    messages: Mutex<Vec<OutboundMessage>>,
}

impl RecordingPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything published so far, oldest first.
    pub fn messages(&self) -> Vec<OutboundMessage> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Remove and return everything published so far.
    pub fn take(&self) -> Vec<OutboundMessage> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Publisher for RecordingPublisher {
    fn publish(&self, message: OutboundMessage) -> Result<(), PublishError> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
        Ok(())
    }
}

/// Drops every message: for running the HTTP APIs without a broker.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardPublisher;

impl Publisher for DiscardPublisher {
    fn publish(&self, _message: OutboundMessage) -> Result<(), PublishError> {
        Ok(())
    }
}

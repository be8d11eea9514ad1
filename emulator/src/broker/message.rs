//! The message the router carries, and who sent it. The rules engine needs the publisher's client id and
//! principal (`clientid()`, `principal()`, reference 5.3); the shadow service must ignore Last Will messages
//! aimed at shadow topics (reference 2.3), so wills are flagged.

use bytes::Bytes;

pub use crate::publish::Qos;

/// The broker's side of [`Qos`]: conversions to and from the MQTT codec, which only the broker speaks.
impl Qos {
    pub(crate) fn to_wire(self) -> rumqttc::mqttbytes::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::mqttbytes::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::mqttbytes::QoS::AtLeastOnce,
        }
    }

    /// `None` for QoS 2, which AWS IoT does not support.
    pub(crate) fn from_wire(qos: rumqttc::mqttbytes::QoS) -> Option<Qos> {
        match qos {
            rumqttc::mqttbytes::QoS::AtMostOnce => Some(Qos::AtMostOnce),
            rumqttc::mqttbytes::QoS::AtLeastOnce => Some(Qos::AtLeastOnce),
            rumqttc::mqttbytes::QoS::ExactlyOnce => None,
        }
    }
}

/// Who published a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An MQTT client authenticated by its certificate.
    Device {
        client_id: String,
        /// The certificate id (`principal()` in rule SQL, `principalIdentifier` in lifecycle events).
        principal: String,
        session_identifier: String,
    },
    /// An in-process service (shadow service, rules engine republish, data-plane HTTP publish).
    Service { name: String },
    /// The broker itself: lifecycle events on `$aws/events/...`.
    Broker,
}

/// One published message as the router delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    /// The RETAIN flag as published. Deliveries to existing subscribers carry RETAIN=0 on the wire (reference 6.3).
    pub retain: bool,
    pub origin: Origin,
    /// True for a Last Will the broker published on the client's behalf.
    pub is_will: bool,
    /// When the broker accepted the message, milliseconds since the epoch (`timestamp()` in rule SQL).
    pub timestamp_ms: i64,
}

impl Message {
    /// The publisher's MQTT client id, for `clientid()`.
    pub fn client_id(&self) -> Option<&str> {
        match &self.origin {
            Origin::Device { client_id, .. } => Some(client_id),
            _ => None,
        }
    }

    /// The publisher's principal (certificate id), for `principal()`.
    pub fn principal(&self) -> Option<&str> {
        match &self.origin {
            Origin::Device { principal, .. } => Some(principal),
            _ => None,
        }
    }

    /// A will aimed at a reserved shadow topic: the shadow service ignores these while subscribers and rules
    /// still receive them (reference 2.3).
    pub fn is_will_on_shadow_topic(&self) -> bool {
        self.is_will && self.topic.starts_with("$aws/things/") && self.topic.contains("/shadow/")
    }
}

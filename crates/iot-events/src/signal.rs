//! Sorting whatever an IoT rule delivered into a disconnect signal, something to ignore, or input
//! that is not what the contract promised.
//!
//! The recorder is wired to two rules (architecture section 3): `PresenceEvents` hands it every
//! lifecycle event as is, `DisconnectWill` hands it the will plus three keys the rule adds. Nothing
//! else tells the two apart, so the shape does: an `eventType` means lifecycle, the rule-added
//! `thing` + `receivedAt` mean a will.

use serde::Deserialize;
use serde_json::Value;

use crate::lifecycle::{DisconnectedEvent, LifecycleEvent};
use crate::will::WillRuleEvent;

/// What a rule output turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// A lifecycle `disconnected` event.
    Disconnected(DisconnectedEvent),
    /// A Last Will published by the broker on the device's behalf.
    Will(WillRuleEvent),
    /// A well-formed event that is not a disconnect signal.
    Ignored(IgnoredKind),
    /// Not what the contract promised; kept whole so it can still be recorded.
    Malformed(MalformedInput),
}

/// Why a well-formed input is not a disconnect signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredKind {
    /// `connected`, `connect_failed`, `subscribed`, `unsubscribed`.
    Lifecycle(&'static str),
    /// An `eventType` AWS may add in the future.
    UnknownEventType(String),
}

/// Input that could not be understood, with whatever identity could be salvaged from it.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedInput {
    /// Which contract shape it resembled: `"lifecycle"`, `"will"` or `"unknown"`.
    pub shape: &'static str,
    pub thing: Option<String>,
    pub client_id: Option<String>,
    pub error: String,
    /// The input exactly as received.
    pub raw: Vec<u8>,
}

/// Classify raw bytes, which need not even be JSON.
pub fn classify_bytes(raw: &[u8]) -> Classified {
    match serde_json::from_slice::<Value>(raw) {
        Ok(value) => classify_value(&value, Some(raw)),
        Err(e) => Classified::Malformed(MalformedInput {
            shape: "unknown",
            thing: None,
            client_id: None,
            error: format!("not JSON: {e}"),
            raw: raw.to_vec(),
        }),
    }
}

/// Classify an already parsed rule output (Lambda guarantees the event is JSON).
pub fn classify(value: &Value) -> Classified {
    classify_value(value, None)
}

/// `raw` is the input as received, when there was one; a malformed record carries it (or, for an
/// already parsed value, its serialization). Well-formed input never needs the bytes.
fn classify_value(value: &Value, raw: Option<&[u8]>) -> Classified {
    let string_field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let malformed = |shape, error: String| {
        Classified::Malformed(MalformedInput {
            shape,
            thing: string_field("thingName").or_else(|| string_field("thing")),
            client_id: string_field("clientId"),
            error,
            // Serializing a `Value` cannot fail: its map keys are always strings.
            raw: raw.map_or_else(
                || serde_json::to_vec(value).unwrap_or_default(),
                <[u8]>::to_vec,
            ),
        })
    };

    let Some(object) = value.as_object() else {
        return malformed(
            "unknown",
            format!("expected a JSON object, got {}", kind(value)),
        );
    };

    if let Some(event_type) = object.get("eventType") {
        let Some(event_type) = event_type.as_str() else {
            return malformed("lifecycle", "eventType is not a string".into());
        };
        if !LifecycleEvent::is_known_type(event_type) {
            return Classified::Ignored(IgnoredKind::UnknownEventType(event_type.to_owned()));
        }
        return match LifecycleEvent::deserialize(value) {
            Ok(LifecycleEvent::Disconnected(e)) => Classified::Disconnected(e),
            Ok(other) => Classified::Ignored(IgnoredKind::Lifecycle(other.event_type())),
            Err(e) => malformed("lifecycle", format!("invalid {event_type} event: {e}")),
        };
    }

    if object.contains_key("thing") && object.contains_key("receivedAt") {
        return match WillRuleEvent::deserialize(value) {
            Ok(will) => Classified::Will(will),
            Err(e) => malformed("will", format!("not a Last Will of this contract: {e}")),
        };
    }

    malformed(
        "unknown",
        "neither a lifecycle event (no eventType) nor a DisconnectWill rule output (no thing/receivedAt)".into(),
    )
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

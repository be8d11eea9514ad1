//! Event types of AWS IoT Core that no crate models yet, and the records we derive from them.
//!
//! `aws_lambda_events` covers only the IoT custom-authorizer events, so this crate models what our
//! IoT rules hand to Lambda (reference sections 1, 2 and 5.4 of `aws-iot-behaviour.md`):
//!
//! * [`lifecycle`]: `$aws/events/presence/...` and `$aws/events/subscriptions/...` payloads;
//! * [`reason`]: `disconnectReason`, with unknown values kept rather than rejected;
//! * [`will`]: the Last-Will payload of our contract and the `DisconnectWill` rule's output;
//! * [`rule_error`]: the payload an IoT rule's error action receives;
//! * `record`: the `iot.disconnect.v1` record written to CloudWatch Logs, with its EMF block (feature
//!   `record`, on by default);
//! * [`signal`]: sorting an arbitrary rule output into one of the above.
//!
//! The types follow AWS's field names (camelCase) and keep optional fields optional, so they could
//! be contributed to `aws_lambda_events` as they are.

pub mod lifecycle;
pub mod reason;
#[cfg(feature = "record")]
pub mod record;
pub mod rule_error;
pub mod signal;
pub mod will;

pub use lifecycle::{
    ConnectFailedEvent, ConnectedEvent, DisconnectedEvent, LifecycleEvent, SubscriptionEvent,
};
pub use reason::DisconnectReason;
#[cfg(feature = "record")]
pub use record::{DisconnectRecord, RecordSource, SCHEMA_V1};
pub use rule_error::{RuleErrorPayload, RuleFailure};
pub use signal::{Classified, IgnoredKind, MalformedInput, classify, classify_bytes};
pub use will::{LastWill, WillRuleEvent};

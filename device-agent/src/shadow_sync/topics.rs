//! The wire side of the shadow sync: the thing's classic-shadow topics, the responses parsed into what
//! the state machine needs, and the request bodies it sends.

use serde_json::{Value, json};
use shadow_doc::{ShadowId, ShadowOperation, TopicError, TopicSuffix};

use crate::actuator::MotorState;

/// Shadow key the workshop (lab 5.1) and the contract use.
pub const MOTOR_KEY: &str = "MOTOR";

/// Classic-shadow topics of one thing (reference 3.2), spelled by shadow-doc's builders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowTopics {
    shadow: ShadowId,
}

/// The shadow responses the agent subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowTopic {
    GetAccepted,
    GetRejected,
    UpdateAccepted,
    UpdateRejected,
    UpdateDelta,
}

impl ShadowTopic {
    const ALL: [ShadowTopic; 5] = [
        ShadowTopic::GetAccepted,
        ShadowTopic::GetRejected,
        ShadowTopic::UpdateAccepted,
        ShadowTopic::UpdateRejected,
        ShadowTopic::UpdateDelta,
    ];

    fn parts(self) -> (ShadowOperation, TopicSuffix) {
        match self {
            ShadowTopic::GetAccepted => (ShadowOperation::Get, TopicSuffix::Accepted),
            ShadowTopic::GetRejected => (ShadowOperation::Get, TopicSuffix::Rejected),
            ShadowTopic::UpdateAccepted => (ShadowOperation::Update, TopicSuffix::Accepted),
            ShadowTopic::UpdateRejected => (ShadowOperation::Update, TopicSuffix::Rejected),
            ShadowTopic::UpdateDelta => (ShadowOperation::Update, TopicSuffix::Delta),
        }
    }
}

impl ShadowTopics {
    /// Fails only for a name that is not a thing name (config validation refuses those first).
    pub fn new(thing: &str) -> Result<Self, TopicError> {
        Ok(Self {
            shadow: ShadowId::classic(thing)?,
        })
    }

    pub fn get(&self) -> String {
        self.shadow
            .topic(ShadowOperation::Get, TopicSuffix::Request)
    }

    pub fn update(&self) -> String {
        self.shadow
            .topic(ShadowOperation::Update, TopicSuffix::Request)
    }

    /// The exact topics to subscribe to (no wildcard: AWS advises against `shadow/#`, reference 3.2).
    pub fn subscriptions(&self) -> Vec<String> {
        ShadowTopic::ALL
            .iter()
            .map(|topic| {
                let (operation, suffix) = topic.parts();
                self.shadow.topic(operation, suffix)
            })
            .collect()
    }

    /// Which of our responses `topic` is; `None` for anything else (another thing, a request, ...).
    pub fn classify(&self, topic: &str) -> Option<ShadowTopic> {
        let parsed = shadow_doc::ShadowTopic::parse(topic).ok()?;
        if parsed.shadow != self.shadow {
            return None;
        }
        ShadowTopic::ALL
            .into_iter()
            .find(|candidate| candidate.parts() == (parsed.operation, parsed.suffix))
    }
}

/// A `MOTOR` value in a shadow document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotorField {
    Absent,
    Valid(MotorState),
    /// Present but not "ON"/"OFF" (the lab prints "Invalid motor action"); ignored, never actuated.
    Invalid(String),
}

impl MotorField {
    fn from_section(section: Option<&Value>) -> Self {
        match section.and_then(|s| s.get(MOTOR_KEY)) {
            None | Some(Value::Null) => MotorField::Absent,
            Some(Value::String(s)) => MotorState::parse(s)
                .map_or_else(|| MotorField::Invalid(s.clone()), MotorField::Valid),
            Some(other) => MotorField::Invalid(other.to_string()),
        }
    }

    pub(super) fn valid(&self) -> Option<MotorState> {
        match self {
            MotorField::Valid(state) => Some(*state),
            _ => None,
        }
    }
}

/// A shadow service message, parsed into what the sync needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShadowResponse {
    GetAccepted {
        client_token: Option<String>,
        version: Option<u64>,
        desired: MotorField,
        reported: MotorField,
    },
    GetRejected {
        client_token: Option<String>,
        code: u16,
        message: String,
    },
    UpdateAccepted {
        client_token: Option<String>,
        version: Option<u64>,
    },
    UpdateRejected {
        client_token: Option<String>,
        code: u16,
        message: String,
    },
    Delta {
        version: Option<u64>,
        desired: MotorField,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("shadow message on {topic:?} is not valid JSON: {source}")]
pub struct ShadowParseError {
    topic: ShadowTopic,
    source: serde_json::Error,
}

impl ShadowResponse {
    pub fn parse(topic: ShadowTopic, payload: &[u8]) -> Result<Self, ShadowParseError> {
        let doc: Value =
            serde_json::from_slice(payload).map_err(|source| ShadowParseError { topic, source })?;
        let client_token = doc
            .get("clientToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let version = doc.get("version").and_then(Value::as_u64);
        let state = doc.get("state");
        let code = || {
            doc.get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0)
        };
        let message = || {
            doc.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(match topic {
            ShadowTopic::GetAccepted => ShadowResponse::GetAccepted {
                client_token,
                version,
                desired: MotorField::from_section(state.and_then(|s| s.get("desired"))),
                reported: MotorField::from_section(state.and_then(|s| s.get("reported"))),
            },
            ShadowTopic::GetRejected => ShadowResponse::GetRejected {
                client_token,
                code: code(),
                message: message(),
            },
            ShadowTopic::UpdateAccepted => ShadowResponse::UpdateAccepted {
                client_token,
                version,
            },
            ShadowTopic::UpdateRejected => ShadowResponse::UpdateRejected {
                client_token,
                code: code(),
                message: message(),
            },
            // The delta's `state` is the delta itself, no `desired` wrapper (reference 3.5).
            ShadowTopic::UpdateDelta => ShadowResponse::Delta {
                version,
                desired: MotorField::from_section(state),
            },
        })
    }
}

/// The JSON body of a report.
pub fn report_payload(state: MotorState, client_token: &str, version: Option<u64>) -> Vec<u8> {
    let mut doc = json!({ "state": { "reported": { MOTOR_KEY: state.as_str() } }, "clientToken": client_token });
    if let (Some(version), Some(map)) = (version, doc.as_object_mut()) {
        map.insert("version".into(), json!(version));
    }
    doc.to_string().into_bytes()
}

/// The JSON body of a get request (content is ignored by AWS, but the token correlates the answer).
pub fn get_payload(client_token: &str) -> Vec<u8> {
    json!({ "clientToken": client_token })
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actuator::MotorState;

    #[test]
    fn parses_aws_documents() {
        let topics = ShadowTopics::new("ratchet").unwrap();
        assert_eq!(
            topics.classify("$aws/things/ratchet/shadow/update/delta"),
            Some(ShadowTopic::UpdateDelta)
        );
        assert_eq!(
            topics.classify("$aws/things/other/shadow/update/delta"),
            None
        );
        let doc = br#"{"state":{"desired":{"MOTOR":"ON"},"reported":{"MOTOR":"OFF"},"delta":{"MOTOR":"ON"}},
                       "metadata":{},"version":12,"timestamp":1591057529,"clientToken":"t-1"}"#;
        assert_eq!(
            ShadowResponse::parse(ShadowTopic::GetAccepted, doc).unwrap(),
            ShadowResponse::GetAccepted {
                client_token: Some("t-1".into()),
                version: Some(12),
                desired: MotorField::Valid(MotorState::On),
                reported: MotorField::Valid(MotorState::Off),
            }
        );
        let delta = br#"{"state":{"MOTOR":"OFF"},"metadata":{"MOTOR":{"timestamp":1}},"version":13,"timestamp":1}"#;
        assert_eq!(
            ShadowResponse::parse(ShadowTopic::UpdateDelta, delta).unwrap(),
            ShadowResponse::Delta {
                version: Some(13),
                desired: MotorField::Valid(MotorState::Off)
            }
        );
        let rejected = br#"{"code":409,"message":"Version conflict","clientToken":"t-2"}"#;
        assert!(matches!(
            ShadowResponse::parse(ShadowTopic::UpdateRejected, rejected).unwrap(),
            ShadowResponse::UpdateRejected { code: 409, .. }
        ));
        assert!(ShadowResponse::parse(ShadowTopic::UpdateDelta, b"not json").is_err());
    }

    #[test]
    fn report_payload_shape() {
        let body: Value =
            serde_json::from_slice(&report_payload(MotorState::On, "t", Some(3))).unwrap();
        assert_eq!(
            body,
            json!({"state":{"reported":{"MOTOR":"ON"}},"clientToken":"t","version":3})
        );
    }
}

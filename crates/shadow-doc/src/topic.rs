//! Shadow identities and the reserved MQTT topics of the shadow service (reference 3.1, 3.2).
//!
//! The emulator's shadow service uses [`ShadowTopic::parse`] to recognise requests addressed to it, and the
//! emulator, shadow-reconciler and the device agent use the builders so that nobody spells
//! `$aws/things/...` by hand.

use std::fmt;

/// Longest thing name AWS accepts (reference 3.1, `thingName` 1–128).
pub const MAX_THING_NAME_LEN: usize = 128;
/// Longest shadow name AWS accepts (reference 3.1, `shadowName` 1–64).
pub const MAX_SHADOW_NAME_LEN: usize = 64;

/// Why a thing name, shadow name or topic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic does not start with `$aws/things/{thing}/shadow/`.
    #[error("not a shadow topic: {0}")]
    NotShadowTopic(String),
    /// Thing name empty, too long, or with characters outside `[a-zA-Z0-9:_-]`.
    #[error("invalid thing name: {0:?}")]
    InvalidThingName(String),
    /// Shadow name empty, too long, or with characters outside `[$a-zA-Z0-9:_-]`.
    #[error("invalid shadow name: {0:?}")]
    InvalidShadowName(String),
    /// The operation segment is not `get`, `update` or `delete`.
    #[error("unknown shadow operation: {0:?}")]
    UnknownOperation(String),
    /// The segments after the operation are not a known response suffix for it.
    #[error("unknown suffix {suffix:?} for shadow operation {operation}")]
    UnknownSuffix {
        operation: ShadowOperation,
        suffix: String,
    },
}

/// Which shadow of a thing: the unnamed ("classic") one or a named one (reference 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShadowName {
    /// The single unnamed shadow, topic prefix `$aws/things/{thing}/shadow`.
    Classic,
    /// A named shadow, topic prefix `$aws/things/{thing}/shadow/name/{name}`.
    Named(String),
}

impl ShadowName {
    /// A named shadow, validated against AWS's constraints (reference 3.1).
    pub fn named(name: impl Into<String>) -> Result<Self, TopicError> {
        let name = name.into();
        if is_valid_shadow_name(&name) {
            Ok(Self::Named(name))
        } else {
            Err(TopicError::InvalidShadowName(name))
        }
    }

    /// From the HTTP API's optional `?name=` query parameter (reference 3.10): absent means classic.
    pub fn from_query(name: Option<&str>) -> Result<Self, TopicError> {
        match name {
            None => Ok(Self::Classic),
            Some(name) => Self::named(name),
        }
    }

    /// The name for named shadows, `None` for the classic shadow.
    pub fn as_named(&self) -> Option<&str> {
        match self {
            Self::Classic => None,
            Self::Named(name) => Some(name),
        }
    }
}

/// `[a-zA-Z0-9:_-]{1,128}` (reference 3.1).
pub fn is_valid_thing_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_THING_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// `[$a-zA-Z0-9:_-]{1,64}` (reference 3.1).
pub fn is_valid_shadow_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SHADOW_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b':' | b'_' | b'-'))
}

/// One shadow: a thing name plus classic-or-named. Shadows are keyed by name, independent of the
/// registry (reference 3.1), so this is the key of the emulator's shadow store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShadowId {
    thing_name: String,
    shadow_name: ShadowName,
}

impl ShadowId {
    /// Validates the thing name (and, for named shadows, the shadow name) like AWS does (reference 3.1).
    pub fn new(thing_name: impl Into<String>, shadow_name: ShadowName) -> Result<Self, TopicError> {
        let thing_name = thing_name.into();
        if !is_valid_thing_name(&thing_name) {
            return Err(TopicError::InvalidThingName(thing_name));
        }
        if let ShadowName::Named(name) = &shadow_name
            && !is_valid_shadow_name(name)
        {
            return Err(TopicError::InvalidShadowName(name.clone()));
        }
        Ok(Self {
            thing_name,
            shadow_name,
        })
    }

    /// The classic shadow of `thing_name`.
    pub fn classic(thing_name: impl Into<String>) -> Result<Self, TopicError> {
        Self::new(thing_name, ShadowName::Classic)
    }

    /// The named shadow `shadow_name` of `thing_name`.
    pub fn named(
        thing_name: impl Into<String>,
        shadow_name: impl Into<String>,
    ) -> Result<Self, TopicError> {
        Self::new(thing_name, ShadowName::Named(shadow_name.into()))
    }

    pub fn thing_name(&self) -> &str {
        &self.thing_name
    }

    pub fn shadow_name(&self) -> &ShadowName {
        &self.shadow_name
    }

    /// `$aws/things/{thing}/shadow` or `$aws/things/{thing}/shadow/name/{name}` (reference 3.1).
    pub fn topic_prefix(&self) -> String {
        match &self.shadow_name {
            ShadowName::Classic => format!("$aws/things/{}/shadow", self.thing_name),
            ShadowName::Named(name) => {
                format!("$aws/things/{}/shadow/name/{name}", self.thing_name)
            }
        }
    }

    /// The full topic for one operation and suffix, e.g. `.../shadow/update/delta` (reference 3.2).
    pub fn topic(&self, operation: ShadowOperation, suffix: TopicSuffix) -> String {
        let mut topic = self.topic_prefix();
        topic.push('/');
        topic.push_str(operation.as_str());
        if let Some(segment) = suffix.as_segment() {
            topic.push('/');
            topic.push_str(segment);
        }
        topic
    }

    /// The name quoted in the 404 message (see [`crate::ShadowError::no_shadow`]).
    pub(crate) fn not_found_name(&self) -> String {
        match &self.shadow_name {
            ShadowName::Classic => self.thing_name.clone(),
            ShadowName::Named(name) => format!("{}~{name}", self.thing_name),
        }
    }
}

impl fmt::Display for ShadowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shadow_name {
            ShadowName::Classic => write!(f, "{} (classic shadow)", self.thing_name),
            ShadowName::Named(name) => write!(f, "{} (shadow {name:?})", self.thing_name),
        }
    }
}

/// The three requests a client can make (reference 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowOperation {
    Get,
    Update,
    Delete,
}

impl ShadowOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    fn parse(segment: &str) -> Option<Self> {
        match segment {
            "get" => Some(Self::Get),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for ShadowOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What follows the operation in a shadow topic (reference 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicSuffix {
    /// No suffix: the client's request (`.../update`), the only kind the service consumes.
    Request,
    Accepted,
    Rejected,
    /// `update/delta` only.
    Delta,
    /// `update/documents` only.
    Documents,
}

impl TopicSuffix {
    fn as_segment(self) -> Option<&'static str> {
        match self {
            Self::Request => None,
            Self::Accepted => Some("accepted"),
            Self::Rejected => Some("rejected"),
            Self::Delta => Some("delta"),
            Self::Documents => Some("documents"),
        }
    }

    /// Whether AWS defines this suffix for `operation`: delta and documents exist only for update.
    pub fn applies_to(self, operation: ShadowOperation) -> bool {
        match self {
            Self::Request | Self::Accepted | Self::Rejected => true,
            Self::Delta | Self::Documents => operation == ShadowOperation::Update,
        }
    }
}

/// A parsed shadow topic: which shadow, which operation, and which message of that operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShadowTopic {
    pub shadow: ShadowId,
    pub operation: ShadowOperation,
    pub suffix: TopicSuffix,
}

impl ShadowTopic {
    /// Parse `$aws/things/{thing}/shadow[/name/{name}]/{get|update|delete}[/{suffix}]` (reference 3.1, 3.2).
    ///
    /// Only the form with `/name/` is a named shadow; the `.../shadow/{name}/update` spelling from a
    /// documentation bug (reference 3.1) is rejected as an unknown operation.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let not_shadow = || TopicError::NotShadowTopic(topic.to_string());
        let rest = topic.strip_prefix("$aws/things/").ok_or_else(not_shadow)?;
        let (thing_name, rest) = rest.split_once('/').ok_or_else(not_shadow)?;
        let rest = rest.strip_prefix("shadow/").ok_or_else(not_shadow)?;
        if !is_valid_thing_name(thing_name) {
            return Err(TopicError::InvalidThingName(thing_name.to_string()));
        }

        let (shadow_name, rest) = match rest.strip_prefix("name/") {
            Some(named) => {
                let (name, rest) = named.split_once('/').ok_or_else(not_shadow)?;
                if !is_valid_shadow_name(name) {
                    return Err(TopicError::InvalidShadowName(name.to_string()));
                }
                (ShadowName::Named(name.to_string()), rest)
            }
            None => (ShadowName::Classic, rest),
        };

        let (operation_segment, suffix_segment) = match rest.split_once('/') {
            Some((operation, suffix)) => (operation, Some(suffix)),
            None => (rest, None),
        };
        let operation = ShadowOperation::parse(operation_segment)
            .ok_or_else(|| TopicError::UnknownOperation(operation_segment.to_string()))?;
        let suffix = match suffix_segment {
            None => TopicSuffix::Request,
            Some("accepted") => TopicSuffix::Accepted,
            Some("rejected") => TopicSuffix::Rejected,
            Some("delta") => TopicSuffix::Delta,
            Some("documents") => TopicSuffix::Documents,
            Some(other) => {
                return Err(TopicError::UnknownSuffix {
                    operation,
                    suffix: other.to_string(),
                });
            }
        };
        if !suffix.applies_to(operation) {
            return Err(TopicError::UnknownSuffix {
                operation,
                suffix: suffix_segment.unwrap_or_default().to_string(),
            });
        }

        Ok(Self {
            shadow: ShadowId {
                thing_name: thing_name.to_string(),
                shadow_name,
            },
            operation,
            suffix,
        })
    }

    /// Whether this is a request the shadow service must act on (no suffix), rather than a response.
    pub fn is_request(&self) -> bool {
        self.suffix == TopicSuffix::Request
    }

    /// The topic of another message of the same shadow, e.g. the `/accepted` reply to this request.
    pub fn sibling(&self, operation: ShadowOperation, suffix: TopicSuffix) -> String {
        self.shadow.topic(operation, suffix)
    }
}

impl fmt::Display for ShadowTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shadow.topic(self.operation, self.suffix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_and_named_prefixes_follow_reference_3_1() {
        let classic = ShadowId::classic("ratchet").unwrap();
        assert_eq!(classic.topic_prefix(), "$aws/things/ratchet/shadow");
        let named = ShadowId::named("ratchet", "connectivity").unwrap();
        assert_eq!(
            named.topic(ShadowOperation::Update, TopicSuffix::Documents),
            "$aws/things/ratchet/shadow/name/connectivity/update/documents"
        );
    }

    #[test]
    fn parse_round_trips_every_defined_topic() {
        let shadows = [
            ShadowId::classic("ratchet").unwrap(),
            ShadowId::named("ratchet", "connectivity").unwrap(),
            // A thing literally called "name" must still parse as a classic shadow.
            ShadowId::classic("name").unwrap(),
        ];
        let operations = [
            ShadowOperation::Get,
            ShadowOperation::Update,
            ShadowOperation::Delete,
        ];
        let suffixes = [
            TopicSuffix::Request,
            TopicSuffix::Accepted,
            TopicSuffix::Rejected,
            TopicSuffix::Delta,
            TopicSuffix::Documents,
        ];
        let mut parsed = 0;
        for shadow in &shadows {
            for operation in operations {
                for suffix in suffixes.into_iter().filter(|s| s.applies_to(operation)) {
                    let topic = shadow.topic(operation, suffix);
                    let back = ShadowTopic::parse(&topic).unwrap();
                    assert_eq!(back.shadow, *shadow, "{topic}");
                    assert_eq!(back.operation, operation, "{topic}");
                    assert_eq!(back.suffix, suffix, "{topic}");
                    assert_eq!(back.to_string(), topic);
                    parsed += 1;
                }
            }
        }
        assert_eq!(parsed, 3 * (3 + 5 + 3));
    }

    #[test]
    fn parse_rejects_non_shadow_and_malformed_topics() {
        assert!(matches!(
            ShadowTopic::parse("data/ratchet/temperature"),
            Err(TopicError::NotShadowTopic(_))
        ));
        assert!(matches!(
            ShadowTopic::parse("$aws/things/ratchet/jobs/get"),
            Err(TopicError::NotShadowTopic(_))
        ));
        // Documentation bug form without `/name/` (reference 3.1).
        assert!(matches!(
            ShadowTopic::parse("$aws/things/ratchet/shadow/namedShadow1/update"),
            Err(TopicError::UnknownOperation(_))
        ));
        assert!(matches!(
            ShadowTopic::parse("$aws/things/ratchet/shadow/get/delta"),
            Err(TopicError::UnknownSuffix { .. })
        ));
        assert!(matches!(
            ShadowTopic::parse("$aws/things/ratchet/shadow/update/accepted/extra"),
            Err(TopicError::UnknownSuffix { .. })
        ));
        assert!(matches!(
            ShadowTopic::parse("$aws/things/+/shadow/update"),
            Err(TopicError::InvalidThingName(_))
        ));
        assert!(matches!(
            ShadowTopic::parse("$aws/things/ratchet/shadow/name/bad name/get"),
            Err(TopicError::InvalidShadowName(_))
        ));
    }

    #[test]
    fn name_constraints_match_reference_3_1() {
        assert!(is_valid_thing_name(&"a".repeat(128)));
        assert!(!is_valid_thing_name(&"a".repeat(129)));
        assert!(!is_valid_thing_name(""));
        assert!(!is_valid_thing_name("has$dollar"));
        assert!(is_valid_shadow_name("$weird:name_1-2"));
        assert!(!is_valid_shadow_name(&"s".repeat(65)));
        assert!(ShadowName::from_query(Some("bad/name")).is_err());
        assert_eq!(ShadowName::from_query(None).unwrap(), ShadowName::Classic);
    }
}

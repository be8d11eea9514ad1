//! What the broker adds to AWS's topic rules (iot-sql's [`iot_sql::TopicLimits`], references 6.2, 6.5,
//! 5.9): which reserved topics a client may publish to, no retained messages on reserved topics
//! (reference 6.3), and no shared subscriptions.

use iot_sql::BASIC_INGEST_PREFIX;

use super::config::Limits;

/// Why a topic name or filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Refused by AWS's topic rules (emptiness, wildcards, size and depth limits).
    #[error(transparent)]
    Invalid(#[from] iot_sql::TopicError),
    #[error("clients may not publish to the reserved topic {0}")]
    ReservedTopic(String),
    #[error("retained messages cannot be published to reserved topics (reference 6.3)")]
    RetainOnReservedTopic,
    #[error("shared subscriptions are not emulated")]
    SharedSubscription,
}

impl From<iot_sql::TopicFilterError> for TopicError {
    fn from(error: iot_sql::TopicFilterError) -> Self {
        TopicError::Invalid(error.into())
    }
}

/// Reserved topic families a client may publish to (reference 6.2): shadows, jobs and the other per-thing
/// services under `$aws/things/`, Basic Ingest, and fleet provisioning. Everything else under `$` (notably
/// `$aws/events/...`) is publish-only for AWS itself.
const CLIENT_PUBLISHABLE_RESERVED: [&str; 4] = [
    "$aws/things/",
    BASIC_INGEST_PREFIX,
    "$aws/certificates/",
    "$aws/provisioning-templates/",
];

/// A topic name a client PUBLISHes to (or names as its will topic).
pub fn check_client_topic_name(
    topic: &str,
    retain: bool,
    limits: &Limits,
) -> Result<(), TopicError> {
    check_topic_name(topic, limits)?;
    if topic.starts_with('$') {
        if retain {
            return Err(TopicError::RetainOnReservedTopic);
        }
        if !CLIENT_PUBLISHABLE_RESERVED
            .iter()
            .any(|prefix| topic.starts_with(prefix))
        {
            return Err(TopicError::ReservedTopic(topic.to_owned()));
        }
    }
    Ok(())
}

/// Any publishable topic name (services may use every reserved topic).
pub fn check_topic_name(topic: &str, limits: &Limits) -> Result<(), TopicError> {
    Ok(limits.topics().check_topic_name(topic)?)
}

/// A topic filter a client SUBSCRIBEs to.
pub fn check_topic_filter(filter: &str, limits: &Limits) -> Result<(), TopicError> {
    if filter.starts_with("$share/") {
        return Err(TopicError::SharedSubscription);
    }
    Ok(limits.topics().check_topic_filter(filter)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_applies_its_configured_limits() {
        let limits = Limits {
            max_topic_slashes: 2,
            ..Limits::default()
        };
        assert!(check_topic_name("a/b/c", &limits).is_ok());
        assert_eq!(
            check_topic_name("a/b/c/d", &limits),
            Err(TopicError::Invalid(iot_sql::TopicError::TooDeep(3, 2)))
        );
        assert!(check_topic_filter("a/+/#", &Limits::default()).is_ok());
        assert!(check_topic_filter("a/b#", &Limits::default()).is_err());
        assert_eq!(
            check_topic_filter("$share/g/a", &Limits::default()),
            Err(TopicError::SharedSubscription)
        );
    }

    #[test]
    fn reserved_topics_for_clients() {
        let limits = Limits::default();
        assert!(check_client_topic_name("$aws/things/t/shadow/update", false, &limits).is_ok());
        assert!(matches!(
            check_client_topic_name("$aws/events/presence/connected/x", false, &limits),
            Err(TopicError::ReservedTopic(_))
        ));
        assert_eq!(
            check_client_topic_name("$aws/things/t/shadow/update", true, &limits),
            Err(TopicError::RetainOnReservedTopic)
        );
        assert!(check_client_topic_name("/last/will/topic", true, &limits).is_ok());
    }
}

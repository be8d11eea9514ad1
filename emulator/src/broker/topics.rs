//! Topic and filter rules AWS IoT enforces beyond MQTT (references 6.2, 6.3, 6.5, 5.9).

use super::config::Limits;

/// Why a topic name or filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("the topic is empty")]
    Empty,
    #[error("a topic name may not contain '+' or '#'")]
    WildcardInTopicName,
    #[error("{0} bytes is over the {1}-byte topic limit")]
    TooLong(usize, usize),
    #[error("{0} forward slashes is over the limit of {1}")]
    TooDeep(usize, usize),
    #[error(transparent)]
    Filter(#[from] iot_sql::TopicFilterError),
    #[error("clients may not publish to the reserved topic {0}")]
    ReservedTopic(String),
    #[error("retained messages cannot be published to reserved topics (reference 6.3)")]
    RetainOnReservedTopic,
    #[error("shared subscriptions are not emulated")]
    SharedSubscription,
}

pub use iot_sql::BASIC_INGEST_PREFIX;

/// Reserved topic families a client may publish to (reference 6.2): shadows, jobs and the other per-thing
/// services under `$aws/things/`, Basic Ingest, and fleet provisioning. Everything else under `$` (notably
/// `$aws/events/...`) is publish-only for AWS itself.
const CLIENT_PUBLISHABLE_RESERVED: [&str; 4] = [
    "$aws/things/",
    BASIC_INGEST_PREFIX,
    "$aws/certificates/",
    "$aws/provisioning-templates/",
];

pub fn is_basic_ingest(topic: &str) -> bool {
    topic.starts_with(BASIC_INGEST_PREFIX)
}

/// Slashes counted against the limit: the three of `$aws/rules/{rule}/` do not count (reference 6.5).
fn counted_slashes(topic: &str) -> usize {
    let slashes = topic.bytes().filter(|byte| *byte == b'/').count();
    if is_basic_ingest(topic) {
        slashes.saturating_sub(3)
    } else {
        slashes
    }
}

fn check_size(topic: &str, limits: &Limits) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > limits.max_topic_bytes && !is_basic_ingest(topic) {
        return Err(TopicError::TooLong(topic.len(), limits.max_topic_bytes));
    }
    let slashes = counted_slashes(topic);
    if slashes > limits.max_topic_slashes {
        return Err(TopicError::TooDeep(slashes, limits.max_topic_slashes));
    }
    Ok(())
}

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
    check_size(topic, limits)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInTopicName);
    }
    Ok(())
}

/// A topic filter a client SUBSCRIBEs to.
pub fn check_topic_filter(filter: &str, limits: &Limits) -> Result<(), TopicError> {
    if filter.starts_with("$share/") {
        return Err(TopicError::SharedSubscription);
    }
    check_size(filter, limits)?;
    iot_sql::validate_topic_filter(filter)?;
    Ok(())
}

pub fn has_wildcards(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_topic_limits() {
        let limits = Limits::default();
        assert!(check_topic_name("a/b/c/d/e/f/g/h", &limits).is_ok());
        assert_eq!(
            check_topic_name("a/b/c/d/e/f/g/h/i", &limits),
            Err(TopicError::TooDeep(8, 7))
        );
        assert!(check_topic_name("$aws/rules/r/a/b/c/d/e/f/g/h", &limits).is_ok());
        assert_eq!(
            check_topic_name(&"x".repeat(257), &limits),
            Err(TopicError::TooLong(257, 256))
        );
        assert!(check_topic_name(&"x".repeat(256), &limits).is_ok());
        assert_eq!(
            check_topic_name("a/+", &limits),
            Err(TopicError::WildcardInTopicName)
        );
        assert!(check_topic_filter("a/+/#", &limits).is_ok());
        assert!(check_topic_filter("a/b#", &limits).is_err());
        assert_eq!(
            check_topic_filter("$share/g/a", &limits),
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

//! What the broker adds to AWS's topic rules (iot-sql's [`iot_sql::TopicLimits`], references 6.2, 6.5,
//! 5.9): which reserved topics a client may publish to, no retained messages on reserved topics
//! (reference 6.3), and no shared subscriptions.
//!
//! [`check_client_topic_name`] is the one rule for everything that publishes as a client: MQTT PUBLISH, a
//! will topic, and the data plane's HTTP Publish (which AWS treats as a client publish, reference 3.10). In-process
//! services (the shadow service answering on `.../accepted`, lifecycle events) publish as AWS itself and use
//! [`check_topic_name`].

use iot_sql::{BASIC_INGEST_PREFIX, TopicLimits};

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

/// Inside the per-thing and provisioning families, the topics AWS answers on are AWS's alone (reference 3.2 and
/// the reserved-topics tables, 6.2): the `accepted`/`rejected` responses of shadows, jobs and fleet provisioning,
/// shadow `delta` and `documents`, and the jobs and tunnels `notify`/`notify-next` topics. Clients may only
/// subscribe to them; a publisher that could write them could forge a shadow's answer.
const AWS_ONLY_LAST_LEVELS: [&str; 6] = [
    "accepted",
    "rejected",
    "delta",
    "documents",
    "notify",
    "notify-next",
];

/// A topic name a client publishes to: an MQTT PUBLISH, a will topic, or the data plane's HTTP Publish.
/// `limits` are AWS's ([`TopicLimits::AWS`]) unless a test configured the broker otherwise.
pub fn check_client_topic_name(
    topic: &str,
    retain: bool,
    limits: &TopicLimits,
) -> Result<(), TopicError> {
    limits.check_topic_name(topic)?;
    if topic.starts_with('$') {
        if retain {
            return Err(TopicError::RetainOnReservedTopic);
        }
        let Some(family) = CLIENT_PUBLISHABLE_RESERVED
            .iter()
            .find(|prefix| topic.starts_with(*prefix))
        else {
            return Err(TopicError::ReservedTopic(topic.to_owned()));
        };
        // Basic Ingest's suffix is the client's own topic, which may end in any word.
        let last_level = topic.rsplit('/').next().unwrap_or_default();
        if *family != BASIC_INGEST_PREFIX && AWS_ONLY_LAST_LEVELS.contains(&last_level) {
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
        let limits = limits.topics();
        assert!(check_client_topic_name("$aws/things/t/shadow/update", false, &limits).is_ok());
        assert!(check_client_topic_name("$aws/things/t/shadow/name/n/get", false, &limits).is_ok());
        assert!(check_client_topic_name("$aws/rules/r/x/accepted", false, &limits).is_ok());
        for aws_only in [
            "$aws/things/t/shadow/update/accepted",
            "$aws/things/t/shadow/name/n/get/rejected",
            "$aws/things/t/shadow/update/delta",
            "$aws/things/t/shadow/update/documents",
            "$aws/things/t/jobs/notify-next",
            "$aws/certificates/create/json/accepted",
            "$aws/events/presence/connected/x",
            "$aws/sitewise/x",
        ] {
            assert_eq!(
                check_client_topic_name(aws_only, false, &limits),
                Err(TopicError::ReservedTopic(aws_only.to_owned())),
                "{aws_only}"
            );
        }
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

//! MQTT topic filters as AWS IoT matches them (reference 6.1, 6.2), shared by the rules engine's
//! `FROM` clause and, through the public API, by the emulator's broker.

/// Why a topic filter is not valid (reference 6.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicFilterError {
    /// AWS topics and filters have at least one character.
    #[error("the topic filter is empty")]
    Empty,
    /// `#` must be alone in its level and the last level (reference 6.2).
    #[error("'#' must be alone in the last level of the topic filter")]
    MisplacedMultiLevelWildcard,
    /// `+` must be alone in its level (reference 6.2).
    #[error("'+' must be alone in its level of the topic filter")]
    MisplacedSingleLevelWildcard,
}

/// Checks the wildcard placement rules of reference 6.2. Empty levels are allowed (a leading `/`
/// makes an empty first level), and both wildcards may appear in one filter.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicFilterError> {
    if filter.is_empty() {
        return Err(TopicFilterError::Empty);
    }
    let level_count = filter.split('/').count();
    for (index, level) in filter.split('/').enumerate() {
        if level.contains('#') && (level != "#" || index + 1 != level_count) {
            return Err(TopicFilterError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicFilterError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Whether a published `topic` matches `filter`, with AWS IoT's semantics:
///
/// - matching is case-sensitive and level by level; `+` matches exactly one level (which may be
///   empty), `#` matches **one or more** remaining levels;
/// - AWS deviates from the MQTT spec: **`sensor/#` does not match `sensor`** (the parent level), though it
///   does match `sensor/` (reference 6.1);
/// - as in MQTT 3.1.1 section 4.7.2, a filter that starts with a wildcard does not match a topic
///   starting with `$`, so `#` does not see `$aws/...` reserved topics [INF: not stated by AWS];
/// - a topic containing wildcards is not a publishable topic and matches nothing (reference 6.2);
/// - an invalid filter (see [`validate_topic_filter`]) matches nothing.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    validate_topic_filter(filter).is_ok() && matches_valid_filter(filter, topic)
}

/// [`topic_matches`] for a filter already checked by [`validate_topic_filter`]: callers that store
/// filters (a rule's FROM, a broker's subscriptions) check them once and match many times. For a filter
/// that would fail the check the answer is unspecified.
pub fn matches_valid_filter(filter: &str, topic: &str) -> bool {
    if topic.is_empty() || topic.contains(['+', '#']) {
        return false;
    }
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        match filter_level {
            // Validation guarantees `#` is last; it needs at least one level to consume.
            "#" => return topic_levels.next().is_some(),
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if topic_levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_multi_level_wildcard_does_not_match_parent() {
        // reference 6.1: sensor/# matches sensor/, sensor/temperature, sensor/temperature/room1, not sensor
        assert!(topic_matches("sensor/#", "sensor/"));
        assert!(topic_matches("sensor/#", "sensor/temperature"));
        assert!(topic_matches("sensor/#", "sensor/temperature/room1"));
        assert!(!topic_matches("sensor/#", "sensor"));
    }

    #[test]
    fn validation_rejects_misplaced_wildcards() {
        assert_eq!(validate_topic_filter("a/#"), Ok(()));
        assert_eq!(validate_topic_filter("+/+/#"), Ok(()));
        assert_eq!(validate_topic_filter("/leading/empty"), Ok(()));
        assert_eq!(validate_topic_filter(""), Err(TopicFilterError::Empty));
        assert_eq!(
            validate_topic_filter("a/#/b"),
            Err(TopicFilterError::MisplacedMultiLevelWildcard)
        );
        assert_eq!(
            validate_topic_filter("a/b#"),
            Err(TopicFilterError::MisplacedMultiLevelWildcard)
        );
        assert_eq!(
            validate_topic_filter("a/b+/c"),
            Err(TopicFilterError::MisplacedSingleLevelWildcard)
        );
    }
}

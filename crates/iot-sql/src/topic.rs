//! MQTT topics and topic filters as AWS IoT checks and matches them (reference 6.1, 6.2, 6.5, 5.9): the
//! one home of topic validity and AWS's topic limits, shared by the rules engine's `FROM` clause and,
//! through the public API, by the emulator's broker and data plane.

use crate::eval::{BASIC_INGEST_PREFIX, strip_basic_ingest};

/// Largest topic or filter, in UTF-8 bytes (reference 6.5).
pub const MAX_TOPIC_BYTES: usize = 256;
/// At most 7 forward slashes, i.e. 8 levels, in a topic or filter (reference 6.5).
pub const MAX_TOPIC_SLASHES: usize = 7;

/// Why a topic name or filter is refused by AWS's topic rules.
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
    Filter(#[from] TopicFilterError),
}

/// The size limits of topics and filters. [`TopicLimits::AWS`] is AWS IoT's; the emulator's broker lets
/// a configuration change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// UTF-8 bytes, Basic Ingest prefix excluded.
    pub max_bytes: usize,
    /// Forward slashes, Basic Ingest prefix excluded.
    pub max_slashes: usize,
}

impl TopicLimits {
    /// AWS IoT's limits (reference 6.5): 256 bytes, 7 slashes.
    pub const AWS: TopicLimits = TopicLimits {
        max_bytes: MAX_TOPIC_BYTES,
        max_slashes: MAX_TOPIC_SLASHES,
    };

    /// A topic name a message is published to: not empty, no wildcards, within the limits.
    pub fn check_topic_name(&self, topic: &str) -> Result<(), TopicError> {
        if topic.is_empty() {
            return Err(TopicError::Empty);
        }
        if topic.contains(['+', '#']) {
            return Err(TopicError::WildcardInTopicName);
        }
        self.check_size(topic)
    }

    /// A topic filter: not empty, within the limits, wildcards placed as [`validate_topic_filter`] requires.
    pub fn check_topic_filter(&self, filter: &str) -> Result<(), TopicError> {
        if filter.is_empty() {
            return Err(TopicError::Empty);
        }
        self.check_size(filter)?;
        validate_topic_filter(filter)?;
        Ok(())
    }

    /// Reference 5.9 and 6.5: the first three levels of a Basic Ingest topic (`$aws/rules/{rule}/`) count
    /// against neither the byte limit nor the slash limit; everything after them counts in full.
    fn check_size(&self, topic: &str) -> Result<(), TopicError> {
        let (counted, _) = strip_basic_ingest(topic);
        if counted.len() > self.max_bytes {
            return Err(TopicError::TooLong(counted.len(), self.max_bytes));
        }
        let slashes = counted.bytes().filter(|byte| *byte == b'/').count();
        if slashes > self.max_slashes {
            return Err(TopicError::TooDeep(slashes, self.max_slashes));
        }
        Ok(())
    }
}

impl Default for TopicLimits {
    fn default() -> Self {
        TopicLimits::AWS
    }
}

/// Whether `topic` is a Basic Ingest topic `$aws/rules/{rule}/...` (reference 5.9).
pub fn is_basic_ingest(topic: &str) -> bool {
    topic.starts_with(BASIC_INGEST_PREFIX)
}

/// Whether a filter contains a wildcard, i.e. matches more than one topic.
pub fn has_wildcards(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

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

    #[test]
    fn aws_topic_limits() {
        let limits = TopicLimits::AWS;
        assert!(limits.check_topic_name("a/b/c/d/e/f/g/h").is_ok());
        assert_eq!(
            limits.check_topic_name("a/b/c/d/e/f/g/h/i"),
            Err(TopicError::TooDeep(8, 7))
        );
        assert!(
            limits
                .check_topic_name("$aws/rules/r/a/b/c/d/e/f/g/h")
                .is_ok()
        );
        assert_eq!(
            limits.check_topic_name(&"x".repeat(257)),
            Err(TopicError::TooLong(257, 256))
        );
        assert!(limits.check_topic_name(&"x".repeat(256)).is_ok());
        assert_eq!(limits.check_topic_name(""), Err(TopicError::Empty));
        assert_eq!(
            limits.check_topic_name("a/+"),
            Err(TopicError::WildcardInTopicName)
        );
        assert!(limits.check_topic_filter("a/+/#").is_ok());
        assert!(limits.check_topic_filter("a/b#").is_err());
        assert_eq!(
            limits.check_topic_filter("a/b/c/d/e/f/g/h/i"),
            Err(TopicError::TooDeep(8, 7))
        );
    }

    /// Reference 5.9 / 6.5: `$aws/rules/{rule}/` counts against neither limit, the rest counts in full.
    /// (The broker used to exempt such topics from the byte limit entirely and the data plane not at all.)
    #[test]
    fn basic_ingest_prefix_is_excluded_from_both_limits_and_nothing_more() {
        let limits = TopicLimits::AWS;
        let prefix = "$aws/rules/a_rule_with_a_long_name/";
        let at_limit = format!("{prefix}{}", "x".repeat(256));
        assert!(at_limit.len() > 256);
        assert_eq!(limits.check_topic_name(&at_limit), Ok(()));
        assert_eq!(
            limits.check_topic_name(&format!("{at_limit}y")),
            Err(TopicError::TooLong(257, 256))
        );
        assert_eq!(
            limits.check_topic_name(&format!("{prefix}a/b/c/d/e/f/g/h/i")),
            Err(TopicError::TooDeep(8, 7))
        );
        assert_eq!(limits.check_topic_name("$aws/rules/r"), Ok(()));
        assert!(is_basic_ingest("$aws/rules/r/x"));
        assert!(!is_basic_ingest("$aws/things/r/x"));
    }
}

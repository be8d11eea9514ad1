//! MQTT topic matching as AWS IoT does it (reference 6.1, 6.2), exported for the emulator's broker.

use iot_sql::topic_matches;

#[test]
fn exact_topics_are_case_sensitive() {
    assert!(topic_matches("a/b", "a/b"));
    assert!(!topic_matches("a/b", "a/B"));
    assert!(!topic_matches("a/b", "a/b/c"));
    assert!(!topic_matches("a/b/c", "a/b"));
}

#[test]
fn single_level_wildcard() {
    assert!(topic_matches("device/+/lwt", "device/ratchet/lwt"));
    assert!(
        topic_matches("device/+/lwt", "device//lwt"),
        "an empty level is a level"
    );
    assert!(!topic_matches("device/+/lwt", "device/a/b/lwt"));
    assert!(!topic_matches("device/+", "device"));
    assert!(topic_matches("+", "a"));
    assert!(!topic_matches("+", "a/b"));
    assert!(
        topic_matches("+/+", "/a"),
        "a leading slash makes an empty first level"
    );
}

#[test]
fn multi_level_wildcard_needs_at_least_one_level() {
    assert!(topic_matches("a/#", "a/b"));
    assert!(topic_matches("a/#", "a/b/c/d"));
    assert!(topic_matches("a/#", "a/"));
    assert!(
        !topic_matches("a/#", "a"),
        "AWS: the parent level does not match"
    );
    assert!(topic_matches("#", "a/b"));
    assert!(topic_matches("a/+/#", "a/b/c"));
    assert!(!topic_matches("a/+/#", "a/b"));
}

#[test]
fn wildcards_at_the_start_do_not_see_dollar_topics() {
    assert!(!topic_matches("#", "$aws/events/presence/connected/x"));
    assert!(!topic_matches(
        "+/events/#",
        "$aws/events/presence/connected/x"
    ));
    assert!(topic_matches(
        "$aws/events/presence/+/+",
        "$aws/events/presence/connected/x"
    ));
    assert!(topic_matches("$aws/#", "$aws/things/x/shadow/update"));
}

#[test]
fn invalid_filters_and_wildcard_topics_match_nothing() {
    assert!(!topic_matches("a/#/b", "a/x/b"));
    assert!(!topic_matches("a/b+", "a/b+"));
    assert!(
        !topic_matches("a/+", "a/+"),
        "publishers cannot use wildcards"
    );
    assert!(!topic_matches("#", ""));
    assert!(!topic_matches("", "a"));
}

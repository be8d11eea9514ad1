//! The compiled matcher against a plain backtracking reading of reference 4.3 (`*` any run including `/`,
//! `?` one character, everything else literal, MQTT `+`/`#` included).

use iot_policy::{ConnectionContext, Pattern};
use proptest::prelude::*;

/// Obviously-correct (exponential) glob matcher over characters.
fn reference_matches(pattern: &[char], subject: &[char]) -> bool {
    match pattern.split_first() {
        None => subject.is_empty(),
        Some(('*', rest)) => {
            (0..=subject.len()).any(|skip| reference_matches(rest, &subject[skip..]))
        }
        Some(('?', rest)) => !subject.is_empty() && reference_matches(rest, &subject[1..]),
        Some((literal, rest)) => {
            subject.first() == Some(literal) && reference_matches(rest, &subject[1..])
        }
    }
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('b'),
            Just('/'),
            Just('*'),
            Just('?'),
            Just('+'),
            Just('#'),
            Just('é')
        ],
        0..10,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn subject_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('b'),
            Just('/'),
            Just('+'),
            Just('#'),
            Just('é')
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn compiled_glob_agrees_with_the_reference(pattern in pattern_strategy(), subject in subject_strategy()) {
        let compiled = Pattern::resource(&pattern);
        let pattern_chars: Vec<char> = pattern.chars().collect();
        let subject_chars: Vec<char> = subject.chars().collect();
        prop_assert_eq!(
            compiled.matches(&subject, &ConnectionContext::new("c")),
            reference_matches(&pattern_chars, &subject_chars),
            "pattern {:?} subject {:?}", pattern, subject
        );
    }

    #[test]
    fn a_pattern_matches_its_own_example(pattern in pattern_strategy(), fill in subject_strategy()) {
        let compiled = Pattern::resource(&pattern);
        let context = ConnectionContext::new("c");
        prop_assert!(compiled.matches(&compiled.example(&context, &fill), &context));
    }
}

#[test]
fn hand_picked_cases() {
    let context = ConnectionContext::new("c");
    for (pattern, subject, expected) in [
        ("topic/a/*", "topic/a/b/c", true),
        ("*a", "bbba", true),
        ("*a", "bbbab", false),
        ("a*b?c", "aXXbYc", true),
        ("a*b?c", "abc", false),
        ("topicfilter/x/+", "topicfilter/x/y", false),
    ] {
        assert_eq!(
            Pattern::resource(pattern).matches(subject, &context),
            expected,
            "{pattern} {subject}"
        );
    }
}

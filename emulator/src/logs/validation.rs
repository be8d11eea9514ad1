//! AWS's checks on CloudWatch Logs requests, with AWS's error texts where we know them: log group and
//! stream names, the shape and size of a PutLogEvents batch, and the retention values. The checks that
//! need the store's state (missing groups, events too old for the retention) are the store's.

use super::error::LogsError;
use super::model::InputLogEvent;

/// At most this many events per PutLogEvents batch (AWS API reference).
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;
/// Largest PutLogEvents batch: the sum of UTF-8 message bytes plus [`EVENT_OVERHEAD_BYTES`] per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Bytes AWS adds to every event when it measures a batch.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// Events older than this (relative to the request) are rejected as too old.
pub const MAX_EVENT_AGE_MS: i64 = 14 * 24 * 60 * 60 * 1000;
/// Events further than this in the future are rejected as too new.
pub const MAX_EVENT_FUTURE_MS: i64 = 2 * 60 * 60 * 1000;
/// The accepted events of one batch may not span more than this.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 60 * 60 * 1000;
const MAX_NAME_LEN: usize = 512;
/// The only values PutRetentionPolicy accepts.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub(crate) fn validate_group_name(name: &str) -> Result<(), LogsError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'));
    if valid {
        Ok(())
    } else {
        Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

pub(crate) fn validate_stream_name(name: &str) -> Result<(), LogsError> {
    if !name.is_empty() && name.len() <= MAX_NAME_LEN && !name.contains([':', '*']) {
        Ok(())
    } else {
        Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [^:*]*"
        )))
    }
}

/// `logGroupIdentifier` may be a name or an ARN (`arn:aws:logs:r:a:log-group:NAME[:*]`).
pub(crate) fn group_name_of<'a>(
    name: Option<&'a str>,
    identifier: Option<&'a str>,
) -> Result<&'a str, LogsError> {
    match (name, identifier) {
        (Some(name), None) => Ok(name),
        (None, Some(identifier)) => Ok(match identifier.split_once(":log-group:") {
            Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest),
            None => identifier,
        }),
        (Some(_), Some(_)) => Err(LogsError::invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(LogsError::invalid(
            "Either LogGroup name or LogGroup ARN is required.",
        )),
    }
}

/// The checks of a PutLogEvents batch that need nothing but the batch: 1–10,000 events, at most 1 MiB
/// counting [`EVENT_OVERHEAD_BYTES`] per event, no empty message, in chronological order.
pub(crate) fn check_batch(events: &[InputLogEvent]) -> Result<(), LogsError> {
    if events.is_empty() || events.len() > MAX_EVENTS_PER_BATCH {
        return Err(LogsError::invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_EVENTS_PER_BATCH} and greater than or equal to 1 (got {})",
            events.len()
        )));
    }
    let batch_bytes: usize = events
        .iter()
        .map(|event| event.message.len() + EVENT_OVERHEAD_BYTES)
        .sum();
    if batch_bytes > MAX_BATCH_BYTES {
        return Err(LogsError::invalid(format!(
            "Upload too large: {batch_bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if events.iter().any(|event| event.message.is_empty()) {
        return Err(LogsError::invalid(
            "1 validation error detected: Value '' at 'logEvents.message' failed to satisfy \
             constraint: Member must have length greater than or equal to 1",
        ));
    }
    if events
        .windows(2)
        .any(|pair| pair[1].timestamp < pair[0].timestamp)
    {
        return Err(LogsError::invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    Ok(())
}

/// PutRetentionPolicy takes only the values of [`RETENTION_DAYS`].
pub(crate) fn check_retention_days(days: u32) -> Result<(), LogsError> {
    if RETENTION_DAYS.contains(&days) {
        Ok(())
    } else {
        Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy \
             constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_patterns() {
        assert!(validate_group_name("/aws/lambda/x_1.#-").is_ok());
        assert!(validate_group_name("").is_err());
        assert!(validate_group_name("a b").is_err());
        assert!(validate_group_name(&"g".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(validate_stream_name("2026/11/26/[$LATEST]abc").is_ok());
        assert!(validate_stream_name("a:b").is_err());
        assert!(validate_stream_name("a*").is_err());
    }

    #[test]
    fn group_identifiers_are_names_or_arns() {
        assert_eq!(group_name_of(Some("/g"), None).unwrap(), "/g");
        assert_eq!(
            group_name_of(None, Some("arn:aws:logs:r:1:log-group:/g:*")).unwrap(),
            "/g"
        );
        assert_eq!(group_name_of(None, Some("/g")).unwrap(), "/g");
        assert!(group_name_of(Some("/g"), Some("/g")).is_err());
        assert!(group_name_of(None, None).is_err());
    }

    #[test]
    fn retention_days_are_an_enum() {
        assert!(check_retention_days(7).is_ok());
        assert!(check_retention_days(2).is_err());
    }
}

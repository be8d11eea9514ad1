//! Paging of the read operations: page sizes, the tokens (an offset for the Describe operations, an
//! event position for GetLogEvents and FilterLogEvents, so a token stays valid while events arrive) and
//! cutting a page at its event count or 1 MB, plus the time window a read sees.

use super::error::LogsError;
use super::model::StoredEvent;

/// GetLogEvents and FilterLogEvents return at most this many events, and at most 1 MB.
pub const MAX_EVENTS_PER_PAGE: usize = 10_000;
pub(crate) const MAX_PAGE_BYTES: usize = 1_048_576;
pub(crate) const MAX_DESCRIBE_LIMIT: usize = 50;

/// Which events of a stream are readable: inside the request's window and not expired by retention.
pub(crate) struct TimeWindow {
    pub(crate) start: Option<i64>,
    pub(crate) end: Option<i64>,
    pub(crate) not_before: Option<i64>,
}

impl TimeWindow {
    pub(crate) fn contains(&self, timestamp: i64) -> bool {
        self.start.is_none_or(|start| timestamp >= start)
            && self.end.is_none_or(|end| timestamp < end)
            && self.not_before.is_none_or(|limit| timestamp >= limit)
    }
}

pub(crate) fn page_limit(limit: Option<usize>, max: usize) -> Result<usize, LogsError> {
    match limit {
        None => Ok(max),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: \
             Member must have value between 1 and {max}"
        ))),
    }
}

pub(crate) fn invalid_token() -> LogsError {
    LogsError::invalid("The specified nextToken is invalid.")
}

pub(crate) fn offset_token(token: Option<&str>) -> Result<usize, LogsError> {
    token.map_or(Ok(0), |token| token.parse().map_err(|_| invalid_token()))
}

/// A GetLogEvents position: forward = events after the key, backward = events before it.
pub(crate) enum StreamToken {
    Forward(u128),
    Backward(u128),
}

impl StreamToken {
    pub(crate) fn parse(token: &str) -> Result<Self, LogsError> {
        let (direction, key) = token.split_once('/').ok_or_else(invalid_token)?;
        let key = key.parse::<u128>().map_err(|_| invalid_token())?;
        match direction {
            "f" => Ok(Self::Forward(key)),
            "b" => Ok(Self::Backward(key)),
            _ => Err(invalid_token()),
        }
    }
}

/// AWS tokens are `f/` or `b/` and a long run of digits; ours have the same look.
pub(crate) fn forward_token(key: u128) -> String {
    format!("f/{key:056}")
}

pub(crate) fn backward_token(key: u128) -> String {
    format!("b/{key:056}")
}

/// Take events from the front (or, with `from_back`, the back) until `limit` or 1 MB is reached;
/// the result stays in chronological order.
pub(crate) fn take_page<'a>(
    events: impl DoubleEndedIterator<Item = &'a StoredEvent>,
    limit: usize,
    from_back: bool,
) -> Vec<&'a StoredEvent> {
    let mut bytes = 0;
    let mut page = Vec::new();
    let mut take = |event: &'a StoredEvent| {
        bytes += event.size();
        if page.len() >= limit || (bytes > MAX_PAGE_BYTES && !page.is_empty()) {
            return false;
        }
        page.push(event);
        true
    };
    if from_back {
        for event in events.rev() {
            if !take(event) {
                break;
            }
        }
        page.reverse();
    } else {
        for event in events {
            if !take(event) {
                break;
            }
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_the_maximum_and_stay_in_range() {
        assert_eq!(page_limit(None, 50).unwrap(), 50);
        assert_eq!(page_limit(Some(1), 50).unwrap(), 1);
        assert!(page_limit(Some(0), 50).is_err());
        assert!(page_limit(Some(51), 50).is_err());
    }

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        assert!(matches!(
            StreamToken::parse(&forward_token(42)),
            Ok(StreamToken::Forward(42))
        ));
        assert!(matches!(
            StreamToken::parse(&backward_token(7)),
            Ok(StreamToken::Backward(7))
        ));
        assert!(StreamToken::parse("x/1").is_err());
        assert!(StreamToken::parse("f/abc").is_err());
        assert_eq!(offset_token(None).unwrap(), 0);
        assert_eq!(offset_token(Some("3")).unwrap(), 3);
        assert!(offset_token(Some("three")).is_err());
    }

    #[test]
    fn pages_stop_at_the_limit_and_keep_chronological_order() {
        let events: Vec<StoredEvent> = (1..=5)
            .map(|seq| StoredEvent {
                timestamp: 10,
                ingestion_time: 10,
                seq,
                message: format!("m{seq}"),
            })
            .collect();
        let seqs = |page: Vec<&StoredEvent>| page.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(take_page(events.iter(), 2, false)), [1, 2]);
        assert_eq!(seqs(take_page(events.iter(), 2, true)), [4, 5]);
        let big = StoredEvent {
            message: "x".repeat(MAX_PAGE_BYTES),
            ..events[0].clone()
        };
        let two_big = [big.clone(), big];
        assert_eq!(take_page(two_big.iter(), 10, false).len(), 1);
    }
}

//! Paging of the read operations: page sizes, the tokens (an offset for the Describe operations, an
//! event position for GetLogEvents and FilterLogEvents, so a token stays valid while events arrive) and
//! cutting a page at its event count or 1 MB, plus the time window a read sees.

use std::ops::Range;

use super::error::LogsError;
use super::event_log::IndexEntry;

/// GetLogEvents and FilterLogEvents return at most this many events, and at most 1 MB.
pub const MAX_EVENTS_PER_PAGE: usize = 10_000;
pub(crate) const MAX_PAGE_BYTES: usize = 1_048_576;
pub(crate) const MAX_DESCRIBE_LIMIT: usize = 50;
/// FilterLogEvents reads at most this many bytes of events (messages plus 26 bytes each, as counted for
/// pages) per request; when it stops there it returns what matched so far, maybe nothing, and a
/// `nextToken` to continue from, as AWS may ("can return empty results while there are more log events
/// available through the token", FilterLogEvents API reference). Bounds the time a request holds the
/// store's lock over a large group with a rare match.
pub(crate) const MAX_FILTER_SCAN_BYTES: usize = 32 * 1024 * 1024;
/// FilterLogEvents holds at most this many events' messages at a time while matching them...
pub(crate) const FILTER_CHUNK_EVENTS: usize = 1024;
/// ...and stops adding to a chunk once its messages reach this many bytes.
pub(crate) const FILTER_CHUNK_BYTES: usize = 1024 * 1024;

/// Which events of a stream are readable: inside the request's window and not expired by retention.
pub(crate) struct TimeWindow {
    pub(crate) start: Option<i64>,
    pub(crate) end: Option<i64>,
    pub(crate) not_before: Option<i64>,
}

impl TimeWindow {
    /// The readable events of a stream's index (sorted by key, so by timestamp first): one range, found
    /// by binary search without looking at the events outside it.
    pub(crate) fn range(&self, index: &[IndexEntry]) -> Range<usize> {
        let first = self.start.max(self.not_before);
        let start = first.map_or(0, |first| index.partition_point(|e| e.timestamp < first));
        let end = self.end.map_or(index.len(), |end| {
            index.partition_point(|e| e.timestamp < end)
        });
        start..end.max(start)
    }
}

/// The part of `range` after the event position `after`.
pub(crate) fn after_key(index: &[IndexEntry], range: Range<usize>, after: u128) -> Range<usize> {
    let start = index.partition_point(|e| e.key() <= after).max(range.start);
    start..range.end.max(start)
}

/// The part of `range` before the event position `before`.
pub(crate) fn before_key(index: &[IndexEntry], range: Range<usize>, before: u128) -> Range<usize> {
    let end = index.partition_point(|e| e.key() < before).min(range.end);
    range.start.min(end)..end
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

/// Take events from the front (or, with `from_back`, the back) until `limit` or 1 MB is reached, from
/// the index alone (message sizes are in it); the result stays in chronological order.
pub(crate) fn take_page(events: &[IndexEntry], limit: usize, from_back: bool) -> Vec<IndexEntry> {
    let mut bytes = 0;
    let mut page = Vec::new();
    let mut take = |event: &IndexEntry| {
        bytes += event.size();
        if page.len() >= limit || (bytes > MAX_PAGE_BYTES && !page.is_empty()) {
            return false;
        }
        page.push(*event);
        true
    };
    if from_back {
        for event in events.iter().rev() {
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
    use crate::logs::model::StoredEvent;

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

    fn index(messages: &[String]) -> Vec<IndexEntry> {
        let mut lines = super::super::event_log::EventLines::Memory(Vec::new());
        let events: Vec<StoredEvent> = messages
            .iter()
            .zip(1..)
            .map(|(message, seq)| StoredEvent {
                timestamp: 10 + seq as i64 / 2,
                ingestion_time: 10,
                seq,
                message: message.clone(),
            })
            .collect();
        lines.append(&events).unwrap()
    }

    #[test]
    fn pages_stop_at_the_limit_and_keep_chronological_order() {
        let small: Vec<String> = (1..=5).map(|seq| format!("m{seq}")).collect();
        let events = index(&small);
        let seqs = |page: Vec<IndexEntry>| page.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(take_page(&events, 2, false)), [1, 2]);
        assert_eq!(seqs(take_page(&events, 2, true)), [4, 5]);
        let two_big = index(&["x".repeat(MAX_PAGE_BYTES), "x".repeat(MAX_PAGE_BYTES)]);
        assert_eq!(take_page(&two_big, 10, false).len(), 1);
    }

    #[test]
    fn windows_and_tokens_cut_the_index_into_ranges() {
        let small: Vec<String> = (1..=6).map(|seq| format!("m{seq}")).collect();
        // Timestamps 10, 11, 11, 12, 12, 13 for seqs 1..=6.
        let events = index(&small);
        let window = |start, end| TimeWindow {
            start,
            end,
            not_before: None,
        };
        assert_eq!(window(None, None).range(&events), 0..6);
        assert_eq!(window(Some(11), Some(13)).range(&events), 1..5);
        assert_eq!(window(Some(13), Some(11)).range(&events), 5..5);
        let all = 0..6;
        assert_eq!(after_key(&events, all.clone(), events[2].key()), 3..6);
        assert_eq!(before_key(&events, all.clone(), events[2].key()), 0..2);
        assert_eq!(after_key(&events, 0..2, events[4].key()), 5..5);
        assert_eq!(before_key(&events, 3..6, events[1].key()), 1..1);
    }
}

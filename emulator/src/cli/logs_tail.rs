//! `logs tail`: reading a log group's events through FilterLogEvents, page by page until `nextToken`
//! runs out, and, when following, again from just after the newest event seen.
//!
//! Events print with RFC 3339 UTC times ([`format_timestamp`]); a follow that loses the emulator waits
//! ([`RetryBackoff`]) and goes on from the same place when it is back.
//!
//! The paging works over any [`FilterLogEvents`] source: the CloudWatch Logs HTTP API of a running
//! emulator ([`LogsClient`]) or a [`LogsStore`] in the same process (what the unit tests use).

use crate::logs::{
    FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent, LogsError, LogsStore,
};

use std::collections::HashSet;

use super::client::{self, ClientError};

/// A CloudWatch Logs API that answers FilterLogEvents.
pub trait FilterLogEvents {
    type Error;

    fn filter_log_events(
        &self,
        request: &FilterLogEventsRequest,
    ) -> impl Future<Output = Result<FilterLogEventsResponse, Self::Error>>;
}

impl FilterLogEvents for LogsStore {
    type Error = LogsError;

    async fn filter_log_events(
        &self,
        request: &FilterLogEventsRequest,
    ) -> Result<FilterLogEventsResponse, LogsError> {
        LogsStore::filter_log_events(self, request)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogsClientError {
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unreadable FilterLogEvents response: {0}")]
    Decode(#[from] serde_json::Error),
}

impl LogsClientError {
    /// The emulator could not be reached or went away mid-answer (stopped, restarting): worth retrying
    /// when following, unlike an answer that refuses the request.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            LogsClientError::Http(ClientError::Connect { .. } | ClientError::Response { .. })
        )
    }

    /// The log group or stream does not exist (yet): a follow waits for it, as `tail -F` waits for a file.
    pub fn is_not_found(&self) -> bool {
        match self {
            LogsClientError::Status { status: 400, body } => {
                serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|error| error.get("__type")?.as_str().map(str::to_owned))
                    .is_some_and(|kind| kind.ends_with("ResourceNotFoundException"))
            }
            _ => false,
        }
    }
}

/// `timestamp` (milliseconds since the epoch) as RFC 3339 UTC with milliseconds, `2026-12-02T16:51:42.123Z`;
/// a timestamp outside the years 0..=9999 prints as the plain number.
pub fn format_timestamp(timestamp: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp) * 1_000_000)
        .ok()
        .filter(|time| (0..=9999).contains(&time.year()))
        .and_then(|time| time.format(format).ok())
        .unwrap_or_else(|| timestamp.to_string())
}

/// The waits between attempts to reach an emulator that went away: 1 s, doubling, at most 5 s; back to 1 s
/// once it answers again.
#[derive(Debug, Clone)]
pub struct RetryBackoff {
    next: std::time::Duration,
}

impl RetryBackoff {
    pub const FIRST: std::time::Duration = std::time::Duration::from_secs(1);
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// How long to wait before the next attempt.
    pub fn next_wait(&mut self) -> std::time::Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self::new()
    }
}

/// The CloudWatch Logs API (awsJson1.1) of a running emulator at `base_url`.
#[derive(Debug, Clone)]
pub struct LogsClient {
    base_url: String,
}

impl LogsClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
        }
    }
}

impl FilterLogEvents for LogsClient {
    type Error = LogsClientError;

    async fn filter_log_events(
        &self,
        request: &FilterLogEventsRequest,
    ) -> Result<FilterLogEventsResponse, LogsClientError> {
        let body = serde_json::to_vec(request)?;
        let response = client::request(
            "POST",
            &self.base_url,
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Logs_20140328.FilterLogEvents"),
            ],
            &body,
        )
        .await?;
        if !response.is_success() {
            return Err(LogsClientError::Status {
                status: response.status,
                body: String::from_utf8_lossy(&response.body).into_owned(),
            });
        }
        Ok(serde_json::from_slice(&response.body)?)
    }
}

/// Most events of one millisecond a tail remembers, to tell them from events logged later in that same
/// millisecond: PutLogEvents' largest batch. Past it the tail moves on to the next millisecond, and an event
/// logged later in that millisecond is not seen (what happened to every such event before).
pub const MAX_REMEMBERED_EVENTS: usize = 10_000;

/// Where a tail of one log group (or one of its streams) has got to.
#[derive(Debug, Clone)]
pub struct LogTail {
    group: String,
    stream: Option<String>,
    /// The newest timestamp read so far; `None` before the first read. The next read starts at it
    /// (FilterLogEvents' `startTime` is inclusive, in milliseconds).
    newest: Option<i64>,
    /// (stream, eventId) of the events read with timestamp `newest`, skipped when that millisecond is read
    /// again; at most `remember_at_most`.
    read_at_newest: HashSet<(String, String)>,
    /// `read_at_newest` overflowed: the next read starts after `newest`.
    past_newest: bool,
    remember_at_most: usize,
}

impl LogTail {
    pub fn new(group: impl Into<String>, stream: Option<String>) -> Self {
        Self {
            group: group.into(),
            stream,
            newest: None,
            read_at_newest: HashSet::new(),
            past_newest: false,
            remember_at_most: MAX_REMEMBERED_EVENTS,
        }
    }

    /// Every event not read yet, oldest first, across all pages: the next call returns only events after
    /// those returned, including events logged later with the newest one's millisecond. A failed call
    /// changes nothing, so it can be retried without losing or repeating events.
    pub async fn read_new<S: FilterLogEvents>(
        &mut self,
        source: &S,
    ) -> Result<Vec<FilteredLogEvent>, S::Error> {
        let mut request = FilterLogEventsRequest {
            log_group_name: Some(self.group.clone()),
            log_stream_names: self.stream.clone().map(|stream| vec![stream]),
            start_time: self
                .newest
                .map(|newest| if self.past_newest { newest + 1 } else { newest }),
            ..FilterLogEventsRequest::default()
        };
        let mut events = Vec::new();
        loop {
            let page = source.filter_log_events(&request).await?;
            events.extend(page.events);
            match page.next_token {
                Some(token) => request.next_token = Some(token),
                None => break,
            }
        }
        events.retain(|event| {
            Some(event.timestamp) != self.newest || !self.read_at_newest.contains(&event_key(event))
        });
        let Some(newest) = events.iter().map(|event| event.timestamp).max() else {
            return Ok(events);
        };
        if self.newest.is_none_or(|before| newest > before) {
            self.newest = Some(newest);
            self.read_at_newest.clear();
            self.past_newest = false;
        }
        if !self.past_newest {
            for event in events.iter().filter(|event| event.timestamp == newest) {
                self.read_at_newest.insert(event_key(event));
            }
            if self.read_at_newest.len() > self.remember_at_most {
                self.read_at_newest.clear();
                self.past_newest = true;
            }
        }
        Ok(events)
    }
}

/// What tells one event from another: event ids are unique within a stream.
fn event_key(event: &FilteredLogEvent) -> (String, String) {
    (event.log_stream_name.clone(), event.event_id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_group_or_stream_is_told_from_other_refusals() {
        let missing = LogsClientError::Status {
            status: 400,
            body: r#"{"__type":"ResourceNotFoundException","message":"The specified log stream does not exist."}"#
                .into(),
        };
        assert!(missing.is_not_found() && !missing.is_unreachable());
        let invalid = LogsClientError::Status {
            status: 400,
            body: r#"{"__type":"InvalidParameterException","message":"bad"}"#.into(),
        };
        assert!(!invalid.is_not_found());
        let unreadable = LogsClientError::Status {
            status: 400,
            body: "ResourceNotFoundException".into(),
        };
        assert!(!unreadable.is_not_found());
    }
    use crate::logs::InputLogEvent;

    /// A store whose pages hold one event, so every read follows `nextToken`.
    struct OneEventPages(LogsStore);

    impl FilterLogEvents for OneEventPages {
        type Error = LogsError;

        async fn filter_log_events(
            &self,
            request: &FilterLogEventsRequest,
        ) -> Result<FilterLogEventsResponse, LogsError> {
            self.0.filter_log_events(&FilterLogEventsRequest {
                limit: Some(1),
                ..request.clone()
            })
        }
    }

    fn put(store: &LogsStore, stream: &str, timestamp: i64, message: &str) {
        store
            .put_log_events(
                "/iot/g",
                stream,
                &[InputLogEvent {
                    timestamp,
                    message: message.into(),
                }],
            )
            .unwrap();
    }

    fn messages(events: &[FilteredLogEvent]) -> Vec<&str> {
        events.iter().map(|event| event.message.as_str()).collect()
    }

    #[tokio::test]
    async fn reads_every_page_then_only_what_is_new() {
        let store = LogsStore::in_memory();
        store.ensure_log_stream("/iot/g", "a").unwrap();
        store.ensure_log_stream("/iot/g", "b").unwrap();
        let now = crate::clock::now_millis();
        put(&store, "a", now - 30, "one");
        put(&store, "b", now - 20, "two");
        put(&store, "a", now - 10, "three");
        let source = OneEventPages(store.clone());

        let mut tail = LogTail::new("/iot/g", None);
        assert_eq!(
            messages(&tail.read_new(&source).await.unwrap()),
            ["one", "two", "three"]
        );
        assert!(tail.read_new(&source).await.unwrap().is_empty());
        put(&store, "b", now - 5, "four");
        assert_eq!(messages(&tail.read_new(&source).await.unwrap()), ["four"]);

        let mut only_a = LogTail::new("/iot/g", Some("a".into()));
        assert_eq!(
            messages(&only_a.read_new(&source).await.unwrap()),
            ["one", "three"]
        );
    }

    #[test]
    fn timestamps_print_as_rfc_3339_utc_with_milliseconds() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_timestamp(1_796_230_302_123),
            "2026-12-02T16:51:42.123Z"
        );
        assert_eq!(
            format_timestamp(1_796_230_302_007),
            "2026-12-02T16:51:42.007Z"
        );
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_timestamp(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn the_retry_wait_doubles_from_one_second_to_five_and_resets() {
        let mut backoff = RetryBackoff::new();
        let waits: Vec<u64> = (0..5).map(|_| backoff.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_wait().as_secs(), 1);
    }

    #[tokio::test]
    async fn an_emulator_that_is_not_there_is_unreachable_a_refusal_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let mut tail = LogTail::new("/iot/g", None);
        let error = tail.read_new(&LogsClient::new(closed)).await.unwrap_err();
        assert!(error.is_unreachable(), "{error}");
        let refused = LogsClientError::Status {
            status: 400,
            body: "ResourceNotFoundException".into(),
        };
        assert!(!refused.is_unreachable());
    }

    #[tokio::test]
    async fn an_event_logged_later_in_the_newest_millisecond_is_read_once() {
        let store = LogsStore::in_memory();
        store.ensure_log_stream("/iot/g", "a").unwrap();
        store.ensure_log_stream("/iot/g", "b").unwrap();
        let now = crate::clock::now_millis();
        put(&store, "a", now - 10, "one");
        put(&store, "a", now, "two");
        let source = OneEventPages(store.clone());
        let mut tail = LogTail::new("/iot/g", None);
        assert_eq!(
            messages(&tail.read_new(&source).await.unwrap()),
            ["one", "two"]
        );
        put(&store, "a", now, "three, same millisecond");
        put(&store, "b", now, "four, same millisecond, other stream");
        assert_eq!(
            messages(&tail.read_new(&source).await.unwrap()),
            [
                "three, same millisecond",
                "four, same millisecond, other stream"
            ]
        );
        assert!(tail.read_new(&source).await.unwrap().is_empty());
        put(&store, "b", now + 1, "five");
        assert_eq!(messages(&tail.read_new(&source).await.unwrap()), ["five"]);
        assert_eq!(
            tail.read_at_newest.len(),
            1,
            "only the newest millisecond is remembered"
        );
    }

    #[tokio::test]
    async fn past_its_memory_a_tail_moves_on_to_the_next_millisecond() {
        let store = LogsStore::in_memory();
        store.ensure_log_stream("/iot/g", "a").unwrap();
        let now = crate::clock::now_millis();
        for message in ["one", "two", "three"] {
            put(&store, "a", now, message);
        }
        let mut tail = LogTail::new("/iot/g", None);
        tail.remember_at_most = 2;
        assert_eq!(tail.read_new(&store).await.unwrap().len(), 3);
        assert!(tail.read_at_newest.is_empty());
        put(&store, "a", now, "lost: same millisecond, past the memory");
        put(&store, "a", now + 1, "four");
        assert_eq!(messages(&tail.read_new(&store).await.unwrap()), ["four"]);
    }

    #[tokio::test]
    async fn errors_of_the_source_are_returned() {
        let mut tail = LogTail::new("/nope", None);
        assert!(matches!(
            tail.read_new(&LogsStore::in_memory()).await,
            Err(LogsError::LogGroupNotFound)
        ));
    }
}

//! `logs tail`: reading a log group's events through FilterLogEvents, page by page until `nextToken`
//! runs out, and, when following, again from just after the newest event seen.
//!
//! The paging works over any [`FilterLogEvents`] source: the CloudWatch Logs HTTP API of a running
//! emulator ([`LogsClient`]) or a [`LogsStore`] in the same process (what the unit tests use).

use crate::logs::{
    FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent, LogsError, LogsStore,
};

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

/// Where a tail of one log group (or one of its streams) has got to.
#[derive(Debug, Clone)]
pub struct LogTail {
    group: String,
    stream: Option<String>,
    /// Just after the newest event read so far; `None` before the first read.
    start_time: Option<i64>,
}

impl LogTail {
    pub fn new(group: impl Into<String>, stream: Option<String>) -> Self {
        Self {
            group: group.into(),
            stream,
            start_time: None,
        }
    }

    /// Every event not read yet, oldest first, across all pages. The next call asks only for events
    /// after the newest one returned (FilterLogEvents' `startTime` is in milliseconds, so an event
    /// logged later with that same millisecond is not seen).
    pub async fn read_new<S: FilterLogEvents>(
        &mut self,
        source: &S,
    ) -> Result<Vec<FilteredLogEvent>, S::Error> {
        let mut request = FilterLogEventsRequest {
            log_group_name: Some(self.group.clone()),
            log_stream_names: self.stream.clone().map(|stream| vec![stream]),
            start_time: self.start_time,
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
        if let Some(newest) = events.iter().map(|event| event.timestamp).max() {
            self.start_time = Some(self.start_time.map_or(newest + 1, |t| t.max(newest + 1)));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[tokio::test]
    async fn errors_of_the_source_are_returned() {
        let mut tail = LogTail::new("/nope", None);
        assert!(matches!(
            tail.read_new(&LogsStore::in_memory()).await,
            Err(LogsError::LogGroupNotFound)
        ));
    }
}

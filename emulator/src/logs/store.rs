//! The CloudWatch Logs state: groups, streams and their events, and the operations on them. The request
//! and response shapes are in [`super::model`], AWS's checks in [`super::validation`], tokens and page
//! cutting in [`super::paging`], the state directory in [`super::persist`].
//!
//! Over 600 lines, but one concept: every operation reads or changes the same locked state, and the
//! writes keep memory and the state directory in the same order; about a third of the file is the tests
//! that run the operations together.
//!
//! Memory holds each stream's index ([`IndexEntry`], 40 bytes per event); the messages are read from the
//! stream's [`EventLines`] when a page needs them (see [`super::event_log`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::FilterPattern;
use super::error::LogsError;
use super::event_log::{EventLines, IndexEntry};
use super::model::{
    DescribeLogGroupsRequest, DescribeLogGroupsResponse, DescribeLogStreamsRequest,
    DescribeLogStreamsResponse, FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent,
    GetLogEventsRequest, GetLogEventsResponse, InputLogEvent, LogGroupDescription,
    LogStreamDescription, OutputLogEvent, PutLogEventsResponse, RejectedLogEventsInfo,
    SearchedLogStream, StoredEvent,
};
use super::paging::{
    FILTER_CHUNK_BYTES, FILTER_CHUNK_EVENTS, MAX_DESCRIBE_LIMIT, MAX_EVENTS_PER_PAGE,
    MAX_FILTER_SCAN_BYTES, MAX_PAGE_BYTES, StreamToken, TimeWindow, after_key, backward_token,
    before_key, forward_token, invalid_token, offset_token, page_limit, take_page,
};
use super::persist::Persistence;
use super::validation::{
    MAX_BATCH_SPAN_MS, MAX_EVENT_AGE_MS, MAX_EVENT_FUTURE_MS, check_batch, check_retention_days,
    group_name_of, validate_group_name, validate_stream_name,
};
use crate::clock::now_millis;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) groups: BTreeMap<String, LogGroup>,
    /// Next event sequence number; starts at 1 so that key 0 means "before every event".
    pub(crate) next_seq: u64,
}

#[derive(Debug)]
pub(crate) struct LogGroup {
    pub(crate) creation_time: i64,
    pub(crate) retention_in_days: Option<u32>,
    pub(crate) streams: BTreeMap<String, LogStream>,
}

#[derive(Debug)]
pub(crate) struct LogStream {
    pub(crate) creation_time: i64,
    /// One entry per event, sorted by [`IndexEntry::key`]; the events themselves are in `lines`.
    index: Vec<IndexEntry>,
    lines: EventLines,
    last_ingestion_time: Option<i64>,
    stored_bytes: u64,
}

impl LogStream {
    pub(crate) fn new(creation_time: i64, lines: EventLines) -> Self {
        Self::from_index(creation_time, lines, Vec::new())
    }

    /// A stream whose `lines` already hold the events of `index` (in file order, which is read order
    /// unless a late batch was written). Sorted in place and without spare capacity: at start the index is
    /// the only per-event memory.
    pub(crate) fn from_index(
        creation_time: i64,
        lines: EventLines,
        mut index: Vec<IndexEntry>,
    ) -> Self {
        index.sort_by_key(IndexEntry::key);
        index.shrink_to_fit();
        Self {
            creation_time,
            last_ingestion_time: index.iter().map(|entry| entry.ingestion_time).max(),
            stored_bytes: index.iter().map(|entry| entry.message_len() as u64).sum(),
            index,
            lines,
        }
    }

    /// Write the events to the stream's lines, then index them: on a write error nothing is indexed.
    fn append(&mut self, events: &[StoredEvent]) -> Result<(), LogsError> {
        let entries = self.lines.append(events)?;
        self.insert_sorted(entries);
        Ok(())
    }

    /// Batches are chronological but may be older than events already stored, so each event goes to
    /// its place in timestamp order (usually the end).
    fn insert_sorted(&mut self, entries: Vec<IndexEntry>) {
        for entry in entries {
            self.last_ingestion_time = Some(
                self.last_ingestion_time
                    .map_or(entry.ingestion_time, |last| last.max(entry.ingestion_time)),
            );
            self.stored_bytes += entry.message_len() as u64;
            let key = entry.key();
            let position = self.index.partition_point(|stored| stored.key() < key);
            self.index.insert(position, entry);
        }
    }
}

/// Where the emulator pretends to run, for ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsIdentity {
    pub region: String,
    pub account_id: String,
}

impl Default for LogsIdentity {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_string(),
            // The account IoT's ARNs use by default (BrokerConfig), so ARNs of one emulator agree.
            account_id: "123456789012".to_string(),
        }
    }
}

struct Inner {
    state: Mutex<State>,
    persistence: Option<Persistence>,
}

/// The CloudWatch Logs state, shared by the HTTP API ([`super::LogsService`]) and in-process writers.
///
/// Cheap to clone (all clones share one state). Operations are synchronous and short: writes to the
/// state directory are small appends done under the lock, which keeps disk and memory in the same order.
#[derive(Clone)]
pub struct LogsStore {
    inner: Arc<Inner>,
    /// Only used to build ARNs; per handle, so [`LogsStore::with_identity`] needs no lock.
    identity: Arc<LogsIdentity>,
}

impl std::fmt::Debug for LogsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsStore")
            .field("persistent", &self.inner.persistence.is_some())
            .field("identity", &self.identity)
            .finish()
    }
}

impl LogsStore {
    /// A store that forgets everything when dropped.
    pub fn in_memory() -> Self {
        Self::with_state(State::default(), None)
    }

    /// A store kept in `dir` (created if missing), reloaded from what an earlier run wrote there.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LogsError> {
        let persistence = Persistence::new(dir.into());
        let state = persistence.load()?;
        Ok(Self::with_state(state, Some(persistence)))
    }

    /// A handle on the same state whose ARNs name another region/account (clone it after this call so
    /// that every handle agrees).
    pub fn with_identity(self, identity: LogsIdentity) -> Self {
        Self {
            inner: self.inner,
            identity: Arc::new(identity),
        }
    }

    fn with_state(mut state: State, persistence: Option<Persistence>) -> Self {
        state.next_seq = state.next_seq.max(1);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                persistence,
            }),
            identity: Arc::new(LogsIdentity::default()),
        }
    }

    /// A panic elsewhere while holding the lock leaves consistent data (every mutation is a single
    /// insert or push), so a poisoned lock is still usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of event messages held in memory (test-only: the regression check of issue 13, item 8).
    #[cfg(test)]
    fn resident_message_bytes(&self) -> usize {
        self.state()
            .groups
            .values()
            .flat_map(|group| group.streams.values())
            .map(|stream| stream.lines.resident_bytes())
            .sum()
    }

    fn persistence(&self) -> Option<&Persistence> {
        self.inner.persistence.as_ref()
    }

    /// Where a new stream's events go: its file in the state directory, or memory.
    fn new_lines(&self, group: &str, stream: &str) -> EventLines {
        match self.persistence() {
            Some(persistence) => EventLines::File(persistence.events_path(group, stream)),
            None => EventLines::Memory(Vec::new()),
        }
    }

    fn group_arn(&self, group: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{group}",
            self.identity.region, self.identity.account_id
        )
    }

    pub fn create_log_group(&self, group: &str) -> Result<(), LogsError> {
        self.create_log_group_at(group, now_millis())
    }

    fn create_log_group_at(&self, group: &str, now_ms: i64) -> Result<(), LogsError> {
        validate_group_name(group)?;
        let mut state = self.state();
        if state.groups.contains_key(group) {
            return Err(LogsError::LogGroupAlreadyExists);
        }
        let log_group = LogGroup {
            creation_time: now_ms,
            retention_in_days: None,
            streams: BTreeMap::new(),
        };
        if let Some(persistence) = self.persistence() {
            persistence.write_group(group, &log_group)?;
        }
        state.groups.insert(group.to_string(), log_group);
        Ok(())
    }

    pub fn create_log_stream(&self, group: &str, stream: &str) -> Result<(), LogsError> {
        validate_stream_name(stream)?;
        let now_ms = now_millis();
        let lines = self.new_lines(group, stream);
        let mut state = self.state();
        let log_group = state
            .groups
            .get_mut(group)
            .ok_or(LogsError::LogGroupNotFound)?;
        if log_group.streams.contains_key(stream) {
            return Err(LogsError::LogStreamAlreadyExists);
        }
        if let Some(persistence) = self.persistence() {
            persistence.write_stream(group, stream, now_ms)?;
        }
        log_group
            .streams
            .insert(stream.to_string(), LogStream::new(now_ms, lines));
        Ok(())
    }

    /// Create the group and the stream unless they exist: what a writer inside the emulator (a rule
    /// action) wants before [`LogsStore::put_log_events`].
    pub fn ensure_log_stream(&self, group: &str, stream: &str) -> Result<(), LogsError> {
        match self.create_log_group(group) {
            Ok(()) | Err(LogsError::LogGroupAlreadyExists) => {}
            Err(error) => return Err(error),
        }
        match self.create_log_stream(group, stream) {
            Ok(()) | Err(LogsError::LogStreamAlreadyExists) => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub fn delete_log_group(&self, group: &str) -> Result<(), LogsError> {
        let mut state = self.state();
        if !state.groups.contains_key(group) {
            return Err(LogsError::LogGroupNotFound);
        }
        if let Some(persistence) = self.persistence() {
            persistence.remove_group(group)?;
        }
        state.groups.remove(group);
        Ok(())
    }

    pub fn delete_log_stream(&self, group: &str, stream: &str) -> Result<(), LogsError> {
        let mut state = self.state();
        let log_group = state
            .groups
            .get_mut(group)
            .ok_or(LogsError::LogGroupNotFound)?;
        if !log_group.streams.contains_key(stream) {
            return Err(LogsError::LogStreamNotFound);
        }
        if let Some(persistence) = self.persistence() {
            persistence.remove_stream(group, stream)?;
        }
        log_group.streams.remove(stream);
        Ok(())
    }

    /// Set the group's retention; older events stop being readable and are refused as expired.
    pub fn put_retention_policy(&self, group: &str, days: u32) -> Result<(), LogsError> {
        check_retention_days(days)?;
        self.set_retention(group, Some(days))
    }

    pub fn delete_retention_policy(&self, group: &str) -> Result<(), LogsError> {
        self.set_retention(group, None)
    }

    fn set_retention(&self, group: &str, days: Option<u32>) -> Result<(), LogsError> {
        let mut state = self.state();
        let log_group = state
            .groups
            .get_mut(group)
            .ok_or(LogsError::LogGroupNotFound)?;
        let previous = log_group.retention_in_days;
        log_group.retention_in_days = days;
        if let Some(persistence) = self.persistence()
            && let Err(error) = persistence.write_group(group, log_group)
        {
            log_group.retention_in_days = previous;
            return Err(error);
        }
        Ok(())
    }

    pub fn describe_log_groups(
        &self,
        request: &DescribeLogGroupsRequest,
    ) -> Result<DescribeLogGroupsResponse, LogsError> {
        let limit = page_limit(request.limit, MAX_DESCRIBE_LIMIT)?;
        let offset = offset_token(request.next_token.as_deref())?;
        let prefix = request.log_group_name_prefix.as_deref().unwrap_or("");
        let state = self.state();
        let matching: Vec<(&String, &LogGroup)> = state
            .groups
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .collect();
        let log_groups = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(name, group)| {
                let arn = self.group_arn(name);
                LogGroupDescription {
                    log_group_name: (*name).clone(),
                    creation_time: group.creation_time,
                    retention_in_days: group.retention_in_days,
                    metric_filter_count: 0,
                    arn: format!("{arn}:*"),
                    log_group_arn: arn,
                    stored_bytes: group.streams.values().map(|s| s.stored_bytes).sum(),
                    log_group_class: "STANDARD".to_string(),
                }
            })
            .collect();
        let next_offset = offset + limit;
        Ok(DescribeLogGroupsResponse {
            log_groups,
            next_token: (next_offset < matching.len()).then(|| next_offset.to_string()),
        })
    }

    pub fn describe_log_streams(
        &self,
        request: &DescribeLogStreamsRequest,
    ) -> Result<DescribeLogStreamsResponse, LogsError> {
        let group_name = group_name_of(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        )?;
        let limit = page_limit(request.limit, MAX_DESCRIBE_LIMIT)?;
        let offset = offset_token(request.next_token.as_deref())?;
        let by_last_event = match request.order_by.as_deref() {
            None | Some("LogStreamName") => false,
            Some("LastEventTime") => true,
            Some(other) => {
                return Err(LogsError::invalid(format!(
                    "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy \
                     constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
                )));
            }
        };
        if by_last_event && request.log_stream_name_prefix.is_some() {
            return Err(LogsError::invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let prefix = request.log_stream_name_prefix.as_deref().unwrap_or("");
        let state = self.state();
        let group = state
            .groups
            .get(group_name)
            .ok_or(LogsError::LogGroupNotFound)?;
        let mut streams: Vec<(&String, &LogStream)> = group
            .streams
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .collect();
        if by_last_event {
            streams.sort_by_key(|(name, stream)| {
                (stream.index.last().map(|event| event.timestamp), *name)
            });
        }
        if request.descending.unwrap_or(false) {
            streams.reverse();
        }
        let group_arn = self.group_arn(group_name);
        let log_streams = streams
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(name, stream)| LogStreamDescription {
                log_stream_name: (*name).clone(),
                creation_time: stream.creation_time,
                first_event_timestamp: stream.index.first().map(|event| event.timestamp),
                last_event_timestamp: stream.index.last().map(|event| event.timestamp),
                last_ingestion_time: stream.last_ingestion_time,
                arn: format!("{group_arn}:log-stream:{name}"),
                // AWS stopped reporting bytes per stream on 2019-06-17 and always answers 0 (DescribeLogStreams
                // reference); the group's total is still reported by DescribeLogGroups.
                stored_bytes: 0,
            })
            .collect();
        let next_offset = offset + limit;
        Ok(DescribeLogStreamsResponse {
            log_streams,
            next_token: (next_offset < streams.len()).then(|| next_offset.to_string()),
        })
    }

    /// PutLogEvents at the current time. See [`LogsStore::put_log_events_at`].
    pub fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[InputLogEvent],
    ) -> Result<PutLogEventsResponse, LogsError> {
        self.put_log_events_at(group, stream, events, now_millis())
    }

    /// PutLogEvents with AWS's checks (aws-sdk-cloudwatchlogs API text, rust-ecosystem 2): the group
    /// and stream must exist; 1–10,000 events; at most 1 MiB counting 26 bytes per event; in
    /// chronological order; events older than 14 days (or the retention), or more than 2 h ahead of
    /// `now_ms`, are refused one by one and reported in `rejectedLogEventsInfo`, the others stored; the
    /// stored ones may not span more than 24 h. Sequence tokens are ignored.
    pub fn put_log_events_at(
        &self,
        group: &str,
        stream: &str,
        events: &[InputLogEvent],
        now_ms: i64,
    ) -> Result<PutLogEventsResponse, LogsError> {
        check_batch(events)?;

        let mut state = self.state();
        let next_seq = state.next_seq;
        let log_group = state
            .groups
            .get_mut(group)
            .ok_or(LogsError::LogGroupNotFound)?;
        let retention_limit = log_group
            .retention_in_days
            .map(|days| now_ms - i64::from(days) * DAY_MS);
        let log_stream = log_group
            .streams
            .get_mut(stream)
            .ok_or(LogsError::LogStreamNotFound)?;

        // The batch is sorted, so the refused events are a prefix (too old / expired) and a suffix
        // (too new).
        let too_old_end = events.partition_point(|e| e.timestamp < now_ms - MAX_EVENT_AGE_MS);
        let expired_end =
            retention_limit.map_or(0, |limit| events.partition_point(|e| e.timestamp < limit));
        let too_new_start = events.partition_point(|e| e.timestamp <= now_ms + MAX_EVENT_FUTURE_MS);
        let accepted_start = too_old_end.max(expired_end).min(too_new_start);
        let accepted = &events[accepted_start..too_new_start];
        if let (Some(first), Some(last)) = (accepted.first(), accepted.last())
            && last.timestamp - first.timestamp > MAX_BATCH_SPAN_MS
        {
            return Err(LogsError::invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }

        let stored: Vec<StoredEvent> = accepted
            .iter()
            .zip(next_seq..)
            .map(|(event, seq)| StoredEvent {
                timestamp: event.timestamp,
                ingestion_time: now_ms,
                seq,
                message: event.message.clone(),
            })
            .collect();
        log_stream.append(&stored)?;
        state.next_seq = next_seq + accepted.len() as u64;

        let rejected = RejectedLogEventsInfo {
            too_new_log_event_start_index: (too_new_start < events.len()).then_some(too_new_start),
            too_old_log_event_end_index: (too_old_end > 0).then_some(too_old_end),
            expired_log_event_end_index: (expired_end > 0).then_some(expired_end),
        };
        Ok(PutLogEventsResponse {
            next_sequence_token: Some(format!("{:056}", state.next_seq)),
            rejected_log_events_info: (rejected != RejectedLogEventsInfo::default())
                .then_some(rejected),
        })
    }

    /// GetLogEvents: without a token, the oldest (`startFromHead`) or newest `limit` events; with a
    /// token, the page after (`f/`) or before (`b/`) it. At the end of the stream the forward token
    /// comes back unchanged, which is how AWS clients know to stop.
    pub fn get_log_events(
        &self,
        request: &GetLogEventsRequest,
    ) -> Result<GetLogEventsResponse, LogsError> {
        self.get_log_events_at(request, now_millis())
    }

    fn get_log_events_at(
        &self,
        request: &GetLogEventsRequest,
        now_ms: i64,
    ) -> Result<GetLogEventsResponse, LogsError> {
        let group_name = group_name_of(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        )?;
        let limit = page_limit(request.limit, MAX_EVENTS_PER_PAGE)?;
        let token = request
            .next_token
            .as_deref()
            .map(StreamToken::parse)
            .transpose()?;
        let state = self.state();
        let group = state
            .groups
            .get(group_name)
            .ok_or(LogsError::LogGroupNotFound)?;
        let stream = group
            .streams
            .get(&request.log_stream_name)
            .ok_or(LogsError::LogStreamNotFound)?;
        let window = TimeWindow {
            start: request.start_time,
            end: request.end_time,
            not_before: group
                .retention_in_days
                .map(|days| now_ms - i64::from(days) * DAY_MS),
        };
        let readable = window.range(&stream.index);
        let (range, from_back) = match token {
            None => (readable, !request.start_from_head.unwrap_or(false)),
            Some(StreamToken::Forward(after)) => (after_key(&stream.index, readable, after), false),
            Some(StreamToken::Backward(before)) => {
                (before_key(&stream.index, readable, before), true)
            }
        };
        let page = take_page(&stream.index[range], limit, from_back);
        let messages = stream.lines.messages(&page)?;
        let (next_forward_token, next_backward_token) = match (page.first(), page.last(), token) {
            (Some(first), Some(last), _) => {
                (forward_token(last.key()), backward_token(first.key()))
            }
            (_, _, None) => (forward_token(0), backward_token(0)),
            (_, _, Some(StreamToken::Forward(after))) => (
                forward_token(after),
                backward_token(after.saturating_add(1)),
            ),
            (_, _, Some(StreamToken::Backward(before))) => (
                forward_token(before.saturating_sub(1)),
                backward_token(before),
            ),
        };
        Ok(GetLogEventsResponse {
            events: page
                .iter()
                .zip(messages)
                .map(|(event, message)| OutputLogEvent {
                    timestamp: event.timestamp,
                    message,
                    ingestion_time: event.ingestion_time,
                })
                .collect(),
            next_forward_token,
            next_backward_token,
        })
    }

    /// FilterLogEvents across the group's streams (or the listed ones), interleaved by time, with the
    /// [`FilterPattern`] subset documented there. `nextToken` is present only while more events match.
    pub fn filter_log_events(
        &self,
        request: &FilterLogEventsRequest,
    ) -> Result<FilterLogEventsResponse, LogsError> {
        let group_name = group_name_of(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        )?;
        if request.log_stream_names.is_some() && request.log_stream_name_prefix.is_some() {
            return Err(LogsError::invalid(
                "Cannot specify both logStreamNames and logStreamNamePrefix.",
            ));
        }
        let limit = page_limit(request.limit, MAX_EVENTS_PER_PAGE)?;
        let after = match request.next_token.as_deref() {
            None => 0,
            Some(token) => token.parse::<u128>().map_err(|_| invalid_token())?,
        };
        let pattern = FilterPattern::parse(request.filter_pattern.as_deref())?;
        let now_ms = now_millis();
        let state = self.state();
        let group = state
            .groups
            .get(group_name)
            .ok_or(LogsError::LogGroupNotFound)?;
        let streams: Vec<(&String, &LogStream)> = match &request.log_stream_names {
            Some(names) => names
                .iter()
                .map(|name| {
                    group
                        .streams
                        .get_key_value(name)
                        .ok_or(LogsError::LogStreamNotFound)
                })
                .collect::<Result<_, _>>()?,
            None => {
                let prefix = request.log_stream_name_prefix.as_deref().unwrap_or("");
                group
                    .streams
                    .iter()
                    .filter(|(name, _)| name.starts_with(prefix))
                    .collect()
            }
        };
        let window = TimeWindow {
            start: request.start_time,
            end: request.end_time,
            not_before: group
                .retention_in_days
                .map(|days| now_ms - i64::from(days) * DAY_MS),
        };
        let ranges: Vec<Range<usize>> = streams
            .iter()
            .map(|(_, stream)| after_key(&stream.index, window.range(&stream.index), after))
            .collect();
        let mut scan = MergedScan::new(&streams, ranges.clone());
        let mut events = Vec::new();
        let mut page_bytes = 0;
        let mut scanned_bytes = 0;
        let mut last_scanned = after;
        let mut chunk_events = (limit + 1).min(FILTER_CHUNK_EVENTS);
        // The token is the position of the last event returned when more match, or of the last event
        // read when the scan budget ran out first; absent once everything was searched.
        let next_token = 'scan: loop {
            if scan.is_exhausted() {
                break None;
            }
            if scanned_bytes >= MAX_FILTER_SCAN_BYTES {
                break Some(last_scanned);
            }
            let chunk = scan.next_chunk(
                chunk_events,
                FILTER_CHUNK_BYTES.min(MAX_FILTER_SCAN_BYTES - scanned_bytes),
            );
            // Small first reads for small pages, larger ones while matches are sparse.
            chunk_events = (chunk_events * 2).min(FILTER_CHUNK_EVENTS);
            scanned_bytes += chunk.iter().map(|(_, entry)| entry.size()).sum::<usize>();
            let messages = chunk_messages(&streams, &chunk)?;
            for ((stream, entry), message) in chunk.iter().zip(messages) {
                if !pattern.matches(&message) {
                    continue;
                }
                page_bytes += entry.size();
                if events.len() >= limit || (page_bytes > MAX_PAGE_BYTES && !events.is_empty()) {
                    break 'scan Some(last_scanned);
                }
                last_scanned = entry.key();
                events.push(FilteredLogEvent {
                    log_stream_name: streams[*stream].0.clone(),
                    timestamp: entry.timestamp,
                    message,
                    ingestion_time: entry.ingestion_time,
                    event_id: format!("{:056}", entry.key()),
                });
            }
            if let Some((_, entry)) = chunk.last() {
                last_scanned = entry.key();
            }
        };
        Ok(FilterLogEventsResponse {
            events,
            searched_log_streams: streams
                .iter()
                .zip(ranges)
                .map(|((name, stream), range)| SearchedLogStream {
                    log_stream_name: (*name).clone(),
                    searched_completely: next_token
                        .is_none_or(|token| after_key(&stream.index, range, token).is_empty()),
                })
                .collect(),
            next_token: next_token.map(|key| key.to_string()),
        })
    }
}

/// FilterLogEvents' walk over several streams' readable ranges in event order (timestamp, then arrival),
/// handed out in chunks so that only one chunk's messages are in memory at a time.
struct MergedScan<'a> {
    streams: &'a [(&'a String, &'a LogStream)],
    remaining: Vec<Range<usize>>,
    /// The next event of each stream that has one: (key, stream).
    heads: BinaryHeap<Reverse<(u128, usize)>>,
}

impl<'a> MergedScan<'a> {
    fn new(streams: &'a [(&'a String, &'a LogStream)], remaining: Vec<Range<usize>>) -> Self {
        let heads = remaining
            .iter()
            .enumerate()
            .filter(|(_, range)| !range.is_empty())
            .map(|(stream, range)| Reverse((streams[stream].1.index[range.start].key(), stream)))
            .collect();
        Self {
            streams,
            remaining,
            heads,
        }
    }

    fn is_exhausted(&self) -> bool {
        self.heads.is_empty()
    }

    /// The next events in order: at least one (unless exhausted), at most `max_events`, and no more once
    /// their messages reach `max_bytes`.
    fn next_chunk(&mut self, max_events: usize, max_bytes: usize) -> Vec<(usize, IndexEntry)> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < max_events && bytes < max_bytes {
            let Some(Reverse((_, stream))) = self.heads.pop() else {
                break;
            };
            let index = &self.streams[stream].1.index;
            let range = &mut self.remaining[stream];
            let entry = index[range.start];
            range.start += 1;
            if range.start < range.end {
                self.heads.push(Reverse((index[range.start].key(), stream)));
            }
            bytes += entry.size();
            chunk.push((stream, entry));
        }
        chunk
    }
}

/// The messages of a chunk, in its order: one read of each stream's lines for its events.
fn chunk_messages(
    streams: &[(&String, &LogStream)],
    chunk: &[(usize, IndexEntry)],
) -> Result<Vec<String>, LogsError> {
    let mut by_stream: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (position, (stream, _)) in chunk.iter().enumerate() {
        by_stream.entry(*stream).or_default().push(position);
    }
    let mut messages = vec![String::new(); chunk.len()];
    for (stream, positions) in by_stream {
        let entries: Vec<IndexEntry> = positions.iter().map(|&p| chunk[p].1).collect();
        let read = streams[stream].1.lines.messages(&entries)?;
        for (position, message) in positions.into_iter().zip(read) {
            messages[position] = message;
        }
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::validation::{
        EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_SPAN_MS, MAX_EVENTS_PER_BATCH,
    };

    const NOW: i64 = 1_800_000_000_000;

    fn event(timestamp: i64, message: &str) -> InputLogEvent {
        InputLogEvent {
            timestamp,
            message: message.to_string(),
        }
    }

    fn store_with_stream() -> LogsStore {
        let store = LogsStore::in_memory();
        store.ensure_log_stream("/iot/presence", "pi-1").unwrap();
        store
    }

    fn read_all(store: &LogsStore, from_head: bool) -> GetLogEventsResponse {
        store
            .get_log_events_at(
                &GetLogEventsRequest {
                    log_group_name: Some("/iot/presence".into()),
                    log_stream_name: "pi-1".into(),
                    start_from_head: Some(from_head),
                    ..Default::default()
                },
                NOW,
            )
            .unwrap()
    }

    #[test]
    fn out_of_window_events_are_rejected_individually() {
        let store = store_with_stream();
        let batch = [
            event(NOW - MAX_EVENT_AGE_MS - 1, "too old"),
            event(NOW - 1000, "ok 1"),
            event(NOW, "ok 2"),
            event(NOW + MAX_EVENT_FUTURE_MS + 1, "too new"),
        ];
        let response = store
            .put_log_events_at("/iot/presence", "pi-1", &batch, NOW)
            .unwrap();
        assert_eq!(
            response.rejected_log_events_info,
            Some(RejectedLogEventsInfo {
                too_new_log_event_start_index: Some(3),
                too_old_log_event_end_index: Some(1),
                expired_log_event_end_index: None,
            })
        );
        let messages: Vec<_> = read_all(&store, true)
            .events
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["ok 1", "ok 2"]);
    }

    #[test]
    fn retention_expires_events() {
        let store = store_with_stream();
        store.put_retention_policy("/iot/presence", 1).unwrap();
        let response = store
            .put_log_events_at(
                "/iot/presence",
                "pi-1",
                &[event(NOW - 2 * DAY_MS, "expired"), event(NOW, "kept")],
                NOW,
            )
            .unwrap();
        let rejected = response.rejected_log_events_info.unwrap();
        assert_eq!(rejected.expired_log_event_end_index, Some(1));
        assert_eq!(rejected.too_old_log_event_end_index, None);
        assert!(store.put_retention_policy("/iot/presence", 2).is_err());
    }

    #[test]
    fn batch_checks() {
        let store = store_with_stream();
        let put = |events: &[InputLogEvent]| {
            store.put_log_events_at("/iot/presence", "pi-1", events, NOW)
        };
        assert!(matches!(put(&[]), Err(LogsError::InvalidParameter(_))));
        assert!(matches!(
            put(&[event(NOW, "b"), event(NOW - 1, "a")]),
            Err(LogsError::InvalidParameter(m)) if m.contains("chronological")
        ));
        assert!(matches!(
            put(&[event(NOW - MAX_BATCH_SPAN_MS - 1, "a"), event(NOW, "b")]),
            Err(LogsError::InvalidParameter(m)) if m.contains("24 hours")
        ));
        let many = vec![event(NOW, "x"); MAX_EVENTS_PER_BATCH + 1];
        assert!(put(&many).is_err());
        assert!(put(&many[..MAX_EVENTS_PER_BATCH]).is_ok());
        // Exactly 1 MiB including the 26 bytes is accepted, one more byte is not.
        let exact = "x".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES);
        assert!(put(&[event(NOW, &exact)]).is_ok());
        let over = "x".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES + 1);
        assert!(put(&[event(NOW, &over)]).is_err());
        assert!(matches!(
            store.put_log_events_at("/nope", "pi-1", &[event(NOW, "a")], NOW),
            Err(LogsError::LogGroupNotFound)
        ));
        assert!(matches!(
            store.put_log_events_at("/iot/presence", "nope", &[event(NOW, "a")], NOW),
            Err(LogsError::LogStreamNotFound)
        ));
    }

    #[test]
    fn tokens_page_forward_and_backward_and_stop_at_the_end() {
        let store = store_with_stream();
        let batch: Vec<_> = (0..5)
            .map(|i| event(NOW - 5 + i, &format!("m{i}")))
            .collect();
        store
            .put_log_events_at("/iot/presence", "pi-1", &batch, NOW)
            .unwrap();
        let request = |token: Option<String>, from_head: Option<bool>| GetLogEventsRequest {
            log_group_name: Some("/iot/presence".into()),
            log_stream_name: "pi-1".into(),
            limit: Some(2),
            next_token: token,
            start_from_head: from_head,
            ..Default::default()
        };
        let messages = |page: &GetLogEventsResponse| -> Vec<String> {
            page.events.iter().map(|e| e.message.clone()).collect()
        };
        let tail = store.get_log_events_at(&request(None, None), NOW).unwrap();
        assert_eq!(messages(&tail), ["m3", "m4"]);
        let before = store
            .get_log_events_at(&request(Some(tail.next_backward_token.clone()), None), NOW)
            .unwrap();
        assert_eq!(messages(&before), ["m1", "m2"]);

        let head = store
            .get_log_events_at(&request(None, Some(true)), NOW)
            .unwrap();
        assert_eq!(messages(&head), ["m0", "m1"]);
        let mut seen = messages(&head);
        let mut token = head.next_forward_token;
        loop {
            let page = store
                .get_log_events_at(&request(Some(token.clone()), None), NOW)
                .unwrap();
            seen.extend(messages(&page));
            if page.next_forward_token == token {
                break;
            }
            token = page.next_forward_token;
        }
        assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4"]);

        // New events show up after the token that ended the previous read.
        store
            .put_log_events_at("/iot/presence", "pi-1", &[event(NOW, "m5")], NOW)
            .unwrap();
        let page = store
            .get_log_events_at(&request(Some(token), None), NOW)
            .unwrap();
        assert_eq!(messages(&page), ["m5"]);
    }

    #[test]
    fn late_batches_are_read_in_timestamp_order() {
        let store = store_with_stream();
        store
            .put_log_events_at("/iot/presence", "pi-1", &[event(NOW, "late")], NOW)
            .unwrap();
        store
            .put_log_events_at("/iot/presence", "pi-1", &[event(NOW - 10, "early")], NOW)
            .unwrap();
        let messages: Vec<_> = read_all(&store, true)
            .events
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["early", "late"]);
    }

    #[test]
    fn filter_interleaves_streams_and_paginates() {
        let store = store_with_stream();
        store.create_log_stream("/iot/presence", "pi-2").unwrap();
        let now = now_millis();
        for (stream, offset, message) in [
            (
                "pi-1",
                3,
                r#"{"clientId":"pi-1","eventType":"disconnected"}"#,
            ),
            (
                "pi-2",
                2,
                r#"{"clientId":"pi-2","eventType":"disconnected"}"#,
            ),
            ("pi-1", 1, r#"{"clientId":"pi-1","eventType":"connected"}"#),
        ] {
            store
                .put_log_events("/iot/presence", stream, &[event(now - offset, message)])
                .unwrap();
        }
        let request = FilterLogEventsRequest {
            log_group_name: Some("/iot/presence".into()),
            filter_pattern: Some(r#"{ $.eventType = "disconnected" }"#.into()),
            limit: Some(1),
            ..Default::default()
        };
        let first = store.filter_log_events(&request).unwrap();
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].log_stream_name, "pi-1");
        assert_eq!(first.searched_log_streams.len(), 2);
        let second = store
            .filter_log_events(&FilterLogEventsRequest {
                next_token: first.next_token.clone(),
                ..request.clone()
            })
            .unwrap();
        assert_eq!(second.events[0].log_stream_name, "pi-2");
        assert_eq!(second.next_token, None);
    }

    #[test]
    fn arns_use_the_configured_identity() {
        let store = LogsStore::in_memory().with_identity(LogsIdentity {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
        });
        store.ensure_log_stream("/g", "s").unwrap();
        let groups = store
            .describe_log_groups(&DescribeLogGroupsRequest::default())
            .unwrap();
        assert_eq!(
            groups.log_groups[0].log_group_arn,
            "arn:aws:logs:eu-west-1:123456789012:log-group:/g"
        );
        let streams = store
            .describe_log_streams(&DescribeLogStreamsRequest {
                log_group_name: Some("/g".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            streams.log_streams[0].arn,
            "arn:aws:logs:eu-west-1:123456789012:log-group:/g:log-stream:s"
        );
    }

    #[test]
    fn state_directory_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogsStore::open(dir.path()).unwrap();
            store
                .ensure_log_stream("/aws/lambda/x", "2026/11/26/[$LATEST]abc")
                .unwrap();
            store.put_retention_policy("/aws/lambda/x", 7).unwrap();
            store
                .put_log_events_at(
                    "/aws/lambda/x",
                    "2026/11/26/[$LATEST]abc",
                    &[event(NOW - 1, "one"), event(NOW, "two")],
                    NOW,
                )
                .unwrap();
            store.ensure_log_stream("/gone", "s").unwrap();
            store.delete_log_group("/gone").unwrap();
        }
        let reopened = LogsStore::open(dir.path()).unwrap();
        let groups = reopened
            .describe_log_groups(&DescribeLogGroupsRequest::default())
            .unwrap();
        assert_eq!(groups.log_groups.len(), 1);
        assert_eq!(groups.log_groups[0].retention_in_days, Some(7));
        let page = reopened
            .get_log_events_at(
                &GetLogEventsRequest {
                    log_group_name: Some("/aws/lambda/x".into()),
                    log_stream_name: "2026/11/26/[$LATEST]abc".into(),
                    start_from_head: Some(true),
                    ..Default::default()
                },
                NOW,
            )
            .unwrap();
        let messages: Vec<_> = page.events.into_iter().map(|e| e.message).collect();
        assert_eq!(messages, ["one", "two"]);
        // Sequence numbers continue after a reload, so new events sort after old ones.
        reopened
            .put_log_events_at(
                "/aws/lambda/x",
                "2026/11/26/[$LATEST]abc",
                &[event(NOW, "three")],
                NOW,
            )
            .unwrap();
        assert_eq!(reopened.state().next_seq, 4);
    }

    fn messages_of(store: &LogsStore, group: &str, stream: &str) -> Vec<String> {
        store
            .get_log_events_at(
                &GetLogEventsRequest {
                    log_group_name: Some(group.into()),
                    log_stream_name: stream.into(),
                    start_from_head: Some(true),
                    ..Default::default()
                },
                NOW,
            )
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    fn only_file_ending_with(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
        let mut found = Vec::new();
        for group in std::fs::read_dir(dir).unwrap() {
            for file in std::fs::read_dir(group.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                if path.to_string_lossy().ends_with(suffix) {
                    found.push(path);
                }
            }
        }
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    /// A kill during a large write leaves a torn last line. The next event was appended onto it and lost at
    /// the following start (issue 13, item 8): the torn tail is now cut at open.
    #[test]
    fn an_event_written_after_a_torn_tail_survives_the_next_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogsStore::open(dir.path()).unwrap();
        store.ensure_log_stream("/g", "s").unwrap();
        store
            .put_log_events_at("/g", "s", &[event(NOW, "before")], NOW)
            .unwrap();
        drop(store);
        let events = only_file_ending_with(dir.path(), ".events.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&events)
            .unwrap();
        std::io::Write::write_all(&mut file, br#"{"timestamp":1,"ingestionT"#).unwrap();
        drop(file);

        let reopened = LogsStore::open(dir.path()).unwrap();
        assert_eq!(messages_of(&reopened, "/g", "s"), ["before"]);
        reopened
            .put_log_events_at("/g", "s", &[event(NOW, "after")], NOW)
            .unwrap();
        drop(reopened);
        let again = LogsStore::open(dir.path()).unwrap();
        assert_eq!(messages_of(&again, "/g", "s"), ["before", "after"]);
        // Read from the file at the offsets the start-up scan found, by both read operations.
        assert_eq!(filter_messages(&again, "/g", "after"), ["after"]);
        assert_eq!(filter_messages(&again, "/g", ""), ["before", "after"]);
    }

    /// A file cut inside a multi-byte UTF-8 character, and a zero-length group.json (power loss before the
    /// data reached the disk), each stopped the emulator from starting (issue 13, item 8).
    #[test]
    fn a_file_cut_inside_a_character_and_an_empty_group_file_do_not_stop_a_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogsStore::open(dir.path()).unwrap();
            store.ensure_log_stream("/iot/x", "s").unwrap();
            store.put_retention_policy("/iot/x", 7).unwrap();
            store
                .put_log_events_at(
                    "/iot/x",
                    "s",
                    &[event(NOW - 1, "kept"), event(NOW, "été")],
                    NOW,
                )
                .unwrap();
        }
        let events = only_file_ending_with(dir.path(), ".events.jsonl");
        let bytes = std::fs::read(&events).unwrap();
        let e_acute = "é".as_bytes();
        let cut = bytes
            .windows(e_acute.len())
            .rposition(|window| window == e_acute)
            .unwrap()
            + 1;
        assert!(std::str::from_utf8(&bytes[..cut]).is_err(), "cut inside é");
        std::fs::write(&events, &bytes[..cut]).unwrap();
        let group = only_file_ending_with(dir.path(), "group.json");
        std::fs::write(&group, b"").unwrap();

        let reopened = LogsStore::open(dir.path()).unwrap();
        assert_eq!(messages_of(&reopened, "/iot/x", "s"), ["kept"]);
        // The group's name came back from its directory; the rebuilt metadata was written back.
        let rebuilt: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&group).unwrap()).unwrap();
        assert_eq!(rebuilt["logGroupName"], "/iot/x");
        let groups = reopened
            .describe_log_groups(&DescribeLogGroupsRequest::default())
            .unwrap();
        assert_eq!(groups.log_groups[0].log_group_name, "/iot/x");
    }

    fn filter_messages(store: &LogsStore, group: &str, pattern: &str) -> Vec<String> {
        let mut request = FilterLogEventsRequest {
            log_group_name: Some(group.into()),
            filter_pattern: Some(pattern.into()),
            start_time: Some(0),
            ..Default::default()
        };
        let mut messages = Vec::new();
        loop {
            let page = store.filter_log_events(&request).unwrap();
            messages.extend(page.events.into_iter().map(|e| e.message));
            match page.next_token {
                Some(token) => request.next_token = Some(token),
                None => return messages,
            }
        }
    }

    /// Every stored event was also held in memory, so memory grew with the stored volume (issue 13, item 8):
    /// a store with a state directory now keeps an index entry per event and reads messages from the file.
    #[test]
    fn a_persistent_store_keeps_no_messages_in_memory_and_reads_them_back_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let message = |i: usize| format!("m{i:04} {}", "x".repeat(4_000));
        let batches = 4;
        let per_batch = 200;
        let write = |store: &LogsStore| {
            store.ensure_log_stream("/big", "s").unwrap();
            for batch in 0..batches {
                let events: Vec<_> = (0..per_batch)
                    .map(|n| batch * per_batch + n)
                    .map(|i| event(NOW - 10_000 + i as i64, &message(i)))
                    .collect();
                store.put_log_events_at("/big", "s", &events, NOW).unwrap();
            }
        };
        let expected: Vec<String> = (0..batches * per_batch).map(message).collect();
        let store = LogsStore::open(dir.path()).unwrap();
        write(&store);
        assert_eq!(store.resident_message_bytes(), 0);
        let check = |store: &LogsStore| {
            let mut seen = Vec::new();
            let mut token = None;
            loop {
                let page = store
                    .get_log_events_at(
                        &GetLogEventsRequest {
                            log_group_name: Some("/big".into()),
                            log_stream_name: "s".into(),
                            start_from_head: Some(true),
                            next_token: token.clone(),
                            ..Default::default()
                        },
                        NOW,
                    )
                    .unwrap();
                seen.extend(page.events.into_iter().map(|e| e.message));
                if token.as_deref() == Some(page.next_forward_token.as_str()) {
                    break;
                }
                token = Some(page.next_forward_token);
            }
            assert_eq!(seen, expected);
            assert_eq!(filter_messages(store, "/big", "m0421"), [message(421)]);
            let groups = store
                .describe_log_groups(&DescribeLogGroupsRequest::default())
                .unwrap();
            let total: usize = expected.iter().map(String::len).sum();
            assert_eq!(groups.log_groups[0].stored_bytes, total as u64);
        };
        check(&store);
        drop(store);
        let reopened = LogsStore::open(dir.path()).unwrap();
        assert_eq!(reopened.resident_message_bytes(), 0);
        check(&reopened);
    }

    /// A FilterLogEvents over more than it may read in one request stops at its budget with a token and
    /// no event rather than reading the whole group, and the token leads to the match.
    #[test]
    fn a_filter_over_more_than_its_scan_budget_continues_through_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogsStore::open(dir.path()).unwrap();
        store.ensure_log_stream("/big", "a").unwrap();
        store.ensure_log_stream("/big", "b").unwrap();
        let filler = "x".repeat(16 * 1024 - EVENT_OVERHEAD_BYTES);
        let batch_events = MAX_BATCH_BYTES / (16 * 1024);
        let batches = MAX_FILTER_SCAN_BYTES / MAX_BATCH_BYTES + 2;
        for batch in 0..batches {
            let stream = if batch % 2 == 0 { "a" } else { "b" };
            let base = NOW - 100_000 + (batch * batch_events) as i64;
            let events: Vec<_> = (0..batch_events)
                .map(|n| event(base + n as i64, &filler))
                .collect();
            store
                .put_log_events_at("/big", stream, &events, NOW)
                .unwrap();
        }
        store
            .put_log_events_at("/big", "a", &[event(NOW, "needle")], NOW)
            .unwrap();
        let request = FilterLogEventsRequest {
            log_group_name: Some("/big".into()),
            filter_pattern: Some("needle".into()),
            ..Default::default()
        };
        let first = store.filter_log_events(&request).unwrap();
        assert!(first.events.is_empty());
        assert!(first.next_token.is_some());
        assert!(
            first
                .searched_log_streams
                .iter()
                .any(|stream| !stream.searched_completely)
        );
        let second = store
            .filter_log_events(&FilterLogEventsRequest {
                next_token: first.next_token,
                ..request
            })
            .unwrap();
        let found: Vec<_> = second.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(found, ["needle"]);
        assert_eq!(second.next_token, None);
        assert!(
            second
                .searched_log_streams
                .iter()
                .all(|s| s.searched_completely)
        );
    }
}

//! Memory and read latency of the CloudWatch Logs store over a large stream (issue 13, item 8): 200,000 events of
//! 1 KiB written through `PutLogEvents` to a store with a state directory (memory holds an index entry per event,
//! messages are read from the events file) and, in the same run, to the in-memory store (which keeps the event
//! lines in memory, as every store did before the index: the peer for the old design). Reports this process's
//! RSS growth (VmRSS from /proc/self/status), the start-up index scan of the reopened directory, and the latency
//! of GetLogEvents pages and FilterLogEvents requests (reads hit the page cache: the file was just written).
//!
//! `cargo bench -p iot-emulator --bench logs_store`

use std::time::{Duration, Instant};

use iot_emulator::logs::{
    FilterLogEventsRequest, GetLogEventsRequest, INDEX_ENTRY_BYTES, InputLogEvent, LogsStore,
    now_millis,
};

const EVENTS: usize = 200_000;
const MESSAGE_BYTES: usize = 1024;
/// 500 events of 1 KiB + 26 bytes stay under PutLogEvents' 1 MiB.
const BATCH: usize = 500;
const GROUP: &str = "/bench/logs";
const STREAM: &str = "device-1";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn message(i: usize) -> String {
    let mut message = format!("{{\"seq\":{i},\"note\":\"");
    let tail = if i == EVENTS - 1 { "needle\"}" } else { "\"}" };
    message.push_str(&"x".repeat(MESSAGE_BYTES - message.len() - tail.len()));
    message.push_str(tail);
    message
}

fn write(store: &LogsStore) -> Duration {
    store.ensure_log_stream(GROUP, STREAM).expect("stream");
    let base = now_millis() - EVENTS as i64;
    let started = Instant::now();
    for batch in 0..EVENTS / BATCH {
        let events: Vec<InputLogEvent> = (batch * BATCH..(batch + 1) * BATCH)
            .map(|i| InputLogEvent {
                timestamp: base + i as i64,
                message: message(i),
            })
            .collect();
        store
            .put_log_events(GROUP, STREAM, &events)
            .expect("put log events");
    }
    started.elapsed()
}

/// Following nextForwardToken from the head for `pages` pages: mean time per page and events per page.
fn get_pages(store: &LogsStore, pages: usize) -> (Duration, usize) {
    let mut token = None;
    let mut events = 0;
    let started = Instant::now();
    for _ in 0..pages {
        let page = store
            .get_log_events(&GetLogEventsRequest {
                log_group_name: Some(GROUP.into()),
                log_stream_name: STREAM.into(),
                start_from_head: Some(true),
                next_token: token.take(),
                ..Default::default()
            })
            .expect("get log events");
        events += page.events.len();
        token = Some(page.next_forward_token);
    }
    (started.elapsed() / pages as u32, events / pages)
}

/// One FilterLogEvents request after another until nextToken runs out: requests, matches, mean and worst time.
fn filter_all(
    store: &LogsStore,
    pattern: &str,
    limit: Option<usize>,
) -> (usize, usize, Duration, Duration) {
    let mut request = FilterLogEventsRequest {
        log_group_name: Some(GROUP.into()),
        filter_pattern: Some(pattern.into()),
        limit,
        ..Default::default()
    };
    let (mut requests, mut matches, mut total, mut worst) = (0, 0, Duration::ZERO, Duration::ZERO);
    loop {
        let started = Instant::now();
        let page = store
            .filter_log_events(&request)
            .expect("filter log events");
        let took = started.elapsed();
        total += took;
        worst = worst.max(took);
        requests += 1;
        matches += page.events.len();
        match page.next_token {
            Some(token) => request.next_token = Some(token),
            None => return (requests, matches, total / requests as u32, worst),
        }
        if requests == 20 && limit.is_some() {
            return (requests, matches, total / requests as u32, worst);
        }
    }
}

fn reads(label: &str, store: &LogsStore) {
    let (page, per_page) = get_pages(store, 50);
    println!(
        "  {label}: GetLogEvents from the head: {:.2} ms per page of {per_page} events (50 pages)",
        page.as_secs_f64() * 1e3
    );
    let (requests, matches, mean, worst) = filter_all(store, "", Some(1_000));
    println!(
        "  {label}: FilterLogEvents, no pattern, limit 1,000: {:.2} ms per request (mean of {requests}, worst {:.2} ms), {matches} events",
        mean.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    let (requests, matches, mean, worst) = filter_all(store, "needle", None);
    println!(
        "  {label}: FilterLogEvents, one match in the whole stream: {requests} requests, {matches} match, {:.1} ms per request (worst {:.1} ms)",
        mean.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    let (requests, matches, mean, worst) = filter_all(store, r#"{ $.seq = 199999 }"#, None);
    println!(
        "  {label}: FilterLogEvents, JSON pattern, one match: {requests} requests, {matches} match, {:.1} ms per request (worst {:.1} ms)",
        mean.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
}

fn main() {
    let stored_mib = (EVENTS * MESSAGE_BYTES) as f64 / (1024.0 * 1024.0);
    println!(
        "{EVENTS} events of {MESSAGE_BYTES} B ({stored_mib:.0} MiB of messages) in one stream; index entry {INDEX_ENTRY_BYTES} B"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let before = rss_kib();
    let store = LogsStore::open(dir.path()).expect("open");
    let took = write(&store);
    let after = rss_kib();
    println!(
        "state directory (index): RSS +{:.1} MiB after writing ({:.1} s, {:.0} B per event)",
        mib(after.saturating_sub(before)),
        took.as_secs_f64(),
        (after.saturating_sub(before) * 1024) as f64 / EVENTS as f64
    );
    reads("state directory", &store);
    drop(store);
    let before = rss_kib();
    let started = Instant::now();
    let store = LogsStore::open(dir.path()).expect("reopen");
    let scan = started.elapsed();
    println!(
        "state directory reopened: index built in {:.2} s, RSS +{:.1} MiB",
        scan.as_secs_f64(),
        mib(rss_kib().saturating_sub(before))
    );
    reads("reopened", &store);
    drop(store);

    let before = rss_kib();
    let store = LogsStore::in_memory();
    let took = write(&store);
    let after = rss_kib();
    println!(
        "in memory (the old design's peer): RSS +{:.1} MiB after writing ({:.1} s, {:.0} B per event)",
        mib(after.saturating_sub(before)),
        took.as_secs_f64(),
        (after.saturating_sub(before) * 1024) as f64 / EVENTS as f64
    );
    reads("in memory", &store);
}

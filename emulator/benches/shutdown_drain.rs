//! Shutdown with 2,000 queued events (issue 13): the Lambda service with the test double for a function
//! (`tests/lambda_support`) at the default concurrency and a 600 s timeout, every event one that hangs. Once
//! every instance holds one, the service is shut down with the emulator's grace (`lambda::SHUTDOWN_GRACE`); the
//! events it hands back are written to `{state}/lambda/pending.jsonl` and taken back as `up` does
//! (`lambda::pending`), then resumed by a new service whose instances no longer hang. Reports the shutdown's wall
//! time, the events handed back, written and run after the restart, the events lost (must be 0) and the events run
//! in both lives (the ones running at the shutdown: at least once, as Lambda's async invocations).
//!
//! `CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 cargo bench -p iot-emulator --bench shutdown_drain`

#[path = "../tests/lambda_support/mod.rs"]
mod lambda_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use iot_emulator::lambda::{DEFAULT_CONCURRENCY, SHUTDOWN_GRACE, pending};
use lambda_support::{events_seen, start_with};
use serde_json::json;

const EVENTS: u64 = 2_000;
/// Far longer than the bench: a hanging event is still running at the shutdown, never timed out.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(600);
const RETRIES: u32 = 2;

/// The `n` of every event the function received, in the order it received them.
fn numbers_seen(events_file: &Path) -> Vec<u64> {
    events_seen(events_file)
        .iter()
        .map(|event| event["n"].as_u64().expect("every event carries its number"))
        .collect()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let first = start_with(FUNCTION_TIMEOUT, RETRIES, None);
    for n in 0..EVENTS {
        first
            .service
            .invoke_async(
                "double",
                json!({"mode": "hang", "n": n}).to_string().into_bytes(),
            )
            .expect("2,000 events are within the queue's bound");
    }
    let instances = DEFAULT_CONCURRENCY as usize;
    wait_for(
        "every instance to hold a hanging event",
        Duration::from_secs(60),
        || events_seen(&first.events_file).len() >= instances,
    )
    .await;

    let started = Instant::now();
    let unfinished = first.service.shutdown(SHUTDOWN_GRACE).await;
    let shutdown_time = started.elapsed();
    let running_at_shutdown: BTreeSet<u64> = numbers_seen(&first.events_file).into_iter().collect();

    let state = tempfile::tempdir().expect("a state directory");
    let lambda_dir = state.path().join("lambda");
    pending::save(&lambda_dir, &unfinished).expect("pending.jsonl written");
    let written = std::fs::read_to_string(lambda_dir.join(pending::PENDING_FILE))
        .expect("pending.jsonl")
        .lines()
        .count();
    let taken = pending::take(&lambda_dir).expect("pending.jsonl read back");
    let taken_count = taken.len();

    let second = start_with(FUNCTION_TIMEOUT, RETRIES, None);
    second.release_hanging();
    let restarted = Instant::now();
    second.service.resume(taken).await;
    wait_for(
        "the resumed events to run",
        Duration::from_secs(600),
        || events_seen(&second.events_file).len() >= taken_count,
    )
    .await;
    let rerun_time = restarted.elapsed();
    // Anything delivered twice after the restart would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.service.shutdown(SHUTDOWN_GRACE).await;

    let mut runs_after_restart: BTreeMap<u64, usize> = BTreeMap::new();
    for n in numbers_seen(&second.events_file) {
        *runs_after_restart.entry(n).or_default() += 1;
    }
    let run_after_restart: usize = runs_after_restart.values().sum();
    // No event finishes before the shutdown (every one hangs), so each must run after the restart.
    let lost = (0..EVENTS)
        .filter(|n| !runs_after_restart.contains_key(n))
        .count();
    let run_in_both_lives = running_at_shutdown
        .iter()
        .filter(|n| runs_after_restart.contains_key(n))
        .count();
    let repeated_after_restart = runs_after_restart
        .values()
        .map(|runs| runs.saturating_sub(1))
        .sum::<usize>();

    println!(
        "queued {EVENTS}; running at shutdown {}; shutdown({} s) took {:.3} s; handed back {}; \
         written to pending.jsonl {written}; taken back {taken_count}; run after the restart {run_after_restart} \
         in {:.2} s; lost {lost}; run in both lives (at least once) {run_in_both_lives}; \
         repeated after the restart {repeated_after_restart}",
        running_at_shutdown.len(),
        SHUTDOWN_GRACE.as_secs(),
        shutdown_time.as_secs_f64(),
        unfinished.len(),
        rerun_time.as_secs_f64(),
    );
    assert_eq!(lost, 0, "every queued event runs after the restart");
}

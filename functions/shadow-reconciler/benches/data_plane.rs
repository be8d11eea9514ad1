//! Cost per event against a local IoT data-plane API, and version conflicts under a burst.
//!
//! 1. End to end: the release `shadow-reconciler` binary behind the Lambda Runtime API, writing the
//!    connectivity shadow in moto on 127.0.0.1; median and p99 per invocation over 200 events.
//! 2. Burst: 100 lifecycle events for ONE thing handled at the same time by 100 reconciler
//!    instances (in-process, each with its own SDK client, as 100 Lambda sandboxes would be),
//!    against the same API. Counts the 409 retries, the events that exhausted their attempts, and
//!    checks the shadow ends in the truth (the newest event).
//!
//! `cargo bench -p shadow-reconciler --bench data_plane`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_iotdataplane::config::{BehaviorVersion, Credentials, Region};
use lambda_host::{FunctionConfig, FunctionProcess, InvocationResult, RuntimeApi};
use moto_fixture::MotoServer;
use serde_json::{Value, json};
use shadow_reconciler::memory::MemoryStore;
use shadow_reconciler::{DataPlaneStore, Outcome, Reconciler, ShadowStore};

fn client(endpoint: &str) -> aws_sdk_iotdataplane::Client {
    aws_sdk_iotdataplane::Client::from_conf(
        aws_sdk_iotdataplane::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(lambda_init::https_client())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(lambda_init::retry_config())
            .build(),
    )
}

fn event(thing: &str, i: u64) -> Value {
    // Connections 1, 2, 3, ... each connect then disconnect, one minute apart.
    let version = i / 2 + 1;
    let kind = if i.is_multiple_of(2) {
        "connected"
    } else {
        "disconnected"
    };
    let mut e = json!({"clientId": thing, "timestamp": 1_764_000_000_000i64 + i as i64 * 60_000,
                       "eventType": kind, "sessionIdentifier": format!("s{version}"), "versionNumber": version});
    if kind == "disconnected" {
        e["disconnectReason"] = json!("CONNECTION_LOST");
    }
    e
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

async fn end_to_end(moto: &MotoServer, events: u64) {
    moto.create_thing("bench-e2e").await.unwrap();
    let api = RuntimeApi::bind(
        "127.0.0.1:0".parse().unwrap(),
        "arn:aws:lambda:us-east-1:0:function:shadow-reconciler",
    )
    .await
    .unwrap();
    let config = FunctionConfig::new("shadow-reconciler")
        .env("AWS_ENDPOINT_URL_IOT_DATA_PLANE", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "warn");
    let _process = FunctionProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_shadow-reconciler")),
        &config,
        &api.address(),
    )
    .unwrap();
    let mut samples = Vec::new();
    for i in 0..events {
        let started = Instant::now();
        match api
            .invoke(event("bench-e2e", i).to_string(), Duration::from_secs(20))
            .await
            .unwrap()
        {
            InvocationResult::Response(_) => {}
            InvocationResult::Error {
                error_type,
                error_message,
            } => panic!("{error_type}: {error_message}"),
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "end to end per event over {events} events (Runtime API -> binary -> moto get+update): median {:.2} ms, p99 {:.2} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}

struct BurstResult {
    conflicts: u32,
    applied: u32,
    spent: u32,
    elapsed: Duration,
}

async fn burst<S: ShadowStore + 'static>(make_store: impl Fn() -> S, events: u64) -> BurstResult {
    use rand::seq::SliceRandom;
    // Lifecycle events arrive in any order (reference 1.1): start the instances shuffled.
    let mut order: Vec<u64> = (0..events).collect();
    order.shuffle(&mut rand::rng());
    let mut tasks = Vec::new();
    let started = Instant::now();
    for i in order {
        let reconciler = Reconciler::new(make_store(), "connectivity");
        tasks.push(tokio::spawn(async move {
            reconciler.handle(&event("bench-burst", i)).await
        }));
    }
    let mut result = BurstResult {
        conflicts: 0,
        applied: 0,
        spent: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        match task.await.unwrap() {
            Ok(Outcome::Applied { conflicts, .. }) => {
                result.conflicts += conflicts;
                result.applied += 1;
            }
            Ok(_) => {}
            Err(_) => result.spent += 1,
        }
    }
    result.elapsed = started.elapsed();
    result
}

fn report(label: &str, events: u64, r: &BurstResult, reported: &Value) {
    let newest = event("bench-burst", events - 1);
    let correct = reported["sessionIdentifier"] == newest["sessionIdentifier"]
        && reported["connected"] == false;
    println!(
        "burst of {events} concurrent events for one thing ({label}): {} version-conflict retries, {} writes, \
         {} invocations out of attempts (-> Lambda async retry), {:.0} ms, final state correct: {correct}",
        r.conflicts,
        r.applied,
        r.spent,
        r.elapsed.as_secs_f64() * 1000.0
    );
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (e2e_events, burst_events) = if smoke { (4, 10) } else { (200, 100) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let moto = MotoServer::start().await.expect("moto server (make setup)");
        end_to_end(&moto, e2e_events).await;

        moto.create_thing("bench-burst").await.unwrap();
        let endpoint = moto.endpoint();
        let result = burst(|| DataPlaneStore::new(client(&endpoint)), burst_events).await;
        let out = client(&endpoint)
            .get_thing_shadow()
            .thing_name("bench-burst")
            .shadow_name("connectivity")
            .send()
            .await
            .unwrap();
        let document: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        report(
            "moto data-plane API",
            burst_events,
            &result,
            &document["state"]["reported"],
        );

        let memory = Arc::new(MemoryStore::new());
        let result = burst(|| memory.clone(), burst_events).await;
        let document = memory
            .document("bench-burst", Some("connectivity"))
            .unwrap();
        report(
            "in-memory store with AWS version semantics",
            burst_events,
            &result,
            &document["state"]["reported"],
        );
        moto.stop().await;
    });
}

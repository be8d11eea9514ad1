//! Provisioning through the control-plane API (issue 12's goal: 10,000 things with certificates in under 30 s):
//! the control plane served on 127.0.0.1 over a file-backed registry (synced per change), and `CONCURRENCY`
//! clients each running a device's provisioning as the AWS CLI would (CreateThing, CreateKeysAndCertificate with
//! setAsActive, AttachPolicy, AttachThingPrincipal), over plain HTTP with the emulator's own CLI client. It
//! reports the wall time at 100, 1,000 and 10,000 things (cumulative, one registry), and the time per thing in
//! the first and last tenth of the run (flat when a change costs the size of the change).
//!
//! A client that costs nothing next to the emulator shows what the emulator can do; boto3 costs about 0.6 ms of
//! CPU per call and is measured separately (`tools/controlplane-provision-bench.py`, docs/benchmarks.md).
//!
//! `cargo bench -p iot-emulator --bench controlplane_provisioning`. `PROVISION_BENCH_THINGS=1000` changes the
//! total, `PROVISION_BENCH_CONCURRENCY` the number of clients (default 8).

use std::sync::Arc;
use std::time::{Duration, Instant};

use iot_emulator::cli::client;
use iot_emulator::controlplane::{ControlPlane, ControlPlaneSettings};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::registry::Registry;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn call(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let response = client::request(method, url, path, headers, body.as_bytes())
        .await
        .expect("the control plane answers");
    assert!(
        response.is_success(),
        "{method} {path}: {} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    response.body
}

async fn provision(url: &str, thing: &str) {
    call(url, "POST", &format!("/things/{thing}"), &[], "{}").await;
    let created: serde_json::Value = serde_json::from_slice(
        &call(
            url,
            "POST",
            "/keys-and-certificate?setAsActive=true",
            &[],
            "",
        )
        .await,
    )
    .expect("JSON");
    let arn = created["certificateArn"].as_str().expect("an ARN");
    call(
        url,
        "PUT",
        "/target-policies/bench-policy",
        &[("content-type", "application/json")],
        &serde_json::json!({ "target": arn }).to_string(),
    )
    .await;
    call(
        url,
        "PUT",
        &format!("/things/{thing}/principals"),
        &[("x-amzn-principal", arn)],
        "",
    )
    .await;
}

#[tokio::main]
async fn main() {
    let total = env_number("PROVISION_BENCH_THINGS", 10_000);
    let concurrency = env_number("PROVISION_BENCH_CONCURRENCY", 8).max(1);
    let state = tempfile::tempdir().expect("a temporary directory");
    let registry = Arc::new(Registry::open(state.path()).expect("a registry"));
    registry
        .create_policy("bench-policy", POLICY)
        .expect("the policy");
    let ca = Arc::new(EmulatorCa::generate().expect("a CA"));
    let router = ControlPlane::new(
        Arc::clone(&registry),
        ca,
        ControlPlaneSettings {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            mqtt_host: "127.0.0.1".into(),
            rules: Vec::new(),
        },
    )
    .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    println!(
        "provisioning {total} things through the control plane, {concurrency} clients, registry in {}",
        state.path().display()
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<(usize, Duration)>(1024);
    for _ in 0..concurrency {
        let next = Arc::clone(&next);
        let url = url.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return;
                }
                let before = Instant::now();
                provision(&url, &format!("bench-{index:06}")).await;
                let _ = done.send((index, before.elapsed())).await;
            }
        });
    }
    drop(done_tx);
    let mut latencies = Vec::with_capacity(total);
    let mut finished = 0usize;
    let mut marks = vec![100, 1_000, 10_000, total];
    marks.sort_unstable();
    marks.dedup();
    marks.retain(|&mark| mark <= total);
    while let Some((_, latency)) = done_rx.recv().await {
        latencies.push(latency);
        finished += 1;
        if marks.first() == Some(&finished) {
            marks.remove(0);
            let elapsed = started.elapsed();
            println!(
                "  {finished:>6} things: {:>6.2} s ({:.0} things/s)",
                elapsed.as_secs_f64(),
                finished as f64 / elapsed.as_secs_f64()
            );
        }
    }
    let tenth = (latencies.len() / 10).max(1);
    let median = |slice: &[Duration]| {
        let mut sorted = slice.to_vec();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    println!(
        "  per thing (4 calls): first tenth median {:.2} ms, last tenth median {:.2} ms",
        median(&latencies[..tenth]).as_secs_f64() * 1000.0,
        median(&latencies[latencies.len() - tenth..]).as_secs_f64() * 1000.0
    );
    server.abort();
}

//! Init time: from process start until the function asks the Runtime API for its first event.
//!
//! The Rust function is the release `disconnect-recorder` binary, including its connection
//! warm-up (one round trip to a CloudWatch Logs API on 127.0.0.1, served by moto). The peer, in the
//! same run, is the Python equivalent of a Lambda's init: start CPython, `import boto3`, build a
//! `logs` client (no network at all). Median and spread over 20 runs each.
//!
//! `cargo bench -p disconnect-recorder --bench init`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lambda_host::{FunctionConfig, FunctionProcess, RuntimeApi};
use moto_fixture::MotoServer;

const RUNS: usize = 20;

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/python3");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

async fn rust_init(endpoint: &str) -> Duration {
    let api = RuntimeApi::bind(
        "127.0.0.1:0".parse().unwrap(),
        "arn:aws:lambda:us-east-1:0:function:bench",
    )
    .await
    .unwrap();
    let config = FunctionConfig::new("disconnect-recorder")
        .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "warn");
    let started = Instant::now();
    let mut process = FunctionProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_disconnect-recorder")),
        &config,
        &api.address(),
    )
    .unwrap();
    let first_poll = api.first_poll().await.unwrap();
    process.kill().await;
    first_poll - started
}

fn python_init() -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new(python())
        .args([
            "-c",
            "import boto3; boto3.client('logs', region_name='us-east-1')",
        ])
        .status()
        .expect("python3 with boto3 (run `make setup`)");
    assert!(status.success(), "python peer failed");
    started.elapsed()
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run once as a smoke test.
    let runs = if std::env::args().any(|a| a == "--bench") {
        RUNS
    } else {
        1
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = rt.block_on(MotoServer::start()).expect("moto server");
    let endpoint = moto.endpoint();

    let mut rust = Vec::new();
    let mut py = Vec::new();
    // Interleave the two so machine noise hits both alike.
    for _ in 0..runs {
        rust.push(rt.block_on(rust_init(&endpoint)));
        py.push(python_init());
    }
    let (rmin, rmed, rmax) = summary(rust);
    let (pmin, pmed, pmax) = summary(py);
    println!("init time over {runs} runs (ms)      min     median  max");
    println!("disconnect-recorder (Rust)     {rmin:8.2} {rmed:8.2} {rmax:8.2}");
    println!("python3 + boto3 logs client    {pmin:8.2} {pmed:8.2} {pmax:8.2}");
    println!("median ratio python/rust: {:.1}x", pmed / rmed);
    rt.block_on(moto.stop());
}

//! Footprint of the agent binary: steady RSS and CPU time per 1,000 messages at 10 msg/s against mosquitto
//! (mTLS, the same setup as tests/broker.rs). Not a criterion bench: it measures separate processes.
//!
//! The peer, in the same run against the same broker, is AWS's IoT Device SDK v2 for Python doing the
//! same job (`benches/peer_awsiotsdk.py`: mTLS, Last Will, shadow subscriptions, 10 msg/s QoS 1). It
//! runs when `awsiotsdk` is installed in `.tools/venv` (`make bench` installs it).
//!
//! `FOOTPRINT_SECS=120 cargo bench -p device-agent --bench footprint --profile pi` (the profile the Pi
//! binary is built with; without `--profile pi` it measures the speed-optimized release build).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;

/// (resident KiB, utime + stime in clock ticks) of a process.
fn sample(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss_kib, ticks)
}

/// The venv's Python, when it has the AWS IoT Device SDK v2.
fn peer_python() -> Option<std::path::PathBuf> {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python3");
    let has_sdk = std::process::Command::new(&python)
        .args(["-c", "import awsiot, awscrt"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        println!(
            "peer skipped: awsiotsdk is not installed in .tools/venv (make bench installs it)"
        );
    }
    has_sdk.then_some(python)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / `cargo bench -- --list`: nothing to list or test
    }
    let Some(binary) = mosquitto_binary("footprint") else {
        return;
    };
    let seconds: u64 = std::env::var("FOOTPRINT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let device = pki.issue(THING, &[], None);
        let observer_id = pki.issue("observer", &[], None);
        let broker = Mosquitto::start(binary, &pki, dir.path());
        let observer = Observer::start(
            &pki,
            &observer_id,
            broker.port,
            "observer",
            &["data/ratchet/#", "data/peer/#"],
        )
        .await;
        let files = write_config(
            dir.path(),
            &pki,
            &device,
            broker.port,
            "",
            "[telemetry]\ntemperature_interval_secs = 0.1\n",
        );
        let agent = AgentProcess::spawn(&files, &[]);
        let pid = agent.child.id();
        let peer_identity = pki.issue("peer", &[], None);
        let mut peer = peer_python().map(|python| {
            std::process::Command::new(python)
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/benches/peer_awsiotsdk.py"
                ))
                .args(["localhost", &broker.port.to_string(), "peer"])
                .arg(&pki.ca_cert)
                .arg(&peer_identity.cert)
                .arg(&peer_identity.key)
                .spawn()
                .expect("start the awsiotsdk peer")
        });
        // Warm-up: connect, first messages, allocator settles.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (rss_start, ticks_start) = sample(pid);
        let peer_start = peer.as_ref().map(|p| sample(p.id()));
        let count_start = observer.on_topic("data/ratchet/temperature").len();
        let peer_count_start = observer.on_topic("data/peer/temperature").len();
        let started = Instant::now();
        let mut rss = Vec::new();
        let mut peer_rss = Vec::new();
        while started.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss.push(sample(pid).0);
            if let Some(p) = &peer {
                peer_rss.push(sample(p.id()).0);
            }
        }
        let (rss_end, ticks_end) = sample(pid);
        let messages = observer.on_topic("data/ratchet/temperature").len() - count_start;
        let ticks_per_sec = 100.0; // USER_HZ on Linux
        let cpu_ms = (ticks_end - ticks_start) as f64 / ticks_per_sec * 1000.0;
        rss.sort_unstable();
        if let (Some(p), Some((_, peer_ticks_start))) = (&mut peer, peer_start) {
            let (_, peer_ticks_end) = sample(p.id());
            let peer_messages = observer.on_topic("data/peer/temperature").len() - peer_count_start;
            let peer_cpu_ms = (peer_ticks_end - peer_ticks_start) as f64 / ticks_per_sec * 1000.0;
            peer_rss.sort_unstable();
            let peer_median = peer_rss[peer_rss.len() / 2];
            let peer_per_1000 = peer_cpu_ms / peer_messages.max(1) as f64 * 1000.0;
            let agent_per_1000 = cpu_ms / messages.max(1) as f64 * 1000.0;
            println!("peer (awsiotsdk, Python) over the same {seconds} s, same broker:");
            println!("  messages delivered:     {peer_messages}");
            println!(
                "  RSS median / max:       {peer_median} / {} KiB",
                peer_rss[peer_rss.len() - 1]
            );
            println!("  CPU time per 1,000 messages: {peer_per_1000:.1} ms");
            println!(
                "ratios peer/agent: RSS {:.1}x, CPU per message {:.1}x",
                peer_median as f64 / rss[rss.len() / 2] as f64,
                peer_per_1000 / agent_per_1000
            );
            let _ = p.kill();
        }
        println!("device-agent footprint over {seconds} s at 10 msg/s (after 10 s warm-up):");
        println!("  messages delivered:     {messages}");
        println!(
            "  RSS start / median / max / end: {rss_start} / {} / {} / {rss_end} KiB",
            rss[rss.len() / 2],
            rss[rss.len() - 1]
        );
        println!(
            "  CPU time (user+sys):    {cpu_ms:.0} ms total, {:.1} ms per 1,000 messages",
            cpu_ms / messages as f64 * 1000.0
        );
        let binary_size = std::fs::metadata(env!("CARGO_BIN_EXE_device-agent"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "  binary size:            {} KiB ({})",
            binary_size / 1024,
            env!("CARGO_BIN_EXE_device-agent")
        );
        let (code, _) = agent.terminate();
        println!("  exit after SIGTERM:     {code:?}");
    });
}

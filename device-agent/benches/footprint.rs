//! Footprint of the agent binary: steady RSS and CPU time per 1,000 messages at 10 msg/s against mosquitto
//! (mTLS, the same setup as tests/broker.rs). Not a criterion bench: it measures a separate process.
//!
//! `FOOTPRINT_SECS=120 cargo bench -p device-agent --bench footprint`

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
            &["data/ratchet/#"],
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
        // Warm-up: connect, first messages, allocator settles.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (rss_start, ticks_start) = sample(pid);
        let count_start = observer.on_topic("data/ratchet/temperature").len();
        let started = Instant::now();
        let mut rss = Vec::new();
        while started.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss.push(sample(pid).0);
        }
        let (rss_end, ticks_end) = sample(pid);
        let messages = observer.on_topic("data/ratchet/temperature").len() - count_start;
        let ticks_per_sec = 100.0; // USER_HZ on Linux
        let cpu_ms = (ticks_end - ticks_start) as f64 / ticks_per_sec * 1000.0;
        rss.sort_unstable();
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

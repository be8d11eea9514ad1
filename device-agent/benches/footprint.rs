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

/// A process's resident set and CPU time at one moment.
struct Sample {
    rss_kib: u64,
    /// utime + stime in clock ticks (USER_HZ = 100): includes exited threads, but 10 ms coarse.
    ticks: u64,
    /// Nanoseconds on a CPU per live thread (`/proc/PID/task/TID/schedstat`, the scheduler's own clock).
    thread_ns: std::collections::BTreeMap<u32, u64>,
}

fn sample(pid: u32) -> Sample {
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
    let mut thread_ns = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let tid = task.file_name().to_string_lossy().parse::<u32>().unwrap();
        if let Some(ns) = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            thread_ns.insert(tid, ns);
        }
    }
    Sample {
        rss_kib,
        ticks,
        thread_ns,
    }
}

/// CPU milliseconds between two samples: per-thread nanoseconds when no thread exited in between
/// (exact), else the clock-tick totals (which keep exited threads' time).
fn cpu_ms(start: &Sample, end: &Sample) -> (f64, &'static str) {
    let all_alive = start
        .thread_ns
        .keys()
        .all(|tid| end.thread_ns.contains_key(tid));
    if all_alive {
        let ns: u64 = end
            .thread_ns
            .iter()
            .map(|(tid, ns)| ns - start.thread_ns.get(tid).copied().unwrap_or(0))
            .sum();
        (ns as f64 / 1e6, "scheduler ns")
    } else {
        ((end.ticks - start.ticks) as f64 * 10.0, "clock ticks")
    }
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
        // Warm-up: connect, first messages, allocator settles; the blocking-pool thread that opened the
        // outbox has exited (tokio keeps idle ones 10 s).
        tokio::time::sleep(Duration::from_secs(15)).await;
        let agent_start = sample(pid);
        let peer_start = peer.as_ref().map(|p| sample(p.id()));
        let count_start = observer.on_topic("data/ratchet/temperature").len();
        let peer_count_start = observer.on_topic("data/peer/temperature").len();
        let started = Instant::now();
        let mut rss = Vec::new();
        let mut peer_rss = Vec::new();
        while started.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss.push(sample(pid).rss_kib);
            if let Some(p) = &peer {
                peer_rss.push(sample(p.id()).rss_kib);
            }
        }
        let agent_end = sample(pid);
        let messages = observer.on_topic("data/ratchet/temperature").len() - count_start;
        let (agent_cpu_ms, agent_clock) = cpu_ms(&agent_start, &agent_end);
        let agent_per_1000 = agent_cpu_ms / messages.max(1) as f64 * 1000.0;
        rss.sort_unstable();
        if let (Some(p), Some(peer_start)) = (&mut peer, peer_start) {
            let peer_end = sample(p.id());
            let peer_messages = observer.on_topic("data/peer/temperature").len() - peer_count_start;
            let (peer_cpu_ms, peer_clock) = cpu_ms(&peer_start, &peer_end);
            peer_rss.sort_unstable();
            let peer_median = peer_rss[peer_rss.len() / 2];
            let peer_per_1000 = peer_cpu_ms / peer_messages.max(1) as f64 * 1000.0;
            println!("peer (awsiotsdk, Python) over the same {seconds} s, same broker:");
            println!("  messages delivered:     {peer_messages}");
            println!(
                "  RSS median / max:       {peer_median} / {} KiB",
                peer_rss[peer_rss.len() - 1]
            );
            println!(
                "  CPU time per 1,000 messages: {peer_per_1000:.1} ms ({peer_cpu_ms:.1} ms total, {peer_clock})"
            );
            println!(
                "ratios peer/agent: RSS {:.1}x, CPU per message {:.1}x",
                peer_median as f64 / rss[rss.len() / 2] as f64,
                peer_per_1000 / agent_per_1000
            );
            let _ = p.kill();
        }
        println!("device-agent footprint over {seconds} s at 10 msg/s (after 15 s warm-up):");
        println!("  messages delivered:     {messages}");
        println!(
            "  RSS start / median / max / end: {} / {} / {} / {} KiB",
            agent_start.rss_kib,
            rss[rss.len() / 2],
            rss[rss.len() - 1],
            agent_end.rss_kib
        );
        println!(
            "  CPU time (user+sys):    {agent_cpu_ms:.1} ms total, {agent_per_1000:.1} ms per 1,000 messages ({agent_clock})"
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

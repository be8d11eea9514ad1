//! The registry's cost per write as it grows (issue 12): provisions 100, 1,000 and 10,000 things on a file-backed
//! registry with the sequence a device's provisioning runs (CreateThing, a certificate, AttachPolicy,
//! AttachThingPrincipal: four journaled, synced writes per thing) and reports the time per write for the first and
//! the last tenth of each run (flat when a write costs the size of the change, not of the registry), the
//! registry's resident memory at the largest size, and the time to reopen it.
//!
//! Variants: `registry` registers certificates issued before the clock starts (the registry's own cost);
//! `with keygen` uses CreateKeysAndCertificate (an ECDSA P-256 key pair and a signature per thing on top);
//! `buffered+key` is `with keygen` on a registry opened with `Durability::Buffered` (no sync per change); `in
//! memory` is `registry` without files.
//!
//! `cargo bench -p iot-emulator --bench registry_provisioning`. `REGISTRY_BENCH_SIZES=100,1000` changes the sizes;
//! `REGISTRY_BENCH_DIR` puts the state directory on another file system (default: the system temp directory).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use iot_emulator::identity::{EmulatorCa, IssuedCertificate};
use iot_emulator::registry::{AttachmentKind, CertificateStatus, Durability, Registry};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",
  "Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;
const WRITES_PER_THING: usize = 4;

/// Resident set size of this process, from /proc (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

struct Run {
    total: Duration,
    /// Every timed write, in order.
    writes: Vec<Duration>,
}

impl Run {
    /// The median and the 99th percentile of the writes of one tenth of the run (0 = first, 9 = last): medians
    /// are what a write costs; the tail shows the disk (fdatasync waits behind whatever else the disk is doing).
    fn tenth(&self, index: usize) -> (Duration, Duration) {
        let length = self.writes.len() / 10;
        let mut slice = self.writes[index * length..(index + 1) * length].to_vec();
        slice.sort_unstable();
        let at = |quantile: f64| {
            slice
                .get(((slice.len() as f64 - 1.0) * quantile).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        (at(0.5), at(0.99))
    }
}

/// Provisions `count` things; `certificate(index)` yields the certificate id of thing `index` (registering or
/// creating it, which is one of the four timed writes).
fn provision(
    registry: &Registry,
    count: usize,
    mut certificate: impl FnMut(usize) -> String,
) -> Run {
    let mut writes = Vec::with_capacity(count * WRITES_PER_THING);
    let mut timed = |write: &mut dyn FnMut()| {
        let started = Instant::now();
        write();
        writes.push(started.elapsed());
    };
    let started = Instant::now();
    for index in 0..count {
        let thing = format!("thing-{index:05}");
        let mut id = String::new();
        timed(&mut || {
            registry
                .create_thing(&thing, None, BTreeMap::new())
                .expect("create thing");
        });
        timed(&mut || id = certificate(index));
        timed(&mut || {
            registry
                .attach_policy("device", &id)
                .expect("attach policy")
        });
        timed(&mut || {
            registry
                .attach_thing_principal(&thing, &id, AttachmentKind::NonExclusiveThing)
                .expect("attach thing principal");
        });
    }
    Run {
        total: started.elapsed(),
        writes,
    }
}

fn open(dir: &Path, durability: Durability) -> Registry {
    let registry = Registry::open_with(dir, durability).expect("open registry");
    registry.put_policy_json("device", POLICY).expect("policy");
    registry
}

fn report(label: &str, count: usize, run: &Run) {
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    let (first_median, first_p99) = run.tenth(0);
    let (last_median, last_p99) = run.tenth(9);
    println!(
        "{label:<12} {count:>6} things  total {:>7.2} s ({:>7.1} µs per thing)  per write, median/p99: first tenth {:>6.1}/{:>7.1} µs, last tenth {:>6.1}/{:>7.1} µs",
        run.total.as_secs_f64(),
        micros(run.total) / count as f64,
        micros(first_median),
        micros(first_p99),
        micros(last_median),
        micros(last_p99),
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::var("REGISTRY_BENCH_SIZES")
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|size| size.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    let base = std::env::var_os("REGISTRY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let ca = EmulatorCa::generate().expect("CA");
    let largest = sizes.iter().copied().max().unwrap_or(0);

    // Issued before any clock starts, so the `registry` variant times the registry alone.
    let issue_started = Instant::now();
    let issued: Vec<IssuedCertificate> = (0..largest)
        .map(|_| ca.issue_device_certificate().expect("issue"))
        .collect();
    println!(
        "issuing {largest} certificates (P-256 keygen + signature, untimed below): {:.1} µs each",
        issue_started.elapsed().as_secs_f64() * 1e6 / largest.max(1) as f64
    );

    for &count in &sizes {
        let dir = tempfile::tempdir_in(&base).expect("state dir");
        let rss_before = rss_bytes();
        let registry = open(dir.path(), Durability::EveryChange);
        let run = provision(&registry, count, |index| {
            registry
                .register_certificate(&issued[index].certificate_pem, CertificateStatus::Active)
                .expect("register certificate")
        });
        report("registry", count, &run);
        if count == largest {
            if let (Some(before), Some(after)) = (rss_before, rss_bytes()) {
                println!(
                    "              resident memory of the registry at {count} things: {:.1} MiB ({:.0} bytes per thing with its certificate)",
                    after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
                    after.saturating_sub(before) as f64 / count as f64
                );
            }
            drop(registry);
            let journal = std::fs::metadata(dir.path().join("registry.journal"))
                .map(|metadata| metadata.len())
                .unwrap_or(0);
            let reopen_started = Instant::now();
            let reopened = Registry::open(dir.path()).expect("reopen");
            let reopen = reopen_started.elapsed();
            let snapshot = std::fs::metadata(dir.path().join("registry.json"))
                .map(|metadata| metadata.len())
                .unwrap_or(0);
            println!(
                "              reopen (replay {:.1} MiB of journal, write a {:.1} MiB snapshot): {:.2} s",
                journal as f64 / (1024.0 * 1024.0),
                snapshot as f64 / (1024.0 * 1024.0),
                reopen.as_secs_f64()
            );
            assert!(reopened.thing_exists(&format!("thing-{:05}", count - 1)));
        }
    }

    for &count in &sizes {
        let dir = tempfile::tempdir_in(&base).expect("state dir");
        let registry = open(dir.path(), Durability::EveryChange);
        let run = provision(&registry, count, |_| {
            registry
                .create_keys_and_certificate(&ca, true)
                .expect("create keys and certificate")
                .certificate_id
        });
        report("with keygen", count, &run);
    }

    // Durability::Buffered: written to the OS per change, synced at compaction and close.
    let dir = tempfile::tempdir_in(&base).expect("state dir");
    let registry = open(dir.path(), Durability::Buffered);
    let run = provision(&registry, largest, |_| {
        registry
            .create_keys_and_certificate(&ca, true)
            .expect("create keys and certificate")
            .certificate_id
    });
    report("buffered+key", largest, &run);
    drop(registry);

    let registry = Registry::in_memory();
    registry.put_policy_json("device", POLICY).expect("policy");
    let run = provision(&registry, largest, |index| {
        registry
            .register_certificate(&issued[index].certificate_pem, CertificateStatus::Active)
            .expect("register certificate")
    });
    report("in memory", largest, &run);
}

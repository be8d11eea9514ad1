//! Memory per connection with 5,000 concurrent mutual-TLS connections (each with one subscription), for the
//! emulator (`iot-emulator up` as its own process) and for mosquitto 2 with TLS, plus the time of one mTLS
//! CONNECT round trip (criterion).
//!
//! `cargo bench -p iot-emulator --bench broker_connections`. Set `BROKER_BENCH_CONNECTIONS` to change 5,000.

#[path = "../tests/broker_support/mod.rs"]
mod broker_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_support::*;
use criterion::{Criterion, criterion_group, criterion_main};
use iot_emulator::identity::EmulatorCa;
use rumqttc::mqttbytes::QoS;

const BENCH_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/bench-*"},
  {"Effect":"Allow","Action":["iot:Subscribe","iot:Receive","iot:Publish"],"Resource":[
    "arn:aws:iot:us-east-1:123456789012:topicfilter/data/${iot:ClientId}/*",
    "arn:aws:iot:us-east-1:123456789012:topic/data/${iot:ClientId}/*"]}]}"#;

struct EmulatorProcess {
    child: std::process::Child,
    port: u16,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn emulator_cli(state: &std::path::Path, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_iot-emulator"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "iot-emulator {args:?}");
}

/// `iot-emulator policy` + `provision` + `up`, as a user would run them.
fn start_emulator(state: &std::path::Path) -> (EmulatorProcess, Device) {
    let policy = state.join("bench-policy.json");
    std::fs::write(&policy, BENCH_POLICY).unwrap();
    let policy_arg = format!("bench={}", policy.display());
    emulator_cli(state, &["policy", "--policy-file", &policy_arg]);
    let out = state.join("device");
    emulator_cli(
        state,
        &[
            "provision",
            "bench-device",
            "--policy",
            "bench",
            "--out",
            &out.display().to_string(),
        ],
    );
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_iot-emulator"))
        .arg("--state-dir")
        .arg(state)
        .args(["up", "--mqtt-port", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let certificate_pem = read(iot_emulator::registry::CERTIFICATE_FILE);
    let certificate_der = iot_emulator::identity::pem_to_der(&certificate_pem).unwrap();
    let provisioned = iot_emulator::registry::ProvisionedDevice {
        thing_name: "bench-device".into(),
        certificate: iot_emulator::identity::IssuedCertificate {
            certificate_id: iot_emulator::identity::certificate_id(&certificate_der),
            certificate_pem,
            certificate_der,
            private_key_pem: read(iot_emulator::registry::PRIVATE_KEY_FILE),
            public_key_pem: read(iot_emulator::registry::PUBLIC_KEY_FILE),
        },
        policies: vec!["bench".into()],
    };
    let device = Device {
        client_id: "bench-0".into(),
        dir: out,
        provisioned,
    };
    (EmulatorProcess { child, port }, device)
}

/// Opens `count` connections (64 handshakes at a time), each subscribed to its own topic; returns them.
async fn open_connections(port: u16, device: &Device, count: usize) -> Vec<RawClient> {
    let mut clients = Vec::with_capacity(count);
    for chunk_start in (0..count).step_by(64) {
        let chunk = chunk_start..(chunk_start + 64).min(count);
        let opened = futures_util::future::join_all(chunk.map(|index| async move {
            let identity = device.with_client_id(&format!("bench-{index}"));
            let mut client = RawClient::connect_options(port, &identity, |connect| {
                connect.keep_alive = 1200;
            })
            .await;
            client
                .subscribe_ok(&format!("data/bench-{index}/cmd"), QoS::AtLeastOnce)
                .await;
            client
        }))
        .await;
        clients.extend(opened);
    }
    clients
}

fn measure(
    name: &str,
    pid: u32,
    port: u16,
    device: &Device,
    count: usize,
    runtime: &tokio::runtime::Runtime,
) {
    let idle = rss_kib(pid);
    let started = Instant::now();
    let clients = runtime.block_on(open_connections(port, device, count));
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let loaded = rss_kib(pid);
    println!(
        "{name}: {count} mTLS connections in {elapsed:?}; RSS {idle} KiB idle -> {loaded} KiB; {:.1} KiB per connection",
        (loaded.saturating_sub(idle)) as f64 / count as f64
    );
    drop(clients);
}

fn connections(c: &mut Criterion) {
    let count: usize = std::env::var("BROKER_BENCH_CONNECTIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let (emulator, device) = start_emulator(state.path());
    measure(
        "iot-emulator",
        emulator.child.id(),
        emulator.port,
        &device,
        count,
        &runtime,
    );

    let ca = EmulatorCa::load_or_create(state.path()).unwrap();
    let mosquitto = MosquittoBroker::start(&ca);
    measure(
        "mosquitto 2",
        mosquitto.child.id(),
        mosquitto.port,
        &device,
        count,
        &runtime,
    );

    let mut group = c.benchmark_group("mtls_connect");
    group.sample_size(20);
    for (name, port) in [
        ("iot-emulator", emulator.port),
        ("mosquitto 2", mosquitto.port),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let client = RawClient::connect(port, &device.with_client_id("bench-x")).await;
                    client.disconnect().await;
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, connections);
criterion_main!(benches);

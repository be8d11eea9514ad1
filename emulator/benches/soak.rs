//! Soak (issue 13): the real `iot-emulator up --template` as a child process under SOAK_SECONDS (600) of mixed
//! load, 5 % of it malformed, with one slow consumer; the emulator's own RSS (`/proc/<pid>/status`) sampled
//! every second. It must stay up, and its RSS must level off rather than grow with the run.
//!
//! Load (SOAK_DEVICES = 50 device clients over mutual TLS, certificates provisioned with the stack's device
//! policy):
//! - each device publishes telemetry every 100 ms, QoS 0 and QoS 1 in turn, and every 25th tick a shadow
//!   update over MQTT; after 20 to 100 ticks it ends the connection, half the time with DISCONNECT and half
//!   by dropping the socket (half the devices set a will, so the dropped ones publish it): lifecycle events
//!   and wills flow through the template's rules to the real functions;
//! - an HTTP client: data-plane Publish, GetThingShadow, UpdateThingShadow and CloudWatch Logs
//!   FilterLogEvents, 20 requests/s;
//! - 5 % of the device ticks and of the HTTP requests are malformed: garbage bytes for an MQTT packet, a shadow
//!   update that is not JSON, a 200 KiB payload (over the 128 KiB limit), a SUBSCRIBE with an invalid filter,
//!   an update body that is not JSON, an oversized body, an unknown Logs operation, an invalid filter pattern;
//! - one fast QoS 0 observer on `data/#` counts what is delivered; one slow consumer subscribes to `data/#` at
//!   QoS 1 and never reads: when the broker ends it (THROTTLED), a new one takes its place.
//!
//! The function binaries are taken from this profile's directory when built there, otherwise from
//! `target/debug` (they run as their own processes; only the emulator's RSS is measured).
//!
//! `cargo bench -p iot-emulator --bench soak` (SOAK_SECONDS=60 for a short run; without `--bench`, as under
//! `cargo test --benches`, a 10 s smoke run). Not part of `make test`; `make bench` includes it.

#[path = "../tests/broker_support/mod.rs"]
mod broker_support;
#[path = "../tests/template_support/mod.rs"]
mod template_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use broker_support::{ACCOUNT, Device, OBSERVER_POLICY, REGION, RawClient, Received, WAIT, will};
use futures_util::SinkExt;
use iot_emulator::cli::client;
use iot_emulator::cli::logs_tail::{LogTail, LogsClient};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::registry::Registry;
use rand::Rng;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    Connect, ConnectReturnCode, Packet, Publish, Subscribe, SubscribeFilter,
};
use serde_json::Value;
use template_support::{stack_template, stack_template_path};
use tokio::io::AsyncWriteExt;

const DEVICE_POLICY: &str = "IotPresenceDevicePolicy";
const FUNCTIONS: [&str; 2] = ["disconnect-recorder", "shadow-reconciler"];
const TICK: Duration = Duration::from_millis(100);
const HTTP_INTERVAL: Duration = Duration::from_millis(50);
const MALFORMED_SHARE: f64 = 0.05;
const OVERSIZED: usize = 200 * 1024;

#[derive(Default)]
struct Stats {
    qos0_sent: AtomicU64,
    qos1_sent: AtomicU64,
    qos1_acked: AtomicU64,
    shadow_updates: AtomicU64,
    delivered_to_observer: AtomicU64,
    connects: AtomicU64,
    clean_disconnects: AtomicU64,
    dropped_connections: AtomicU64,
    malformed_mqtt: AtomicU64,
    http_ok: AtomicU64,
    http_valid_4xx: AtomicU64,
    malformed_http: AtomicU64,
    malformed_http_accepted: AtomicU64,
    slow_consumers_ended: AtomicU64,
    /// Every failure that was not provoked, and by kind:
    errors: AtomicU64,
    connect_failed: AtomicU64,
    /// A send that failed or a QoS 1 publish without PUBACK within 5 s.
    publish_failed: AtomicU64,
    subscribe_failed: AtomicU64,
    observer_closed: AtomicU64,
    /// A 5xx or no answer from the HTTP APIs (including the slow consumer's GetConnection).
    http_failed: AtomicU64,
}

impl Stats {
    fn error(&self, kind: &AtomicU64) {
        add(kind);
        add(&self.errors);
    }
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Resident set size in KiB, or None once the process is gone.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Where `up` finds the functions: this profile's directory if both are built there, else `target/debug`.
fn functions_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile = exe.parent()?.parent()?.to_path_buf();
    let candidates = [profile.clone(), profile.parent()?.join("debug")];
    candidates
        .into_iter()
        .find(|dir| FUNCTIONS.iter().all(|name| dir.join(name).is_file()))
}

struct Endpoints {
    mqtt_port: u16,
    data_plane: String,
    logs: String,
}

async fn wait_for_endpoints(state: &Path) -> Endpoints {
    let path = state.join("endpoints.json");
    let json: Value = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(text) = std::fs::read(&path)
                && let Ok(json) = serde_json::from_slice(&text)
            {
                return json;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("`up` writes endpoints.json");
    let text = |key: &str| json[key].as_str().expect(key).to_owned();
    Endpoints {
        mqtt_port: text("mqtt")
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("endpoints.json names the MQTT port"),
        data_plane: text("dataPlane"),
        logs: text("logs"),
    }
}

async fn connect(port: u16, device: &Device, with_will: bool, stats: &Stats) -> Option<RawClient> {
    let mut connect = Connect::new(device.client_id.clone());
    connect.keep_alive = 60;
    connect.clean_session = true;
    if with_will {
        let payload = format!(
            r#"{{"thing":"{}","agentSession":"soak","connectedAt":1,"agentVersion":"soak","reason":"unexpected"}}"#,
            device.client_id
        );
        connect.last_will = Some(will(
            &format!("device/{}/lwt", device.client_id),
            &payload,
            false,
        ));
    }
    match RawClient::connect_with(port, device, connect).await {
        (Some(client), Received::Packet(Packet::ConnAck(ack)))
            if ack.code == ConnectReturnCode::Success =>
        {
            add(&stats.connects);
            Some(client)
        }
        _ => {
            stats.error(&stats.connect_failed);
            None
        }
    }
}

/// `RawClient::publish` without its panic on a closed socket: here the broker ends connections on purpose.
/// Returns whether the publish went out (and, at QoS 1, was acknowledged).
async fn publish(
    client: &mut RawClient,
    packet_id: &mut u16,
    topic: &str,
    payload: &[u8],
    qos: QoS,
) -> bool {
    let mut publish = Publish::new(topic, qos, payload.to_vec());
    if qos != QoS::AtMostOnce {
        *packet_id = packet_id.checked_add(1).unwrap_or(1);
        publish.pkid = *packet_id;
    }
    if client
        .transport
        .send(Packet::Publish(publish))
        .await
        .is_err()
    {
        return false;
    }
    qos == QoS::AtMostOnce || matches!(client.recv(WAIT).await, Received::Packet(Packet::PubAck(_)))
}

/// `RawClient::subscribe` without its panic; returns whether a SUBACK came.
async fn subscribe(client: &mut RawClient, packet_id: &mut u16, filter: &str, qos: QoS) -> bool {
    let mut subscribe = Subscribe::new_many([SubscribeFilter::new(filter.to_owned(), qos)]);
    *packet_id = packet_id.checked_add(1).unwrap_or(1);
    subscribe.pkid = *packet_id;
    if client
        .transport
        .send(Packet::Subscribe(subscribe))
        .await
        .is_err()
    {
        return false;
    }
    matches!(client.recv(WAIT).await, Received::Packet(Packet::SubAck(_)))
}

/// One malformed MQTT input; returns whether the connection can go on.
async fn malformed_mqtt(
    client: &mut RawClient,
    packet_id: &mut u16,
    thing: &str,
    kind: u32,
) -> bool {
    match kind % 4 {
        0 => {
            // Packet type 15 (reserved in 3.1.1) with a remaining length that never ends.
            let garbage = [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02];
            let socket = client.transport.get_mut();
            let _ = socket.write_all(&garbage).await;
            let _ = socket.flush().await;
            false
        }
        1 => {
            let topic = format!("$aws/things/{thing}/shadow/update");
            publish(
                client,
                packet_id,
                &topic,
                b"{\"state\": {not json",
                QoS::AtLeastOnce,
            )
            .await
        }
        2 => {
            let topic = format!("data/{thing}/oversized");
            publish(
                client,
                packet_id,
                &topic,
                &vec![b'x'; OVERSIZED],
                QoS::AtMostOnce,
            )
            .await;
            false
        }
        _ => {
            let filter = format!("data/{thing}/#/invalid");
            matches!(
                client
                    .subscribe(&[(filter.as_str(), QoS::AtLeastOnce)])
                    .await,
                Received::Packet(Packet::SubAck(_))
            )
        }
    }
}

async fn run_device(device: Device, port: u16, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let thing = device.client_id.clone();
    let with_will = thing.ends_with(['0', '2', '4', '6', '8']);
    let mut tick: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(mut client) = connect(port, &device, with_will, &stats).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let session_ticks = rand::rng().random_range(20..100);
        let mut packet_id = 0;
        let mut alive = true;
        for _ in 0..session_ticks {
            tokio::time::sleep(TICK).await;
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tick += 1;
            let roll: f64 = rand::rng().random();
            if roll < MALFORMED_SHARE {
                add(&stats.malformed_mqtt);
                let kind = rand::rng().random();
                if !malformed_mqtt(&mut client, &mut packet_id, &thing, kind).await {
                    alive = false;
                    break;
                }
                continue;
            }
            let (topic, payload, qos) = if tick.is_multiple_of(25) {
                add(&stats.shadow_updates);
                let motor = if tick.is_multiple_of(50) { "ON" } else { "OFF" };
                (
                    format!("$aws/things/{thing}/shadow/update"),
                    format!(r#"{{"state":{{"reported":{{"MOTOR":"{motor}"}}}}}}"#),
                    QoS::AtLeastOnce,
                )
            } else {
                let qos = if tick.is_multiple_of(2) {
                    add(&stats.qos0_sent);
                    QoS::AtMostOnce
                } else {
                    add(&stats.qos1_sent);
                    QoS::AtLeastOnce
                };
                (
                    format!("data/{thing}/temperature"),
                    format!(r#"{{"thing":"{thing}","temp":21.5,"seq":{tick}}}"#),
                    qos,
                )
            };
            if !publish(&mut client, &mut packet_id, &topic, payload.as_bytes(), qos).await {
                stats.error(&stats.publish_failed);
                alive = false;
                break;
            }
            if qos == QoS::AtLeastOnce && topic.starts_with("data/") {
                add(&stats.qos1_acked);
            }
        }
        if alive && rand::rng().random_bool(0.5) {
            add(&stats.clean_disconnects);
            client.disconnect().await;
        } else {
            add(&stats.dropped_connections);
            client.drop_connection();
        }
    }
}

/// A QoS 0 subscriber on `data/#` that keeps up: what the broker delivers.
async fn run_observer(device: Device, port: u16, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut client) = connect(port, &device, false, &stats).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        if !subscribe(&mut client, &mut 0, "data/#", QoS::AtMostOnce).await {
            stats.error(&stats.subscribe_failed);
            continue;
        }
        // It only receives, so it must ping: the broker ends a connection that sends nothing for 1.5 x the
        // keep-alive (the first 600 s run counted those 6 closes as errors).
        let mut last_ping = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if last_ping.elapsed() > Duration::from_secs(20) {
                last_ping = Instant::now();
                if client.transport.send(Packet::PingReq).await.is_err() {
                    stats.error(&stats.observer_closed);
                    break;
                }
            }
            match client.recv(Duration::from_secs(1)).await {
                Received::Packet(Packet::Publish(_)) => add(&stats.delivered_to_observer),
                Received::Packet(_) | Received::Timeout => {}
                Received::Closed => {
                    stats.error(&stats.observer_closed);
                    break;
                }
            }
        }
    }
}

/// A QoS 1 subscriber on `data/#` that never reads; replaced when the broker ends it.
async fn run_slow_consumer(
    device: Device,
    port: u16,
    data_plane: String,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let path = format!("/connections/{}", device.client_id);
    while !stop.load(Ordering::Relaxed) {
        let Some(mut client) = connect(port, &device, false, &stats).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        if !subscribe(&mut client, &mut 0, "data/#", QoS::AtLeastOnce).await {
            stats.error(&stats.subscribe_failed);
            continue;
        }
        // From here on it reads nothing: no PUBACK, no PINGREQ.
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let connected = match client::request("GET", &data_plane, &path, &[], b"").await {
                Ok(response) if response.is_success() => {
                    serde_json::from_slice::<Value>(&response.body)
                        .ok()
                        .and_then(|json| json["connected"].as_bool())
                        .unwrap_or(true)
                }
                Ok(_) => false,
                Err(_) => {
                    stats.error(&stats.http_failed);
                    true
                }
            };
            if !connected {
                add(&stats.slow_consumers_ended);
                break;
            }
        }
        drop(client);
    }
}

/// Data-plane and Logs API requests, 5 % of them malformed.
async fn run_http(
    endpoints: (String, String),
    things: Vec<String>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let (data_plane, logs) = endpoints;
    let json = [("content-type", "application/json")];
    let logs_headers = |operation: &'static str| {
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", operation),
        ]
    };
    let filter = br#"{"logGroupName":"/iot/device-disconnects","limit":20}"#;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(HTTP_INTERVAL).await;
        n += 1;
        let thing = &things[(n as usize) % things.len()];
        let shadow = format!("/things/{thing}/shadow");
        let publish = format!("/topics/data/{thing}/http?qos=1");
        let roll: f64 = rand::rng().random();
        let malformed = roll < MALFORMED_SHARE;
        let oversized = vec![b'x'; OVERSIZED];
        let response = if malformed {
            add(&stats.malformed_http);
            let kind = rand::rng().random_range(0..4);
            match kind {
                0 => client::request("POST", &data_plane, &shadow, &json, b"{\"state\":").await,
                1 => client::request("POST", &data_plane, &publish, &json, &oversized).await,
                2 => {
                    let headers = logs_headers("Logs_20140328.NoSuchOperation");
                    client::request("POST", &logs, "/", &headers, b"{}").await
                }
                _ => {
                    let headers = logs_headers("Logs_20140328.FilterLogEvents");
                    let body = br#"{"logGroupName":"/iot/device-disconnects","filterPattern":"{ $.reason = "}"#;
                    client::request("POST", &logs, "/", &headers, body).await
                }
            }
        } else {
            match n % 4 {
                0 => {
                    let body = format!(r#"{{"thing":"{thing}","via":"http","n":{n}}}"#);
                    client::request("POST", &data_plane, &publish, &json, body.as_bytes()).await
                }
                1 => client::request("GET", &data_plane, &shadow, &[], b"").await,
                2 => {
                    let motor = if n % 8 == 2 { "ON" } else { "OFF" };
                    let body = format!(r#"{{"state":{{"desired":{{"MOTOR":"{motor}"}}}}}}"#);
                    client::request("POST", &data_plane, &shadow, &json, body.as_bytes()).await
                }
                _ => {
                    let headers = logs_headers("Logs_20140328.FilterLogEvents");
                    client::request("POST", &logs, "/", &headers, filter).await
                }
            }
        };
        match response {
            Ok(response) if response.status >= 500 => stats.error(&stats.http_failed),
            Ok(response) if malformed && response.is_success() => {
                add(&stats.malformed_http_accepted)
            }
            Ok(_) if malformed => {}
            Ok(response) if response.is_success() => add(&stats.http_ok),
            // A shadow not created yet (404) or a log group before its first record: valid, not an error.
            Ok(_) => add(&stats.http_valid_4xx),
            Err(_) => stats.error(&stats.http_failed),
        }
    }
}

/// Every log group's `storedBytes` (DescribeLogGroups): what the run left in the emulator's Logs store, which
/// keeps events as CloudWatch Logs does (no retention unless set), so it grows with the run by design.
async fn stored_log_bytes(logs: &str) -> Vec<(String, u64)> {
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "Logs_20140328.DescribeLogGroups"),
    ];
    let Ok(response) = client::request("POST", logs, "/", &headers, b"{}").await else {
        return Vec::new();
    };
    let json: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    json["logGroups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|group| {
                    (
                        group["logGroupName"].as_str().unwrap_or("?").to_owned(),
                        group["storedBytes"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; without it (`cargo test --benches`) a 10 s smoke run.
    let full = std::env::args().any(|arg| arg == "--bench");
    let seconds = env_number("SOAK_SECONDS", if full { 600 } else { 10 });
    let device_count = env_number("SOAK_DEVICES", 50) as usize;
    let state = tempfile::tempdir().unwrap();

    // Provision before `up` takes the state directory: the stack's policies, the devices, the observers.
    let registry = Registry::open(state.path()).unwrap();
    registry
        .load_policies_from_template(&stack_template(), ACCOUNT, REGION)
        .unwrap();
    registry
        .put_policy_json("soak-observer", OBSERVER_POLICY)
        .unwrap();
    let ca = EmulatorCa::load_or_create(state.path()).unwrap();
    let provision = |thing: &str, policy: &str| {
        Device::provision(&registry, &ca, state.path(), thing, &[policy.to_owned()])
    };
    let devices: Vec<Device> = (0..device_count)
        .map(|n| provision(&format!("soak-{n:03}"), DEVICE_POLICY))
        .collect();
    let observer = provision("observer-fast", "soak-observer");
    let slow = provision("observer-slow", "soak-observer");
    drop(registry);

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_iot-emulator"));
    command
        .arg("--state-dir")
        .arg(state.path())
        .arg("up")
        .arg("--template")
        .arg(stack_template_path())
        .arg("--free-ports")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.path().join("emulator.log")).unwrap())
        .kill_on_drop(true);
    let functions = functions_dir();
    match &functions {
        Some(dir) => {
            command.arg("--functions-dir").arg(dir);
        }
        None => eprintln!(
            "note: the function binaries are not built (cargo build -p disconnect-recorder -p shadow-reconciler); \
             their invocations fail and are retried"
        ),
    }
    let mut emulator = command.spawn().unwrap();
    let pid = emulator.id().unwrap();
    let endpoints = wait_for_endpoints(state.path()).await;
    let started_rss = rss_kib(pid).unwrap_or(0);
    println!(
        "soak: {seconds} s, {device_count} devices, {:.0} % malformed, one slow consumer; emulator pid {pid} \
         (RSS {:.1} MiB at start), functions from {}",
        MALFORMED_SHARE * 100.0,
        mib(started_rss),
        functions.map_or("nowhere".into(), |dir| dir.display().to_string()),
    );

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let things: Vec<String> = devices.iter().map(|d| d.client_id.clone()).collect();
    let mut tasks = Vec::new();
    for device in devices {
        tasks.push(tokio::spawn(run_device(
            device,
            endpoints.mqtt_port,
            Arc::clone(&stats),
            Arc::clone(&stop),
        )));
    }
    tasks.push(tokio::spawn(run_observer(
        observer,
        endpoints.mqtt_port,
        Arc::clone(&stats),
        Arc::clone(&stop),
    )));
    tasks.push(tokio::spawn(run_slow_consumer(
        slow,
        endpoints.mqtt_port,
        endpoints.data_plane.clone(),
        Arc::clone(&stats),
        Arc::clone(&stop),
    )));
    tasks.push(tokio::spawn(run_http(
        (endpoints.data_plane.clone(), endpoints.logs.clone()),
        things,
        Arc::clone(&stats),
        Arc::clone(&stop),
    )));

    // RSS once a second; the emulator must stay up throughout.
    let started = Instant::now();
    let mut samples: Vec<u64> = Vec::with_capacity(seconds as usize);
    let mut stayed_up = true;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    for second in 1..=seconds {
        ticker.tick().await;
        if emulator.try_wait().ok().flatten().is_some() {
            stayed_up = false;
            break;
        }
        match rss_kib(pid) {
            Some(rss) => samples.push(rss),
            None => {
                stayed_up = false;
                break;
            }
        }
        if second % 60 == 0 {
            println!(
                "  {second:>4} s  RSS {:>6.1} MiB  sent {} + {}  delivered {}  errors {}",
                mib(*samples.last().unwrap_or(&0)),
                get(&stats.qos0_sent),
                get(&stats.qos1_sent),
                get(&stats.delivered_to_observer),
                get(&stats.errors)
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    stayed_up &= emulator.try_wait().ok().flatten().is_none();
    // What the functions made of the lifecycle events and wills: the disconnect records.
    let records = LogTail::new("/iot/device-disconnects", None)
        .read_new(&LogsClient::new(endpoints.logs.clone()))
        .await
        .unwrap_or_default();
    let wills = records
        .iter()
        .filter(|event| event.message.contains("LAST_WILL"))
        .count();
    let log_groups = stored_log_bytes(&endpoints.logs).await;

    let mut sorted = samples.clone();
    sorted.sort_unstable();
    let (min, median, peak) = if sorted.is_empty() {
        (0, 0, 0)
    } else {
        (
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
        )
    };
    // The first minute is the warm-up (TLS sessions, the functions' first invocations, the stores); growth is
    // what comes after it. A run shorter than a minute compares with its first sample.
    let at_one_minute = samples.get(59).or(samples.first()).copied().unwrap_or(0);
    let at_end = samples.last().copied().unwrap_or(0);
    let sent = get(&stats.qos0_sent) + get(&stats.qos1_sent);
    println!(
        "RSS: min {:.1} MiB, median {:.1} MiB, peak {:.1} MiB; at 1 min {:.1} MiB, at the end {:.1} MiB ({:+.1} MiB)",
        mib(min),
        mib(median),
        mib(peak),
        mib(at_one_minute),
        mib(at_end),
        mib(at_end) - mib(at_one_minute)
    );
    println!(
        "MQTT: {} QoS 0 + {} QoS 1 telemetry sent ({} PUBACKs), {} shadow updates, {} delivered to the QoS 0 observer; \
         {} connects, {} clean disconnects, {} dropped connections; {} slow consumers ended by the broker",
        get(&stats.qos0_sent),
        get(&stats.qos1_sent),
        get(&stats.qos1_acked),
        get(&stats.shadow_updates),
        get(&stats.delivered_to_observer),
        get(&stats.connects),
        get(&stats.clean_disconnects),
        get(&stats.dropped_connections),
        get(&stats.slow_consumers_ended)
    );
    println!(
        "disconnect records written by disconnect-recorder: {} ({wills} from wills)",
        records.len()
    );
    let stored: u64 = log_groups.iter().map(|(_, bytes)| bytes).sum();
    println!(
        "Logs store at the end: {:.1} MiB of event messages in {} groups ({})",
        stored as f64 / (1024.0 * 1024.0),
        log_groups.len(),
        log_groups
            .iter()
            .map(|(name, bytes)| format!("{name} {:.1} MiB", *bytes as f64 / (1024.0 * 1024.0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "HTTP: {} answered 2xx, {} valid requests answered 4xx (shadow or log group not there yet); malformed: {} MQTT, {} HTTP ({} of them accepted)",
        get(&stats.http_ok),
        get(&stats.http_valid_4xx),
        get(&stats.malformed_mqtt),
        get(&stats.malformed_http),
        get(&stats.malformed_http_accepted)
    );
    println!(
        "errors: {} connect failed, {} publish failed (no PUBACK in 5 s or send failed), {} subscribe failed, \
         {} observer connection closed, {} HTTP 5xx or no answer",
        get(&stats.connect_failed),
        get(&stats.publish_failed),
        get(&stats.subscribe_failed),
        get(&stats.observer_closed),
        get(&stats.http_failed)
    );
    println!(
        "soak summary: {:.0} s, emulator {}, peak RSS {:.1} MiB, growth 1 min -> end {:+.1} MiB, {sent} messages sent, \
         {} delivered, {} errors",
        elapsed.as_secs_f64(),
        if stayed_up { "stayed up" } else { "DIED" },
        mib(peak),
        mib(at_end) - mib(at_one_minute),
        get(&stats.delivered_to_observer),
        get(&stats.errors)
    );
    // SIGTERM: `up` stops cleanly.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(10), emulator.wait()).await;
    if !stayed_up {
        eprintln!(
            "the emulator died; its log: {}",
            std::fs::read_to_string(state.path().join("emulator.log")).unwrap_or_default()
        );
        std::process::exit(1);
    }
}

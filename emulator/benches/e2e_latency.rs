//! End-to-end latency of the presence pipeline (architecture section 3) against the whole emulator running
//! in this process (mTLS broker, rules from the synthesized template, shadow service, data-plane and
//! CloudWatch Logs HTTP APIs) with the **real** `disconnect-recorder` and `shadow-reconciler` binaries:
//!
//! 1. a killed connection (socket dropped without DISCONNECT) -> its will record and its lifecycle
//!    `CONNECTION_LOST` record readable with GetLogEvents (aws-sdk-cloudwatchlogs over HTTP);
//! 2. UpdateThingShadow with `desired.MOTOR` (aws-sdk-iotdataplane) -> a device client in this bench that
//!    answers the delta like the agent does -> `reported.MOTOR` visible with GetThingShadow;
//! 3. a burst of simultaneous kills: every disconnect recorded exactly once and every `connectivity` shadow
//!    `connected=false` for the right session, and how long until the last one is in place.
//!
//! The function binaries must be in the same profile directory as this bench (`$CARGO_TARGET_DIR/release`):
//! `cargo build --release -p disconnect-recorder -p shadow-reconciler`, then
//! `cargo bench -p iot-emulator --bench e2e_latency`. Without `--bench` (as under `cargo test --benches`) a
//! smoke version with a few trials runs. Sizes: `E2E_KILL_TRIALS` (200), `E2E_SHADOW_TRIALS` (100),
//! `E2E_BURST_DEVICES` (1000).

#[path = "../tests/broker_support/mod.rs"]
mod broker_support;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_support::{Device, RawClient, test_config, will};
use futures_util::{SinkExt, StreamExt};
use iot_emulator::app::template::StackTemplate;
use iot_emulator::app::{EmulatorConfig, FunctionBinaries, RunningEmulator};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::logs::GetLogEventsRequest;
use iot_emulator::registry::{self, Registry};
use iot_emulator::shadow::ShadowId;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, PubAck, Publish};
use serde_json::{Value, json};
use shadow_doc::ShadowName;

const TEMPLATE: &str = include_str!("../tests/fixtures/IotPresence.template.json");
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const RECORDS: &str = "/iot/device-disconnects";
const FUNCTIONS: [&str; 2] = ["disconnect-recorder", "shadow-reconciler"];
/// Sleep between two polls of the latency trials; the measured mean poll period is reported as resolution.
const TIGHT_POLL: Duration = Duration::from_millis(1);
/// Longest wait for any single outcome before it counts as missing.
const GIVE_UP: Duration = Duration::from_secs(30);

struct Sizes {
    kill_trials: usize,
    shadow_trials: usize,
    burst_devices: usize,
    /// How long to keep watching for late duplicates after the last burst record.
    late_wait: Duration,
}

impl Sizes {
    fn from_args() -> Sizes {
        let full = std::env::args().any(|arg| arg == "--bench");
        let size = |name: &str, full_default: usize, smoke: usize| {
            if !full {
                return smoke;
            }
            std::env::var(name)
                .ok()
                .and_then(|value| value.parse().ok())
                .unwrap_or(full_default)
        };
        Sizes {
            kill_trials: size("E2E_KILL_TRIALS", 200, 3),
            shadow_trials: size("E2E_SHADOW_TRIALS", 100, 3),
            burst_devices: size("E2E_BURST_DEVICES", 1000, 10),
            late_wait: Duration::from_millis(if full { 3000 } else { 300 }),
        }
    }
}

/// The emulator as `iot-emulator up` runs it, with an in-memory registry so that provisioning a thousand
/// devices does not rewrite the registry file a thousand times (setup cost only, not on the measured path).
struct Bench {
    emulator: RunningEmulator,
    registry: Arc<Registry>,
    ca: EmulatorCa,
    state: tempfile::TempDir,
    policies: Vec<String>,
    logs: aws_sdk_cloudwatchlogs::Client,
    data: aws_sdk_iotdataplane::Client,
}

/// `$CARGO_TARGET_DIR/<profile>`: benches run from `<profile>/deps/`, cargo puts binaries in `<profile>/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

impl Bench {
    async fn start() -> Bench {
        let binaries = FunctionBinaries {
            default_dir: profile_dir(),
            overrides: Default::default(),
        };
        for function in FUNCTIONS {
            assert!(
                binaries.path(function).is_file(),
                "{} is missing: build it first with the same CARGO_TARGET_DIR and profile \
                 (`cargo build --release -p disconnect-recorder -p shadow-reconciler` for `cargo bench`)",
                binaries.path(function).display()
            );
        }
        let state = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::in_memory());
        registry
            .load_policies_from_template(TEMPLATE, ACCOUNT, REGION)
            .unwrap();
        let policies = registry.policy_names();
        let ca = EmulatorCa::load_or_create(state.path()).unwrap();
        let stack = StackTemplate::parse(TEMPLATE, REGION, ACCOUNT).unwrap();
        let mut config = EmulatorConfig::local(test_config(), stack);
        config.binaries = binaries;
        config.state_dir = Some(state.path().join("emulator"));
        let emulator = RunningEmulator::start(config, Arc::clone(&registry), &ca)
            .await
            .unwrap();
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::Config::builder()
                .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
                .http_client(lambda_init::https_client())
                .region(aws_sdk_cloudwatchlogs::config::Region::new(REGION))
                .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
                    "bench", "bench", None, None, "bench",
                ))
                .endpoint_url(emulator.logs_url())
                .build(),
        );
        let data = aws_sdk_iotdataplane::Client::from_conf(
            aws_sdk_iotdataplane::Config::builder()
                .behavior_version(aws_sdk_iotdataplane::config::BehaviorVersion::latest())
                .http_client(lambda_init::https_client())
                .region(aws_sdk_iotdataplane::config::Region::new(REGION))
                .credentials_provider(aws_sdk_iotdataplane::config::Credentials::new(
                    "bench", "bench", None, None, "bench",
                ))
                .endpoint_url(emulator.data_plane_url())
                .build(),
        );
        Bench {
            emulator,
            registry,
            ca,
            state,
            policies,
            logs,
            data,
        }
    }

    fn port(&self) -> u16 {
        self.emulator.mqtt_addr().port()
    }

    /// `iot-emulator provision <thing>` with the template's device policy.
    fn device(&self, thing: &str) -> Device {
        let provisioned =
            registry::provision_thing(&self.registry, &self.ca, thing, &self.policies).unwrap();
        let dir = self.state.path().join("devices").join(thing);
        registry::write_device_files(&dir, &provisioned, self.ca.root_pem()).unwrap();
        Device {
            client_id: thing.to_owned(),
            dir,
            provisioned,
        }
    }

    /// A connection with the contract's will (`device/{thing}/lwt`, QoS 1, not retained).
    async fn connect_with_will(&self, device: &Device, agent_session: String) -> RawClient {
        let thing = device.client_id.clone();
        let payload = json!({"thing": thing, "agentSession": agent_session,
            "connectedAt": 1_700_000_000_000_i64, "agentVersion": "e2e-bench", "reason": "unexpected"})
        .to_string();
        RawClient::connect_options(self.port(), device, |connect| {
            connect.last_will = Some(will(&format!("device/{thing}/lwt"), &payload, false));
        })
        .await
    }

    /// The stream's first page through GetLogEvents over HTTP (a stream that does not exist yet is empty).
    async fn sdk_records(&self, thing: &str) -> Vec<Value> {
        let Ok(page) = self
            .logs
            .get_log_events()
            .log_group_name(RECORDS)
            .log_stream_name(thing)
            .start_from_head(true)
            .send()
            .await
        else {
            return Vec::new();
        };
        page.events()
            .iter()
            .filter_map(|event| serde_json::from_str(event.message().unwrap_or_default()).ok())
            .collect()
    }

    /// Every event of a stream straight from the LogsStore (the same store the HTTP API serves), all pages.
    fn store_events(&self, group: &str, stream: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = GetLogEventsRequest {
                log_group_name: Some(group.to_owned()),
                log_stream_name: stream.to_owned(),
                start_from_head: Some(true),
                next_token: token.clone(),
                ..Default::default()
            };
            let Ok(page) = self.emulator.logs().get_log_events(&request) else {
                return events;
            };
            let empty = page.events.is_empty();
            events.extend(
                page.events
                    .iter()
                    .filter_map(|event| serde_json::from_str::<Value>(&event.message).ok()),
            );
            if empty || token.as_deref() == Some(page.next_forward_token.as_str()) {
                return events;
            }
            token = Some(page.next_forward_token);
        }
    }

    /// `state.reported` of a shadow straight from the shadow service (no HTTP), `None` while it is missing.
    fn reported(&self, thing: &str, shadow: ShadowName) -> Option<Value> {
        let id = ShadowId::new(thing, shadow).unwrap();
        let document = serde_json::to_value(self.emulator.shadows().get(&id).ok()?).unwrap();
        Some(document["state"]["reported"].clone())
    }

    fn connectivity(&self, thing: &str) -> Option<Value> {
        self.reported(thing, ShadowName::Named("connectivity".to_owned()))
    }

    /// Waits until the connect event went through shadow-reconciler; returns its `sessionIdentifier`.
    async fn wait_connected(&self, thing: &str) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < GIVE_UP {
            if let Some(reported) = self.connectivity(thing)
                && reported["connected"] == true
            {
                return reported["sessionIdentifier"].as_str().map(str::to_owned);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }
}

fn source_of(record: &Value) -> &str {
    record["source"].as_str().unwrap_or("?")
}

/// Latency samples in milliseconds.
#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, elapsed: Duration) {
        self.0.push(elapsed.as_secs_f64() * 1e3);
    }

    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1]
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<44} n={:<4} p50={:>7.2} ms  p99={:>7.2} ms  min={:>7.2} ms  max={:>7.2} ms",
            self.0.len(),
            self.percentile(50.0),
            self.percentile(99.0),
            self.percentile(0.0),
            self.percentile(100.0)
        )
    }
}

fn mean_ms(total: Duration, count: u64) -> f64 {
    total.as_secs_f64() * 1e3 / count.max(1) as f64
}

/// Measurement 1: kill -> will record + CONNECTION_LOST record readable with GetLogEvents (SDK over HTTP).
async fn kill_to_records(bench: &Bench, trials: usize) {
    let mut both = Samples::default();
    let mut will_only = Samples::default();
    let mut lifecycle_only = Samples::default();
    let (mut polls, mut polling) = (0_u64, Duration::ZERO);
    let mut problems = Vec::new();
    for trial in 0..trials {
        let thing = format!("kill-{trial}");
        let device = bench.device(&thing);
        let session = format!("kill-session-{trial}");
        let client = bench.connect_with_will(&device, session.clone()).await;
        if bench.wait_connected(&thing).await.is_none() {
            problems.push(format!("{thing}: connectivity never showed connected=true"));
        }
        // Let the connect event's invocations finish so that the trial measures an idle pipeline.
        tokio::time::sleep(Duration::from_millis(20)).await;

        let start = Instant::now();
        client.drop_connection();
        let (mut will_at, mut lifecycle_at) = (None, None);
        loop {
            let records = bench.sdk_records(&thing).await;
            polls += 1;
            for record in &records {
                match source_of(record) {
                    "will" => {
                        will_at.get_or_insert(start.elapsed());
                        if record["reason"] != "LAST_WILL"
                            || record["agentSession"] != session.as_str()
                        {
                            problems.push(format!("{thing}: unexpected will record {record}"));
                        }
                    }
                    "lifecycle" => {
                        lifecycle_at.get_or_insert(start.elapsed());
                        if record["reason"] != "CONNECTION_LOST" {
                            problems.push(format!("{thing}: unexpected lifecycle record {record}"));
                        }
                    }
                    other => problems.push(format!("{thing}: record with source {other}")),
                }
            }
            if let (Some(will_at), Some(lifecycle_at)) = (will_at, lifecycle_at) {
                polling += start.elapsed();
                both.push(will_at.max(lifecycle_at));
                will_only.push(will_at);
                lifecycle_only.push(lifecycle_at);
                if records.len() != 2 {
                    problems.push(format!("{thing}: {} records, expected 2", records.len()));
                }
                break;
            }
            if start.elapsed() > GIVE_UP {
                polling += start.elapsed();
                problems.push(format!(
                    "{thing}: gave up after {GIVE_UP:?} (will: {will_at:?}, lifecycle: {lifecycle_at:?})"
                ));
                break;
            }
            tokio::time::sleep(TIGHT_POLL).await;
        }
    }
    println!("[1] kill (socket dropped, no DISCONNECT) -> disconnect records via GetLogEvents");
    println!(
        "    reader: aws-sdk-cloudwatchlogs GetLogEvents over HTTP against the emulator's Logs API"
    );
    println!(
        "    resolution: one poll every {:.2} ms on average (sleep {TIGHT_POLL:?} + one GetLogEvents call)",
        mean_ms(polling, polls)
    );
    println!("    {}", both.line("kill -> both records readable"));
    println!("    {}", will_only.line("kill -> will record readable"));
    println!(
        "    {}",
        lifecycle_only.line("kill -> CONNECTION_LOST record readable")
    );
    print_problems(&problems);
}

/// The device side of the classic shadow as the agent does it: act on each delta, then report.
async fn run_device(mut client: RawClient, thing: String) {
    let update = format!("$aws/things/{thing}/shadow/update");
    let mut next_packet_id: u16 = 100;
    while let Some(Ok(packet)) = client.transport.next().await {
        let Packet::Publish(publish) = packet else {
            continue;
        };
        if publish.qos == QoS::AtLeastOnce
            && client
                .transport
                .send(Packet::PubAck(PubAck::new(publish.pkid)))
                .await
                .is_err()
        {
            return;
        }
        let Ok(delta) = serde_json::from_slice::<Value>(&publish.payload) else {
            continue;
        };
        let Some(motor) = delta["state"]["MOTOR"].as_str() else {
            continue;
        };
        let report = json!({"state": {"reported": {"MOTOR": motor}}}).to_string();
        let mut publish = Publish::new(&update, QoS::AtLeastOnce, report.into_bytes());
        next_packet_id = next_packet_id.checked_add(1).unwrap_or(1);
        publish.pkid = next_packet_id;
        if client
            .transport
            .send(Packet::Publish(publish))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Measurement 2: UpdateThingShadow desired.MOTOR -> delta -> the device reports -> GetThingShadow shows
/// reported.MOTOR.
/// Run with the device socket as rumqttc leaves it (Nagle on: it never sets TCP_NODELAY) and with
/// TCP_NODELAY, because a PUBACK followed by a small PUBLISH waits for the broker's delayed ACK under Nagle.
async fn desired_to_reported(bench: &Bench, trials: usize, nodelay: bool) {
    let thing = format!("motor-{}", if nodelay { "nodelay" } else { "nagle" });
    let device = bench.device(&thing);
    let mut client = RawClient::connect(bench.port(), &device).await;
    client
        .transport
        .get_ref()
        .get_ref()
        .0
        .set_nodelay(nodelay)
        .unwrap();
    client
        .subscribe_ok(
            &format!("$aws/things/{thing}/shadow/update/delta"),
            QoS::AtLeastOnce,
        )
        .await;
    let device_task = tokio::spawn(run_device(client, thing.clone()));

    let mut reported_samples = Samples::default();
    let mut cleared_samples = Samples::default();
    let (mut polls, mut polling) = (0_u64, Duration::ZERO);
    let mut problems = Vec::new();
    for trial in 0..trials {
        let motor = if trial % 2 == 0 { "ON" } else { "OFF" };
        let body = json!({"state": {"desired": {"MOTOR": motor}}}).to_string();
        let start = Instant::now();
        let sent = bench
            .data
            .update_thing_shadow()
            .thing_name(&thing)
            .payload(aws_sdk_iotdataplane::primitives::Blob::new(
                body.into_bytes(),
            ))
            .send()
            .await;
        if let Err(error) = sent {
            problems.push(format!(
                "trial {trial}: UpdateThingShadow failed: {error:?}"
            ));
            continue;
        }
        let mut seen = false;
        while start.elapsed() < GIVE_UP {
            let shadow = bench
                .data
                .get_thing_shadow()
                .thing_name(&thing)
                .send()
                .await
                .ok()
                .and_then(|response| {
                    serde_json::from_slice::<Value>(response.payload()?.as_ref()).ok()
                });
            polls += 1;
            if shadow.is_some_and(|shadow| shadow["state"]["reported"]["MOTOR"] == motor) {
                reported_samples.push(start.elapsed());
                polling += start.elapsed();
                seen = true;
                break;
            }
            tokio::time::sleep(TIGHT_POLL).await;
        }
        if !seen {
            problems.push(format!(
                "trial {trial}: reported.MOTOR={motor} never visible"
            ));
            continue;
        }
        // Desired hygiene (shadow-reconciler on update/documents): wait for desired.MOTOR to be cleared so
        // that trials do not overlap; reported for information.
        let mut cleared = false;
        while start.elapsed() < GIVE_UP {
            if let Ok(document) = bench
                .emulator
                .shadows()
                .get(&ShadowId::new(thing.as_str(), ShadowName::Classic).unwrap())
                && serde_json::to_value(&document).unwrap()["state"]["desired"]
                    .get("MOTOR")
                    .is_none()
            {
                cleared_samples.push(start.elapsed());
                cleared = true;
                break;
            }
            tokio::time::sleep(TIGHT_POLL).await;
        }
        if !cleared {
            problems.push(format!("trial {trial}: desired.MOTOR never cleared"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    device_task.abort();
    println!(
        "[2] UpdateThingShadow desired.MOTOR -> device (bench MQTT client, reports on delta) -> GetThingShadow; device TCP_NODELAY={nodelay}"
    );
    println!(
        "    device: a raw MQTT/mTLS client in this bench subscribed to update/delta, reporting on each delta"
    );
    println!(
        "    resolution: one GetThingShadow poll every {:.2} ms on average (sleep {TIGHT_POLL:?} + one call)",
        mean_ms(polling, polls)
    );
    println!(
        "    {}",
        reported_samples.line("update desired -> reported.MOTOR visible")
    );
    println!(
        "    {}",
        cleared_samples.line("update desired -> desired.MOTOR cleared")
    );
    print_problems(&problems);
}

/// Measurement 3: N devices with wills, all sockets dropped at once: every disconnect recorded exactly once,
/// every connectivity shadow right, and the time until the last of each.
async fn burst(bench: &Bench, devices: usize, late_wait: Duration) {
    let setup = Instant::now();
    let things: Vec<String> = (0..devices).map(|i| format!("burst-{i}")).collect();
    let identities: Vec<Device> = things.iter().map(|thing| bench.device(thing)).collect();
    let provisioned_in = setup.elapsed();
    let connecting = Instant::now();
    let clients: Vec<RawClient> = futures_util::stream::iter(identities.iter().enumerate())
        .map(|(i, device)| bench.connect_with_will(device, format!("burst-session-{i}")))
        .buffered(16)
        .collect()
        .await;
    let connected_in = connecting.elapsed();

    // Every connect event through shadow-reconciler; remember each connection's session.
    let settling = Instant::now();
    let mut sessions: Vec<Option<String>> = vec![None; devices];
    while sessions.iter().any(Option::is_none) && settling.elapsed() < Duration::from_secs(120) {
        for (i, thing) in things.iter().enumerate() {
            if sessions[i].is_none()
                && let Some(reported) = bench.connectivity(thing)
                && reported["connected"] == true
            {
                sessions[i] = reported["sessionIdentifier"].as_str().map(str::to_owned);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled_in = settling.elapsed();
    let unsettled = sessions.iter().filter(|session| session.is_none()).count();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    drop(clients);
    let dropped_in = start.elapsed();
    let mut recorded = vec![false; devices];
    let mut disconnected = vec![false; devices];
    let (mut record_latency, mut shadow_latency) = (Samples::default(), Samples::default());
    let (mut last_record, mut last_shadow) = (None, None);
    let mut rounds = 0_u64;
    while (last_record.is_none() || last_shadow.is_none()) && start.elapsed() < GIVE_UP * 4 {
        for (i, thing) in things.iter().enumerate() {
            if !recorded[i] {
                let records = bench.store_events(RECORDS, thing);
                recorded[i] = ["will", "lifecycle"]
                    .iter()
                    .all(|source| records.iter().any(|record| source_of(record) == *source));
                if recorded[i] {
                    record_latency.push(start.elapsed());
                }
            }
            if !disconnected[i] {
                disconnected[i] = bench
                    .connectivity(thing)
                    .is_some_and(|reported| reported["connected"] == false);
                if disconnected[i] {
                    shadow_latency.push(start.elapsed());
                }
            }
        }
        rounds += 1;
        if last_record.is_none() && recorded.iter().all(|done| *done) {
            last_record = Some(start.elapsed());
        }
        if last_shadow.is_none() && disconnected.iter().all(|done| *done) {
            last_shadow = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let poll_period = mean_ms(start.elapsed(), rounds);

    // Late duplicates would arrive after the last record: wait, then count everything.
    tokio::time::sleep(late_wait).await;
    let mut problems = Vec::new();
    let mut per_source: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new(); // events, distinct ids, things
    let (mut missing_will, mut missing_lifecycle, mut extra_signals) = (0, 0, 0);
    let (mut shadow_wrong, mut shadow_session_wrong) = (0, 0);
    for (i, thing) in things.iter().enumerate() {
        let records = bench.store_events(RECORDS, thing);
        for source in ["will", "lifecycle"] {
            let of_source: Vec<&Value> = records
                .iter()
                .filter(|record| source_of(record) == source)
                .collect();
            let ids: HashSet<&str> = of_source
                .iter()
                .filter_map(|record| record["recordId"].as_str())
                .collect();
            let entry = per_source.entry(source).or_default();
            entry.0 += of_source.len();
            entry.1 += ids.len();
            entry.2 += usize::from(!of_source.is_empty());
            match (source, ids.len()) {
                ("will", 0) => missing_will += 1,
                ("lifecycle", 0) => missing_lifecycle += 1,
                (_, 1) => {}
                _ => {
                    extra_signals += 1;
                    problems.push(format!(
                        "{thing}: {} distinct {source} recordIds",
                        ids.len()
                    ));
                }
            }
        }
        if let Some(will) = records.iter().find(|record| source_of(record) == "will")
            && will["agentSession"] != format!("burst-session-{i}")
        {
            problems.push(format!("{thing}: will record of another session: {will}"));
        }
        match bench.connectivity(thing) {
            Some(reported) if reported["connected"] == false => {
                if sessions[i].is_none()
                    || reported["sessionIdentifier"].as_str() != sessions[i].as_deref()
                    || reported["disconnectReason"] != "CONNECTION_LOST"
                {
                    shadow_session_wrong += 1;
                    if problems.len() < 20 {
                        problems.push(format!(
                            "{thing}: connectivity {reported} (connect session {:?})",
                            sessions[i]
                        ));
                    }
                }
            }
            other => {
                shadow_wrong += 1;
                if problems.len() < 20 {
                    problems.push(format!("{thing}: connectivity {other:?}"));
                }
            }
        }
    }
    let failures: usize = FUNCTIONS
        .iter()
        .map(|function| {
            bench
                .store_events(iot_emulator::lambda::FAILURE_LOG_GROUP, function)
                .len()
        })
        .sum();
    let rule_errors: usize = ["DisconnectWill", "PresenceEvents", "ShadowDocuments"]
        .iter()
        .map(|rule| bench.store_events("/iot/rule-errors", rule).len())
        .sum();

    println!("[3] burst: {devices} mTLS connections with wills, all sockets dropped at once");
    println!(
        "    setup: provisioned in {:.1} s, connected in {:.1} s (16 handshakes in flight), connect events settled in {:.1} s ({unsettled} never settled)",
        provisioned_in.as_secs_f64(),
        connected_in.as_secs_f64(),
        settled_in.as_secs_f64()
    );
    println!(
        "    reader: LogsStore and ShadowService in-process (no HTTP), one pass over the pending things every {poll_period:.1} ms; dropping all sockets took {:.2} ms",
        dropped_in.as_secs_f64() * 1e3
    );
    let show = |at: Option<Duration>| {
        at.map_or("never (gave up)".to_owned(), |at| {
            format!("{:.0} ms", at.as_secs_f64() * 1e3)
        })
    };
    println!(
        "    drop -> last disconnect record in place: {}",
        show(last_record)
    );
    println!(
        "    drop -> last connectivity shadow connected=false: {}",
        show(last_shadow)
    );
    println!(
        "    {}",
        record_latency.line("per device: drop -> both records in place")
    );
    println!(
        "    {}",
        shadow_latency.line("per device: drop -> shadow connected=false")
    );
    println!("    counted {late_wait:?} after the last record (late duplicates would show here):");
    for (source, (events, distinct, things_with)) in &per_source {
        println!(
            "    source={source:<9} events={events:<5} distinct recordIds={distinct:<5} duplicates={:<4} things with a record={things_with}/{devices}",
            events - distinct
        );
    }
    println!(
        "    missing: will={missing_will} lifecycle={missing_lifecycle}; things with >1 distinct id per source: {extra_signals}"
    );
    println!(
        "    connectivity shadows: {} connected=false with the connect's session and CONNECTION_LOST, {shadow_wrong} not disconnected, {shadow_session_wrong} wrong session/reason",
        devices - shadow_wrong - shadow_session_wrong
    );
    println!(
        "    function failure records: {failures}, rule error records: {rule_errors}, cold starts: disconnect-recorder={:?} shadow-reconciler={:?}",
        bench.emulator.lambda().cold_starts("disconnect-recorder"),
        bench.emulator.lambda().cold_starts("shadow-reconciler")
    );
    print_problems(&problems);
}

fn print_problems(problems: &[String]) {
    if problems.is_empty() {
        println!("    problems: none");
        return;
    }
    println!("    problems: {}", problems.len());
    for problem in problems.iter().take(20) {
        println!("      - {problem}");
    }
}

fn main() {
    let sizes = Sizes::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = Bench::start().await;
        println!(
            "e2e_latency: full emulator in-process, real function binaries from {}",
            profile_dir().display()
        );
        kill_to_records(&bench, sizes.kill_trials).await;
        desired_to_reported(&bench, sizes.shadow_trials, false).await;
        desired_to_reported(&bench, sizes.shadow_trials, true).await;
        burst(&bench, sizes.burst_devices, sizes.late_wait).await;
        bench.emulator.shutdown().await;
    });
}

//! End-to-end tests against mosquitto 2 (mTLS, per-client ACL). Each test starts and stops its own broker on
//! 127.0.0.1 with a free port and a temp dir. Without `mosquitto` they print `SKIPPED: mosquitto not found`
//! to the real stderr and return (or fail, with REQUIRE_TEST_TOOLS=1, as CI runs them).

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use device_agent::actuator::{MotorState, SimulatedMotor};
use device_agent::config::{AgentConfig, CliOverrides, OverflowPolicy};
use device_agent::outbox::Outbox;
use device_agent::shutdown::shutdown_channel;
use support::*;

const TEMPERATURE: &str = "data/ratchet/temperature";
const VIBRATION: &str = "data/ratchet/vibration";
const WILL: &str = "device/ratchet/lwt";

/// Outage length for the replay tests; the issue asks for 30 s. `AGENT_TEST_OUTAGE_SECS` shortens it.
fn outage() -> Duration {
    let secs = std::env::var("AGENT_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

struct World {
    _dir: tempfile::TempDir,
    pki: Pki,
    broker: Mosquitto,
    device: Identity,
    observer_id: Identity,
}

fn world(test: &str) -> Option<World> {
    let binary = mosquitto_binary(test)?;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let device = pki.issue(THING, &[], None);
    let observer_id = pki.issue("observer", &[], None);
    let broker = Mosquitto::start(binary, &pki, dir.path());
    Some(World {
        _dir: dir,
        pki,
        broker,
        device,
        observer_id,
    })
}

impl World {
    fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    async fn observer(&self) -> Observer {
        Observer::start(
            &self.pki,
            &self.observer_id,
            self.broker.port,
            "observer",
            &["data/ratchet/#", WILL],
        )
        .await
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_arrives_and_sigterm_sends_no_will() {
    let Some(w) = world("telemetry_arrives_and_sigterm_sends_no_will") else {
        return;
    };
    let observer = w.observer().await;
    let files = write_config(
        w.dir(),
        &w.pki,
        &w.device,
        w.broker.port,
        "",
        "[telemetry]\ntemperature_interval_secs = 0.2\n",
    );
    let agent = AgentProcess::spawn(&files, &["--log-json"]);
    let readings = observer
        .wait_for(TEMPERATURE, Duration::from_secs(20), |m| m.len() >= 3)
        .await;
    let first = &readings[0].payload;
    assert_eq!(first["thing"], "ratchet");
    assert_eq!(first["unit"], "C");
    assert!(first["temp"].is_f64(), "{first}");
    assert!(
        first["ts"].as_u64().unwrap() > 1_700_000_000_000,
        "ts is epoch milliseconds: {first}"
    );
    assert!(
        observer.on_topic(VIBRATION).is_empty(),
        "no vibration while the motor is OFF"
    );

    let (code, log) = agent.terminate();
    assert_eq!(code, Some(0), "{log}");
    let events = json_log_events(&log);
    assert!(
        last_event_fields(
            &events,
            "sent DISCONNECT; the broker discards the Last Will"
        )
        .is_some(),
        "{log}"
    );
    // Online, PUBACKs come long before `outbox.sync_interval_ms`: readings are not flushed to the disk.
    let stopped =
        last_event_fields(&events, "stopped").unwrap_or_else(|| panic!("no stop event: {log}"));
    let count = |key: &str| -> u64 {
        stopped[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {stopped}"))
    };
    let (acknowledged, flushes) = (count("acknowledged"), count("flushes"));
    assert!(acknowledged >= 3, "{log}");
    assert!(
        flushes * 4 <= acknowledged,
        "{flushes} flushes for {acknowledged} acknowledged readings: {log}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        observer.on_topic(WILL).is_empty(),
        "a clean shutdown must not trigger the Last Will"
    );
    let outbox = Outbox::open(&files.outbox, 10, OverflowPolicy::DropOldest).unwrap();
    assert_eq!(outbox.len(), 0, "SIGTERM flushes the outbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_makes_the_broker_send_the_will() {
    let Some(w) = world("kill_9_makes_the_broker_send_the_will") else {
        return;
    };
    let observer = w.observer().await;
    let files = write_config(
        w.dir(),
        &w.pki,
        &w.device,
        w.broker.port,
        "",
        "[telemetry]\ntemperature_interval_secs = 0.2\n",
    );
    let started = now_ms();
    let agent = AgentProcess::spawn(&files, &[]);
    observer
        .wait_for(TEMPERATURE, Duration::from_secs(20), |m| !m.is_empty())
        .await;
    agent.kill_9();
    let wills = observer
        .wait_for(WILL, Duration::from_secs(10), |m| !m.is_empty())
        .await;
    let will = &wills[0].payload;
    assert_eq!(will["thing"], "ratchet");
    assert_eq!(will["reason"], "unexpected");
    assert_eq!(will["agentVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        will["agentSession"].as_str().unwrap().len(),
        36,
        "a UUID: {will}"
    );
    let connected_at = will["connectedAt"].as_u64().unwrap();
    assert!(
        (started..=now_ms()).contains(&connected_at),
        "connectedAt {connected_at} not in this run"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(observer.on_topic(WILL).len(), 1, "exactly one will");
}

/// Wait until the observer has every seq the outbox ever assigned, then check order.
async fn assert_everything_delivered(observer: &Observer, files: &AgentFiles) -> u64 {
    let outbox = Outbox::open(&files.outbox, 10, OverflowPolicy::DropOldest).unwrap();
    assert_eq!(outbox.len(), 0, "the outbox drained before shutdown");
    assert_eq!(
        outbox.recovery().skipped_seqs,
        0,
        "same boot: seq numbers continue without a gap"
    );
    let last = outbox.next_seq() - 1;
    drop(outbox);
    let messages = observer
        .wait_for(TEMPERATURE, Duration::from_secs(30), |m| {
            seqs(m)
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u64
                >= last
        })
        .await;
    assert_complete_and_ordered(&seqs(&messages), last);
    last
}

/// Keep publishing at 10 msg/s through a broker outage; wait until the replay has caught up with live data.
async fn wait_for_catch_up(observer: &Observer, since: Instant) {
    observer
        .wait_for(TEMPERATURE, Duration::from_secs(60), |m| {
            m.iter().filter(|r| r.at > since).count() >= 10 && {
                // the newest message is fresh (ts within 2 s): the backlog is behind us
                m.last()
                    .and_then(|r| r.payload["ts"].as_u64())
                    .is_some_and(|ts| now_ms().saturating_sub(ts) < 2000)
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_loses_nothing_and_keeps_order() {
    let Some(mut w) = world("broker_outage_loses_nothing_and_keeps_order") else {
        return;
    };
    let observer = w.observer().await;
    // A clean session, so after the outage the broker has forgotten our in-flight publishes: the outbox alone
    // must bring them back, in order.
    let files = write_config(
        w.dir(),
        &w.pki,
        &w.device,
        w.broker.port,
        "persistent_session = false",
        "[telemetry]\ntemperature_interval_secs = 0.1\n",
    );
    let agent = AgentProcess::spawn(&files, &["--log-json"]);
    observer
        .wait_for(TEMPERATURE, Duration::from_secs(20), |m| m.len() >= 20)
        .await;
    w.broker.stop();
    tokio::time::sleep(outage()).await;
    w.broker.resume();
    let resumed = Instant::now();
    wait_for_catch_up(&observer, resumed).await;
    let (code, log) = agent.terminate();
    assert_eq!(code, Some(0), "{log}");
    // Each wait before a reconnect is announced with its length (issue 18).
    let events = json_log_events(&log);
    let announced = last_event_fields(&events, "next connect attempt")
        .and_then(|fields| fields["retry_in_ms"].as_u64());
    assert!(
        announced.is_some_and(|ms| ms > 0),
        "no announced retry delay in:\n{log}"
    );
    let last = assert_everything_delivered(&observer, &files).await;
    let expected_min = outage().as_secs() * 10;
    assert!(
        last >= expected_min,
        "only {last} messages for a {}s outage at 10 msg/s",
        outage().as_secs()
    );
    eprintln!(
        "outage {:?}: {last} messages, all delivered in order",
        outage()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_with_agent_killed_and_restarted_loses_nothing() {
    let Some(mut w) = world("broker_outage_with_agent_killed_and_restarted_loses_nothing") else {
        return;
    };
    let observer = w.observer().await;
    let files = write_config(
        w.dir(),
        &w.pki,
        &w.device,
        w.broker.port,
        "",
        "[telemetry]\ntemperature_interval_secs = 0.1\n",
    );
    let agent = AgentProcess::spawn(&files, &[]);
    observer
        .wait_for(TEMPERATURE, Duration::from_secs(20), |m| m.len() >= 20)
        .await;
    w.broker.stop();
    tokio::time::sleep(outage() / 2).await;
    agent.kill_9();
    let agent = AgentProcess::spawn(&files, &["--log-json"]);
    tokio::time::sleep(outage() / 2).await;
    w.broker.resume();
    wait_for_catch_up(&observer, Instant::now()).await;
    let (code, log) = agent.terminate();
    assert_eq!(code, Some(0), "{log}");
    // The restarted agent found the killed one's readings in the outbox and said how many.
    assert!(
        json_log_events(&log)
            .iter()
            .any(|event| event["fields"]["stored_messages"].is_u64()),
        "{log}"
    );
    let last = assert_everything_delivered(&observer, &files).await;
    eprintln!(
        "outage {:?} with kill -9 + restart: {last} messages, all delivered in order",
        outage()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_sync_acts_before_reporting_online_offline_and_on_conflicts() {
    let Some(mut w) = world("shadow_sync_acts_before_reporting_online_offline_and_on_conflicts")
    else {
        return;
    };
    let observer = w.observer().await;
    let motor = SimulatedMotor::new(Duration::from_millis(300));
    let watcher = motor.clone();
    let shadow = FakeShadow::start(&w.pki, &w.observer_id, w.broker.port, move || {
        watcher.state().as_str().to_string()
    })
    .await;
    let files = write_config(
        w.dir(),
        &w.pki,
        &w.device,
        w.broker.port,
        "",
        "[telemetry]\ntemperature_interval_secs = 1\nvibration_interval_secs = 0.2\n",
    );
    let config = AgentConfig::load(&files.config, &CliOverrides::default()).unwrap();
    let (trigger, shutdown) = shutdown_channel();
    let agent = tokio::spawn(device_agent::agent::run_agent(
        config,
        motor.clone(),
        shutdown,
    ));

    // No shadow yet: get -> 404 -> the agent reports the hardware (OFF), creating it.
    shadow.wait_reported("OFF", Duration::from_secs(20)).await;

    // Desired ON while connected.
    shadow.set_desired("ON", true);
    shadow.wait_reported("ON", Duration::from_secs(20)).await;
    assert_eq!(motor.state(), MotorState::On);
    observer
        .wait_for(VIBRATION, Duration::from_secs(10), |m| m.len() >= 2)
        .await;
    let vibration = &observer.on_topic(VIBRATION)[0].payload;
    assert_eq!(vibration["thing"], "ratchet");
    assert!(
        vibration["vibration"].is_f64() && vibration["ts"].is_u64(),
        "{vibration}"
    );

    // Desired OFF: the motor stops and so does vibration telemetry.
    shadow.set_desired("OFF", true);
    shadow.wait_reported("OFF", Duration::from_secs(20)).await;
    assert_eq!(motor.state(), MotorState::Off);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_off = observer.on_topic(VIBRATION).len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        observer.on_topic(VIBRATION).len(),
        after_off,
        "vibration only while the motor is ON"
    );

    // Desired ON while the device is offline: applied after reconnect via get.
    w.broker.stop();
    shadow.set_desired("ON", false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        motor.state(),
        MotorState::Off,
        "nothing can arrive while offline"
    );
    w.broker.resume();
    shadow.wait_reported("ON", Duration::from_secs(40)).await;
    assert_eq!(motor.state(), MotorState::On);

    // A rejected report (409) makes the agent read the shadow again and report again.
    let gets_before = shadow.state.lock().unwrap().gets;
    shadow.state.lock().unwrap().reject_next = vec![409];
    shadow.set_desired("OFF", true);
    shadow.wait_reported("OFF", Duration::from_secs(30)).await;
    {
        let s = shadow.state.lock().unwrap();
        assert!(s.rejected_sent >= 1);
        assert!(s.gets > gets_before, "409 -> get again");
    }

    // A failed actuation is never reported; the next request is acted on.
    motor.fail_next_set();
    shadow.set_desired("ON", true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        shadow.reported_motor().as_deref(),
        Some("OFF"),
        "must not report a state it did not reach"
    );
    shadow.set_desired("ON", true);
    shadow.wait_reported("ON", Duration::from_secs(20)).await;

    let violations = shadow.state.lock().unwrap().violations.clone();
    assert!(
        violations.is_empty(),
        "reports ahead of the actuator: {violations:?}"
    );

    trigger.trigger();
    let summary = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(summary.drain.left_in_outbox, 0);
}

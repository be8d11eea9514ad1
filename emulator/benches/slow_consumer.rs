//! Memory under a slow consumer (issue 13): a QoS 1 subscriber on `data/#` that stops reading and never
//! acknowledges, while 4,000 messages of 100 kB are published to it. Reports this process's peak RSS growth
//! (the broker runs in-process; the subscriber's unread bytes sit in kernel socket buffers) and whether the
//! consumer was disconnected, with the broker's bound (`Limits::max_pending_outbound`, 1,000) and, in the same run,
//! with the bound lifted to 1,000,000 (how the broker behaved before the bound).
//!
//! `cargo bench -p iot-emulator --bench slow_consumer`

#[path = "../tests/broker_support/mod.rs"]
mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use iot_emulator::broker::{Origin, Qos};
use rumqttc::mqttbytes::QoS;

const MESSAGES: usize = 4_000;
const PAYLOAD_BYTES: usize = 100 * 1024;

async fn run(label: &str, max_pending_outbound: usize) {
    let mut config = test_config();
    config.limits.max_pending_outbound = max_pending_outbound;
    let broker = TestBroker::start_with(config).await;
    let slow = broker.observer("observer-slow");
    let mut client = RawClient::connect(broker.port(), &slow).await;
    client.subscribe_ok("data/#", QoS::AtLeastOnce).await;
    let pid = std::process::id();
    let before = rss_kib(pid);
    let mut peak = before;
    let started = Instant::now();
    for n in 0..MESSAGES {
        broker
            .broker()
            .publish_internal(
                &format!("data/flood/{n}"),
                // A buffer of its own per message, as messages from devices arrive.
                vec![b'x'; PAYLOAD_BYTES],
                Qos::AtLeastOnce,
                false,
                Origin::Broker,
            )
            .expect("publish");
        if n % 100 == 0 {
            tokio::task::yield_now().await;
            peak = peak.max(rss_kib(pid));
        }
    }
    // Let the sessions catch up with what was queued, sampling as they do.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(rss_kib(pid));
    }
    let (dropped, disconnected) = broker.broker().slow_consumer_counts();
    println!(
        "{label:<34} peak RSS +{:>6.1} MiB over {:.0} MiB published; consumer disconnected: {}; QoS 0 dropped: {dropped}; {:.2} s",
        peak.saturating_sub(before) as f64 / 1024.0,
        (MESSAGES * PAYLOAD_BYTES) as f64 / (1024.0 * 1024.0),
        disconnected > 0,
        started.elapsed().as_secs_f64()
    );
    drop(client);
    broker.stop().await;
}

#[tokio::main]
async fn main() {
    println!(
        "{MESSAGES} QoS 1 messages of {} kB to a subscriber that stops reading and never acknowledges",
        PAYLOAD_BYTES / 1024
    );
    run("bounded (max_pending_outbound 1,000)", 1_000).await;
    run("bound lifted (1,000,000)", 1_000_000).await;
}

//! QoS 1 fan-in throughput with policy checks, against mosquitto 2 with TLS and an ACL, and the latency from a
//! killed connection to its Last Will and its `disconnected` event.
//!
//! `cargo bench -p iot-emulator --bench broker_throughput` (see docs/emulator.md for numbers).
//!
//! Fan-in: 8 publishers (device certificates, device policy: Publish checked on every message) each send 250
//! QoS 1 messages pipelined to `data/{thing}/t`; one subscriber on `data/+/t` (observer policy: Receive checked on
//! every delivery) acknowledges each. One iteration = 2,000 messages published, acknowledged and delivered.

#[path = "../tests/broker_support/mod.rs"]
mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, PubAck, Publish};

const PUBLISHERS: usize = 8;
const MESSAGES_PER_PUBLISHER: usize = 250;
const PAYLOAD: &[u8] = br#"{"thing":"bench","ts":1764000000000,"temp":48.3,"unit":"C"}"#;

struct FanIn {
    publishers: Vec<(String, RawClient)>,
    subscriber: RawClient,
}

async fn connect_fan_in(port: u16, devices: &[Device], observer: &Device) -> FanIn {
    let mut subscriber = RawClient::connect(port, observer).await;
    subscriber.subscribe_ok("data/+/t", QoS::AtLeastOnce).await;
    let mut publishers = Vec::new();
    for device in devices {
        publishers.push((
            format!("data/{}/t", device.client_id),
            RawClient::connect(port, device).await,
        ));
    }
    FanIn {
        publishers,
        subscriber,
    }
}

async fn publish_all(topic: &str, client: &mut RawClient) {
    for index in 0..MESSAGES_PER_PUBLISHER {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, PAYLOAD.to_vec());
        publish.pkid = u16::try_from(index + 1).unwrap();
        client
            .transport
            .feed(Packet::Publish(publish))
            .await
            .unwrap();
    }
    client.transport.flush().await.unwrap();
    let mut acknowledged = 0;
    while acknowledged < MESSAGES_PER_PUBLISHER {
        match client.transport.next().await {
            Some(Ok(Packet::PubAck(_))) => acknowledged += 1,
            Some(Ok(_)) => {}
            other => panic!("publisher connection ended: {other:?}"),
        }
    }
}

async fn receive_all(subscriber: &mut RawClient, expected: usize) {
    let mut received = 0;
    while received < expected {
        match tokio::time::timeout(Duration::from_secs(30), subscriber.transport.next()).await {
            Ok(Some(Ok(Packet::Publish(publish)))) => {
                received += 1;
                subscriber
                    .transport
                    .send(Packet::PubAck(PubAck::new(publish.pkid)))
                    .await
                    .unwrap();
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("subscriber stalled after {received} messages: {other:?}"),
        }
    }
}

async fn run_fan_in(fan_in: &mut FanIn, iterations: u64) -> Duration {
    let expected = PUBLISHERS * MESSAGES_PER_PUBLISHER;
    let start = Instant::now();
    for _ in 0..iterations {
        let publishing = futures_util::future::join_all(
            fan_in
                .publishers
                .iter_mut()
                .map(|(topic, client)| publish_all(topic, client)),
        );
        let receiving = receive_all(&mut fan_in.subscriber, expected);
        tokio::join!(publishing, receiving);
    }
    start.elapsed()
}

fn fan_in(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime.block_on(TestBroker::start());
    let devices: Vec<Device> = (0..PUBLISHERS)
        .map(|index| broker.device(&format!("bench-{index}")))
        .collect();
    let observer = broker.observer("observer-bench");
    let mosquitto = MosquittoBroker::start(&broker.ca);

    let mut group = c.benchmark_group("qos1_fan_in_8x250");
    group.throughput(Throughput::Elements(
        (PUBLISHERS * MESSAGES_PER_PUBLISHER) as u64,
    ));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    let mut emulator_clients = runtime.block_on(connect_fan_in(broker.port(), &devices, &observer));
    group.bench_function("iot-emulator (policy checks)", |b| {
        b.iter_custom(|iterations| runtime.block_on(run_fan_in(&mut emulator_clients, iterations)))
    });
    let mut mosquitto_clients =
        runtime.block_on(connect_fan_in(mosquitto.port, &devices, &observer));
    group.bench_function("mosquitto 2 (TLS + ACL)", |b| {
        b.iter_custom(|iterations| runtime.block_on(run_fan_in(&mut mosquitto_clients, iterations)))
    });
    group.finish();
    drop(emulator_clients);
    drop(mosquitto_clients);
    runtime.block_on(broker.stop());
}

/// Drop a connection without DISCONNECT and time the will (to an MQTT subscriber) and the `disconnected` event.
fn will_latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime.block_on(TestBroker::start());
    let device = broker.device("victim");
    let observer = broker.observer("observer-will");
    let mut watcher = runtime.block_on(async {
        let mut watcher = RawClient::connect(broker.port(), &observer).await;
        watcher.subscribe_ok("device/+/lwt", QoS::AtLeastOnce).await;
        watcher
    });
    let mut disconnects = broker
        .broker()
        .subscribe_internal("$aws/events/presence/disconnected/+")
        .unwrap();

    let mut will_samples = Vec::new();
    let mut event_samples = Vec::new();
    let mut sample = |will_samples: &mut Vec<Duration>, event_samples: &mut Vec<Duration>| {
        runtime.block_on(async {
            let client = RawClient::connect_options(broker.port(), &device, |connect| {
                connect.last_will = Some(will("device/victim/lwt", "gone", false));
            })
            .await;
            let killed_at = Instant::now();
            client.drop_connection();
            let mut will_at = None;
            let mut event_at = None;
            while will_at.is_none() || event_at.is_none() {
                tokio::select! {
                    publish = watcher.next_publish(Duration::from_secs(5)), if will_at.is_none() => {
                        publish.expect("will");
                        will_at = Some(killed_at.elapsed());
                    }
                    event = disconnects.recv(), if event_at.is_none() => {
                        event.expect("disconnected event");
                        event_at = Some(killed_at.elapsed());
                    }
                }
            }
            let (will, event) = (will_at.unwrap(), event_at.unwrap());
            will_samples.push(will);
            event_samples.push(event);
            will
        })
    };
    let mut group = c.benchmark_group("kill_to_will");
    group.sample_size(20);
    group.bench_function("drop connection -> will delivered", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| sample(&mut will_samples, &mut event_samples))
                .sum()
        })
    });
    group.finish();
    for _ in 0..200 {
        sample(&mut will_samples, &mut event_samples);
    }
    let percentile = |samples: &mut Vec<Duration>, p: f64| {
        samples.sort();
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[index]
    };
    println!(
        "kill -> will: p50 {:?}, p99 {:?}; kill -> disconnected event: p50 {:?}, p99 {:?} ({} samples)",
        percentile(&mut will_samples, 0.50),
        percentile(&mut will_samples, 0.99),
        percentile(&mut event_samples, 0.50),
        percentile(&mut event_samples, 0.99),
        will_samples.len()
    );
    runtime.block_on(broker.stop());
}

criterion_group!(benches, fan_in, will_latency);
criterion_main!(benches);

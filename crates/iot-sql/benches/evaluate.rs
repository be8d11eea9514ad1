//! Evaluations per second of the `DisconnectWill` rule (architecture section 3) on a Last Will payload:
//! the rules-engine work the emulator does for every unexpected device disconnect.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iot_sql::{DeterministicContext, Message, Rule, SqlVersion};

const DISCONNECT_WILL: &str = "SELECT *, topic(2) AS thing, clientid() AS clientId, timestamp() AS receivedAt FROM 'device/+/lwt'";

const WILL_PAYLOAD: &[u8] = br#"{"thing":"ratchet","agentSession":"4f7c2a9e-1b3d-4c5e-8f90-a1b2c3d4e5f6","connectedAt":1764140000000,"agentVersion":"0.1.0","reason":"unexpected"}"#;

fn disconnect_will(c: &mut Criterion) {
    let rule = Rule::parse(DISCONNECT_WILL, SqlVersion::V2016_03_23)
        .expect("the DisconnectWill rule parses");
    let message = Message::mqtt(
        "device/ratchet/lwt",
        WILL_PAYLOAD,
        "ratchet",
        1_764_140_123_456,
    );
    let mut context = DeterministicContext::default();

    let mut group = c.benchmark_group("rules_sql");
    group.throughput(Throughput::Elements(1));
    group.bench_function("evaluate_disconnect_will", |b| {
        b.iter(|| rule.evaluate(black_box(&message), &mut context))
    });
    group.bench_function("evaluate_non_matching_topic", |b| {
        let other = Message::mqtt("data/ratchet/temperature", WILL_PAYLOAD, "ratchet", 0);
        b.iter(|| rule.evaluate(black_box(&other), &mut context))
    });
    group.bench_function("parse_disconnect_will", |b| {
        b.iter(|| Rule::parse(black_box(DISCONNECT_WILL), SqlVersion::V2016_03_23))
    });
    group.finish();
}

criterion_group!(benches, disconnect_will);
criterion_main!(benches);

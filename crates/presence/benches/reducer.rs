//! Reducer throughput over realistic deliveries: the same true histories as the convergence tests (takeovers, every
//! disconnect reason, counter resets, ±2 min timestamp jitter), shuffled and with duplicates.
//!
//! Run: `cargo bench -p presence -- --warm-up-time 1 --measurement-time 3`

#[allow(dead_code)]
#[path = "../tests/support/history.rs"]
mod history;

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use presence::{Connectivity, Observation, Reducer};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// One client with `connections` connections; returns its events in true order and a shuffled delivery with
/// about one duplicate per two events.
fn one_client(
    runner: &mut TestRunner,
    client_id: &str,
    connections: usize,
) -> (Vec<Observation>, Vec<Observation>) {
    let mut spec = history::client(1)
        .new_tree(runner)
        .expect("client strategy")
        .current();
    spec.client_id = client_id.to_owned();
    spec.connections = vec(history::connection(), connections)
        .new_tree(runner)
        .expect("connection strategy")
        .current();
    let in_order = spec.history().events;
    let mut delivered = in_order.clone();
    delivered.extend(in_order.iter().step_by(2).cloned());
    (in_order, delivered)
}

fn shuffled(runner: &mut TestRunner, events: Vec<Observation>) -> Vec<Observation> {
    Just(events)
        .prop_shuffle()
        .new_tree(runner)
        .expect("shuffle strategy")
        .current()
}

fn reducer_throughput(c: &mut Criterion) {
    let mut runner = TestRunner::deterministic();
    let reducer = Reducer::default();

    let (in_order, delivered) = one_client(&mut runner, "ratchet", 1_000);
    let delivered = shuffled(&mut runner, delivered);

    let mut group = c.benchmark_group("reducer");
    group.throughput(Throughput::Elements(in_order.len() as u64));
    group.bench_function("one_client_in_order", |b| {
        b.iter(|| reducer.replay(None, black_box(&in_order)))
    });
    group.throughput(Throughput::Elements(delivered.len() as u64));
    group.bench_function("one_client_shuffled_with_duplicates", |b| {
        b.iter(|| reducer.replay(None, black_box(&delivered)))
    });

    // What shadow-reconciler does across a fleet: each event reduced against its own client's state.
    let mut fleet = Vec::new();
    for index in 0..100 {
        let (_, events) = one_client(&mut runner, &format!("thing-{index}"), 20);
        fleet.extend(events);
    }
    let fleet = shuffled(&mut runner, fleet);
    group.throughput(Throughput::Elements(fleet.len() as u64));
    group.bench_function("fleet_100_clients_shuffled_with_duplicates", |b| {
        b.iter(|| {
            let mut shadows: HashMap<&str, Connectivity> = HashMap::with_capacity(100);
            for event in black_box(&fleet) {
                let stored = shadows.get(event.client_id.as_str());
                if let Some(state) = reducer.reduce(stored, event).into_state() {
                    shadows.insert(event.client_id.as_str(), state);
                }
            }
            shadows
        })
    });
    group.finish();
}

criterion_group!(benches, reducer_throughput);
criterion_main!(benches);

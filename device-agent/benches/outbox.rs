//! Cost of the durable outbox per message: one committed (fsynced) push, and removal in PUBACK batches.
//! On a Pi this is dominated by the SD card's fsync latency; run it there to size `temperature_interval_secs`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use device_agent::config::OverflowPolicy;
use device_agent::outbox::Outbox;

const PAYLOAD: &[u8] =
    br#"{"thing":"ratchet","ts":1764140000000,"temp":48.31,"unit":"C","seq":123456}"#;

fn outbox(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        &dir.path().join("bench.redb"),
        1_000_000,
        OverflowPolicy::DropOldest,
    )
    .unwrap();
    c.bench_function("outbox push (1 message, durable commit)", |b| {
        b.iter(|| outbox.push("data/ratchet/temperature", PAYLOAD).unwrap());
    });
    c.bench_function("outbox read 20 + remove 20 (one PUBACK batch)", |b| {
        b.iter_batched(
            || {
                for _ in 0..20 {
                    outbox.push("data/ratchet/temperature", PAYLOAD).unwrap();
                }
            },
            |()| {
                let batch = outbox.read_from(0, 20).unwrap();
                let seqs: Vec<u64> = batch.iter().map(|m| m.seq).collect();
                outbox.remove(&seqs).unwrap();
            },
            BatchSize::PerIteration,
        );
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = outbox
}
criterion_main!(benches);

//! Cost of the outbox per message: an append (what every reading costs), an append plus a flush to the
//! disk (`outbox.sync = "always"`), and the read + removal of one PUBACK batch. The flush is dominated
//! by the storage's fsync latency: run it on the Pi's SD card to choose `outbox.sync`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use device_agent::config::OverflowPolicy;
use device_agent::outbox::Outbox;

const TOPIC: &str = "data/ratchet/temperature";
const PAYLOAD: &[u8] =
    br#"{"thing":"ratchet","ts":1764140000000,"temp":48.31,"unit":"C","seq":123456}"#;

fn outbox(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(dir.path(), 1_000_000, OverflowPolicy::DropOldest).unwrap();
    c.bench_function(
        "outbox push + remove (1 message acknowledged before any flush)",
        |b| {
            b.iter(|| {
                outbox.push(TOPIC, PAYLOAD).unwrap();
                let seq = outbox.next_seq() - 1;
                outbox.remove(&[seq]).unwrap();
            });
        },
    );
    c.bench_function("outbox push + flush (sync = always)", |b| {
        b.iter(|| {
            outbox.push(TOPIC, PAYLOAD).unwrap();
            outbox.sync().unwrap();
        });
    });
    // Both the set-up and the measured step need the outbox mutably, one after the other.
    let outbox = std::cell::RefCell::new(outbox);
    c.bench_function(
        "outbox read 20 + remove 20 (one PUBACK batch, replay)",
        |b| {
            b.iter_batched(
                || {
                    let mut outbox = outbox.borrow_mut();
                    for _ in 0..20 {
                        outbox.push(TOPIC, PAYLOAD).unwrap();
                    }
                    // Replay reads from the disk: the newest message alone is served from memory.
                    outbox.push(TOPIC, PAYLOAD).unwrap();
                    let newest = outbox.next_seq() - 1;
                    outbox.remove(&[newest]).unwrap();
                },
                |()| {
                    let mut outbox = outbox.borrow_mut();
                    let batch = outbox.read_from(0, 20).unwrap();
                    let seqs: Vec<u64> = batch.iter().map(|m| m.seq).collect();
                    outbox.remove(&seqs).unwrap();
                },
                BatchSize::PerIteration,
            );
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = outbox
}
criterion_main!(benches);

//! The outbox against a model: random pushes (with the bound dropping the oldest), acknowledgements in any
//! order, crashes (the process dies; the page cache survives), clean restarts and reboots after a crash, on
//! tiny segments so rotation and deletion happen all the time. After every step the outbox must hold exactly
//! the model's messages, with the model's next `seq` and drop count; after a crash, acknowledged messages
//! whose removal was not written yet may come back (at-least-once), unacknowledged ones must.

use std::collections::BTreeMap;

use device_agent::config::OverflowPolicy;
use device_agent::outbox::{Outbox, OutboxOptions, PushOutcome, SEQ_RESERVATION};
use proptest::prelude::*;

const MAX_MESSAGES: u64 = 12;

#[derive(Debug, Clone)]
enum Op {
    Push {
        topic: u8,
        len: usize,
    },
    /// Acknowledge the live message at this position (modulo the count).
    Ack(usize),
    /// Acknowledge several at once, as one PUBACK batch.
    AckFirst(usize),
    Crash,
    CleanRestart,
    /// A crash, then the machine boots again (another boot id).
    CrashAndReboot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..3, 0usize..300).prop_map(|(topic, len)| Op::Push { topic, len }),
        4 => any::<usize>().prop_map(Op::Ack),
        2 => (1usize..6).prop_map(Op::AckFirst),
        1 => Just(Op::Crash),
        1 => Just(Op::CleanRestart),
        1 => Just(Op::CrashAndReboot),
    ]
}

/// What the outbox must contain.
#[derive(Debug, Default)]
struct Model {
    live: BTreeMap<u64, (String, Vec<u8>)>,
    /// Acknowledged, but the removal record is still waiting for the next write: after a crash each of these
    /// may come back (a duplicate) or not (its segment was already deleted); never a different message.
    pending_removals: BTreeMap<u64, (String, Vec<u8>)>,
    next_seq: u64,
    reserved_until: u64,
    dropped_total: u64,
}

impl Model {
    fn opened(&mut self) {
        // Every open reserves a fresh block after the current position (written, so pending removals too).
        self.reserved_until = self.next_seq + SEQ_RESERVATION;
        self.pending_removals.clear();
    }

    fn push(&mut self, topic: String, payload: Vec<u8>) -> PushOutcome {
        // Whatever is written first (a drop, a reservation, the message) carries the pending removals.
        self.pending_removals.clear();
        let mut dropped_seq = None;
        if self.live.len() as u64 >= MAX_MESSAGES {
            let (&oldest, _) = self.live.first_key_value().unwrap();
            self.live.remove(&oldest);
            self.dropped_total += 1;
            dropped_seq = Some(oldest);
        }
        if self.next_seq >= self.reserved_until {
            self.reserved_until = self.next_seq + SEQ_RESERVATION;
        }
        let seq = self.next_seq;
        self.live.insert(seq, (topic, payload));
        self.next_seq += 1;
        match dropped_seq {
            Some(dropped_seq) => PushOutcome::StoredDroppingOldest { seq, dropped_seq },
            None => PushOutcome::Stored { seq },
        }
    }

    fn ack(&mut self, seqs: &[u64]) {
        for seq in seqs {
            if let Some(message) = self.live.remove(seq) {
                self.pending_removals.insert(*seq, message);
            }
        }
    }

    /// After a crash: the outbox must hold every unacknowledged message, and may hold acknowledged ones whose
    /// removal was not written yet. Those that came back are live again.
    fn crash(&mut self, outbox: &Outbox, step: usize) -> Result<(), TestCaseError> {
        let stored = outbox.read_from(0, usize::MAX).unwrap();
        for message in &stored {
            if let Some(pending) = self.pending_removals.remove(&message.seq) {
                prop_assert_eq!(
                    (&message.topic, &message.payload),
                    (&pending.0, &pending.1),
                    "step {}: seq {} came back different",
                    step,
                    message.seq
                );
                self.live.insert(message.seq, pending);
            }
        }
        self.pending_removals.clear();
        Ok(())
    }
}

fn options(boot: u32) -> OutboxOptions {
    OutboxOptions {
        max_messages: MAX_MESSAGES,
        on_full: OverflowPolicy::DropOldest,
        segment_bytes: 4096,
        boot_id: Some(format!("boot-{boot}")),
    }
}

fn check(outbox: &Outbox, model: &Model, step: usize) -> Result<(), TestCaseError> {
    let stored: Vec<(u64, String, Vec<u8>)> = outbox
        .read_from(0, usize::MAX)
        .map_err(|e| TestCaseError::fail(format!("step {step}: read failed: {e}")))?
        .into_iter()
        .map(|m| (m.seq, m.topic, m.payload))
        .collect();
    let expected: Vec<(u64, String, Vec<u8>)> = model
        .live
        .iter()
        .map(|(seq, (topic, payload))| (*seq, topic.clone(), payload.clone()))
        .collect();
    prop_assert_eq!(stored, expected, "step {}", step);
    prop_assert_eq!(outbox.len(), model.live.len() as u64, "step {}", step);
    prop_assert_eq!(outbox.next_seq(), model.next_seq, "step {}", step);
    prop_assert_eq!(outbox.dropped_total(), model.dropped_total, "step {}", step);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_outbox_behaves_like_its_model(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut boot = 0;
        let mut outbox = Outbox::open_with(dir.path(), options(boot)).unwrap();
        let mut model = Model { next_seq: 1, ..Model::default() };
        model.opened();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Push { topic, len } => {
                    let topic = format!("data/thing/{topic}");
                    let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ (model.next_seq as u8)).collect();
                    let outcome = outbox.push(&topic, &payload).unwrap();
                    prop_assert_eq!(outcome, model.push(topic, payload), "step {}", step);
                }
                Op::Ack(position) => {
                    if !model.live.is_empty() {
                        let seq = *model.live.keys().nth(position % model.live.len()).unwrap();
                        outbox.remove(&[seq]).unwrap();
                        model.ack(&[seq]);
                    }
                }
                Op::AckFirst(count) => {
                    let seqs: Vec<u64> = model.live.keys().take(count).copied().collect();
                    outbox.remove(&seqs).unwrap();
                    model.ack(&seqs);
                }
                Op::Crash => {
                    drop(outbox);
                    outbox = Outbox::open_with(dir.path(), options(boot)).unwrap();
                    prop_assert_eq!(outbox.recovery().skipped_seqs, 0, "same boot: exact");
                    model.crash(&outbox, step)?;
                    model.opened();
                }
                Op::CleanRestart => {
                    outbox.close().unwrap();
                    boot += 1; // a clean close is exact whatever boots next
                    outbox = Outbox::open_with(dir.path(), options(boot)).unwrap();
                    prop_assert_eq!(outbox.recovery().skipped_seqs, 0, "closed cleanly: exact");
                    model.opened();
                }
                Op::CrashAndReboot => {
                    drop(outbox);
                    boot += 1;
                    outbox = Outbox::open_with(dir.path(), options(boot)).unwrap();
                    model.crash(&outbox, step)?;
                    // Acknowledged messages may have been lost with the power: continue after the reservation.
                    prop_assert_eq!(
                        outbox.recovery().skipped_seqs,
                        model.reserved_until - model.next_seq,
                        "step {}", step
                    );
                    model.next_seq = model.reserved_until;
                    model.opened();
                }
            }
            check(&outbox, &model, step)?;
        }
        // Nothing lost on the way out either.
        outbox.close().unwrap();
        let reopened = Outbox::open_with(dir.path(), options(boot)).unwrap();
        model.pending_removals.clear();
        check(&reopened, &model, usize::MAX)?;
    }
}

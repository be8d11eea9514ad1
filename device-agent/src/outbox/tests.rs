//! The outbox's behaviour through its public API: order, bounds, segments, syncs. Recovery from
//! damaged files is tested beside `replay`.

use super::*;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

pub(super) const BOOT_A: &str = "0b6e2a4c-0000-4000-8000-00000000000a";
pub(super) const BOOT_B: &str = "0b6e2a4c-0000-4000-8000-00000000000b";

pub(super) fn options(max: u64, policy: OverflowPolicy, boot: &str) -> OutboxOptions {
    OutboxOptions {
        max_messages: max,
        on_full: policy,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        boot_id: Some(boot.to_string()),
    }
}

pub(super) fn open(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open_with(dir.path(), options(10, OverflowPolicy::DropOldest, BOOT_A)).unwrap()
}

pub(super) fn seqs(outbox: &Outbox) -> Vec<u64> {
    outbox
        .read_from(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect()
}

pub(super) fn newest_segment(dir: &Path) -> PathBuf {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    names.sort();
    names.pop().unwrap()
}

#[test]
fn fifo_order_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    for i in 0..5u8 {
        outbox.push("t/a", &[i]).unwrap();
    }
    assert_eq!(seqs(&outbox), [1, 2, 3, 4, 5]);
    assert_eq!(
        outbox.read_from(0, 100).unwrap()[2],
        OutboxMessage {
            seq: 3,
            topic: "t/a".into(),
            payload: vec![2]
        }
    );
    outbox.remove(&[1, 3]).unwrap();
    assert_eq!(seqs(&outbox), [2, 4, 5]);
    assert_eq!(outbox.read_from(3, 1).unwrap()[0].seq, 4);
    assert_eq!((outbox.len(), outbox.first_seq()), (3, Some(2)));
    assert!(outbox.is_live(2) && !outbox.is_live(3) && !outbox.is_live(0) && !outbox.is_live(9));
    outbox.remove(&[2, 4, 5, 99]).unwrap();
    assert!(outbox.is_empty());
    assert_eq!(outbox.first_seq(), None);
    assert_eq!(
        outbox.push("t", b"x").unwrap(),
        PushOutcome::Stored { seq: 6 }
    );
}

#[test]
fn removals_ride_with_the_next_write_and_a_crash_before_it_only_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    outbox.push("t", b"a").unwrap();
    outbox.push("t", b"b").unwrap();
    outbox.remove(&[1]).unwrap();
    let before = std::fs::metadata(newest_segment(dir.path())).unwrap().len();
    outbox.remove(&[2]).unwrap();
    assert_eq!(
        std::fs::metadata(newest_segment(dir.path())).unwrap().len(),
        before,
        "no write per acknowledgement"
    );
    drop(outbox); // dies before the next write: both acknowledged messages come back
    let mut outbox = open(&dir);
    assert_eq!(seqs(&outbox), [1, 2]);
    outbox.remove(&[1, 2]).unwrap();
    outbox.push("t", b"c").unwrap(); // carries the removal
    drop(outbox);
    assert_eq!(seqs(&open(&dir)), [3]);
}

#[test]
fn a_long_replay_writes_its_removals_in_bounded_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open_with(
        dir.path(),
        options(100_000, OverflowPolicy::DropOldest, BOOT_A),
    )
    .unwrap();
    for _ in 0..5000 {
        outbox.push("t", b"x").unwrap();
    }
    for seq in 1..=5000 {
        outbox.remove(&[seq]).unwrap();
    }
    assert!(outbox.pending_removals.len() < MAX_PENDING_REMOVALS);
    drop(outbox);
    // Everything but the last, still pending, removals reached the log.
    let outbox = open(&dir);
    assert_eq!(outbox.len(), 5000 % MAX_PENDING_REMOVALS as u64);
}

#[test]
fn reservations_are_renewed_before_they_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open_with(
        dir.path(),
        options(u64::MAX, OverflowPolicy::DropOldest, BOOT_A),
    )
    .unwrap();
    for _ in 0..SEQ_RESERVATION + 5 {
        let outcome = outbox.push("t", b"x").unwrap();
        let PushOutcome::Stored { seq } = outcome else {
            panic!("{outcome:?}")
        };
        outbox.remove(&[seq]).unwrap();
    }
    assert!(outbox.reserved_until > outbox.next_seq());
    drop(outbox);
    let outbox =
        Outbox::open_with(dir.path(), options(10, OverflowPolicy::DropOldest, BOOT_B)).unwrap();
    assert!(
        outbox.next_seq() > SEQ_RESERVATION + 5,
        "the renewed reservation was durable"
    );
}

#[test]
fn drop_oldest_policy_counts_losses_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox =
        Outbox::open_with(dir.path(), options(3, OverflowPolicy::DropOldest, BOOT_A)).unwrap();
    for _ in 0..3 {
        outbox.push("t", b"x").unwrap();
    }
    assert_eq!(
        outbox.push("t", b"y").unwrap(),
        PushOutcome::StoredDroppingOldest {
            seq: 4,
            dropped_seq: 1
        }
    );
    assert_eq!((outbox.len(), outbox.first_seq()), (3, Some(2)));
    assert_eq!(outbox.dropped_total(), 1);
    outbox.close().unwrap();
    let outbox =
        Outbox::open_with(dir.path(), options(3, OverflowPolicy::DropOldest, BOOT_A)).unwrap();
    assert_eq!((outbox.dropped_total(), seqs(&outbox)), (1, vec![2, 3, 4]));
}

#[test]
fn drop_newest_policy_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox =
        Outbox::open_with(dir.path(), options(2, OverflowPolicy::DropNewest, BOOT_A)).unwrap();
    outbox.push("t", b"1").unwrap();
    outbox.push("t", b"2").unwrap();
    assert_eq!(outbox.push("t", b"3").unwrap(), PushOutcome::Rejected);
    assert_eq!(seqs(&outbox), [1, 2]);
    assert_eq!(outbox.dropped_total(), 1);
    assert_eq!(
        outbox.next_seq(),
        3,
        "a rejected message does not consume a seq"
    );
    drop(outbox);
    let outbox =
        Outbox::open_with(dir.path(), options(2, OverflowPolicy::DropNewest, BOOT_A)).unwrap();
    assert_eq!(outbox.dropped_total(), 1);
}

#[test]
fn segments_rotate_and_drained_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = options(100_000, OverflowPolicy::DropOldest, BOOT_A);
    small.segment_bytes = 4096;
    let mut outbox = Outbox::open_with(dir.path(), small.clone()).unwrap();
    for i in 0..500u32 {
        outbox
            .push("data/thing/temperature", &i.to_le_bytes())
            .unwrap();
    }
    assert!(outbox.segment_count() > 5, "{}", outbox.segment_count());
    // Acknowledge all but the oldest: nothing can be deleted while it lives.
    let later: Vec<u64> = (2..=500).collect();
    outbox.remove(&later).unwrap();
    assert!(outbox.segment_count() > 5);
    outbox.close().unwrap();
    let mut outbox = Outbox::open_with(dir.path(), small.clone()).unwrap();
    assert_eq!(seqs(&outbox), [1]);
    assert_eq!(
        outbox.read_from(0, 1).unwrap()[0].payload,
        0u32.to_le_bytes()
    );
    outbox.remove(&[1]).unwrap();
    assert_eq!(outbox.segment_count(), 1);
    assert_eq!(
        outbox.push("t", b"x").unwrap(),
        PushOutcome::Stored { seq: 501 }
    );
    drop(outbox);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 2, "one segment and the lock file");
    let outbox = Outbox::open_with(dir.path(), small).unwrap();
    assert_eq!(seqs(&outbox), [501]);
}

#[test]
fn the_drop_count_survives_deleted_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = options(5, OverflowPolicy::DropOldest, BOOT_A);
    small.segment_bytes = 4096;
    let mut outbox = Outbox::open_with(dir.path(), small.clone()).unwrap();
    for _ in 0..400 {
        outbox.push("data/thing/temperature", &[7; 40]).unwrap();
    }
    let all: Vec<u64> = (1..=400).collect();
    outbox.remove(&all).unwrap();
    assert_eq!(outbox.segment_count(), 1);
    outbox.close().unwrap();
    let outbox = Outbox::open_with(dir.path(), small).unwrap();
    assert_eq!(
        (outbox.dropped_total(), outbox.next_seq(), outbox.len()),
        (395, 401, 0)
    );
}

#[test]
fn sync_tracks_unacknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    assert!(!outbox.needs_sync());
    outbox.push("t", b"a").unwrap();
    assert!(outbox.needs_sync());
    outbox.remove(&[1]).unwrap();
    assert!(
        !outbox.needs_sync(),
        "acknowledged before the sync: nothing to flush"
    );
    outbox.push("t", b"b").unwrap();
    let ticket = outbox.sync_ticket().unwrap();
    outbox.push("t", b"c").unwrap();
    let ticket = ticket.run().unwrap();
    outbox.synced(ticket);
    assert!(outbox.needs_sync(), "c was written after the ticket");
    outbox.sync().unwrap();
    assert!(!outbox.needs_sync());
}

#[test]
fn payload_can_embed_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    outbox
        .push_with("t", |seq| format!("{{\"seq\":{seq}}}").into_bytes())
        .unwrap();
    assert_eq!(outbox.read_from(0, 1).unwrap()[0].payload, b"{\"seq\":1}");
}

#[test]
fn a_corrupt_read_is_an_error_and_can_be_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    outbox.push("t", &[1; 30]).unwrap();
    outbox.push("t", &[2; 30]).unwrap();
    let (_, first) = outbox.index.live_from(0).next().unwrap();
    let offset = first.offset;
    // Bad media under a running agent: the bytes change after they were written.
    let segment = newest_segment(dir.path());
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&[0xFF], u64::from(offset) + 20).unwrap();
    assert!(matches!(
        outbox.read_from(0, 10),
        Err(OutboxError::Corrupt { seq: 1 })
    ));
    outbox.discard_corrupt(1).unwrap();
    assert_eq!(seqs(&outbox), [2]);
    assert_eq!(outbox.dropped_total(), 1);
}

#[test]
fn a_file_path_and_a_second_process_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outbox.redb");
    std::fs::write(&file, b"old").unwrap();
    let error = Outbox::open(&file, 10, OverflowPolicy::DropOldest).unwrap_err();
    assert!(
        matches!(error, OutboxError::NotADirectory { .. }),
        "{error}"
    );
    let first = open(&dir);
    let second = Outbox::open(dir.path(), 10, OverflowPolicy::DropOldest).unwrap_err();
    assert!(matches!(second, OutboxError::Locked { .. }), "{second}");
    drop(first);
    assert!(Outbox::open(dir.path(), 10, OverflowPolicy::DropOldest).is_ok());
}

//! Replay: rebuilding the outbox from its segment files at open.
//!
//! Every record is applied in order; replay stops at the first record that is torn, fails its checksum
//! or does not parse, and cuts the file there. A segment without a valid header is either a rotation a
//! power loss cut short (removed) or not ours (moved aside). See the module docs of `outbox` for why
//! an unclosed log from an earlier boot continues after its reserved block.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::Recovery;
use super::index::Slot;
use super::record::{
    KIND_CLOSE, KIND_HEADER, KIND_MESSAGE, KIND_OPEN, KIND_REJECTED, KIND_REMOVED, KIND_RESERVE,
    MAX_RECORD_BODY, RECORD_HEADER, check_record, parse_message, read_boot, read_u64,
};
use super::segment::{MAGIC, MAX_SEGMENT_START, SEGMENT_SUFFIX, Segment};

/// The state rebuilt from the segment files.
pub(super) struct Replayed {
    pub segments: Vec<Segment>,
    pub live: BTreeMap<u64, Slot>,
    pub next_seq: u64,
    pub reserved_until: u64,
    pub dropped_total: u64,
    pub recovery: Recovery,
}

/// One record's effect on the replay, or `None` when the record does not parse (treated like a torn one).
#[derive(Default)]
struct ReplayState {
    live: BTreeMap<u64, Slot>,
    highest_seq: u64,
    reserved_until: u64,
    dropped_total: u64,
    writer_boot: Option<String>,
    closed: bool,
    /// Set when damaged bytes were skipped: the highest seq seen before them. The next record that names a
    /// seq tells how many messages the damage took.
    gap_after: Option<u64>,
    lost_messages: u64,
}

impl ReplayState {
    /// Messages `gap_after + 1 .. next_seq` were in skipped bytes: counted as dropped, so `dropped_total`
    /// tells the loss and no seq below `next_seq` is handed out again.
    fn close_gap(&mut self, next_seq: u64) {
        if let Some(before) = self.gap_after.take() {
            let lost = next_seq.saturating_sub(before + 1);
            self.lost_messages += lost;
            self.dropped_total += lost;
        }
    }

    fn apply(
        &mut self,
        kind: u8,
        body: &[u8],
        offset: u32,
        len: u32,
        first_seq: u64,
    ) -> Option<()> {
        self.closed = false;
        match kind {
            KIND_HEADER => {
                let (seq, rest) = read_u64(body)?;
                let (dropped, rest) = read_u64(rest)?;
                let (reserved, rest) = read_u64(rest)?;
                if seq != first_seq {
                    return None;
                }
                self.close_gap(seq);
                self.highest_seq = self.highest_seq.max(seq.saturating_sub(1));
                self.dropped_total = self.dropped_total.max(dropped);
                self.reserved_until = self.reserved_until.max(reserved);
                self.writer_boot = read_boot(rest)?;
            }
            KIND_MESSAGE => {
                let (seq, _, _) = parse_message(kind, body)?;
                if seq < first_seq {
                    return None;
                }
                self.close_gap(seq);
                self.highest_seq = self.highest_seq.max(seq);
                self.live.insert(seq, Slot { offset, len });
            }
            KIND_REMOVED => {
                let (dropped, rest) = body.split_first()?;
                let (count, mut rest) = rest.split_first_chunk::<4>()?;
                let count = u32::from_le_bytes(*count);
                for _ in 0..count {
                    let (seq, tail) = read_u64(rest)?;
                    rest = tail;
                    self.live.remove(&seq);
                }
                // Counted whether or not the message's segment is still there: a dropped message's
                // segment may be deleted long before this record's, and the segment headers' totals
                // (taken with `max`) make double counting impossible.
                if *dropped == 1 {
                    self.dropped_total += u64::from(count);
                }
            }
            KIND_REJECTED => self.dropped_total += read_u64(body)?.0,
            KIND_RESERVE => self.reserved_until = self.reserved_until.max(read_u64(body)?.0),
            KIND_OPEN => {
                let (next_seq, rest) = read_u64(body)?;
                self.highest_seq = self.highest_seq.max(next_seq.saturating_sub(1));
                self.writer_boot = read_boot(rest)?;
            }
            KIND_CLOSE => {
                let next_seq = read_u64(body)?.0;
                self.close_gap(next_seq);
                self.highest_seq = self.highest_seq.max(next_seq.saturating_sub(1));
                self.closed = true;
            }
            _ => return None,
        }
        Some(())
    }
}

/// Whether `bytes` start with a record header whose length fits in `bytes` (checksum not checked).
fn is_whole_record(bytes: &[u8]) -> bool {
    bytes
        .first_chunk::<4>()
        .map(|len| u32::from_le_bytes(*len) as usize)
        .is_some_and(|len| len > 0 && len <= MAX_RECORD_BODY && bytes.len() >= RECORD_HEADER + len)
}

/// The offset of the first record at or after `from` that is intact and could follow what was replayed: a
/// checksum match, and for a message a seq above `highest_seq`. The length and kind are checked before the
/// checksum is computed, so scanning damaged bytes costs little.
fn next_valid_record(bytes: &[u8], from: usize, highest_seq: u64) -> Option<usize> {
    (from..bytes.len()).find(|&at| {
        let tail = &bytes[at..];
        let plausible = is_whole_record(tail)
            && tail
                .get(RECORD_HEADER)
                .is_some_and(|kind| (KIND_MESSAGE..=KIND_CLOSE).contains(kind));
        plausible
            && check_record(tail).is_some_and(|(kind, body, _)| {
                kind != KIND_MESSAGE
                    || parse_message(kind, body).is_some_and(|(seq, _, _)| seq > highest_seq)
            })
    })
}

pub(super) fn replay(dir: &Path, boot_id: &Option<String>) -> std::io::Result<Replayed> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if digits.len() == 20
            && let Ok(first_seq) = digits.parse::<u64>()
        {
            names.push((first_seq, entry.path()));
        }
    }
    names.sort();
    let mut state = ReplayState::default();
    let mut recovery = Recovery::default();
    let mut segments = Vec::new();
    let count = names.len();
    for (position, (first_seq, path)) in names.into_iter().enumerate() {
        let newest = position + 1 == count;
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let bytes = std::fs::read(&path)?;
        let mut offset = MAGIC.len();
        let header = bytes
            .starts_with(MAGIC)
            .then(|| check_record(&bytes[offset..]))
            .flatten()
            .filter(|&(kind, _, _)| kind == KIND_HEADER);
        let header_applied = header.is_some_and(|(kind, body, used)| {
            let applied = state.apply(kind, body, offset as u32, used as u32, first_seq);
            offset += used;
            applied.is_some()
        });
        if !header_applied {
            drop(file);
            if newest && bytes.len() <= MAX_SEGMENT_START {
                // A rotation cut short by a power loss: the header is made durable before anything is
                // appended, so this file never held a record.
                recovery.discarded_bytes += bytes.len() as u64;
                std::fs::remove_file(&path)?;
            } else {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{stamp}"));
                let aside = PathBuf::from(aside);
                std::fs::rename(&path, &aside)?;
                recovery.quarantined.push(aside);
            }
            continue;
        }
        loop {
            let applied = check_record(&bytes[offset..]).and_then(|(kind, body, used)| {
                let at = u32::try_from(offset).ok()?;
                let len = u32::try_from(used).ok()?;
                if kind == KIND_HEADER {
                    return None;
                }
                state.apply(kind, body, at, len, first_seq)?;
                Some(used)
            });
            if let Some(used) = applied {
                offset += used;
                continue;
            }
            if offset >= bytes.len() {
                break;
            }
            // A bad record followed by good ones is damage in the middle (bad media), not a torn tail: skip
            // just the damaged bytes, keep every later record and count what was lost, instead of cutting the
            // file there (which lost every later message silently and handed their seqs out again).
            let Some(next) = next_valid_record(&bytes, offset + 1, state.highest_seq) else {
                // The tail is cut below. A record of its full length that fails its checksum was written
                // whole, so it is damage (or a power loss), not a write torn by a crash: it may have held an
                // acknowledged message, whose seq must not be handed out again.
                if is_whole_record(&bytes[offset..]) {
                    state.gap_after.get_or_insert(state.highest_seq);
                }
                break;
            };
            recovery.corrupt_bytes += (next - offset) as u64;
            state.gap_after.get_or_insert(state.highest_seq);
            offset = next;
        }
        if offset < bytes.len() {
            // A torn or corrupt tail: cut it so new records follow the last good one.
            recovery.discarded_bytes += (bytes.len() - offset) as u64;
            file.set_len(offset as u64)?;
        }
        segments.push(Segment {
            first_seq,
            path,
            file,
            len: offset as u64,
        });
    }
    if state.gap_after.is_some() {
        // Damage near the end of the log with no later seq to measure it by: the count is unknown, and a
        // lost message's seq must still never be reused, so continue after a reserved block as after an
        // unclean reboot.
        tracing::warn!(
            "outbox damage at the end of the log: how many messages it held is unknown; seq continues \
             after a reserved block so that none is reused"
        );
        state.closed = false;
        state.writer_boot = None;
    }
    recovery.lost_messages = state.lost_messages;
    let exact_next = state.highest_seq + 1;
    let same_boot = boot_id.is_some() && *boot_id == state.writer_boot;
    let next_seq = if state.closed || same_boot || segments.is_empty() && state.reserved_until == 0
    {
        exact_next
    } else {
        recovery.skipped_seqs = state.reserved_until.saturating_sub(exact_next);
        exact_next.max(state.reserved_until)
    };
    Ok(Replayed {
        segments,
        live: state.live,
        next_seq,
        reserved_until: state.reserved_until,
        dropped_total: state.dropped_total,
        recovery,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BOOT_A, BOOT_B, newest_segment, open, options, seqs};
    use super::super::{Outbox, PushOutcome, Recovery, SEQ_RESERVATION};
    use super::*;
    use crate::config::OverflowPolicy;
    use crate::outbox::segment::segment_name;

    #[test]
    fn a_crash_in_the_same_boot_keeps_everything_and_every_seq() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut outbox = open(&dir);
            outbox.push("t", b"a").unwrap();
            outbox.push("t", b"b").unwrap();
            outbox.remove(&[1]).unwrap();
            outbox.push("t", b"c").unwrap();
            // dropped without close: like kill -9, the page cache still has every record
        }
        let mut outbox = open(&dir);
        assert_eq!(outbox.recovery(), &Recovery::default());
        let left = outbox.read_from(0, 10).unwrap();
        assert_eq!(
            left.iter()
                .map(|m| (m.seq, m.payload.as_slice()))
                .collect::<Vec<_>>(),
            [(2, b"b".as_slice()), (3, b"c".as_slice())]
        );
        assert_eq!(
            outbox.push("t", b"d").unwrap(),
            PushOutcome::Stored { seq: 4 }
        );
    }

    #[test]
    fn an_unclean_log_from_an_earlier_boot_skips_the_reserved_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        outbox.push("t", b"a").unwrap();
        drop(outbox);
        // Power loss and reboot: acknowledged messages may have vanished, so their seqs must not be reused.
        let outbox =
            Outbox::open_with(dir.path(), options(10, OverflowPolicy::DropOldest, BOOT_B)).unwrap();
        assert_eq!(outbox.recovery().skipped_seqs, SEQ_RESERVATION - 1);
        assert_eq!(seqs(&outbox), [1]);
        // A crash right after the skip, in the new boot: the skip must hold (it is in the log).
        drop(outbox);
        let mut outbox =
            Outbox::open_with(dir.path(), options(10, OverflowPolicy::DropOldest, BOOT_B)).unwrap();
        assert_eq!(outbox.next_seq(), 1 + SEQ_RESERVATION);
        assert_eq!(
            outbox.push("t", b"b").unwrap(),
            PushOutcome::Stored {
                seq: 1 + SEQ_RESERVATION
            }
        );
        // Old and new messages side by side across the gap, each found under its own seq.
        assert_eq!(seqs(&outbox), [1, 1 + SEQ_RESERVATION]);
        assert_eq!(outbox.read_from(2, 1).unwrap()[0].payload, b"b");
        outbox.remove(&[1]).unwrap();
        assert_eq!(seqs(&outbox), [1 + SEQ_RESERVATION]);
        outbox.close().unwrap();
        // A clean close is exact whatever boot comes next.
        let outbox =
            Outbox::open_with(dir.path(), options(10, OverflowPolicy::DropOldest, BOOT_A)).unwrap();
        assert_eq!(outbox.recovery().skipped_seqs, 0);
        assert_eq!(outbox.next_seq(), 2 + SEQ_RESERVATION);
    }

    #[test]
    fn a_torn_tail_is_cut_at_every_possible_point() {
        let dir = tempfile::tempdir().unwrap();
        open(&dir).close().unwrap();
        let intact_len = std::fs::metadata(newest_segment(dir.path())).unwrap().len() as usize;
        let pushes: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'p', i]).collect();
        let (message_ends, removal_end) = {
            let mut outbox = open(&dir);
            let mut ends = Vec::new();
            for payload in &pushes {
                outbox.push("data/t", payload).unwrap();
                let slot = outbox.index.newest().unwrap();
                ends.push((slot.offset + slot.len) as usize);
            }
            outbox.remove(&[1]).unwrap();
            outbox.sync().unwrap(); // writes the removal record
            (ends, outbox.active().len as usize)
        };
        let segment = newest_segment(dir.path());
        let full = std::fs::read(&segment).unwrap();
        for cut in intact_len..full.len() {
            std::fs::write(&segment, &full[..cut]).unwrap();
            let mut outbox = open(&dir);
            // Exactly the whole records before the cut count: a message is there iff its record is
            // complete, and message 1 is gone iff the removal record is complete.
            let expected: Vec<u64> = (1..=3u64)
                .filter(|&s| message_ends[(s - 1) as usize] <= cut)
                .filter(|&s| !(s == 1 && removal_end <= cut))
                .collect();
            assert_eq!(seqs(&outbox), expected, "cut at {cut}");
            for message in outbox.read_from(0, 10).unwrap() {
                assert_eq!(
                    message.payload,
                    pushes[(message.seq - 1) as usize],
                    "cut {cut}"
                );
            }
            // The outbox works on: a new message lands after the cut and survives a reopen.
            let outcome = outbox.push("data/t", b"new").unwrap();
            let PushOutcome::Stored { seq } = outcome else {
                panic!("{outcome:?}")
            };
            drop(outbox);
            let outbox = open(&dir);
            assert_eq!(
                outbox.read_from(seq, 1).unwrap()[0].payload,
                b"new",
                "cut {cut}"
            );
        }
    }

    /// One flipped byte in a stored reading used to cut the segment there: every later reading was lost
    /// silently (`dropped_total` stayed 0) and their seqs were handed out again (issue 13, item 9).
    #[test]
    fn a_flipped_byte_loses_only_its_record_counted_and_no_seq_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let mut offsets = Vec::new();
        for i in 0..4u8 {
            outbox.push("t", &[i; 20]).unwrap();
            offsets.push(outbox.index.newest().unwrap().offset);
        }
        drop(outbox);
        let segment = newest_segment(dir.path());
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[offsets[2] as usize + 20] ^= 0x40;
        std::fs::write(&segment, &bytes).unwrap();
        let mut outbox = open(&dir);
        assert_eq!(seqs(&outbox), [1, 2, 4]);
        assert_eq!(outbox.read_from(4, 1).unwrap()[0].payload, [3u8; 20]);
        assert_eq!(outbox.recovery().lost_messages, 1);
        assert!(outbox.recovery().corrupt_bytes > 0);
        assert_eq!(
            outbox.recovery().discarded_bytes,
            0,
            "nothing after it is cut"
        );
        assert_eq!(outbox.dropped_total(), 1);
        assert_eq!(
            outbox.push("t", b"next").unwrap(),
            PushOutcome::Stored { seq: 5 }
        );
        drop(outbox);
        // The same answer at every later open: the damage is skipped again, counted once.
        let outbox = open(&dir);
        assert_eq!(seqs(&outbox), [1, 2, 4, 5]);
        assert_eq!(outbox.dropped_total(), 1);
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_cuts_it_and_skips_ahead_rather_than_reuse_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let mut last = 0;
        for i in 0..3u8 {
            outbox.push("t", &[i; 20]).unwrap();
            last = outbox.index.newest().unwrap().offset;
        }
        drop(outbox);
        let segment = newest_segment(dir.path());
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[last as usize + 20] ^= 0x40;
        std::fs::write(&segment, &bytes).unwrap();
        let outbox = open(&dir);
        assert_eq!(seqs(&outbox), [1, 2]);
        assert!(outbox.recovery().discarded_bytes > 0);
        assert!(
            outbox.next_seq() > 3,
            "seq 3 may have been acknowledged: {}",
            outbox.next_seq()
        );
    }

    #[test]
    fn a_foreign_segment_is_quarantined_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(&dir));
        let foreign = dir.path().join(segment_name(1));
        std::fs::write(&foreign, vec![0xA5; 8192]).unwrap();
        let mut outbox = open(&dir);
        let aside = outbox.recovery().quarantined.clone();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(&aside[0]).unwrap(), vec![0xA5; 8192]);
        assert!(matches!(
            outbox.push("t", b"x").unwrap(),
            PushOutcome::Stored { .. }
        ));
    }

    #[test]
    fn a_rotation_cut_short_by_a_power_loss_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        outbox.push("t", b"a").unwrap();
        outbox.close().unwrap();
        // The new segment's name reached the disk, its header only half.
        let torn = dir.path().join(segment_name(2));
        let mut start = MAGIC.to_vec();
        start.extend_from_slice(&[30, 0, 0, 0, 1, 2]);
        std::fs::write(&torn, &start).unwrap();
        let mut outbox = open(&dir);
        assert!(!torn.exists());
        assert_eq!(outbox.recovery().discarded_bytes, start.len() as u64);
        assert_eq!(seqs(&outbox), [1]);
        outbox.push("t", b"b").unwrap();
        drop(outbox);
        assert_eq!(seqs(&open(&dir)), [1, 2]);
    }

    #[test]
    fn a_segment_whose_header_does_not_match_its_name_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        outbox.push("t", b"a").unwrap();
        outbox.close().unwrap();
        // The same bytes under another segment's name: the header says first seq 1, the name 7.
        let original = newest_segment(dir.path());
        let renamed = dir.path().join(segment_name(7));
        std::fs::copy(&original, &renamed).unwrap();
        std::fs::remove_file(&original).unwrap();
        let mut outbox = open(&dir);
        assert_eq!(outbox.recovery().quarantined.len(), 1);
        assert!(!renamed.exists());
        // A fresh segment is started, and what is written to it can be read back after a restart.
        assert!(matches!(
            outbox.push("t", b"b").unwrap(),
            PushOutcome::Stored { .. }
        ));
        drop(outbox);
        assert_eq!(open(&dir).len(), 1);
    }
}

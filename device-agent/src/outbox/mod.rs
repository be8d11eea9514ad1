//! Disk-backed, bounded, crash-safe FIFO of telemetry waiting for a PUBACK: an append-only segment log.
//!
//! The outbox is a directory of segment files `<first seq, 20 digits>.seg`. Every change is one
//! checksummed record appended to the newest segment: a message (`seq`, topic, payload), the removal of
//! acknowledged or dropped messages, a reservation of `seq` numbers, a clean-close marker. Opening the
//! outbox replays the segments into an in-memory index of live messages (8 bytes per message); reads
//! are one `pread` each. A segment is deleted once every message in it and in older segments is gone.
//!
//! Durability is chosen by the caller ([`Outbox::sync`], or [`SyncTicket`] off the async thread):
//! - a write reaches the kernel before `push` returns, so a crash of the agent (kill -9, panic, OOM)
//!   loses nothing: the page cache outlives the process;
//! - against power loss, the drainer syncs within `outbox.sync_interval_ms` of a push, and only when a
//!   message written since the last sync is still unacknowledged; while the broker acknowledges within
//!   that interval the agent causes no disk flushes at all (SD-card wear). `outbox.sync = "always"`
//!   syncs every message before it is sent;
//! - after a power loss the newest segment may end in a torn record: replay stops at the first record whose
//!   length or CRC-32 does not check out and truncates the file there, so every message is either fully
//!   stored or absent. Removals are records too: one that did not reach the disk brings acknowledged
//!   messages back, which are sent again with their `seq` (a duplicate, never a loss).
//!
//! `seq` is the delivery order and the consumers' de-duplication key, so it must never be reused. Within
//! one boot of the machine the log is exact (the page cache survives the process), so a restart continues
//! at the last `seq` + 1. A power loss can take messages the broker already acknowledged off the disk;
//! reusing their numbers would make consumers drop new readings as duplicates. So `seq` numbers are
//! reserved in durable blocks ([`SEQ_RESERVATION`]), and a log that was not closed cleanly by an earlier
//! boot (`/proc/sys/kernel/random/boot_id`) continues after the reserved block instead: a gap, not a reuse.
//!
//! This file is the queue's API and its bookkeeping (bound, reservations, syncs, segment rotation); the
//! parts live beside it: `record` (the on-disk record codec), `segment` (segment files), `index` (where
//! each live message is) and `replay` (rebuilding all of it at open).

mod index;
mod record;
mod replay;
mod segment;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::config::OverflowPolicy;
use index::{Index, Slot};
use record::{
    KIND_CLOSE, KIND_MESSAGE, KIND_OPEN, KIND_REJECTED, KIND_REMOVED, KIND_RESERVE,
    MAX_RECORD_BODY, RECORD_HEADER, check_record, encode_record, message_body, parse_message,
    put_boot, removal_body,
};
use replay::replay;
pub use segment::SyncTicket;
use segment::{MAX_BOOT_ID_LEN, Segment, SegmentHeader, segment_start_len};

/// `flock`ed while an agent has the outbox open.
const LOCK_FILE: &str = "LOCK";
/// A new segment starts once the newest one has grown past this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 20;
/// `seq` numbers reserved by one durable record: one extra sync per this many messages.
pub const SEQ_RESERVATION: u64 = 10_000;
/// Removals kept back for the next write at most (8 bytes each in the record).
const MAX_PENDING_REMOVALS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "cannot open outbox {path}: {source}; check that the directory exists and is writable by the agent \
         (systemd: StateDirectory=device-agent)"
    )]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "outbox.path {path} is a file, but the outbox is a directory of segment files (earlier builds kept one \
         redb file): point outbox.path at a directory, e.g. /var/lib/device-agent/outbox"
    )]
    NotADirectory { path: PathBuf },
    #[error(
        "outbox {path} is in use by another device-agent process; stop it first (systemctl stop device-agent)"
    )]
    Locked { path: PathBuf },
    #[error("outbox write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("outbox message {seq} is corrupt on disk")]
    Corrupt { seq: u64 },
    #[error("topic is longer than 65535 bytes")]
    TopicTooLong,
    #[error("message of {0} bytes is larger than the outbox accepts")]
    TooLarge(usize),
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// What `push` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Stored {
        seq: u64,
    },
    /// Stored, and the oldest message (`dropped_seq`) was deleted to stay within the bound.
    StoredDroppingOldest {
        seq: u64,
        dropped_seq: u64,
    },
    /// Not stored: the outbox is full and the policy is `drop-newest`.
    Rejected,
}

/// What opening found, for the start-up log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from segment ends because a record was torn or failed its checksum (power loss, bad media).
    pub discarded_bytes: u64,
    /// Segment files that were not outbox segments at all, moved aside as `<name>.corrupt-<epoch>`.
    pub quarantined: Vec<PathBuf>,
    /// `seq` numbers skipped because the log was left unclosed by an earlier boot (see the module docs), or
    /// because damage at the end of the log hid how far `seq` had gone.
    pub skipped_seqs: u64,
    /// Damaged bytes in the middle of a segment (bad media), skipped; the records after them are kept.
    pub corrupt_bytes: u64,
    /// Messages that were in those bytes, counted by the `seq` gap they left; also added to `dropped_total`.
    pub lost_messages: u64,
}

/// How an outbox is opened. `boot_id` names the machine boot doing the writing; [`OutboxOptions::new`]
/// reads the kernel's, tests pass their own to simulate a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxOptions {
    pub max_messages: u64,
    pub on_full: OverflowPolicy,
    pub segment_bytes: u64,
    pub boot_id: Option<String>,
}

impl OutboxOptions {
    pub fn new(max_messages: u64, on_full: OverflowPolicy) -> Self {
        Self {
            max_messages,
            on_full,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            boot_id: current_boot_id(),
        }
    }
}

/// The kernel's random per-boot id; `None` where there is none (then every unclean log counts as rebooted).
pub fn current_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && id.len() <= MAX_BOOT_ID_LEN)
}

pub struct Outbox {
    dir: PathBuf,
    _lock: File,
    /// Oldest first; the last one is written to.
    segments: Vec<Segment>,
    index: Index,
    next_seq: u64,
    /// Every `seq` below this is covered by a durable reservation.
    reserved_until: u64,
    dropped_total: u64,
    max_messages: u64,
    on_full: OverflowPolicy,
    segment_bytes: u64,
    boot_id: Option<String>,
    /// The first `seq` pushed since the last sync.
    unsynced_from: Option<u64>,
    /// Acknowledged messages whose removal record rides along with the next write (see `remove`).
    pending_removals: Vec<u64>,
    /// The newest message, served from memory: online it is read right after it was pushed.
    newest: Option<OutboxMessage>,
    recovery: Recovery,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .field("live", &self.index.len())
            .field("next_seq", &self.next_seq)
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Open (or create) the outbox directory `dir` with the machine's boot id.
    pub fn open(
        dir: &Path,
        max_messages: u64,
        on_full: OverflowPolicy,
    ) -> Result<Self, OutboxError> {
        Self::open_with(dir, OutboxOptions::new(max_messages, on_full))
    }

    pub fn open_with(dir: &Path, options: OutboxOptions) -> Result<Self, OutboxError> {
        let open_error = |source: std::io::Error| OutboxError::Open {
            path: dir.to_path_buf(),
            source,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(OutboxError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(open_error)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(open_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OutboxError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_error(e)),
        }

        let replayed = replay(dir, &options.boot_id).map_err(open_error)?;
        let index = Index::from_replay(replayed.live, replayed.next_seq)
            .map_err(|seq| OutboxError::Corrupt { seq })?;
        let mut outbox = Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            segments: replayed.segments,
            index,
            next_seq: replayed.next_seq,
            reserved_until: replayed.reserved_until,
            dropped_total: replayed.dropped_total,
            max_messages: options.max_messages.max(1),
            on_full: options.on_full,
            segment_bytes: options.segment_bytes.max(4096),
            boot_id: options.boot_id,
            unsynced_from: None,
            pending_removals: Vec::new(),
            newest: None,
            recovery: replayed.recovery,
            scratch: Vec::with_capacity(512),
        };
        if outbox.segments.is_empty() {
            outbox.start_segment().map_err(open_error)?;
        }
        // The position this run starts at is part of the log: after a skip, a later crash in the same boot
        // must not fall back below the skipped block.
        let mut body = outbox.next_seq.to_le_bytes().to_vec();
        put_boot(&mut body, &outbox.boot_id);
        outbox.append(KIND_OPEN, &body)?;
        // One durable reservation per start: it also makes the OPEN record and the replay's truncation durable.
        outbox.reserve(outbox.next_seq + SEQ_RESERVATION)?;
        outbox.delete_drained_segments()?;
        Ok(outbox)
    }

    /// What opening found (torn tails cut, files quarantined, `seq` numbers skipped).
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Store a message whose payload may embed its own `seq` (built by `payload_for`).
    ///
    /// The record reaches the kernel before this returns (a process crash cannot lose it); it reaches the
    /// disk with the next sync.
    pub fn push_with(
        &mut self,
        topic: &str,
        payload_for: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<PushOutcome, OutboxError> {
        let topic_len = u16::try_from(topic.len()).map_err(|_| OutboxError::TopicTooLong)?;
        let mut dropped_seq = None;
        if self.index.len() >= self.max_messages {
            match self.on_full {
                OverflowPolicy::DropNewest => {
                    self.append(KIND_REJECTED, &1u64.to_le_bytes())?;
                    self.dropped_total += 1;
                    return Ok(PushOutcome::Rejected);
                }
                OverflowPolicy::DropOldest => {
                    if let Some(oldest) = self.first_seq() {
                        self.remove_records(&[oldest], true)?;
                        dropped_seq = Some(oldest);
                    }
                }
            }
        }
        if self.next_seq >= self.reserved_until {
            self.reserve(self.next_seq + SEQ_RESERVATION)?;
        }
        let seq = self.next_seq;
        let payload = payload_for(seq);
        let mut body = message_body(seq, topic_len, topic, &payload);
        if body.len() + 1 > MAX_RECORD_BODY {
            return Err(OutboxError::TooLarge(payload.len()));
        }
        let active_len = self.active().len;
        if active_len > self.header_end()
            && active_len + (RECORD_HEADER + 1 + body.len()) as u64 > self.segment_bytes
        {
            self.rotate()?;
        }
        let (offset, len) = self.append(KIND_MESSAGE, &body)?;
        // `seq` may jump past the last message (the reservation skip after a reboot).
        self.index
            .push(seq, Slot { offset, len })
            .map_err(|seq| OutboxError::Corrupt { seq })?;
        let payload_start = body.len() - payload.len();
        body.drain(..payload_start);
        self.newest = Some(OutboxMessage {
            seq,
            topic: topic.to_string(),
            payload: body,
        });
        self.next_seq = seq + 1;
        self.unsynced_from.get_or_insert(seq);
        Ok(match dropped_seq {
            Some(dropped_seq) => PushOutcome::StoredDroppingOldest { seq, dropped_seq },
            None => PushOutcome::Stored { seq },
        })
    }

    /// Store a message with a fixed payload.
    pub fn push(&mut self, topic: &str, payload: &[u8]) -> Result<PushOutcome, OutboxError> {
        self.push_with(topic, |_| payload.to_vec())
    }

    /// Up to `limit` live messages with `seq >= from`, oldest first.
    ///
    /// A record that fails its checksum on read (bad media) is reported as [`OutboxError::Corrupt`];
    /// the caller decides whether to [`Outbox::discard_corrupt`] it.
    pub fn read_from(&self, from: u64, limit: usize) -> Result<Vec<OutboxMessage>, OutboxError> {
        self.index
            .live_from(from)
            .take(limit)
            .map(|(seq, slot)| self.read_message(seq, slot))
            .collect()
    }

    /// Delete acknowledged messages. Their removal record is written with the next record (the next
    /// message, a sync, the close), not on its own: that saves a write per PUBACK. If the agent dies
    /// before that, or the power fails before the next sync, the removal is lost: the messages come back
    /// and are sent again with their `seq` (a duplicate, never a loss).
    pub fn remove(&mut self, seqs: &[u64]) -> Result<(), OutboxError> {
        let removed = self.forget(seqs);
        self.pending_removals.extend_from_slice(&removed);
        if self.pending_removals.len() >= MAX_PENDING_REMOVALS {
            // A backlog replay acknowledges thousands while no reading is taken: keep records small.
            self.write_pending_removals()?;
        }
        self.delete_drained_segments()
    }

    /// Drop a message whose record is unreadable, counting it as lost, so the queue can move on.
    pub fn discard_corrupt(&mut self, seq: u64) -> Result<(), OutboxError> {
        self.remove_records(&[seq], true)?;
        self.delete_drained_segments()
    }

    /// Whether a message written since the last sync is still waiting for its PUBACK.
    pub fn needs_sync(&self) -> bool {
        self.unsynced_from
            .is_some_and(|from| self.index.live_from(from).next().is_some())
    }

    /// A detached sync of what has been written so far (pending removals included); hand it back with
    /// [`Outbox::synced`].
    pub fn sync_ticket(&mut self) -> Result<SyncTicket, OutboxError> {
        self.write_pending_removals()?;
        Ok(SyncTicket {
            file: self.active().file.try_clone()?,
            next_seq: self.next_seq,
        })
    }

    /// Record that a ticket's sync completed.
    pub fn synced(&mut self, ticket: SyncTicket) {
        self.unsynced_from = match self.unsynced_from {
            Some(from) if from < ticket.next_seq => {
                (self.next_seq > ticket.next_seq).then_some(ticket.next_seq)
            }
            other => other,
        };
    }

    /// Make everything written so far durable (blocking).
    pub fn sync(&mut self) -> Result<(), OutboxError> {
        let ticket = self.sync_ticket()?.run()?;
        self.synced(ticket);
        Ok(())
    }

    /// Mark a clean shutdown and make it durable: the next start continues at exactly `next_seq`.
    pub fn close(mut self) -> Result<(), OutboxError> {
        let next_seq = self.next_seq;
        self.append(KIND_CLOSE, &next_seq.to_le_bytes())?;
        self.active().file.sync_data()?;
        Ok(())
    }

    /// Whether message `seq` is stored and not yet removed.
    pub fn is_live(&self, seq: u64) -> bool {
        self.index.is_live(seq)
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.index.first_seq()
    }

    pub fn len(&self) -> u64 {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// The `seq` the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Messages lost to the bound (or to corrupt media) since the outbox was created; survives restarts.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Segment files on disk right now.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&self) -> &Segment {
        // `open_with` guarantees at least one segment and nothing removes the last one.
        &self.segments[self.segments.len() - 1]
    }

    fn header_end(&self) -> u64 {
        segment_start_len(self.boot_id.as_ref().map_or(0, String::len)) as u64
    }

    fn segment_for(&self, seq: u64) -> Option<&Segment> {
        let index = self.segments.partition_point(|s| s.first_seq <= seq);
        index.checked_sub(1).map(|i| &self.segments[i])
    }

    fn read_message(&self, seq: u64, slot: Slot) -> Result<OutboxMessage, OutboxError> {
        if let Some(newest) = self.newest.as_ref().filter(|m| m.seq == seq) {
            return Ok(newest.clone());
        }
        let corrupt = || OutboxError::Corrupt { seq };
        let segment = self.segment_for(seq).ok_or_else(corrupt)?;
        let mut record = vec![0u8; slot.len as usize];
        segment
            .file
            .read_exact_at(&mut record, u64::from(slot.offset))
            .map_err(|_| corrupt())?;
        let (kind, body) = match check_record(&record) {
            Some((kind, body, used)) if used == record.len() => (kind, body),
            _ => return Err(corrupt()),
        };
        match parse_message(kind, body) {
            Some((found, topic, payload)) if found == seq => Ok(OutboxMessage {
                seq,
                topic: String::from_utf8(topic.to_vec()).map_err(|_| corrupt())?,
                payload: payload.to_vec(),
            }),
            _ => Err(corrupt()),
        }
    }

    /// Take messages out of the in-memory queue; returns the ones that were live.
    fn forget(&mut self, seqs: &[u64]) -> Vec<u64> {
        let removed = self.index.forget(seqs, self.next_seq);
        if self
            .newest
            .as_ref()
            .is_some_and(|m| removed.contains(&m.seq))
        {
            self.newest = None;
        }
        removed
    }

    /// Remove messages now, with a record of its own (drops: the count must not depend on a later write).
    fn remove_records(&mut self, seqs: &[u64], dropped: bool) -> Result<(), OutboxError> {
        let removed = self.forget(seqs);
        if removed.is_empty() {
            return Ok(());
        }
        if dropped {
            self.dropped_total += removed.len() as u64;
        }
        // The in-memory state changed first: if the record cannot be written the messages are gone from
        // this run's queue anyway, and at worst come back after a restart (a duplicate).
        self.append(KIND_REMOVED, &removal_body(dropped, &removed))
            .map(|_| ())
    }

    fn write_pending_removals(&mut self) -> Result<(), OutboxError> {
        if self.pending_removals.is_empty() {
            return Ok(());
        }
        let body = removal_body(false, &std::mem::take(&mut self.pending_removals));
        self.append(KIND_REMOVED, &body).map(|_| ())
    }

    /// Append one record to the active segment, after the pending removals (one write for both);
    /// returns the record's (offset, length).
    fn append(&mut self, kind: u8, body: &[u8]) -> Result<(u32, u32), OutboxError> {
        self.scratch.clear();
        if !self.pending_removals.is_empty() {
            let removals = removal_body(false, &self.pending_removals);
            encode_record(&mut self.scratch, KIND_REMOVED, &removals);
        }
        let record_start = self.scratch.len();
        encode_record(&mut self.scratch, kind, body);
        let last = self.segments.len() - 1;
        let segment = &mut self.segments[last];
        let offset = u32::try_from(segment.len + record_start as u64)
            .map_err(|_| OutboxError::TooLarge(body.len()))?;
        segment.append(&self.scratch)?;
        self.pending_removals.clear();
        Ok((offset, (self.scratch.len() - record_start) as u32))
    }

    /// Reserve `seq` numbers below `until`, durably, before any of them is handed out.
    fn reserve(&mut self, until: u64) -> Result<(), OutboxError> {
        self.append(KIND_RESERVE, &until.to_le_bytes())?;
        self.active().file.sync_data()?;
        self.reserved_until = until;
        Ok(())
    }

    /// Close the active segment (durably: nothing in it may be lost once it is not the one being synced)
    /// and start the next one.
    fn rotate(&mut self) -> Result<(), OutboxError> {
        self.active().file.sync_data()?;
        self.unsynced_from = None;
        self.start_segment()?;
        self.delete_drained_segments()
    }

    fn start_segment(&mut self) -> std::io::Result<()> {
        let segment = Segment::create(
            &self.dir,
            SegmentHeader {
                first_seq: self.next_seq,
                dropped_total: self.dropped_total,
                reserved_until: self.reserved_until,
                boot_id: &self.boot_id,
            },
        )?;
        self.segments.push(segment);
        Ok(())
    }

    /// Delete the oldest segments whose messages are all gone (never the active one).
    fn delete_drained_segments(&mut self) -> Result<(), OutboxError> {
        let oldest_live = self.first_seq().unwrap_or(self.next_seq);
        while self.segments.len() > 1 && self.segments[1].first_seq <= oldest_live {
            let segment = self.segments.remove(0);
            std::fs::remove_file(&segment.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

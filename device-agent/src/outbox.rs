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

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::config::OverflowPolicy;

/// First bytes of every segment file.
const MAGIC: &[u8; 8] = b"DAOUTBX1";
const SEGMENT_SUFFIX: &str = ".seg";
const LOCK_FILE: &str = "LOCK";
/// A new segment starts once the newest one has grown past this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 20;
/// `seq` numbers reserved by one durable record: one extra sync per this many messages.
pub const SEQ_RESERVATION: u64 = 10_000;
/// The magic plus the largest header record (a 64-byte boot id): a newest segment no longer than this
/// and without a valid header is a rotation that a power loss cut short.
const MAX_SEGMENT_START: usize = segment_start_len(MAX_BOOT_ID_LEN);
/// Longest boot id stored (the kernel's is a 36-character UUID).
const MAX_BOOT_ID_LEN: usize = 64;

/// Bytes before a segment's first record: the magic and the header record (3 u64, the boot id with its
/// length byte).
const fn segment_start_len(boot_id_len: usize) -> usize {
    MAGIC.len() + RECORD_HEADER + 1 + 24 + 1 + boot_id_len
}
/// Removals kept back for the next write at most (8 bytes each in the record).
const MAX_PENDING_REMOVALS: usize = 1024;
/// Length prefix + CRC-32.
const RECORD_HEADER: usize = 8;
/// AWS's 128 KiB payload limit plus a 64 KiB topic, with room to spare; anything longer is corruption.
const MAX_RECORD_BODY: usize = 256 * 1024;

// Record kinds (the first body byte).
const KIND_HEADER: u8 = 1;
const KIND_MESSAGE: u8 = 2;
const KIND_REMOVED: u8 = 3;
const KIND_REJECTED: u8 = 4;
const KIND_RESERVE: u8 = 5;
const KIND_OPEN: u8 = 6;
const KIND_CLOSE: u8 = 7;

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
    /// `seq` numbers skipped because the log was left unclosed by an earlier boot (see the module docs).
    pub skipped_seqs: u64,
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

struct Segment {
    first_seq: u64,
    path: PathBuf,
    file: File,
    len: u64,
}

/// Where a live message's record is; `len == 0` marks a removed slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u32,
    len: u32,
}

const REMOVED_SLOT: Slot = Slot { offset: 0, len: 0 };

pub struct Outbox {
    dir: PathBuf,
    _lock: File,
    /// Oldest first; the last one is written to.
    segments: Vec<Segment>,
    /// `slots[i]` is message `base + i`.
    slots: VecDeque<Slot>,
    base: u64,
    live: u64,
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
            .field("live", &self.live)
            .field("next_seq", &self.next_seq)
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

/// A sync of the segment being written, detached so it can run off the async thread.
#[derive(Debug)]
pub struct SyncTicket {
    file: File,
    next_seq: u64,
}

impl SyncTicket {
    /// Block until everything written before the ticket was taken is on stable storage.
    pub fn run(self) -> std::io::Result<Self> {
        self.file.sync_data()?;
        Ok(self)
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
        let mut outbox = Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            segments: replayed.segments,
            slots: VecDeque::new(),
            base: replayed.next_seq,
            live: 0,
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
        if let Some((&first, _)) = replayed.live.first_key_value() {
            outbox.base = first;
            for (seq, slot) in replayed.live {
                let index =
                    usize::try_from(seq - first).map_err(|_| OutboxError::Corrupt { seq })?;
                if outbox.slots.len() < index {
                    outbox.slots.resize(index, REMOVED_SLOT);
                }
                outbox.slots.push_back(slot);
                outbox.live += 1;
            }
        }
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
        if self.live >= self.max_messages {
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
        let mut body = Vec::with_capacity(10 + topic.len() + payload.len());
        body.extend_from_slice(&seq.to_le_bytes());
        body.extend_from_slice(&topic_len.to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&payload);
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
        if self.slots.is_empty() {
            self.base = seq;
        } else {
            // `seq` may jump past the last message (the reservation skip after a reboot): the gap holds
            // removed slots, so a slot's index stays `seq - base`.
            let index =
                usize::try_from(seq - self.base).map_err(|_| OutboxError::Corrupt { seq })?;
            self.slots.resize(index, REMOVED_SLOT);
        }
        let payload_start = body.len() - payload.len();
        body.drain(..payload_start);
        self.newest = Some(OutboxMessage {
            seq,
            topic: topic.to_string(),
            payload: body,
        });
        self.slots.push_back(Slot { offset, len });
        self.live += 1;
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
        let start = from.max(self.base);
        let mut out = Vec::new();
        let Ok(skip) = usize::try_from(start - self.base) else {
            return Ok(out);
        };
        for (index, slot) in self.slots.iter().enumerate().skip(skip) {
            if out.len() >= limit {
                break;
            }
            if slot.len == 0 {
                continue;
            }
            let seq = self.base + index as u64;
            out.push(self.read_message(seq, *slot)?);
        }
        Ok(out)
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
        let Some(from) = self.unsynced_from else {
            return false;
        };
        let skip = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.slots.iter().skip(skip).any(|slot| slot.len != 0)
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
        seq.checked_sub(self.base)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| self.slots.get(index))
            .is_some_and(|slot| slot.len != 0)
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.slots
            .iter()
            .position(|slot| slot.len != 0)
            .map(|index| self.base + index as u64)
    }

    pub fn len(&self) -> u64 {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
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
        let mut removed = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let Some(index) = seq
                .checked_sub(self.base)
                .and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            if let Some(slot) = self.slots.get_mut(index)
                && slot.len != 0
            {
                *slot = REMOVED_SLOT;
                removed.push(seq);
            }
        }
        self.live -= removed.len() as u64;
        while self.slots.front().is_some_and(|slot| slot.len == 0) {
            self.slots.pop_front();
            self.base += 1;
        }
        if self.slots.is_empty() {
            self.base = self.next_seq;
        }
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
        segment.file.write_all_at(&self.scratch, segment.len)?;
        segment.len += self.scratch.len() as u64;
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
        let first_seq = self.next_seq;
        let path = self.dir.join(segment_name(first_seq));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut bytes = MAGIC.to_vec();
        let mut body = Vec::with_capacity(25 + 64);
        body.extend_from_slice(&first_seq.to_le_bytes());
        body.extend_from_slice(&self.dropped_total.to_le_bytes());
        body.extend_from_slice(&self.reserved_until.to_le_bytes());
        put_boot(&mut body, &self.boot_id);
        encode_record(&mut bytes, KIND_HEADER, &body);
        file.write_all_at(&bytes, 0)?;
        file.sync_data()?;
        // The new name must be durable too, or a power loss could lose the segment with its records.
        File::open(&self.dir)?.sync_all()?;
        self.segments.push(Segment {
            first_seq,
            path,
            file,
            len: bytes.len() as u64,
        });
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

fn removal_body(dropped: bool, seqs: &[u64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(5 + seqs.len() * 8);
    body.push(u8::from(dropped));
    body.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
    for seq in seqs {
        body.extend_from_slice(&seq.to_le_bytes());
    }
    body
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

fn put_boot(body: &mut Vec<u8>, boot_id: &Option<String>) {
    let id = boot_id.as_deref().unwrap_or("");
    body.push(id.len() as u8);
    body.extend_from_slice(id.as_bytes());
}

fn encode_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(body);
    out.extend_from_slice(&((body.len() + 1) as u32).to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// A valid record at the start of `bytes`: (kind, body, bytes used).
fn check_record(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (crc, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if len == 0 || len > MAX_RECORD_BODY || rest.len() < len {
        return None;
    }
    let content = &rest[..len];
    if crc32fast::hash(content) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (kind, body) = content.split_first()?;
    Some((*kind, body, RECORD_HEADER + len))
}

fn parse_message(kind: u8, body: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    if kind != KIND_MESSAGE {
        return None;
    }
    let (seq, rest) = body.split_first_chunk::<8>()?;
    let (topic_len, rest) = rest.split_first_chunk::<2>()?;
    let topic_len = usize::from(u16::from_be_bytes(*topic_len));
    if rest.len() < topic_len {
        return None;
    }
    let (topic, payload) = rest.split_at(topic_len);
    Some((u64::from_le_bytes(*seq), topic, payload))
}

fn read_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (value, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*value), rest))
}

fn read_boot(bytes: &[u8]) -> Option<Option<String>> {
    let (len, rest) = bytes.split_first()?;
    let id = rest.get(..usize::from(*len))?;
    let id = std::str::from_utf8(id).ok()?;
    Some((!id.is_empty()).then(|| id.to_string()))
}

/// The state rebuilt from the segment files.
struct Replayed {
    segments: Vec<Segment>,
    live: std::collections::BTreeMap<u64, Slot>,
    next_seq: u64,
    reserved_until: u64,
    dropped_total: u64,
    recovery: Recovery,
}

/// One record's effect on the replay, or `None` when the record does not parse (treated like a torn one).
#[derive(Default)]
struct ReplayState {
    live: std::collections::BTreeMap<u64, Slot>,
    highest_seq: u64,
    reserved_until: u64,
    dropped_total: u64,
    writer_boot: Option<String>,
    closed: bool,
}

impl ReplayState {
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
                self.highest_seq = self.highest_seq.max(read_u64(body)?.0.saturating_sub(1));
                self.closed = true;
            }
            _ => return None,
        }
        Some(())
    }
}

fn replay(dir: &Path, boot_id: &Option<String>) -> std::io::Result<Replayed> {
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
        while let Some((kind, body, used)) = check_record(&bytes[offset..]) {
            let (Ok(at), Ok(len)) = (u32::try_from(offset), u32::try_from(used)) else {
                break;
            };
            if kind == KIND_HEADER || state.apply(kind, body, at, len, first_seq).is_none() {
                break;
            }
            offset += used;
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
    use super::*;

    const BOOT_A: &str = "0b6e2a4c-0000-4000-8000-00000000000a";
    const BOOT_B: &str = "0b6e2a4c-0000-4000-8000-00000000000b";

    fn options(max: u64, policy: OverflowPolicy, boot: &str) -> OutboxOptions {
        OutboxOptions {
            max_messages: max,
            on_full: policy,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            boot_id: Some(boot.to_string()),
        }
    }

    fn open(dir: &tempfile::TempDir) -> Outbox {
        Outbox::open_with(dir.path(), options(10, OverflowPolicy::DropOldest, BOOT_A)).unwrap()
    }

    fn seqs(outbox: &Outbox) -> Vec<u64> {
        outbox
            .read_from(0, usize::MAX)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    }

    fn newest_segment(dir: &Path) -> PathBuf {
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
        assert!(
            outbox.is_live(2) && !outbox.is_live(3) && !outbox.is_live(0) && !outbox.is_live(9)
        );
        outbox.remove(&[2, 4, 5, 99]).unwrap();
        assert!(outbox.is_empty());
        assert_eq!(outbox.first_seq(), None);
        assert_eq!(
            outbox.push("t", b"x").unwrap(),
            PushOutcome::Stored { seq: 6 }
        );
    }

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
                let slot = outbox.slots.back().unwrap();
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

    #[test]
    fn a_flipped_byte_loses_that_record_and_what_follows_not_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        let mut offsets = Vec::new();
        for i in 0..4u8 {
            outbox.push("t", &[i; 20]).unwrap();
            offsets.push(outbox.slots.back().unwrap().offset);
        }
        drop(outbox);
        let segment = newest_segment(dir.path());
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[offsets[2] as usize + 20] ^= 0x40;
        std::fs::write(&segment, &bytes).unwrap();
        let outbox = open(&dir);
        assert_eq!(seqs(&outbox), [1, 2]);
        assert!(outbox.recovery().discarded_bytes > 0);
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

    #[test]
    fn a_corrupt_read_is_an_error_and_can_be_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(&dir);
        outbox.push("t", &[1; 30]).unwrap();
        outbox.push("t", &[2; 30]).unwrap();
        let offset = outbox.slots[0].offset;
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
}

//! Segment files: `<first seq, 20 digits>.seg`, the magic, a header record, then appended records.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{KIND_HEADER, RECORD_HEADER, encode_record, put_boot};

/// First bytes of every segment file.
pub(super) const MAGIC: &[u8; 8] = b"DAOUTBX1";
pub(super) const SEGMENT_SUFFIX: &str = ".seg";
/// Longest boot id stored (the kernel's is a 36-character UUID).
pub(super) const MAX_BOOT_ID_LEN: usize = 64;
/// The magic plus the largest header record (a 64-byte boot id): a newest segment no longer than this
/// and without a valid header is a rotation that a power loss cut short.
pub(super) const MAX_SEGMENT_START: usize = segment_start_len(MAX_BOOT_ID_LEN);

/// Bytes before a segment's first record: the magic and the header record (3 u64, the boot id with its
/// length byte).
pub(super) const fn segment_start_len(boot_id_len: usize) -> usize {
    MAGIC.len() + RECORD_HEADER + 1 + 24 + 1 + boot_id_len
}

pub(super) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// What a segment's header record carries over from the log before it, so that deleting older
/// segments loses neither the drop count nor the reservation.
#[derive(Debug, Clone, Copy)]
pub(super) struct SegmentHeader<'a> {
    pub first_seq: u64,
    pub dropped_total: u64,
    pub reserved_until: u64,
    pub boot_id: &'a Option<String>,
}

pub(super) struct Segment {
    pub first_seq: u64,
    pub path: PathBuf,
    pub file: File,
    pub len: u64,
}

impl Segment {
    /// Create the segment file in `dir`, its header durable and its name too, before anything is
    /// appended: a power loss can then only leave a whole header or a file replay knows to remove.
    pub fn create(dir: &Path, header: SegmentHeader<'_>) -> std::io::Result<Self> {
        let path = dir.join(segment_name(header.first_seq));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut bytes = MAGIC.to_vec();
        let mut body = Vec::with_capacity(25 + 64);
        body.extend_from_slice(&header.first_seq.to_le_bytes());
        body.extend_from_slice(&header.dropped_total.to_le_bytes());
        body.extend_from_slice(&header.reserved_until.to_le_bytes());
        put_boot(&mut body, header.boot_id);
        encode_record(&mut bytes, KIND_HEADER, &body);
        file.write_all_at(&bytes, 0)?;
        file.sync_data()?;
        // The new name must be durable too, or a power loss could lose the segment with its records.
        File::open(dir)?.sync_all()?;
        Ok(Self {
            first_seq: header.first_seq,
            path,
            file,
            len: bytes.len() as u64,
        })
    }

    /// Write `bytes` at the end of the segment (into the page cache; durable with the next sync).
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// A sync of the segment being written, detached so it can run off the async thread.
#[derive(Debug)]
pub struct SyncTicket {
    pub(super) file: File,
    pub(super) next_seq: u64,
}

impl SyncTicket {
    /// Block until everything written before the ticket was taken is on stable storage.
    pub fn run(self) -> std::io::Result<Self> {
        self.file.sync_data()?;
        Ok(self)
    }
}

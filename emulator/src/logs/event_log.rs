//! A stream's events: memory holds only an [`IndexEntry`] per event (its read position, its times, where
//! its line is and how long its message is); the event itself is a JSON line in [`EventLines`], the
//! stream's `.events.jsonl` file (a store with a state directory) or a byte buffer (the in-memory store),
//! and is read back when a page needs its message. So a persistent store's memory grows by
//! [`INDEX_ENTRY_BYTES`] per stored event whatever the messages' size (issue 13, item 8).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::LogsError;
use super::model::StoredEvent;
use super::validation::EVENT_OVERHEAD_BYTES;

/// A read of a page asks the file for at least this much at a time, so the neighbouring lines of a page
/// (usually adjacent: events are appended in time order) come with one system call.
const READ_AHEAD_BYTES: usize = 64 * 1024;
/// The longest line a store can have written: a 1 MiB message of control characters, each escaped as
/// `\u00XX` (6 bytes), plus the other fields. A longer line is damage and is skipped at start without
/// being held in memory.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// What memory holds per stored event: its position in read order (timestamp, seq), its ingestion time,
/// and where its line is in [`EventLines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) timestamp: i64,
    pub(crate) seq: u64,
    pub(crate) ingestion_time: i64,
    offset: u64,
    /// Without the newline.
    line_len: u32,
    message_len: u32,
}

/// The size of an [`IndexEntry`]; a stream's index is a `Vec`, so up to twice this per event while the
/// `Vec` has spare capacity after growing.
pub const INDEX_ENTRY_BYTES: usize = std::mem::size_of::<IndexEntry>();
const _: () = assert!(INDEX_ENTRY_BYTES == 40);

impl IndexEntry {
    fn new(event: &StoredEvent, offset: u64, line_len: usize) -> Self {
        Self {
            timestamp: event.timestamp,
            seq: event.seq,
            ingestion_time: event.ingestion_time,
            offset,
            // Lines are at most MAX_LINE_BYTES and messages 1 MiB (PutLogEvents' batch limit).
            line_len: u32::try_from(line_len).unwrap_or(u32::MAX),
            message_len: u32::try_from(event.message.len()).unwrap_or(u32::MAX),
        }
    }

    /// Position of the event in read order: timestamp, then arrival. Timestamps are never negative
    /// (older than 14 days is refused), so the cast keeps the order.
    pub(crate) fn key(&self) -> u128 {
        (u128::from(self.timestamp.max(0).unsigned_abs()) << 64) | u128::from(self.seq)
    }

    pub(crate) fn message_len(&self) -> usize {
        self.message_len as usize
    }

    /// What the event counts towards a 1 MB page (as in PutLogEvents' batch size).
    pub(crate) fn size(&self) -> usize {
        self.message_len() + EVENT_OVERHEAD_BYTES
    }

    fn end(&self) -> u64 {
        self.offset + u64::from(self.line_len)
    }
}

/// Where a stream's event lines are.
#[derive(Debug)]
pub(crate) enum EventLines {
    /// The in-memory store keeps the lines (and so the messages) in memory: it is for tests and runs
    /// without a state directory, and is bounded only by what is written to it.
    Memory(Vec<u8>),
    /// The stream's `.events.jsonl` file, opened for each append and each read (a group may have many
    /// streams; no file handle is held between requests).
    File(PathBuf),
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> LogsError {
    let context = format!("{context} {}", path.display());
    move |source| LogsError::storage(context, source)
}

fn damaged(path: &Path, what: String) -> LogsError {
    LogsError::storage(
        format!("reading {}", path.display()),
        std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    )
}

impl EventLines {
    /// Append the events as one write (so a crash tears at most the batch's last line, which the next
    /// start cuts off) and return their index entries.
    pub(crate) fn append(&mut self, events: &[StoredEvent]) -> Result<Vec<IndexEntry>, LogsError> {
        let mut lines = Vec::new();
        let mut spans = Vec::with_capacity(events.len());
        for event in events {
            let start = lines.len();
            serde_json::to_writer(&mut lines, event)
                .map_err(|error| LogsError::storage("encoding event", error.into()))?;
            spans.push((start, lines.len() - start));
            lines.push(b'\n');
        }
        let base = match self {
            Self::Memory(bytes) => {
                let base = bytes.len() as u64;
                bytes.extend_from_slice(&lines);
                base
            }
            Self::File(path) => append_to_file(path, &lines)?,
        };
        Ok(events
            .iter()
            .zip(spans)
            .map(|(event, (start, len))| IndexEntry::new(event, base + start as u64, len))
            .collect())
    }

    /// The messages of `entries` (of this stream), in the same order. The file is read in offset order
    /// with read-ahead, so a page of adjacent events costs a few reads.
    pub(crate) fn messages(&self, entries: &[IndexEntry]) -> Result<Vec<String>, LogsError> {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].offset);
        let mut messages = vec![String::new(); entries.len()];
        match self {
            Self::Memory(bytes) => {
                for i in order {
                    let entry = &entries[i];
                    let line = usize::try_from(entry.offset)
                        .ok()
                        .and_then(|start| bytes.get(start..start + entry.line_len as usize))
                        .ok_or_else(|| damaged(Path::new("memory"), "line out of range".into()))?;
                    messages[i] = decode(line, entry, Path::new("memory"))?;
                }
            }
            Self::File(path) => {
                if entries.is_empty() {
                    return Ok(messages);
                }
                let file = File::open(path).map_err(io_error("opening", path))?;
                let until = order.last().map_or(0, |&i| entries[i].end());
                let mut window = ReadWindow::default();
                for i in order {
                    let entry = &entries[i];
                    let line = window
                        .line(&file, entry, until)
                        .map_err(io_error("reading", path))?;
                    messages[i] = decode(line, entry, path)?;
                }
            }
        }
        Ok(messages)
    }

    /// Message bytes this stream holds in memory (0 with a file).
    #[cfg(test)]
    pub(crate) fn resident_bytes(&self) -> usize {
        match self {
            Self::Memory(bytes) => bytes.len(),
            Self::File(_) => 0,
        }
    }
}

/// Appends `lines` and returns the offset they start at. A failed write is cut back off (best effort), so
/// the next batch does not start in the middle of a line.
fn append_to_file(path: &Path, lines: &[u8]) -> Result<u64, LogsError> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error("opening", path))?;
    let base = file
        .metadata()
        .map_err(io_error("reading the size of", path))?
        .len();
    if let Err(error) = file.write_all(lines) {
        if let Err(cut) = file.set_len(base) {
            tracing::warn!(file = %path.display(), %cut, "could not cut a failed append off");
        }
        return Err(io_error("appending to", path)(error));
    }
    Ok(base)
}

fn decode(line: &[u8], entry: &IndexEntry, path: &Path) -> Result<String, LogsError> {
    match serde_json::from_slice::<StoredEvent>(line) {
        Ok(event) if event.seq == entry.seq => Ok(event.message),
        Ok(event) => Err(damaged(
            path,
            format!(
                "the index says event {} is at {}, the file has event {}",
                entry.seq, entry.offset, event.seq
            ),
        )),
        Err(error) => Err(damaged(
            path,
            format!("event {} at {}: {error}", entry.seq, entry.offset),
        )),
    }
}

/// A piece of the file read ahead: at most [`READ_AHEAD_BYTES`] or one line, whichever is longer.
#[derive(Default)]
struct ReadWindow {
    start: u64,
    bytes: Vec<u8>,
}

impl ReadWindow {
    /// The line of `entry`, reading ahead no further than `until` (the end of the last line wanted).
    fn line(&mut self, file: &File, entry: &IndexEntry, until: u64) -> std::io::Result<&[u8]> {
        let len = entry.line_len as usize;
        let held =
            entry.offset >= self.start && entry.end() <= self.start + self.bytes.len() as u64;
        if !held {
            let ahead = usize::try_from(until.saturating_sub(entry.offset)).unwrap_or(usize::MAX);
            let want = len.max(READ_AHEAD_BYTES.min(ahead));
            self.bytes.resize(want, 0);
            let mut filled = 0;
            while filled < want {
                match file.read_at(&mut self.bytes[filled..], entry.offset + filled as u64) {
                    Ok(0) => break,
                    Ok(read) => filled += read,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            self.bytes.truncate(filled);
            self.start = entry.offset;
            if filled < len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("event {} ends past the end of the file", entry.seq),
                ));
            }
        }
        let from = (entry.offset - self.start) as usize;
        Ok(&self.bytes[from..from + len])
    }
}

/// The index of a stream's file, in file order, built by reading it once line by line (no message is
/// kept). Unreadable lines (bad JSON, bytes that are not UTF-8, e.g. a file cut inside a multi-byte
/// character, or a line longer than any the store writes) are skipped with a warning. A last line
/// without its newline is a torn write: it is cut off the file, so that the next append starts a line of
/// its own instead of being glued to the torn one (and lost at the following start).
pub(crate) fn scan(path: &Path) -> Result<Vec<IndexEntry>, LogsError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error("reading", path)(error)),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut entries = Vec::new();
    let mut line = Vec::new();
    let mut overlong = false;
    let mut line_start = 0u64;
    let mut position = 0u64;
    let mut number = 0usize;
    loop {
        let available = reader.fill_buf().map_err(io_error("reading", path))?;
        if available.is_empty() {
            break;
        }
        let newline = available.iter().position(|byte| *byte == b'\n');
        let piece = &available[..newline.unwrap_or(available.len())];
        if !overlong && line.len() + piece.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(piece);
        } else {
            overlong = true;
            line.clear();
        }
        let consumed = newline.map_or(piece.len(), |at| at + 1);
        reader.consume(consumed);
        position += consumed as u64;
        if newline.is_none() {
            continue;
        }
        number += 1;
        let line_len = (position - 1 - line_start) as usize;
        if overlong {
            tracing::warn!(file = %path.display(), line = number, bytes = line_len,
                "skipping a log event line longer than any the store writes");
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<StoredEvent>(&line) {
                Ok(event) => entries.push(IndexEntry::new(&event, line_start, line_len)),
                Err(error) => tracing::warn!(file = %path.display(), line = number, %error,
                    "skipping unreadable log event line"),
            }
        }
        line.clear();
        overlong = false;
        line_start = position;
    }
    if position > line_start {
        tracing::warn!(file = %path.display(), bytes = position - line_start,
            "cutting a torn last line (a write interrupted by a crash)");
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_error("opening", path))?;
        file.set_len(line_start)
            .and_then(|()| file.sync_all())
            .map_err(io_error("truncating", path))?;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seq: u64, message: &str) -> StoredEvent {
        StoredEvent {
            timestamp: 1_000 + seq as i64,
            ingestion_time: 2_000,
            seq,
            message: message.to_string(),
        }
    }

    #[test]
    fn lines_read_back_by_offset_in_memory_and_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<_> = (1..=50)
            .map(|seq| stored(seq, &format!("{seq} \"quoted\" été {}", "x".repeat(3_000))))
            .collect();
        for mut lines in [
            EventLines::Memory(Vec::new()),
            EventLines::File(dir.path().join("s.events.jsonl")),
        ] {
            let mut entries = lines.append(&events[..20]).unwrap();
            entries.extend(lines.append(&events[20..]).unwrap());
            // Any order, any subset: each message comes back in the asked order.
            let asked: Vec<IndexEntry> = entries.iter().rev().step_by(3).copied().collect();
            let expected: Vec<String> = events
                .iter()
                .rev()
                .step_by(3)
                .map(|e| e.message.clone())
                .collect();
            assert_eq!(lines.messages(&asked).unwrap(), expected);
            assert_eq!(entries[4].message_len(), events[4].message.len());
            if let EventLines::File(path) = &lines {
                assert_eq!(scan(path).unwrap(), entries);
            }
        }
    }

    #[test]
    fn a_scan_skips_damage_and_keeps_the_offsets_of_the_lines_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.events.jsonl");
        let mut lines = EventLines::File(path.clone());
        let first = lines.append(&[stored(1, "one")]).unwrap();
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"not json\n\n").unwrap();
        file.write_all(&vec![b'x'; MAX_LINE_BYTES + 1]).unwrap();
        file.write_all(b"\n").unwrap();
        drop(file);
        let second = lines.append(&[stored(2, "two")]).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"timestamp":1,"seq":3,"mess"#)
            .unwrap();

        let entries = scan(&path).unwrap();
        assert_eq!(entries, [first[0], second[0]]);
        assert_eq!(lines.messages(&entries).unwrap(), ["one", "two"]);
        // The torn tail was cut: the next append is a line of its own, at the offset the index gives.
        let third = lines.append(&[stored(4, "four")]).unwrap();
        assert_eq!(scan(&path).unwrap(), [first[0], second[0], third[0]]);
        assert_eq!(lines.messages(&third).unwrap(), ["four"]);
    }

    #[test]
    fn a_file_changed_under_the_index_is_a_storage_error_not_a_wrong_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.events.jsonl");
        let mut lines = EventLines::File(path.clone());
        let entries = lines.append(&[stored(1, "one"), stored(2, "two")]).unwrap();
        fs::write(&path, b"").unwrap();
        assert!(matches!(
            lines.messages(&entries),
            Err(LogsError::Storage { .. })
        ));
        let mut other = EventLines::File(path.clone());
        other
            .append(&[stored(7, "seven"), stored(8, "eight")])
            .unwrap();
        assert!(matches!(
            lines.messages(&entries[..1]),
            Err(LogsError::Storage { .. })
        ));
    }
}

//! The broker's durable state: retained messages and persistent sessions (subscriptions and queued QoS 1
//! messages) survive a restart, as on AWS (reference 6.3, 6.4), when the broker has a state directory.
//!
//! Format: `<state>/journal.jsonl`, one JSON [`Record`] per line, appended as the router changes. On start the
//! journal is replayed; a line that does not parse (a torn tail after a crash, or damage) is skipped with a
//! warning, so a crash mid-write never stops the next start. Then the journal is compacted: the current state
//! is written to `journal.jsonl.tmp`, synced and renamed over the journal (atomic), and appending continues.
//! The router compacts again whenever the appended bytes exceed [`COMPACT_ABOVE_MIN_BYTES`] or twice the last
//! compacted size, so the file stays within a small multiple of the state, which the router bounds in memory
//! (`Limits::max_retained_messages`, `max_queued_offline`, 50 subscriptions per session).
//!
//! Writes go to one writer thread through a bounded channel ([`CHANNEL_CAPACITY`]; a full channel makes the
//! router wait: backpressure, never a lost record). Lines are flushed to the OS when the channel runs empty,
//! not fsynced: a killed emulator loses nothing the OS received; a power cut may lose the last moments.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::message::{Message, Origin, Qos};

/// Journal records waiting for the writer thread.
const CHANNEL_CAPACITY: usize = 4096;
/// The journal is compacted once it has grown by this much and by more than the last compacted size.
pub(crate) const COMPACT_ABOVE_MIN_BYTES: u64 = 16 * 1024 * 1024;
const JOURNAL_FILE: &str = "journal.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("broker state in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A message as the journal keeps it. The publisher is not kept: a restored message is delivered, never
/// routed to rules again, so its origin becomes the broker's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredMessage {
    pub topic: String,
    /// Base64, so binary payloads survive JSON.
    pub payload: String,
    pub qos: u8,
    pub timestamp_ms: i64,
}

impl StoredMessage {
    pub(crate) fn from_message(message: &Message, qos: Qos) -> Self {
        Self {
            topic: message.topic.clone(),
            payload: BASE64.encode(&message.payload),
            qos: qos.level(),
            timestamp_ms: message.timestamp_ms,
        }
    }

    /// `None` for a record that cannot be a message (bad base64 or QoS); the caller skips it.
    pub(crate) fn to_message(&self, retain: bool) -> Option<(Message, Qos)> {
        let payload = BASE64.decode(&self.payload).ok()?;
        let qos = Qos::from_level(self.qos)?;
        Some((
            Message {
                topic: self.topic.clone(),
                payload: payload.into(),
                qos,
                retain,
                origin: Origin::Broker,
                is_will: false,
                timestamp_ms: self.timestamp_ms,
            },
            qos,
        ))
    }
}

/// A persistent session as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredSession {
    pub client_id: String,
    pub session_identifier: String,
    /// Filter and granted QoS.
    pub subscriptions: Vec<(String, u8)>,
    /// Wall-clock expiry while offline; `None` while connected (a crash then starts the expiry at restart).
    pub offline_expires_at_ms: Option<i64>,
    pub queued: Vec<StoredMessage>,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub(crate) enum Record {
    Retain {
        message: StoredMessage,
    },
    Unretain {
        topic: String,
    },
    /// The whole state of one persistent session (after connect, subscribe, unsubscribe, disconnect).
    Session {
        session: StoredSession,
    },
    /// A QoS 1 message queued for an offline persistent session.
    Enqueue {
        client_id: String,
        message: StoredMessage,
    },
    DropSession {
        client_id: String,
    },
}

/// What a journal held when it was opened.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    pub retained: BTreeMap<String, StoredMessage>,
    pub sessions: HashMap<String, StoredSession>,
    /// Lines skipped because they did not parse (a torn tail after a crash).
    pub skipped_lines: usize,
}

impl Restored {
    fn apply(&mut self, record: Record, max_queued: usize) {
        match record {
            Record::Retain { message } => {
                self.retained.insert(message.topic.clone(), message);
            }
            Record::Unretain { topic } => {
                self.retained.remove(&topic);
            }
            Record::Session { session } => {
                self.sessions.insert(session.client_id.clone(), session);
            }
            Record::Enqueue { client_id, message } => {
                if let Some(session) = self.sessions.get_mut(&client_id)
                    && session.queued.len() < max_queued
                {
                    session.queued.push(message);
                }
            }
            Record::DropSession { client_id } => {
                self.sessions.remove(&client_id);
            }
        }
    }

    /// The records that recreate this state (a compacted journal).
    #[cfg(test)]
    pub(crate) fn records(&self) -> Vec<Record> {
        let retained = self.retained.values().map(|message| Record::Retain {
            message: message.clone(),
        });
        let sessions = self.sessions.values().map(|session| Record::Session {
            session: session.clone(),
        });
        retained.chain(sessions).collect()
    }
}

/// Reads `<dir>/journal.jsonl` (absent: empty state), skipping lines that do not parse.
pub(crate) fn load(dir: &Path, max_queued: usize) -> Result<Restored, JournalError> {
    let path = dir.join(JOURNAL_FILE);
    let io_error = |source| JournalError::Io {
        path: path.clone(),
        source,
    };
    let mut restored = Restored::default();
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(restored),
        Err(error) => return Err(io_error(error)),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(io_error)?;
        if read == 0 {
            break;
        }
        // A line without its newline is the torn tail of an interrupted append.
        let complete = line.last() == Some(&b'\n');
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) if complete => restored.apply(record, max_queued),
            _ => restored.skipped_lines += 1,
        }
    }
    if restored.skipped_lines > 0 {
        tracing::warn!(
            path = %path.display(),
            skipped = restored.skipped_lines,
            "ignored unreadable lines in the broker journal (a torn tail after a crash?)"
        );
    }
    Ok(restored)
}

enum Command {
    Append(Vec<u8>),
    /// Replace the journal with these lines (the state at the moment the router sent them).
    Compact(Vec<Vec<u8>>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The router's handle on the journal. Cheap to share.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    sender: SyncSender<Command>,
    sizes: Arc<Sizes>,
}

#[derive(Debug, Default)]
struct Sizes {
    /// Bytes appended since the last compaction.
    appended: AtomicU64,
    /// Size of the last compacted journal.
    compacted: AtomicU64,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Append(_) => "Append",
            Command::Compact(_) => "Compact",
            Command::Flush(_) => "Flush",
        })
    }
}

fn encode(record: &Record) -> Vec<u8> {
    // Serializing these plain structs cannot fail; an empty line would be skipped on replay anyway.
    let mut line = serde_json::to_vec(record).unwrap_or_default();
    line.push(b'\n');
    line
}

impl Journal {
    /// Starts the writer thread on `<dir>/journal.jsonl` and compacts it to `initial` (the replayed state), which
    /// also drops a torn tail.
    pub(crate) fn open(dir: &Path, initial: Vec<Record>) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(JOURNAL_FILE);
        let lines: Vec<Vec<u8>> = initial.iter().map(encode).collect();
        let file = compact(&path, &lines).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        let sizes = Arc::new(Sizes::default());
        sizes.compacted.store(
            lines.iter().map(|line| line.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
        std::thread::Builder::new()
            .name("broker-journal".into())
            .spawn(move || write_loop(path, file, receiver))
            .map_err(|source| JournalError::Io {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Journal { sender, sizes })
    }

    pub(crate) fn append(&self, record: &Record) {
        let line = encode(record);
        self.sizes
            .appended
            .fetch_add(line.len() as u64, Ordering::Relaxed);
        if self.sender.send(Command::Append(line)).is_err() {
            tracing::error!(
                "the broker journal writer has stopped; state will not survive a restart"
            );
        }
    }

    /// Whether the appended bytes call for a compaction.
    pub(crate) fn wants_compaction(&self) -> bool {
        let appended = self.sizes.appended.load(Ordering::Relaxed);
        let compacted = self.sizes.compacted.load(Ordering::Relaxed);
        appended > COMPACT_ABOVE_MIN_BYTES.max(compacted)
    }

    /// Replaces the journal with `records` (taken under the router's lock, so nothing is lost or reordered).
    pub(crate) fn compact(&self, records: &[Record]) {
        let lines: Vec<Vec<u8>> = records.iter().map(encode).collect();
        self.sizes.appended.store(0, Ordering::Relaxed);
        self.sizes.compacted.store(
            lines.iter().map(|line| line.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let _ = self.sender.send(Command::Compact(lines));
    }

    /// Waits until everything sent so far is written to the OS.
    pub(crate) async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        let sender = self.sender.clone();
        // `send` may block on a full channel; keep that off the async runtime's threads.
        let sent = tokio::task::spawn_blocking(move || sender.send(Command::Flush(done)).is_ok())
            .await
            .unwrap_or(false);
        if sent {
            let _ = wait.await;
        }
    }
}

/// Writes `lines` to `<path>.tmp`, syncs it and renames it over `path`; returns the file opened for appending.
fn compact(path: &Path, lines: &[Vec<u8>]) -> std::io::Result<File> {
    let temporary = path.with_extension("jsonl.tmp");
    {
        let mut writer = BufWriter::new(File::create(&temporary)?);
        for line in lines {
            writer.write_all(line)?;
        }
        writer.flush()?;
        writer.get_ref().sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    OpenOptions::new().append(true).open(path)
}

fn write_loop(path: PathBuf, file: File, receiver: Receiver<Command>) {
    let mut writer = BufWriter::new(file);
    let mut pending_flushes = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            let result = match command {
                Command::Append(line) => writer.write_all(&line),
                Command::Compact(lines) => writer
                    .flush()
                    .and_then(|()| compact(&path, &lines))
                    .map(|file| writer = BufWriter::new(file)),
                Command::Flush(done) => {
                    pending_flushes.push(done);
                    Ok(())
                }
            };
            if let Err(error) = result {
                tracing::error!(path = %path.display(), %error, "writing the broker journal failed");
            }
            next = receiver.try_recv().ok();
        }
        if let Err(error) = writer.flush() {
            tracing::error!(path = %path.display(), %error, "flushing the broker journal failed");
        }
        for done in pending_flushes.drain(..) {
            let _ = done.send(());
        }
    }
    let _ = writer.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, payload: &str) -> StoredMessage {
        StoredMessage {
            topic: topic.into(),
            payload: BASE64.encode(payload),
            qos: 1,
            timestamp_ms: 7,
        }
    }

    fn session(client_id: &str) -> StoredSession {
        StoredSession {
            client_id: client_id.into(),
            session_identifier: "s".into(),
            subscriptions: vec![("a/#".into(), 1)],
            offline_expires_at_ms: Some(100),
            queued: Vec::new(),
        }
    }

    #[tokio::test]
    async fn replay_applies_records_in_order_and_skips_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), Vec::new()).unwrap();
        journal.append(&Record::Retain {
            message: message("a", "1"),
        });
        journal.append(&Record::Retain {
            message: message("b", "2"),
        });
        journal.append(&Record::Unretain { topic: "a".into() });
        journal.append(&Record::Session {
            session: session("c"),
        });
        for payload in ["q1", "q2", "q3"] {
            journal.append(&Record::Enqueue {
                client_id: "c".into(),
                message: message("a/x", payload),
            });
        }
        journal.append(&Record::Session {
            session: session("gone"),
        });
        journal.append(&Record::DropSession {
            client_id: "gone".into(),
        });
        journal.flush().await;
        drop(journal);
        // A crash in the middle of the next append.
        let path = dir.path().join(JOURNAL_FILE);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"op":"retain","message":{"topic":"tor"#)
            .unwrap();
        drop(file);

        let restored = load(dir.path(), 2).unwrap();
        assert_eq!(restored.skipped_lines, 1);
        assert_eq!(restored.retained.keys().collect::<Vec<_>>(), ["b"]);
        let queued: Vec<_> = restored.sessions["c"]
            .queued
            .iter()
            .map(|message| message.payload.clone())
            .collect();
        assert_eq!(
            queued,
            [BASE64.encode("q1"), BASE64.encode("q2")],
            "bounded"
        );
        assert!(!restored.sessions.contains_key("gone"));

        // Opening compacts: the torn tail is gone and the state reads back the same.
        let journal = Journal::open(dir.path(), restored.records()).unwrap();
        journal.flush().await;
        let again = load(dir.path(), 2).unwrap();
        assert_eq!(again.skipped_lines, 0);
        assert_eq!(again.retained, restored.retained);
        assert_eq!(again.sessions, restored.sessions);
    }

    #[test]
    fn a_stored_message_round_trips_binary_payloads() {
        let original = Message {
            topic: "t".into(),
            payload: bytes::Bytes::from_static(&[0, 159, 146, 150]),
            qos: Qos::AtLeastOnce,
            retain: true,
            origin: Origin::Broker,
            is_will: false,
            timestamp_ms: 42,
        };
        let stored = StoredMessage::from_message(&original, Qos::AtLeastOnce);
        let (restored, qos) = stored.to_message(true).unwrap();
        assert_eq!(restored, original);
        assert_eq!(qos, Qos::AtLeastOnce);
        let broken = StoredMessage { qos: 2, ..stored };
        assert!(broken.to_message(true).is_none());
    }
}

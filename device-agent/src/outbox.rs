//! Disk-backed, bounded, crash-safe FIFO of telemetry waiting for a PUBACK.
//!
//! Storage is one redb file with two tables: `messages` (`seq -> topic + payload`) and `meta` (`next_seq`,
//! `dropped_total`). redb commits are copy-on-write with a checksummed, atomically switched root and an
//! fsync before `commit` returns (`Durability::Immediate`) for every push. So after a crash or a power loss
//! the file holds exactly the state of the last durable transaction: a message is either fully stored
//! or absent. A message is removed only after the broker's PUBACK for it, so every stored reading is
//! delivered at least once; removals are non-durable commits made durable by the next push (or `sync` at
//! shutdown), so a crash can at worst bring back acknowledged messages, which are then re-sent (duplicates
//! with the same `seq`, which consumers can de-duplicate), never lose one.
//!
//! `seq` comes from a persisted counter, not from the last key, so it keeps increasing after the outbox
//! drains and across restarts: it is the delivery order and the de-duplication key.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::config::OverflowPolicy;

const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_SEQ: &str = "next_seq";
const DROPPED_TOTAL: &str = "dropped_total";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "cannot open outbox {path}: {source}; check that the directory exists and is writable by the agent \
         (systemd: StateDirectory=device-agent), or that no other agent process holds it"
    )]
    Open {
        path: PathBuf,
        source: Box<redb::Error>,
    },
    #[error("outbox storage error: {0}")]
    Storage(#[from] Box<redb::Error>),
    #[error("outbox entry {seq} is corrupt")]
    Corrupt { seq: u64 },
    #[error("topic is longer than 65535 bytes")]
    TopicTooLong,
}

fn storage<E: Into<redb::Error>>(e: E) -> OutboxError {
    OutboxError::Storage(Box::new(e.into()))
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

pub struct Outbox {
    db: Database,
    max_messages: u64,
    on_full: OverflowPolicy,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("max_messages", &self.max_messages)
            .field("on_full", &self.on_full)
            .finish()
    }
}

/// redb page cache for the outbox.
const OUTBOX_CACHE_BYTES: usize = 512 * 1024;

impl Outbox {
    pub fn open(
        path: &Path,
        max_messages: u64,
        on_full: OverflowPolicy,
    ) -> Result<Self, OutboxError> {
        let open_error = |source: redb::Error| OutboxError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        // A small page cache: the outbox is read sequentially once per replay, and on a Pi every
        // resident megabyte counts (redb's default cache may grow to 1 GiB).
        let db = redb::Builder::new()
            .set_cache_size(OUTBOX_CACHE_BYTES)
            .create(path)
            .map_err(|e| open_error(e.into()))?;
        let txn = db.begin_write().map_err(|e| open_error(e.into()))?;
        {
            txn.open_table(MESSAGES).map_err(|e| open_error(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| open_error(e.into()))?;
            if meta
                .get(NEXT_SEQ)
                .map_err(|e| open_error(e.into()))?
                .is_none()
            {
                meta.insert(NEXT_SEQ, 1).map_err(|e| open_error(e.into()))?;
            }
        }
        txn.commit().map_err(|e| open_error(e.into()))?;
        Ok(Self {
            db,
            max_messages: max_messages.max(1),
            on_full,
        })
    }

    /// Open, or, when the file is not a readable outbox (corrupted, or written by an incompatible redb
    /// format), move it aside as `<name>.corrupt-<epoch>` and start empty. A stopped agent would lose every
    /// future reading; the caller logs the quarantined file so nothing disappears silently.
    pub fn open_or_quarantine(
        path: &Path,
        max_messages: u64,
        on_full: OverflowPolicy,
    ) -> Result<(Self, Option<PathBuf>), OutboxError> {
        match Self::open(path, max_messages, on_full) {
            Err(OutboxError::Open { source, .. }) if is_unreadable_database(&source) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{stamp}"));
                let aside = PathBuf::from(aside);
                std::fs::rename(path, &aside).map_err(|e| OutboxError::Open {
                    path: path.to_path_buf(),
                    source: Box::new(redb::Error::Io(e)),
                })?;
                Ok((Self::open(path, max_messages, on_full)?, Some(aside)))
            }
            other => other.map(|outbox| (outbox, None)),
        }
    }

    /// Store a message whose payload may embed its own `seq` (built by `payload_for`), in one transaction.
    pub fn push_with(
        &self,
        topic: &str,
        payload_for: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<PushOutcome, OutboxError> {
        let topic_len = u16::try_from(topic.len()).map_err(|_| OutboxError::TopicTooLong)?;
        let txn = self.db.begin_write().map_err(storage)?;
        let outcome = {
            let mut messages = txn.open_table(MESSAGES).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            let mut dropped_seq = None;
            if messages.len().map_err(storage)? >= self.max_messages {
                match self.on_full {
                    OverflowPolicy::DropNewest => {
                        let dropped = meta
                            .get(DROPPED_TOTAL)
                            .map_err(storage)?
                            .map(|v| v.value())
                            .unwrap_or(0);
                        meta.insert(DROPPED_TOTAL, dropped + 1).map_err(storage)?;
                        drop((messages, meta));
                        txn.commit().map_err(storage)?;
                        return Ok(PushOutcome::Rejected);
                    }
                    OverflowPolicy::DropOldest => {
                        let oldest = messages
                            .pop_first()
                            .map_err(storage)?
                            .map(|(k, _)| k.value());
                        if oldest.is_some() {
                            let dropped = meta
                                .get(DROPPED_TOTAL)
                                .map_err(storage)?
                                .map(|v| v.value())
                                .unwrap_or(0);
                            meta.insert(DROPPED_TOTAL, dropped + 1).map_err(storage)?;
                        }
                        dropped_seq = oldest;
                    }
                }
            }
            let seq = meta
                .get(NEXT_SEQ)
                .map_err(storage)?
                .map(|v| v.value())
                .unwrap_or(1);
            meta.insert(NEXT_SEQ, seq + 1).map_err(storage)?;
            let payload = payload_for(seq);
            let mut record = Vec::with_capacity(2 + topic.len() + payload.len());
            record.extend_from_slice(&topic_len.to_be_bytes());
            record.extend_from_slice(topic.as_bytes());
            record.extend_from_slice(&payload);
            messages.insert(seq, record.as_slice()).map_err(storage)?;
            match dropped_seq {
                Some(dropped_seq) => PushOutcome::StoredDroppingOldest { seq, dropped_seq },
                None => PushOutcome::Stored { seq },
            }
        };
        txn.commit().map_err(storage)?;
        Ok(outcome)
    }

    /// Store a message with a fixed payload.
    pub fn push(&self, topic: &str, payload: &[u8]) -> Result<PushOutcome, OutboxError> {
        self.push_with(topic, |_| payload.to_vec())
    }

    /// Up to `limit` messages with `seq >= from`, oldest first.
    pub fn read_from(&self, from: u64, limit: usize) -> Result<Vec<OutboxMessage>, OutboxError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let messages = txn.open_table(MESSAGES).map_err(storage)?;
        let mut out = Vec::new();
        for entry in messages.range(from..).map_err(storage)?.take(limit) {
            let (key, value) = entry.map_err(storage)?;
            out.push(decode(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// Delete acknowledged messages in one transaction, without an fsync of its own.
    ///
    /// A non-durable commit is made durable by the next durable one (every `push`, and `sync`). If the power
    /// fails before that, redb rolls back to the last durable state: the removed messages reappear and are
    /// sent again with their `seq` (a duplicate, never a loss). That halves the fsyncs per message, which
    /// matters for SD-card latency and wear.
    pub fn remove(&self, seqs: &[u64]) -> Result<(), OutboxError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(redb::Durability::None)
            .map_err(storage)?;
        {
            let mut messages = txn.open_table(MESSAGES).map_err(storage)?;
            for seq in seqs {
                messages.remove(*seq).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    /// Make every earlier commit durable (called on shutdown, after the last removals).
    pub fn sync(&self) -> Result<(), OutboxError> {
        let txn = self.db.begin_write().map_err(storage)?;
        txn.commit().map_err(storage)
    }

    pub fn first_seq(&self) -> Result<Option<u64>, OutboxError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let messages = txn.open_table(MESSAGES).map_err(storage)?;
        Ok(messages.first().map_err(storage)?.map(|(k, _)| k.value()))
    }

    pub fn len(&self) -> Result<u64, OutboxError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let messages = txn.open_table(MESSAGES).map_err(storage)?;
        messages.len().map_err(storage)
    }

    pub fn is_empty(&self) -> Result<bool, OutboxError> {
        Ok(self.len()? == 0)
    }

    /// The `seq` the next message will get; `next_seq() - 1` is the last one ever stored.
    pub fn next_seq(&self) -> Result<u64, OutboxError> {
        self.meta(NEXT_SEQ).map(|v| v.unwrap_or(1))
    }

    /// Messages lost to the bound since the outbox was created (persisted, survives restarts).
    pub fn dropped_total(&self) -> Result<u64, OutboxError> {
        self.meta(DROPPED_TOTAL).map(|v| v.unwrap_or(0))
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, OutboxError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let meta = txn.open_table(META).map_err(storage)?;
        Ok(meta.get(key).map_err(storage)?.map(|v| v.value()))
    }
}

fn is_unreadable_database(error: &redb::Error) -> bool {
    match error {
        redb::Error::Corrupted(_) | redb::Error::UpgradeRequired(_) => true,
        // A file that is not a redb database at all fails the header check as invalid data.
        redb::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

fn decode(seq: u64, record: &[u8]) -> Result<OutboxMessage, OutboxError> {
    let corrupt = || OutboxError::Corrupt { seq };
    let (len, rest) = record.split_first_chunk::<2>().ok_or_else(corrupt)?;
    let topic_len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < topic_len {
        return Err(corrupt());
    }
    let (topic, payload) = rest.split_at(topic_len);
    let topic = String::from_utf8(topic.to_vec()).map_err(|_| corrupt())?;
    Ok(OutboxMessage {
        seq,
        topic,
        payload: payload.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir, max: u64, policy: OverflowPolicy) -> Outbox {
        Outbox::open(&dir.path().join("outbox.redb"), max, policy).unwrap()
    }

    #[test]
    fn fifo_order_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(&dir, 10, OverflowPolicy::DropOldest);
        for i in 0..5u8 {
            outbox.push("t/a", &[i]).unwrap();
        }
        let all = outbox.read_from(0, 100).unwrap();
        assert_eq!(
            all.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(
            all[2],
            OutboxMessage {
                seq: 3,
                topic: "t/a".into(),
                payload: vec![2]
            }
        );
        outbox.remove(&[1, 3]).unwrap();
        assert_eq!(
            outbox
                .read_from(0, 100)
                .unwrap()
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            [2, 4, 5]
        );
        assert_eq!(outbox.read_from(3, 1).unwrap()[0].seq, 4);
    }

    #[test]
    fn survives_reopen_and_keeps_counting() {
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = open(&dir, 10, OverflowPolicy::DropOldest);
            outbox.push("t", b"a").unwrap();
            outbox.push("t", b"b").unwrap();
            outbox.remove(&[1, 2]).unwrap();
            outbox.push("t", b"c").unwrap();
        }
        let outbox = open(&dir, 10, OverflowPolicy::DropOldest);
        let left = outbox.read_from(0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(
            (left[0].seq, left[0].payload.as_slice()),
            (3, b"c".as_slice())
        );
        assert_eq!(
            outbox.push("t", b"d").unwrap(),
            PushOutcome::Stored { seq: 4 }
        );
    }

    #[test]
    fn sync_makes_removals_durable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = open(&dir, 10, OverflowPolicy::DropOldest);
            outbox.push("t", b"a").unwrap();
            outbox.push("t", b"b").unwrap();
            outbox.remove(&[1]).unwrap();
            outbox.sync().unwrap();
        }
        let outbox = open(&dir, 10, OverflowPolicy::DropOldest);
        assert_eq!(
            outbox
                .read_from(0, 10)
                .unwrap()
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            [2]
        );
    }

    #[test]
    fn drop_oldest_policy_counts_losses() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(&dir, 3, OverflowPolicy::DropOldest);
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
        assert_eq!(outbox.len().unwrap(), 3);
        assert_eq!(outbox.first_seq().unwrap(), Some(2));
        assert_eq!(outbox.dropped_total().unwrap(), 1);
    }

    #[test]
    fn drop_newest_policy_keeps_history() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(&dir, 2, OverflowPolicy::DropNewest);
        outbox.push("t", b"1").unwrap();
        outbox.push("t", b"2").unwrap();
        assert_eq!(outbox.push("t", b"3").unwrap(), PushOutcome::Rejected);
        assert_eq!(
            outbox
                .read_from(0, 9)
                .unwrap()
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(outbox.dropped_total().unwrap(), 1);
        assert_eq!(
            outbox.next_seq().unwrap(),
            3,
            "a rejected message does not consume a seq"
        );
    }

    #[test]
    fn payload_can_embed_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(&dir, 5, OverflowPolicy::DropOldest);
        outbox
            .push_with("t", |seq| format!("{{\"seq\":{seq}}}").into_bytes())
            .unwrap();
        assert_eq!(outbox.read_from(0, 1).unwrap()[0].payload, b"{\"seq\":1}");
    }

    #[test]
    fn unreadable_file_is_quarantined_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.redb");
        std::fs::write(&path, vec![0xA5; 8192]).unwrap();
        let (outbox, aside) =
            Outbox::open_or_quarantine(&path, 10, OverflowPolicy::DropOldest).unwrap();
        let aside = aside.expect("the bad file was moved aside");
        assert_eq!(std::fs::read(&aside).unwrap(), vec![0xA5; 8192]);
        assert_eq!(
            outbox.push("t", b"x").unwrap(),
            PushOutcome::Stored { seq: 1 }
        );
    }

    #[test]
    fn healthy_file_is_not_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.redb");
        Outbox::open(&path, 10, OverflowPolicy::DropOldest)
            .unwrap()
            .push("t", b"x")
            .unwrap();
        let (outbox, aside) =
            Outbox::open_or_quarantine(&path, 10, OverflowPolicy::DropOldest).unwrap();
        assert_eq!((aside, outbox.len().unwrap()), (None, 1));
    }

    #[test]
    fn corrupt_record_is_an_error_not_a_panic() {
        assert!(matches!(
            decode(9, &[0, 5, b'a']),
            Err(OutboxError::Corrupt { seq: 9 })
        ));
        assert!(matches!(
            decode(9, &[0]),
            Err(OutboxError::Corrupt { seq: 9 })
        ));
    }
}

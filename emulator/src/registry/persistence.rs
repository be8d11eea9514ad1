//! The registry on disk: a snapshot (`registry.json`) and a journal of the changes since (`registry.journal`).
//!
//! Each change appends one JSON line (`{"seq":N,"ops":[...]}`) and is made durable with `fdatasync` before the
//! call returns, so a change costs the size of the change, not of the registry (issue 12: 10,000 things used to
//! rewrite the whole file 40,000 times). Concurrent callers share a sync (group commit): a caller whose line an
//! earlier sync already covered returns without another. The journal is folded into a new snapshot when the
//! registry is opened and when it grows past twice the snapshot (at least [`MIN_COMPACTION_BYTES`]), which keeps
//! the amortized cost per change constant.
//!
//! A crash in the middle of an append leaves a torn last line: at open it is skipped with a warning and cut off
//! (the journal is compacted away), so the next append starts on a clean line. A damaged line *before* intact ones
//! is not a torn write; the registry then refuses to open rather than silently dropping changes.
//!
//! The first format (until issue 12) was `registry.json` alone, with policies as `name -> document`; it is read
//! and migrated (each policy becomes version 1) on the first open, which rewrites the file in the new format.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::model::{
    CertificateRecord, Op, PolicyRecord, PolicyVersionRecord, RegistryData, State, ThingRecord,
};
use super::{AttachmentKind, CertificateStatus, RegistryError, lock};

pub const SNAPSHOT_FILE: &str = "registry.json";
pub const JOURNAL_FILE: &str = "registry.journal";
/// Held (an exclusive advisory lock) by the process that has the registry open; holds that process's id.
pub const LOCK_FILE: &str = "registry.lock";
const FORMAT_VERSION: u32 = 2;
/// Below this the journal is never compacted at run time: replaying a few MiB at the next open is cheap.
pub const MIN_COMPACTION_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotOut<'a> {
    format_version: u32,
    /// The last journal sequence number folded into this snapshot; replay skips lines up to it, so a crash
    /// between writing the snapshot and emptying the journal applies nothing twice.
    journal_seq: u64,
    /// Nested rather than flattened: serde's flatten buffers content and cannot read the numeric keys of policy
    /// versions back.
    registry: &'a State,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotIn {
    #[serde(default)]
    journal_seq: u64,
    registry: State,
}

/// Reads only the format marker, so telling the formats apart does not build a second copy of the registry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FormatProbe {
    #[serde(default)]
    format_version: Option<u32>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    seq: u64,
    ops: &'a [Op],
}

#[derive(Deserialize)]
struct LineIn {
    seq: u64,
    ops: Vec<Op>,
}

/// The registry file as it was before issue 12.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyData {
    #[serde(default)]
    things: BTreeMap<String, LegacyThing>,
    #[serde(default)]
    certificates: BTreeMap<String, LegacyCertificate>,
    #[serde(default)]
    policies: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    principal_policies: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    thing_principals: BTreeMap<String, BTreeMap<String, AttachmentKind>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyThing {
    #[serde(default)]
    thing_type_name: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyCertificate {
    certificate_pem: String,
    status: CertificateStatus,
    creation_date_ms: i64,
}

fn migrate(legacy: LegacyData) -> State {
    let now = crate::clock::now_millis();
    State {
        things: legacy
            .things
            .into_iter()
            .map(|(name, thing)| {
                let record = ThingRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    type_name: thing.thing_type_name,
                    attributes: thing.attributes,
                    version: 1,
                };
                (name, record)
            })
            .collect(),
        certificates: legacy
            .certificates
            .into_iter()
            .map(|(id, certificate)| {
                let record = CertificateRecord {
                    pem: certificate.certificate_pem,
                    status: certificate.status,
                    created_ms: certificate.creation_date_ms,
                    last_modified_ms: certificate.creation_date_ms,
                    customer_version: 1,
                    generation_id: uuid::Uuid::new_v4().to_string(),
                };
                (id, record)
            })
            .collect(),
        policies: legacy
            .policies
            .into_iter()
            .map(|(name, document)| {
                let record = PolicyRecord {
                    versions: BTreeMap::from([(
                        1,
                        PolicyVersionRecord {
                            document: document.to_string(),
                            created_ms: now,
                        },
                    )]),
                    default_version: 1,
                    next_version: 2,
                    created_ms: now,
                    last_modified_ms: now,
                    generation_id: uuid::Uuid::new_v4().to_string(),
                };
                (name, record)
            })
            .collect(),
        principal_policies: legacy.principal_policies,
        thing_principals: legacy.thing_principals,
    }
}

/// When a change is on stable storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Synced (`fdatasync`, shared by concurrent callers) before the call returns: a returned change survives a
    /// power loss. The default.
    #[default]
    EveryChange,
    /// Written to the operating system before the call returns, so it survives the emulator crashing or being
    /// killed, but synced only at compaction and when the registry is closed: a power loss or kernel crash can
    /// lose the last changes. For bulk provisioning on a disk where every sync waits behind other writers.
    Buffered,
}

/// The open journal and what compaction needs to know.
#[derive(Debug)]
struct Journal {
    file: File,
    len: u64,
    last_seq: u64,
    snapshot_bytes: u64,
}

/// The files of a file-backed registry.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Locked for the store's life: a second process appending to the same journal would interleave sequence
    /// numbers and lose changes at the next replay, so it is refused at open instead.
    _lock: File,
    /// The journal is never compacted at run time below this size ([`MIN_COMPACTION_BYTES`]; tests lower it).
    pub compaction_floor: u64,
    durability: Durability,
    journal: Mutex<Journal>,
    /// The same open file as `journal.file`, so a sync needs no lock that appenders wait on.
    sync_handle: File,
    /// The highest sequence number written to the journal (the next sync covers it).
    written_seq: AtomicU64,
    /// The highest sequence number known durable. Held during a sync: callers queue here and most find their line
    /// already covered when they get it (group commit).
    synced_seq: Mutex<u64>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::Corrupt {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl Store {
    /// Loads the snapshot (migrating the first format), replays the journal over it, compacts, and opens the
    /// journal for appending.
    pub fn open(
        dir: &Path,
        durability: Durability,
    ) -> Result<(Store, RegistryData), RegistryError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let directory_lock = lock_directory(dir)?;
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let journal_path = dir.join(JOURNAL_FILE);

        let (state, snapshot_seq, migrated) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => read_snapshot(&snapshot_path, &bytes)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (State::default(), 0, false)
            }
            Err(source) => {
                return Err(RegistryError::Io {
                    path: snapshot_path,
                    source,
                });
            }
        };
        let mut data =
            RegistryData::from_state(state).map_err(|message| corrupt(&snapshot_path, message))?;

        let mut journal_bytes = Vec::new();
        match File::open(&journal_path) {
            Ok(mut file) => {
                file.read_to_end(&mut journal_bytes)
                    .map_err(io_error(&journal_path))?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RegistryError::Io {
                    path: journal_path,
                    source,
                });
            }
        }
        let last_seq = replay(&journal_path, &journal_bytes, snapshot_seq, &mut data)?;

        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(io_error(&journal_path))?;
        let sync_handle = file.try_clone().map_err(io_error(&journal_path))?;
        let store = Store {
            dir: dir.to_owned(),
            _lock: directory_lock,
            compaction_floor: MIN_COMPACTION_BYTES,
            durability,
            journal: Mutex::new(Journal {
                file,
                len: journal_bytes.len() as u64,
                last_seq,
                snapshot_bytes: 0,
            }),
            sync_handle,
            written_seq: AtomicU64::new(last_seq),
            synced_seq: Mutex::new(last_seq),
        };
        // Folding the journal in at open bounds the next replay, cuts off a torn tail, and writes a migrated
        // registry in the new format.
        if migrated || !journal_bytes.is_empty() {
            store.compact(&data.state)?;
        } else {
            lock(&store.journal).snapshot_bytes = std::fs::metadata(&snapshot_path)
                .map(|metadata| metadata.len())
                .unwrap_or(0);
        }
        Ok((store, data))
    }

    /// Appends one change; returns its sequence number for [`Store::make_durable`]. On a failed write the
    /// journal is cut back to its previous length, so a partial line cannot merge with the next one.
    pub fn append(&self, ops: &[Op]) -> Result<u64, RegistryError> {
        let mut journal = lock(&self.journal);
        let seq = journal.last_seq + 1;
        let mut line = serde_json::to_vec(&LineOut { seq, ops })
            .map_err(|error| corrupt(&self.journal_path(), error.to_string()))?;
        line.push(b'\n');
        if let Err(source) = journal.file.write_all(&line) {
            let previous = journal.len;
            if let Err(error) = journal.file.set_len(previous) {
                tracing::error!(%error, "could not cut a failed registry journal write back");
            }
            return Err(RegistryError::Io {
                path: self.journal_path(),
                source,
            });
        }
        journal.len += line.len() as u64;
        journal.last_seq = seq;
        self.written_seq.store(seq, Ordering::Release);
        Ok(seq)
    }

    /// Returns once the journal line `seq` is on stable storage, syncing unless another caller's sync covered it
    /// (with [`Durability::Buffered`], at once).
    pub fn make_durable(&self, seq: u64) -> Result<(), RegistryError> {
        if self.durability == Durability::Buffered {
            return Ok(());
        }
        let mut synced = lock(&self.synced_seq);
        if *synced >= seq {
            return Ok(());
        }
        let covered = self.written_seq.load(Ordering::Acquire);
        self.sync_handle
            .sync_data()
            .map_err(io_error(&self.journal_path()))?;
        *synced = covered;
        Ok(())
    }

    /// Whether the journal has grown enough that folding it into a snapshot pays for itself.
    pub fn wants_compaction(&self) -> bool {
        let journal = lock(&self.journal);
        journal.len
            > self
                .compaction_floor
                .max(journal.snapshot_bytes.saturating_mul(2))
    }

    /// Writes `state` as the new snapshot and empties the journal. The caller holds the registry's data lock
    /// (read suffices: appends need it for writing), so `state` is exactly what the journal's lines produced.
    pub fn compact(&self, state: &State) -> Result<(), RegistryError> {
        let mut journal = lock(&self.journal);
        let snapshot_path = self.dir.join(SNAPSHOT_FILE);
        let text = serde_json::to_vec_pretty(&SnapshotOut {
            format_version: FORMAT_VERSION,
            journal_seq: journal.last_seq,
            registry: state,
        })
        .map_err(|error| corrupt(&snapshot_path, error.to_string()))?;
        crate::durable::replace_file(&snapshot_path, &text)
            .map_err(|(file, error)| io_error(&file)(error))?;
        // Only now may the journal go: until the rename is durable, the old snapshot plus journal is the truth.
        journal
            .file
            .set_len(0)
            .map_err(io_error(&self.journal_path()))?;
        journal
            .file
            .sync_all()
            .map_err(io_error(&self.journal_path()))?;
        journal.len = 0;
        journal.snapshot_bytes = text.len() as u64;
        let mut synced = lock(&self.synced_seq);
        *synced = (*synced).max(journal.last_seq);
        Ok(())
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }
}

/// Takes the registry's lock in `dir` and writes this process's id into it, or names the process that holds it.
fn lock_directory(dir: &Path) -> Result<File, RegistryError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // The holder's id is informational; an unreadable one still refuses the open.
            let _ = file.read_to_string(&mut holder);
            return Err(RegistryError::InUse {
                dir: dir.to_owned(),
                holder: holder.trim().to_owned(),
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(RegistryError::Io { path, source });
        }
    }
    file.set_len(0).map_err(io_error(&path))?;
    writeln!(file, "{}", std::process::id()).map_err(io_error(&path))?;
    Ok(file)
}

impl Drop for Store {
    /// A buffered journal is synced when the registry closes (an orderly shutdown loses nothing).
    fn drop(&mut self) {
        if self.durability == Durability::Buffered
            && let Err(error) = self.sync_handle.sync_data()
        {
            tracing::warn!(%error, "syncing the registry journal at close failed");
        }
    }
}

/// Returns the state, the journal sequence it includes, and whether it was migrated from the first format.
fn read_snapshot(path: &Path, bytes: &[u8]) -> Result<(State, u64, bool), RegistryError> {
    let probe: FormatProbe =
        serde_json::from_slice(bytes).map_err(|error| corrupt(path, error.to_string()))?;
    let Some(format_version) = probe.format_version else {
        let legacy: LegacyData =
            serde_json::from_slice(bytes).map_err(|error| corrupt(path, error.to_string()))?;
        tracing::info!(path = %path.display(), "migrating the registry from the first file format");
        return Ok((migrate(legacy), 0, true));
    };
    if format_version != FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "format version {format_version} is not {FORMAT_VERSION} (written by a newer emulator?)"
            ),
        ));
    }
    let snapshot: SnapshotIn =
        serde_json::from_slice(bytes).map_err(|error| corrupt(path, error.to_string()))?;
    Ok((snapshot.registry, snapshot.journal_seq, false))
}

/// Applies the journal's lines after `snapshot_seq`; returns the last sequence number seen.
fn replay(
    path: &Path,
    bytes: &[u8],
    snapshot_seq: u64,
    data: &mut RegistryData,
) -> Result<u64, RegistryError> {
    let mut last_seq = snapshot_seq;
    let lines: Vec<&[u8]> = bytes.split(|byte| *byte == b'\n').collect();
    for (index, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: LineIn = match serde_json::from_slice(line) {
            Ok(parsed) => parsed,
            Err(error) => {
                let is_tail = lines[index + 1..]
                    .iter()
                    .all(|rest| rest.iter().all(u8::is_ascii_whitespace));
                if is_tail {
                    tracing::warn!(
                        path = %path.display(),
                        %error,
                        "ignoring a torn last registry journal line (a crash during a write); that change was not acknowledged"
                    );
                    break;
                }
                return Err(corrupt(
                    path,
                    format!("line {} is damaged and is not the last: {error}", index + 1),
                ));
            }
        };
        if parsed.seq <= last_seq {
            continue;
        }
        last_seq = parsed.seq;
        for op in parsed.ops {
            data.apply(op)
                .map_err(|message| corrupt(path, format!("line {}: {message}", index + 1)))?;
        }
    }
    Ok(last_seq)
}

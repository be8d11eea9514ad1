//! The logs state directory: one folder per log group, and per stream a small metadata file plus an
//! append-only JSON-lines file of its events, so a crash loses at most the batch being written.
//!
//! ```text
//! <dir>/<group-stem>/group.json                 {"logGroupName","creationTime","retentionInDays"?}
//! <dir>/<group-stem>/<stream-stem>.stream.json  {"logStreamName","creationTime"}
//! <dir>/<group-stem>/<stream-stem>.events.jsonl {"timestamp","ingestionTime","seq","message"} per line
//! ```
//! Stems are the names with every byte outside `[A-Za-z0-9_-]` written as `%XX` (or a SHA-256 when that
//! would be too long for a file name); the real names live in the metadata files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::LogsError;
use super::model::StoredEvent;
use super::store::{LogGroup, LogStream, State};

const GROUP_FILE: &str = "group.json";
const STREAM_SUFFIX: &str = ".stream.json";
const EVENTS_SUFFIX: &str = ".events.jsonl";
/// Leaves room for the suffixes within the usual 255-byte file-name limit.
const MAX_STEM_BYTES: usize = 200;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupMeta {
    log_group_name: String,
    creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retention_in_days: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamMeta {
    log_stream_name: String,
    creation_time: i64,
}

/// Where a [`super::LogsStore`] keeps its data between runs.
#[derive(Debug, Clone)]
pub(crate) struct Persistence {
    root: PathBuf,
}

fn file_stem(name: &str) -> String {
    let stem = crate::percent::file_name(name);
    if stem.len() > MAX_STEM_BYTES {
        format!("sha256-{}", hex::encode(Sha256::digest(name.as_bytes())))
    } else {
        stem
    }
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> LogsError {
    let context = format!("{context} {}", path.display());
    move |source| LogsError::storage(context, source)
}

impl Persistence {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn group_dir(&self, group: &str) -> PathBuf {
        self.root.join(file_stem(group))
    }

    fn stream_path(&self, group: &str, stream: &str, suffix: &str) -> PathBuf {
        self.group_dir(group)
            .join(format!("{}{suffix}", file_stem(stream)))
    }

    /// Read everything back; unreadable event lines (a torn last write) are skipped with a warning.
    pub(crate) fn load(&self) -> Result<State, LogsError> {
        fs::create_dir_all(&self.root).map_err(io_error("creating", &self.root))?;
        let mut state = State::default();
        let entries = fs::read_dir(&self.root).map_err(io_error("listing", &self.root))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &self.root))?;
            let group_dir = entry.path();
            let group_file = group_dir.join(GROUP_FILE);
            if !group_file.is_file() {
                continue;
            }
            let meta: GroupMeta = read_json(&group_file)?;
            let mut group = LogGroup {
                creation_time: meta.creation_time,
                retention_in_days: meta.retention_in_days,
                streams: BTreeMap::new(),
            };
            let stream_entries =
                fs::read_dir(&group_dir).map_err(io_error("listing", &group_dir))?;
            for stream_entry in stream_entries {
                let path = stream_entry
                    .map_err(io_error("listing", &group_dir))?
                    .path();
                let Some(stem) = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .and_then(|name| name.strip_suffix(STREAM_SUFFIX))
                else {
                    continue;
                };
                let stream_meta: StreamMeta = read_json(&path)?;
                let events_path = group_dir.join(format!("{stem}{EVENTS_SUFFIX}"));
                let events = read_events(&events_path)?;
                state.next_seq = events
                    .iter()
                    .map(|event| event.seq + 1)
                    .fold(state.next_seq, u64::max);
                let mut stream = LogStream::new(stream_meta.creation_time);
                stream.insert_sorted(events);
                group.streams.insert(stream_meta.log_stream_name, stream);
            }
            state.groups.insert(meta.log_group_name, group);
        }
        Ok(state)
    }

    pub(crate) fn write_group(&self, name: &str, group: &LogGroup) -> Result<(), LogsError> {
        let dir = self.group_dir(name);
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        write_json(
            &dir.join(GROUP_FILE),
            &GroupMeta {
                log_group_name: name.to_string(),
                creation_time: group.creation_time,
                retention_in_days: group.retention_in_days,
            },
        )
    }

    pub(crate) fn remove_group(&self, name: &str) -> Result<(), LogsError> {
        let dir = self.group_dir(name);
        match fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error("removing", &dir)(error))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn write_stream(
        &self,
        group: &str,
        stream: &str,
        creation_time: i64,
    ) -> Result<(), LogsError> {
        write_json(
            &self.stream_path(group, stream, STREAM_SUFFIX),
            &StreamMeta {
                log_stream_name: stream.to_string(),
                creation_time,
            },
        )
    }

    pub(crate) fn remove_stream(&self, group: &str, stream: &str) -> Result<(), LogsError> {
        for suffix in [STREAM_SUFFIX, EVENTS_SUFFIX] {
            let path = self.stream_path(group, stream, suffix);
            match fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error("removing", &path)(error));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One `write_all` per batch, so a batch is either fully on disk or (after a crash) torn only in
    /// its last line, which [`Persistence::load`] skips.
    pub(crate) fn append_events(
        &self,
        group: &str,
        stream: &str,
        events: &[StoredEvent],
    ) -> Result<(), LogsError> {
        let path = self.stream_path(group, stream, EVENTS_SUFFIX);
        let mut lines = Vec::new();
        for event in events {
            serde_json::to_writer(&mut lines, event)
                .map_err(|error| LogsError::storage("encoding event", error.into()))?;
            lines.push(b'\n');
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error("opening", &path))?;
        file.write_all(&lines)
            .map_err(io_error("appending to", &path))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LogsError> {
    let bytes = fs::read(path).map_err(io_error("reading", path))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| LogsError::storage(format!("parsing {}", path.display()), error.into()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), LogsError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|error| LogsError::storage("encoding metadata", error.into()))?;
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, bytes).map_err(io_error("writing", &temporary))?;
    fs::rename(&temporary, path).map_err(io_error("renaming", path))
}

fn read_events(path: &Path) -> Result<Vec<StoredEvent>, LogsError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error("reading", path)(error)),
    };
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<StoredEvent>(line) {
            Ok(event) => events.push(event),
            Err(error) => tracing::warn!(
                file = %path.display(),
                line = number + 1,
                %error,
                "skipping unreadable log event line"
            ),
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn stems_are_safe_file_names() {
        assert_eq!(file_stem("/aws/lambda/x"), "%2Faws%2Flambda%2Fx");
        assert_eq!(file_stem(".."), "%2E%2E");
        assert_eq!(file_stem("pi-1_a"), "pi-1_a");
        let long = "/".repeat(300);
        assert!(file_stem(&long).starts_with("sha256-"));
        assert!(file_stem(&long).len() < 100);
    }
}

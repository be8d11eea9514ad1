//! The logs state directory: one folder per log group, and per stream a small metadata file plus an
//! append-only JSON-lines file of its events, so a crash loses at most the batch being written. The
//! events stay on disk: at start each file is read once to build the stream's index
//! ([`super::event_log`]), and pages read their messages from it.
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
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::LogsError;
use super::event_log::{self, EventLines};
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

    /// The file a stream's events are appended to and read from.
    pub(crate) fn events_path(&self, group: &str, stream: &str) -> PathBuf {
        self.stream_path(group, stream, EVENTS_SUFFIX)
    }

    /// Read the metadata back and index every stream's events (no message is kept in memory);
    /// unreadable event lines (a torn last write) are skipped with a warning.
    pub(crate) fn load(&self) -> Result<State, LogsError> {
        fs::create_dir_all(&self.root).map_err(io_error("creating", &self.root))?;
        let mut state = State::default();
        let entries = fs::read_dir(&self.root).map_err(io_error("listing", &self.root))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &self.root))?;
            let group_dir = entry.path();
            let group_file = group_dir.join(GROUP_FILE);
            if !group_dir.is_dir() {
                continue;
            }
            let Some(meta) = self.group_meta(&group_dir, &group_file) else {
                continue;
            };
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
                let Some(stream_meta) =
                    recover_meta(&path, stem, |name, creation_time| StreamMeta {
                        log_stream_name: name,
                        creation_time,
                    })
                else {
                    continue;
                };
                let events_path = group_dir.join(format!("{stem}{EVENTS_SUFFIX}"));
                let index = event_log::scan(&events_path)?;
                state.next_seq = index
                    .iter()
                    .map(|entry| entry.seq + 1)
                    .fold(state.next_seq, u64::max);
                let stream = LogStream::from_index(
                    stream_meta.creation_time,
                    EventLines::File(events_path),
                    index,
                );
                group.streams.insert(stream_meta.log_stream_name, stream);
            }
            state.groups.insert(meta.log_group_name, group);
        }
        Ok(state)
    }

    /// The group's metadata; when `group.json` is missing, empty or torn (a crash or power loss while it was
    /// written), rebuilt from the directory's name so the group's events are not lost and the emulator starts.
    fn group_meta(&self, group_dir: &Path, group_file: &Path) -> Option<GroupMeta> {
        let stem = group_dir.file_name()?.to_str()?;
        if !group_file.exists() {
            // A directory without metadata and without streams is not a group (e.g. an unrelated folder).
            let has_streams = fs::read_dir(group_dir).ok()?.any(|entry| {
                entry.is_ok_and(|entry| {
                    entry
                        .file_name()
                        .to_str()
                        .is_some_and(|name| name.ends_with(STREAM_SUFFIX))
                })
            });
            if !has_streams {
                return None;
            }
        }
        recover_meta(group_file, stem, |name, creation_time| GroupMeta {
            log_group_name: name,
            creation_time,
            retention_in_days: None,
        })
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
}

/// A metadata file (`group.json`, `<stream>.stream.json`), or, when it is missing, empty or unreadable, one rebuilt
/// from the file stem (names are percent-encoded into stems; a hashed stem cannot be decoded and its data is left
/// on disk, unloaded, with an error in the log) and rewritten. Never an error: a torn metadata file must not stop
/// the emulator from starting (issue 13).
fn recover_meta<T: Serialize + serde::de::DeserializeOwned>(
    path: &Path,
    stem: &str,
    rebuild: impl FnOnce(String, i64) -> T,
) -> Option<T> {
    let problem = match fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(meta) => return Some(meta),
            Err(error) => error.to_string(),
        },
        Err(error) => error.to_string(),
    };
    let name = percent_encoding::percent_decode_str(stem)
        .decode_utf8()
        .ok()
        .filter(|_| !stem.starts_with("sha256-"))
        .map(|name| name.into_owned());
    let Some(name) = name else {
        tracing::error!(file = %path.display(), %problem,
            "unreadable metadata with a hashed name: this group or stream is not loaded (its files are kept)");
        return None;
    };
    let creation_time = fs::metadata(path.parent().unwrap_or(path))
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|age| i64::try_from(age.as_millis()).ok())
        .unwrap_or_else(crate::clock::now_millis);
    tracing::warn!(file = %path.display(), %problem, %name, "rebuilt unreadable metadata from the file name");
    let meta = rebuild(name, creation_time);
    if let Err(error) = write_json(path, &meta) {
        tracing::warn!(%error, "could not rewrite the rebuilt metadata");
    }
    Some(meta)
}

/// Replaced whole (`durable::replace_file`): after a crash or power loss the file is either the old or the new
/// text, never empty.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), LogsError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|error| LogsError::storage("encoding metadata", error.into()))?;
    crate::durable::replace_file(path, &bytes)
        .map_err(|(file, error)| LogsError::storage(format!("writing {}", file.display()), error))
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

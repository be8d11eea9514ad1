//! What the shadow service keeps per shadow: a [`ShadowRecord`] (live document, or the version of a
//! deleted one, reference 3.7), in memory and optionally one JSON file per shadow in a state directory:
//!
//! ```text
//! <dir>/<thing>/classic.json
//! <dir>/<thing>/named/<shadow>.json
//! ```
//! Thing and shadow names are limited to `[$a-zA-Z0-9:_-]` (reference 3.1), so they are safe file
//! names as they are.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use shadow_doc::{ShadowId, ShadowName, ShadowRecord};

const CLASSIC_FILE: &str = "classic.json";
const NAMED_DIR: &str = "named";

/// The state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("shadow storage failed ({context}): {source}")]
pub struct ShadowStoreError {
    context: String,
    #[source]
    source: std::io::Error,
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> ShadowStoreError {
    let context = format!("{context} {}", path.display());
    move |source| ShadowStoreError { context, source }
}

/// Shadows by [`ShadowId`]; keyed by name only, independent of the thing registry (reference 3.1).
#[derive(Debug, Default)]
pub struct ShadowStore {
    records: BTreeMap<ShadowId, ShadowRecord>,
    dir: Option<PathBuf>,
}

impl ShadowStore {
    /// A store that forgets everything when dropped.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// A store kept in `dir` (created if missing), reloaded from what an earlier run wrote. Files that
    /// do not parse are skipped with a warning rather than stopping the emulator.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ShadowStoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let mut records = BTreeMap::new();
        for thing_entry in fs::read_dir(&dir).map_err(io_error("listing", &dir))? {
            let thing_dir = thing_entry.map_err(io_error("listing", &dir))?.path();
            let Some(thing) = thing_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !thing_dir.is_dir() {
                continue;
            }
            if let Ok(id) = ShadowId::classic(thing) {
                load_record(&thing_dir.join(CLASSIC_FILE), id, &mut records)?;
            }
            let named_dir = thing_dir.join(NAMED_DIR);
            if !named_dir.is_dir() {
                continue;
            }
            for named_entry in fs::read_dir(&named_dir).map_err(io_error("listing", &named_dir))? {
                let path = named_entry.map_err(io_error("listing", &named_dir))?.path();
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".json"))
                else {
                    continue;
                };
                if let Ok(id) = ShadowId::named(thing, name) {
                    load_record(&path, id, &mut records)?;
                }
            }
        }
        Ok(Self {
            records,
            dir: Some(dir),
        })
    }

    pub fn record(&self, shadow: &ShadowId) -> Option<&ShadowRecord> {
        self.records.get(shadow)
    }

    /// Store a record, on disk first so memory never runs ahead of what survives a restart.
    pub fn put(&mut self, shadow: &ShadowId, record: ShadowRecord) -> Result<(), ShadowStoreError> {
        if let Some(dir) = &self.dir {
            let path = record_path(dir, shadow);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
            }
            let bytes = serde_json::to_vec_pretty(&record).map_err(|error| ShadowStoreError {
                context: format!("encoding {shadow}"),
                source: error.into(),
            })?;
            let temporary = path.with_extension("json.tmp");
            fs::write(&temporary, bytes).map_err(io_error("writing", &temporary))?;
            fs::rename(&temporary, &path).map_err(io_error("renaming", &path))?;
        }
        self.records.insert(shadow.clone(), record);
        Ok(())
    }

    /// Names of the thing's live named shadows, sorted; the classic shadow is never listed
    /// (reference 3.10).
    pub fn named_shadows<'a>(&'a self, thing_name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.records
            .iter()
            .filter(move |(id, record)| id.thing_name() == thing_name && record.live().is_some())
            .filter_map(|(id, _)| id.shadow_name().as_named())
    }
}

fn record_path(dir: &Path, shadow: &ShadowId) -> PathBuf {
    let thing_dir = dir.join(shadow.thing_name());
    match shadow.shadow_name() {
        ShadowName::Classic => thing_dir.join(CLASSIC_FILE),
        ShadowName::Named(name) => thing_dir.join(NAMED_DIR).join(format!("{name}.json")),
    }
}

fn load_record(
    path: &Path,
    shadow: ShadowId,
    records: &mut BTreeMap<ShadowId, ShadowRecord>,
) -> Result<(), ShadowStoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("reading", path)(error)),
    };
    match serde_json::from_slice::<ShadowRecord>(&bytes) {
        Ok(record) => {
            records.insert(shadow, record);
        }
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "skipping unreadable shadow file");
        }
    }
    Ok(())
}

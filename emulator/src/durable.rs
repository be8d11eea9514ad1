//! Replacing a whole state file so that a crash or a power cut leaves either the old text or the new, never an
//! empty or half-written file: the registry's snapshot, a log group's metadata, the Lambda events kept at
//! shutdown.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `<path>.tmp`, syncs it, renames it over `path` and syncs the directory, so that the rename
/// itself survives a power cut. The error names the file it concerns.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()));
    written.map_err(|error| (temporary.clone(), error))?;
    std::fs::rename(&temporary, path).map_err(|error| (path.to_path_buf(), error))?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_directory(directory).map_err(|error| (directory.to_path_buf(), error))
}

/// Makes the directory's entries (a rename, a new file) durable.
pub(crate) fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_text_replaces_the_old_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace_file(&path, b"old").unwrap();
        replace_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("state.json");
        let (failed, _) = replace_file(&path, b"x").unwrap_err();
        assert_eq!(
            failed,
            dir.path().join("missing-dir").join("state.json.tmp")
        );
    }
}

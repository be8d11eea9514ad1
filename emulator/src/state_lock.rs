//! One process owns a state directory at a time. `iot-emulator up` holds an exclusive lock on
//! `{state}/emulator.lock` for as long as it runs; the subcommands that change the registry take the same lock
//! while they work on the files, and talk to the running emulator's API instead when `up` holds it.
//!
//! The lock is an advisory `flock` (std's `File::try_lock`), released by the kernel when the holder exits, even
//! after `kill -9`: a stale file never blocks a restart. The holder's pid is written into the file only to name it
//! in the error a second process gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "emulator.lock";

/// What a lock file says about its holder: the pid and what it runs (`up`, `provision`, ...).
const MAX_HOLDER_TEXT: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state directory {dir} is in use by {holder} (lock {path}); stop it or pass another --state-dir"
    )]
    InUse {
        dir: PathBuf,
        path: PathBuf,
        /// As the holder wrote it, e.g. `iot-emulator up (pid 4242)`; `another process` when unreadable.
        holder: String,
    },
}

impl StateLockError {
    pub fn is_in_use(&self) -> bool {
        matches!(self, StateLockError::InUse { .. })
    }
}

/// Held for as long as the value lives; dropping it (or exiting) releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of `state_dir` (created if missing) without waiting, recording `purpose` (e.g. `up`) and our
    /// pid for whoever is refused next.
    pub fn try_acquire(state_dir: &Path, purpose: &str) -> Result<StateLock, StateLockError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StateLockError::Io { path, source }
        };
        std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StateLockError::InUse {
                    dir: state_dir.to_owned(),
                    holder: read_holder(&mut file),
                    path,
                });
            }
            Err(TryLockError::Error(source)) => return Err(StateLockError::Io { path, source }),
        }
        // Only the holder writes, so the text is never torn by a concurrent writer.
        file.set_len(0).map_err(io(&path))?;
        file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        writeln!(file, "iot-emulator {purpose} (pid {})", std::process::id()).map_err(io(&path))?;
        file.flush().map_err(io(&path))?;
        Ok(StateLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(MAX_HOLDER_TEXT).read_to_string(&mut text));
    match read {
        Ok(_) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => "another process".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::try_acquire(dir.path(), "up").unwrap();
        let refused = StateLock::try_acquire(dir.path(), "provision").unwrap_err();
        assert!(refused.is_in_use());
        let message = refused.to_string();
        assert!(
            message.contains(&format!("iot-emulator up (pid {})", std::process::id())),
            "{message}"
        );
        drop(first);
        let second = StateLock::try_acquire(dir.path(), "provision").unwrap();
        let text = std::fs::read_to_string(second.path()).unwrap();
        assert_eq!(
            text,
            format!("iot-emulator provision (pid {})\n", std::process::id())
        );
    }
}

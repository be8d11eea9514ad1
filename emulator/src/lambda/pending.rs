//! `{state}/lambda/pending.jsonl`: the events a clean shutdown handed back ([`super::LambdaService::shutdown`]),
//! read at the next start and queued again ([`super::LambdaService::resume`]). One JSON object per line:
//! `{"function","requestId","attempts","payload","queuedAt"}` with the payload in base64 and `queuedAt` in epoch
//! milliseconds.
//!
//! Written to a temporary file, synced and renamed into place, so a crash during the shutdown leaves the old file
//! or the new one; taken (read, then removed) at start. A line that does not parse is skipped with an error in
//! the log. What is queued in memory when the emulator crashes (rather than shuts down) is not saved.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::PendingEvent;

/// The file's name inside the Lambda state directory.
pub const PENDING_FILE: &str = "pending.jsonl";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    function: String,
    request_id: String,
    attempts: u32,
    payload: String,
    /// Absent in files written before it existed: such events count their age from the restart.
    #[serde(default)]
    queued_at: Option<i64>,
}

/// Writes `events` to `{dir}/pending.jsonl` (replacing an older file).
pub fn save(dir: &Path, events: &[PendingEvent]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut text = Vec::new();
    for event in events {
        let line = Line {
            function: event.function.clone(),
            request_id: event.request_id.clone(),
            attempts: event.attempts,
            payload: STANDARD.encode(&event.payload),
            queued_at: Some(event.queued_at_ms),
        };
        serde_json::to_writer(&mut text, &line).map_err(std::io::Error::other)?;
        text.push(b'\n');
    }
    crate::durable::replace_file(&dir.join(PENDING_FILE), &text).map_err(|(_, error)| error)
}

/// Reads and removes `{dir}/pending.jsonl`; nothing when there is none.
pub fn take(dir: &Path) -> std::io::Result<Vec<PendingEvent>> {
    let path = dir.join(PENDING_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut events = Vec::new();
    for (number, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<Line>(line)
            .map_err(|error| error.to_string())
            .and_then(|line| {
                let payload = STANDARD
                    .decode(&line.payload)
                    .map_err(|error| error.to_string())?;
                Ok(PendingEvent {
                    function: line.function,
                    request_id: line.request_id,
                    attempts: line.attempts,
                    payload,
                    queued_at_ms: line.queued_at.unwrap_or_else(crate::clock::now_millis),
                })
            });
        match parsed {
            Ok(event) => events.push(event),
            Err(error) => tracing::error!(file = %path.display(), line = number + 1, %error,
                "skipping an unreadable pending Lambda event"),
        }
    }
    std::fs::remove_file(&path)?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_events_are_taken_back_once() {
        let dir = tempfile::tempdir().unwrap();
        let events = vec![
            PendingEvent {
                function: "recorder".into(),
                request_id: "r-1".into(),
                attempts: 1,
                payload: br#"{"thing":"ratchet"}"#.to_vec(),
                queued_at_ms: 1_764_144_000_000,
            },
            PendingEvent {
                function: "reconciler".into(),
                request_id: "r-2".into(),
                attempts: 0,
                payload: vec![0, 159, 255],
                queued_at_ms: 1_764_144_000_001,
            },
        ];
        save(dir.path(), &events).unwrap();
        assert_eq!(take(dir.path()).unwrap(), events);
        assert!(take(dir.path()).unwrap().is_empty(), "taken once");
    }
}

//! Wall-clock time in the unit of the contract: epoch milliseconds (`ts`, `connectedAt`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the unit of `ts` and of AWS lifecycle events).
pub fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

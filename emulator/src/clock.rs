//! The emulator's one wall clock. Broker events, log records and shadow metadata read the time here, so
//! a lifecycle event, the log line it causes and the shadow it updates agree on when things happened.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the unit of every AWS IoT event timestamp (reference 1.2) and of
/// CloudWatch Logs.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch: the unit of shadow timestamps and metadata (reference 3.6).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_units_read_the_same_clock() {
        let millis = now_millis();
        let secs = now_secs();
        let millis_as_secs = u64::try_from(millis / 1000).unwrap();
        assert!(secs.abs_diff(millis_as_secs) <= 1, "{secs} vs {millis}");
    }
}

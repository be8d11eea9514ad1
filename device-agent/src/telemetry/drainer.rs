//! The drainer's decisions, as a value: what to read from the outbox and publish next, what a PUBACK
//! removes, when to flush, when to stop. No I/O and no clock of its own (the caller passes `now`), so a
//! test drives it without a broker or a disk; `run_drainer` in this module's parent carries the
//! decisions out.
//!
//! Footprint (docs/benchmarks.md, "Device agent"): the struct only answers questions, so the runner still
//! makes one wakeup per reading, keeps one pinned flush timer that is armed only when
//! [`Drainer::flush_timer_due`] says so (never moved per reading), and needs no task or channel per message.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::OutboxSync;

/// How long to wait before publishing again after the connection did not admit a publish.
pub const RETRY_AFTER_REFUSED: Duration = Duration::from_millis(500);

/// What the drainer did, for the shutdown log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub acknowledged: u64,
    pub left_in_outbox: u64,
    /// Flushes to the disk while running (the one at the clean close not counted).
    pub flushes: u64,
}

/// How the drainer keeps the outbox and when it flushes it to the disk.
#[derive(Debug, Clone, Copy)]
pub struct DrainerSettings {
    pub max_in_flight: usize,
    pub sync: OutboxSync,
    pub sync_interval: Duration,
    pub flush_timeout: Duration,
}

/// An outbox read that fills the publish window: up to `limit` messages from `seq` `from` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRead {
    pub from: u64,
    pub limit: usize,
}

/// How a tracked publish ended: `delivered` when its PUBACK came, not when rumqttc failed the notice
/// (the broker lost our session). `generation` is the one [`Drainer::published`] handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Puback {
    pub generation: u64,
    pub seq: u64,
    pub delivered: bool,
}

/// The drainer's state between events.
#[derive(Debug)]
pub struct Drainer {
    settings: DrainerSettings,
    connected: bool,
    /// Bumped on every rewind, so a failure from an earlier pass cannot rewind the current one.
    generation: u64,
    in_flight: BTreeSet<u64>,
    /// The next `seq` to publish.
    cursor: u64,
    /// Whether the outbox may hold entries past `cursor`; reading only then saves a pass over the index.
    maybe_unsent: bool,
    /// Set after a publish was not admitted (connection busy or just dropped): try again then.
    retry_at: Option<Instant>,
    /// Readings stored since the last flush, oldest first, with when they were stored (`sync = "interval"`).
    unflushed: VecDeque<(u64, Instant)>,
    /// When the flush timer is due, if it is armed.
    sync_at: Option<Instant>,
    /// Set at shutdown: drain until then, at most.
    flush_deadline: Option<Instant>,
    report: DrainReport,
}

impl Drainer {
    pub fn new(settings: DrainerSettings) -> Self {
        Self {
            settings: DrainerSettings {
                max_in_flight: settings.max_in_flight.max(1),
                ..settings
            },
            connected: false,
            generation: 0,
            in_flight: BTreeSet::new(),
            cursor: 0,
            maybe_unsent: true,
            retry_at: None,
            unflushed: VecDeque::new(),
            sync_at: None,
            flush_deadline: None,
            report: DrainReport::default(),
        }
    }

    /// The read that fills the window, oldest first: only while connected, with room in the window,
    /// something possibly unsent and no retry pending.
    pub fn window(&self) -> Option<WindowRead> {
        let room = self
            .settings
            .max_in_flight
            .saturating_sub(self.in_flight.len());
        (self.connected && self.maybe_unsent && self.retry_at.is_none() && room > 0).then_some(
            WindowRead {
                from: self.cursor,
                limit: room,
            },
        )
    }

    /// `read` returned `count` messages; fewer than asked means the outbox has nothing more after them.
    pub fn window_read(&mut self, read: WindowRead, count: usize) {
        self.maybe_unsent = count == read.limit;
    }

    /// Message `seq` was handed to the connection; returns the generation its [`Puback`] must carry.
    pub fn published(&mut self, seq: u64) -> u64 {
        self.in_flight.insert(seq);
        self.cursor = seq + 1;
        self.generation
    }

    /// The connection did not admit a publish: the rest of the window waits [`RETRY_AFTER_REFUSED`].
    pub fn publish_refused(&mut self, now: Instant) {
        self.maybe_unsent = true;
        self.retry_at = Some(now + RETRY_AFTER_REFUSED);
    }

    /// When to try publishing again, if a publish was refused.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    pub fn retry_elapsed(&mut self) {
        self.retry_at = None;
    }

    /// A reading was stored under `seq` at `now`. Returns whether it must be flushed right away
    /// (`sync = "always"`); otherwise it waits for the flush timer.
    pub fn stored(&mut self, seq: u64, now: Instant) -> bool {
        self.maybe_unsent = true;
        match self.settings.sync {
            OutboxSync::Always => true,
            OutboxSync::Interval => {
                self.unflushed.push_back((seq, now));
                false
            }
        }
    }

    /// A flush ended; a successful one made everything written so far durable.
    pub fn flushed(&mut self, ok: bool) {
        if ok {
            self.report.flushes += 1;
            self.unflushed.clear();
        }
    }

    /// A PUBACK notice resolved. Returns the `seq` to remove from the outbox when it was delivered; a
    /// failed notice of the current pass rewinds to the oldest stored entry (the broker lost our
    /// session), one of an earlier pass is ignored.
    pub fn puback(&mut self, ack: Puback) -> Option<u64> {
        if ack.delivered {
            self.in_flight.remove(&ack.seq);
            self.report.acknowledged += 1;
            Some(ack.seq)
        } else {
            if ack.generation == self.generation {
                self.rewind();
            }
            None
        }
    }

    /// The connection came up; without a session the broker forgot our in-flight publishes (rumqttc
    /// fails their notices), so start over from the oldest stored entry: the wire order stays seq order.
    pub fn connected(&mut self, session_present: bool) {
        self.connected = true;
        self.maybe_unsent = true;
        self.retry_at = None;
        if !session_present {
            self.rewind();
        }
    }

    pub fn disconnected(&mut self) {
        self.connected = false;
    }

    /// The flush timer's new deadline, when it must be armed now; `None` leaves it as it is.
    ///
    /// The timer is due when the oldest reading that is neither acknowledged (`is_live` false) nor
    /// flushed has waited `sync_interval`. It is not moved when that reading's PUBACK comes (usually
    /// within milliseconds): moving a tokio timer earlier than the parked driver's next wakeup wakes the
    /// driver (an eventfd write), which per reading cost more than the rare spurious wakeup.
    pub fn flush_timer_due(&mut self, is_live: impl Fn(u64) -> bool) -> Option<Instant> {
        while self
            .unflushed
            .front()
            .is_some_and(|&(seq, _)| !is_live(seq))
        {
            self.unflushed.pop_front();
        }
        if self.sync_at.is_some() {
            return None;
        }
        let &(_, stored_at) = self.unflushed.front()?;
        let at = stored_at + self.settings.sync_interval;
        self.sync_at = Some(at);
        Some(at)
    }

    pub fn flush_timer_armed(&self) -> bool {
        self.sync_at.is_some()
    }

    /// The flush timer fired; returns whether to flush (everything written so far, younger readings
    /// included): only when the oldest unflushed reading has waited the whole interval. `unflushed` was
    /// pruned of acknowledged readings by the `flush_timer_due` call before the wait.
    pub fn flush_timer_fired(&mut self, now: Instant) -> bool {
        self.sync_at = None;
        self.unflushed
            .front()
            .is_some_and(|&(_, stored_at)| stored_at + self.settings.sync_interval <= now)
    }

    /// Shutdown: the producers have stopped (the runner stored what they left); drain until the outbox
    /// is empty or `flush_timeout` passed.
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.maybe_unsent = true;
        self.flush_deadline = Some(now + self.settings.flush_timeout);
    }

    pub fn flush_deadline(&self) -> Option<Instant> {
        self.flush_deadline
    }

    /// Whether the drain after shutdown is over. Offline there is nothing to flush to: what is stored
    /// stays for the next start.
    pub fn finished(&self, outbox_is_empty: bool) -> bool {
        self.flush_deadline.is_some()
            && (!self.connected || (self.in_flight.is_empty() && outbox_is_empty))
    }

    pub fn report(&self) -> DrainReport {
        self.report
    }

    fn rewind(&mut self) {
        self.generation += 1;
        self.in_flight.clear();
        self.cursor = 0;
        self.maybe_unsent = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drainer(sync: OutboxSync) -> Drainer {
        Drainer::new(DrainerSettings {
            max_in_flight: 3,
            sync,
            sync_interval: Duration::from_millis(50),
            flush_timeout: Duration::from_secs(1),
        })
    }

    /// Publish what a window read returned, as the runner does with an outbox holding `stored`.
    fn fill(drainer: &mut Drainer, stored: &[u64]) -> Vec<(u64, u64)> {
        let Some(read) = drainer.window() else {
            return Vec::new();
        };
        let batch: Vec<u64> = stored
            .iter()
            .copied()
            .filter(|&seq| seq >= read.from)
            .take(read.limit)
            .collect();
        drainer.window_read(read, batch.len());
        batch
            .into_iter()
            .map(|seq| (seq, drainer.published(seq)))
            .collect()
    }

    fn ack(generation: u64, seq: u64, delivered: bool) -> Puback {
        Puback {
            generation,
            seq,
            delivered,
        }
    }

    #[test]
    fn nothing_is_read_while_offline_and_the_window_is_bounded() {
        let mut d = drainer(OutboxSync::Interval);
        assert_eq!(d.window(), None, "offline");
        d.connected(true);
        assert_eq!(fill(&mut d, &[1, 2, 3, 4, 5]), [(1, 0), (2, 0), (3, 0)]);
        assert_eq!(d.window(), None, "window full");
        assert_eq!(d.puback(ack(0, 1, true)), Some(1));
        assert_eq!(
            d.window(),
            Some(WindowRead { from: 4, limit: 1 }),
            "one slot free, read on after the last published"
        );
        assert_eq!(fill(&mut d, &[2, 3, 4, 5]), [(4, 0)]);
    }

    #[test]
    fn a_short_read_stops_reading_until_a_new_reading_is_stored() {
        let mut d = drainer(OutboxSync::Interval);
        d.connected(true);
        assert_eq!(fill(&mut d, &[1]), [(1, 0)]);
        assert_eq!(d.window(), None, "the outbox had nothing more");
        d.stored(2, Instant::now());
        assert_eq!(d.window(), Some(WindowRead { from: 2, limit: 2 }));
    }

    #[test]
    fn a_lost_session_rewinds_and_late_failures_of_the_old_pass_are_ignored() {
        let mut d = drainer(OutboxSync::Interval);
        d.connected(true);
        assert_eq!(fill(&mut d, &[1, 2, 3]), [(1, 0), (2, 0), (3, 0)]);
        d.disconnected();
        assert_eq!(d.window(), None);
        d.connected(false);
        assert_eq!(
            fill(&mut d, &[1, 2, 3]),
            [(1, 1), (2, 1), (3, 1)],
            "from the oldest stored entry, in a new generation"
        );
        // rumqttc fails the old pass's notices after the new pass started: no second rewind.
        assert_eq!(d.puback(ack(0, 1, false)), None);
        assert_eq!(d.window(), None, "the new pass is still in flight");
        assert_eq!(d.puback(ack(1, 1, true)), Some(1));
        assert_eq!(d.report().acknowledged, 1);
    }

    #[test]
    fn a_failed_notice_of_the_current_pass_rewinds() {
        let mut d = drainer(OutboxSync::Interval);
        d.connected(true);
        fill(&mut d, &[1, 2]);
        assert_eq!(d.puback(ack(0, 2, false)), None);
        assert_eq!(d.window(), Some(WindowRead { from: 0, limit: 3 }));
    }

    #[test]
    fn a_refused_publish_waits_before_the_next_try_and_a_connect_ends_the_wait() {
        let mut d = drainer(OutboxSync::Interval);
        d.connected(true);
        let now = Instant::now();
        d.publish_refused(now);
        assert_eq!(d.retry_at(), Some(now + RETRY_AFTER_REFUSED));
        assert_eq!(d.window(), None);
        d.retry_elapsed();
        assert!(d.window().is_some());
        d.publish_refused(now);
        d.connected(true);
        assert_eq!(d.retry_at(), None);
    }

    #[test]
    fn the_flush_timer_is_armed_once_for_the_oldest_unflushed_reading() {
        let mut d = drainer(OutboxSync::Interval);
        let t0 = Instant::now();
        assert!(!d.stored(1, t0), "interval: no flush per reading");
        let live = |_: u64| true;
        assert_eq!(
            d.flush_timer_due(live),
            Some(t0 + Duration::from_millis(50))
        );
        d.stored(2, t0 + Duration::from_millis(10));
        assert_eq!(d.flush_timer_due(live), None, "not re-armed per reading");
        assert!(d.flush_timer_armed());
        assert!(d.flush_timer_fired(t0 + Duration::from_millis(50)));
        d.flushed(true);
        assert_eq!(d.report().flushes, 1);
        assert_eq!(d.flush_timer_due(live), None, "everything was flushed");
    }

    #[test]
    fn acknowledged_readings_need_no_flush() {
        let mut d = drainer(OutboxSync::Interval);
        let t0 = Instant::now();
        d.stored(1, t0);
        d.flush_timer_due(|_| true);
        // Reading 1 was acknowledged before the timer fired; reading 2 is younger than the interval.
        d.stored(2, t0 + Duration::from_millis(30));
        let live = |seq: u64| seq == 2;
        assert_eq!(d.flush_timer_due(live), None, "the armed timer stays");
        assert!(
            !d.flush_timer_fired(t0 + Duration::from_millis(50)),
            "a spurious wakeup: reading 2 has not waited the interval"
        );
        assert_eq!(
            d.flush_timer_due(live),
            Some(t0 + Duration::from_millis(80)),
            "re-armed for reading 2"
        );
    }

    #[test]
    fn sync_always_flushes_every_reading() {
        let mut d = drainer(OutboxSync::Always);
        assert!(d.stored(1, Instant::now()));
        d.flushed(true);
        d.flushed(false);
        assert_eq!(d.report().flushes, 1, "a failed flush is not counted");
        assert_eq!(d.flush_timer_due(|_| true), None);
    }

    #[test]
    fn shutdown_drains_while_connected_and_stops_at_once_offline() {
        let mut d = drainer(OutboxSync::Interval);
        assert!(!d.finished(true), "running");
        let now = Instant::now();
        d.begin_shutdown(now);
        assert_eq!(d.flush_deadline(), Some(now + Duration::from_secs(1)));
        assert!(d.finished(false), "offline: what is stored stays");
        d.connected(true);
        fill(&mut d, &[1]);
        assert!(!d.finished(false), "in flight");
        d.puback(ack(0, 1, true));
        assert!(!d.finished(false), "still stored");
        assert!(d.finished(true));
    }
}

//! The ordering rule: given the stored state and one lifecycle event, decide whether the event supersedes it.
//!
//! The rule table and the convergence argument are in the crate docs and in `docs/presence.md`.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;
use thiserror::Error;

use crate::connectivity::Connectivity;
use crate::observation::{Observation, ObservationKind};

/// Accuracy of AWS lifecycle timestamps: the 2023 developer guide said ±2 minutes, the current one only
/// "approximation" (reference 1.2).
pub const TIMESTAMP_ACCURACY_MS: u64 = 2 * 60 * 1000;

/// How much later than the new connection's `connected` the old connection's `DUPLICATE_CLIENTID` disconnect may
/// be stamped: AWS processes disconnects asynchronously (reference 1.8), so allow a minute on top of the accuracy.
pub const DISCONNECT_PROCESSING_SLACK_MS: u64 = 60 * 1000;

/// Default for "clearly apart in time": two events whose timestamps differ by more than this are ordered by time,
/// not by `versionNumber`.
///
/// 5 minutes = twice the timestamp accuracy (each of the two timestamps may be off by ±2 min in opposite
/// directions) plus [`DISCONNECT_PROCESSING_SLACK_MS`]. Two events of the same counter epoch that are this far apart
/// can only be in that order in reality, so time and version never disagree there; two events of different epochs
/// are at least the ~1 h offline gap apart (reference 1.7), so time is what tells them apart.
pub const DEFAULT_CLEARLY_APART_MS: u64 =
    2 * TIMESTAMP_ACCURACY_MS + DISCONNECT_PROCESSING_SLACK_MS;

/// Offline time after which AWS resets `versionNumber` to 0: "about 1 hour", or the persistent-session TTL whose
/// default is 1 h (reference 1.7).
pub const COUNTER_RESET_OFFLINE_MS: u64 = 60 * 60 * 1000;

/// Largest accepted "clearly apart" window: half the reset gap. Beyond that, events on both sides of a counter
/// reset could fall inside the window once the ±2 min accuracy and the vagueness of "about 1 hour" are counted, and
/// the version of the older epoch would win.
pub const MAX_CLEARLY_APART_MS: u64 = COUNTER_RESET_OFFLINE_MS / 2;

/// A [`Reducer`] configuration that cannot keep counter epochs apart.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReducerConfigError {
    /// The window must be positive (zero would let timestamp noise override `versionNumber` inside one epoch) and at
    /// most [`MAX_CLEARLY_APART_MS`].
    #[error("clearly-apart window of {clearly_apart_ms} ms is outside 1..={max_ms} ms")]
    ClearlyApartOutOfRange {
        /// The rejected value.
        clearly_apart_ms: u64,
        /// [`MAX_CLEARLY_APART_MS`].
        max_ms: u64,
    },
}

/// Why an event replaced the stored state. Meant for logs, so it is serializable and has a stable short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyReason {
    /// Nothing was stored yet.
    FirstEvent,
    /// Higher `versionNumber`: a later connection of the same counter epoch (reference 1.7).
    NewerVersion,
    /// Same `versionNumber`, the stored state is its `connected` and this is its `disconnected`: a connection ends
    /// after it starts, so the disconnect wins a tie (reference 1.8).
    SameConnectionDisconnected,
    /// Clearly later in time although its version is not higher: the counter was reset after about an hour
    /// offline, and this event belongs to the newer epoch (reference 1.7).
    AfterCounterReset,
    /// Same version and kind with different details: not something AWS produces, settled by a deterministic
    /// tie-break (later timestamp, then greater session id, then greater reason) so any delivery order agrees.
    WonTieBreak,
}

impl ApplyReason {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyReason::FirstEvent => "first_event",
            ApplyReason::NewerVersion => "newer_version",
            ApplyReason::SameConnectionDisconnected => "same_connection_disconnected",
            ApplyReason::AfterCounterReset => "after_counter_reset",
            ApplyReason::WonTieBreak => "won_tie_break",
        }
    }
}

impl fmt::Display for ApplyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event left the stored state alone. Lifecycle events are duplicated and reordered by design
/// (reference 1.1), so every one of these is normal traffic, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// Applying it would change nothing: a redelivery of the event that produced the stored state.
    Duplicate,
    /// Lower `versionNumber` within the same counter epoch: an earlier connection.
    Stale,
    /// The `connected` of the connection whose `disconnected` is already stored (same `versionNumber`), arriving
    /// late.
    SameConnectionAlreadyDisconnected,
    /// Clearly earlier in time although its version is not lower: it belongs to a counter epoch before a reset
    /// (reference 1.7), e.g. the old session's disconnect arriving after the reset connect.
    BeforeCounterReset,
    /// Lost the deterministic tie-break described at [`ApplyReason::WonTieBreak`].
    LostTieBreak,
    /// The stored state belongs to another client id: the caller routed the event to the wrong shadow. Never
    /// overwrite another client's state.
    OtherClient,
}

impl IgnoreReason {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::Duplicate => "duplicate",
            IgnoreReason::Stale => "stale",
            IgnoreReason::SameConnectionAlreadyDisconnected => {
                "same_connection_already_disconnected"
            }
            IgnoreReason::BeforeCounterReset => "before_counter_reset",
            IgnoreReason::LostTieBreak => "lost_tie_break",
            IgnoreReason::OtherClient => "other_client",
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of reducing one event: write `state` to the shadow, or leave the shadow alone and log `reason`.
#[must_use = "a decision must be written to the shadow or logged"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The event supersedes the stored state; `state` is the new `reported` section.
    Apply {
        /// The new state (the event's projection, `lastWillAt` carried over).
        state: Connectivity,
        /// Which rule made it win.
        reason: ApplyReason,
    },
    /// The stored state stays as it is.
    Ignore(IgnoreReason),
}

impl Decision {
    /// The new state, if the event won.
    pub fn state(&self) -> Option<&Connectivity> {
        match self {
            Decision::Apply { state, .. } => Some(state),
            Decision::Ignore(_) => None,
        }
    }

    /// The new state, if the event won.
    pub fn into_state(self) -> Option<Connectivity> {
        match self {
            Decision::Apply { state, .. } => Some(state),
            Decision::Ignore(_) => None,
        }
    }

    /// Stable name of the reason, for logs.
    pub fn reason_str(&self) -> &'static str {
        match self {
            Decision::Apply { reason, .. } => reason.as_str(),
            Decision::Ignore(reason) => reason.as_str(),
        }
    }
}

/// The ordering rule with its one parameter, the "clearly apart in time" window.
///
/// Pure: no clock, no I/O. Timestamps are AWS's own, so replaying a log of events later gives the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reducer {
    clearly_apart_ms: u64,
}

impl Default for Reducer {
    fn default() -> Self {
        Self {
            clearly_apart_ms: DEFAULT_CLEARLY_APART_MS,
        }
    }
}

impl Reducer {
    /// A reducer whose "clearly apart" window is `clearly_apart_ms` instead of [`DEFAULT_CLEARLY_APART_MS`], for
    /// deployments that know their timestamp accuracy better.
    pub fn with_clearly_apart_ms(clearly_apart_ms: u64) -> Result<Self, ReducerConfigError> {
        if clearly_apart_ms == 0 || clearly_apart_ms > MAX_CLEARLY_APART_MS {
            return Err(ReducerConfigError::ClearlyApartOutOfRange {
                clearly_apart_ms,
                max_ms: MAX_CLEARLY_APART_MS,
            });
        }
        Ok(Self { clearly_apart_ms })
    }

    /// The window in milliseconds.
    pub fn clearly_apart_ms(&self) -> u64 {
        self.clearly_apart_ms
    }

    /// Decide whether `event` supersedes `stored` (see the rule table in the crate docs).
    pub fn reduce(&self, stored: Option<&Connectivity>, event: &Observation) -> Decision {
        let Some(stored) = stored else {
            return apply(event, None, ApplyReason::FirstEvent);
        };
        if stored.client_id != event.client_id {
            return Decision::Ignore(IgnoreReason::OtherClient);
        }
        // Judge on borrowed fields; the new state (two string copies) is built only when the event wins.
        match self.judge(&Mark::of_state(stored), &Mark::of_event(event)) {
            Verdict::Wins(reason) => apply(event, stored.last_will_at, reason),
            Verdict::Loses(reason) => Decision::Ignore(reason),
        }
    }

    /// Rows 3 to 12 of the rule table.
    fn judge(&self, stored: &Mark<'_>, event: &Mark<'_>) -> Verdict {
        if event == stored {
            return Verdict::Loses(IgnoreReason::Duplicate);
        }
        let by_version = event.version_order(stored);
        if event.timestamp.abs_diff(stored.timestamp) > self.clearly_apart_ms {
            // Far apart: time decides. Inside one counter epoch time and version agree at this distance, so a
            // disagreement means a reset happened between the two events (reference 1.7).
            let later = event.timestamp > stored.timestamp;
            let time_order = if later {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            let agrees = by_version == time_order
                && (event.version != stored.version || event.session == stored.session);
            return match (later, agrees) {
                (true, true) => Verdict::Wins(event.version_win_reason(stored)),
                (true, false) => Verdict::Wins(ApplyReason::AfterCounterReset),
                (false, true) => Verdict::Loses(event.version_loss_reason(stored)),
                (false, false) => Verdict::Loses(IgnoreReason::BeforeCounterReset),
            };
        }
        match by_version {
            Ordering::Greater => Verdict::Wins(event.version_win_reason(stored)),
            Ordering::Less => Verdict::Loses(event.version_loss_reason(stored)),
            Ordering::Equal => match event.tie_break_key().cmp(&stored.tie_break_key()) {
                Ordering::Greater => Verdict::Wins(ApplyReason::WonTieBreak),
                Ordering::Less => Verdict::Loses(IgnoreReason::LostTieBreak),
                Ordering::Equal => Verdict::Loses(IgnoreReason::Duplicate),
            },
        }
    }

    /// Fold `events` in delivery order into `start`, ignoring what the rule ignores. This is what the shadow ends
    /// up holding when the events are handled one at a time (shadow-reconciler serializes them with the shadow
    /// version lock).
    pub fn replay<'a>(
        &self,
        start: Option<Connectivity>,
        events: impl IntoIterator<Item = &'a Observation>,
    ) -> Option<Connectivity> {
        events.into_iter().fold(start, |state, event| {
            match self.reduce(state.as_ref(), event) {
                Decision::Apply { state, .. } => Some(state),
                Decision::Ignore(_) => state,
            }
        })
    }
}

/// [`Reducer::reduce`] with [`DEFAULT_CLEARLY_APART_MS`].
pub fn reduce(stored: Option<&Connectivity>, event: &Observation) -> Decision {
    Reducer::default().reduce(stored, event)
}

fn apply(event: &Observation, last_will_at: Option<i64>, reason: ApplyReason) -> Decision {
    Decision::Apply {
        state: Connectivity::from_observation(event, last_will_at),
        reason,
    }
}

enum Verdict {
    Wins(ApplyReason),
    Loses(IgnoreReason),
}

/// The fields the ordering looks at, borrowed from the stored state or from an incoming event. Two marks are equal
/// exactly when applying the event would leave the stored state unchanged (same client id assumed).
#[derive(Debug, PartialEq, Eq)]
struct Mark<'a> {
    version: u64,
    kind: ObservationKind,
    timestamp: i64,
    session: &'a str,
    reason: Option<&'a str>,
}

impl<'a> Mark<'a> {
    fn of_state(state: &'a Connectivity) -> Self {
        Self {
            version: state.version_number,
            kind: state.kind(),
            timestamp: state.event_timestamp,
            session: &state.session_identifier,
            reason: state.disconnect_reason.as_deref(),
        }
    }

    fn of_event(event: &'a Observation) -> Self {
        Self {
            version: event.version_number,
            kind: event.kind,
            timestamp: event.timestamp_ms,
            session: &event.session_identifier,
            // Same projection as `Connectivity::from_observation`: a connect never stores a reason.
            reason: match event.kind {
                ObservationKind::Connected => None,
                ObservationKind::Disconnected => event.disconnect_reason.as_deref(),
            },
        }
    }

    /// Order inside one counter epoch: `versionNumber`, then disconnect over connect (one connection's disconnect
    /// always follows its connect, and both carry the same version, reference 1.7).
    fn version_order(&self, other: &Mark<'_>) -> Ordering {
        self.version
            .cmp(&other.version)
            .then_with(|| kind_rank(self.kind).cmp(&kind_rank(other.kind)))
    }

    fn version_win_reason(&self, stored: &Mark<'_>) -> ApplyReason {
        if self.version > stored.version {
            ApplyReason::NewerVersion
        } else {
            ApplyReason::SameConnectionDisconnected
        }
    }

    fn version_loss_reason(&self, stored: &Mark<'_>) -> IgnoreReason {
        if self.version < stored.version {
            IgnoreReason::Stale
        } else {
            IgnoreReason::SameConnectionAlreadyDisconnected
        }
    }

    fn tie_break_key(&self) -> (i64, &str, Option<&str>) {
        (self.timestamp, self.session, self.reason)
    }
}

fn kind_rank(kind: ObservationKind) -> u8 {
    match kind {
        ObservationKind::Connected => 0,
        ObservationKind::Disconnected => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "ratchet";
    const T0: i64 = 1_764_000_000_000;
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    fn connected(version: u64, at: i64, session: &str) -> Observation {
        Observation::connected(CLIENT, version, at, session)
    }

    fn disconnected(version: u64, at: i64, session: &str, reason: &str) -> Observation {
        Observation::disconnected(CLIENT, version, at, session, reason)
    }

    fn state_of(event: &Observation) -> Connectivity {
        Connectivity::from_observation(event, None)
    }

    fn decide(stored: &Observation, event: &Observation) -> Decision {
        reduce(Some(&state_of(stored)), event)
    }

    fn applied(decision: &Decision) -> Option<ApplyReason> {
        match decision {
            Decision::Apply { reason, .. } => Some(*reason),
            Decision::Ignore(_) => None,
        }
    }

    #[test]
    fn first_event_is_applied() {
        let event = connected(3, T0, "s1");
        let decision = reduce(None, &event);
        assert_eq!(applied(&decision), Some(ApplyReason::FirstEvent));
        assert_eq!(decision.state(), Some(&state_of(&event)));
    }

    #[test]
    fn exact_duplicates_are_no_ops_for_both_kinds() {
        let connect = connected(3, T0, "s1");
        let disconnect = disconnected(3, T0 + MINUTE, "s1", "CONNECTION_LOST");
        assert_eq!(
            decide(&connect, &connect),
            Decision::Ignore(IgnoreReason::Duplicate)
        );
        assert_eq!(
            decide(&disconnect, &disconnect),
            Decision::Ignore(IgnoreReason::Duplicate)
        );
    }

    #[test]
    fn duplicate_ignores_fields_that_are_not_stored() {
        let stored = connected(3, T0, "s1");
        let mut redelivered = stored.clone();
        redelivered.principal = Some("cert".into());
        assert_eq!(
            decide(&stored, &redelivered),
            Decision::Ignore(IgnoreReason::Duplicate)
        );
    }

    #[test]
    fn higher_version_wins_in_both_kinds() {
        let stored = disconnected(3, T0, "s1", "CONNECTION_LOST");
        let reconnect = connected(4, T0 + 1000, "s2");
        assert_eq!(
            applied(&decide(&stored, &reconnect)),
            Some(ApplyReason::NewerVersion)
        );
        let stored = connected(3, T0, "s1");
        let later_disconnect = disconnected(5, T0 + 1000, "s2", "CONNECTION_LOST");
        assert_eq!(
            applied(&decide(&stored, &later_disconnect)),
            Some(ApplyReason::NewerVersion)
        );
    }

    #[test]
    fn lower_version_close_in_time_is_stale() {
        let stored = connected(4, T0, "s2");
        let old = disconnected(3, T0 + MINUTE, "s1", "CONNECTION_LOST");
        assert_eq!(decide(&stored, &old), Decision::Ignore(IgnoreReason::Stale));
    }

    #[test]
    fn disconnect_wins_a_tie_and_a_late_connect_loses_it() {
        let connect = connected(7, T0, "s1");
        let disconnect = disconnected(7, T0 + 2 * MINUTE, "s1", "MQTT_KEEP_ALIVE_TIMEOUT");
        assert_eq!(
            applied(&decide(&connect, &disconnect)),
            Some(ApplyReason::SameConnectionDisconnected)
        );
        assert_eq!(
            decide(&disconnect, &connect),
            Decision::Ignore(IgnoreReason::SameConnectionAlreadyDisconnected)
        );
    }

    #[test]
    fn connect_stamped_after_its_own_disconnect_still_loses_the_tie() {
        // Timestamps are only accurate to ±2 min, so a short connection may be stamped backwards.
        let connect = connected(7, T0 + MINUTE, "s1");
        let disconnect = disconnected(7, T0, "s1", "CLIENT_INITIATED_DISCONNECT");
        assert!(decide(&connect, &disconnect).state().is_some());
        assert!(decide(&disconnect, &connect).state().is_none());
    }

    #[test]
    fn long_connection_disconnect_wins_by_time_and_version() {
        let connect = connected(7, T0, "s1");
        let disconnect = disconnected(7, T0 + 20 * HOUR, "s1", "WEBSOCKET_TTL_EXPIRATION");
        assert_eq!(
            applied(&decide(&connect, &disconnect)),
            Some(ApplyReason::SameConnectionDisconnected)
        );
        assert_eq!(
            decide(&disconnect, &connect),
            Decision::Ignore(IgnoreReason::SameConnectionAlreadyDisconnected)
        );
    }

    #[test]
    fn takeover_ends_connected_with_the_new_session_in_either_order() {
        // DUPLICATE_CLIENTID: the old connection (v5) is dropped when the new one (v6) connects (reference 1.4).
        let old_connect = connected(5, T0, "old");
        let new_connect = connected(6, T0 + 10 * MINUTE, "new");
        let old_disconnect = disconnected(5, T0 + 10 * MINUTE + 200, "old", "DUPLICATE_CLIENTID");
        let reducer = Reducer::default();
        for order in [
            [&old_connect, &old_disconnect, &new_connect],
            [&old_connect, &new_connect, &old_disconnect],
            [&new_connect, &old_disconnect, &old_connect],
            [&old_disconnect, &new_connect, &old_connect],
        ] {
            let end = reducer.replay(None, order);
            assert_eq!(end, Some(state_of(&new_connect)), "order {order:?}");
        }
    }

    #[test]
    fn takeover_disconnect_stamped_after_the_new_connect_is_still_stale() {
        let new_connect = connected(6, T0, "new");
        let old_disconnect = disconnected(5, T0 + 4 * MINUTE, "old", "DUPLICATE_CLIENTID");
        assert_eq!(
            decide(&new_connect, &old_disconnect),
            Decision::Ignore(IgnoreReason::Stale)
        );
    }

    #[test]
    fn reset_connect_with_lower_version_wins_over_a_stored_disconnect() {
        let stored = disconnected(41, T0, "s1", "CONNECTION_LOST");
        let reset = connected(0, T0 + 2 * HOUR, "s2");
        assert_eq!(
            applied(&decide(&stored, &reset)),
            Some(ApplyReason::AfterCounterReset)
        );
    }

    #[test]
    fn reset_connect_wins_over_a_stored_connect_whose_disconnect_is_still_in_flight() {
        let stored = connected(41, T0, "s1");
        let reset = connected(0, T0 + 2 * HOUR, "s2");
        assert_eq!(
            applied(&decide(&stored, &reset)),
            Some(ApplyReason::AfterCounterReset)
        );
    }

    #[test]
    fn reset_disconnect_with_lower_version_wins_when_it_arrives_before_its_connect() {
        let stored = disconnected(41, T0, "s1", "CONNECTION_LOST");
        let reset_disconnect = disconnected(0, T0 + 3 * HOUR, "s2", "CLIENT_INITIATED_DISCONNECT");
        assert_eq!(
            applied(&decide(&stored, &reset_disconnect)),
            Some(ApplyReason::AfterCounterReset)
        );
        // ...and its own connect, arriving afterwards, loses the tie.
        let reset_connect = connected(0, T0 + 2 * HOUR, "s2");
        assert_eq!(
            decide(&reset_disconnect, &reset_connect),
            Decision::Ignore(IgnoreReason::SameConnectionAlreadyDisconnected)
        );
    }

    #[test]
    fn old_epoch_disconnect_with_higher_version_is_ignored_after_a_reset() {
        let reset_connect = connected(0, T0 + 2 * HOUR, "s2");
        let old_disconnect = disconnected(41, T0, "s1", "CONNECTION_LOST");
        assert_eq!(
            decide(&reset_connect, &old_disconnect),
            Decision::Ignore(IgnoreReason::BeforeCounterReset)
        );
    }

    #[test]
    fn old_epoch_disconnect_with_the_same_version_zero_is_ignored_after_a_reset() {
        // A device that connects once every few hours is always at version 0 (reference 1.7): the tie rule alone
        // would let the old disconnect win.
        let reset_connect = connected(0, T0 + 2 * HOUR, "s2");
        let old_disconnect = disconnected(0, T0, "s1", "CONNECTION_LOST");
        assert_eq!(
            decide(&reset_connect, &old_disconnect),
            Decision::Ignore(IgnoreReason::BeforeCounterReset)
        );
        assert_eq!(
            applied(&decide(&old_disconnect, &reset_connect)),
            Some(ApplyReason::AfterCounterReset)
        );
    }

    #[test]
    fn lower_version_connect_within_the_accuracy_window_is_not_a_reset() {
        // Only 3 minutes later: within twice the ±2 min accuracy plus slack, so the version decides.
        let stored = disconnected(41, T0, "s1", "CONNECTION_LOST");
        let suspicious = connected(0, T0 + 3 * MINUTE, "s2");
        assert_eq!(
            decide(&stored, &suspicious),
            Decision::Ignore(IgnoreReason::Stale)
        );
    }

    #[test]
    fn clearly_apart_is_strictly_more_than_the_window() {
        let stored = disconnected(41, T0, "s1", "CONNECTION_LOST");
        let window = DEFAULT_CLEARLY_APART_MS as i64;
        let at_edge = connected(0, T0 + window, "s2");
        let past_edge = connected(0, T0 + window + 1, "s2");
        assert_eq!(
            decide(&stored, &at_edge),
            Decision::Ignore(IgnoreReason::Stale)
        );
        assert_eq!(
            applied(&decide(&stored, &past_edge)),
            Some(ApplyReason::AfterCounterReset)
        );
    }

    #[test]
    fn same_version_and_kind_with_different_details_is_settled_the_same_way_in_both_orders() {
        let a = connected(2, T0, "s-a");
        let b = connected(2, T0 + 1, "s-b");
        assert_eq!(applied(&decide(&a, &b)), Some(ApplyReason::WonTieBreak));
        assert_eq!(decide(&b, &a), Decision::Ignore(IgnoreReason::LostTieBreak));
        let c = disconnected(2, T0, "s", "CONNECTION_LOST");
        let d = disconnected(2, T0, "s", "SERVER_ERROR");
        assert_eq!(applied(&decide(&c, &d)), Some(ApplyReason::WonTieBreak));
        assert_eq!(decide(&d, &c), Decision::Ignore(IgnoreReason::LostTieBreak));
    }

    #[test]
    fn events_of_another_client_never_touch_the_state() {
        let stored = connected(1, T0, "s1");
        let foreign = Observation::disconnected("other", 9, T0 + HOUR * 3, "x", "CONNECTION_LOST");
        assert_eq!(
            decide(&stored, &foreign),
            Decision::Ignore(IgnoreReason::OtherClient)
        );
    }

    #[test]
    fn last_will_at_survives_every_lifecycle_decision() {
        let mut stored = state_of(&connected(1, T0, "s1"));
        stored.last_will_at = Some(T0 + 5);
        let disconnect = disconnected(1, T0 + MINUTE, "s1", "CONNECTION_LOST");
        let decision = reduce(Some(&stored), &disconnect);
        assert_eq!(decision.state().and_then(|s| s.last_will_at), Some(T0 + 5));
        let reset = connected(0, T0 + 3 * HOUR, "s2");
        let decision = reduce(Some(&stored), &reset);
        assert_eq!(decision.state().and_then(|s| s.last_will_at), Some(T0 + 5));
    }

    #[test]
    fn connect_clears_the_previous_disconnect_reason() {
        let mut connect = connected(2, T0, "s2");
        connect.disconnect_reason = Some("bogus".into());
        let decision = decide(&disconnected(1, T0 - MINUTE, "s1", "THROTTLED"), &connect);
        let state = decision.into_state();
        assert_eq!(state.as_ref().map(|s| s.connected), Some(true));
        assert_eq!(state.and_then(|s| s.disconnect_reason), None);
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let oldest = connected(1, i64::MIN, "s1");
        let newest = connected(0, i64::MAX, "s2");
        assert_eq!(
            applied(&decide(&oldest, &newest)),
            Some(ApplyReason::AfterCounterReset)
        );
        assert_eq!(
            decide(&newest, &oldest),
            Decision::Ignore(IgnoreReason::BeforeCounterReset)
        );
    }

    #[test]
    fn window_is_configurable_within_bounds() {
        assert_eq!(
            Reducer::with_clearly_apart_ms(0),
            Err(ReducerConfigError::ClearlyApartOutOfRange {
                clearly_apart_ms: 0,
                max_ms: MAX_CLEARLY_APART_MS
            })
        );
        assert!(Reducer::with_clearly_apart_ms(MAX_CLEARLY_APART_MS + 1).is_err());
        let strict = Reducer::with_clearly_apart_ms(MINUTE as u64).unwrap();
        assert_eq!(strict.clearly_apart_ms(), MINUTE as u64);
        let stored = state_of(&disconnected(41, T0, "s1", "CONNECTION_LOST"));
        let event = connected(0, T0 + 3 * MINUTE, "s2");
        assert!(strict.reduce(Some(&stored), &event).state().is_some());
        assert!(
            Reducer::default()
                .reduce(Some(&stored), &event)
                .state()
                .is_none()
        );
    }

    #[test]
    fn reasons_have_stable_names() {
        assert_eq!(
            ApplyReason::AfterCounterReset.to_string(),
            "after_counter_reset"
        );
        assert_eq!(
            IgnoreReason::BeforeCounterReset.to_string(),
            "before_counter_reset"
        );
        assert_eq!(
            Decision::Ignore(IgnoreReason::Duplicate).reason_str(),
            "duplicate"
        );
    }
}

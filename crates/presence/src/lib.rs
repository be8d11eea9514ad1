//! Order-proof connectivity: reduce AWS IoT `connected` / `disconnected` lifecycle events into the `reported`
//! section of the named shadow `connectivity` (architecture section 3).
//!
//! AWS delivers lifecycle events out of order and duplicated (reference 1.1). The connect and the disconnect of one
//! connection share a `versionNumber` that grows per client, but it resets to 0 after about an hour offline
//! (reference 1.7), and timestamps are only accurate to about ±2 minutes (reference 1.2). [`reduce`] decides, from
//! the stored state and one event, whether the event supersedes the state, so that any delivery order of a true
//! history ends in the state of its last event.
//!
//! # The ordering rule
//!
//! `S` is the stored state (the projection of the event that won last), `E` the incoming event, `Δt` =
//! `E.timestamp − S.eventTimestamp`, `W` = "clearly apart" window ([`DEFAULT_CLEARLY_APART_MS`] = 5 min = 2 × the
//! ±2 min accuracy + 1 min slack for asynchronous disconnect processing). Rows are checked top to bottom.
//!
//! | # | condition | decision | reason |
//! |---|---|---|---|
//! | 1 | nothing stored | apply | [`ApplyReason::FirstEvent`] |
//! | 2 | `S.clientId ≠ E.clientId` | ignore | [`IgnoreReason::OtherClient`] |
//! | 3 | applying `E` would not change `S` (exact redelivery) | ignore | [`IgnoreReason::Duplicate`] |
//! | 4 | `Δt > W`, version order agrees | apply | [`ApplyReason::NewerVersion`] / [`ApplyReason::SameConnectionDisconnected`] |
//! | 5 | `Δt > W`, version order disagrees (the counter was reset in between) | apply | [`ApplyReason::AfterCounterReset`] |
//! | 6 | `Δt < −W`, version order agrees | ignore | [`IgnoreReason::Stale`] / [`IgnoreReason::SameConnectionAlreadyDisconnected`] |
//! | 7 | `Δt < −W`, version order disagrees (`E` is from before a reset) | ignore | [`IgnoreReason::BeforeCounterReset`] |
//! | 8 | `\|Δt\| ≤ W`, `E.version > S.version` | apply | [`ApplyReason::NewerVersion`] |
//! | 9 | `\|Δt\| ≤ W`, `E.version < S.version` | ignore | [`IgnoreReason::Stale`] |
//! | 10 | `\|Δt\| ≤ W`, same version, `S` connected, `E` disconnected | apply | [`ApplyReason::SameConnectionDisconnected`] |
//! | 11 | `\|Δt\| ≤ W`, same version, `S` disconnected, `E` connected | ignore | [`IgnoreReason::SameConnectionAlreadyDisconnected`] |
//! | 12 | `\|Δt\| ≤ W`, same version and kind, other details differ (AWS never does this) | later timestamp, then greater session id, then greater reason wins | [`ApplyReason::WonTieBreak`] / [`IgnoreReason::LostTieBreak`] |
//!
//! "Version order" is `(versionNumber, disconnected over connected)`; in rows 4/6 an equal version only "agrees" when
//! the session is the same too. Rows 8–11 are the version rule of reference 1.8; rows 4–7 extend its counter-reset
//! exception in the three ways the reference's one-line version misses (each has a unit test):
//! a reset `disconnected` may arrive before its own `connected` (row 5 for a disconnect), a reset event may meet a
//! stored `connected` whose disconnect is still in flight (row 5 over a connect), and the old epoch's events may
//! arrive after the reset, with a higher *or equal* version (row 7: a device that connects once every few hours is
//! always at version 0).
//!
//! Why this converges, and when it cannot, is in `docs/presence.md`; `tests/convergence.rs` checks it with
//! generated histories.
//!
//! ```
//! use presence::{reduce, ApplyReason, Decision, IgnoreReason, Observation};
//!
//! let hour = 3_600_000;
//! let old = Observation::disconnected("ratchet", 41, 1_764_000_000_000, "s1", "CONNECTION_LOST");
//! let reset = Observation::connected("ratchet", 0, 1_764_000_000_000 + 2 * hour, "s2");
//!
//! let Decision::Apply { state, reason } = reduce(None, &reset) else { unreachable!() };
//! assert_eq!(reason, ApplyReason::FirstEvent);
//! // The old epoch's disconnect arrives late, with a higher version: still ignored.
//! assert_eq!(reduce(Some(&state), &old), Decision::Ignore(IgnoreReason::BeforeCounterReset));
//! ```

pub mod connectivity;
pub mod observation;
pub mod reducer;

pub use connectivity::Connectivity;
pub use observation::{Observation, ObservationKind};
pub use reducer::{
    ApplyReason, COUNTER_RESET_OFFLINE_MS, DEFAULT_CLEARLY_APART_MS,
    DISCONNECT_PROCESSING_SLACK_MS, Decision, IgnoreReason, MAX_CLEARLY_APART_MS, Reducer,
    ReducerConfigError, TIMESTAMP_ACCURACY_MS, reduce,
};

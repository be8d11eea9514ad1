//! Classic-shadow sync of `MOTOR` as an explicit state machine (pure: no I/O, no clock), plus the task that
//! runs it against the connection and the actuator.
//!
//! Rules (architecture section 3, reference 3.x):
//! - on every (re)connect: `get` (a delta sent while we were offline may never arrive, SDK issues py-v1 #94);
//! - `get/accepted` is authoritative; a `delta` applies only if its `version` is newer than what we hold
//!   (reference 3.5: messages may arrive out of order, drop lower versions);
//! - act first, report after the actuator returned `Ok`; a failed actuation is never reported;
//! - reports carry `version`, so a concurrent desired change yields 409 (reference 3.3) -> `get` again;
//! - responses are matched by `clientToken`: `update/accepted` also carries other clients' updates.
//!
//! `topics` holds the wire side (topics, parsing, request bodies), `machine` the pure state machine; this
//! file is the runner that feeds it link events and carries out its commands.

mod machine;
mod topics;

use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use machine::{Phase, RESPONSE_TIMEOUT, RETRY_AFTER_ERROR, ShadowSync, SyncCommand, SyncInput};
pub use topics::{
    MOTOR_KEY, MotorField, ShadowParseError, ShadowResponse, ShadowTopic, ShadowTopics,
    get_payload, report_payload,
};

use crate::actuator::{Actuator, MotorState};
use crate::connection::{ConnectionHandle, LinkEvent};
use crate::shutdown::Shutdown;

/// Run the state machine: link events and shadow messages in, publishes and actuations out.
pub async fn run_shadow_sync<A: Actuator>(
    mut sync: ShadowSync,
    mut actuator: A,
    topics: ShadowTopics,
    connection: ConnectionHandle,
    mut events: mpsc::Receiver<LinkEvent>,
    motor_tx: watch::Sender<MotorState>,
    mut shutdown: Shutdown,
) {
    let mut timer = PhaseTimer::default();
    loop {
        let input = tokio::select! {
            _ = shutdown.recv() => return,
            event = events.recv() => match event {
                None => return,
                Some(LinkEvent::Connected { .. }) => SyncInput::Connected,
                Some(LinkEvent::Disconnected) => SyncInput::Disconnected,
                Some(LinkEvent::Message { topic, payload }) => {
                    let Some(kind) = topics.classify(&topic) else { continue };
                    match ShadowResponse::parse(kind, &payload) {
                        Ok(response) => SyncInput::Response(response),
                        Err(error) => {
                            tracing::warn!(%error, "ignoring shadow message");
                            continue;
                        }
                    }
                }
            },
            token = timer.fired(), if timer.is_armed() => SyncInput::TimerFired { token },
        };
        let mut pending = std::collections::VecDeque::from(sync.handle(input));
        while let Some(command) = pending.pop_front() {
            match command {
                SyncCommand::PublishGet { client_token } => {
                    connection.publish_untracked(topics.get(), get_payload(&client_token));
                }
                SyncCommand::PublishReport {
                    client_token,
                    state,
                    version,
                } => {
                    tracing::info!(motor = %state, "reporting MOTOR");
                    connection.publish_untracked(
                        topics.update(),
                        report_payload(state, &client_token, version),
                    );
                }
                SyncCommand::Actuate(target) => {
                    tracing::info!(motor = %target, "switching MOTOR");
                    let ok = match actuator.set(target).await {
                        Ok(()) => true,
                        Err(error) => {
                            tracing::error!(%error, motor = %target, "actuation failed; not reporting it");
                            false
                        }
                    };
                    pending.extend(sync.handle(SyncInput::ActuatorDone { target, ok }));
                }
                SyncCommand::MotorChanged(state) => {
                    motor_tx.send_replace(state);
                }
                SyncCommand::StartTimer { token, after } => timer.start(token, after),
            }
        }
    }
}

/// The shadow sync's one pending timer.
///
/// Policy: at most one timer; a new `StartTimer` replaces the pending one. Nothing is lost by that: the
/// machine issues `StartTimer` only together with a new phase token and acts on `TimerFired` only for the
/// token of the current phase, so an earlier timer would have been ignored when it fired. (It used to be a
/// spawned task and an unbounded channel per timer: a burst of 409s left one sleeping task per request.)
#[derive(Debug)]
struct PhaseTimer {
    token: Option<String>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Default for PhaseTimer {
    fn default() -> Self {
        Self {
            token: None,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl PhaseTimer {
    fn start(&mut self, token: String, after: Duration) {
        self.token = Some(token);
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + after);
    }

    fn is_armed(&self) -> bool {
        self.token.is_some()
    }

    /// The token of the pending timer once it is due; never resolves while none is pending.
    async fn fired(&mut self) -> String {
        if self.token.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.token.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_new_timer_replaces_the_pending_one() {
        let mut timer = PhaseTimer::default();
        let start = tokio::time::Instant::now();
        timer.start("get-1".into(), Duration::from_secs(10));
        timer.start("get-2".into(), Duration::from_secs(5));
        assert_eq!(timer.fired().await, "get-2");
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(!timer.is_armed(), "the replaced timer does not fire later");

        timer.start("report-3".into(), Duration::from_secs(1));
        timer.start("get-4".into(), Duration::from_secs(10));
        assert_eq!(
            timer.fired().await,
            "get-4",
            "a shorter, older timer is gone too"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn no_timer_never_fires() {
        let mut timer = PhaseTimer::default();
        let fired = tokio::time::timeout(Duration::from_secs(3600), timer.fired()).await;
        assert!(fired.is_err());
    }

    /// Why replacing loses nothing: every `StartTimer` carries the token of the phase it starts, so only
    /// the newest timer can ever be acted on.
    #[test]
    fn every_timer_carries_the_token_of_the_phase_it_starts() {
        let phase_token = |sync: &ShadowSync| match sync.phase() {
            Phase::AwaitingGet { token }
            | Phase::AwaitingReport { token, .. }
            | Phase::RetryWait { token } => Some(token.clone()),
            _ => None,
        };
        let rejected = |sync: &ShadowSync, code| {
            SyncInput::Response(ShadowResponse::GetRejected {
                client_token: phase_token(sync),
                code,
                message: String::new(),
            })
        };
        let mut sync = ShadowSync::new(MotorState::Off, "s");
        let mut timers = Vec::new();
        let mut step = |sync: &mut ShadowSync, input: SyncInput| {
            for command in sync.handle(input) {
                if let SyncCommand::StartTimer { token, .. } = command {
                    assert_eq!(Some(token.clone()), phase_token(sync));
                    timers.push(token);
                }
            }
        };
        step(&mut sync, SyncInput::Connected); // get + its response timeout
        let input = rejected(&sync, 500);
        step(&mut sync, input); // retry wait
        let token = phase_token(&sync).unwrap();
        step(&mut sync, SyncInput::TimerFired { token }); // get again
        let input = rejected(&sync, 404);
        step(&mut sync, input); // no shadow: report, with its response timeout
        assert_eq!(timers.len(), 4);
        assert!(matches!(sync.phase(), Phase::AwaitingReport { .. }));
    }
}

//! The shadow sync's state machine: inputs in, commands out; no I/O and no clock, so a test drives it
//! without a broker (the rules are in the `shadow_sync` module docs).
//!
//! One concept at just over 600 lines: the machine is ~300 of them, the rest are the tests that walk it
//! through each rule, which belong beside the transitions they pin down.

use std::time::Duration;

use super::topics::{MotorField, ShadowResponse};
use crate::actuator::MotorState;

/// How long to wait for a get/update response before asking again.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before retrying after a 429/5xx or an unexpected rejection.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// Inputs of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncInput {
    Connected,
    Disconnected,
    Response(ShadowResponse),
    ActuatorDone { target: MotorState, ok: bool },
    TimerFired { token: String },
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCommand {
    PublishGet {
        client_token: String,
    },
    /// Publish `{"state":{"reported":{"MOTOR":state}},"clientToken":..,"version":..}`.
    PublishReport {
        client_token: String,
        state: MotorState,
        version: Option<u64>,
    },
    Actuate(MotorState),
    /// The motor is now in this state (vibration telemetry follows it).
    MotorChanged(MotorState),
    /// Feed `TimerFired { token }` back after `after`.
    StartTimer {
        token: String,
        after: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Offline,
    AwaitingGet { token: String },
    Actuating { target: MotorState },
    AwaitingReport { token: String, state: MotorState },
    RetryWait { token: String },
    Idle,
}

#[derive(Debug, Clone)]
pub struct ShadowSync {
    phase: Phase,
    connected: bool,
    actuator_state: MotorState,
    desired: Option<MotorState>,
    reported: Option<MotorState>,
    version: Option<u64>,
    /// A desired value whose actuation failed; not retried until the shadow says something new.
    failed_target: Option<MotorState>,
    /// Reconnected while the actuator was busy: the get is sent once it is done.
    get_owed: bool,
    token_prefix: String,
    token_counter: u64,
}

impl ShadowSync {
    /// `token_prefix` should be unique per process (the agent session id) so tokens never collide.
    pub fn new(actuator_state: MotorState, token_prefix: &str) -> Self {
        Self {
            phase: Phase::Offline,
            connected: false,
            actuator_state,
            desired: None,
            reported: None,
            version: None,
            failed_target: None,
            get_owed: false,
            token_prefix: token_prefix.chars().take(40).collect(),
            token_counter: 0,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn actuator_state(&self) -> MotorState {
        self.actuator_state
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    fn next_token(&mut self) -> String {
        self.token_counter += 1;
        format!("{}-{}", self.token_prefix, self.token_counter)
    }

    fn request_get(&mut self) -> Vec<SyncCommand> {
        let token = self.next_token();
        self.phase = Phase::AwaitingGet {
            token: token.clone(),
        };
        vec![
            SyncCommand::PublishGet {
                client_token: token.clone(),
            },
            SyncCommand::StartTimer {
                token,
                after: RESPONSE_TIMEOUT,
            },
        ]
    }

    fn retry_later(&mut self) -> Vec<SyncCommand> {
        let token = self.next_token();
        self.phase = Phase::RetryWait {
            token: token.clone(),
        };
        vec![SyncCommand::StartTimer {
            token,
            after: RETRY_AFTER_ERROR,
        }]
    }

    /// Decide the next step once nothing is in flight: act if desired differs, else report if the shadow's
    /// reported differs from the hardware, else rest.
    fn next_step(&mut self) -> Vec<SyncCommand> {
        if !self.connected {
            self.phase = Phase::Offline;
            return Vec::new();
        }
        if let Some(desired) = self.desired
            && desired != self.actuator_state
            && self.failed_target != Some(desired)
        {
            self.phase = Phase::Actuating { target: desired };
            return vec![SyncCommand::Actuate(desired)];
        }
        if self.reported != Some(self.actuator_state) {
            let token = self.next_token();
            let state = self.actuator_state;
            self.phase = Phase::AwaitingReport {
                token: token.clone(),
                state,
            };
            return vec![
                SyncCommand::PublishReport {
                    client_token: token.clone(),
                    state,
                    version: self.version,
                },
                SyncCommand::StartTimer {
                    token,
                    after: RESPONSE_TIMEOUT,
                },
            ];
        }
        self.phase = Phase::Idle;
        Vec::new()
    }

    fn busy(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Offline)
    }

    pub fn handle(&mut self, input: SyncInput) -> Vec<SyncCommand> {
        match input {
            SyncInput::Connected => {
                self.connected = true;
                // Forget the version: the get answer is authoritative, even if the shadow was recreated
                // with a lower version (reference 3.7).
                self.version = None;
                if matches!(self.phase, Phase::Actuating { .. }) {
                    // Let the actuation finish; its completion asks for the get.
                    self.get_owed = true;
                    return Vec::new();
                }
                self.request_get()
            }
            SyncInput::Disconnected => {
                self.connected = false;
                self.get_owed = false;
                if !matches!(self.phase, Phase::Actuating { .. }) {
                    self.phase = Phase::Offline;
                }
                Vec::new()
            }
            SyncInput::ActuatorDone { target, ok } => {
                let mut commands = Vec::new();
                if ok {
                    self.actuator_state = target;
                    self.failed_target = None;
                    commands.push(SyncCommand::MotorChanged(target));
                } else {
                    self.failed_target = Some(target);
                }
                if !self.connected {
                    self.phase = Phase::Offline;
                } else if std::mem::take(&mut self.get_owed) {
                    commands.extend(self.request_get());
                } else {
                    commands.extend(self.next_step());
                }
                commands
            }
            SyncInput::TimerFired { token } => match &self.phase {
                Phase::AwaitingGet { token: t }
                | Phase::AwaitingReport { token: t, .. }
                | Phase::RetryWait { token: t }
                    if *t == token && self.connected =>
                {
                    self.request_get()
                }
                _ => Vec::new(),
            },
            SyncInput::Response(response) => self.handle_response(response),
        }
    }

    fn handle_response(&mut self, response: ShadowResponse) -> Vec<SyncCommand> {
        match response {
            ShadowResponse::GetAccepted {
                client_token,
                version,
                desired,
                reported,
            } => {
                if !self.awaits_get(client_token.as_deref()) {
                    return Vec::new();
                }
                let newer_delta_seen =
                    matches!((self.version, version), (Some(held), Some(v)) if v < held);
                if !newer_delta_seen {
                    self.version = version;
                    self.desired = desired.valid();
                }
                self.reported = reported.valid();
                self.failed_target = None;
                self.next_step()
            }
            ShadowResponse::GetRejected {
                client_token,
                code,
                message,
            } => {
                if !self.awaits_get(client_token.as_deref()) {
                    return Vec::new();
                }
                if code == 404 {
                    // No shadow yet: report the hardware's state, which creates it.
                    self.version = None;
                    self.desired = None;
                    self.reported = None;
                    return self.next_step();
                }
                tracing::warn!(code, message, "shadow get rejected; retrying");
                self.retry_later()
            }
            ShadowResponse::Delta { version, desired } => {
                if let (Some(held), Some(v)) = (self.version, version)
                    && v <= held
                {
                    tracing::debug!(delta_version = v, held, "ignoring stale delta");
                    return Vec::new();
                }
                if version.is_some() {
                    self.version = version;
                }
                match desired {
                    MotorField::Valid(state) => {
                        self.desired = Some(state);
                        self.failed_target = None;
                    }
                    MotorField::Invalid(value) => {
                        tracing::warn!(value, "invalid desired.MOTOR; expected \"ON\" or \"OFF\"");
                        return Vec::new();
                    }
                    MotorField::Absent => return Vec::new(),
                }
                if self.busy() {
                    Vec::new()
                } else {
                    self.next_step()
                }
            }
            ShadowResponse::UpdateAccepted {
                client_token,
                version,
            } => {
                let Phase::AwaitingReport { token, state } = &self.phase else {
                    return Vec::new();
                };
                if client_token.as_deref() != Some(token.as_str()) {
                    return Vec::new();
                }
                self.reported = Some(*state);
                if let Some(v) = version {
                    self.version = Some(self.version.map_or(v, |held| held.max(v)));
                }
                self.next_step()
            }
            ShadowResponse::UpdateRejected {
                client_token,
                code,
                message,
            } => {
                let Phase::AwaitingReport { token, .. } = &self.phase else {
                    return Vec::new();
                };
                if client_token.as_deref() != Some(token.as_str()) {
                    return Vec::new();
                }
                if code == 409 {
                    // Someone changed the shadow since our version: re-read, re-decide (reference 3.3).
                    return self.request_get();
                }
                tracing::warn!(code, message, "shadow report rejected; re-reading later");
                self.retry_later()
            }
        }
    }

    fn awaits_get(&self, client_token: Option<&str>) -> bool {
        matches!(&self.phase, Phase::AwaitingGet { token } if client_token == Some(token.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_token(commands: &[SyncCommand]) -> String {
        commands
            .iter()
            .find_map(|c| match c {
                SyncCommand::PublishGet { client_token } => Some(client_token.clone()),
                _ => None,
            })
            .expect("a get request")
    }

    fn report(commands: &[SyncCommand]) -> (String, MotorState, Option<u64>) {
        commands
            .iter()
            .find_map(|c| match c {
                SyncCommand::PublishReport {
                    client_token,
                    state,
                    version,
                } => Some((client_token.clone(), *state, *version)),
                _ => None,
            })
            .expect("a report")
    }

    fn get_accepted(
        token: &str,
        version: u64,
        desired: Option<MotorState>,
        reported: Option<MotorState>,
    ) -> SyncInput {
        SyncInput::Response(ShadowResponse::GetAccepted {
            client_token: Some(token.into()),
            version: Some(version),
            desired: desired.map_or(MotorField::Absent, MotorField::Valid),
            reported: reported.map_or(MotorField::Absent, MotorField::Valid),
        })
    }

    fn delta(version: u64, state: MotorState) -> SyncInput {
        SyncInput::Response(ShadowResponse::Delta {
            version: Some(version),
            desired: MotorField::Valid(state),
        })
    }

    fn accepted(token: &str, version: u64) -> SyncInput {
        SyncInput::Response(ShadowResponse::UpdateAccepted {
            client_token: Some(token.into()),
            version: Some(version),
        })
    }

    /// Connect and answer the get; returns the machine in the state after the get.
    fn connected_with(
        desired: Option<MotorState>,
        reported: Option<MotorState>,
        version: u64,
    ) -> (ShadowSync, Vec<SyncCommand>) {
        let mut sync = ShadowSync::new(MotorState::Off, "s");
        let token = get_token(&sync.handle(SyncInput::Connected));
        let commands = sync.handle(get_accepted(&token, version, desired, reported));
        (sync, commands)
    }

    #[test]
    fn every_connect_starts_with_a_get() {
        let mut sync = ShadowSync::new(MotorState::Off, "s");
        let commands = sync.handle(SyncInput::Connected);
        assert!(matches!(commands[0], SyncCommand::PublishGet { .. }));
        sync.handle(SyncInput::Disconnected);
        assert_eq!(sync.phase(), &Phase::Offline);
        assert!(matches!(
            sync.handle(SyncInput::Connected)[0],
            SyncCommand::PublishGet { .. }
        ));
    }

    #[test]
    fn desired_on_is_acted_on_before_it_is_reported() {
        let (mut sync, commands) = connected_with(Some(MotorState::On), Some(MotorState::Off), 4);
        assert_eq!(
            commands,
            [SyncCommand::Actuate(MotorState::On)],
            "no report before the actuator is done"
        );
        let commands = sync.handle(SyncInput::ActuatorDone {
            target: MotorState::On,
            ok: true,
        });
        assert_eq!(commands[0], SyncCommand::MotorChanged(MotorState::On));
        let (token, state, version) = report(&commands);
        assert_eq!((state, version), (MotorState::On, Some(4)));
        assert!(sync.handle(accepted(&token, 5)).is_empty());
        assert_eq!(sync.phase(), &Phase::Idle);
        assert_eq!(sync.version(), Some(5));
    }

    #[test]
    fn failed_actuation_is_never_reported_nor_retried_in_a_loop() {
        let (mut sync, _) = connected_with(Some(MotorState::On), Some(MotorState::Off), 4);
        let commands = sync.handle(SyncInput::ActuatorDone {
            target: MotorState::On,
            ok: false,
        });
        assert!(commands.is_empty(), "{commands:?}");
        assert_eq!(sync.actuator_state(), MotorState::Off);
        // A new delta asking again is acted on again.
        assert_eq!(
            sync.handle(delta(5, MotorState::On)),
            [SyncCommand::Actuate(MotorState::On)]
        );
    }

    #[test]
    fn stale_and_duplicate_deltas_are_ignored() {
        let (mut sync, _) = connected_with(None, Some(MotorState::Off), 7);
        assert!(sync.handle(delta(7, MotorState::On)).is_empty());
        assert!(sync.handle(delta(3, MotorState::On)).is_empty());
        assert_eq!(
            sync.handle(delta(8, MotorState::On)),
            [SyncCommand::Actuate(MotorState::On)]
        );
    }

    #[test]
    fn delta_while_busy_is_applied_after_the_current_step() {
        let (mut sync, _) = connected_with(Some(MotorState::On), Some(MotorState::Off), 1);
        // While the motor spins up, desired flips back to OFF.
        assert!(sync.handle(delta(2, MotorState::Off)).is_empty());
        let commands = sync.handle(SyncInput::ActuatorDone {
            target: MotorState::On,
            ok: true,
        });
        assert_eq!(
            commands,
            [
                SyncCommand::MotorChanged(MotorState::On),
                SyncCommand::Actuate(MotorState::Off)
            ]
        );
        let commands = sync.handle(SyncInput::ActuatorDone {
            target: MotorState::Off,
            ok: true,
        });
        // reported is already OFF in the shadow: nothing to report.
        assert_eq!(commands, [SyncCommand::MotorChanged(MotorState::Off)]);
        assert_eq!(sync.phase(), &Phase::Idle);
    }

    #[test]
    fn version_conflict_triggers_a_new_get() {
        let (mut sync, commands) = connected_with(None, Some(MotorState::On), 3);
        let (token, state, _) = report(&commands);
        assert_eq!(
            state,
            MotorState::Off,
            "reports the hardware, not the stale shadow"
        );
        let commands = sync.handle(SyncInput::Response(ShadowResponse::UpdateRejected {
            client_token: Some(token),
            code: 409,
            message: "Version conflict".into(),
        }));
        assert!(matches!(commands[0], SyncCommand::PublishGet { .. }));
    }

    #[test]
    fn responses_for_other_clients_are_ignored() {
        let (mut sync, commands) = connected_with(None, Some(MotorState::On), 3);
        let (token, _, _) = report(&commands);
        // The app's desired update also shows up on update/accepted, with its own token.
        assert!(sync.handle(accepted("app-token", 4)).is_empty());
        assert!(matches!(sync.phase(), Phase::AwaitingReport { .. }));
        assert!(sync.handle(accepted(&token, 5)).is_empty());
        assert_eq!(sync.phase(), &Phase::Idle);
    }

    #[test]
    fn missing_shadow_is_created_by_reporting_the_hardware() {
        let mut sync = ShadowSync::new(MotorState::Off, "s");
        let token = get_token(&sync.handle(SyncInput::Connected));
        let commands = sync.handle(SyncInput::Response(ShadowResponse::GetRejected {
            client_token: Some(token),
            code: 404,
            message: "No shadow exists with name: 'ratchet'".into(),
        }));
        assert_eq!(report(&commands).1, MotorState::Off);
        assert_eq!(
            report(&commands).2,
            None,
            "no version for a shadow that does not exist"
        );
    }

    #[test]
    fn errors_and_timeouts_retry_with_a_get() {
        let mut sync = ShadowSync::new(MotorState::Off, "s");
        let token = get_token(&sync.handle(SyncInput::Connected));
        let commands = sync.handle(SyncInput::Response(ShadowResponse::GetRejected {
            client_token: Some(token),
            code: 429,
            message: "Too many requests".into(),
        }));
        let SyncCommand::StartTimer { token, after } = &commands[0] else {
            panic!("{commands:?}")
        };
        assert_eq!(*after, RETRY_AFTER_ERROR);
        assert!(matches!(
            sync.handle(SyncInput::TimerFired {
                token: token.clone()
            })[0],
            SyncCommand::PublishGet { .. }
        ));
        // A timer for an old request does nothing.
        assert!(
            sync.handle(SyncInput::TimerFired {
                token: "s-0".into()
            })
            .is_empty()
        );
    }

    #[test]
    fn change_while_offline_is_applied_on_reconnect() {
        let (mut sync, _) = connected_with(None, Some(MotorState::Off), 2);
        sync.handle(SyncInput::Disconnected);
        // Offline: a delta cannot arrive; the reconnect get brings desired ON at a higher version.
        let token = get_token(&sync.handle(SyncInput::Connected));
        assert_eq!(
            sync.handle(get_accepted(
                &token,
                3,
                Some(MotorState::On),
                Some(MotorState::Off)
            )),
            [SyncCommand::Actuate(MotorState::On)]
        );
    }

    #[test]
    fn disconnect_during_actuation_reports_only_after_the_next_get() {
        let (mut sync, _) = connected_with(Some(MotorState::On), Some(MotorState::Off), 2);
        sync.handle(SyncInput::Disconnected);
        let commands = sync.handle(SyncInput::ActuatorDone {
            target: MotorState::On,
            ok: true,
        });
        assert_eq!(
            commands,
            [SyncCommand::MotorChanged(MotorState::On)],
            "offline: no report"
        );
        let token = get_token(&sync.handle(SyncInput::Connected));
        let commands = sync.handle(get_accepted(
            &token,
            2,
            Some(MotorState::On),
            Some(MotorState::Off),
        ));
        assert_eq!(report(&commands).1, MotorState::On);
    }

    #[test]
    fn invalid_desired_value_is_ignored() {
        let (mut sync, _) = connected_with(None, Some(MotorState::Off), 1);
        let commands = sync.handle(SyncInput::Response(ShadowResponse::Delta {
            version: Some(2),
            desired: MotorField::Invalid("SPIN".into()),
        }));
        assert!(commands.is_empty());
        assert_eq!(sync.actuator_state(), MotorState::Off);
    }
}

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
    mut events: mpsc::UnboundedReceiver<LinkEvent>,
    motor_tx: watch::Sender<MotorState>,
    mut shutdown: Shutdown,
) {
    let (timer_tx, mut timer_rx) = mpsc::unbounded_channel::<String>();
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
            Some(token) = timer_rx.recv() => SyncInput::TimerFired { token },
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
                SyncCommand::StartTimer { token, after } => {
                    let timer_tx = timer_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = timer_tx.send(token);
                    });
                }
            }
        }
    }
}

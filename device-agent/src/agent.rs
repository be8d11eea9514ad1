//! Wiring: build the parts from the config, run them until shutdown, then flush and disconnect cleanly.

use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::actuator::Actuator;
use crate::check::{CheckReport, run_checks};
use crate::config::AgentConfig;
use crate::connection::{
    ConnectionSettings, LinkSubscribers, connection_pair, link_event_channel, run_connection,
};
use crate::outbox::{Outbox, OutboxError};
use crate::sensors::{temperature_from_config, vibration_from_config};
use crate::shadow_sync::{ShadowSync, ShadowTopics, run_shadow_sync};
use crate::shutdown::{Shutdown, shutdown_channel};
use crate::telemetry::{
    DrainReport, DrainerSettings, TelemetrySink, run_drainer, run_temperature, run_vibration,
};
use crate::tls::{self, TlsSetupError};
use crate::will::{AGENT_VERSION, new_agent_session};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("configuration check failed:\n{}", .0.errors().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Check(CheckReport),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// Unreachable after the config checks, which refuse such a name first.
    #[error("thing_name cannot name a shadow: {0}")]
    ThingName(#[from] shadow_doc::TopicError),
}

/// The process exit code for a configuration the agent will refuse again however often it is restarted; the
/// systemd unit's `RestartPreventExitStatus=2` stops restarting on it.
pub const EXIT_CONFIG: u8 = 2;
/// The process exit code for a runtime failure (I/O, TLS files that became unreadable): a restart may cure it,
/// so the unit restarts the agent.
pub const EXIT_RUNTIME: u8 = 1;

impl AgentError {
    /// [`EXIT_CONFIG`] for what the configuration decides, [`EXIT_RUNTIME`] for everything else. Every error
    /// used to exit 2, so a passing I/O error stopped the agent for good under the unit (issue 13, item 10).
    pub fn exit_code(&self) -> u8 {
        match self {
            AgentError::Check(_) | AgentError::ThingName(_) => EXIT_CONFIG,
            AgentError::Tls(_) | AgentError::Outbox(_) => EXIT_RUNTIME,
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub agent_session: String,
    pub drain: DrainReport,
}

/// Run the agent until `shutdown` fires. Fatal setup problems return an error before any connection.
pub async fn run_agent<A: Actuator>(
    config: AgentConfig,
    actuator: A,
    shutdown: Shutdown,
) -> Result<RunSummary, AgentError> {
    let report = run_checks(&config, SystemTime::now());
    for finding in report
        .findings
        .iter()
        .filter(|f| f.severity == crate::check::Severity::Warning)
    {
        tracing::warn!("{finding}");
    }
    if report.has_errors() {
        return Err(AgentError::Check(report));
    }
    let tls_config = tls::client_config(&config)?;
    let outbox_path = config.outbox.path.clone();
    let (max, on_full) = (config.outbox.max_messages, config.outbox.on_full);
    // Opening replays the log and makes a durable seq reservation (an fsync): off the async thread.
    let outbox = tokio::task::spawn_blocking(move || Outbox::open(&outbox_path, max, on_full))
        .await
        .map_err(|e| OutboxError::Io(std::io::Error::other(e.to_string())))??;
    let recovery = outbox.recovery();
    if recovery.discarded_bytes > 0 {
        tracing::warn!(
            discarded_bytes = recovery.discarded_bytes,
            "outbox ended in a torn or corrupt record (power loss?); cut it, every whole record is kept"
        );
    }
    if recovery.corrupt_bytes > 0 {
        tracing::error!(
            corrupt_bytes = recovery.corrupt_bytes,
            lost_messages = recovery.lost_messages,
            "the outbox had damaged records (bad storage?); skipped them, kept every record after them and \
             counted the lost messages in dropped_total"
        );
    }
    for aside in &recovery.quarantined {
        tracing::error!(file = %aside.display(), "an outbox segment was not readable; moved it aside and went on");
    }
    if recovery.skipped_seqs > 0 {
        tracing::warn!(
            skipped = recovery.skipped_seqs,
            "the outbox was not closed cleanly before a reboot; seq continues after the reserved block so no number is reused"
        );
    }
    let agent_session = new_agent_session();
    tracing::info!(
        thing = %config.thing_name, endpoint = %config.endpoint, port = config.port, agent_session,
        stored_messages = outbox.len(), dropped_total = outbox.dropped_total(), next_seq = outbox.next_seq(),
        "starting device-agent {}", AGENT_VERSION
    );

    let shadow_topics = ShadowTopics::new(&config.thing_name)?;
    let settings = ConnectionSettings::from_config(
        &config,
        tls_config,
        agent_session.clone(),
        shadow_topics.subscriptions(),
    );
    let (connection, driver) = connection_pair(settings);
    // Bounded; when a consumer falls behind, the event loop waits for it (policy at `link_event_channel`).
    let (drainer_events_tx, drainer_events) = link_event_channel();
    let (shadow_events_tx, shadow_events) = link_event_channel();
    let connection_task = tokio::spawn(run_connection(
        driver,
        LinkSubscribers::new(vec![drainer_events_tx, shadow_events_tx]),
    ));

    let initial_motor = actuator.current();
    let (motor_tx, motor_rx) = watch::channel(initial_motor);
    let sync = ShadowSync::new(initial_motor, &agent_session[..8.min(agent_session.len())]);
    let shadow_task = tokio::spawn(run_shadow_sync(
        sync,
        actuator,
        shadow_topics,
        connection.clone(),
        shadow_events,
        motor_tx,
        shutdown.clone(),
    ));

    let (sink, readings) = TelemetrySink::channel(config.thing_name.clone());
    let secs = |v: f64| Duration::try_from_secs_f64(v).unwrap_or(Duration::from_secs(1));
    let temperature_task = tokio::spawn(run_temperature(
        temperature_from_config(&config.sensors),
        sink.clone(),
        config.temperature_topic(),
        config.telemetry.unit,
        secs(config.telemetry.temperature_interval_secs),
        shutdown.clone(),
    ));
    let vibration_task = tokio::spawn(run_vibration(
        vibration_from_config(&config.sensors),
        sink,
        config.vibration_topic(),
        secs(config.telemetry.vibration_interval_secs),
        motor_rx,
        shutdown.clone(),
    ));

    // Shutdown order: producers stop (a reading being stored is committed first), then the drainer flushes
    // what is stored, then DISCONNECT. The drainer has its own signal so it cannot miss a last reading.
    let (flush_trigger, flush_signal) = shutdown_channel();
    let drainer_task = tokio::spawn(run_drainer(
        outbox,
        readings,
        connection.clone(),
        drainer_events,
        DrainerSettings {
            max_in_flight: config.outbox.max_in_flight,
            sync: config.outbox.sync,
            sync_interval: Duration::from_millis(config.outbox.sync_interval_ms),
            flush_timeout: secs(config.shutdown_flush_secs),
        },
        flush_signal,
    ));
    let mut shutdown = shutdown;
    shutdown.recv().await;
    let _ = temperature_task.await;
    let _ = vibration_task.await;
    flush_trigger.trigger();
    let drain = drainer_task.await.unwrap_or_default();
    let _ = shadow_task.await;
    // Clean DISCONNECT: the broker drops the Will (reference 2.1).
    connection.disconnect(Duration::from_secs(2)).await;
    drop(connection);
    if tokio::time::timeout(Duration::from_secs(5), connection_task)
        .await
        .is_err()
    {
        tracing::warn!("connection did not close in time");
    }
    tracing::info!(
        acknowledged = drain.acknowledged,
        left_in_outbox = drain.left_in_outbox,
        flushes = drain.flushes,
        "stopped"
    );
    Ok(RunSummary {
        agent_session,
        drain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unit's RestartPreventExitStatus=2 must stop restarts only for configuration problems (issue 13, item 10).
    #[test]
    fn configuration_errors_exit_2_and_runtime_errors_exit_1() {
        let check = AgentError::Check(CheckReport { findings: vec![] });
        let thing = AgentError::ThingName(shadow_doc::TopicError::InvalidThingName("a/b".into()));
        let io = AgentError::Outbox(OutboxError::Io(std::io::Error::other("disk went away")));
        assert_eq!(check.exit_code(), EXIT_CONFIG);
        assert_eq!(thing.exit_code(), EXIT_CONFIG);
        assert_eq!(io.exit_code(), EXIT_RUNTIME);
        assert_eq!((EXIT_CONFIG, EXIT_RUNTIME), (2, 1));
    }
}

//! Telemetry pipeline: sensors -> drainer -> outbox (disk) -> connection.
//!
//! Producers never publish: they hand each reading to the drainer, which appends it to the outbox before
//! anything is sent, so a reading taken while offline, or just before a crash, is not lost. The drainer
//! owns the outbox (no lock, no thread hop per reading), replays it in `seq` order with up to
//! `max_in_flight` QoS 1 publishes outstanding, and removes an entry only when its PUBACK arrived
//! (`publish_tracked` + `wait_async`). When the broker has no session for us (`session_present = false`),
//! rumqttc fails the outstanding notices and the drainer rewinds to the oldest stored entry, so the order on
//! the wire is still `seq` order (duplicates possible, losses not). Disk flushes follow `outbox.sync`.
//!
//! `sources` holds the producers and the payloads, `drainer` the drainer's decisions as a value
//! ([`Drainer`]); this file is the drainer's loop, which carries them out against the outbox and the
//! connection.

mod drainer;
mod sources;

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

pub use drainer::{DrainReport, Drainer, DrainerSettings, Puback, RETRY_AFTER_REFUSED, WindowRead};
pub use sources::{
    Reading, TelemetrySink, TemperatureReading, VibrationReading, celsius_in, run_temperature,
    run_vibration,
};

use crate::connection::{ConnectionHandle, LinkEvent};
use crate::outbox::{Outbox, OutboxError, PushOutcome};
use crate::shutdown::Shutdown;

/// Run a blocking flush off the async thread, then record it. Returns whether it succeeded.
async fn sync_outbox(outbox: &mut Outbox) -> bool {
    let ticket = match outbox.sync_ticket() {
        Ok(ticket) => ticket,
        Err(error) => {
            tracing::error!(%error, "cannot flush the outbox; readings stay in the page cache");
            return false;
        }
    };
    match tokio::task::spawn_blocking(move || ticket.run()).await {
        Ok(Ok(ticket)) => {
            outbox.synced(ticket);
            true
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "outbox flush failed; will retry");
            false
        }
        Err(error) => {
            tracing::error!(%error, "outbox flush task failed; will retry");
            false
        }
    }
}

/// Append one reading; log what the bound did. Returns its `seq` when it was stored.
fn store_reading(outbox: &mut Outbox, reading: Reading) -> Option<u64> {
    match outbox.push_with(&reading.topic, reading.render) {
        Ok(PushOutcome::Stored { seq }) => Some(seq),
        Ok(PushOutcome::StoredDroppingOldest { seq, dropped_seq }) => {
            tracing::warn!(
                dropped_seq,
                dropped_total = outbox.dropped_total(),
                "outbox full: dropped the oldest reading"
            );
            Some(seq)
        }
        Ok(PushOutcome::Rejected) => {
            tracing::warn!(
                topic = reading.topic,
                dropped_total = outbox.dropped_total(),
                "outbox full: dropped the new reading (on_full = drop-newest)"
            );
            None
        }
        Err(error) => {
            tracing::error!(%error, topic = reading.topic, "could not store reading");
            None
        }
    }
}

/// Store readings, replay the outbox in order while connected; on shutdown store what the producers
/// left, keep draining until empty or `flush_timeout`, then close the outbox cleanly.
///
/// The decisions are [`Drainer`]'s; this loop owns the outbox, the PUBACK notices and the two timers.
pub async fn run_drainer(
    mut outbox: Outbox,
    mut readings: mpsc::Receiver<Reading>,
    connection: ConnectionHandle,
    mut events: mpsc::Receiver<LinkEvent>,
    settings: DrainerSettings,
    mut shutdown: Shutdown,
) -> DrainReport {
    let mut drainer = Drainer::new(settings);
    // PUBACK notices of the publishes in flight.
    let mut acks = FuturesUnordered::new();
    // One timer entry for the whole run, moved with `reset` only when the drainer says so (a fresh
    // `Sleep` per loop would be a timer-wheel insert and removal per event).
    let sync_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sync_timer);

    loop {
        if let Some(read) = drainer.window() {
            match outbox.read_from(read.from, read.limit) {
                Ok(batch) => {
                    drainer.window_read(read, batch.len());
                    for message in batch {
                        match connection.publish_tracked(message.topic, message.payload) {
                            Ok(notice) => {
                                let seq = message.seq;
                                let generation = drainer.published(seq);
                                acks.push(async move {
                                    let delivered = notice.wait_async().await.is_ok();
                                    Puback {
                                        generation,
                                        seq,
                                        delivered,
                                    }
                                });
                            }
                            Err(error) => {
                                tracing::debug!(%error, "publish not admitted; retrying later");
                                drainer.publish_refused(tokio::time::Instant::now());
                                break;
                            }
                        }
                    }
                }
                Err(OutboxError::Corrupt { seq }) => {
                    tracing::error!(
                        seq,
                        "outbox entry is unreadable (storage corruption); dropping it"
                    );
                    if let Err(error) = outbox.discard_corrupt(seq) {
                        tracing::error!(%error, "cannot drop the corrupt outbox entry");
                    }
                    continue;
                }
                Err(error) => tracing::error!(%error, "cannot read outbox"),
            }
        }
        if drainer.finished(outbox.is_empty()) {
            break;
        }
        if let Some(at) = drainer.flush_timer_due(|seq| outbox.is_live(seq)) {
            sync_timer.as_mut().reset(at);
        }
        tokio::select! {
            biased;
            Some(reading) = readings.recv() => {
                if let Some(seq) = store_reading(&mut outbox, reading)
                    && drainer.stored(seq, tokio::time::Instant::now())
                {
                    drainer.flushed(sync_outbox(&mut outbox).await);
                }
            }
            Some(first) = acks.next(), if !acks.is_empty() => {
                let mut done = Vec::new();
                done.extend(drainer.puback(first));
                // PUBACKs that came in the same read are ready too: one removal for all of them.
                while let Some(Some(more)) = acks.next().now_or_never() {
                    done.extend(drainer.puback(more));
                }
                if let Err(error) = outbox.remove(&done) {
                    tracing::error!(%error, "cannot record acknowledged messages; they will be sent again");
                }
            }
            event = events.recv() => match event {
                Some(LinkEvent::Connected { session_present }) => drainer.connected(session_present),
                Some(LinkEvent::Disconnected) => drainer.disconnected(),
                Some(LinkEvent::Message { .. }) => {}
                None => break,
            },
            _ = &mut sync_timer, if drainer.flush_timer_armed() => {
                if drainer.flush_timer_fired(tokio::time::Instant::now()) {
                    drainer.flushed(sync_outbox(&mut outbox).await);
                }
            }
            _ = sleep_until(drainer.retry_at()), if drainer.retry_at().is_some() => drainer.retry_elapsed(),
            _ = shutdown.recv(), if drainer.flush_deadline().is_none() => {
                // The producers have stopped: store what they handed over before flushing.
                readings.close();
                while let Ok(reading) = readings.try_recv() {
                    store_reading(&mut outbox, reading);
                }
                drainer.begin_shutdown(tokio::time::Instant::now());
            }
            _ = sleep_until(drainer.flush_deadline()), if drainer.flush_deadline().is_some() => break,
        }
    }
    let mut report = drainer.report();
    report.left_in_outbox = outbox.len();
    // The clean-close marker lets the next start continue exactly at the next seq, even after a reboot.
    match tokio::task::spawn_blocking(move || outbox.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "cannot close the outbox cleanly"),
        Err(error) => tracing::error!(%error, "outbox close task failed"),
    }
    report
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OutboxSync, OverflowPolicy};

    /// A drainer that never gets a connection: every reading stays in the outbox.
    async fn run_offline(sync: OutboxSync, readings: u64, wait: Duration) -> (DrainReport, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), 100, OverflowPolicy::DropOldest).unwrap();
        let (connection, _driver) =
            crate::connection::connection_pair(crate::connection::tests::settings());
        let (sink, inbox) = TelemetrySink::channel("ratchet".into());
        let (_events_tx, events) = crate::connection::link_event_channel();
        let (trigger, shutdown) = crate::shutdown::shutdown_channel();
        let settings = DrainerSettings {
            max_in_flight: 5,
            sync,
            sync_interval: Duration::from_millis(50),
            flush_timeout: Duration::from_secs(1),
        };
        let drainer = tokio::spawn(run_drainer(
            outbox, inbox, connection, events, settings, shutdown,
        ));
        for _ in 0..readings {
            sink.store("data/ratchet/temperature", |seq| {
                seq.to_string().into_bytes()
            })
            .await;
        }
        tokio::time::sleep(wait).await;
        trigger.trigger();
        let report = drainer.await.unwrap();
        let reopened = Outbox::open(dir.path(), 100, OverflowPolicy::DropOldest).unwrap();
        (report, reopened)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn offline_readings_are_flushed_once_per_interval_not_per_reading() {
        let (report, outbox) =
            run_offline(OutboxSync::Interval, 3, Duration::from_millis(400)).await;
        assert_eq!(
            report.flushes, 1,
            "three readings stored together, one flush after 50 ms"
        );
        assert_eq!((report.left_in_outbox, outbox.len()), (3, 3));
        assert_eq!(outbox.recovery().skipped_seqs, 0, "closed cleanly");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_flush_before_the_interval_has_passed() {
        // Shut down at once: the close flushes, the interval never came.
        let (report, outbox) = run_offline(OutboxSync::Interval, 3, Duration::ZERO).await;
        assert_eq!(report.flushes, 0);
        assert_eq!(outbox.len(), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sync_always_flushes_every_reading() {
        let (report, outbox) = run_offline(OutboxSync::Always, 3, Duration::ZERO).await;
        assert_eq!(report.flushes, 3);
        assert_eq!(outbox.len(), 3);
    }
}

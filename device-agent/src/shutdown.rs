//! Shutdown as a value: the signal every task holds, and the OS signals that fire it.
//!
//! SIGTERM/SIGINT -> flush the outbox (bounded by `shutdown_flush_secs`) -> MQTT DISCONNECT, so the broker
//! discards the Will (reference 2.1: no will on a client-initiated disconnect). A crash, `kill -9` or a power
//! loss leaves no DISCONNECT, so the broker publishes the Will (see `will`).

use tokio::sync::watch;

/// A shutdown notification that tasks hold by value (mini-redis style). Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Triggers every `Shutdown` created from it.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (
        ShutdownTrigger {
            tx: std::sync::Arc::new(tx),
        },
        Shutdown { rx },
    )
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown was triggered (immediately if it already was, or if the trigger is gone).
    pub async fn recv(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
pub async fn termination_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_reaches_every_holder() {
        let (trigger, mut a) = shutdown_channel();
        let mut b = trigger.subscribe();
        assert!(!a.is_shutdown());
        trigger.trigger();
        a.recv().await;
        b.recv().await;
        assert!(b.is_shutdown());
    }
}

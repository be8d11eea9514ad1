//! Shutdown as a value (the mini-redis shape): every task holds a [`Shutdown`] and stops when it fires.

use tokio::sync::broadcast;

/// Listens for the broker's shutdown signal. Only one value is ever sent, so lagging is impossible.
#[derive(Debug)]
pub(crate) struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    pub(crate) fn new(notify: broadcast::Receiver<()>) -> Shutdown {
        Shutdown {
            is_shutdown: false,
            notify,
        }
    }

    /// Resolves once shutdown has been signalled (immediately if it already was).
    pub(crate) async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}

//! The telemetry cadence, one wakeup per tick.
//!
//! tokio's timer wheel wakes a sleeping runtime early for any timer more than 64 ms away (to move it
//! down a wheel level) and then again when it is due: two wakeups per reading at 10 readings/s, and a
//! wakeup is most of what a reading costs on a Pi (see docs/benchmarks.md, device agent footprint).
//! On Linux a `timerfd` lets the kernel keep the period instead, and the runtime wakes once, through
//! the same epoll it already waits on. Elsewhere this falls back to a tokio interval.

use std::time::Duration;

/// Ticks every `period`; the first tick is immediate. After a stall the missed ticks collapse into
/// one (the cadence is kept; no burst of readings with the same timestamp).
pub struct Ticker {
    inner: Inner,
}

enum Inner {
    #[cfg(target_os = "linux")]
    TimerFd(timerfd::TimerFd),
    Interval(tokio::time::Interval),
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            #[cfg(target_os = "linux")]
            Inner::TimerFd(_) => "timerfd",
            Inner::Interval(_) => "tokio interval",
        };
        f.debug_struct("Ticker").field("kind", &kind).finish()
    }
}

impl Ticker {
    /// The shortest period accepted; shorter ones are raised to it.
    pub const MIN_PERIOD: Duration = Duration::from_millis(10);

    /// Must be called inside a tokio runtime with I/O and time enabled.
    pub fn new(period: Duration) -> Self {
        let period = period.max(Self::MIN_PERIOD);
        #[cfg(target_os = "linux")]
        match timerfd::TimerFd::new(period) {
            Ok(timer) => {
                return Self {
                    inner: Inner::TimerFd(timer),
                };
            }
            Err(error) => {
                tracing::warn!(%error, "no timerfd; pacing telemetry with a tokio interval instead")
            }
        }
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            inner: Inner::Interval(interval),
        }
    }

    pub async fn tick(&mut self) {
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::TimerFd(timer) => timer.tick().await,
            Inner::Interval(interval) => {
                interval.tick().await;
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod timerfd {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    pub struct TimerFd {
        fd: AsyncFd<OwnedFd>,
    }

    fn timespec(duration: Duration) -> libc::timespec {
        libc::timespec {
            tv_sec: duration.as_secs().try_into().unwrap_or(libc::time_t::MAX),
            // Below 10^9, so it fits `c_long` everywhere (32 bits on armv7: `From` does not exist there,
            // `TryFrom` is a lint on 64-bit targets).
            tv_nsec: duration.subsec_nanos() as libc::c_long,
        }
    }

    impl TimerFd {
        pub fn new(period: Duration) -> std::io::Result<Self> {
            // SAFETY: plain syscall; the result is checked before it is used as a descriptor.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let spec = libc::itimerspec {
                it_interval: timespec(period),
                // Due at once (tokio intervals tick immediately too); 0 would disarm the timer.
                it_value: timespec(Duration::from_nanos(1)),
            };
            // SAFETY: `fd` is a valid timerfd and `spec` outlives the call; no old value is requested.
            let set =
                unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if set < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: the AsyncFd owns the descriptor, so it stays open for as long as it is registered.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
            Ok(Self { fd })
        }

        pub async fn tick(&mut self) {
            loop {
                let Ok(mut guard) = self.fd.readable().await else {
                    // The runtime is shutting down; there is nothing left to pace.
                    return std::future::pending().await;
                };
                let mut expirations = [0u8; 8];
                // SAFETY: reads at most 8 bytes into an 8-byte buffer from a descriptor we own.
                let read = unsafe {
                    libc::read(
                        self.fd.get_ref().as_raw_fd(),
                        expirations.as_mut_ptr().cast(),
                        8,
                    )
                };
                // One read takes every expiration since the last one; then wait for the next edge.
                guard.clear_ready();
                if read == 8 {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `tick` is ready without waiting (one poll).
    async fn ready_now(ticker: &mut Ticker) -> bool {
        tokio::select! {
            biased;
            _ = ticker.tick() => true,
            _ = std::future::ready(()) => false,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ticks_are_paced_and_missed_ticks_collapse_into_one() {
        let period = Duration::from_millis(50);
        let mut ticker = Ticker::new(period);
        assert!(format!("{ticker:?}").contains("timerfd"), "{ticker:?}");
        let started = std::time::Instant::now();
        ticker.tick().await;
        ticker.tick().await;
        ticker.tick().await;
        assert!(
            started.elapsed() >= period + period / 2,
            "paced, not immediate: {:?}",
            started.elapsed()
        );
        // The runtime stalls for four periods: one tick is due, not four.
        std::thread::sleep(period * 4);
        ticker.tick().await;
        assert!(
            !ready_now(&mut ticker).await,
            "the missed ticks were collapsed into the one just taken"
        );
    }
}

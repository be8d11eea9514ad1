//! Reconnect policy: exponential backoff with full jitter, a hard floor between CONNECT attempts, and a reset
//! only after a connection proved stable.
//!
//! Why each rule exists:
//! - full jitter (`delay = random(0, min(cap, base * 2^n))`) spreads a fleet that lost the broker at the same
//!   moment, so it does not come back as a thundering herd;
//! - AWS IoT accepts one CONNECT per second per client id (reference 6.5); the floor keeps us under it even when
//!   the jitter draws 0;
//! - a connection that drops right after CONNACK (policy violation, duplicate client id) makes the broker send
//!   the Last Will every time. Resetting the backoff on CONNACK would loop at the floor and flood the will topic
//!   (the SDK v2 bug py-v2 #394); we reset only after `stable_after`.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::config::ReconnectConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub stable_after: Duration,
    pub min_connect_interval: Duration,
}

impl ReconnectPolicy {
    pub fn from_config(config: &ReconnectConfig) -> Self {
        let secs = |v: f64| Duration::try_from_secs_f64(v).unwrap_or(Duration::ZERO);
        Self {
            initial: secs(config.initial_delay_secs),
            max: secs(config.max_delay_secs),
            stable_after: secs(config.stable_after_secs),
            // Never below AWS's 1 CONNECT/s, whatever the config says.
            min_connect_interval: secs(config.min_connect_interval_secs)
                .max(Duration::from_secs(1)),
        }
    }
}

/// Backoff state across attempts. Pure: callers pass `now` and the random source, so tests are exact.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    failures: u32,
    last_attempt: Option<Instant>,
    connected_at: Option<Instant>,
}

impl Backoff {
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            last_attempt: None,
            connected_at: None,
        }
    }

    /// How long to wait before the next CONNECT; the first attempt only respects the floor.
    pub fn delay_before_attempt(&mut self, now: Instant, rng: &mut impl Rng) -> Duration {
        let jittered = if self.failures == 0 {
            Duration::ZERO
        } else {
            let exponent = (self.failures - 1).min(31);
            let ceiling = self
                .policy
                .initial
                .saturating_mul(1u32 << exponent)
                .min(self.policy.max);
            Duration::from_secs_f64(rng.random_range(0.0..=ceiling.as_secs_f64()))
        };
        let floor = self
            .last_attempt
            .map(|last| (last + self.policy.min_connect_interval).saturating_duration_since(now))
            .unwrap_or(Duration::ZERO);
        jittered.max(floor)
    }

    /// Call when a CONNECT is about to be sent.
    pub fn record_attempt(&mut self, now: Instant) {
        self.last_attempt = Some(now);
    }

    /// Call on CONNACK.
    pub fn record_connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// Call when an attempt failed or a connection dropped; only a stable connection resets the exponent.
    pub fn record_failure(&mut self, now: Instant) {
        let was_stable = self
            .connected_at
            .take()
            .is_some_and(|since| now.saturating_duration_since(since) >= self.policy.stable_after);
        self.failures = if was_stable {
            1
        } else {
            self.failures.saturating_add(1)
        };
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> ReconnectPolicy {
        ReconnectPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(30),
            min_connect_interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn delays_stay_under_the_exponential_ceiling_and_the_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(policy());
        let start = Instant::now();
        for n in 1..=12u32 {
            backoff.record_failure(start);
            let ceiling = Duration::from_secs(1u64 << (n - 1)).min(Duration::from_secs(60));
            for _ in 0..50 {
                let delay =
                    backoff.delay_before_attempt(start + Duration::from_secs(3600), &mut rng);
                assert!(delay <= ceiling, "attempt {n}: {delay:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(policy());
        let t = Instant::now();
        for _ in 0..6 {
            backoff.record_failure(t);
        }
        let delays: Vec<_> = (0..20)
            .map(|_| backoff.delay_before_attempt(t + Duration::from_secs(999), &mut rng))
            .collect();
        let distinct: std::collections::BTreeSet<_> =
            delays.iter().map(|d| d.as_millis()).collect();
        assert!(distinct.len() > 10, "{delays:?}");
    }

    #[test]
    fn never_more_than_one_connect_per_second() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut backoff = Backoff::new(policy());
        let mut now = Instant::now();
        let mut attempts = Vec::new();
        for _ in 0..200 {
            now += backoff.delay_before_attempt(now, &mut rng);
            backoff.record_attempt(now);
            attempts.push(now);
            // Fails instantly, or connects and drops immediately: both must keep >= 1 s spacing.
            backoff.record_connected(now);
            backoff.record_failure(now);
        }
        for pair in attempts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_secs(1));
        }
    }

    #[test]
    fn only_a_stable_connection_resets_the_exponent() {
        let mut backoff = Backoff::new(policy());
        let t = Instant::now();
        for _ in 0..5 {
            backoff.record_failure(t);
        }
        backoff.record_connected(t);
        backoff.record_failure(t + Duration::from_secs(2));
        assert_eq!(
            backoff.consecutive_failures(),
            6,
            "a flapping connection keeps growing the delay"
        );
        backoff.record_connected(t);
        backoff.record_failure(t + Duration::from_secs(31));
        assert_eq!(backoff.consecutive_failures(), 1);
    }

    #[test]
    fn first_attempt_is_immediate() {
        let mut backoff = Backoff::new(policy());
        assert_eq!(
            backoff.delay_before_attempt(Instant::now(), &mut rand::rng()),
            Duration::ZERO
        );
    }
}

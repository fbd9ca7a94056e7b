//! Per-peer packet rate limits: a token bucket per peer, with time passed in.

use std::collections::HashMap;

use libp2p::PeerId;
use web_time::Instant;

/// A token bucket per peer: `rate` tokens a second up to `burst`; each packet takes one.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u32,
    burst: u32,
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl RateLimiter {
    /// A limiter allowing `rate` packets a second per peer, with bursts of `burst`.
    /// A rate of 0 disables the limit.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate,
            burst: burst.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `peer` at `now`; `false` if none is left.
    pub fn try_acquire(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let burst = f64::from(self.burst);
        let (tokens, last) = self.buckets.entry(peer).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * f64::from(self.rate)).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets `peer` (its last connection closed).
    pub fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut limiter = RateLimiter::new(10, 5);
        let peer = PeerId::random();
        let other = PeerId::random();
        let t0 = Instant::now();
        assert_eq!((0..8).filter(|_| limiter.try_acquire(peer, t0)).count(), 5);
        // Another peer has its own bucket.
        assert!(limiter.try_acquire(other, t0));
        // 10/s: one token per 100 ms.
        assert!(!limiter.try_acquire(peer, t0 + Duration::from_millis(50)));
        assert!(limiter.try_acquire(peer, t0 + Duration::from_millis(160)));
        assert!(!limiter.try_acquire(peer, t0 + Duration::from_millis(170)));
        // Refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..8).filter(|_| limiter.try_acquire(peer, later)).count(),
            5
        );
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let mut limiter = RateLimiter::new(0, 1);
        let peer = PeerId::random();
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.try_acquire(peer, now)));
    }
}

//! Per-peer packet rate limits: a token bucket per peer, with time passed in.

use std::collections::HashMap;

use libp2p::PeerId;
use web_time::Instant;

/// A token bucket per peer: `rate` tokens a second up to `burst`; each packet takes one.
///
/// A peer's bucket outlives its connections until it has refilled: reconnecting does not
/// restore a full burst (audit F12). Refilled buckets are equivalent to none and are pruned.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u32,
    burst: u32,
    buckets: HashMap<PeerId, (f64, Instant)>,
    /// Buckets held after the last prune; the next prune runs at twice as many.
    pruned_at: usize,
}

impl RateLimiter {
    /// A limiter allowing `rate` packets a second per peer, with bursts of `burst`.
    /// A rate of 0 disables the limit.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate,
            burst: burst.max(1),
            buckets: HashMap::new(),
            pruned_at: 0,
        }
    }

    /// Takes a token for `peer` at `now`; `false` if none is left.
    pub fn try_acquire(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let burst = f64::from(self.burst);
        if self.buckets.len() > self.pruned_at.saturating_mul(2).max(1024) {
            self.prune(now);
        }
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

    /// `peer`'s last connection closed: its bucket is dropped if it has refilled by `now`,
    /// and kept otherwise (so a reconnect does not refill it).
    pub fn forget(&mut self, peer: &PeerId, now: Instant) {
        if self
            .buckets
            .get(peer)
            .is_some_and(|bucket| self.refilled(*bucket, now))
        {
            self.buckets.remove(peer);
        }
    }

    fn refilled(&self, (tokens, last): (f64, Instant), now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        tokens + elapsed * f64::from(self.rate) >= f64::from(self.burst)
    }

    /// Drops every bucket that has refilled by `now`.
    fn prune(&mut self, now: Instant) {
        let (rate, burst) = (f64::from(self.rate), f64::from(self.burst));
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
        });
        self.pruned_at = self.buckets.len();
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
    fn a_reconnect_does_not_refill_the_bucket() {
        let mut limiter = RateLimiter::new(10, 5);
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!((0..5).filter(|_| limiter.try_acquire(peer, t0)).count(), 5);
        // Disconnect and reconnect at once: still empty.
        limiter.forget(&peer, t0);
        assert!(!limiter.try_acquire(peer, t0));
        // Once refilled, the bucket is forgotten and a new one starts full.
        let later = t0 + Duration::from_secs(1);
        limiter.forget(&peer, later);
        assert!(limiter.buckets.is_empty());
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

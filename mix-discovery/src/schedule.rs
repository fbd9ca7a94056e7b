//! When to register and when to look up, sans-IO (nwaku's schedule, WAKU.md §5.2–§5.3):
//! registration every 10 s, doubling after a failure up to 5 min, with a 60 s TTL; lookups every
//! second while the pool is short of its target (at most 50 such rounds), then every 10 s.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use web_time::Instant;

use crate::record::MixRecord;
use crate::registry::MAX_TTL;
use crate::rounds::Pool;

/// How many registrations one lookup page asks for.
pub const LOOKUP_PAGE: u64 = 100;
/// At most this many follow-up pages per rendezvous point per round (with the first, 500
/// records, each a signature check).
pub const MAX_LOOKUP_PAGES: usize = 4;
/// At most this many records asked for (so signatures checked) per lookup round, over all
/// points: a page is asked for only while its [`LOOKUP_PAGE`] records fit.
pub const MAX_ROUND_RECORDS: u64 = 1000;
/// A discovered record is kept at most this many lookup periods without being seen again,
/// whatever TTL its point claims (an honest point lists it again every round).
pub const KEEP_PERIODS: u32 = 6;

/// The verification budget of one lookup round: pages per point and records over all points
/// (F4: a point that always answers with full pages and a cookie would otherwise be asked
/// again and again, each page up to [`LOOKUP_PAGE`] signature checks on the caller's loop).
#[derive(Clone, Debug, Default)]
pub struct LookupRound {
    pages: HashMap<PeerId, usize>,
    records: u64,
}

impl LookupRound {
    /// A new round: nothing asked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a page of [`LOOKUP_PAGE`] records may be asked of `point` (its first, or after a
    /// full one); if so it is counted. At most `1 +` [`MAX_LOOKUP_PAGES`] pages per point and
    /// [`MAX_ROUND_RECORDS`] records per round.
    pub fn ask(&mut self, point: PeerId) -> bool {
        let pages = self.pages.entry(point).or_default();
        if *pages > MAX_LOOKUP_PAGES || self.records.saturating_add(LOOKUP_PAGE) > MAX_ROUND_RECORDS
        {
            return false;
        }
        *pages = pages.saturating_add(1);
        self.records = self.records.saturating_add(LOOKUP_PAGE);
        true
    }

    /// Records asked for so far this round (the most signatures it can cost).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Pages asked of `point` this round.
    pub fn pages(&self, point: &PeerId) -> usize {
        self.pages.get(point).copied().unwrap_or(0)
    }
}

/// A period that doubles after each failure up to a cap and returns to its base on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starting at `base`, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            current: base,
        }
    }

    /// A success: the base period.
    pub fn success(&mut self) -> Duration {
        self.current = self.base;
        self.current
    }

    /// A failure: the period doubles (capped).
    pub fn failure(&mut self) -> Duration {
        let next = self.current.saturating_mul(2).min(self.max);
        let wait = self.current;
        self.current = next;
        wait
    }
}

/// The discovery schedule of one node.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The registration TTL asked for.
    pub ttl: Duration,
    register: Backoff,
    next_register: Option<Instant>,
    fast: Duration,
    slow: Duration,
    fast_rounds_left: u32,
    target: usize,
    next_discover: Instant,
}

impl Schedule {
    /// nwaku's schedule, starting at `now`; `registering` for a mix node that advertises
    /// itself (a browser only looks up).
    pub fn new(now: Instant, registering: bool) -> Self {
        Self {
            ttl: Duration::from_secs(60),
            register: Backoff::new(Duration::from_secs(10), Duration::from_secs(300)),
            next_register: registering.then_some(now),
            fast: Duration::from_secs(1),
            slow: Duration::from_secs(10),
            fast_rounds_left: 50,
            target: 100,
            next_discover: now,
        }
    }

    /// Other periods (tests and small testnets): registrations every `register` with `ttl`,
    /// lookups every `discover`.
    pub fn with_periods(mut self, register: Duration, ttl: Duration, discover: Duration) -> Self {
        self.register = Backoff::new(register, register.saturating_mul(30));
        self.ttl = ttl;
        self.slow = discover;
        self.fast = self.fast.min(discover);
        self
    }

    /// Whether a registration round is due.
    pub fn register_due(&self, now: Instant) -> bool {
        self.next_register.is_some_and(|t| t <= now)
    }

    /// A registration round started at `now`: no other until its outcome is reported (or
    /// the longest back-off passed, so a lost answer cannot stop registering).
    pub fn registering(&mut self, now: Instant) {
        if self.next_register.is_some() {
            self.next_register = Some(later(now, self.register.max));
        }
    }

    /// The round's outcome: the next one comes a period later, or later still after failures.
    pub fn registered(&mut self, now: Instant, ok: bool) {
        if self.next_register.is_some() {
            let wait = if ok {
                self.register.success()
            } else {
                self.register.failure()
            };
            self.next_register = Some(later(now, wait));
        }
    }

    /// Whether a lookup round is due.
    pub fn discover_due(&self, now: Instant) -> bool {
        self.next_discover <= now
    }

    /// A lookup round started at `now`; nothing else is due until [`Schedule::discovered`] (or
    /// the slow period passed).
    pub fn discovering(&mut self, now: Instant) {
        self.next_discover = later(now, self.slow.max(Duration::from_secs(30)));
    }

    /// The round ended with `pool` nodes known: the next comes soon while the pool is short
    /// of its target, at the slow period after.
    pub fn discovered(&mut self, now: Instant, pool: usize) {
        let wait = if pool < self.target && self.fast_rounds_left > 0 {
            self.fast_rounds_left = self.fast_rounds_left.saturating_sub(1);
            self.fast
        } else {
            self.slow
        };
        self.next_discover = later(now, wait);
    }

    /// A new rendezvous point appeared: register (if we do) and look up now, whatever the
    /// round in progress.
    pub fn hurry(&mut self, now: Instant) {
        if self.next_register.is_some() {
            self.next_register = Some(now);
        }
        self.next_discover = now;
    }

    /// When something is next due.
    pub fn next_due(&self) -> Instant {
        match self.next_register {
            Some(r) => r.min(self.next_discover),
            None => self.next_discover,
        }
    }

    /// How long a discovered record is trusted without being seen again: its remaining TTL,
    /// but at most [`KEEP_PERIODS`] lookup periods (a point's claimed lifetime is not
    /// honoured past a few rounds) and at least two (so one lost lookup does not empty the
    /// pool).
    pub fn keep_for(&self, ttl: Duration) -> Duration {
        ttl.min(MAX_TTL)
            .min(self.slow.saturating_mul(KEEP_PERIODS))
            .max(self.slow.saturating_mul(2))
    }

    /// Puts the records `source` listed into `pool`, each kept for
    /// [`Schedule::keep_for`] its TTL, within the pool's bounds (the pool size, and the share
    /// one source may bring: [`mix_libp2p::PoolConfig`]). Records without an address a packet
    /// can carry are skipped. Returns the peers new to the pool.
    pub fn add_records<P: Pool + ?Sized>(
        &self,
        pool: &mut P,
        source: PeerId,
        records: Vec<(MixRecord, Duration)>,
        now: Instant,
    ) -> Vec<PeerId> {
        let mut added = Vec::new();
        for (record, ttl) in records {
            match record.mix_node() {
                Ok(node) => {
                    // keep_for is bounded (wire TTLs are clamped to MAX_TTL), but a clock
                    // near its end must not panic either: such a record is kept for the
                    // bound instead.
                    let until = now
                        .checked_add(self.keep_for(ttl))
                        .or_else(|| now.checked_add(self.keep_for(Duration::ZERO)))
                        .unwrap_or(now);
                    if pool.insert_discovered(node, Some(source), now, until) {
                        added.push(record.peer_id);
                    }
                }
                Err(error) => {
                    tracing::debug!(peer = %record.peer_id, %error, "a discovered node has no address a packet can carry");
                }
            }
        }
        added
    }
}

/// `now + after`, or 72 h ([`MAX_TTL`]) from now if that overflows the clock (a
/// configured period absurdly long), or now if even that does.
fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(MAX_TTL))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let waits: Vec<u64> = (0..7).map(|_| b.failure().as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.success(), Duration::from_secs(10));
        assert_eq!(b.failure(), Duration::from_secs(10));
    }

    #[test]
    fn lookups_are_fast_until_the_pool_is_full() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, false);
        assert!(s.discover_due(t0));
        assert!(!s.register_due(t0), "a browser never registers");
        s.discovering(t0);
        assert!(!s.discover_due(t0 + Duration::from_secs(5)));
        s.discovered(t0, 12);
        assert!(s.discover_due(t0 + Duration::from_secs(1)));
        s.discovered(t0, 100);
        assert!(!s.discover_due(t0 + Duration::from_secs(9)));
        assert!(s.discover_due(t0 + Duration::from_secs(10)));
        // Fifty short rounds at most.
        for _ in 0..60 {
            s.discovered(t0, 3);
        }
        assert_eq!(s.next_due(), t0 + Duration::from_secs(10));
    }

    #[test]
    fn registrations_repeat_and_back_off() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, true);
        assert!(s.register_due(t0));
        s.registering(t0);
        assert!(!s.register_due(t0 + Duration::from_secs(299)));
        s.registered(t0, false);
        s.registered(t0, false);
        assert!(!s.register_due(t0 + Duration::from_secs(19)));
        assert!(s.register_due(t0 + Duration::from_secs(20)));
        s.registered(t0, true);
        assert!(s.register_due(t0 + Duration::from_secs(10)));
        assert_eq!(s.keep_for(Duration::from_secs(5)), Duration::from_secs(20));
        assert_eq!(s.keep_for(Duration::from_secs(60)), Duration::from_secs(60));
        // A point's claimed lifetime is cut to six lookup periods.
        assert_eq!(s.keep_for(MAX_TTL), Duration::from_secs(60));
    }

    #[test]
    fn a_round_asks_a_bounded_number_of_pages() {
        let mut round = LookupRound::new();
        let hostile = PeerId::random();
        let asked = (0..1000).take_while(|_| round.ask(hostile)).count();
        assert_eq!(asked, 1 + MAX_LOOKUP_PAGES, "pages per point");
        // Other points share what is left of the round's budget.
        let mut more = 0;
        for _ in 0..100 {
            let point = PeerId::random();
            while round.ask(point) {
                more += 1;
            }
        }
        assert_eq!(
            (asked + more) as u64 * LOOKUP_PAGE,
            MAX_ROUND_RECORDS,
            "records per round"
        );
    }
}

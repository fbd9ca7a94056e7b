//! Lookup rounds, sans-IO, once for every driver: which rendezvous points a round asked,
//! their pages and cookies, which answered, and what the pool got from them. The driver picks
//! the points (a relay a few connected ones at random, a browser its gateway), sends the
//! `DISCOVER` requests this tracker asks for with [`crate::Behaviour::discover`], and feeds the
//! behaviour's answers back; [`Schedule`] says when the next round is due.
//!
//! ```text
//! schedule.discover_due(now)  → for p in rounds.start(&mut schedule, now, points, pool_len) { discover(p, ns, LOOKUP_PAGE, None) }
//! Event::Discovered { .. }    → match rounds.on_page(..) { Step::Next(cookie) → discover(peer, ns, LOOKUP_PAGE, cookie), .. }
//! Event::DiscoverFailed { .. } → rounds.on_failed(..)
//! ```
//!
//! A round ends when every point asked answered its last page (or failed); then the schedule
//! hears the pool's size and the sender hears that the pool is known
//! ([`mix_libp2p::Sender::lookup_done`]). Records from any answer go into the pool; only an
//! answer from a point the round still awaits may ask for another page, within the round's
//! verification budget ([`LookupRound`]).

use std::collections::HashSet;
use std::time::Duration;

use libp2p::PeerId;
use mix_libp2p::{Client, MixNode, Sender};
use web_time::Instant;

use crate::record::MixRecord;
use crate::schedule::{LookupRound, Schedule};

/// A sender pool discovered records go into: [`mix_libp2p::Client`] or
/// [`mix_libp2p::Sender`] (which also reports the nodes as joined).
pub trait Pool {
    /// Adds or refreshes an entry `source` listed, kept until `expires` unless refreshed;
    /// returns whether it is new to the pool.
    fn insert_discovered(
        &mut self,
        node: MixNode,
        source: Option<PeerId>,
        now: Instant,
        expires: Instant,
    ) -> bool;

    /// How many nodes the pool holds.
    fn pool_len(&self) -> usize;

    /// A lookup round ended (the pool is known); nothing by default.
    fn lookup_done(&mut self) {}
}

impl Pool for Client {
    fn insert_discovered(
        &mut self,
        node: MixNode,
        source: Option<PeerId>,
        now: Instant,
        expires: Instant,
    ) -> bool {
        Client::insert_discovered(self, node, source, now, expires)
    }

    fn pool_len(&self) -> usize {
        Client::pool_len(self)
    }
}

impl Pool for Sender {
    fn insert_discovered(
        &mut self,
        node: MixNode,
        source: Option<PeerId>,
        now: Instant,
        expires: Instant,
    ) -> bool {
        Sender::insert_discovered(self, node, source, now, expires)
    }

    fn pool_len(&self) -> usize {
        self.client().pool_len()
    }

    fn lookup_done(&mut self) {
        Sender::lookup_done(self);
    }
}

/// What to do after a page came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask the same point for its next page, with this cookie.
    Next(Option<Vec<u8>>),
    /// The round goes on: other points have not answered yet (or the page was not awaited).
    Waiting,
    /// That was the round's last answer: the round ended.
    RoundEnded,
}

/// The lookup rounds of one driver. See the module docs.
#[derive(Debug, Clone)]
pub struct Rounds {
    namespace: String,
    budget: LookupRound,
    /// Points of the current round whose last page has not come.
    awaited: HashSet<PeerId>,
    rounds: u32,
    last_error: Option<String>,
}

impl Rounds {
    /// Rounds looking up `namespace` (`rs/<cluster>/mix`).
    pub fn new(namespace: String) -> Self {
        Self {
            namespace,
            budget: LookupRound::new(),
            awaited: HashSet::new(),
            rounds: 0,
            last_error: None,
        }
    }

    /// The namespace looked up.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether a round is waiting for answers.
    pub fn in_flight(&self) -> bool {
        !self.awaited.is_empty()
    }

    /// Rounds ended so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Why the last round's last failed lookup failed, if one did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Starts a round at `now` asking `points` (the driver's choice) for their first page;
    /// returns those to ask (within the round's budget). With none, the round ends at once
    /// (`pool` ends it: the size the schedule hears).
    pub fn start<P: Pool>(
        &mut self,
        schedule: &mut Schedule,
        now: Instant,
        points: impl IntoIterator<Item = PeerId>,
        pool: &mut P,
    ) -> Vec<PeerId> {
        self.budget = LookupRound::new();
        self.awaited.clear();
        self.last_error = None;
        let asked: Vec<PeerId> = points.into_iter().filter(|p| self.budget.ask(*p)).collect();
        self.awaited.extend(asked.iter().copied());
        if asked.is_empty() {
            self.end(schedule, now, pool);
        } else {
            schedule.discovering(now);
        }
        asked
    }

    /// A page `peer` answered: its records go into `pool` (each kept for
    /// [`Schedule::keep_for`] its TTL), and the next step is returned. Returns also the peers
    /// new to the pool.
    #[allow(
        clippy::too_many_arguments,
        reason = "the fields of one Discovered event, the pool and the clock"
    )]
    pub fn on_page<P: Pool>(
        &mut self,
        schedule: &mut Schedule,
        pool: &mut P,
        peer: PeerId,
        records: Vec<(MixRecord, Duration)>,
        full: bool,
        cookie: Option<Vec<u8>>,
        now: Instant,
    ) -> (Step, Vec<PeerId>) {
        let added = schedule.add_records(pool, peer, records, now);
        if !self.awaited.contains(&peer) {
            return (Step::Waiting, added);
        }
        // Another page only within the round's budget (pages per point, records in all): a
        // point that always answers full pages cannot hold the loop.
        if full && self.budget.ask(peer) {
            return (Step::Next(cookie), added);
        }
        (self.answered(schedule, peer, now, pool), added)
    }

    /// A lookup at `peer` failed.
    pub fn on_failed<P: Pool>(
        &mut self,
        schedule: &mut Schedule,
        pool: &mut P,
        peer: PeerId,
        error: String,
        now: Instant,
    ) -> Step {
        if !self.awaited.contains(&peer) {
            return Step::Waiting;
        }
        self.last_error = Some(error);
        self.answered(schedule, peer, now, pool)
    }

    fn answered<P: Pool>(
        &mut self,
        schedule: &mut Schedule,
        peer: PeerId,
        now: Instant,
        pool: &mut P,
    ) -> Step {
        self.awaited.remove(&peer);
        if self.awaited.is_empty() {
            self.end(schedule, now, pool);
            Step::RoundEnded
        } else {
            Step::Waiting
        }
    }

    fn end<P: Pool>(&mut self, schedule: &mut Schedule, now: Instant, pool: &mut P) {
        self.rounds = self.rounds.saturating_add(1);
        schedule.discovered(now, pool.pool_len());
        pool.lookup_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mix_core::{DelayStrategy, NodeSecretKey};

    fn client() -> Client {
        let secret = NodeSecretKey::generate(&mut rand::rng());
        let me = MixNode::new(
            libp2p::identity::Keypair::generate_secp256k1()
                .public()
                .to_peer_id(),
            vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            secret.public_key(),
        )
        .unwrap();
        Client::new(me, DelayStrategy::NoSampling)
    }

    #[test]
    fn a_round_pages_within_its_budget_and_ends_when_every_point_answered() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(t0, false);
        let mut pool = client();
        let mut rounds = Rounds::new("rs/1/mix".into());
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(
            rounds.start(&mut schedule, t0, [a, b], &mut pool),
            vec![a, b]
        );
        assert!(rounds.in_flight());
        assert!(!schedule.discover_due(t0 + Duration::from_secs(5)));
        // `a` pages on while its pages are full, up to the per-point bound.
        let mut pages = 1;
        loop {
            match rounds.on_page(
                &mut schedule,
                &mut pool,
                a,
                Vec::new(),
                true,
                Some(vec![1]),
                t0,
            ) {
                (Step::Next(cookie), _) => {
                    assert_eq!(cookie, Some(vec![1]));
                    pages += 1;
                }
                (Step::Waiting, _) => break,
                (Step::RoundEnded, _) => panic!("b has not answered"),
            }
        }
        assert_eq!(pages, 1 + crate::MAX_LOOKUP_PAGES);
        // An answer from a point not asked changes nothing.
        let stranger = PeerId::random();
        assert_eq!(
            rounds.on_failed(&mut schedule, &mut pool, stranger, "x".into(), t0),
            Step::Waiting
        );
        assert_eq!(
            rounds.on_failed(&mut schedule, &mut pool, b, "refused".into(), t0),
            Step::RoundEnded
        );
        assert!(!rounds.in_flight());
        assert_eq!((rounds.rounds(), rounds.last_error()), (1, Some("refused")));
        // A short pool: the next round comes a second later.
        assert!(schedule.discover_due(t0 + Duration::from_secs(1)));
        // No point to ask: the round ends at once.
        assert!(rounds.start(&mut schedule, t0, [], &mut pool).is_empty());
        assert_eq!(rounds.rounds(), 2);
    }
}

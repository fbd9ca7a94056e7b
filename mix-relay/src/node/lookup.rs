//! The relay's rendezvous lookup rounds: it picks the points (a few connected ones at random,
//! its own registry first when it serves one), and the round tracker of mix-discovery
//! ([`mix_discovery::Rounds`]) does the rest: pages, cookies, answers, the schedule.

use std::time::Duration;

use mix_discovery::{LOOKUP_PAGE, MixRecord, Step};
use mix_libp2p::{Instant, PeerId};
use rand::seq::IteratorRandom as _;

use super::Node;

/// A round looks up at this many rendezvous points at most, chosen at random.
const LOOKUP_AT: usize = 4;

impl Node {
    pub(super) fn lookup_round(&mut self, now: Instant) {
        // Our own registry first, when we serve.
        let namespace = self.discovery.rounds.namespace().to_owned();
        let local = self
            .swarm
            .behaviour_mut()
            .rendezvous
            .discover_locally(&namespace);
        self.add_records(self.peer_id, local, now);
        let d = &mut self.discovery;
        let points = d.points.iter().copied().sample(&mut self.rng, LOOKUP_AT);
        for point in d
            .rounds
            .start(&mut d.schedule, now, points, &mut self.sender)
        {
            self.swarm
                .behaviour_mut()
                .rendezvous
                .discover(point, &namespace, LOOKUP_PAGE, None);
        }
        self.drain_sender();
    }

    /// A page of records from `peer`: into the pool, and its next page if the round allows.
    pub(super) fn on_lookup_page(
        &mut self,
        peer: PeerId,
        records: Vec<(MixRecord, Duration)>,
        full: bool,
        cookie: Option<Vec<u8>>,
        now: Instant,
    ) {
        let d = &mut self.discovery;
        let (step, _) = d.rounds.on_page(
            &mut d.schedule,
            &mut self.sender,
            peer,
            records,
            full,
            cookie,
            now,
        );
        if let Step::Next(cookie) = step {
            let namespace = d.rounds.namespace().to_owned();
            self.swarm
                .behaviour_mut()
                .rendezvous
                .discover(peer, &namespace, LOOKUP_PAGE, cookie);
        }
        self.drain_sender();
    }

    /// A lookup at `peer` failed.
    pub(super) fn on_lookup_failed(&mut self, peer: PeerId, error: String, now: Instant) {
        let d = &mut self.discovery;
        d.rounds
            .on_failed(&mut d.schedule, &mut self.sender, peer, error, now);
        self.drain_sender();
    }

    /// Puts the records `source` listed into the pool (within the pool's bounds).
    fn add_records(&mut self, source: PeerId, records: Vec<(MixRecord, Duration)>, now: Instant) {
        self.discovery
            .schedule
            .add_records(&mut self.sender, source, records, now);
        self.drain_sender();
    }
}

//! The relay's own registration at rendezvous points: a fresh signed record each round at up
//! to [`REGISTER_AT`] connected points, the answers, and the withdrawal when the relay stops
//! (so that lookups stop handing out a stopped relay for the rest of its TTL). The lookup side
//! is in `lookup.rs`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt as _;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use mix_core::NodePublicKey;
use mix_discovery::{MixRecord, Rounds, Schedule};
use mix_libp2p::Instant;
use rand::seq::IteratorRandom as _;

use super::enr::unix_seconds;
use super::swarm::BehaviourEvent;
use super::{Node, STALE_DIAL};

/// Discovery state of a node.
pub(super) struct Discovery {
    pub(super) schedule: Schedule,
    pub(super) lookup: bool,
    /// The lookup rounds (points asked, pages, answers).
    pub(super) rounds: Rounds,
    /// Where our record is registered.
    pub(super) namespace: String,
    pub(super) identity: libp2p::identity::Keypair,
    /// Our addresses as our record carries them (without `/p2p/<id>`, as nwaku).
    pub(super) record_addrs: Vec<Multiaddr>,
    pub(super) mix_public: NodePublicKey,
    /// Connected peers that serve rendezvous.
    pub(super) points: HashSet<PeerId>,
    /// Registrations of the current round not answered yet.
    pub(super) registering: usize,
    /// Whether one registration of the current round was accepted.
    pub(super) registered_any: bool,
    /// The points that accepted our record, until when: withdrawn there when we stop.
    pub(super) registered_at: HashMap<PeerId, Instant>,
}

/// A round registers at this many rendezvous points at most, chosen at random among the
/// connected ones (nwaku registers at one; more keep small networks complete).
const REGISTER_AT: usize = 16;

/// How long a stopping relay waits for its withdrawals to be written.
const WITHDRAW_GRACE: Duration = Duration::from_secs(1);

impl Node {
    pub(super) fn on_discovery_tick(&mut self) {
        let now = Instant::now();
        self.dials.expire(&self.limits, STALE_DIAL, now);
        self.metrics.set_pending_dials(self.dials.pending());
        if let Ok(mut peers) = self.mix_peers.write() {
            peers.clear();
            peers.extend(self.sender.client().nodes().map(|n| n.peer_id));
        }
        if let Some(registry) = self.swarm.behaviour().rendezvous.registry() {
            self.metrics.set_rendezvous_registrations(registry.len());
        }
        if self.discovery.schedule.register_due(now) {
            self.register_round(now);
        }
        if self.discovery.lookup
            && !self.discovery.rounds.in_flight()
            && self.discovery.schedule.discover_due(now)
        {
            self.lookup_round(now);
        }
    }

    /// Signs a fresh record and registers it at every rendezvous point (and at ourselves if
    /// we serve).
    fn register_round(&mut self, now: Instant) {
        let d = &mut self.discovery;
        let record = MixRecord {
            peer_id: self.peer_id,
            seq: unix_seconds(),
            addrs: d.record_addrs.clone(),
            mix_key: d.mix_public,
        };
        let envelope = match record.sign(&d.identity) {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(%error, "cannot sign our peer record");
                d.schedule.registered(now, false);
                return;
            }
        };
        let ttl = d.schedule.ttl;
        let namespace = d.namespace.clone();
        let rendezvous = &mut self.swarm.behaviour_mut().rendezvous;
        let local = rendezvous.registry().is_some();
        if let Err(refusal) =
            rendezvous.register_locally(self.peer_id, &namespace, envelope.clone(), ttl)
        {
            tracing::warn!(?refusal, "our own registry refused our record");
        }
        d.registering = 0;
        d.registered_any = false;
        let points = d.points.iter().copied().sample(&mut self.rng, REGISTER_AT);
        for point in points {
            rendezvous.register(point, &namespace, envelope.clone(), ttl);
            d.registering += 1;
        }
        if d.registering == 0 {
            // Nobody to register with yet: try again later (a point connecting makes it due).
            d.schedule.registered(now, local);
        } else {
            d.schedule.registering(now);
        }
    }

    pub(super) fn on_rendezvous_event(&mut self, event: mix_discovery::Event) {
        let now = Instant::now();
        match event {
            mix_discovery::Event::Registered { peer, ttl, .. } => {
                tracing::debug!(%peer, ?ttl, "registered at the rendezvous point");
                self.metrics.discovery_event("registered");
                self.discovery.registered_any = true;
                if let Some(until) = now.checked_add(ttl) {
                    self.discovery.registered_at.insert(peer, until);
                }
                self.register_answered(now);
            }
            mix_discovery::Event::RegisterFailed { peer, error, .. } => {
                tracing::debug!(%peer, %error, "registration failed");
                self.metrics.discovery_event("register_failed");
                self.register_answered(now);
            }
            mix_discovery::Event::Discovered {
                peer,
                records,
                rejected,
                cookie,
                full,
                ..
            } => {
                for _ in 0..rejected {
                    self.metrics.discovery_event("record_rejected");
                }
                for _ in 0..records.len() {
                    self.metrics.discovery_event("record_found");
                }
                self.on_lookup_page(peer, records, full, cookie, now);
            }
            mix_discovery::Event::DiscoverFailed { peer, error, .. } => {
                tracing::debug!(%peer, %error, "lookup failed");
                self.metrics.discovery_event("lookup_failed");
                self.on_lookup_failed(peer, error.to_string(), now);
            }
            mix_discovery::Event::Served { what, .. } => match what {
                mix_discovery::Served::Registered { .. } => {
                    self.metrics.discovery_event("served_registration");
                }
                mix_discovery::Served::Unregistered => {
                    self.metrics.discovery_event("served_unregistration");
                }
                mix_discovery::Served::Discovered { .. } => {
                    self.metrics.discovery_event("served_lookup");
                }
                mix_discovery::Served::Refused(_) | mix_discovery::Served::Malformed => {
                    self.metrics.discovery_event("served_refusal");
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn register_answered(&mut self, now: Instant) {
        let d = &mut self.discovery;
        d.registering = d.registering.saturating_sub(1);
        if d.registering == 0 {
            d.schedule.registered(now, d.registered_any);
        }
    }

    /// Withdraws our record at the points that still list it and are connected, and waits up
    /// to [`WITHDRAW_GRACE`] for the requests to be written. Called once, when the relay stops.
    pub(super) async fn withdraw_registrations(&mut self) {
        let now = Instant::now();
        let namespace = self.discovery.namespace.clone();
        let swarm = &mut self.swarm;
        let points: Vec<PeerId> = self
            .discovery
            .registered_at
            .drain()
            .filter(|(point, until)| *until > now && swarm.is_connected(point))
            .map(|(point, _)| point)
            .collect();
        for point in &points {
            swarm
                .behaviour_mut()
                .rendezvous
                .unregister(*point, &namespace);
        }
        let mut waiting = points.len();
        let grace = tokio::time::sleep(WITHDRAW_GRACE);
        tokio::pin!(grace);
        while waiting > 0 {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(
                        mix_discovery::Event::Unregistered { peer, delivered, .. },
                    )) = event
                    {
                        tracing::debug!(%peer, delivered, "withdrew our record at the rendezvous point");
                        if delivered {
                            self.metrics.discovery_event("unregistered");
                        }
                        waiting = waiting.saturating_sub(1);
                    }
                }
                () = &mut grace => {
                    tracing::debug!(waiting, "stopping before every rendezvous point read our withdrawal");
                    break;
                }
            }
        }
    }
}

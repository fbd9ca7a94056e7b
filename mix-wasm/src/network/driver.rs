//! The client's task: it owns the swarm and the [`mix_libp2p::Sender`], and only moves bytes
//! and maps events. Requests from JS go to the sender, its frames to the `/mix/1.0.0`
//! behaviour, the frames that arrive and the behaviour's send failures back to it, and its
//! events out: outcomes to the request's Promise, pool changes to `pool` events and
//! `stats()`. It also keeps the gateway reservation and runs the rendezvous lookup rounds at
//! the gateway ([`mix_discovery::Rounds`]).

use std::collections::HashMap;
use std::rc::Weak;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt as _, StreamExt as _};
use futures_timer::Delay;
use libp2p::core::transport::ListenerId;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, relay};
use mix_discovery::{LOOKUP_PAGE, Rounds, Schedule, Step};
use mix_libp2p::{
    ClientError, Destination, Hops, Instant, Received, RequestId, SendOptions, Sender, SenderEvent,
};

use super::swarm::{Behaviour, BehaviourEvent, first_connection};
use super::{
    ClientEvent, Command, Delivery, PoolRemoved, Reply, Shared, closed, count, millis, push_sample,
    removal_name,
};
use crate::error::{Code, MixError};
use crate::lightpush::Trace;
use crate::options::now_ms;
use crate::sender::{self, SysRng};

/// The fewest pool nodes a request can be routed through: the destination (the exit) and two
/// others. `create` without `mixnodes` waits for this many.
pub(super) const MIN_ROUTE_NODES: usize = 3;

/// Rendezvous lookups at the gateway (only when no fixed pool was given).
pub(super) struct Discovery {
    schedule: Schedule,
    rounds: Rounds,
}

impl Discovery {
    /// Lookups of `rs/<cluster>/mix` on nwaku's schedule, the first due at `now`.
    pub(super) fn new(now: Instant, cluster: u16) -> Self {
        Self {
            schedule: Schedule::new(now, false),
            rounds: Rounds::new(mix_discovery::mix_namespace(cluster)),
        }
    }
}

/// `create` waiting for the first usable pool.
pub(super) struct Ready {
    pub(super) done: oneshot::Sender<Result<(), MixError>>,
    pub(super) give_up_at: Instant,
    pub(super) timeout: Duration,
}

/// A request's Promise and what its trace needs.
struct Pending {
    reply: Reply,
    destination: PeerId,
    /// Choosing the path and building the packets, in ms.
    build_ms: f64,
    /// When the packets were handed to the first hops.
    sent: Instant,
}

pub(super) struct Driver {
    swarm: Swarm<Behaviour>,
    sender: Sender,
    rng: SysRng,
    shared: Weak<Shared>,
    pending: HashMap<RequestId, Pending>,
    gateway: PeerId,
    gateway_listen: Option<Multiaddr>,
    listener: Option<ListenerId>,
    relisten_at: Option<Instant>,
    backoff: Duration,
    discovery: Option<Discovery>,
    pub(super) ready: Option<Ready>,
}

impl Driver {
    /// The task of a client reserved on `gateway` (listening on `listen`, its circuit).
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        sender: Sender,
        rng: SysRng,
        shared: Weak<Shared>,
        gateway: PeerId,
        listen: (Multiaddr, ListenerId),
        discovery: Option<Discovery>,
    ) -> Self {
        Self {
            swarm,
            sender,
            rng,
            shared,
            pending: HashMap::new(),
            gateway,
            gateway_listen: Some(listen.0),
            listener: Some(listen.1),
            relisten_at: None,
            backoff: Duration::from_secs(1),
            discovery,
            ready: None,
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        // Starts the pool's upkeep (lapsed entries, quarantines, static entries back).
        self.sender.handle_timeout(Instant::now());
        loop {
            self.drain(None);
            let now = Instant::now();
            let lookup_due = self
                .discovery
                .as_ref()
                .filter(|d| !d.rounds.in_flight())
                .map(|d| d.schedule.next_due());
            let wake = [
                self.sender.poll_timeout(),
                self.relisten_at,
                lookup_due,
                self.ready.as_ref().map(|r| r.give_up_at),
            ]
            .into_iter()
            .flatten()
            .min();
            let mut timer = match wake {
                Some(at) => Delay::new(at.saturating_duration_since(now)).boxed_local(),
                None => futures::future::pending().boxed_local(),
            }
            .fuse();
            futures::select! {
                command = commands.next() => match command {
                    Some(Command::Send { destination, codec, body, options, reply }) => {
                        self.send(destination, &codec, &body, options, reply);
                    }
                    Some(Command::Close(done)) => {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.shutdown();
                        return;
                    }
                },
                event = self.swarm.select_next_some() => self.on_swarm(event),
                () = timer => self.on_timer(),
            }
        }
    }

    fn with_shared(&self, f: impl FnOnce(&Shared)) {
        if let Some(shared) = self.shared.upgrade() {
            f(&shared);
        }
    }

    fn shutdown(&mut self) {
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(closed()));
        }
        self.with_shared(|s| {
            s.closed.set(true);
            s.wake();
        });
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn send(
        &mut self,
        destination: Option<PeerId>,
        codec: &str,
        body: &[u8],
        options: SendOptions,
        reply: Reply,
    ) {
        let started = Instant::now();
        let sent = sender::destination(&self.sender, &mut self.rng, destination).and_then(|d| {
            let id = self.sender.send(
                &mut self.rng,
                started,
                &Destination::ExitIsDestination(d),
                codec,
                body,
                options,
            )?;
            Ok((d, id))
        });
        let (destination, id) = match sent {
            Ok(s) => s,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let sent = Instant::now();
        let build_ms = millis(started, sent);
        self.with_shared(|s| {
            let mut stats = s.stats.borrow_mut();
            push_sample(&mut stats.build_ms, build_ms);
            stats.sent = stats.sent.saturating_add(1);
        });
        self.pending.insert(
            id,
            Pending {
                reply,
                destination,
                build_ms,
                sent,
            },
        );
        self.drain(None);
    }

    /// Moves what the sender has: frames to the behaviour, outcomes to their Promises, pool
    /// changes to a `pool` event. `opened`: when the packet just handed to the sender arrived,
    /// and how long opening it took.
    pub(super) fn drain(&mut self, opened: Option<(Instant, f64)>) {
        while let Some(out) = self.sender.poll_transmit() {
            self.swarm
                .behaviour_mut()
                .mix
                .send_after(out.peer, out.addresses, out.frame, out.hold);
        }
        while let Some(event) = self.sender.poll_event() {
            match event {
                SenderEvent::Replied {
                    request,
                    body,
                    hops,
                } => {
                    let (arrived, open_ms) = opened.unwrap_or((Instant::now(), 0.0));
                    self.with_shared(|s| {
                        let mut stats = s.stats.borrow_mut();
                        push_sample(&mut stats.open_ms, open_ms);
                        stats.replies = stats.replies.saturating_add(1);
                    });
                    self.finish(request, Ok((body, Some(hops), arrived, open_ms)));
                }
                SenderEvent::Sent { request } => {
                    self.finish(request, Ok((Vec::new(), None, Instant::now(), 0.0)));
                }
                SenderEvent::Failed { request, error } => {
                    if error == ClientError::Timeout {
                        self.with_shared(|s| {
                            let mut stats = s.stats.borrow_mut();
                            stats.timeouts = stats.timeouts.saturating_add(1);
                        });
                    }
                    self.finish(request, Err(MixError::from(error)));
                }
                SenderEvent::PoolChanged {
                    added,
                    removed,
                    size,
                    below_minimum,
                } => self.with_shared(|s| {
                    s.stats.borrow_mut().pool_size = count(size);
                    s.emit(ClientEvent::Pool {
                        size: count(size),
                        added: added.iter().map(ToString::to_string).collect(),
                        removed: removed
                            .iter()
                            .map(|(peer, why)| PoolRemoved {
                                peer_id: peer.to_string(),
                                reason: removal_name(*why),
                            })
                            .collect(),
                        below_minimum,
                    });
                }),
                _ => {}
            }
        }
    }

    /// Answers request `id`: with the reply (its hops, none without SURBs; when it arrived
    /// and how long it took to open), or with an error.
    #[allow(
        clippy::type_complexity,
        reason = "the parts of one answer, used here only"
    )]
    fn finish(
        &mut self,
        id: RequestId,
        result: Result<(Vec<u8>, Option<Box<Hops>>, Instant, f64), MixError>,
    ) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let result = result.map(|(body, hops, arrived, open_ms)| Delivery {
            destination: pending.destination,
            body,
            trace: Trace {
                hops: hops
                    .iter()
                    .flat_map(|h| h.forward.iter().map(ToString::to_string))
                    .collect(),
                reply_hops: hops
                    .iter()
                    .flat_map(|h| h.back.iter().map(ToString::to_string))
                    .collect(),
                build_ms: pending.build_ms,
                mixnet_ms: millis(pending.sent, arrived),
                open_ms,
            },
        });
        let _ = pending.reply.send(result);
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.sender.poll_timeout().is_none_or(|at| at <= now) {
            self.sender.handle_timeout(now);
        }
        if self.relisten_at.is_some_and(|at| at <= now) {
            self.relisten_at = None;
            self.relisten();
        }
        if let Some(d) = self.discovery.as_mut()
            && !d.rounds.in_flight()
            && d.schedule.discover_due(now)
        {
            // Asks the gateway for the first page of mix nodes.
            let asked = d
                .rounds
                .start(&mut d.schedule, now, [self.gateway], &mut self.sender);
            for point in asked {
                self.swarm.behaviour_mut().rendezvous.discover(
                    point,
                    d.rounds.namespace(),
                    LOOKUP_PAGE,
                    None,
                );
            }
            self.lookup_step(Step::Waiting);
        }
        if self.ready.as_ref().is_some_and(|r| r.give_up_at <= now) {
            self.give_up();
        }
    }

    fn on_rendezvous(&mut self, event: mix_discovery::Event) {
        let now = Instant::now();
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        let step = match event {
            mix_discovery::Event::Discovered {
                peer,
                records,
                rejected,
                cookie,
                full,
                ..
            } => {
                if rejected > 0 {
                    tracing::debug!(
                        rejected,
                        "rendezvous records without a valid signature or mix key"
                    );
                }
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
                    self.swarm.behaviour_mut().rendezvous.discover(
                        peer,
                        d.rounds.namespace(),
                        LOOKUP_PAGE,
                        cookie,
                    );
                    return;
                }
                step
            }
            mix_discovery::Event::DiscoverFailed { peer, error, .. } => {
                tracing::debug!(%peer, %error, "rendezvous lookup failed");
                d.rounds.on_failed(
                    &mut d.schedule,
                    &mut self.sender,
                    peer,
                    error.to_string(),
                    now,
                )
            }
            _ => return,
        };
        self.lookup_step(step);
    }

    /// After a lookup step: once a round ended, let `create` resolve if a path can be built.
    fn lookup_step(&mut self, step: Step) {
        let ended = step == Step::RoundEnded
            || self
                .discovery
                .as_ref()
                .is_some_and(|d| !d.rounds.in_flight());
        if ended
            && self.sender.client().pool_len() >= MIN_ROUTE_NODES
            && let Some(ready) = self.ready.take()
        {
            // The first round's `pool` event goes out before `create` resolves.
            self.drain(None);
            let _ = ready.done.send(Ok(()));
        }
    }

    /// `create` ran out of time before the pool could route a request.
    fn give_up(&mut self) {
        let Some(ready) = self.ready.take() else {
            return;
        };
        let size = self.sender.client().pool_len();
        let why = self
            .discovery
            .as_ref()
            .and_then(|d| d.rounds.last_error())
            .map(|e| format!(" (the last lookup failed: {e})"))
            .unwrap_or_default();
        let namespace = self
            .discovery
            .as_ref()
            .map(|d| d.rounds.namespace())
            .unwrap_or_default();
        let _ = ready.done.send(Err(MixError::new(
            Code::NoRoute,
            format!(
                "rendezvous at the gateway {} found {size} mix node(s) in {namespace} within {:?}; \
                 a path needs {MIN_ROUTE_NODES}{why}",
                self.gateway, ready.timeout
            ),
        )));
    }

    fn relisten(&mut self) {
        let Some(addr) = self.gateway_listen.clone() else {
            return;
        };
        match self.swarm.listen_on(addr) {
            Ok(id) => self.listener = Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "re-reserving on the gateway failed");
                self.schedule_relisten();
            }
        }
    }

    fn schedule_relisten(&mut self) {
        self.relisten_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Mix(event)) => self.on_mix(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(event)) => self.on_rendezvous(event),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(
                relay::client::Event::ReservationReqAccepted {
                    relay_peer_id,
                    renewal: false,
                    ..
                },
            )) => {
                self.backoff = Duration::from_secs(1);
                self.with_shared(|s| {
                    s.emit(ClientEvent::Reservation {
                        relay: relay_peer_id.to_string(),
                        address: s.circuit.to_string(),
                    });
                });
            }
            SwarmEvent::ListenerClosed { listener_id, .. }
                if Some(listener_id) == self.listener =>
            {
                self.listener = None;
                let relay = self.gateway.to_string();
                self.with_shared(|s| s.emit(ClientEvent::ReservationLost { relay }));
                self.schedule_relisten();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                concurrent_dial_errors,
                ..
            } => {
                if let Some(address) = first_connection(
                    peer_id,
                    &endpoint,
                    num_established,
                    concurrent_dial_errors.as_deref(),
                ) {
                    let address = address.to_string();
                    self.with_shared(|s| {
                        s.emit(ClientEvent::Connected {
                            peer_id: peer_id.to_string(),
                            address,
                        });
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.with_shared(|s| {
                    s.emit(ClientEvent::Disconnected {
                        peer_id: peer_id.to_string(),
                    });
                });
            }
            _ => {}
        }
    }

    fn on_mix(&mut self, event: mix_libp2p::Event) {
        match event {
            mix_libp2p::Event::Received { mut frame, .. } => {
                let arrived = Instant::now();
                let received = self.sender.handle_packet(&mut frame.packet, now_ms());
                let open_ms = millis(arrived, Instant::now());
                if received != Received::Reply {
                    tracing::debug!(?received, "dropped a packet that is not an awaited reply");
                }
                self.drain(Some((arrived, open_ms)));
            }
            mix_libp2p::Event::SendFailed {
                peer,
                frames,
                reason,
            } => {
                // A first hop of ours that cannot be dialed gets a strike (three leave it out
                // of the pool for a while); a request whose every copy failed so fails.
                self.sender
                    .handle_send_failed(peer, frames, reason, Instant::now());
                self.drain(None);
            }
            mix_libp2p::Event::Dropped { peer, reason } => {
                tracing::debug!(%peer, ?reason, "dropped an inbound frame");
            }
        }
    }
}

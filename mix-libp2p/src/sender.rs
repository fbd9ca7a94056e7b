//! The sender loop, once: one sans-IO state machine that every driver (the relay's `send`
//! path, the browser client, a native sender) runs, so that a driver only moves bytes and maps
//! events (quinn-proto's call contract; rust-libp2p request-response's pending table).
//!
//! A [`Sender`] owns the [`Client`] (pool, path choice, packet building, the SURB table), the
//! key its SURB replies are peeled with, a replay filter for them, the request table with each
//! request's copies and first hops, the static pool entries it puts back after a quarantine,
//! and the pool's upkeep. It does no I/O and reads no clock: every call takes the time.
//!
//! # The contract
//!
//! **Calls in** (each takes `now`; none blocks):
//! * [`Sender::send`]: a request. Returns its [`RequestId`] at once, or a [`ClientError`] when
//!   it cannot be sent (nothing is queued then).
//! * [`Sender::handle_packet`]: a packet that reached this sender on `/mix/1.0.0` (a browser or
//!   a native sender that is not a relay): peeled with the sender's own key and, if it is one
//!   of its SURB replies, opened. A relay peels every packet in its processor (one replay
//!   filter for all of them) and hands the replies to [`Sender::handle_reply`] instead.
//! * [`Sender::handle_send_failed`]: the `/mix/1.0.0` behaviour's
//!   [`crate::Event::SendFailed`] for a peer.
//! * [`Sender::handle_timeout`]: the time reached [`Sender::poll_timeout`] (calling it sooner
//!   or more often is harmless). Call it once when the driver starts: the pool's upkeep
//!   deadline is set from the first call.
//! * Pool changes: [`Sender::insert_node`] (static, restored after a quarantine),
//!   [`Sender::insert_discovered`] (from rendezvous, lapses unless refreshed),
//!   [`Sender::exclude`], [`Sender::node_failed`], [`Sender::lookup_done`].
//!
//! **Output**, drained after each call until `None`, in this order:
//! 1. [`Sender::poll_transmit`]: frames for [`crate::Behaviour::send_after`] (first hop, its
//!    addresses sorted for dialing, the frame, the sender hold).
//! 2. [`Sender::poll_event`]: [`Event::Replied`], [`Event::Sent`], [`Event::Failed`],
//!    [`Event::PoolChanged`]. Each request ends in exactly one of the first three.
//! 3. [`Sender::poll_timeout`]: when to call [`Sender::handle_timeout`] next.
//!
//! # Rules where the drivers used to differ
//!
//! * **No SURBs** (`surbs: 0`): nothing can come back, so the request settles as soon as its
//!   frames are queued, with [`Event::Sent`]; a later failed dial of its first hop still counts
//!   against the pool entry, but no longer concerns the request. (The relay answered such a
//!   request at once; the browser filed it and never settled it.)
//! * **Unreachable first hops**: when the first hop of every copy of a request reported a send
//!   failure, the request fails at once with [`ClientError::FirstHopUnreachable`] instead of
//!   waiting out its timeout (the browser's rule; the relay waited). The behaviour reports only
//!   how many frames failed, so they are matched to the copies released to that peer (after
//!   their hold) most recently, as many as it reports: the frames a failed dial or a closed
//!   connection drops are the ones queued last, while older copies may have been written.
//!   (The browser matched the oldest first, so a copy long delivered could take the blame for
//!   a newer request's failed dial.) A relay's own frames share a peer's queue with the
//!   packets it forwards, so a relay may fail a copy a little early, never late.
//! * **Dial order**: every pool entry's addresses, static or discovered, are sorted (stably,
//!   so the packet address keeps its place) by the driver's transport preference
//!   ([`Sender::with_dial_order`]; by default direct TCP/QUIC first, circuit addresses last).
//!   (The browser sorted discovered records only; the relay did not sort.)
//! * **Static entries**: every entry given with [`Sender::insert_node`] comes back after its
//!   quarantine ends (the relay did this for `--mixnode` entries only).
//! * **The size warning**: when the pool drops below [`MIN_POOL_SIZE`], one warning is logged
//!   per drop, and not before the pool is known: after the first lookup round
//!   ([`Sender::lookup_done`]) for a sender that looks up ([`Sender::with_lookups`]), once it
//!   holds a node otherwise. [`Event::PoolChanged::below_minimum`] always tells the truth.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use mix_core::{
    Action, DelayStrategy, MemoryReplayFilter, NodeSecretKey, PACKET_LEN, PAYLOAD_LEN,
    ReplayConfig, SurbId,
};
use rand_core::CryptoRng;
use web_time::Instant;

use crate::SendFailure;
use crate::client::{
    Client, ClientError, Destination, Hops, MIN_POOL_SIZE, MixNode, Outgoing, PoolConfig, Removal,
    ReplyOutcome, RequestId, SendOptions,
};

/// How often [`Sender::handle_timeout`] is asked for when no request is due sooner: the
/// pool's upkeep (lapsed entries out, ended quarantines, static entries back).
pub const UPKEEP_PERIOD: Duration = Duration::from_secs(1);

/// Replies are few; their tags are remembered for an hour, as relays do.
const REPLAY: ReplayConfig = ReplayConfig {
    ttl_ms: 60 * 60 * 1000,
    capacity: 1 << 16,
    buckets: 12,
};

/// What the sender reports. See the module docs.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The first reply to `request` (later copies' replies are dropped).
    Replied {
        /// The request it answers.
        request: RequestId,
        /// The response bytes.
        body: Vec<u8>,
        /// The nodes the answering copy went through, out and back.
        hops: Box<Hops>,
    },
    /// A request without SURBs was queued for its first hops: it is settled, and no reply
    /// will come.
    Sent {
        /// The request.
        request: RequestId,
    },
    /// `request` failed: [`ClientError::Timeout`], [`ClientError::InvalidReply`] (every SURB
    /// came back unopenable) or [`ClientError::FirstHopUnreachable`].
    Failed {
        /// The request.
        request: RequestId,
        /// Why.
        error: ClientError,
    },
    /// The pool changed (or [`Sender::lookup_done`] ended the first lookup round): the nodes
    /// that joined and left since the last such event, and its size now.
    PoolChanged {
        /// Nodes new to the pool (discovered, given, or put back after a quarantine).
        added: Vec<PeerId>,
        /// Nodes that left, and why.
        removed: Vec<(PeerId, Removal)>,
        /// How many nodes the pool holds.
        size: usize,
        /// Whether that is below nwaku's minimum ([`MIN_POOL_SIZE`]): paths through few
        /// nodes are easy to guess.
        below_minimum: bool,
    },
}

/// What became of a packet or reply handed to the sender (for the driver's counters; the
/// outcome for the request, if any, comes as an [`Event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// One of our replies, opened ([`Event::Replied`] follows for the first of a request).
    Reply,
    /// A reply whose SURB this sender does not (or no longer) await: a late copy, or not ours.
    UnknownSurb,
    /// One of our SURBs, but the reply did not open (tampered on the way, or built in another
    /// wire format); [`Event::Failed`] follows when it was the request's last SURB.
    Unreadable,
    /// Not a reply at all (a packet to forward or to exit here, a replay, garbage): a sender
    /// that is not a relay drops it.
    NotAReply,
}

/// Orders a pool entry's addresses for dialing: lower first.
pub type DialOrder = fn(&Multiaddr) -> u8;

/// The default dial order: direct addresses (TCP, QUIC, and anything else that is not a
/// circuit) first, circuit addresses last.
pub fn direct_first(addr: &Multiaddr) -> u8 {
    u8::from(crate::is_circuit(addr))
}

/// A copy of a request handed to a first hop.
#[derive(Clone, Copy, Debug)]
struct Released {
    request: RequestId,
    /// When its hold ends and the behaviour writes (or dials for) it.
    released: Instant,
}

/// A request awaiting a reply: how many of its copies' first hops have not failed.
#[derive(Debug)]
struct Request {
    copies_left: usize,
}

/// The sender's state. See the module docs.
pub struct Sender {
    client: Client,
    secret: NodeSecretKey,
    replay: MemoryReplayFilter,
    requests: HashMap<RequestId, Request>,
    /// Copies by first hop, in the order they were sent.
    first_hops: HashMap<PeerId, VecDeque<Released>>,
    /// Entries given with [`Sender::insert_node`]: put back after a quarantine.
    static_nodes: HashMap<PeerId, MixNode>,
    dial_order: DialOrder,
    transmits: VecDeque<Outgoing>,
    events: VecDeque<Event>,
    /// Nodes that joined the pool since the last [`Event::PoolChanged`].
    added: Vec<PeerId>,
    /// A [`Event::PoolChanged`] is due even without changes.
    report_pool: bool,
    /// Whether the sender looks its pool up (no size warning before the first round).
    lookups: bool,
    /// Whether a lookup round ended.
    looked_up: bool,
    /// Whether the last size check was below the minimum (warned once per drop).
    below_minimum: bool,
    /// Whether failed first hops fail their requests at once ([`Sender::with_fail_fast`]).
    fail_fast: bool,
    next_upkeep: Option<Instant>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("client", &self.client)
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender reachable as `me` (the last hop of its SURBs) whose replies are peeled with
    /// `secret` (the mix key of `me`), encoding delays with `delay`. Configure its client
    /// (format, sender hold) with [`Sender::with_client`].
    pub fn new(me: MixNode, secret: NodeSecretKey, delay: DelayStrategy) -> Self {
        Self {
            client: Client::new(me, delay),
            secret,
            replay: MemoryReplayFilter::new(REPLAY),
            requests: HashMap::new(),
            first_hops: HashMap::new(),
            static_nodes: HashMap::new(),
            dial_order: direct_first,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            added: Vec::new(),
            report_pool: false,
            lookups: false,
            looked_up: false,
            below_minimum: false,
            fail_fast: true,
            next_upkeep: None,
        }
    }

    /// Applies `f` to the client (its builder methods: [`Client::with_format`],
    /// [`Client::with_sender_hold`]).
    #[must_use]
    pub fn with_client(mut self, f: impl FnOnce(Client) -> Client) -> Self {
        let me = self.client.me().clone();
        let placeholder = Client::new(me, DelayStrategy::NoSampling);
        let client = std::mem::replace(&mut self.client, placeholder);
        self.client = f(client);
        self
    }

    /// Sorts every pool entry's addresses with `order` (the driver's transports, best first)
    /// [default: [`direct_first`]].
    #[must_use]
    pub fn with_dial_order(mut self, order: DialOrder) -> Self {
        self.dial_order = order;
        self
    }

    /// Whether a request fails at once ([`ClientError::FirstHopUnreachable`]) when the first
    /// hop of every copy could not be reached [default: true]. A driver that also forwards
    /// other nodes' packets (a relay) shares each peer's queue between its own frames and
    /// forwarded ones, so a failure report cannot be pinned on its own copies: it sets
    /// `false`, and such requests end at their timeout (the first hop is still struck).
    #[must_use]
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The pool is looked up through rendezvous: no size warning before the first round
    /// ended ([`Sender::lookup_done`]).
    #[must_use]
    pub fn with_lookups(mut self, lookups: bool) -> Self {
        self.lookups = lookups;
        self
    }

    /// The client: pool, path choice, the SURBs awaited (read only; pool changes go through
    /// the sender, which reports them).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// This sender's own entry (its SURBs end here).
    pub fn me(&self) -> &MixNode {
        self.client.me()
    }

    /// Replaces the pool's freshness settings.
    pub fn set_pool_config(&mut self, config: PoolConfig) {
        self.client.set_pool_config(config);
    }

    /// Requests awaiting a reply.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Whether `request` still awaits a reply.
    pub fn is_pending(&self, request: RequestId) -> bool {
        self.requests.contains_key(&request)
    }

    /// A pool node chosen uniformly at random among those paths may use (an exit ==
    /// destination service node), or `None` with an empty pool.
    pub fn random_node<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Option<PeerId> {
        self.client.random_node(rng).map(|n| n.peer_id)
    }

    fn sorted(&self, mut node: MixNode) -> MixNode {
        node.addresses.sort_by_key(self.dial_order);
        node
    }

    /// Adds or replaces a static entry: it never lapses, and it is put back when a quarantine
    /// ends. This sender's own entry is never added.
    pub fn insert_node(&mut self, node: MixNode) {
        if node.peer_id == self.me().peer_id {
            return;
        }
        let node = self.sorted(node);
        if !self.client.contains_node(&node.peer_id) {
            self.added.push(node.peer_id);
        }
        self.static_nodes.insert(node.peer_id, node.clone());
        self.client.insert_node(node);
    }

    /// Adds or refreshes a discovered entry that `source` listed, kept until `expires` unless
    /// refreshed (within the pool's bounds: [`Client::insert_discovered`]). Returns whether it
    /// is new to the pool.
    pub fn insert_discovered(
        &mut self,
        node: MixNode,
        source: Option<PeerId>,
        now: Instant,
        expires: Instant,
    ) -> bool {
        let node = self.sorted(node);
        let peer = node.peer_id;
        let added = self.client.insert_discovered(node, source, now, expires);
        if added {
            self.added.push(peer);
        }
        added
    }

    /// Never routes through `peer` ([`Client::exclude`]; a browser's gateway).
    pub fn exclude(&mut self, peer: PeerId) {
        self.client.exclude(peer);
    }

    /// `peer` failed on evidence the driver trusts fully ([`Client::node_failed`]).
    pub fn node_failed(&mut self, peer: &PeerId, now: Instant) -> bool {
        self.client.node_failed(peer, now)
    }

    /// A lookup round ended: the pool is known (the size warning may now fire), and the first
    /// time a [`Event::PoolChanged`] is reported even if nothing changed.
    pub fn lookup_done(&mut self) {
        if !self.looked_up {
            self.looked_up = true;
            self.report_pool = true;
        }
    }

    /// Sends a request: `options.redundancy` copies of `body` for `codec` to `destination`,
    /// each on its own path with `options.surbs` SURBs ([`Client::send`]). The frames come out
    /// of [`Sender::poll_transmit`]; the outcome is an [`Event`] (at once, [`Event::Sent`],
    /// without SURBs).
    ///
    /// # Errors
    /// As [`Client::send`]; nothing is queued then.
    pub fn send<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: Instant,
        destination: &Destination,
        codec: &str,
        body: &[u8],
        options: SendOptions,
    ) -> Result<RequestId, ClientError> {
        let (id, outgoing) = self
            .client
            .send(rng, now, destination, codec, body, options)?;
        if self.client.is_pending(id) {
            self.requests.insert(
                id,
                Request {
                    copies_left: outgoing.len(),
                },
            );
            for out in &outgoing {
                self.first_hops
                    .entry(out.peer)
                    .or_default()
                    .push_back(Released {
                        request: id,
                        released: now.checked_add(out.hold).unwrap_or(now),
                    });
            }
        } else {
            self.events.push_back(Event::Sent { request: id });
        }
        self.transmits.extend(outgoing);
        Ok(id)
    }

    /// Forgets `request` (its caller gave up); no event follows.
    pub fn cancel(&mut self, request: RequestId) {
        self.forget(request);
    }

    fn forget(&mut self, request: RequestId) {
        self.client.cancel(request);
        if self.requests.remove(&request).is_some() {
            self.first_hops.retain(|_, copies| {
                copies.retain(|c| c.request != request);
                !copies.is_empty()
            });
        }
    }

    fn fail(&mut self, request: RequestId, error: ClientError) {
        self.forget(request);
        self.events.push_back(Event::Failed { request, error });
    }

    /// A packet that reached this sender: peeled with its key (`now_ms`, Unix ms, ages the
    /// replay filter) and, if it is one of its replies, opened.
    pub fn handle_packet(&mut self, packet: &mut [u8; PACKET_LEN], now_ms: u64) -> Received {
        let Ok(action) = mix_core::peel_with(
            self.client.format(),
            &self.secret,
            &mut self.replay,
            now_ms,
            packet.as_mut_slice(),
        ) else {
            return Received::NotAReply;
        };
        let Action::Reply { surb_id, payload } = action else {
            return Received::NotAReply;
        };
        self.handle_reply(surb_id, payload)
    }

    /// A reply a relay's processor peeled (`mix_core::Action::Reply`): opened with its SURB's
    /// keys.
    pub fn handle_reply(&mut self, surb_id: SurbId, payload: &mut [u8; PAYLOAD_LEN]) -> Received {
        match self.client.on_reply(surb_id, payload) {
            ReplyOutcome::Delivered {
                request,
                body,
                hops,
            } => {
                self.forget(request);
                self.events.push_back(Event::Replied {
                    request,
                    body,
                    hops,
                });
                Received::Reply
            }
            ReplyOutcome::Invalid { request, exhausted } => {
                if exhausted {
                    self.fail(request, ClientError::InvalidReply);
                }
                Received::Unreadable
            }
            ReplyOutcome::Unknown => Received::UnknownSurb,
        }
    }

    /// The behaviour could not deliver `frames` frames to `peer`. A failed dial of our own
    /// first hop strikes its pool entry ([`Client::first_hop_failed`]); the copies released
    /// to `peer` by `now` fail, newest first, as many as `frames`; a request whose every copy
    /// failed so fails with [`ClientError::FirstHopUnreachable`].
    pub fn handle_send_failed(
        &mut self,
        peer: PeerId,
        frames: usize,
        reason: SendFailure,
        now: Instant,
    ) {
        if reason == SendFailure::Dial {
            self.client.first_hop_failed(&peer, now);
        }
        if !self.fail_fast {
            return;
        }
        let mut failed = Vec::new();
        if let Some(copies) = self.first_hops.get_mut(&peer) {
            let mut kept = VecDeque::with_capacity(copies.len());
            while let Some(copy) = copies.pop_back() {
                if failed.len() < frames && copy.released <= now {
                    failed.push(copy.request);
                } else {
                    kept.push_front(copy);
                }
            }
            *copies = kept;
            if copies.is_empty() {
                self.first_hops.remove(&peer);
            }
        }
        for request in failed {
            let Some(pending) = self.requests.get_mut(&request) else {
                continue;
            };
            pending.copies_left = pending.copies_left.saturating_sub(1);
            if pending.copies_left == 0 {
                self.fail(request, ClientError::FirstHopUnreachable { peer, reason });
            }
        }
    }

    /// The time is `now`: requests past their timeout fail ([`ClientError::Timeout`], with
    /// the strikes of [`Client::expire`]); every [`UPKEEP_PERIOD`], lapsed discovered entries
    /// leave the pool, quarantines end and static entries come back.
    pub fn handle_timeout(&mut self, now: Instant) {
        for request in self.client.expire(now) {
            self.fail(request, ClientError::Timeout);
        }
        if self.next_upkeep.is_none_or(|at| at <= now) {
            self.next_upkeep = now.checked_add(UPKEEP_PERIOD);
            self.client.expire_nodes(now);
            let statics: Vec<MixNode> = self.static_nodes.values().cloned().collect();
            for node in statics {
                let peer = node.peer_id;
                if self.client.restore_node(node, now) {
                    self.added.push(peer);
                }
            }
        }
    }

    /// When to call [`Sender::handle_timeout`] next: the next request deadline or pool
    /// upkeep.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.client.next_deadline(), self.next_upkeep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next frame to hand to [`crate::Behaviour::send_after`].
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        self.pool_event()
    }

    /// A [`Event::PoolChanged`] if the pool changed (or one is due), with the size warning.
    fn pool_event(&mut self) -> Option<Event> {
        let removed = self.client.take_removed();
        if removed.is_empty() && self.added.is_empty() && !self.report_pool {
            return None;
        }
        self.report_pool = false;
        let added = std::mem::take(&mut self.added);
        let size = self.client.pool_len();
        let below_minimum = size < MIN_POOL_SIZE;
        let known = if self.lookups {
            self.looked_up
        } else {
            size > 0
        };
        if below_minimum && known && !self.below_minimum {
            tracing::warn!(
                pool = size,
                minimum = MIN_POOL_SIZE,
                "the mix pool is smaller than the minimum: paths are easy to guess"
            );
        }
        self.below_minimum = below_minimum && known;
        for (peer, why) in &removed {
            tracing::debug!(%peer, ?why, "a mix node left the pool");
        }
        Some(Event::PoolChanged {
            added,
            removed,
            size,
            below_minimum,
        })
    }
}

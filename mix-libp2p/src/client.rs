//! The sender (MIX.md §6, §7.1, §11): a pool of mix nodes, unbiased path choice, SURBs, and
//! the table of replies still awaited. Sans-IO: the caller passes randomness and the time,
//! sends the [`Outgoing`] frames with the [`crate::Behaviour`], feeds the replies its node peels
//! back in with [`Client::on_reply`], and calls [`Client::expire`] at [`Client::next_deadline`].
//!
//! The same code runs in the relay's `send` command and in the browser.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use mix_core::{
    Address, BuildError, DelayStrategy, Hop, NodePublicKey, NodeSecretKey, PACKET_LEN, PAYLOAD_LEN,
    PacketBuilder, Route, Surb, SurbId, SurbKeys,
};
use rand_core::CryptoRng;
use web_time::Instant;

use crate::address::{self, AddressError};
use crate::protocol::Frame;

/// A mix node the client may route through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixNode {
    /// Its libp2p identity (secp256k1).
    pub peer_id: PeerId,
    /// Where to dial it.
    pub addresses: Vec<Multiaddr>,
    /// The address written into packets (the first of `addresses` a mix address can encode).
    pub address: Address,
    /// Its X25519 mix public key.
    pub public_key: NodePublicKey,
}

impl MixNode {
    /// A pool entry. Direct TCP/QUIC addresses are preferred over circuit addresses for the
    /// packet address.
    ///
    /// # Errors
    /// The reason the first address failed, if none of `addresses` can be written into a
    /// packet (MIX.md §11: such nodes are not usable).
    pub fn new(
        peer_id: PeerId,
        addresses: Vec<Multiaddr>,
        public_key: NodePublicKey,
    ) -> Result<Self, AddressError> {
        let mut first_error = AddressError::MissingPeerId;
        let mut best: Option<Address> = None;
        for (i, addr) in addresses.iter().enumerate() {
            match address::from_multiaddr(addr, Some(peer_id)) {
                Ok(a)
                    if best.is_none()
                        || (best.is_some_and(|b| b.relay.is_some()) && a.relay.is_none()) =>
                {
                    best = Some(a);
                }
                Ok(_) => {}
                Err(e) if i == 0 => first_error = e,
                Err(_) => {}
            }
        }
        let address = best.ok_or(first_error)?;
        Ok(Self {
            peer_id,
            addresses,
            address,
            public_key,
        })
    }

    fn hop(&self) -> Hop {
        Hop {
            address: self.address,
            public_key: self.public_key,
        }
    }
}

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Exit == destination (what nwaku senders use, WAKU.md §4): the node, which must be in
    /// the pool, is the third hop and runs the request through its own protocol handler.
    ExitIsDestination(PeerId),
    /// Forward mode: a random exit dials `address` with the codec and relays the response.
    Forward(Address),
}

/// Per-request settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOptions {
    /// SURBs per packet: how many replies the exit may send (0: no reply expected).
    pub surbs: usize,
    /// Copies of the request, each on its own path with its own SURBs; the first reply wins.
    pub redundancy: usize,
    /// How long to wait for a reply before [`Client::expire`] reports the request.
    pub timeout: Duration,
}

impl Default for SendOptions {
    /// One SURB, one path, a 30 s timeout.
    fn default() -> Self {
        Self {
            surbs: 1,
            redundancy: 1,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A request's handle, to match its reply or timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl From<RequestId> for u64 {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A frame to hand to [`crate::Behaviour::send`].
#[derive(Debug)]
pub struct Outgoing {
    /// The first hop.
    pub peer: PeerId,
    /// Where to dial it.
    pub addresses: Vec<Multiaddr>,
    /// The packet.
    pub frame: Frame,
}

/// Why a request could not be sent, or got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Not enough usable mix nodes for the paths.
    #[error("no route: {needed} mix nodes needed besides the destination, {available} known")]
    NoRoute {
        /// How many the request needs.
        needed: usize,
        /// How many the pool has.
        available: usize,
    },
    /// An exit == destination request names a node that is not in the pool.
    #[error("the destination {0} is not a known mix node")]
    UnknownDestination(PeerId),
    /// The message does not fit in one packet.
    #[error("the message is too long: at most {max_len} bytes fit with this codec and SURB count")]
    MessageTooLong {
        /// The largest body that fits.
        max_len: usize,
    },
    /// The options are out of range.
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
    /// Building the packet failed.
    #[error("building the packet failed: {0}")]
    Build(BuildError),
    /// No reply came in time.
    #[error("no reply within the timeout")]
    Timeout,
    /// Every reply that came back failed to open (tampered on the way).
    #[error("the reply did not open: it was tampered with on the way")]
    InvalidReply,
}

impl From<BuildError> for ClientError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::MessageTooLong { max_len } => Self::MessageTooLong { max_len },
            other => Self::Build(other),
        }
    }
}

/// What [`Client::on_reply`] made of a reply packet.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The first reply to `request`: its body.
    Delivered {
        /// The request it answers.
        request: RequestId,
        /// The response bytes.
        body: Vec<u8>,
    },
    /// A SURB id this client does not (or no longer) await: a late duplicate, or not ours.
    Unknown,
    /// Ours, but it did not open (tampered, or not a reply). The SURB is spent; when it was
    /// the request's last one (`exhausted`), the request is forgotten and no reply can come:
    /// answer its caller with [`ClientError::InvalidReply`].
    Invalid {
        /// The request whose SURB it was.
        request: RequestId,
        /// Whether every SURB of the request has now come back unopenable.
        exhausted: bool,
    },
}

struct PendingRequest {
    surb_ids: Vec<SurbId>,
    deadline: Instant,
}

/// The sender's state. See the module docs.
pub struct Client {
    me: MixNode,
    #[allow(
        dead_code,
        reason = "kept so the client owns the key its SURBs are opened with"
    )]
    secret: NodeSecretKey,
    delay: DelayStrategy,
    /// Ordered so path choice is reproducible from a seeded rng.
    pool: BTreeMap<PeerId, MixNode>,
    surbs: HashMap<SurbId, (RequestId, SurbKeys)>,
    requests: HashMap<RequestId, PendingRequest>,
    next_id: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("me", &self.me.peer_id)
            .field("pool", &self.pool.len())
            .field("pending", &self.requests.len())
            .finish_non_exhaustive()
    }
}

/// A uniform index below `n` (rejection sampling: no modulo bias).
fn uniform<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n = n as u64;
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let x = rng.next_u64();
        if x < zone {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "x % n < n, which is a usize"
            )]
            return (x % n) as usize;
        }
    }
}

/// `k` distinct elements of `items`, uniformly (a partial Fisher–Yates shuffle).
fn sample<T: Clone, R: CryptoRng + ?Sized>(rng: &mut R, items: &[T], k: usize) -> Vec<T> {
    let mut items = items.to_vec();
    let k = k.min(items.len());
    for i in 0..k {
        let j = i + uniform(rng, items.len() - i);
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

impl Client {
    /// A client that is itself reachable as `me` (the last hop of its SURBs) with the mix
    /// secret key `secret`, and that encodes delays with `delay`.
    pub fn new(me: MixNode, secret: NodeSecretKey, delay: DelayStrategy) -> Self {
        Self {
            me,
            secret,
            delay,
            pool: BTreeMap::new(),
            surbs: HashMap::new(),
            requests: HashMap::new(),
            next_id: 0,
        }
    }

    /// This client's own entry (its SURBs end here).
    pub fn me(&self) -> &MixNode {
        &self.me
    }

    /// Adds or replaces a pool entry. The client's own entry is never added.
    pub fn insert_node(&mut self, node: MixNode) {
        if node.peer_id != self.me.peer_id {
            self.pool.insert(node.peer_id, node);
        }
    }

    /// Removes a pool entry; `true` if it was there.
    pub fn remove_node(&mut self, peer: &PeerId) -> bool {
        self.pool.remove(peer).is_some()
    }

    /// A pool node chosen uniformly at random (e.g. an exit == destination service node), or
    /// `None` with an empty pool.
    pub fn random_node<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Option<&MixNode> {
        self.pool.values().nth(uniform(rng, self.pool.len()))
    }

    /// The pool.
    pub fn nodes(&self) -> impl Iterator<Item = &MixNode> {
        self.pool.values()
    }

    /// Requests awaiting a reply.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// The largest body one packet carries for `codec` with `surbs` SURBs.
    ///
    /// # Errors
    /// As [`mix_core::max_message_len`].
    pub fn max_message_len(codec: &str, surbs: usize) -> Result<usize, ClientError> {
        Ok(mix_core::max_message_len(codec, surbs)?)
    }

    /// Builds the packets for one request: `options.redundancy` copies, each on its own path
    /// with `options.surbs` SURBs. Returns the request's id and the frames to send.
    ///
    /// With redundancy, each copy's two intermediate hops are chosen disjoint from the other
    /// copies' when the pool allows, and the copy's SURBs return through the same two nodes,
    /// so one dead node cannot take out every copy.
    ///
    /// # Errors
    /// [`ClientError::NoRoute`] if the pool is too small, [`ClientError::UnknownDestination`],
    /// [`ClientError::MessageTooLong`] (checked before anything is built),
    /// [`ClientError::InvalidOptions`], or a [`ClientError::Build`] failure.
    pub fn send<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: Instant,
        destination: &Destination,
        codec: &str,
        body: &[u8],
        options: SendOptions,
    ) -> Result<(RequestId, Vec<Outgoing>), ClientError> {
        if options.redundancy == 0 || options.redundancy > 4 {
            return Err(ClientError::InvalidOptions("redundancy must be 1 to 4"));
        }
        if options.surbs > mix_core::MAX_SURBS {
            return Err(ClientError::InvalidOptions(
                "at most 5 SURBs fit in a packet",
            ));
        }
        let max_len = Self::max_message_len(codec, options.surbs)?;
        if body.len() > max_len {
            return Err(ClientError::MessageTooLong { max_len });
        }
        let (exit, dest_peer, dest_address) = match destination {
            Destination::ExitIsDestination(peer) => {
                let node = self
                    .pool
                    .get(peer)
                    .ok_or(ClientError::UnknownDestination(*peer))?;
                (Some(node.clone()), Some(*peer), None)
            }
            Destination::Forward(address) => {
                let peer = address::peer_id(&address.peer_id).ok();
                (None, peer, Some(*address))
            }
        };
        // Intermediates never include the destination (MIX.md §11).
        let candidates: Vec<&MixNode> = self
            .pool
            .values()
            .filter(|n| Some(n.peer_id) != dest_peer)
            .collect();
        let per_copy = if exit.is_some() { 2 } else { 3 };
        if candidates.len() < per_copy {
            return Err(ClientError::NoRoute {
                needed: per_copy,
                available: candidates.len(),
            });
        }
        // Disjoint groups of two intermediates when there are enough nodes.
        let disjoint =
            options.redundancy > 1 && candidates.len() >= 2 * options.redundancy + per_copy - 2;
        let shuffled = sample(rng, &candidates, candidates.len());
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let mut outgoing = Vec::with_capacity(options.redundancy);
        let mut surb_ids = Vec::new();
        let mut surb_keys = Vec::new();
        for copy in 0..options.redundancy {
            let group: Vec<&MixNode> = if disjoint {
                shuffled[2 * copy..2 * copy + 2].to_vec()
            } else {
                sample(rng, &candidates, 2)
            };
            let exit_node = match &exit {
                Some(node) => node.clone(),
                None => {
                    let rest: Vec<&MixNode> = candidates
                        .iter()
                        .copied()
                        .filter(|n| group.iter().all(|g| g.peer_id != n.peer_id))
                        .collect();
                    let pick = sample(rng, &rest, 1);
                    let Some(node) = pick.first() else {
                        return Err(ClientError::NoRoute {
                            needed: 3,
                            available: candidates.len(),
                        });
                    };
                    (*node).clone()
                }
            };
            let route = Route {
                hops: [group[0].hop(), group[1].hop(), exit_node.hop()],
                delays: [self.delay.for_entry(rng), self.delay.for_entry(rng)],
            };
            let mut surbs = Vec::with_capacity(options.surbs);
            for _ in 0..options.surbs {
                let return_group: Vec<&MixNode> = if options.redundancy > 1 {
                    sample(rng, &group, 2)
                } else {
                    // Nim: two random nodes other than the exit and the destination.
                    let allowed: Vec<&MixNode> = self
                        .pool
                        .values()
                        .filter(|n| n.peer_id != exit_node.peer_id && Some(n.peer_id) != dest_peer)
                        .collect();
                    if allowed.len() < 2 {
                        return Err(ClientError::NoRoute {
                            needed: 3,
                            available: self.pool.len(),
                        });
                    }
                    sample(rng, &allowed, 2)
                };
                let return_route = Route {
                    hops: [return_group[0].hop(), return_group[1].hop(), self.me.hop()],
                    delays: [self.delay.for_entry(rng), self.delay.for_entry(rng)],
                };
                let (surb, keys) = Surb::create(rng, &return_route)?;
                surb_ids.push(keys.id());
                surb_keys.push(keys);
                surbs.push(surb);
            }
            let mut builder = PacketBuilder::new(&route).surbs(&surbs);
            if let Some(address) = &dest_address {
                builder = builder.destination(address);
            }
            let mut packet = Box::new([0u8; PACKET_LEN]);
            builder.build(rng, codec, body, packet.as_mut_slice())?;
            outgoing.push(Outgoing {
                peer: group[0].peer_id,
                addresses: group[0].addresses.clone(),
                frame: Frame::new(packet),
            });
        }
        if !surb_ids.is_empty() {
            for keys in surb_keys {
                self.surbs.insert(keys.id(), (id, keys));
            }
            self.requests.insert(
                id,
                PendingRequest {
                    surb_ids,
                    deadline: now + options.timeout,
                },
            );
        }
        Ok((id, outgoing))
    }

    /// Opens a reply that reached this client (`mix_core::Action::Reply`). The first reply to
    /// a request wins; the request's other SURBs are forgotten, so later copies are
    /// [`ReplyOutcome::Unknown`].
    pub fn on_reply(&mut self, surb_id: SurbId, payload: &mut [u8; PAYLOAD_LEN]) -> ReplyOutcome {
        let Some((request, keys)) = self.surbs.get(&surb_id) else {
            return ReplyOutcome::Unknown;
        };
        let request = *request;
        let body = match keys.open_reply(payload) {
            Ok(body) => body.to_vec(),
            Err(_) => {
                self.surbs.remove(&surb_id);
                let exhausted = self.requests.get_mut(&request).is_none_or(|pending| {
                    pending.surb_ids.retain(|id| *id != surb_id);
                    pending.surb_ids.is_empty()
                });
                if exhausted {
                    self.forget(request);
                }
                return ReplyOutcome::Invalid { request, exhausted };
            }
        };
        self.forget(request);
        ReplyOutcome::Delivered { request, body }
    }

    /// Whether `request` still awaits a reply.
    pub fn is_pending(&self, request: RequestId) -> bool {
        self.requests.contains_key(&request)
    }

    /// Forgets `request` (its caller gave up).
    pub fn cancel(&mut self, request: RequestId) {
        self.forget(request);
    }

    fn forget(&mut self, request: RequestId) {
        if let Some(pending) = self.requests.remove(&request) {
            for id in pending.surb_ids {
                self.surbs.remove(&id);
            }
        }
    }

    /// The requests whose timeout has passed at `now` (each is forgotten: answer its caller
    /// with [`ClientError::Timeout`]).
    pub fn expire(&mut self, now: Instant) -> Vec<RequestId> {
        let mut expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in &expired {
            self.forget(*id);
        }
        expired
    }

    /// When the next request times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.requests.values().map(|p| p.deadline).min()
    }
}

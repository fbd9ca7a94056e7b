//! The sender (MIX.md §6, §7.1, §11): a pool of mix nodes, unbiased path choice, SURBs, and
//! the table of replies still awaited. Sans-IO: the caller passes randomness and the time,
//! sends the [`Outgoing`] frames with the [`crate::Behaviour`], feeds the replies its node peels
//! back in with [`Client::on_reply`], and calls [`Client::expire`] at [`Client::next_deadline`].
//!
//! The same code runs in the relay's `send` command and in the browser.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use mix_core::{
    Address, BuildError, DEFAULT_NEGLIGIBLE_PROB, Delay, DelayStrategy, Format, Hop, NodePublicKey,
    PACKET_LEN, PAYLOAD_LEN, PacketBuilder, Route, Surb, SurbId, SurbKeys,
    sample_truncated_exponential,
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

/// A frame to hand to [`crate::Behaviour::send_after`].
#[derive(Debug)]
pub struct Outgoing {
    /// The first hop.
    pub peer: PeerId,
    /// Where to dial it.
    pub addresses: Vec<Multiaddr>,
    /// The packet.
    pub frame: Frame,
    /// How long to hold the frame before it is written (the sender hold of
    /// [`Client::with_sender_hold`]; zero without one).
    pub hold: Duration,
}

/// How long SURB reply credentials are kept at most, and so the longest request timeout
/// (upstream's `surb_store`: 30 minutes).
pub const MAX_CREDENTIAL_AGE: Duration = Duration::from_secs(30 * 60);

/// The most SURB reply credentials held at once; beyond it new sends are refused rather than
/// old credentials evicted (upstream's `surb_store`: 100,000).
pub const MAX_CREDENTIALS: usize = 100_000;

/// The sender hold upstream applies in the LIP-183 format before a first-hop write (and
/// before a SURB reply): an exponential with a 100 ms mean.
pub const DEFAULT_SENDER_HOLD: Delay = Delay::from_millis(100);

/// A sender hold drawn as upstream's `generateForSender` does: an exponential with mean
/// `mean`, truncated as the per-hop delays are; zero for a zero mean.
pub fn sample_sender_hold<R: CryptoRng + ?Sized>(mean: Delay, rng: &mut R) -> Duration {
    let held = sample_truncated_exponential(mean, Delay::ZERO, DEFAULT_NEGLIGIBLE_PROB, rng);
    Duration::from_millis(u64::from(held.as_millis()))
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
    /// An exit == destination request names a node this client never routes through
    /// ([`Client::exclude`], e.g. its gateway, which knows its IP address).
    #[error("the destination {0} is excluded from this client's paths")]
    ExcludedDestination(PeerId),
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
    /// Too many replies are awaited already ([`MAX_CREDENTIALS`] SURB credentials): try again
    /// when some have come back or timed out.
    #[error("too many replies awaited: try again later")]
    Busy,
    /// Every reply that came back failed to open (tampered on the way).
    #[error("the reply did not open: it was tampered with on the way")]
    InvalidReply,
    /// The first hop of every copy of the request could not be reached (reported by the
    /// `/mix/1.0.0` behaviour as [`crate::Event::SendFailed`]): no reply can come.
    #[error("the first hop {peer} could not be reached: {reason}")]
    FirstHopUnreachable {
        /// The first hop whose failure settled the request (the last copy's).
        peer: PeerId,
        /// Why its frames were not delivered.
        reason: crate::SendFailure,
    },
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
        /// The nodes the answering copy went through, out and back.
        hops: Box<Hops>,
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
    /// Every pool node the request's copies and SURBs pass through (struck if it times out).
    path: Vec<PeerId>,
}

/// A SURB awaited: its request, its keys, and the nodes its copy went through (cleared of
/// strikes when it comes back).
struct AwaitedSurb {
    request: RequestId,
    keys: SurbKeys,
    hops: Hops,
}

/// The pool nodes one copy of a request went through: what a sender may show its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hops {
    /// Out: two intermediates, then the exit (the service node in exit == destination mode).
    pub forward: [PeerId; 3],
    /// Back, on the SURB that answered: two intermediates, then this client.
    pub back: [PeerId; 2],
}

impl Hops {
    /// Every node, forward then back.
    pub fn iter(&self) -> impl Iterator<Item = &PeerId> {
        self.forward.iter().chain(self.back.iter())
    }
}

/// How the pool keeps itself fresh and bounded (MIX.md §11, WAKU.md §5.2).
///
/// Strikes are evidence against a node, and an adversary on a path can manufacture them by
/// dropping packets (a selective denial of service: honest nodes quarantined, paths drift
/// towards the adversary's). So a strike is never cheap to cause: a timed-out request spreads one strike
/// over the distinct nodes on its paths (a 5-node path gives each a fifth), a reply through a
/// node clears its count, a dial failure counts only for this client's own first hop, and
/// strikes never hold more than [`PoolConfig::max_quarantined_percent`] of the pool out at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Strikes (with no reply in between) after which a node leaves the pool. A timed-out
    /// request adds `1/k` strike to each of the `k` distinct nodes on its paths that did not
    /// bring a reply back since it was sent; a failed dial of our own first hop adds one.
    pub max_strikes: u32,
    /// How long a removed node is kept out (discovery cannot bring it back sooner).
    pub quarantine: Duration,
    /// Strikes and dial failures keep at most this share (percent) of the nodes known (pool
    /// and quarantine together, at least one node) out at once; past it a node keeps its
    /// strikes but stays in the pool.
    pub max_quarantined_percent: u8,
    /// The most discovered (non-static) entries the pool holds; new ones past it are refused.
    pub max_discovered: usize,
    /// The most discovered entries one source (a rendezvous point) may have brought into the
    /// pool; new ones past it are refused, refreshes of its own are not.
    pub max_per_source: usize,
}

impl Default for PoolConfig {
    /// Three strikes; one minute out (the Waku rendezvous record TTL); at most a quarter of
    /// the nodes out at once; at most 512 discovered nodes, 64 from any one source.
    fn default() -> Self {
        Self {
            max_strikes: 3,
            quarantine: Duration::from_secs(60),
            max_quarantined_percent: 25,
            max_discovered: 512,
            max_per_source: 64,
        }
    }
}

/// One strike, in the units a node's count is kept in (divisible by every path size up to 6,
/// so spread strikes stay exact for single-copy paths).
const STRIKE: u32 = 3600;

/// nwaku warns when its pool holds fewer nodes than this (`minMixPoolSize`).
pub const MIN_POOL_SIZE: usize = 4;

/// Why a node left the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Removal {
    /// Its record was not refreshed before it expired.
    Expired,
    /// It could not be dialed (reported with [`Client::node_failed`]).
    Failed,
    /// It collected [`PoolConfig::max_strikes`] strikes without a reply in between (timeouts
    /// on its paths, failed dials of our own first hop).
    Strikes,
}

#[derive(Clone, Copy, Debug, Default)]
struct NodeMeta {
    /// When the entry lapses unless refreshed; `None` for static entries.
    expires: Option<Instant>,
    /// Strikes, in units of [`STRIKE`].
    strikes: u32,
    /// The source that brought a discovered entry into the pool (counted against
    /// [`PoolConfig::max_per_source`]).
    source: Option<PeerId>,
    /// How many requests had been sent when a reply last came back through the node: a
    /// request with a lower id was sent before that reply (0: never).
    replied_at: u64,
}

/// One copy's path as peer ids: the three forward hops and, per SURB, the two return hops.
pub type ChosenPath = ([PeerId; 3], Vec<[PeerId; 2]>);

/// One copy of a request: its forward hops and, per SURB, the two return hops.
struct CopyPlan {
    hops: [MixNode; 3],
    returns: Vec<[MixNode; 2]>,
}

/// The sender's state. See the module docs.
pub struct Client {
    me: MixNode,
    delay: DelayStrategy,
    format: Format,
    hold: Option<Delay>,
    /// Ordered so path choice is reproducible from a seeded rng.
    pool: BTreeMap<PeerId, MixNode>,
    meta: HashMap<PeerId, NodeMeta>,
    quarantine: HashMap<PeerId, Instant>,
    removed: Vec<(PeerId, Removal)>,
    pool_config: PoolConfig,
    /// Peers never put on a path, nor picked as a random destination.
    excluded: BTreeSet<PeerId>,
    /// Discovered entries in the pool.
    discovered: usize,
    /// Discovered entries in the pool, by the source that brought them.
    per_source: HashMap<PeerId, usize>,
    /// Our own first hops, until when a failed dial of them is evidence against them.
    first_hops: HashMap<PeerId, Instant>,
    surbs: HashMap<SurbId, AwaitedSurb>,
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
#[allow(
    clippy::arithmetic_side_effects,
    reason = "n > 1 here: no division by zero, and u64::MAX % n <= u64::MAX"
)]
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
        let j = i.saturating_add(uniform(rng, items.len().saturating_sub(i)));
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

impl Client {
    /// A client that is itself reachable as `me` (the last hop of its SURBs) and that encodes
    /// delays with `delay`. It holds no secret: the packets that reach `me` are peeled with
    /// `me`'s mix key by whoever owns it (a [`crate::Sender`], or a relay's processor), and
    /// only the opened SURB replies come here ([`Client::on_reply`]).
    pub fn new(me: MixNode, delay: DelayStrategy) -> Self {
        Self {
            me,
            delay,
            format: Format::default(),
            hold: None,
            pool: BTreeMap::new(),
            meta: HashMap::new(),
            quarantine: HashMap::new(),
            removed: Vec::new(),
            pool_config: PoolConfig::default(),
            excluded: BTreeSet::new(),
            discovered: 0,
            per_source: HashMap::new(),
            first_hops: HashMap::new(),
            surbs: HashMap::new(),
            requests: HashMap::new(),
            next_id: 0,
        }
    }

    /// The wire format its packets and SURBs are built in (a property of the network: every
    /// node on a path must speak it) [default: [`Format::Lip183`]].
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Holds every first-hop frame for an exponential wait of mean `mean` before it is
    /// written, as upstream's LIP-183 senders do ([`DEFAULT_SENDER_HOLD`]); `None` (the
    /// default) writes at once.
    #[must_use]
    pub fn with_sender_hold(mut self, mean: Option<Delay>) -> Self {
        self.hold = mean.filter(|m| *m != Delay::ZERO);
        self
    }

    /// The wire format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The sender hold's mean, if there is one.
    pub fn sender_hold(&self) -> Option<Delay> {
        self.hold
    }

    /// This client's own entry (its SURBs end here).
    pub fn me(&self) -> &MixNode {
        &self.me
    }

    /// Replaces the pool's freshness settings.
    pub fn set_pool_config(&mut self, config: PoolConfig) {
        self.pool_config = config;
    }

    /// Adds or replaces a static pool entry (it never expires). The client's own entry is never
    /// added.
    pub fn insert_node(&mut self, node: MixNode) {
        if node.peer_id != self.me.peer_id {
            if self.pool.contains_key(&node.peer_id) {
                self.unaccount(&node.peer_id);
            }
            let meta = self.meta.entry(node.peer_id).or_default();
            meta.expires = None;
            meta.source = None;
            self.quarantine.remove(&node.peer_id);
            self.pool.insert(node.peer_id, node);
        }
    }

    /// Adds or refreshes a discovered entry that lapses at `expires` unless refreshed again.
    /// A node in quarantine (removed less than [`PoolConfig::quarantine`] ago) is not taken
    /// back, nor is the client itself, nor a new one past [`PoolConfig::max_discovered`].
    /// Returns whether the node is new to the pool.
    pub fn insert_node_until(&mut self, node: MixNode, now: Instant, expires: Instant) -> bool {
        self.insert_discovered(node, None, now, expires)
    }

    /// As [`Client::insert_node_until`], for a node that `source` (the rendezvous point that
    /// listed it) brought: a node new to the pool is also refused once `source` brought
    /// [`PoolConfig::max_per_source`] of the entries held, so fresh identities from one point
    /// can neither grow the pool without bound nor fill it. A refresh keeps the first source.
    pub fn insert_discovered(
        &mut self,
        node: MixNode,
        source: Option<PeerId>,
        now: Instant,
        expires: Instant,
    ) -> bool {
        if node.peer_id == self.me.peer_id {
            return false;
        }
        if let Some(until) = self.quarantine.get(&node.peer_id) {
            if *until > now {
                return false;
            }
            self.quarantine.remove(&node.peer_id);
        }
        if let Some(meta) = self.meta.get_mut(&node.peer_id)
            && self.pool.contains_key(&node.peer_id)
        {
            // A static entry stays static; a discovered one is refreshed.
            if meta.expires.is_some() {
                meta.expires = Some(expires);
                self.pool.insert(node.peer_id, node);
            }
            return false;
        }
        if self.discovered >= self.pool_config.max_discovered {
            return false;
        }
        if let Some(source) = source
            && self.per_source.get(&source).copied().unwrap_or(0) >= self.pool_config.max_per_source
        {
            return false;
        }
        let meta = self.meta.entry(node.peer_id).or_default();
        meta.expires = Some(expires);
        meta.source = source;
        self.discovered = self.discovered.saturating_add(1);
        if let Some(source) = source {
            let count = self.per_source.entry(source).or_default();
            *count = count.saturating_add(1);
        }
        self.pool.insert(node.peer_id, node);
        true
    }

    /// How many discovered entries in the pool `source` brought.
    pub fn from_source(&self, source: &PeerId) -> usize {
        self.per_source.get(source).copied().unwrap_or(0)
    }

    /// Takes a pool entry out of the discovered counts (before it is removed or made static).
    fn unaccount(&mut self, peer: &PeerId) {
        let Some(meta) = self.meta.get(peer) else {
            return;
        };
        if meta.expires.is_none() {
            return;
        }
        self.discovered = self.discovered.saturating_sub(1);
        if let Some(source) = meta.source
            && let Some(n) = self.per_source.get_mut(&source)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    /// Never routes through `peer` again: it is not an intermediate, exit or return hop of any
    /// path, nor a random destination, and naming it as the destination fails with
    /// [`ClientError::ExcludedDestination`]. A browser excludes its gateway, which knows its
    /// IP address and relays every reply to it (MIX.md §11 leaves this to the sender).
    pub fn exclude(&mut self, peer: PeerId) {
        self.excluded.insert(peer);
    }

    /// Whether [`Client::exclude`] named `peer`.
    pub fn is_excluded(&self, peer: &PeerId) -> bool {
        self.excluded.contains(peer)
    }

    /// Puts a static entry back after its quarantine (nothing happens before it ends, or if
    /// it is in the pool). Returns whether it was put back.
    pub fn restore_node(&mut self, node: MixNode, now: Instant) -> bool {
        if self.pool.contains_key(&node.peer_id)
            || self.quarantine.get(&node.peer_id).is_some_and(|t| *t > now)
        {
            return false;
        }
        self.insert_node(node);
        true
    }

    /// Removes a pool entry; `true` if it was there.
    pub fn remove_node(&mut self, peer: &PeerId) -> bool {
        if self.pool.contains_key(peer) {
            self.unaccount(peer);
        }
        self.meta.remove(peer);
        self.pool.remove(peer).is_some()
    }

    /// `peer` failed on evidence the caller trusts fully: it leaves the pool at once and
    /// stays out for [`PoolConfig::quarantine`]. Returns whether it was in the pool.
    ///
    /// Not for dial failures a third party can cause (a relay dials the next hops packets
    /// name, at the addresses they name): report those with [`Client::first_hop_failed`].
    pub fn node_failed(&mut self, peer: &PeerId, now: Instant) -> bool {
        self.evict(*peer, now, Removal::Failed)
    }

    /// A dial of `peer` failed. It counts as one strike only if `peer` is the first hop of a
    /// request this client sent within that request's timeout (we dialed it at the pool's
    /// addresses); a failed dial for anyone else's packet (a relay forwarding to a next hop
    /// at an address the packet names) is no evidence against the pool's entry. Each send
    /// counts once. Returns whether the node left the pool.
    pub fn first_hop_failed(&mut self, peer: &PeerId, now: Instant) -> bool {
        if self
            .first_hops
            .remove(peer)
            .is_none_or(|until| until <= now)
        {
            return false;
        }
        self.strike(*peer, STRIKE, now)
    }

    /// Adds `weight` strike units to `peer`; evicts it at [`PoolConfig::max_strikes`] while
    /// the quarantine has room. Returns whether it left the pool.
    fn strike(&mut self, peer: PeerId, weight: u32, now: Instant) -> bool {
        let max = self.pool_config.max_strikes.saturating_mul(STRIKE);
        let out = self.meta.get_mut(&peer).is_some_and(|meta| {
            meta.strikes = meta.strikes.saturating_add(weight);
            meta.strikes >= max
        });
        if !out || !self.pool.contains_key(&peer) {
            return false;
        }
        let held = self.quarantine.values().filter(|t| **t > now).count();
        let known = self.pool.len().saturating_add(held);
        let cap = (known.saturating_mul(usize::from(self.pool_config.max_quarantined_percent))
            / 100)
            .max(1);
        if held >= cap {
            tracing::debug!(%peer, held, cap, "strikes enough to quarantine, but the quarantine is full");
            return false;
        }
        self.evict(peer, now, Removal::Strikes)
    }

    fn evict(&mut self, peer: PeerId, now: Instant, why: Removal) -> bool {
        let was = self.remove_node(&peer);
        if was {
            self.quarantine.insert(
                peer,
                now.checked_add(self.pool_config.quarantine).unwrap_or(now),
            );
            self.removed.push((peer, why));
        }
        was
    }

    /// Removes the discovered entries that lapsed by `now` and ends finished quarantines.
    pub fn expire_nodes(&mut self, now: Instant) {
        let lapsed: Vec<PeerId> = self
            .meta
            .iter()
            .filter(|(_, m)| m.expires.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in lapsed {
            if self.remove_node(&peer) {
                self.removed.push((peer, Removal::Expired));
            }
        }
        self.quarantine.retain(|_, until| *until > now);
    }

    /// The nodes that left the pool since the last call, and why (for logs and events).
    pub fn take_removed(&mut self) -> Vec<(PeerId, Removal)> {
        std::mem::take(&mut self.removed)
    }

    /// Whether `peer` is in the pool.
    pub fn contains_node(&self, peer: &PeerId) -> bool {
        self.pool.contains_key(peer)
    }

    /// How many nodes the pool holds.
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// A pool node chosen uniformly at random (e.g. an exit == destination service node), or
    /// `None` with an empty pool.
    pub fn random_node<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Option<&MixNode> {
        let usable: Vec<&MixNode> = self
            .pool
            .values()
            .filter(|n| !self.excluded.contains(&n.peer_id))
            .collect();
        usable.get(uniform(rng, usable.len())).copied()
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
    /// As [`Format::max_message_len`].
    ///
    /// # Errors
    /// [`ClientError::InvalidOptions`]-like build errors: a codec or SURB count that does not
    /// fit.
    pub fn max_message_len(
        format: Format,
        codec: &str,
        surbs: usize,
    ) -> Result<usize, ClientError> {
        Ok(format.max_message_len(codec, surbs)?)
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
        if options.timeout > MAX_CREDENTIAL_AGE {
            return Err(ClientError::InvalidOptions(
                "the timeout is longer than SURB credentials are kept (30 min)",
            ));
        }
        let Some(deadline) = now.checked_add(options.timeout) else {
            return Err(ClientError::InvalidOptions("the timeout is too long"));
        };
        if options.surbs > mix_core::MAX_SURBS {
            return Err(ClientError::InvalidOptions(
                "at most 5 SURBs fit in a packet",
            ));
        }
        let max_len = Self::max_message_len(self.format, codec, options.surbs)?;
        if body.len() > max_len {
            return Err(ClientError::MessageTooLong { max_len });
        }
        let credentials = options.surbs.saturating_mul(options.redundancy);
        if self.surbs.len().saturating_add(credentials) > MAX_CREDENTIALS {
            return Err(ClientError::Busy);
        }
        let plan = self.plan(rng, destination, options)?;
        let dest_address = match destination {
            Destination::Forward(address) => Some(*address),
            Destination::ExitIsDestination(_) => None,
        };
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let mut outgoing = Vec::with_capacity(plan.len());
        let mut awaited = Vec::new();
        let mut request_path = Vec::new();
        for copy in &plan {
            let route = Route {
                hops: [copy.hops[0].hop(), copy.hops[1].hop(), copy.hops[2].hop()],
                delays: [self.delay.for_entry(rng), self.delay.for_entry(rng)],
            };
            let forward = copy.hops.each_ref().map(|n| n.peer_id);
            let mut surbs = Vec::with_capacity(copy.returns.len());
            for back in &copy.returns {
                let return_route = Route {
                    hops: [back[0].hop(), back[1].hop(), self.me.hop()],
                    delays: [self.delay.for_entry(rng), self.delay.for_entry(rng)],
                };
                let (surb, keys) = Surb::create_with_format(self.format, rng, &return_route)?;
                let hops = Hops {
                    forward,
                    back: back.each_ref().map(|n| n.peer_id),
                };
                request_path.extend(hops.iter().copied());
                awaited.push(AwaitedSurb {
                    request: id,
                    keys,
                    hops,
                });
                surbs.push(surb);
            }
            let mut builder = PacketBuilder::new(&route).format(self.format).surbs(&surbs);
            if let Some(address) = &dest_address {
                builder = builder.destination(address);
            }
            let mut packet = Box::new([0u8; PACKET_LEN]);
            builder.build(rng, codec, body, packet.as_mut_slice())?;
            let hold = self
                .hold
                .map_or(Duration::ZERO, |mean| sample_sender_hold(mean, rng));
            self.first_hops.insert(copy.hops[0].peer_id, deadline);
            outgoing.push(Outgoing {
                peer: copy.hops[0].peer_id,
                addresses: copy.hops[0].addresses.clone(),
                frame: Frame::new(packet),
                hold,
            });
        }
        if !awaited.is_empty() {
            request_path.sort_unstable();
            request_path.dedup();
            let surb_ids = awaited.iter().map(|a| a.keys.id()).collect();
            for surb in awaited {
                self.surbs.insert(surb.keys.id(), surb);
            }
            self.requests.insert(
                id,
                PendingRequest {
                    surb_ids,
                    deadline,
                    path: request_path,
                },
            );
        }
        Ok((id, outgoing))
    }

    /// The paths [`Client::send`] would use for one request, as peer ids: for each copy its
    /// three forward hops and, per SURB, the two return hops. Exposed for the statistical tests
    /// of path choice; sending uses the same code.
    ///
    /// # Errors
    /// As [`Client::send`]'s routing errors.
    #[doc(hidden)]
    pub fn choose_paths<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        destination: &Destination,
        options: SendOptions,
    ) -> Result<Vec<ChosenPath>, ClientError> {
        Ok(self
            .plan(rng, destination, options)?
            .into_iter()
            .map(|c| {
                (
                    c.hops.each_ref().map(|n| n.peer_id),
                    c.returns
                        .iter()
                        .map(|b| b.each_ref().map(|n| n.peer_id))
                        .collect(),
                )
            })
            .collect())
    }

    /// Path choice (MIX.md §11): uniform, non-repeating, never through the destination nor
    /// an excluded peer.
    fn plan<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        destination: &Destination,
        options: SendOptions,
    ) -> Result<Vec<CopyPlan>, ClientError> {
        let (exit, dest_peer) = match destination {
            Destination::ExitIsDestination(peer) => {
                if self.excluded.contains(peer) {
                    return Err(ClientError::ExcludedDestination(*peer));
                }
                let node = self
                    .pool
                    .get(peer)
                    .ok_or(ClientError::UnknownDestination(*peer))?;
                (Some(node.clone()), Some(*peer))
            }
            Destination::Forward(address) => (None, address::peer_id(&address.peer_id).ok()),
        };
        // Intermediates never include the destination (MIX.md §11).
        let candidates: Vec<&MixNode> = self
            .pool
            .values()
            .filter(|n| Some(n.peer_id) != dest_peer && !self.excluded.contains(&n.peer_id))
            .collect();
        let per_copy = if exit.is_some() { 2 } else { 3 };
        if candidates.len() < per_copy {
            return Err(ClientError::NoRoute {
                needed: per_copy,
                available: candidates.len(),
            });
        }
        // Disjoint groups of two intermediates when there are enough nodes.
        let disjoint = options.redundancy > 1
            && candidates.len()
                >= options
                    .redundancy
                    .saturating_mul(2)
                    .saturating_add(per_copy)
                    .saturating_sub(2);
        let shuffled = if disjoint {
            sample(rng, &candidates, candidates.len())
        } else {
            Vec::new()
        };
        let mut plan = Vec::with_capacity(options.redundancy);
        for copy in 0..options.redundancy {
            let group: Vec<&MixNode> = if disjoint {
                let start = copy.saturating_mul(2);
                shuffled[start..start.saturating_add(2)].to_vec()
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
            let mut returns = Vec::with_capacity(options.surbs);
            for _ in 0..options.surbs {
                let back: Vec<&MixNode> = if options.redundancy > 1 {
                    sample(rng, &group, 2)
                } else {
                    // Nim: two random nodes other than the exit and the destination.
                    let allowed: Vec<&MixNode> = self
                        .pool
                        .values()
                        .filter(|n| {
                            n.peer_id != exit_node.peer_id
                                && Some(n.peer_id) != dest_peer
                                && !self.excluded.contains(&n.peer_id)
                        })
                        .collect();
                    if allowed.len() < 2 {
                        return Err(ClientError::NoRoute {
                            needed: 3,
                            available: self.pool.len(),
                        });
                    }
                    sample(rng, &allowed, 2)
                };
                returns.push([back[0].clone(), back[1].clone()]);
            }
            plan.push(CopyPlan {
                hops: [group[0].clone(), group[1].clone(), exit_node],
                returns,
            });
        }
        Ok(plan)
    }

    /// Opens a reply that reached this client (`mix_core::Action::Reply`). The first reply to
    /// a request wins; the request's other SURBs are forgotten, so later copies are
    /// [`ReplyOutcome::Unknown`].
    pub fn on_reply(&mut self, surb_id: SurbId, payload: &mut [u8; PAYLOAD_LEN]) -> ReplyOutcome {
        let Some(awaited) = self.surbs.get(&surb_id) else {
            return ReplyOutcome::Unknown;
        };
        let (request, hops) = (awaited.request, awaited.hops);
        let body = match awaited.keys.open_reply(payload) {
            Ok(body) => {
                // Every node of the path that brought the reply back works.
                for peer in awaited.hops.iter() {
                    if let Some(meta) = self.meta.get_mut(peer) {
                        meta.strikes = 0;
                        meta.replied_at = self.next_id;
                    }
                }
                body.to_vec()
            }
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
        ReplyOutcome::Delivered {
            request,
            body,
            hops: Box::new(hops),
        }
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
    /// with [`ClientError::Timeout`]). A timed-out request spreads one strike over the `k`
    /// distinct pool nodes on its paths (`1/k` each), skipping those that brought a reply back
    /// after it was sent; [`PoolConfig::max_strikes`] strikes remove a node. So when one relay
    /// dies, the requests in flight through it strike the dead relay but not the live ones on
    /// their paths that kept answering; and a relay that drops packets to frame an honest
    /// node on its paths takes the same share of blame, while the honest node needs
    /// `max_strikes · k` timeouts in a row, with no reply through it in between, to leave.
    pub fn expire(&mut self, now: Instant) -> Vec<RequestId> {
        self.first_hops.retain(|_, until| *until > now);
        let mut expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in &expired {
            if let Some(pending) = self.requests.get(id) {
                let path = pending.path.clone();
                let k = u32::try_from(path.len()).unwrap_or(u32::MAX).max(1);
                let weight = STRIKE.checked_div(k).unwrap_or(STRIKE).max(1);
                for peer in path {
                    // A node that answered since this request left is not the failing one.
                    let suspect = self
                        .meta
                        .get(&peer)
                        .is_some_and(|meta| meta.replied_at <= id.0);
                    if suspect {
                        self.strike(peer, weight, now);
                    }
                }
            }
            self.forget(*id);
        }
        expired
    }

    /// When the next request times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.requests.values().map(|p| p.deadline).min()
    }
}

//! The sender's state, shared by the network client and the sans-IO `SphinxClient`: the
//! `mix-libp2p` [`Client`] (pool, paths, SURBs, pending replies), the mix key the SURB replies
//! are peeled with, a replay filter for them, and the randomness.

use mix_core::{Action, MemoryReplayFilter, NodeSecretKey, PACKET_LEN, ReplayConfig};
use mix_libp2p::client::ReplyOutcome;
use mix_libp2p::{
    Client, Destination, Hops, Instant, MixNode, Multiaddr, Outgoing, PeerId, RequestId,
    SendOptions,
};
use rand_core::{CryptoRng, UnwrapErr};

use crate::error::{Code, MixError};
use crate::options::Network;

/// The browser's randomness: `crypto.getRandomValues` (the OS elsewhere).
pub(crate) type SysRng = UnwrapErr<getrandom::SysRng>;

/// A random source, after checking that one exists (so that later draws cannot fail).
///
/// # Errors
/// `INTERNAL` when the environment has no cryptographic randomness.
pub(crate) fn rng() -> Result<SysRng, MixError> {
    let mut probe = [0u8; 8];
    getrandom::fill(&mut probe).map_err(|e| {
        MixError::new(
            Code::Internal,
            format!("no cryptographic randomness available: {e}"),
        )
    })?;
    Ok(UnwrapErr(getrandom::SysRng))
}

/// What became of a received packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// The reply to `request`.
    Delivered {
        /// The request.
        request: RequestId,
        /// The reply bytes.
        body: Vec<u8>,
        /// The nodes the answering copy went through.
        hops: Box<Hops>,
    },
    /// A reply of `request` that did not open; `exhausted` when it was the last SURB.
    Invalid {
        /// The request.
        request: RequestId,
        /// No SURB of it is left.
        exhausted: bool,
    },
    /// Not a reply this sender awaits (late duplicate, replay, garbage): dropped.
    Ignored,
}

/// See the module docs.
pub(crate) struct Sender<R> {
    client: Client,
    secret: NodeSecretKey,
    replay: MemoryReplayFilter,
    rng: R,
}

impl<R> core::fmt::Debug for Sender<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Replies are few; remember their tags for an hour, as relays do.
const REPLAY: ReplayConfig = ReplayConfig {
    ttl_ms: 60 * 60 * 1000,
    capacity: 1 << 16,
    buckets: 12,
};

impl<R: CryptoRng> Sender<R> {
    /// A sender reachable at `address` (the last hop of its SURBs), routing through `pool`,
    /// with a fresh mix key, building and peeling in `network`'s format and holding first-hop
    /// writes for its sender hold.
    ///
    /// # Errors
    /// `INVALID_OPTIONS` if `address` cannot be written into a packet.
    pub(crate) fn new(
        mut rng: R,
        me: PeerId,
        address: Multiaddr,
        pool: Vec<MixNode>,
        network: Network,
    ) -> Result<Self, MixError> {
        let secret = NodeSecretKey::generate(&mut rng);
        let node = MixNode::new(me, vec![address.clone()], secret.public_key())
            .map_err(|e| MixError::invalid(format!("{address} cannot be a packet address: {e}")))?;
        let mut client = Client::new(node, secret.clone(), mix_core::DelayStrategy::NoSampling)
            .with_format(network.format)
            .with_sender_hold(network.hold);
        for node in pool {
            if node.peer_id != me {
                client.insert_node(node);
            }
        }
        Ok(Self {
            client,
            secret,
            replay: MemoryReplayFilter::new(REPLAY),
            rng,
        })
    }

    /// The client (pool, pending requests).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The client, to change its pool.
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The SURB address.
    pub(crate) fn me(&self) -> &MixNode {
        self.client.me()
    }

    /// The rng.
    pub(crate) fn rng(&mut self) -> &mut R {
        &mut self.rng
    }

    /// Picks the destination: `wanted`, or a uniformly random pool node.
    ///
    /// # Errors
    /// `NO_ROUTE` with an empty pool.
    pub(crate) fn destination(&mut self, wanted: Option<PeerId>) -> Result<PeerId, MixError> {
        if let Some(peer) = wanted {
            return Ok(peer);
        }
        self.client
            .random_node(&mut self.rng)
            .map(|n| n.peer_id)
            .ok_or_else(|| MixError::new(Code::NoRoute, "the mix node pool is empty"))
    }

    /// Builds the packets of one request to `destination` (exit == destination).
    ///
    /// # Errors
    /// The client's errors (`NO_ROUTE`, `PAYLOAD_TOO_LARGE`, `INVALID_OPTIONS`, ...).
    pub(crate) fn send(
        &mut self,
        now: Instant,
        destination: PeerId,
        codec: &str,
        body: &[u8],
        options: SendOptions,
    ) -> Result<(RequestId, Vec<Outgoing>), MixError> {
        Ok(self.client.send(
            &mut self.rng,
            now,
            &Destination::ExitIsDestination(destination),
            codec,
            body,
            options,
        )?)
    }

    /// The wire format.
    pub(crate) fn format(&self) -> mix_core::Format {
        self.client.format()
    }

    /// Peels a packet that reached this sender (in its format) and opens it if it is one of
    /// its replies.
    pub(crate) fn open(&mut self, packet: &mut [u8; PACKET_LEN], now_ms: u64) -> Opened {
        let Ok(action) = mix_core::peel_with(
            self.client.format(),
            &self.secret,
            &mut self.replay,
            now_ms,
            packet.as_mut_slice(),
        ) else {
            return Opened::Ignored;
        };
        let Action::Reply { surb_id, payload } = action else {
            // A browser is not a relay: packets to forward or to exit here are dropped.
            return Opened::Ignored;
        };
        match self.client.on_reply(surb_id, payload) {
            ReplyOutcome::Delivered {
                request,
                body,
                hops,
            } => Opened::Delivered {
                request,
                body,
                hops,
            },
            ReplyOutcome::Invalid { request, exhausted } => Opened::Invalid { request, exhausted },
            ReplyOutcome::Unknown => Opened::Ignored,
        }
    }

    /// Requests past their deadline (forgotten by the client).
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<RequestId> {
        self.client.expire(now)
    }

    /// Forgets a request.
    pub(crate) fn cancel(&mut self, request: RequestId) {
        self.client.cancel(request);
    }
}

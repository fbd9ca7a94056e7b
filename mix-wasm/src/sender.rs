//! The browser's sender: the one sans-IO [`mix_libp2p::Sender`] (pool, paths, SURBs, the
//! request table, reply opening), set up for the browser (a fresh mix key, the network's
//! format and sender hold, the browser's dial order), and its randomness. The network client
//! and the sans-IO `SphinxClient` both run it.

use mix_core::NodeSecretKey;
use mix_libp2p::{MixNode, Multiaddr, PeerId, Sender, SenderEvent};
use rand_core::{CryptoRng, UnwrapErr};

use crate::error::{Code, MixError};
use crate::options::Network;
use crate::transports::{self, Reach};

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

/// The order a browser dials a node's addresses in ([`transports::reach`]).
fn browser_order(addr: &Multiaddr) -> u8 {
    match transports::reach(addr) {
        Reach::WebTransport => 0,
        Reach::WebSocket => 1,
        Reach::Other => 2,
    }
}

/// A sender reachable at `address` (the last hop of its SURBs), routing through `pool`
/// (static entries), with a fresh mix key, building and peeling in `network`'s format and
/// holding first-hop writes for its sender hold.
///
/// # Errors
/// `INVALID_OPTIONS` if `address` cannot be written into a packet.
pub(crate) fn new_sender<R: CryptoRng>(
    rng: &mut R,
    me: PeerId,
    address: Multiaddr,
    pool: Vec<MixNode>,
    network: Network,
) -> Result<Sender, MixError> {
    let secret = NodeSecretKey::generate(rng);
    let node = MixNode::new(me, vec![address.clone()], secret.public_key())
        .map_err(|e| MixError::invalid(format!("{address} cannot be a packet address: {e}")))?;
    let mut sender = Sender::new(node, secret, mix_core::DelayStrategy::NoSampling)
        .with_client(|c| c.with_format(network.format).with_sender_hold(network.hold))
        .with_dial_order(browser_order);
    for node in pool {
        sender.insert_node(node);
    }
    Ok(sender)
}

/// The destination: `wanted`, or a uniformly random pool node.
///
/// # Errors
/// `NO_ROUTE` with an empty pool.
pub(crate) fn destination<R: CryptoRng>(
    sender: &Sender,
    rng: &mut R,
    wanted: Option<PeerId>,
) -> Result<PeerId, MixError> {
    if let Some(peer) = wanted {
        return Ok(peer);
    }
    sender
        .random_node(rng)
        .ok_or_else(|| MixError::new(Code::NoRoute, "the mix node pool is empty"))
}

/// Every event the sender has.
pub(crate) fn events(sender: &mut Sender) -> Vec<SenderEvent> {
    std::iter::from_fn(|| sender.poll_event()).collect()
}

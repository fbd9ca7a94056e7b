//! The Sphinx header (MIX.md §5.1–§5.3): a path ([`Route`] of [`Hop`]s), the sender's secrets
//! along it, the filler and the header `α₀ ‖ β₀ ‖ γ₀`; and the split of a packet buffer into
//! header and payload. Forward packets ([`crate::PacketBuilder`]) and SURBs ([`crate::Surb`])
//! both write their headers here.

use crate::address::Address;
use crate::crypto::{self, ScalarChain};
use crate::delay::Delay;
use crate::error::BuildError;
use crate::keys::{HopKeys, NodePublicKey, SharedSecret};
use crate::params::{
    ADDR_LEN, ALPHA_LEN, BETA_LEN, BETA_TAIL_LEN, DELAY_LEN, EXIT_BLOCK_LEN, FILLER_LEN, GAMMA_LEN,
    HEADER_LEN, K, PACKET_LEN, PATH_LEN, PAYLOAD_LEN, R, ROUTING_BLOCK_LEN, SURB_ID_LEN, T,
};

/// One mix node on a path: where it listens and its X25519 mix key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The node's address (for the first hop: where the sender dials).
    pub address: Address,
    /// The node's mix public key.
    pub public_key: NodePublicKey,
}

/// A path of exactly `L = 3` distinct mix nodes (MIX.md §11), and the delay each of the first
/// two waits before forwarding. The exit never delays: its block carries 0, which is how Nim
/// recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The hops, first to last. For a SURB the last hop is the SURB's creator.
    pub hops: [Hop; PATH_LEN],
    /// `delays[i]` is what hop `i` waits before forwarding to hop `i + 1` (encoded values,
    /// see [`crate::DelayStrategy::for_entry`]).
    pub delays: [Delay; PATH_LEN - 1],
}

impl Route {
    /// The node a packet on this route is first sent to.
    pub const fn first_hop(&self) -> &Address {
        &self.hops[0].address
    }
}

/// Per-path secrets of the sender: `α₀` and each hop's shared secret and keys.
pub(crate) struct PathSecrets {
    pub(crate) alpha0: [u8; 32],
    pub(crate) secrets: [SharedSecret; PATH_LEN],
    pub(crate) keys: [HopKeys; PATH_LEN],
}

impl PathSecrets {
    /// MIX.md §5.1 with the folded scalar chain of [`ScalarChain`].
    pub(crate) fn derive(x: &[u8; 32], route: &Route) -> Result<Self, BuildError> {
        let mut chain = ScalarChain::start(x);
        let alpha0 = chain.alpha();
        let mut alpha = alpha0;
        let mut remaining = PATH_LEN;
        let secrets = route.hops.each_ref().map(|hop| {
            let s = chain.shared_secret(hop.public_key.as_bytes());
            remaining = remaining.saturating_sub(1);
            if remaining > 0 {
                chain.push(&crypto::sha256_2(&alpha, &s));
                alpha = chain.alpha();
            }
            SharedSecret::new(s)
        });
        if secrets.iter().any(SharedSecret::is_zero) {
            return Err(BuildError::WeakPublicKey);
        }
        let keys = secrets.each_ref().map(HopKeys::derive);
        Ok(Self {
            alpha0,
            secrets,
            keys,
        })
    }
}

/// Φ (MIX.md §5.2): the keystream bytes that hops `0..L−1` will XOR into the zero padding
/// they append, so that the last hop's β still authenticates.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "header offsets of compile-time constants, i < PATH_LEN <= R"
)]
fn filler(keys: &[HopKeys; PATH_LEN]) -> [u8; FILLER_LEN] {
    const _: () = assert!(K == 16, "offsets below are in 16-byte AES blocks");
    let mut phi = [0u8; FILLER_LEN];
    for (i, hop_keys) in (1..PATH_LEN).zip(keys) {
        // Φ ‖ 0₁₁₂, keyed by hop i−1, from byte ((t+1)(r−i)+t+2)·k of its stream.
        let offset_blocks = ((T + 1) * (R - i) + T + 2) as u128;
        if let Some(prefix) = phi.get_mut(..ROUTING_BLOCK_LEN * i) {
            hop_keys.header().apply_from_block(offset_blocks, prefix);
        }
    }
    phi
}

/// Writes `α₀ ‖ β₀ ‖ γ₀` (MIX.md §5.3). `exit_address` is the destination (or zeros) and
/// `surb_id` is zeros for a forward header.
pub(crate) fn write_header(
    path: &PathSecrets,
    route: &Route,
    exit_address: &[u8; ADDR_LEN],
    surb_id: &[u8; SURB_ID_LEN],
    header: &mut [u8; HEADER_LEN],
) {
    let (alpha, rest) = header.split_at_mut(ALPHA_LEN);
    alpha.copy_from_slice(&path.alpha0);
    let (beta, gamma_out) = rest.split_at_mut(BETA_LEN);

    let [.., last] = &path.keys;
    let (exit_block, filler_part) = beta.split_at_mut(EXIT_BLOCK_LEN);
    exit_block.fill(0);
    let (address, after_address) = exit_block.split_at_mut(ADDR_LEN);
    address.copy_from_slice(exit_address);
    // The exit's delay is zero; the SURB id follows it.
    if let Some(id) = after_address.get_mut(DELAY_LEN..DELAY_LEN + SURB_ID_LEN) {
        id.copy_from_slice(surb_id);
    }
    last.header().apply(exit_block);
    filler_part.copy_from_slice(&filler(&path.keys));
    let mut gamma = last.mac(beta);

    // Hops L−2 … 0: next address ‖ delay ‖ γ of the next hop ‖ first 464 bytes of its β.
    let next_hops = route.hops.iter().skip(1);
    let layers = path.keys.iter().zip(next_hops).zip(&route.delays).rev();
    for ((keys, next), delay) in layers {
        beta.copy_within(..BETA_TAIL_LEN, ROUTING_BLOCK_LEN);
        let block = next
            .address
            .to_bytes()
            .into_iter()
            .chain(delay.to_be_bytes())
            .chain(gamma);
        for (b, v) in beta.iter_mut().zip(block) {
            *b = v;
        }
        keys.header().apply(beta);
        gamma = keys.mac(beta);
    }
    gamma_out.copy_from_slice(&gamma);
}

const _: () = assert!(GAMMA_LEN == K && ADDR_LEN + DELAY_LEN + GAMMA_LEN == ROUTING_BLOCK_LEN);

pub(crate) const TOO_SMALL: BuildError = BuildError::BufferTooSmall {
    required: PACKET_LEN,
};

/// The header and payload areas at the front of a caller's buffer.
pub(crate) fn packet_parts(
    out: &mut [u8],
) -> Result<(&mut [u8; HEADER_LEN], &mut [u8; PAYLOAD_LEN]), BuildError> {
    let packet = out.get_mut(..PACKET_LEN).ok_or(TOO_SMALL)?;
    let (header, payload) = packet
        .split_first_chunk_mut::<HEADER_LEN>()
        .ok_or(TOO_SMALL)?;
    Ok((header, payload.try_into().map_err(|_| TOO_SMALL)?))
}

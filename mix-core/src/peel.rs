//! Per-hop processing (MIX.md §5.5, MIX-LIONESS.md §5; Nim `checkReplay` +
//! `processSphinxPacket`).
//!
//! The steps are public so a relay can arrange them, e.g. check replay tags in a batch:
//!
//! 1. [`NodeSecretKey::hop_secrets_with`]: the α rules (not all zero, canonical), one X25519
//!    (`s = X25519(sk, α)`, refused if zero) and the key derivation.
//! 2. [`HopSecrets::replay_tag`]: `SHA-256(s)` in LIP-183, `SHA-256(α ‖ s)` in v0.39.
//! 3. [`HopSecrets::verify_mac`]: γ against β, in constant time.
//! 4. [`VerifiedHop::peel_in_place`]: decrypt β and δ in place (δ: LIONESS decryption in
//!    LIP-183, the XOR keystream in v0.39) and decide the role with Nim's rule (step 8); at
//!    the exit check δ's zero prefix in constant time; for a forward hop compute
//!    `α' = X25519(SHA-256(α ‖ s), α)` and rewrite the buffer into the outgoing packet.
//!
//! Step 1 applies LIP-183's α rules in both formats. X25519 ignores α's top bit, so flipping
//! it leaves the shared secret and γ valid while changing v0.39's replay tag, which hashes the
//! raw bytes: a v0.39 Nim relay processes such a replay again and emits a second packet
//! towards the next hop (where it then fails), exactly the observable replay that tags exist
//! to prevent. LIP-183 Nim refuses such an α, as we always did.
//!
//! [`peel`] runs them in that order with a [`ReplayFilter`], checking the MAC *before* it
//! records the tag, in both formats (LIP-183 Nim does too; v0.39 Nim recorded first, so a
//! forged packet that copies a genuine packet's α, hence its tag, with a garbled β would get
//! the genuine packet dropped as a replay). A packet whose exit payload then fails its zero
//! prefix has had its tag recorded, so its replay is refused as a replay, as in Nim.

use core::fmt;

use crate::address::Address;
use crate::crypto::{self, Point};
use crate::delay::Delay;
use crate::error::{DecodeError, PeelError};
use crate::format::Format;
use crate::keys::{HopKeys, NodeSecretKey, SharedSecret};
use crate::params::{
    ADDR_LEN, ALPHA_LEN, BETA_LEN, DECRYPTED_BETA_LEN, DELAY_LEN, EXIT_ZERO_RUN_LEN, GAMMA_LEN,
    HEADER_LEN, K, MESSAGE_LEN, PACKET_LEN, PAYLOAD_LEN, PAYLOAD_ZERO_PREFIX_LEN,
    ROUTING_BLOCK_LEN, SURB_ID_LEN, T,
};
use crate::payload::ExitMessage;
use crate::replay::{ReplayFilter, ReplayTag};
use crate::surb::SurbId;
use crate::util::Reader;
use zeroize::Zeroize;

/// What a hop must do with a packet it has peeled.
#[derive(Debug)]
pub enum Action<'a> {
    /// Intermediate hop: after `delay` (the encoded value; sample it with the network's
    /// [`crate::DelayStrategy::for_hop`]), send `packet` to `next_hop`. The caller's buffer
    /// holds the outgoing packet.
    Forward {
        /// Where to send the packet.
        next_hop: Address,
        /// The encoded delay for this hop.
        delay: Delay,
        /// The outgoing packet (the caller's buffer, rewritten).
        packet: &'a [u8; PACKET_LEN],
    },
    /// Exit: deliver `message` to `destination`, or to this node's own handler for the
    /// message's codec when `destination` is `None` (exit == destination, MIX.md §7.1).
    Exit {
        /// The destination, or `None` when the exit is the destination.
        destination: Option<Address>,
        /// The decoded message.
        message: ExitMessage<'a>,
    },
    /// This node created the SURB the packet travelled on: open `payload` with the
    /// [`crate::SurbKeys`] filed under `surb_id`.
    Reply {
        /// The SURB id from the exit block.
        surb_id: SurbId,
        /// δ after this hop's layer, inside the caller's buffer.
        payload: &'a mut [u8; PAYLOAD_LEN],
    },
}

impl NodeSecretKey {
    /// [`NodeSecretKey::hop_secrets_with`] in the default format ([`Format::Lip183`]).
    ///
    /// # Errors
    /// As [`NodeSecretKey::hop_secrets_with`].
    pub fn hop_secrets(&self, packet: &[u8]) -> Result<HopSecrets, PeelError> {
        self.hop_secrets_with(Format::default(), packet)
    }

    /// Step 1: the shared secret with the packet's sender and the keys derived from it, for
    /// a packet of `format`.
    ///
    /// # Errors
    /// [`PeelError::Length`] unless `packet` is exactly [`PACKET_LEN`] bytes;
    /// [`PeelError::AlphaZero`], [`PeelError::AlphaNonCanonical`] or
    /// [`PeelError::AlphaLowOrder`] by the α rules of MIX-LIONESS.md §5, in both formats. No
    /// honest sender breaks them: α is an X25519 output. A non-canonical α (top bit set, or
    /// ≥ p) names the same point as a canonical one, so it yields the same shared secret and
    /// passes the MAC, but v0.39's replay tag hashes the raw bytes: accepting it would let a
    /// replayed packet with α's top bit flipped through the filter. A small-order α gives a
    /// zero shared secret: the layer would protect nothing.
    pub fn hop_secrets_with(&self, format: Format, packet: &[u8]) -> Result<HopSecrets, PeelError> {
        let packet: &[u8; PACKET_LEN] = packet.try_into().map_err(|_| PeelError::Length)?;
        let alpha = *packet.first_chunk::<ALPHA_LEN>().ok_or(PeelError::Length)?;
        // α is public: these checks need not be constant time.
        if alpha == [0u8; ALPHA_LEN] {
            return Err(PeelError::AlphaZero);
        }
        if !crypto::is_canonical_u(&alpha) {
            return Err(PeelError::AlphaNonCanonical);
        }
        let point = Point::decode(&alpha);
        let shared = SharedSecret::new(point.mul_clamped(self.as_bytes()));
        if shared.is_zero() {
            return Err(PeelError::AlphaLowOrder);
        }
        let blinder = crypto::sha256_2(&alpha, shared.as_bytes());
        let replay_tag = match format {
            Format::Lip183 => ReplayTag::new(crypto::sha256_2(shared.as_bytes(), &[])),
            Format::V039 => ReplayTag::new(blinder),
        };
        Ok(HopSecrets {
            keys: HopKeys::derive(&shared),
            shared,
            replay_tag,
            blinder,
            alpha,
            point,
            format,
        })
    }
}

/// One hop's secrets for one packet (steps 1–2 done), in the format they were derived for.
pub struct HopSecrets {
    shared: SharedSecret,
    keys: HopKeys,
    /// `SHA-256(s)` (LIP-183) or `SHA-256(α ‖ s)` (v0.39).
    replay_tag: ReplayTag,
    /// `SHA-256(α ‖ s)`, the blinding factor (both formats).
    blinder: [u8; 32],
    alpha: [u8; ALPHA_LEN],
    point: Point,
    format: Format,
}

impl Drop for HopSecrets {
    fn drop(&mut self) {
        self.blinder.zeroize();
    }
}

impl HopSecrets {
    /// The format these secrets were derived for.
    pub const fn format(&self) -> Format {
        self.format
    }

    /// The blinding factor `b = SHA-256(α ‖ s)` (MIX.md §5.5 step 9, both formats). Like the
    /// shared secret, it links this hop's input and output packets: keep it secret.
    pub const fn blinding_factor(&self) -> &[u8; 32] {
        &self.blinder
    }

    /// `s = X25519(sk, α)`.
    pub const fn shared_secret(&self) -> &SharedSecret {
        &self.shared
    }

    /// The derived keys.
    pub const fn keys(&self) -> &HopKeys {
        &self.keys
    }

    /// Step 2: the replay tag, `SHA-256(s)` in LIP-183 and `SHA-256(α ‖ s)` in v0.39.
    pub const fn replay_tag(&self) -> &ReplayTag {
        &self.replay_tag
    }

    /// Step 3: checks γ over β in constant time.
    ///
    /// # Errors
    /// [`PeelError::Length`] unless `packet` is exactly [`PACKET_LEN`] bytes;
    /// [`PeelError::Rejected`] if `packet` is not the one these secrets were derived from
    /// or γ does not match.
    pub fn verify_mac(self, packet: &[u8]) -> Result<VerifiedHop, PeelError> {
        let (alpha, beta, gamma) = split_header(packet)?;
        if *alpha == self.alpha && self.keys.verify_mac(beta, gamma) {
            Ok(VerifiedHop {
                gamma: *gamma,
                secrets: self,
            })
        } else {
            Err(PeelError::Rejected)
        }
    }
}

/// α, β and γ of a packet.
#[expect(clippy::type_complexity, reason = "three named fixed-size fields")]
fn split_header(
    packet: &[u8],
) -> Result<(&[u8; ALPHA_LEN], &[u8; BETA_LEN], &[u8; GAMMA_LEN]), PeelError> {
    let packet: &[u8; PACKET_LEN] = packet.try_into().map_err(|_| PeelError::Length)?;
    let mut r = Reader::new(packet);
    let alpha = r.take_array::<ALPHA_LEN>().ok_or(PeelError::Length)?;
    let beta = r.take_array::<BETA_LEN>().ok_or(PeelError::Length)?;
    let gamma = r.take_array::<GAMMA_LEN>().ok_or(PeelError::Length)?;
    Ok((alpha, beta, gamma))
}

impl fmt::Debug for HopSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HopSecrets").finish_non_exhaustive()
    }
}

/// Secrets of a packet whose γ has been verified (step 3 done).
pub struct VerifiedHop {
    secrets: HopSecrets,
    gamma: [u8; GAMMA_LEN],
}

impl VerifiedHop {
    /// The replay tag (see [`HopSecrets::replay_tag`]).
    pub const fn replay_tag(&self) -> &ReplayTag {
        &self.secrets.replay_tag
    }

    /// The format of the packet.
    pub const fn format(&self) -> Format {
        self.secrets.format
    }

    /// Step 4: decrypts the packet in place and says what to do with it.
    ///
    /// # Errors
    /// [`PeelError::Length`] unless `packet` is exactly [`PACKET_LEN`] bytes;
    /// [`PeelError::Rejected`] if `packet` is not the verified packet (its α or γ changed);
    /// [`PeelError::PayloadIntegrity`] if an exit payload does not start with 16 zero bytes
    /// (δ stays decrypted in the buffer); [`PeelError::Malformed`] if the authenticated routing
    /// block matches no role or holds an invalid address, or the exit message does not decode.
    pub fn peel_in_place(self, packet: &mut [u8]) -> Result<Action<'_>, PeelError> {
        self.peel_in_place_with_services(packet, &[])
    }

    /// [`VerifiedHop::peel_in_place`] at a node with service handlers (MIX-LIONESS.md §6
    /// line B) for the codecs in `services`: a LIP-183 exit == destination message for one of
    /// them is returned whole as [`ExitMessage::Service`] (see
    /// [`ExitMessage::decode_with_services`] and the [`crate::payload`] docs for why the
    /// exit must say so).
    ///
    /// # Errors
    /// As [`VerifiedHop::peel_in_place`].
    pub fn peel_in_place_with_services<'a>(
        self,
        packet: &'a mut [u8],
        services: &[&str],
    ) -> Result<Action<'a>, PeelError> {
        let secrets = &self.secrets;
        let (alpha, beta, gamma) = split_header(packet)?;
        // The buffer must still be the packet whose γ was verified.
        if *alpha != secrets.alpha || *gamma != self.gamma {
            return Err(PeelError::Rejected);
        }
        // B = AES-CTR(β ‖ 0₁₁₂)  (step 6)
        let mut b = [0u8; DECRYPTED_BETA_LEN];
        for (d, s) in b.iter_mut().zip(beta) {
            *d = *s;
        }
        secrets.keys.header().apply(&mut b);

        let packet: &mut [u8; PACKET_LEN] = packet.try_into().map_err(|_| PeelError::Length)?;
        // δ' (step 7)
        let delta = packet.get_mut(HEADER_LEN..).ok_or(PeelError::Length)?;
        match secrets.format {
            Format::Lip183 => secrets
                .keys
                .lioness()
                .and_then(|layer| layer.decrypt(delta))
                .ok_or(PeelError::Length)?,
            Format::V039 => secrets.keys.payload().apply(delta),
        }

        match classify(&b) {
            Role::Exit => {
                let destination = Address::decode_optional(slice(&b, 0, ADDR_LEN)?)
                    .map_err(PeelError::Malformed)?;
                let payload = packet.get(HEADER_LEN..).ok_or(PeelError::Length)?;
                let (zeros, chunk) = payload
                    .split_first_chunk::<PAYLOAD_ZERO_PREFIX_LEN>()
                    .ok_or(PeelError::Length)?;
                if !crypto::ct_is_zero(zeros) {
                    return Err(PeelError::PayloadIntegrity);
                }
                let chunk: &[u8; MESSAGE_LEN] = chunk.try_into().map_err(|_| PeelError::Length)?;
                let message = ExitMessage::decode_with_services(
                    secrets.format,
                    chunk,
                    destination.is_none(),
                    services,
                )
                .map_err(PeelError::Malformed)?;
                Ok(Action::Exit {
                    destination,
                    message,
                })
            }
            Role::Reply => {
                let id = slice(&b, T * K, SURB_ID_LEN)?;
                let surb_id = SurbId::from_bytes(id.try_into().map_err(|_| PeelError::Length)?);
                let payload = packet.get_mut(HEADER_LEN..).ok_or(PeelError::Length)?;
                let payload = payload.try_into().map_err(|_| PeelError::Length)?;
                Ok(Action::Reply { surb_id, payload })
            }
            Role::Malformed => Err(PeelError::Malformed(DecodeError::RoutingBlock)),
            Role::Intermediate => {
                let next_hop =
                    Address::from_bytes(slice(&b, 0, ADDR_LEN)?).map_err(PeelError::Malformed)?;
                let delay_bytes = slice(&b, ADDR_LEN, DELAY_LEN)?;
                let delay =
                    Delay::from_be_bytes(delay_bytes.try_into().map_err(|_| PeelError::Length)?);
                let alpha_next = secrets.point.mul_clamped(&secrets.blinder);
                // Outgoing header: α' ‖ B[112..688) ‖ B[96..112)  (step 8)
                let parts = alpha_next
                    .iter()
                    .chain(slice(&b, ROUTING_BLOCK_LEN, BETA_LEN)?)
                    .chain(slice(&b, ADDR_LEN + DELAY_LEN, GAMMA_LEN)?);
                for (h, v) in packet.iter_mut().take(HEADER_LEN).zip(parts) {
                    *h = *v;
                }
                Ok(Action::Forward {
                    next_hop,
                    delay,
                    packet,
                })
            }
        }
    }
}

impl fmt::Debug for VerifiedHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedHop").finish_non_exhaustive()
    }
}

/// `len` bytes of `b` from `start`.
fn slice(b: &[u8], start: usize, len: usize) -> Result<&[u8], PeelError> {
    start
        .checked_add(len)
        .and_then(|end| b.get(start..end))
        .ok_or(PeelError::Length)
}

enum Role {
    Intermediate,
    Exit,
    Reply,
    Malformed,
}

/// Nim's role rule (MIX.md §5.5 step 8): the exit zero run at `B[112..352)` marks a final
/// block; then a zero delay+id means exit, a zero address+delay means reply.
fn classify(b: &[u8; DECRYPTED_BETA_LEN]) -> Role {
    let is_zero = |start: usize, len: usize| {
        start
            .checked_add(len)
            .and_then(|end| b.get(start..end))
            .is_some_and(|s| s.iter().all(|x| *x == 0))
    };
    if !is_zero(ROUTING_BLOCK_LEN, EXIT_ZERO_RUN_LEN) {
        Role::Intermediate
    } else if is_zero(ADDR_LEN, ROUTING_BLOCK_LEN - ADDR_LEN) {
        Role::Exit
    } else if is_zero(0, T * K) {
        Role::Reply
    } else {
        Role::Malformed
    }
}

/// [`peel_with`] in the default format ([`Format::Lip183`]).
///
/// # Errors
/// As [`peel_with`].
pub fn peel<'a, F: ReplayFilter + ?Sized>(
    key: &NodeSecretKey,
    replay: &mut F,
    now_ms: u64,
    packet: &'a mut [u8],
) -> Result<Action<'a>, PeelError> {
    peel_with(Format::default(), key, replay, now_ms, packet)
}

/// Steps 1–4 with a replay filter: the whole per-hop processing of one received packet of
/// `format`. The tag is recorded only after γ verified.
///
/// `now_ms` is the caller's clock, in milliseconds, for the filter's expiry.
///
/// # Errors
/// As [`NodeSecretKey::hop_secrets_with`], [`HopSecrets::verify_mac`] and
/// [`VerifiedHop::peel_in_place`]; [`PeelError::Replay`] when the filter refuses the tag.
pub fn peel_with<'a, F: ReplayFilter + ?Sized>(
    format: Format,
    key: &NodeSecretKey,
    replay: &mut F,
    now_ms: u64,
    packet: &'a mut [u8],
) -> Result<Action<'a>, PeelError> {
    let verified = key.hop_secrets_with(format, packet)?.verify_mac(packet)?;
    replay.check_and_insert(verified.replay_tag(), now_ms)?;
    verified.peel_in_place(packet)
}

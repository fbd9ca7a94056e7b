//! Sphinx packets of the libp2p mix protocol (`/mix/1.0.0`), byte-compatible with the Nim
//! implementation (spec digests: `shared/spec/MIX.md`, `shared/spec/MIX-LIONESS.md`).
//!
//! # Wire formats
//! Two formats share the protocol id, the packet size and the header bytes, and nothing on the
//! wire tells them apart, so a deployment picks one ([`Format`], MIX-LIONESS.md §10):
//!
//! * [`Format::Lip183`], the **default**: the current upstream format (LIP-183). δ is a LIONESS
//!   wide-block cipher per hop (a flipped bit garbles the whole payload, which the exit and the
//!   reply's creator detect), the padded message has no seqNo trailer (3966 data bytes), the
//!   replay tag is `SHA-256(s)`.
//! * [`Format::V039`]: the format deployed with logos-delivery v0.39: δ is AES-128-CTR
//!   (malleable beyond its zero prefix), a 4-byte seqNo trailer (3962 data bytes), the replay
//!   tag is `SHA-256(α ‖ s)`.
//!
//! Entry points without a format ([`PacketBuilder::new`], [`Surb::create`], [`peel()`],
//! [`NodeSecretKey::hop_secrets`], [`max_message_len`]) use the default; each has a sibling
//! or setter taking one ([`PacketBuilder::format`], [`Surb::create_with_format`],
//! [`peel_with`], [`NodeSecretKey::hop_secrets_with`], [`Format::max_message_len`]). SURBs,
//! SURB keys and hop secrets remember their format, so an exit answers and a creator opens in
//! the format the packet was peeled or the SURB made in.
//!
//! The crate is pure: no I/O, no clock, no OS randomness. Randomness is an `rng` argument
//! (`rand_core` 0.10 traits), time is a `now_ms` argument, delays are returned values, and
//! packets are built and peeled in caller-owned buffers. Building and peeling need neither
//! `std` nor `alloc`; the `alloc` feature (default) adds the in-memory replay filter.
//!
//! # Sender
//! ```
//! use mix_core::*;
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # let mut rng = ChaCha20Rng::from_seed([7; 32]);
//! # let keys: Vec<_> = (0..4).map(|_| NodeSecretKey::generate(&mut rng)).collect();
//! # let addr = |i: u8| Address::direct(core::net::Ipv4Addr::LOCALHOST, Transport::Tcp,
//! #     4000 + u16::from(i), PeerIdBytes::from_secp256k1_public_key(&[2; 33]).unwrap());
//! # let hop = |i: usize| Hop { address: addr(i as u8), public_key: keys[i].public_key() };
//! // Three distinct mix nodes chosen from the pool; the last one is the exit.
//! let route = Route { hops: [hop(0), hop(1), hop(2)], delays: [Delay::from_millis(1); 2] };
//! // A return path ending at ourselves (node 3 here), for the reply.
//! let back = Route { hops: [hop(1), hop(0), hop(3)], delays: [Delay::ZERO; 2] };
//! let (surb, surb_keys) = Surb::create(&mut rng, &back)?;
//!
//! let mut packet = [0u8; PACKET_LEN];
//! PacketBuilder::new(&route)
//!     .surbs(core::slice::from_ref(&surb))
//!     .build(&mut rng, "/vac/waku/lightpush/3.0.0", b"request", &mut packet)?;
//! // Send `packet` to route.first_hop() on /mix/1.0.0; file `surb_keys` under its id.
//!
//! // Every hop (the exit is the destination here).
//! let mut replay = MemoryReplayFilter::new(ReplayConfig::default());
//! let mut reply = [0u8; PACKET_LEN];
//! for i in 0..3 {
//!     match peel(&keys[i], &mut replay, 0, &mut packet)? {
//!         Action::Forward { next_hop, delay, .. } => { /* wait, send to next_hop */ }
//!         Action::Exit { destination: None, message: ExitMessage::Request { codec, surbs, body } } => {
//!             assert_eq!((codec, body), ("/vac/waku/lightpush/3.0.0", &b"request"[..]));
//!             // Answer through every SURB (Nim does); here there is one.
//!             for surb in surbs.iter() {
//!                 surb.build_reply(&mut rng, b"response", &mut reply)?;
//!             }
//!         }
//!         other => unreachable!("{other:?}"),
//!     }
//! }
//! // The reply travels the return path; at its end, ourselves:
//! for i in [1, 0, 3] {
//!     match peel(&keys[i], &mut replay, 0, &mut reply)? {
//!         Action::Forward { .. } => {}
//!         Action::Reply { surb_id, payload } => {
//!             assert_eq!(surb_id, surb_keys.id());
//!             assert_eq!(surb_keys.open_reply(payload)?, b"response");
//!         }
//!         other => unreachable!("{other:?}"),
//!     }
//! }
//! # Ok::<(), mix_core::Error>(())
//! ```
//!
//! # Hop
//! [`peel()`] (or [`peel_with`] a format) is the whole per-hop processing; its steps are public
//! too (see [`peel`](mod@peel) module docs): [`NodeSecretKey::hop_secrets_with`] →
//! [`HopSecrets::replay_tag`] → [`HopSecrets::verify_mac`] → [`VerifiedHop::peel_in_place`].
//! An exit with service handlers (LIP-183 line B) uses
//! [`VerifiedHop::peel_in_place_with_services`]; see [`payload`] for why it must say so.
//!
//! # Errors and secrets
//! Errors are small `Copy` enums with static messages (one type per operation, and [`Error`]
//! for `?`). Nothing from the wire panics. Secret types (LIONESS round keys included) zeroize
//! on drop and never print their bytes; MACs and zero prefixes are compared in constant time.
//!
//! # Performance
//! Packet creation folds Nim's chain of `i+1` ladders per hop into one variable-base and one
//! fixed-base multiplication per hop, and on-curve points are multiplied in Edwards form
//! (vectorised on x86-64); the golden vectors prove both byte-identical to the ladder.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::arithmetic_side_effects
    )
)]
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
#[macro_use]
extern crate std;

mod address;
mod builder;
mod crypto;
mod delay;
mod error;
mod format;
mod header;
mod keys;
pub mod params;
pub mod payload;
pub mod peel;
mod replay;
mod reply;
mod surb;
mod util;

pub use address::{Address, PEER_ID_LEN, PeerIdBytes, Transport};
pub use builder::PacketBuilder;
pub use delay::{
    DEFAULT_MEAN_DELAY, DEFAULT_NEGLIGIBLE_PROB, Delay, DelayStrategy, SPAM_PROTECTION_DELAY_FLOOR,
    sample_truncated_exponential,
};
pub use error::{BuildError, DecodeError, Error, PeelError, ReplayError, SurbError};
pub use format::{Format, ParseFormatError};
pub use header::{Hop, Route};
pub use keys::{HopKeys, NodePublicKey, NodeSecretKey, SharedSecret};
pub use params::{
    COVER_CODEC, HEADER_LEN, MAX_CODEC_LEN, MAX_SURBS, MESSAGE_LEN, PACKET_LEN, PATH_LEN,
    PAYLOAD_LEN, SURB_LEN,
};
pub use payload::{ExitMessage, MAX_REPLY_LEN, max_message_len};
pub use peel::{Action, HopSecrets, VerifiedHop, peel, peel_with};
pub use replay::{FINGERPRINT_LEN, ReplayFilter, ReplayTag};
#[cfg(feature = "alloc")]
pub use replay::{MemoryReplayFilter, ReplayConfig};
pub use surb::{LEGACY_SURB_KEYS_LEN, SURB_KEYS_LEN, Surb, SurbId, SurbKeys, Surbs};

/// The raw primitives of MIX.md §3 and MIX-LIONESS.md §1, for test vectors and benchmarks.
/// Not a stable API: the packet types above are the interface.
#[doc(hidden)]
pub mod hazmat {
    /// `X25519(scalar, u)` (RFC 7748, clamped).
    pub fn x25519(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
        crate::crypto::x25519(scalar, u)
    }

    /// `SHA-256(label ‖ secret)[0..16)`.
    pub fn kdf(label: &[u8], secret: &[u8]) -> [u8; 16] {
        crate::crypto::kdf(label, secret)
    }

    /// XORs the AES-128-CTR keystream for `key`/`iv`, from block `offset_blocks`, into `buf`.
    pub fn aes128_ctr(key: [u8; 16], iv: [u8; 16], offset_blocks: u128, buf: &mut [u8]) {
        crate::crypto::Keystream::from_parts(key, iv).apply_from_block(offset_blocks, buf);
    }

    /// `HMAC-SHA-256(key, data)[0..16)`.
    pub fn mac16(key: &[u8; 16], data: &[u8]) -> [u8; 16] {
        crate::crypto::mac16(key, data)
    }

    /// The LIONESS cipher of LIP-183 (MIX-LIONESS.md §1), keyed by a seed of at least 16
    /// bytes; in place, no allocation, round keys zeroized on drop.
    #[derive(Clone)]
    pub struct Lioness(crate::crypto::Lioness);

    impl Lioness {
        /// The shortest block LIONESS accepts: 64 bytes.
        pub const MIN_BLOCK_LEN: usize = crate::crypto::LIONESS_MIN_BLOCK;

        /// Derives the round keys `SHA-256("lioness_key<i>" ‖ seed)`; `None` for a seed
        /// shorter than 16 bytes.
        pub fn new(seed: &[u8]) -> Option<Self> {
            crate::crypto::Lioness::new(seed).map(Self)
        }

        /// The round keys `K₁…K₄`.
        pub fn round_keys(&self) -> &[[u8; 32]; 4] {
            self.0.keys()
        }

        /// Encrypts `block` in place; `None` (block untouched) if shorter than 64 bytes.
        pub fn encrypt(&self, block: &mut [u8]) -> Option<()> {
            self.0.encrypt(block)
        }

        /// Decrypts `block` in place; `None` (block untouched) if shorter than 64 bytes.
        pub fn decrypt(&self, block: &mut [u8]) -> Option<()> {
            self.0.decrypt(block)
        }
    }

    impl core::fmt::Debug for Lioness {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Lioness").finish_non_exhaustive()
        }
    }
}

/// The protocol id of the mix stream protocol (MIX.md §1).
pub const PROTOCOL_ID: &str = "/mix/1.0.0";

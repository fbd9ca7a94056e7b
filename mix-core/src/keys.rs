//! Mix keys (MIX.md §9) and the secrets derived from them (MIX.md §3).
//!
//! A node's mix key is an X25519 key pair, independent of its libp2p identity. Secret types
//! are zeroized on drop and their `Debug` shows no bytes.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{self, Keystream, Lioness, label};
use crate::params::K;
use crate::util::Hex;

/// A node's X25519 mix secret key: 32 bytes, clamped at every use (MIX.md §3, §9).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NodeSecretKey([u8; 32]);

impl NodeSecretKey {
    /// Draws a new key from `rng` (32 random bytes, as Nim's `BearSSL` key generation).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps 32 secret bytes, e.g. nwaku's `--mixkey` or a key file.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for persisting the key. Zeroize the copy when done.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The public key `X25519(sk, 9)` that senders use to reach this node.
    pub fn public_key(&self) -> NodePublicKey {
        NodePublicKey(crypto::x25519_base(&self.0))
    }

    pub(crate) const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for NodeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSecretKey").finish_non_exhaustive()
    }
}

/// A node's X25519 mix public key, as pools and discovery carry it (MIX.md §9, §12).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodePublicKey([u8; 32]);

impl NodePublicKey {
    /// Wraps a 32-byte X25519 public key (a Montgomery u-coordinate).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes of the key.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePublicKey({})", Hex(&self.0))
    }
}

impl fmt::Display for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

/// The 32-byte X25519 output one hop shares with the sender: `s` of MIX.md §5.1.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    pub(crate) const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps 32 secret bytes, e.g. from a vector file or persisted SURB keys.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether the secret is all zero: the other side's key was of small order.
    pub(crate) fn is_zero(&self) -> bool {
        crypto::ct_is_zero(&self.0)
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSecret").finish_non_exhaustive()
    }
}

/// The keys one hop derives from its shared secret with the ASCII labels of MIX.md §3 and
/// MIX-LIONESS.md §2: `aes_key`/`iv` for β, `mac_key` for γ, and for δ either
/// `delta_aes_key`/`delta_iv` (v0.39) or the LIONESS seed `payload_enc_key` (LIP-183). Both
/// payload keys are derived whatever the format (three short hashes), so vectors of either
/// format can be checked.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HopKeys {
    header: Keystream,
    mac_key: [u8; K],
    payload: Keystream,
    payload_enc_key: [u8; 32],
}

impl HopKeys {
    /// Derives the keys from a shared secret.
    pub fn derive(secret: &SharedSecret) -> Self {
        let s = secret.as_bytes();
        Self {
            header: Keystream::header(s),
            mac_key: crypto::kdf(label::MAC_KEY, s),
            payload: Keystream::payload(s),
            payload_enc_key: crypto::sha256_2(label::PAYLOAD_ENC_KEY, s),
        }
    }

    /// LIP-183: the hop's LIONESS seed `pek = SHA-256("payload_enc_key" ‖ s)`, all 32 bytes.
    pub fn payload_enc_key(&self) -> &[u8; 32] {
        &self.payload_enc_key
    }

    /// LIP-183: the hop's LIONESS layer.
    pub(crate) fn lioness(&self) -> Option<Lioness> {
        Lioness::new(&self.payload_enc_key)
    }

    /// `KDF("aes_key", s)`.
    pub fn aes_key(&self) -> &[u8; K] {
        self.header.key()
    }

    /// `KDF("iv", s)`.
    pub fn iv(&self) -> &[u8; K] {
        self.header.iv()
    }

    /// `KDF("mac_key", s)`.
    pub fn mac_key(&self) -> &[u8; K] {
        &self.mac_key
    }

    /// `KDF("delta_aes_key", s)` (v0.39).
    pub fn delta_aes_key(&self) -> &[u8; K] {
        self.payload.key()
    }

    /// `KDF("delta_iv", s)` (v0.39).
    pub fn delta_iv(&self) -> &[u8; K] {
        self.payload.iv()
    }

    pub(crate) fn header(&self) -> &Keystream {
        &self.header
    }

    pub(crate) fn payload(&self) -> &Keystream {
        &self.payload
    }

    pub(crate) fn mac(&self, beta: &[u8]) -> [u8; K] {
        crypto::mac16(&self.mac_key, beta)
    }

    pub(crate) fn verify_mac(&self, beta: &[u8], gamma: &[u8; K]) -> bool {
        crypto::verify_mac16(&self.mac_key, beta, gamma)
    }
}

impl fmt::Debug for HopKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HopKeys").finish_non_exhaustive()
    }
}

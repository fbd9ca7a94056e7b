//! The primitives of MIX.md §3, exactly as the deployed Nim nodes execute them.
//!
//! * X25519 (RFC 7748): every multiplication is a *clamped* scalar multiplication of a
//!   Montgomery u-coordinate. Two byte-identical ways are provided, see [`Point`] and
//!   [`ScalarChain`].
//! * `H` = SHA-256; `KDF(label, secret)` = `SHA-256(label ‖ secret)[0..16)` with ASCII labels.
//! * AES-128-CTR with the whole 128-bit counter block incremented big-endian.
//! * HMAC-SHA-256 truncated to 16 bytes, verified in constant time.
//! * LIONESS (MIX-LIONESS.md §1), the LIP-183 payload cipher, built from the two above.

use aes::Aes128;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::params::K;

/// KDF labels as the Nim code spells them (MIX.md §3; the RFC's Greek `δ_…` is not used).
pub(crate) mod label {
    pub(crate) const AES_KEY: &[u8] = b"aes_key";
    pub(crate) const MAC_KEY: &[u8] = b"mac_key";
    pub(crate) const IV: &[u8] = b"iv";
    pub(crate) const DELTA_AES_KEY: &[u8] = b"delta_aes_key";
    pub(crate) const DELTA_IV: &[u8] = b"delta_iv";
    /// LIP-183: the per-hop LIONESS seed `SHA-256("payload_enc_key" ‖ s)` (MIX-LIONESS.md §2).
    pub(crate) const PAYLOAD_ENC_KEY: &[u8] = b"payload_enc_key";
    /// LIP-183: LIONESS round keys `SHA-256("lioness_key<i>" ‖ seed)`, i = 1..4.
    pub(crate) const LIONESS_KEYS: [&[u8]; 4] = [
        b"lioness_key1",
        b"lioness_key2",
        b"lioness_key3",
        b"lioness_key4",
    ];
}

/// `SHA-256(a ‖ b)`.
pub(crate) fn sha256_2(a: &[u8], b: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(a)
        .chain_update(b)
        .finalize()
        .into()
}

/// The first `k` bytes of a longer value.
fn first_k(bytes: &[u8]) -> [u8; K] {
    let mut out = [0u8; K];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// `KDF(label, secret)`: the first `k` bytes of `SHA-256(label ‖ secret)` (MIX.md §3).
pub(crate) fn kdf(label: &[u8], secret: &[u8]) -> [u8; K] {
    first_k(&sha256_2(label, secret))
}

/// One AES-128-CTR keystream: a key and its initial counter block.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Keystream {
    key: [u8; K],
    iv: [u8; K],
}

impl Keystream {
    fn derive(secret: &[u8], key_label: &[u8], iv_label: &[u8]) -> Self {
        Self {
            key: kdf(key_label, secret),
            iv: kdf(iv_label, secret),
        }
    }

    /// The β keystream of a hop: `aes_key`, `iv`.
    pub(crate) fn header(secret: &[u8]) -> Self {
        Self::derive(secret, label::AES_KEY, label::IV)
    }

    /// A δ keystream: `delta_aes_key`, `delta_iv`, from a hop's shared secret or a SURB's
    /// reply key.
    pub(crate) fn payload(secret: &[u8]) -> Self {
        Self::derive(secret, label::DELTA_AES_KEY, label::DELTA_IV)
    }

    pub(crate) fn from_parts(key: [u8; K], iv: [u8; K]) -> Self {
        Self { key, iv }
    }

    pub(crate) fn key(&self) -> &[u8; K] {
        &self.key
    }

    pub(crate) fn iv(&self) -> &[u8; K] {
        &self.iv
    }

    /// XORs the keystream, from its start, into `buf`.
    pub(crate) fn apply(&self, buf: &mut [u8]) {
        self.apply_from_block(0, buf);
    }

    /// XORs the keystream starting at block `block` (byte offset `16·block`) into `buf`.
    ///
    /// The counter block is advanced as one 128-bit big-endian integer, which is what every
    /// hop's decryption does (nimcrypto `inc128`). Nim's filler helper adds the block count to
    /// the low 64 bits only; the two differ only when those bits overflow (p ≈ 2⁻⁵⁸), and then
    /// Nim's own packet fails the MAC at a later hop. We keep the packet deliverable instead.
    pub(crate) fn apply_from_block(&self, block: u128, buf: &mut [u8]) {
        let counter = u128::from_be_bytes(self.iv)
            .wrapping_add(block)
            .to_be_bytes();
        let mut cipher = Ctr128BE::<Aes128>::new(&self.key.into(), &counter.into());
        cipher.apply_keystream(buf);
    }
}

/// LIONESS's `μ`: the length of the left part of a block and of every round key.
pub(crate) const LIONESS_MU: usize = 32;
/// The shortest block LIONESS accepts (`2μ`).
pub(crate) const LIONESS_MIN_BLOCK: usize = 2 * LIONESS_MU;

/// The LIONESS wide-block cipher as LIP-183 instantiates it (MIX-LIONESS.md §1): four
/// unbalanced Feistel rounds over `L (32) ‖ R (|B| − 32)`, the stream function `S` being
/// AES-128-CTR keyed by `k[0..16)` from the initial counter block `k[16..32)` (the whole
/// block a 128-bit big-endian counter), the hash `H(k, m) = SHA-256(k ‖ m)`.
///
/// Works in place on the caller's buffer and allocates nothing; the round keys are zeroized
/// on drop, and every temporary key is wiped after use.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Lioness {
    keys: [[u8; LIONESS_MU]; 4],
}

impl Lioness {
    /// The round keys `K_i = SHA-256("lioness_key<i>" ‖ seed)`. LIP-183 refuses seeds shorter
    /// than κ = 16 bytes; every seed this crate passes is 16 or 32 bytes.
    pub(crate) fn new(seed: &[u8]) -> Option<Self> {
        if seed.len() < K {
            return None;
        }
        Some(Self {
            keys: label::LIONESS_KEYS.map(|l| sha256_2(l, seed)),
        })
    }

    /// The round keys, for test vectors.
    pub(crate) const fn keys(&self) -> &[[u8; LIONESS_MU]; 4] {
        &self.keys
    }

    /// `R ^= S(k ⊕ L)`.
    fn stream(key: &[u8; LIONESS_MU], left: &[u8; LIONESS_MU], right: &mut [u8]) {
        let mut k = [0u8; LIONESS_MU];
        for ((o, a), b) in k.iter_mut().zip(key).zip(left) {
            *o = a ^ b;
        }
        if let Some((aes_key, iv)) = k.split_first_chunk::<K>()
            && let Ok(iv) = <&[u8; K]>::try_from(iv)
        {
            let mut cipher = Ctr128BE::<Aes128>::new(&(*aes_key).into(), &(*iv).into());
            cipher.apply_keystream(right);
        }
        k.zeroize();
    }

    /// `L ^= H(k, R)`.
    fn hash(key: &[u8; LIONESS_MU], left: &mut [u8; LIONESS_MU], right: &[u8]) {
        let mut digest = sha256_2(key, right);
        for (l, d) in left.iter_mut().zip(&digest) {
            *l ^= d;
        }
        digest.zeroize();
    }

    /// Splits a block into `L` and `R`, or `None` if it is shorter than `2μ`.
    fn split(block: &mut [u8]) -> Option<(&mut [u8; LIONESS_MU], &mut [u8])> {
        if block.len() < LIONESS_MIN_BLOCK {
            return None;
        }
        block.split_first_chunk_mut::<LIONESS_MU>()
    }

    /// Encrypts `block` in place. `None` (and `block` untouched) if it is shorter than 64 bytes.
    pub(crate) fn encrypt(&self, block: &mut [u8]) -> Option<()> {
        let (left, right) = Self::split(block)?;
        let [k1, k2, k3, k4] = &self.keys;
        Self::stream(k1, left, right);
        Self::hash(k2, left, right);
        Self::stream(k3, left, right);
        Self::hash(k4, left, right);
        Some(())
    }

    /// Decrypts `block` in place: the rounds of [`Lioness::encrypt`] in reverse order.
    pub(crate) fn decrypt(&self, block: &mut [u8]) -> Option<()> {
        let (left, right) = Self::split(block)?;
        let [k1, k2, k3, k4] = &self.keys;
        Self::hash(k4, left, right);
        Self::stream(k3, left, right);
        Self::hash(k2, left, right);
        Self::stream(k1, left, right);
        Some(())
    }
}

/// HMAC-SHA-256 keyed with a 16-byte key.
fn hmac(key: &[u8; K], data: &[u8]) -> Hmac<Sha256> {
    // HMAC pads a short key with zeros to the block size; doing so here lets the infallible
    // fixed-size constructor be used.
    let mut block = [0u8; 64];
    if let Some(prefix) = block.get_mut(..K) {
        prefix.copy_from_slice(key);
    }
    let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac.chain_update(data)
}

/// γ = `HMAC-SHA-256(key, data)[0..16)` (MIX.md §3).
pub(crate) fn mac16(key: &[u8; K], data: &[u8]) -> [u8; K] {
    first_k(&hmac(key, data).finalize().into_bytes())
}

/// Checks γ in constant time.
pub(crate) fn verify_mac16(key: &[u8; K], data: &[u8], gamma: &[u8; K]) -> bool {
    hmac(key, data).verify_truncated_left(gamma).is_ok()
}

/// Constant-time "all bytes are zero".
pub(crate) fn ct_is_zero(bytes: &[u8]) -> bool {
    let acc = bytes.iter().fold(0u8, |acc, b| acc | b);
    bool::from(acc.ct_eq(&0))
}

/// Whether `u` is the canonical encoding of a field element: below `p = 2²⁵⁵ − 19`, top bit
/// clear. X25519 outputs always are; X25519 inputs need not be, because RFC 7748 ignores the
/// top bit and reduces mod p, so one point has up to two encodings.
pub(crate) fn is_canonical_u(u: &[u8; 32]) -> bool {
    let [low, middle @ .., top] = u;
    match *top {
        t if t < 0x7f => true,
        0x7f => !(middle.iter().all(|b| *b == 0xff) && *low >= 0xed),
        _ => false,
    }
}

/// `X25519(scalar, u)` by the Montgomery ladder, as RFC 7748 writes it.
pub(crate) fn x25519(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint(*u).mul_clamped(*scalar).to_bytes()
}

/// `X25519(scalar, 9)`, through dalek's precomputed Edwards basepoint table.
pub(crate) fn x25519_base(scalar: &[u8; 32]) -> [u8; 32] {
    EdwardsPoint::mul_base_clamped(*scalar)
        .to_montgomery()
        .to_bytes()
}

/// A u-coordinate decoded once, to be multiplied by several clamped scalars.
///
/// Points on the curve are lifted to Edwards form, where curve25519-dalek's vectorised
/// backends multiply faster than the ladder; `mul_clamped` works on the full unreduced clamped
/// integer, so small-order components are treated exactly as X25519 treats them. The
/// u-coordinate of `k·P` does not depend on the sign chosen for the lift. A u-coordinate on
/// the quadratic twist has no Edwards lift; X25519 still defines a result for it, so those
/// fall back to the ladder. Which branch is taken depends only on the public input.
pub(crate) enum Point {
    Curve(EdwardsPoint),
    Twist(MontgomeryPoint),
}

impl Point {
    pub(crate) fn decode(u: &[u8; 32]) -> Self {
        let m = MontgomeryPoint(*u);
        match m.to_edwards(0) {
            Some(e) => Self::Curve(e),
            None => Self::Twist(m),
        }
    }

    /// `X25519(scalar, u)`.
    pub(crate) fn mul_clamped(&self, scalar: &[u8; 32]) -> [u8; 32] {
        match self {
            Self::Curve(e) => e.mul_clamped(*scalar).to_montgomery().to_bytes(),
            Self::Twist(m) => m.mul_clamped(*scalar).to_bytes(),
        }
    }
}

/// 8⁻¹ mod ℓ, little-endian (checked by a unit test).
const EIGHT_INVERSE: [u8; 32] = [
    0x79, 0x2f, 0xdc, 0xe2, 0x29, 0xe5, 0x06, 0x61, 0xd0, 0xda, 0x1c, 0x7d, 0xb3, 0x9d, 0xd3, 0x07,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x06,
];

/// The sender's chain `x, b₀, b₁, …` of clamped scalars (MIX.md §5.1), folded into one scalar.
///
/// Nim computes `sᵢ = X25519(bᵢ₋₁, …X25519(b₀, X25519(x, yᵢ))…)`: `i+1` ladders for hop `i`,
/// O(L²) in all. Every clamped scalar is a multiple of the cofactor 8, so after the first
/// multiplication the point lies in the prime-order subgroup, where the chain equals one
/// multiplication by the product of the clamped scalars mod ℓ. With `8·yᵢ` in place of `yᵢ`
/// (which removes exactly the small-order part the first clamped multiplication removes)
/// that is `sᵢ = (∏·8⁻¹ mod ℓ)·(8·yᵢ)`, and `αᵢ = ∏·B` is one fixed-base multiplication.
/// So each hop costs one variable-base and one fixed-base multiplication; the golden vectors
/// prove the results byte-identical to the ladder chain. Keys on the twist take the ladder.
pub(crate) struct ScalarChain {
    /// Product of the clamped scalars so far, mod ℓ.
    product: Scalar,
    /// The clamped scalars themselves, for the twist fallback (at most `PATH_LEN`).
    clamped: [[u8; 32]; crate::params::PATH_LEN],
    len: usize,
}

impl ScalarChain {
    /// Starts the chain with the ephemeral secret `x`.
    pub(crate) fn start(x: &[u8; 32]) -> Self {
        let first = clamp_integer(*x);
        let mut clamped = [[0u8; 32]; crate::params::PATH_LEN];
        if let Some(slot) = clamped.first_mut() {
            *slot = first;
        }
        Self {
            product: Scalar::from_bytes_mod_order(first),
            clamped,
            len: 1,
        }
    }

    /// The current α: the base point times every scalar of the chain (`α₀ = X25519(x, 9)`).
    pub(crate) fn alpha(&self) -> [u8; 32] {
        EdwardsPoint::mul_base(&self.product)
            .to_montgomery()
            .to_bytes()
    }

    /// `X25519` of `y` by every scalar of the chain, in order.
    #[allow(
        clippy::arithmetic_side_effects,
        reason = "group and scalar-field arithmetic (mod p, mod l): it cannot overflow"
    )]
    pub(crate) fn shared_secret(&self, y: &[u8; 32]) -> [u8; 32] {
        match MontgomeryPoint(*y).to_edwards(0) {
            Some(point) => {
                let eight_inv = Scalar::from_bytes_mod_order(EIGHT_INVERSE);
                (point.mul_by_cofactor() * (self.product * eight_inv))
                    .to_montgomery()
                    .to_bytes()
            }
            None => {
                let mut u = *y;
                for scalar in self.clamped.iter().take(self.len) {
                    u = x25519(scalar, &u);
                }
                u
            }
        }
    }

    /// Appends the blinding factor `b = SHA-256(α ‖ s)`.
    #[allow(
        clippy::arithmetic_side_effects,
        reason = "scalar-field multiplication (mod l): it cannot overflow"
    )]
    pub(crate) fn push(&mut self, b: &[u8; 32]) {
        let clamped = clamp_integer(*b);
        self.product *= Scalar::from_bytes_mod_order(clamped);
        if let Some(slot) = self.clamped.get_mut(self.len) {
            *slot = clamped;
            self.len = self.len.saturating_add(1);
        }
    }
}

impl Drop for ScalarChain {
    fn drop(&mut self) {
        self.product.zeroize();
        self.clamped.zeroize();
    }
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn h(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    // MIX.md §15.2: the primitive vectors of Nim's test_crypto.nim.
    #[test]
    fn sha256_kdf_and_mac_match_the_nim_primitive_vectors() {
        assert_eq!(
            hex::encode(sha256_2(b"thisis", b"data")),
            "b53a20ecf0814267a83be82f941778ffda4b85fbf93a07847539f645ff5f1b9b"
        );
        assert_eq!(
            hex::encode(kdf(b"", b"thisiskey")),
            "37c9842d37dc404854428a0a3554dcaa"
        );
        assert_eq!(
            hex::encode(kdf(b"", b"")),
            "e3b0c44298fc1c149afbf4c8996fb924"
        );
        // HMAC keys in MIX.md §15.2 are 9 and 0 bytes; `hmac` pads to the block like HMAC does.
        let mac = Hmac::<Sha256>::new_from_slice(b"thisiskey")
            .unwrap()
            .chain_update(b"thisisdata")
            .finalize()
            .into_bytes();
        assert_eq!(hex::encode(&mac[..16]), "b075dd302655e085d35e8cef5dfdf101");
        let mut key16 = [0u8; 16];
        key16[..9].copy_from_slice(b"thisiskey");
        assert_eq!(
            hex::encode(mac16(&key16, b"thisisdata")),
            "b075dd302655e085d35e8cef5dfdf101",
            "zero-padding a short HMAC key must not change the tag"
        );
        assert_eq!(
            hex::encode(mac16(&[0u8; 16], b"")),
            "b613679a0814d9ec772f95d778c35fc5"
        );
    }

    // MIX-LIONESS.md §1: the known answers of Nim's tests/test_lioness.nim.
    #[test]
    #[allow(clippy::cast_possible_truncation, reason = "byte patterns")]
    fn lioness_matches_the_nim_known_answers() {
        let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
        let lioness = Lioness::new(&seed).unwrap();
        assert_eq!(
            hex::encode(lioness.keys()[0]),
            "913e718a554d91846ab91dfef57804f634c10e9a24811e5927ea71abf6f51443"
        );
        assert_eq!(
            hex::encode(lioness.keys()[3]),
            "753e6b589d26ef262aa9fda8a27956183b4e071a34831d343fe6b64c651b942c"
        );
        // S with key 00..1f over 00..2f: the full 128-bit counter of `Ctr128BE`.
        let mut data: [u8; 48] = core::array::from_fn(|i| i as u8);
        Lioness::stream(&seed, &[0u8; 32], &mut data);
        assert_eq!(
            hex::encode(data),
            "07ffed77e5d005699807e41a82999c9c82d3d717cc1994155e60677997e4c017\
             ea001a4411c0de8c4dbfa0078df81355"
        );
        assert_eq!(
            hex::encode(sha256_2(&seed, b"abc")),
            "42fd4a8c529fdb402d577c701b291018f0b2c52207f96e2a057483fd349a9868"
        );
        assert_eq!(
            hex::encode(sha256_2(label::PAYLOAD_ENC_KEY, &seed)),
            "8628ce30f82298838478ebd2744a6a31ef34a7d6a5a600b8e0c7de533510f85d"
        );
        let plain: [u8; 64] = core::array::from_fn(|i| (i + 3) as u8);
        let mut block = plain;
        lioness.encrypt(&mut block).unwrap();
        assert_eq!(
            hex::encode(block),
            "8adf6b9791e82ecf9482a5f6a29368ae84362763a019877064d032bd52a5ef9d\
             58d36ed74ff920fc319822895276f5b1fa07893db9fb0d532a1bd02e0d8459d0"
        );
        lioness.decrypt(&mut block).unwrap();
        assert_eq!(block, plain);
    }

    #[test]
    fn lioness_refuses_short_seeds_and_blocks_and_garbles_everything_on_a_flip() {
        assert!(Lioness::new(&[1u8; 15]).is_none());
        let lioness = Lioness::new(&[1u8; 16]).unwrap();
        let mut short = [5u8; 63];
        assert!(lioness.encrypt(&mut short).is_none());
        assert!(lioness.decrypt(&mut short).is_none());
        assert_eq!(short, [5u8; 63]);
        let mut block = [0u8; 3984];
        lioness.encrypt(&mut block).unwrap();
        for offset in [0, 31, 32, 100, 3983] {
            let mut bad = block;
            bad[offset] ^= 1;
            lioness.decrypt(&mut bad).unwrap();
            assert_ne!(&bad[..16], &[0u8; 16], "offset {offset}");
        }
    }

    #[test]
    fn canonical_u_coordinates_are_those_below_p() {
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        assert!(is_canonical_u(&p_minus_1));
        let mut p = p_minus_1;
        p[0] = 0xed;
        assert!(!is_canonical_u(&p));
        assert!(is_canonical_u(&[0u8; 32]));
        let mut top = [0u8; 32];
        top[31] = 0x80;
        assert!(!is_canonical_u(&top));
        let mut almost = p_minus_1;
        almost[5] = 0xfe;
        almost[0] = 0xff;
        assert!(is_canonical_u(&almost));
    }

    #[test]
    fn mac_verification_rejects_every_single_bit_flip_of_the_tag() {
        let key = [7u8; 16];
        let tag = mac16(&key, b"beta");
        assert!(verify_mac16(&key, b"beta", &tag));
        for bit in 0..128 {
            let mut bad = tag;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify_mac16(&key, b"beta", &bad), "bit {bit}");
        }
    }

    #[test]
    fn keystream_offsets_continue_the_stream_across_a_64_bit_carry() {
        // An IV whose low 64 bits are about to overflow: the seek must carry into the high
        // half exactly as the hop's sequential decryption does.
        let ks = Keystream::from_parts([3u8; 16], h16("00000000000000ffffffffffffffffff"));
        let mut whole = [0u8; 64];
        ks.apply(&mut whole);
        let mut tail = [0u8; 32];
        ks.apply_from_block(2, &mut tail);
        assert_eq!(tail, whole[32..]);
    }

    fn h16(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    #[test]
    fn edwards_multiplication_equals_the_ladder_for_curve_twist_and_small_order_points() {
        let scalar = h("c694c480fcf64472ba82a95f04319d73b63b8c8285117c72c8f08bb4c0e5b310");
        let mut points = vec![
            h("54bfe73515571420e497e1f07a5c287613aa9295726b09a6ec5708478c509403"),
            [0u8; 32],
            {
                let mut one = [0u8; 32];
                one[0] = 1;
                one
            },
            // The order-8 point of RFC 7748 §7 lists, and -1 (a twist point).
            h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            h("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            // A non-canonical encoding (u ≥ p) and one with the top bit set.
            h("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            h("54bfe73515571420e497e1f07a5c287613aa9295726b09a6ec5708478c509483"),
        ];
        for i in 0u8..32 {
            points.push(sha256_2(b"point", &[i]));
        }
        for u in &points {
            assert_eq!(
                Point::decode(u).mul_clamped(&scalar),
                x25519(&scalar, u),
                "u = {}",
                hex::encode(u)
            );
        }
    }

    #[test]
    fn eight_inverse_is_the_inverse_of_eight_mod_l() {
        assert_eq!(
            Scalar::from_bytes_mod_order(EIGHT_INVERSE) * Scalar::from(8u8),
            Scalar::ONE
        );
    }

    #[test]
    fn the_folded_scalar_chain_equals_nims_chain_of_ladders() {
        for seed in 0u8..24 {
            let x = sha256_2(b"x", &[seed]);
            let y = if seed % 3 == 0 {
                // Twist points take the fallback path.
                sha256_2(b"twist?", &[seed])
            } else {
                x25519_base(&sha256_2(b"y", &[seed]))
            };
            let mut chain = ScalarChain::start(&x);
            let alpha0 = chain.alpha();
            assert_eq!(
                alpha0,
                x25519(&x, &{
                    let mut nine = [0u8; 32];
                    nine[0] = 9;
                    nine
                })
            );
            let mut scalars = vec![x];
            let mut alpha = alpha0;
            for step in 0..2u8 {
                let expected = scalars.iter().fold(y, |u, k| x25519(k, &u));
                assert_eq!(chain.shared_secret(&y), expected, "seed {seed} step {step}");
                let b = sha256_2(&alpha, &expected);
                chain.push(&b);
                let next = chain.alpha();
                assert_eq!(next, x25519(&b, &alpha), "alpha, seed {seed} step {step}");
                alpha = next;
                scalars.push(b);
            }
        }
    }
}

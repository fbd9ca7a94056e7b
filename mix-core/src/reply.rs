//! Replies through a SURB (MIX.md §6.2, §6.4; MIX-LIONESS.md §3): the exit builds the reply
//! packet with the [`Surb`] it received, and the SURB's creator opens the reply with its
//! [`SurbKeys`].

use rand_core::CryptoRng;

use crate::crypto::{self, Keystream, Lioness};
use crate::error::{BuildError, SurbError};
use crate::format::Format;
use crate::header::{TOO_SMALL, packet_parts};
use crate::params::{PACKET_LEN, PAYLOAD_LEN, PAYLOAD_ZERO_PREFIX_LEN, SEQ_NO_LEN};
use crate::payload::{self, Outgoing, write_plaintext};
use crate::surb::{Surb, SurbKeys};

impl Surb {
    /// Builds the reply packet an exit sends to [`Surb::first_hop`]: the SURB's header and
    /// one payload layer keyed by `k̃` over `0₁₆ ‖ chunk(codec "", body)` (MIX.md §6.2): in
    /// LIP-183 `LIONESS-Enc(k̃, ·)` with `k̃` as the seed, in v0.39 AES-128-CTR keyed by
    /// `KDF("delta_aes_key"/"delta_iv", k̃)`. Writes the first [`PACKET_LEN`] bytes of `out`
    /// and returns [`PACKET_LEN`]; draws the v0.39 chunk trailer from `rng`.
    ///
    /// # Errors
    /// [`BuildError::BufferTooSmall`] if `out` is shorter than a packet;
    /// [`BuildError::MessageTooLong`] if `body` exceeds the format's
    /// [`Format::max_reply_len`].
    pub fn build_reply<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        body: &[u8],
        out: &mut [u8],
    ) -> Result<usize, BuildError> {
        let mut seq_no = [0u8; SEQ_NO_LEN];
        if self.format == Format::V039 {
            rng.fill_bytes(&mut seq_no);
        }
        self.build_reply_with_fixed_randomness_for_testing_only(seq_no, body, out)
    }

    /// [`Surb::build_reply`] with the chunk trailer given. For test vectors.
    ///
    /// # Errors
    /// As [`Surb::build_reply`].
    #[doc(hidden)]
    pub fn build_reply_with_fixed_randomness_for_testing_only(
        &self,
        seq_no: [u8; SEQ_NO_LEN],
        body: &[u8],
        out: &mut [u8],
    ) -> Result<usize, BuildError> {
        let (header, payload) = packet_parts(out)?;
        write_plaintext(payload, &Outgoing::Reply { body }, self.format, seq_no)?;
        match self.format {
            Format::Lip183 => Lioness::new(&self.reply_key)
                .and_then(|layer| layer.encrypt(payload))
                .ok_or(TOO_SMALL)?,
            Format::V039 => Keystream::payload(&self.reply_key).apply(payload),
        }
        header.copy_from_slice(&self.header);
        Ok(PACKET_LEN)
    }
}

impl SurbKeys {
    /// Opens a reply: removes every layer, checks the 16-byte zero prefix in constant time
    /// and decodes the response (MIX.md §6.4, MIX-LIONESS.md §3). Decrypts `payload` in place
    /// and returns the response bytes inside it.
    ///
    /// * LIP-183: `Enc(pek₂)`, `Enc(pek₁)`, `Enc(pek₀)` (undoing the return hops' LIONESS
    ///   decryptions, the creator's own included), then `Dec(k̃)`.
    /// * v0.39: XOR the keystreams of `k̃`, `s₀`, `s₁`, `s₂` (the creator's own hop added
    ///   `s₂`'s, so this removes every layer).
    ///
    /// `payload` is the one of [`crate::Action::Reply`]: δ after the creator's own hop.
    ///
    /// # Errors
    /// [`SurbError::Length`] unless `payload` is [`PAYLOAD_LEN`] bytes;
    /// [`SurbError::Integrity`] if the prefix is not zero (wrong keys or format, or a
    /// tampered reply: in LIP-183 any flipped bit garbles the whole payload);
    /// [`SurbError::Malformed`] if the opened chunk does not decode, or its codec is not empty.
    pub fn open_reply<'a>(&self, payload: &'a mut [u8]) -> Result<&'a [u8], SurbError> {
        let payload: &mut [u8; PAYLOAD_LEN] = payload.try_into().map_err(|_| SurbError::Length)?;
        match self.format {
            Format::Lip183 => {
                for secret in self.secrets.iter().rev() {
                    let keys = crate::keys::HopKeys::derive(secret);
                    keys.lioness()
                        .and_then(|layer| layer.encrypt(payload))
                        .ok_or(SurbError::Length)?;
                }
                Lioness::new(&self.reply_key)
                    .and_then(|layer| layer.decrypt(payload))
                    .ok_or(SurbError::Length)?;
            }
            Format::V039 => {
                Keystream::payload(&self.reply_key).apply(payload);
                for secret in &self.secrets {
                    Keystream::payload(secret.as_bytes()).apply(payload);
                }
            }
        }
        let (zeros, chunk) = payload
            .split_first_chunk::<PAYLOAD_ZERO_PREFIX_LEN>()
            .ok_or(SurbError::Length)?;
        if !crypto::ct_is_zero(zeros) {
            return Err(SurbError::Integrity);
        }
        let chunk = chunk.try_into().map_err(|_| SurbError::Length)?;
        payload::decode_reply(self.format, chunk).map_err(SurbError::Malformed)
    }
}

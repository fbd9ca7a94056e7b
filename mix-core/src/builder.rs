//! Building forward packets (MIX.md §5.1–§5.4): the header (written by `header.rs`, with the
//! path secrets and the filler) and the layered payload.
//!
//! Everything is written into caller buffers; nothing is allocated.

use rand_core::CryptoRng;

use crate::address::Address;
use crate::error::BuildError;
use crate::format::Format;
use crate::header::{PathSecrets, Route, TOO_SMALL, packet_parts, write_header};
use crate::keys::HopKeys;
use crate::params::{PACKET_LEN, PATH_LEN, PAYLOAD_LEN, SEQ_NO_LEN, SURB_ID_LEN};
use crate::payload::{Outgoing, write_plaintext};
use crate::surb::Surb;

/// Applies the forward layers to a δ plaintext: in LIP-183 `Enc(pek_{L−1})` first, so the
/// exit's layer is innermost, then each earlier hop's, `Enc(pek₀)` last; in v0.39 the XOR of
/// every hop's keystream (order irrelevant).
fn encrypt_forward(
    payload: &mut [u8; PAYLOAD_LEN],
    keys: &[HopKeys; PATH_LEN],
    format: Format,
) -> Result<(), BuildError> {
    for hop in keys.iter().rev() {
        match format {
            Format::Lip183 => hop
                .lioness()
                .and_then(|layer| layer.encrypt(payload))
                .ok_or(TOO_SMALL)?,
            Format::V039 => hop.payload().apply(payload),
        }
    }
    Ok(())
}

/// Builds forward packets (MIX.md §5): a route, a destination mode and SURBs, then
/// [`PacketBuilder::build`] for each message.
///
/// ```
/// # use mix_core::*;
/// # fn demo(rng: &mut (impl rand_core::CryptoRng + ?Sized), route: &Route) -> Result<(), BuildError> {
/// let mut packet = [0u8; PACKET_LEN];
/// // exit == destination (the mode Waku uses): the exit hands the message to its own
/// // `/vac/waku/lightpush/3.0.0` handler.
/// PacketBuilder::new(route).build(rng, "/vac/waku/lightpush/3.0.0", b"request", &mut packet)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PacketBuilder<'a> {
    route: &'a Route,
    destination: Option<&'a Address>,
    surbs: &'a [Surb],
    format: Format,
}

impl<'a> PacketBuilder<'a> {
    /// A builder for packets along `route`, in exit == destination mode, without SURBs, in the
    /// default format ([`Format::Lip183`]).
    pub const fn new(route: &'a Route) -> Self {
        Self {
            route,
            destination: None,
            surbs: &[],
            format: Format::Lip183,
        }
    }

    /// The wire format to build in (MIX-LIONESS.md §10). The SURBs given to
    /// [`PacketBuilder::surbs`] should be of the same format: the exit answers in the format
    /// it peels with, whatever a SURB was made for.
    #[must_use]
    pub const fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Forward mode: the exit dials `destination` (which need not run mix) and writes the
    /// application bytes to it (MIX.md §7.1).
    #[must_use]
    pub const fn destination(mut self, destination: &'a Address) -> Self {
        self.destination = Some(destination);
        self
    }

    /// SURBs for the exit to answer through (at most 5; MIX.md §6).
    #[must_use]
    pub const fn surbs(mut self, surbs: &'a [Surb]) -> Self {
        self.surbs = surbs;
        self
    }

    /// The largest application message a packet of this builder can carry for `codec`, in
    /// its format.
    ///
    /// # Errors
    /// As [`Format::max_message_len`].
    pub fn max_message_len(&self, codec: &str) -> Result<usize, BuildError> {
        self.format.max_message_len(codec, self.surbs.len())
    }

    /// Builds one packet carrying `body` for the origin protocol `codec` into the first
    /// [`PACKET_LEN`] bytes of `out`, and returns [`PACKET_LEN`]. Draws the ephemeral secret
    /// (and, in v0.39, the chunk trailer) from `rng`.
    ///
    /// # Errors
    /// [`BuildError::BufferTooSmall`] if `out` is shorter than a packet;
    /// [`BuildError::MessageTooLong`] (with the largest size that fits),
    /// [`BuildError::CodecTooLong`] or [`BuildError::TooManySurbs`] if the message does not
    /// fit; [`BuildError::WeakPublicKey`] if a hop's key is of small order.
    pub fn build<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        codec: &str,
        body: &[u8],
        out: &mut [u8],
    ) -> Result<usize, BuildError> {
        let mut x = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(x.as_mut());
        let mut seq_no = [0u8; SEQ_NO_LEN];
        if self.format == Format::V039 {
            rng.fill_bytes(&mut seq_no);
        }
        self.build_with_fixed_randomness_for_testing_only(&x, seq_no, codec, body, out)
    }

    /// [`PacketBuilder::build`] with the ephemeral secret `x` and the chunk trailer given
    /// (`seq_no` is ignored in LIP-183, which has no trailer). Reusing `x` for two packets
    /// links them; this exists for test vectors only.
    ///
    /// # Errors
    /// As [`PacketBuilder::build`].
    #[doc(hidden)]
    pub fn build_with_fixed_randomness_for_testing_only(
        &self,
        x: &[u8; 32],
        seq_no: [u8; SEQ_NO_LEN],
        codec: &str,
        body: &[u8],
        out: &mut [u8],
    ) -> Result<usize, BuildError> {
        let message = Outgoing::Forward {
            codec,
            surbs: self.surbs,
            body,
        };
        let (header, payload) = packet_parts(out)?;
        let path = PathSecrets::derive(x, self.route)?;
        write_plaintext(payload, &message, self.format, seq_no)?;
        encrypt_forward(payload, &path.keys, self.format)?;
        write_header(
            &path,
            self.route,
            &Address::encode_optional(self.destination),
            &[0u8; SURB_ID_LEN],
            header,
        );
        Ok(PACKET_LEN)
    }
}

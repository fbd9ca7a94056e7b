//! The two wire formats of `/mix/1.0.0` (MIX-LIONESS.md §10) and the one switch between them.
//!
//! Both formats use the same protocol id, the same 4608-byte packet and the same header bytes;
//! only δ and the plaintext inside it differ, so **nothing on the wire tells them apart**: a
//! deployment picks one, and every node and client of it must agree.
//!
//! | | [`Format::Lip183`] (default) | [`Format::V039`] (legacy) |
//! |---|---|---|
//! | δ per layer | LIONESS, seed `SHA-256("payload_enc_key" ‖ s)` | AES-128-CTR, `KDF("delta_aes_key"/"delta_iv", s)` |
//! | hop operation on δ | LIONESS decrypt | XOR keystream |
//! | SURB reply layer | LIONESS encrypt with `k̃` as the seed | AES-128-CTR keyed from `k̃` |
//! | padded message | `padLen ‖ 0^padLen ‖ msg` (`DataSize` 3966) | `… ‖ msg ‖ seqNo(4)` (`DataSize` 3962) |
//! | replay tag | `SHA-256(s)` | `SHA-256(α ‖ s)` |
//! | flipped δ bit | whole payload garbled: exit / reply rejects | same bit flipped in the plaintext |
//! | service delivery (exit == destination, no SURB count) | understood when asked for | — |
//!
//! Rules this crate applies to both formats (departures from v0.39 Nim, all local): α must be
//! canonical and not all zero, the shared secret must not be zero, the MAC is checked before
//! the replay tag is recorded, and the zero prefix of a reply is checked.

use core::fmt;
use core::str::FromStr;

use crate::error::BuildError;
use crate::params::{
    DATA_LEN, LIP183_DATA_LEN, MAX_CODEC_LEN, MAX_SURBS, MESSAGE_LEN, PADDING_LEN_LEN, SEQ_NO_LEN,
    SURB_COUNT_LEN, SURB_LEN,
};

/// Which wire format packets are built and peeled in (MIX-LIONESS.md §10). One switch covers
/// the payload cipher, the padding, the replay tag and the reply check together, because they
/// change together on the wire.
///
/// Displays and parses (case-insensitively) as `lip183` and `v039`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// The current upstream format (LIP-183): LIONESS payload, no seqNo trailer, replay tag
    /// `SHA-256(s)`, α validation, reply integrity check.
    #[default]
    Lip183,
    /// The format deployed with logos-delivery v0.39 (nim-libp2p-mix 48c77ad): AES-128-CTR
    /// payload, 4-byte seqNo trailer, replay tag `SHA-256(α ‖ s)`.
    V039,
}

impl Format {
    /// Both formats, the default first.
    pub const ALL: [Self; 2] = [Self::Lip183, Self::V039];

    /// The name [`Format`] displays as and parses from: `lip183` or `v039`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Lip183 => "lip183",
            Self::V039 => "v039",
        }
    }

    /// Bytes of a message chunk left for the serialized mix message (`DataSize`): 3966 in
    /// LIP-183, 3962 in v0.39 (which ends the chunk with a 4-byte seqNo).
    pub const fn data_len(self) -> usize {
        match self {
            Self::Lip183 => LIP183_DATA_LEN,
            Self::V039 => DATA_LEN,
        }
    }

    /// The length of the chunk trailer: 0 in LIP-183, 4 (seqNo) in v0.39.
    pub(crate) const fn trailer_len(self) -> usize {
        match self {
            Self::Lip183 => 0,
            Self::V039 => SEQ_NO_LEN,
        }
    }

    /// The longest origin codec the format's decoders read: 127 bytes (a one-byte uvarint) in
    /// v0.39; in LIP-183 a two-byte uvarint, bounded in practice by the data area.
    pub const fn max_codec_len(self) -> usize {
        match self {
            Self::Lip183 => LIP183_DATA_LEN - 2 - SURB_COUNT_LEN,
            Self::V039 => MAX_CODEC_LEN,
        }
    }

    /// Bytes of `uvarint(|codec|) ‖ codec`.
    pub(crate) fn codec_field_len(self, codec: &str) -> Result<usize, BuildError> {
        match codec.len() {
            n if n > self.max_codec_len() => Err(BuildError::CodecTooLong),
            n if n <= MAX_CODEC_LEN => Ok(n.saturating_add(1)),
            n => Ok(n.saturating_add(2)),
        }
    }

    /// The largest application message that fits one forward packet with this origin codec
    /// and this many SURBs: `DataSize − (|uvarint(|codec|)| + |codec|) − 1 − 734·surbs`. For
    /// `/vac/waku/lightpush/3.0.0` and 0…5 SURBs: 3939, 3205, 2471, 1737, 1003, 269 in
    /// LIP-183; 3935, 3201, 2467, 1733, 999, 265 in v0.39.
    ///
    /// # Errors
    /// [`BuildError::CodecTooLong`] for a codec the format cannot carry;
    /// [`BuildError::TooManySurbs`] for more than 5 SURBs, or if the SURBs alone do not fit.
    pub fn max_message_len(self, codec: &str, surbs: usize) -> Result<usize, BuildError> {
        if surbs > MAX_SURBS {
            return Err(BuildError::TooManySurbs);
        }
        self.data_len()
            .checked_sub(
                self.codec_field_len(codec)?
                    .saturating_add(SURB_COUNT_LEN)
                    .saturating_add(SURB_LEN.saturating_mul(surbs)),
            )
            .ok_or(BuildError::TooManySurbs)
    }

    /// The largest response an exit can send back through one SURB: `DataSize − 1` (the
    /// empty codec's length byte): 3965 in LIP-183, 3961 in v0.39.
    pub const fn max_reply_len(self) -> usize {
        self.data_len().saturating_sub(1)
    }

    /// The byte that records the format in [`crate::SurbKeys::to_bytes`].
    pub(crate) const fn to_byte(self) -> u8 {
        match self {
            Self::V039 => 0,
            Self::Lip183 => 1,
        }
    }

    pub(crate) const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::V039),
            1 => Some(Self::Lip183),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ParseFormatError;

    /// Parses `lip183` or `v039`, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or(ParseFormatError)
    }
}

/// A string that names no [`Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseFormatError;

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown mix wire format: expected `lip183` (current) or `v039` (legacy)")
    }
}

impl core::error::Error for ParseFormatError {}

// The format-dependent sizes, pinned to MIX-LIONESS.md §4 and MIX.md §2.
const _: () = {
    assert!(Format::Lip183.data_len() == 3966);
    assert!(Format::V039.data_len() == 3962);
    assert!(
        Format::Lip183.data_len() + PADDING_LEN_LEN + Format::Lip183.trailer_len() == MESSAGE_LEN
    );
    assert!(Format::V039.data_len() + PADDING_LEN_LEN + Format::V039.trailer_len() == MESSAGE_LEN);
    assert!(Format::Lip183.max_reply_len() == 3965);
    assert!(Format::V039.max_reply_len() == 3961);
};

#[cfg(test)]
mod tests {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const LIGHTPUSH: &str = "/vac/waku/lightpush/3.0.0";

    #[test]
    fn names_round_trip_in_any_case_and_bad_names_are_refused() {
        for f in Format::ALL {
            assert_eq!(format!("{f}").parse(), Ok(f));
            assert_eq!(f.name().to_ascii_uppercase().parse(), Ok(f));
            assert_eq!(Format::from_byte(f.to_byte()), Some(f));
        }
        assert_eq!("LIP183".parse(), Ok(Format::Lip183));
        assert_eq!("V039".parse::<Format>(), Ok(Format::V039));
        for bad in ["", "lip", "v0.39", "lioness", " lip183"] {
            assert_eq!(bad.parse::<Format>(), Err(ParseFormatError), "{bad:?}");
        }
        assert!(format!("{ParseFormatError}").contains("lip183"));
        assert_eq!(Format::default(), Format::Lip183);
        assert_eq!(Format::from_byte(2), None);
    }

    #[test]
    fn max_sizes_match_the_spec_tables() {
        let lip: [usize; 6] =
            core::array::from_fn(|n| Format::Lip183.max_message_len(LIGHTPUSH, n).unwrap());
        assert_eq!(lip, [3939, 3205, 2471, 1737, 1003, 269]);
        let old: [usize; 6] =
            core::array::from_fn(|n| Format::V039.max_message_len(LIGHTPUSH, n).unwrap());
        assert_eq!(old, [3935, 3201, 2467, 1733, 999, 265]);
        for f in Format::ALL {
            assert_eq!(
                f.max_message_len(LIGHTPUSH, 6),
                Err(BuildError::TooManySurbs)
            );
        }
    }

    #[test]
    fn codecs_past_one_uvarint_byte_only_fit_lip183() {
        let long = "c".repeat(128);
        assert_eq!(
            Format::V039.max_message_len(&long, 0),
            Err(BuildError::CodecTooLong)
        );
        assert_eq!(Format::Lip183.max_message_len(&long, 0), Ok(3966 - 130 - 1));
        let longest = "c".repeat(Format::Lip183.max_codec_len());
        assert_eq!(Format::Lip183.max_message_len(&longest, 0), Ok(0));
        let too_long = "c".repeat(Format::Lip183.max_codec_len() + 1);
        assert_eq!(
            Format::Lip183.max_message_len(&too_long, 0),
            Err(BuildError::CodecTooLong)
        );
    }
}

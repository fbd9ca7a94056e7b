//! Errors, one type per operation (STYLE Part 4).
//!
//! Every type is `Copy`, carries only fixed-size data and displays as a short static phrase, so
//! nothing a caller logs can leak packet contents. The MAC check fails as one opaque `Rejected`
//! variant; the α rules and the zero-prefix checks of MIX-LIONESS.md §2, §3, §5 have their own
//! variants (the α rules use only public data; a zero-prefix failure says only that the
//! payload is not what its sender built). A relay must never tell a peer why it dropped a
//! packet: these values are for local metrics and logs only.

use core::fmt;

/// Bytes that do not form a valid value of the wire type they were decoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A buffer was not the exact length its type has.
    Length {
        /// The length the type requires.
        expected: usize,
    },
    /// An address field was all zero where an address is required.
    EmptyAddress,
    /// An address field named a transport other than TCP (0) or QUIC-v1 (1).
    Transport,
    /// An address field held a peer id that is not a 39-byte secp256k1 identity multihash.
    PeerId,
    /// An address field had non-zero bytes after its peer ids.
    AddressPadding,
    /// An authenticated routing block matched neither the intermediate, exit nor reply layout.
    RoutingBlock,
    /// A message chunk declared more padding than it has room for.
    PaddingLength,
    /// A mix message's codec length was not a valid one- or two-byte uvarint, or ran past
    /// the end of the message.
    CodecLength,
    /// A mix message's codec was not UTF-8.
    CodecUtf8,
    /// A forward message's SURB count was above the maximum or ran past the end of the message.
    SurbCount,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length { .. } => "buffer has the wrong length",
            Self::EmptyAddress => "address is empty",
            Self::Transport => "address names an unsupported transport",
            Self::PeerId => "address holds an unsupported peer id",
            Self::AddressPadding => "address has non-zero padding",
            Self::RoutingBlock => "routing block has an unknown layout",
            Self::PaddingLength => "message chunk has an invalid padding length",
            Self::CodecLength => "mix message has an invalid codec length",
            Self::CodecUtf8 => "mix message codec is not UTF-8",
            Self::SurbCount => "mix message has an invalid SURB count",
        })
    }
}

impl core::error::Error for DecodeError {}

/// A packet or SURB could not be built from the given inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The output buffer is shorter than the packet.
    BufferTooSmall {
        /// How many bytes the output needs.
        required: usize,
    },
    /// The application bytes do not fit the packet beside the codec and SURBs.
    MessageTooLong {
        /// The largest application message that fits with this codec and SURB count.
        max_len: usize,
    },
    /// The codec is longer than the format's decoders accept (MIX.md §4.7: 127 bytes in
    /// v0.39; a two-byte uvarint in LIP-183).
    CodecTooLong,
    /// More SURBs than fit one packet (MIX.md §2: at most 5), or more than fit beside the codec.
    TooManySurbs,
    /// A hop's public key is of small order: its layer would be readable by anyone.
    WeakPublicKey,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BufferTooSmall { .. } => "output buffer is too small for a packet",
            Self::MessageTooLong { .. } => "message is too long for one packet",
            Self::CodecTooLong => "codec is too long for the wire format",
            Self::TooManySurbs => "too many SURBs for one packet",
            Self::WeakPublicKey => "a hop's public key is of small order",
        })
    }
}

impl core::error::Error for BuildError {}

/// Why a replay filter refused a tag.
///
/// Not `#[non_exhaustive]`: relays map every reason to a metric label, and a new reason should
/// fail their build rather than fall into a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The tag was seen before and has not expired: the packet is a replay.
    Replayed,
    /// The filter is at capacity and cannot remember another tag; the packet must be dropped
    /// (accepting it would let a flood of packets make room for a replay).
    Full,
    /// The filter's backing store could not be read or written.
    Unavailable,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Replayed => "packet was seen before",
            Self::Full => "replay filter is full",
            Self::Unavailable => "replay filter is unavailable",
        })
    }
}

impl core::error::Error for ReplayError {}

/// A received packet was dropped by per-hop processing (MIX.md §5.5).
///
/// Not `#[non_exhaustive]`: relays map every reason to a metric label, and a new reason should
/// fail their build rather than fall into a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeelError {
    /// The buffer is not exactly one packet.
    Length,
    /// The replay filter refused the packet's tag.
    Replay(ReplayError),
    /// γ did not match β (or the buffer changed between the MAC check and peeling).
    Rejected,
    /// α was all zero (MIX-LIONESS.md §5 step 1: `Field element must not be all zero`).
    AlphaZero,
    /// α was not the canonical encoding of a field element: ≥ p = 2²⁵⁵ − 19 read as a
    /// little-endian integer, which includes any α with the top bit set (§5 step 1).
    AlphaNonCanonical,
    /// α was of small order: the shared secret was all zero (§5 step 2, `low-order shared
    /// secret`).
    AlphaLowOrder,
    /// At the exit, the decrypted payload did not start with 16 zero bytes (MIX-LIONESS.md §2:
    /// `payload integrity check failed`). In LIP-183 this is how a tampered δ shows.
    PayloadIntegrity,
    /// The header was authentic but its routing block or exit payload could not be decoded.
    Malformed(DecodeError),
}

impl fmt::Display for PeelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "packet has the wrong length",
            Self::Replay(_) => "packet refused by the replay filter",
            Self::Rejected => "packet failed its MAC check",
            Self::AlphaZero => "packet's alpha is all zero",
            Self::AlphaNonCanonical => "packet's alpha is not canonical",
            Self::AlphaLowOrder => "packet's alpha is of low order",
            Self::PayloadIntegrity => "payload integrity check failed",
            Self::Malformed(_) => "packet content is malformed",
        })
    }
}

impl core::error::Error for PeelError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Replay(e) => Some(e),
            Self::Malformed(e) => Some(e),
            Self::Length
            | Self::Rejected
            | Self::AlphaZero
            | Self::AlphaNonCanonical
            | Self::AlphaLowOrder
            | Self::PayloadIntegrity => None,
        }
    }
}

impl From<ReplayError> for PeelError {
    fn from(e: ReplayError) -> Self {
        Self::Replay(e)
    }
}

/// A SURB reply could not be opened by its creator (MIX.md §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SurbError {
    /// The buffer is not exactly one payload.
    Length,
    /// After removing every layer the payload did not start with the zero prefix (MIX-LIONESS.md
    /// §3: `reply payload integrity check failed`): wrong keys or format, or the reply was
    /// tampered with.
    Integrity,
    /// The opened reply could not be decoded.
    Malformed(DecodeError),
}

impl fmt::Display for SurbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "reply payload has the wrong length",
            Self::Integrity => "reply payload integrity check failed",
            Self::Malformed(_) => "reply content is malformed",
        })
    }
}

impl core::error::Error for SurbError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Length | Self::Integrity => None,
        }
    }
}

/// Any error of this crate, for callers who only want `?` (the rustls umbrella pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// See [`DecodeError`].
    Decode(DecodeError),
    /// See [`BuildError`].
    Build(BuildError),
    /// See [`PeelError`].
    Peel(PeelError),
    /// See [`SurbError`].
    Surb(SurbError),
    /// See [`ReplayError`].
    Replay(ReplayError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => e.fmt(f),
            Self::Build(e) => e.fmt(f),
            Self::Peel(e) => e.fmt(f),
            Self::Surb(e) => e.fmt(f),
            Self::Replay(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            Self::Build(e) => Some(e),
            Self::Peel(e) => Some(e),
            Self::Surb(e) => Some(e),
            Self::Replay(e) => Some(e),
        }
    }
}

macro_rules! into_umbrella {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Self::$variant(e)
            }
        }
    )*};
}

into_umbrella!(DecodeError => Decode, BuildError => Build, PeelError => Peel, SurbError => Surb,
    ReplayError => Replay);

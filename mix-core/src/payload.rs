//! The payload plaintext (MIX.md §4.6–§4.8, MIX-LIONESS.md §4; Nim `fragmentation.nim` /
//! `padding.nim`, `mix_message.nim`).
//!
//! ```text
//! δ plaintext (3984) = 16 zero bytes ‖ message chunk (3968)
//! message chunk      = P (u16 BE) ‖ P zero bytes ‖ mix message              (LIP-183, DataSize 3966)
//!                    = P (u16 BE) ‖ P zero bytes ‖ mix message ‖ seqNo (4)  (v0.39, DataSize 3962)
//! mix message        = uvarint(|codec|) ‖ codec ‖ body
//! forward body       = SURB count (u8) ‖ count × SURB (734) ‖ application bytes
//! reply body         = the response bytes (codec is empty, no count byte)
//! service body       = the application bytes (LIP-183 line B, exit == destination, no count byte)
//! ```
//!
//! The padding is *prepended*, so a message is right-aligned (before the v0.39 trailer). The
//! v0.39 trailer ("seqNo") is ignored by receivers; Nim derives it from the sender's peer id,
//! which leaks that id's hash to the exit, so senders here put random bytes in it.
//!
//! # Service delivery and its ambiguity
//! Upstream line B (MIX-LIONESS.md §6) added `send(destination, service, payload)`: the
//! body after the codec is the application bytes *without* a SURB-count byte, handed whole to
//! a handler the exit registered for that codec. **Nothing in the packet says which framing
//! was used**: a service body whose first byte is 0…5 parses as a forward body with that many
//! SURBs, and a forward body is a valid service body. Nim resolves it by the exit's local
//! state: a handler registered for the codec (and exit == destination) means service framing,
//! otherwise the forward framing. We do the same, explicitly: [`ExitMessage::decode_with_services`]
//! (and [`crate::VerifiedHop::peel_in_place_with_services`]) take the codecs the exit has
//! service handlers for, and only LIP-183 packets with a zero destination are read that way.
//! Sender and exit must therefore agree out of band that a codec is a service.

use crate::error::{BuildError, DecodeError};
use crate::format::Format;
use crate::header::TOO_SMALL;
use crate::params::{
    COVER_CODEC, MAX_CODEC_LEN, MAX_SURBS, MESSAGE_LEN, PADDING_LEN_LEN, PAYLOAD_LEN,
    PAYLOAD_ZERO_PREFIX_LEN, SEQ_NO_LEN, SURB_LEN,
};
use crate::surb::{Surb, Surbs};
use crate::util::{Reader, Writer};

/// The largest application message that fits one forward packet of the **default** format
/// ([`Format::Lip183`]) with this origin codec and this many SURBs; see
/// [`Format::max_message_len`] for either format. For `/vac/waku/lightpush/3.0.0`: 3939, 3205
/// and 1003 bytes for 0, 1 and 4 SURBs.
///
/// # Errors
/// As [`Format::max_message_len`].
pub fn max_message_len(codec: &str, surbs: usize) -> Result<usize, BuildError> {
    Format::default().max_message_len(codec, surbs)
}

/// The largest response an exit can send back through one SURB **in every format**: 3961
/// bytes, the v0.39 limit (`3962 − 1`). LIP-183 SURBs carry up to 3965
/// ([`Format::max_reply_len`]); a caller that does not know the format can rely on this one.
pub const MAX_REPLY_LEN: usize = Format::V039.max_reply_len();

/// The parts of a mix message to put in a packet.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outgoing<'a> {
    /// A forward message: codec, SURBs and application bytes.
    Forward {
        codec: &'a str,
        surbs: &'a [Surb],
        body: &'a [u8],
    },
    /// A reply through a SURB: empty codec, the response bytes.
    Reply { body: &'a [u8] },
}

impl Outgoing<'_> {
    /// The serialized length, or the error that tells the caller what fits.
    fn encoded_len(&self, format: Format) -> Result<usize, BuildError> {
        match self {
            Self::Forward { codec, surbs, body } => {
                let max_len = format.max_message_len(codec, surbs.len())?;
                if body.len() > max_len {
                    return Err(BuildError::MessageTooLong { max_len });
                }
                // body.len() <= max_len <= data_len: neither step can wrap.
                Ok(format
                    .data_len()
                    .saturating_sub(max_len)
                    .saturating_add(body.len()))
            }
            Self::Reply { body } => {
                let max_len = format.max_reply_len();
                if body.len() > max_len {
                    return Err(BuildError::MessageTooLong { max_len });
                }
                Ok(body.len().saturating_add(1))
            }
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Option<()> {
        match self {
            Self::Forward { codec, surbs, body } => {
                // `encoded_len` has checked the codec fits two uvarint bytes and surbs ≤ 5.
                let len = codec.len();
                if len <= MAX_CODEC_LEN {
                    w.put(&[u8::try_from(len).ok()?])?;
                } else {
                    let low = u8::try_from(len & 0x7f).ok()? | 0x80;
                    w.put(&[low, u8::try_from(len >> 7).ok()?])?;
                }
                w.put(codec.as_bytes())?;
                w.put(&[u8::try_from(surbs.len()).ok()?])?;
                for surb in *surbs {
                    w.put(&surb.to_bytes())?;
                }
                w.put(body)
            }
            Self::Reply { body } => {
                w.put(&[0])?;
                w.put(body)
            }
        }
    }
}

/// Serializes a forward mix message (codec, SURB count, SURBs, application bytes) into `out`
/// and returns its length. Packet builders do this themselves; this is for inspection and
/// for other framings. The format decides the size limits and whether a codec over 127
/// bytes (a two-byte uvarint) is allowed.
///
/// # Errors
/// As [`Format::max_message_len`], [`BuildError::MessageTooLong`] when `body` does not fit,
/// and [`BuildError::BufferTooSmall`] when `out` is shorter than the message.
pub fn encode_forward_message(
    format: Format,
    codec: &str,
    surbs: &[Surb],
    body: &[u8],
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let message = Outgoing::Forward { codec, surbs, body };
    let required = message.encoded_len(format)?;
    let mut w = Writer::new(out);
    message
        .write(&mut w)
        .ok_or(BuildError::BufferTooSmall { required })?;
    Ok(w.written())
}

/// Frames a forward mix message into a 3968-byte message chunk of `format` (MIX.md §4.6,
/// MIX-LIONESS.md §4); `seq_no` is the v0.39 trailer and is ignored in LIP-183. Packet
/// builders do this themselves.
///
/// # Errors
/// As [`encode_forward_message`].
pub fn encode_forward_chunk(
    format: Format,
    codec: &str,
    surbs: &[Surb],
    body: &[u8],
    seq_no: [u8; SEQ_NO_LEN],
    chunk: &mut [u8; MESSAGE_LEN],
) -> Result<(), BuildError> {
    write_chunk(
        chunk,
        &Outgoing::Forward { codec, surbs, body },
        format,
        seq_no,
    )
}

/// Frames a reply (empty codec, `body`) into a message chunk of `format` (MIX.md §6.2);
/// `seq_no` is ignored in LIP-183.
///
/// # Errors
/// [`BuildError::MessageTooLong`] if `body` exceeds [`Format::max_reply_len`].
pub fn encode_reply_chunk(
    format: Format,
    body: &[u8],
    seq_no: [u8; SEQ_NO_LEN],
    chunk: &mut [u8; MESSAGE_LEN],
) -> Result<(), BuildError> {
    write_chunk(chunk, &Outgoing::Reply { body }, format, seq_no)
}

/// Frames `message` into a message chunk: padding length, leading zeros, the message,
/// then (v0.39 only) the 4-byte trailer.
pub(crate) fn write_chunk(
    chunk: &mut [u8; MESSAGE_LEN],
    message: &Outgoing<'_>,
    format: Format,
    seq_no: [u8; SEQ_NO_LEN],
) -> Result<(), BuildError> {
    let len = message.encoded_len(format)?;
    let internal = BuildError::BufferTooSmall {
        required: MESSAGE_LEN,
    };
    let padding = format.data_len().checked_sub(len).ok_or(internal)?;
    let padding_field = u16::try_from(padding).map_err(|_| internal)?.to_be_bytes();
    let (head, trailer) = chunk.split_at_mut(MESSAGE_LEN.saturating_sub(format.trailer_len()));
    if let Some(bytes) = seq_no.get(..trailer.len()) {
        trailer.copy_from_slice(bytes);
    }
    let (field, data) = head.split_at_mut(PADDING_LEN_LEN);
    field.copy_from_slice(&padding_field);
    let (zeros, slot) = data.split_at_mut_checked(padding).ok_or(internal)?;
    zeros.fill(0);
    let mut w = Writer::new(slot);
    message.write(&mut w).ok_or(internal)?;
    if w.written() == len {
        Ok(())
    } else {
        Err(internal)
    }
}

/// The mix message inside a chunk of `format`: skips the declared padding and (v0.39) drops
/// the trailer (Nim `removePadding`; like Nim, the padding bytes themselves are not inspected).
///
/// # Errors
/// [`DecodeError::PaddingLength`] if the declared padding exceeds the data area.
pub fn unpad(format: Format, chunk: &[u8; MESSAGE_LEN]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(chunk);
    let length = DecodeError::Length {
        expected: MESSAGE_LEN,
    };
    let padding = usize::from(u16::from_be_bytes(
        *r.take_array::<PADDING_LEN_LEN>().ok_or(length)?,
    ));
    let data = r.take(format.data_len()).ok_or(length)?;
    data.get(padding..).ok_or(DecodeError::PaddingLength)
}

/// Splits a mix message into its codec and body (MIX.md §4.7, MIX-LIONESS.md §4).
///
/// The codec length is a uvarint of one or two bytes, minimally encoded: the LIP-183 decoder's
/// rule (non-minimal encodings are refused). v0.39 Nim reads one byte only and never writes
/// more, so the same rule serves both formats.
///
/// # Errors
/// [`DecodeError::CodecLength`] for an invalid or overlong length, [`DecodeError::CodecUtf8`]
/// for a codec that is not UTF-8.
pub fn decode_mix_message(message: &[u8]) -> Result<(&str, &[u8]), DecodeError> {
    let mut r = Reader::new(message);
    let first = r.take_u8().ok_or(DecodeError::CodecLength)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let second = r.take_u8().ok_or(DecodeError::CodecLength)?;
        // A second byte with the continuation bit, or a zero that a minimal encoding would
        // not have written, is not a two-byte uvarint.
        if second == 0 || second >= 0x80 {
            return Err(DecodeError::CodecLength);
        }
        usize::from(first & 0x7f) | (usize::from(second) << 7)
    };
    let codec = r.take(len).ok_or(DecodeError::CodecLength)?;
    let codec = core::str::from_utf8(codec).map_err(|_| DecodeError::CodecUtf8)?;
    Ok((codec, r.rest()))
}

/// What a forward packet delivers to its exit (MIX.md §5.5 step 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMessage<'a> {
    /// A message for the origin protocol `codec`.
    Request {
        /// The origin protocol id, e.g. `/vac/waku/lightpush/3.0.0`.
        codec: &'a str,
        /// The SURBs to answer through (possibly none). They answer in the packet's format.
        surbs: Surbs<'a>,
        /// The application bytes, exactly as the origin protocol would write them on a stream
        /// (a length-prefixed protocol's bytes include its own length prefix).
        body: &'a [u8],
    },
    /// LIP-183 service delivery (MIX-LIONESS.md §6, line B): the whole body after the codec, for
    /// the exit's own service handler of `codec`. Only produced when the exit said it has one
    /// ([`ExitMessage::decode_with_services`]); see the module docs for why.
    Service {
        /// The service's codec, one the exit registered.
        codec: &'a str,
        /// The application bytes (no SURB count, no SURBs).
        body: &'a [u8],
    },
    /// Cover traffic (codec `/mix/cover/1.0.0`): to be dropped.
    Cover,
}

impl<'a> ExitMessage<'a> {
    /// Decodes the chunk a forward packet's exit recovered, with the forward framing
    /// (SURB count, SURBs, application bytes).
    ///
    /// # Errors
    /// As [`unpad`] and [`decode_mix_message`]; [`DecodeError::SurbCount`] for a SURB count
    /// above 5 or SURBs that run past the message; an invalid SURB first-hop address as
    /// [`crate::Address::from_bytes`].
    pub fn decode(format: Format, chunk: &'a [u8; MESSAGE_LEN]) -> Result<Self, DecodeError> {
        Self::decode_with_services(format, chunk, false, &[])
    }

    /// [`ExitMessage::decode`] for an exit that has service handlers for the codecs in
    /// `services`: when the format is LIP-183, `exit_is_destination` holds (the packet's
    /// destination was zero) and the codec is one of `services`, the body is returned whole
    /// as [`ExitMessage::Service`]. Otherwise as [`ExitMessage::decode`] (Nim's fallback).
    ///
    /// # Errors
    /// As [`ExitMessage::decode`]; a service message fails only in [`unpad`] and
    /// [`decode_mix_message`].
    pub fn decode_with_services(
        format: Format,
        chunk: &'a [u8; MESSAGE_LEN],
        exit_is_destination: bool,
        services: &[&str],
    ) -> Result<Self, DecodeError> {
        let (codec, rest) = decode_mix_message(unpad(format, chunk)?)?;
        if codec == COVER_CODEC {
            return Ok(Self::Cover);
        }
        if format == Format::Lip183 && exit_is_destination && services.contains(&codec) {
            return Ok(Self::Service { codec, body: rest });
        }
        let mut r = Reader::new(rest);
        let count = usize::from(r.take_u8().ok_or(DecodeError::SurbCount)?);
        if count > MAX_SURBS {
            return Err(DecodeError::SurbCount);
        }
        let surbs = r.take(count * SURB_LEN).ok_or(DecodeError::SurbCount)?;
        Ok(Self::Request {
            codec,
            surbs: Surbs::new(surbs)?.with_format(format),
            body: r.rest(),
        })
    }
}

/// Decodes the chunk of an opened SURB reply of `format` into the response bytes.
///
/// # Errors
/// As [`unpad`] and [`decode_mix_message`], and [`DecodeError::CodecLength`] if the codec is
/// not empty (replies carry the empty codec, MIX.md §4.7; LIP-183 line B refuses others).
pub fn decode_reply(format: Format, chunk: &[u8; MESSAGE_LEN]) -> Result<&[u8], DecodeError> {
    match decode_mix_message(unpad(format, chunk)?)? {
        ("", body) => Ok(body),
        _ => Err(DecodeError::CodecLength),
    }
}

/// Writes the δ plaintext `0₁₆ ‖ chunk` (MIX.md §5.4, §6.2; MIX-LIONESS.md §2, §4).
pub(crate) fn write_plaintext(
    payload: &mut [u8; PAYLOAD_LEN],
    message: &Outgoing<'_>,
    format: Format,
    seq_no: [u8; SEQ_NO_LEN],
) -> Result<(), BuildError> {
    let (zeros, chunk) = payload
        .split_first_chunk_mut::<PAYLOAD_ZERO_PREFIX_LEN>()
        .ok_or(TOO_SMALL)?;
    zeros.fill(0);
    write_chunk(
        chunk.try_into().map_err(|_| TOO_SMALL)?,
        message,
        format,
        seq_no,
    )
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::params::DATA_LEN;

    const LIGHTPUSH: &str = "/vac/waku/lightpush/3.0.0";

    #[test]
    fn max_sizes_match_the_spec_examples() {
        assert_eq!(Format::V039.max_message_len(LIGHTPUSH, 0), Ok(3935));
        assert_eq!(Format::V039.max_message_len(LIGHTPUSH, 1), Ok(3201));
        assert_eq!(Format::V039.max_message_len(LIGHTPUSH, 4), Ok(999));
        assert_eq!(Format::V039.max_message_len(LIGHTPUSH, 5), Ok(265));
        assert_eq!(Format::V039.max_message_len("", 5), Ok(3962 - 2 - 5 * 734));
        assert_eq!(
            Format::V039.max_message_len(LIGHTPUSH, 6),
            Err(BuildError::TooManySurbs)
        );
        assert_eq!(
            Format::V039.max_message_len(&"x".repeat(127), 0),
            Ok(3962 - 129)
        );
        assert_eq!(
            Format::V039.max_message_len(&"x".repeat(128), 0),
            Err(BuildError::CodecTooLong)
        );
    }

    #[test]
    fn a_chunk_is_padded_in_front_and_unpads_to_the_message() {
        let mut chunk = [0xffu8; MESSAGE_LEN];
        let message = Outgoing::Forward {
            codec: LIGHTPUSH,
            surbs: &[],
            body: b"hello",
        };
        write_chunk(&mut chunk, &message, Format::V039, [1, 2, 3, 4]).unwrap();
        let len = 1 + 25 + 1 + 5;
        assert_eq!(
            u16::from_be_bytes([chunk[0], chunk[1]]),
            u16::try_from(DATA_LEN - len).unwrap()
        );
        assert!(chunk[2..2 + DATA_LEN - len].iter().all(|b| *b == 0));
        assert_eq!(&chunk[MESSAGE_LEN - 4..], &[1, 2, 3, 4]);
        let inner = unpad(Format::V039, &chunk).unwrap();
        assert_eq!(inner.len(), len);
        assert_eq!(
            ExitMessage::decode(Format::V039, &chunk).unwrap(),
            ExitMessage::Request {
                codec: LIGHTPUSH,
                surbs: Surbs::new(&[]).unwrap().with_format(Format::V039),
                body: b"hello"
            }
        );
    }

    #[test]
    fn the_largest_message_fills_the_chunk_exactly_and_one_more_byte_is_refused() {
        let max = Format::V039.max_message_len(LIGHTPUSH, 0).unwrap();
        let body = vec![7u8; max];
        let mut chunk = [0u8; MESSAGE_LEN];
        let message = Outgoing::Forward {
            codec: LIGHTPUSH,
            surbs: &[],
            body: &body,
        };
        write_chunk(&mut chunk, &message, Format::V039, [0; 4]).unwrap();
        assert_eq!(&chunk[..2], &[0, 0]);
        let longer = vec![7u8; max + 1];
        let message = Outgoing::Forward {
            codec: LIGHTPUSH,
            surbs: &[],
            body: &longer,
        };
        assert_eq!(
            write_chunk(&mut chunk, &message, Format::V039, [0; 4]),
            Err(BuildError::MessageTooLong { max_len: max })
        );
        let reply = vec![0u8; MAX_REPLY_LEN + 1];
        assert_eq!(
            write_chunk(
                &mut chunk,
                &Outgoing::Reply { body: &reply },
                Format::V039,
                [0; 4]
            ),
            Err(BuildError::MessageTooLong {
                max_len: MAX_REPLY_LEN
            })
        );
    }

    #[test]
    fn an_empty_reply_round_trips() {
        let mut chunk = [0u8; MESSAGE_LEN];
        write_chunk(
            &mut chunk,
            &Outgoing::Reply { body: &[] },
            Format::V039,
            [9; 4],
        )
        .unwrap();
        assert_eq!(decode_reply(Format::V039, &chunk), Ok(&[][..]));
    }

    #[test]
    fn cover_messages_are_recognised_before_any_surb_parsing() {
        let mut chunk = [0u8; MESSAGE_LEN];
        // Cover bodies are random and carry no SURB count byte.
        let message = Outgoing::Forward {
            codec: COVER_CODEC,
            surbs: &[],
            body: &[0xff; 100],
        };
        write_chunk(&mut chunk, &message, Format::V039, [0; 4]).unwrap();
        assert_eq!(
            ExitMessage::decode(Format::V039, &chunk),
            Ok(ExitMessage::Cover)
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut chunk = [0u8; MESSAGE_LEN];
        chunk[0..2].copy_from_slice(&u16::try_from(DATA_LEN + 1).unwrap().to_be_bytes());
        assert_eq!(unpad(Format::V039, &chunk), Err(DecodeError::PaddingLength));
        chunk[0..2].copy_from_slice(&u16::try_from(DATA_LEN).unwrap().to_be_bytes());
        assert_eq!(unpad(Format::V039, &chunk), Ok(&[][..]));
        assert_eq!(decode_mix_message(&[]), Err(DecodeError::CodecLength));
        assert_eq!(
            decode_mix_message(&[5, b'a']),
            Err(DecodeError::CodecLength)
        );
        assert_eq!(decode_mix_message(&[0x80]), Err(DecodeError::CodecLength));
        assert_eq!(
            decode_mix_message(&[0x80, 0x00]),
            Err(DecodeError::CodecLength)
        );
        assert_eq!(
            decode_mix_message(&[0x80, 0x80, 1]),
            Err(DecodeError::CodecLength)
        );
        assert_eq!(decode_mix_message(&[1, 0xff]), Err(DecodeError::CodecUtf8));
        let mut two_byte = vec![0x80, 0x01];
        two_byte.extend_from_slice(&[b'c'; 128]);
        two_byte.push(9);
        assert_eq!(decode_mix_message(&two_byte).unwrap().0.len(), 128);
        // SURB count above 5, and a count whose SURBs are missing.
        for body in [&[6u8][..], &[1u8, 0, 0][..], &[][..]] {
            let mut message = vec![1, b'c'];
            message.extend_from_slice(body);
            let mut chunk = [0u8; MESSAGE_LEN];
            let padding = DATA_LEN - message.len();
            chunk[..2].copy_from_slice(&u16::try_from(padding).unwrap().to_be_bytes());
            chunk[2 + padding..2 + DATA_LEN].copy_from_slice(&message);
            assert_eq!(
                ExitMessage::decode(Format::V039, &chunk),
                Err(DecodeError::SurbCount)
            );
        }
    }

    #[test]
    fn a_lip183_chunk_has_no_trailer_and_a_four_bytes_larger_data_area() {
        let f = Format::Lip183;
        let max = f.max_message_len(LIGHTPUSH, 0).unwrap();
        assert_eq!(max, 3939);
        let body = vec![7u8; max];
        let message = Outgoing::Forward {
            codec: LIGHTPUSH,
            surbs: &[],
            body: &body,
        };
        let mut chunk = [0xffu8; MESSAGE_LEN];
        write_chunk(&mut chunk, &message, f, [1, 2, 3, 4]).unwrap();
        // padLen 0, then the message runs to the very end: no seqNo.
        assert_eq!(&chunk[..2], &[0, 0]);
        assert_eq!(&chunk[MESSAGE_LEN - 4..], &[7; 4]);
        match ExitMessage::decode(f, &chunk).unwrap() {
            ExitMessage::Request {
                body: got, surbs, ..
            } => {
                assert_eq!(got, &body[..]);
                assert_eq!(surbs.format(), f);
            }
            other => panic!("{other:?}"),
        }
        let reply = vec![1u8; f.max_reply_len()];
        write_chunk(&mut chunk, &Outgoing::Reply { body: &reply }, f, [0; 4]).unwrap();
        assert_eq!(decode_reply(f, &chunk), Ok(&reply[..]));
        let longer = vec![1u8; f.max_reply_len() + 1];
        assert_eq!(
            write_chunk(&mut chunk, &Outgoing::Reply { body: &longer }, f, [0; 4]),
            Err(BuildError::MessageTooLong { max_len: 3965 })
        );
        // The padding length may not reach into the (absent) trailer.
        chunk[..2].copy_from_slice(&3967u16.to_be_bytes());
        assert_eq!(unpad(f, &chunk), Err(DecodeError::PaddingLength));
        chunk[..2].copy_from_slice(&3966u16.to_be_bytes());
        assert_eq!(unpad(f, &chunk), Ok(&[][..]));
    }

    #[test]
    fn lip183_writes_two_byte_codec_lengths_and_reads_them_back() {
        let codec = "c".repeat(300);
        let mut out = vec![0u8; MESSAGE_LEN];
        let n = encode_forward_message(Format::Lip183, &codec, &[], b"x", &mut out).unwrap();
        assert_eq!(&out[..2], &[0x80 | 44, 2]); // 300 = 44 + 2·128
        let (got, rest) = decode_mix_message(&out[..n]).unwrap();
        assert_eq!((got, rest), (codec.as_str(), &[0u8, b'x'][..]));
        assert_eq!(
            encode_forward_message(Format::V039, &codec, &[], b"x", &mut out),
            Err(BuildError::CodecTooLong)
        );
    }

    #[test]
    fn service_framing_is_used_only_when_the_exit_asks_for_it_in_lip183() {
        // A service body whose first byte (3) would read as a SURB count.
        let mut message = vec![4, b'/', b's', b'v', b'c'];
        message.extend_from_slice(&[3, 9, 9]);
        for f in Format::ALL {
            let mut chunk = [0u8; MESSAGE_LEN];
            let padding = f.data_len() - message.len();
            chunk[..2].copy_from_slice(&u16::try_from(padding).unwrap().to_be_bytes());
            chunk[2 + padding..2 + f.data_len()].copy_from_slice(&message);
            // Forward framing: 3 SURBs that are not there.
            assert_eq!(ExitMessage::decode(f, &chunk), Err(DecodeError::SurbCount));
            let service = ExitMessage::decode_with_services(f, &chunk, true, &["/svc"]);
            if f == Format::Lip183 {
                assert_eq!(
                    service,
                    Ok(ExitMessage::Service {
                        codec: "/svc",
                        body: &[3, 9, 9]
                    })
                );
            } else {
                assert_eq!(service, Err(DecodeError::SurbCount));
            }
            // Not the destination, or not a registered codec: forward framing.
            for (dest, services) in [(false, &["/svc"][..]), (true, &["/other"][..])] {
                assert_eq!(
                    ExitMessage::decode_with_services(f, &chunk, dest, services),
                    Err(DecodeError::SurbCount)
                );
            }
        }
    }
}

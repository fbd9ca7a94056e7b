//! The payload plaintext (MIX.md §4.6–§4.8; Nim `fragmentation.nim`, `mix_message.nim`).
//!
//! ```text
//! δ plaintext (3984) = 16 zero bytes ‖ message chunk (3968)
//! message chunk      = padding length P (u16 BE) ‖ P zero bytes ‖ mix message ‖ seqNo (u32 BE)
//! mix message        = uvarint(|codec|) ‖ codec ‖ body
//! forward body       = SURB count (u8) ‖ count × SURB (734) ‖ application bytes
//! reply body         = the response bytes (codec is empty, no count byte)
//! ```
//!
//! The padding is *prepended*, so a message is right-aligned before the 4-byte trailer. The
//! trailer ("seqNo") is ignored by receivers; Nim derives it from the sender's peer id, which
//! leaks that id's hash to the exit, so senders here put random bytes in it.

use crate::error::{BuildError, DecodeError};
use crate::params::{
    COVER_CODEC, DATA_LEN, MAX_CODEC_LEN, MAX_SURBS, MESSAGE_LEN, PADDING_LEN_LEN, SEQ_NO_LEN,
    SURB_COUNT_LEN, SURB_LEN,
};
use crate::surb::{Surb, Surbs};
use crate::util::{Reader, Writer};

/// Bytes of `uvarint(|codec|) ‖ codec`, or an error if deployed decoders cannot read it.
fn codec_field_len(codec: &str) -> Result<usize, BuildError> {
    if codec.len() > MAX_CODEC_LEN {
        return Err(BuildError::CodecTooLong);
    }
    Ok(1 + codec.len())
}

/// The largest application message that fits one forward packet with this origin codec and
/// this many SURBs: `3962 − (1 + |codec|) − 1 − 734·surbs` (Nim
/// `getMaxMessageSizeForCodec`). For `/vac/waku/lightpush/3.0.0`: 3935, 3201 and 999 bytes for
/// 0, 1 and 4 SURBs.
///
/// # Errors
/// [`BuildError::CodecTooLong`] for a codec over 127 bytes; [`BuildError::TooManySurbs`] if
/// the SURBs alone do not fit.
pub fn max_message_len(codec: &str, surbs: usize) -> Result<usize, BuildError> {
    if surbs > MAX_SURBS {
        return Err(BuildError::TooManySurbs);
    }
    DATA_LEN
        .checked_sub(codec_field_len(codec)? + SURB_COUNT_LEN + SURB_LEN * surbs)
        .ok_or(BuildError::TooManySurbs)
}

/// The largest response an exit can send back through one SURB: `3962 − 1`.
pub const MAX_REPLY_LEN: usize = DATA_LEN - 1;

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
    fn encoded_len(&self) -> Result<usize, BuildError> {
        match self {
            Self::Forward { codec, surbs, body } => {
                let max_len = max_message_len(codec, surbs.len())?;
                if body.len() > max_len {
                    return Err(BuildError::MessageTooLong { max_len });
                }
                Ok(DATA_LEN - max_len + body.len())
            }
            Self::Reply { body } => {
                if body.len() > MAX_REPLY_LEN {
                    return Err(BuildError::MessageTooLong {
                        max_len: MAX_REPLY_LEN,
                    });
                }
                Ok(1 + body.len())
            }
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Option<()> {
        match self {
            Self::Forward { codec, surbs, body } => {
                // `encoded_len` has checked codec ≤ 127 and surbs ≤ 5, so both fit in a byte.
                w.put(&[u8::try_from(codec.len()).ok()?])?;
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
/// for other framings.
///
/// # Errors
/// As [`max_message_len`], [`BuildError::MessageTooLong`] when `body` does not fit, and
/// [`BuildError::BufferTooSmall`] when `out` is shorter than the message.
pub fn encode_forward_message(
    codec: &str,
    surbs: &[Surb],
    body: &[u8],
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let message = Outgoing::Forward { codec, surbs, body };
    let required = message.encoded_len()?;
    let mut w = Writer::new(out);
    message
        .write(&mut w)
        .ok_or(BuildError::BufferTooSmall { required })?;
    Ok(w.written())
}

/// Frames a forward mix message into a 3968-byte message chunk with the 4-byte trailer
/// `seq_no` (MIX.md §4.6). Packet builders do this themselves.
///
/// # Errors
/// As [`encode_forward_message`].
pub fn encode_forward_chunk(
    codec: &str,
    surbs: &[Surb],
    body: &[u8],
    seq_no: [u8; SEQ_NO_LEN],
    chunk: &mut [u8; MESSAGE_LEN],
) -> Result<(), BuildError> {
    write_chunk(chunk, &Outgoing::Forward { codec, surbs, body }, seq_no)
}

/// Frames a reply (empty codec, `body`) into a message chunk (MIX.md §6.2).
///
/// # Errors
/// [`BuildError::MessageTooLong`] if `body` exceeds [`MAX_REPLY_LEN`].
pub fn encode_reply_chunk(
    body: &[u8],
    seq_no: [u8; SEQ_NO_LEN],
    chunk: &mut [u8; MESSAGE_LEN],
) -> Result<(), BuildError> {
    write_chunk(chunk, &Outgoing::Reply { body }, seq_no)
}

/// Frames `message` into a message chunk: padding length, leading zeros, the message,
/// then the 4-byte trailer.
pub(crate) fn write_chunk(
    chunk: &mut [u8; MESSAGE_LEN],
    message: &Outgoing<'_>,
    seq_no: [u8; SEQ_NO_LEN],
) -> Result<(), BuildError> {
    let len = message.encoded_len()?;
    let padding = DATA_LEN - len;
    let internal = BuildError::BufferTooSmall {
        required: MESSAGE_LEN,
    };
    let padding_field = u16::try_from(padding).map_err(|_| internal)?.to_be_bytes();
    let (head, trailer) = chunk.split_at_mut(MESSAGE_LEN - SEQ_NO_LEN);
    trailer.copy_from_slice(&seq_no);
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

/// The mix message inside a chunk: skips the declared padding and drops the trailer (Nim
/// `removePadding`; like Nim, the padding bytes themselves are not inspected).
///
/// # Errors
/// [`DecodeError::PaddingLength`] if the declared padding exceeds the data area.
pub fn unpad(chunk: &[u8; MESSAGE_LEN]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(chunk);
    let length = DecodeError::Length {
        expected: MESSAGE_LEN,
    };
    let padding = usize::from(u16::from_be_bytes(*r.take_array::<2>().ok_or(length)?));
    let data = r.take(DATA_LEN).ok_or(length)?;
    data.get(padding..).ok_or(DecodeError::PaddingLength)
}

/// Splits a mix message into its codec and body (MIX.md §4.7).
///
/// The codec length is a uvarint of at most two bytes, minimally encoded, as the RFC allows;
/// Nim writes one byte for every codec it can read back.
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
        /// The SURBs to answer through (possibly none).
        surbs: Surbs<'a>,
        /// The application bytes, exactly as the origin protocol would write them on a stream
        /// (a length-prefixed protocol's bytes include its own length prefix).
        body: &'a [u8],
    },
    /// Cover traffic (codec `/mix/cover/1.0.0`): to be dropped.
    Cover,
}

impl<'a> ExitMessage<'a> {
    /// Decodes the chunk a forward packet's exit recovered.
    ///
    /// # Errors
    /// As [`unpad`] and [`decode_mix_message`]; [`DecodeError::SurbCount`] for a SURB count
    /// above 5 or SURBs that run past the message; an invalid SURB first-hop address as
    /// [`crate::Address::from_bytes`].
    pub fn decode(chunk: &'a [u8; MESSAGE_LEN]) -> Result<Self, DecodeError> {
        let (codec, rest) = decode_mix_message(unpad(chunk)?)?;
        if codec == COVER_CODEC {
            return Ok(Self::Cover);
        }
        let mut r = Reader::new(rest);
        let count = usize::from(r.take_u8().ok_or(DecodeError::SurbCount)?);
        if count > MAX_SURBS {
            return Err(DecodeError::SurbCount);
        }
        let surbs = r.take(count * SURB_LEN).ok_or(DecodeError::SurbCount)?;
        Ok(Self::Request {
            codec,
            surbs: Surbs::new(surbs)?,
            body: r.rest(),
        })
    }
}

/// Decodes the chunk of an opened SURB reply into the response bytes.
///
/// # Errors
/// As [`unpad`] and [`decode_mix_message`], and [`DecodeError::CodecLength`] if the codec is
/// not empty (replies carry the empty codec, MIX.md §4.7).
pub fn decode_reply(chunk: &[u8; MESSAGE_LEN]) -> Result<&[u8], DecodeError> {
    match decode_mix_message(unpad(chunk)?)? {
        ("", body) => Ok(body),
        _ => Err(DecodeError::CodecLength),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const LIGHTPUSH: &str = "/vac/waku/lightpush/3.0.0";

    #[test]
    fn max_sizes_match_the_spec_examples() {
        assert_eq!(max_message_len(LIGHTPUSH, 0), Ok(3935));
        assert_eq!(max_message_len(LIGHTPUSH, 1), Ok(3201));
        assert_eq!(max_message_len(LIGHTPUSH, 4), Ok(999));
        assert_eq!(max_message_len(LIGHTPUSH, 5), Ok(265));
        assert_eq!(max_message_len("", 5), Ok(3962 - 2 - 5 * 734));
        assert_eq!(max_message_len(LIGHTPUSH, 6), Err(BuildError::TooManySurbs));
        assert_eq!(max_message_len(&"x".repeat(127), 0), Ok(3962 - 129));
        assert_eq!(
            max_message_len(&"x".repeat(128), 0),
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
        write_chunk(&mut chunk, &message, [1, 2, 3, 4]).unwrap();
        let len = 1 + 25 + 1 + 5;
        assert_eq!(
            u16::from_be_bytes([chunk[0], chunk[1]]),
            u16::try_from(DATA_LEN - len).unwrap()
        );
        assert!(chunk[2..2 + DATA_LEN - len].iter().all(|b| *b == 0));
        assert_eq!(&chunk[MESSAGE_LEN - 4..], &[1, 2, 3, 4]);
        let inner = unpad(&chunk).unwrap();
        assert_eq!(inner.len(), len);
        assert_eq!(
            ExitMessage::decode(&chunk).unwrap(),
            ExitMessage::Request {
                codec: LIGHTPUSH,
                surbs: Surbs::new(&[]).unwrap(),
                body: b"hello"
            }
        );
    }

    #[test]
    fn the_largest_message_fills_the_chunk_exactly_and_one_more_byte_is_refused() {
        let max = max_message_len(LIGHTPUSH, 0).unwrap();
        let body = vec![7u8; max];
        let mut chunk = [0u8; MESSAGE_LEN];
        let message = Outgoing::Forward {
            codec: LIGHTPUSH,
            surbs: &[],
            body: &body,
        };
        write_chunk(&mut chunk, &message, [0; 4]).unwrap();
        assert_eq!(&chunk[..2], &[0, 0]);
        let longer = vec![7u8; max + 1];
        let message = Outgoing::Forward {
            codec: LIGHTPUSH,
            surbs: &[],
            body: &longer,
        };
        assert_eq!(
            write_chunk(&mut chunk, &message, [0; 4]),
            Err(BuildError::MessageTooLong { max_len: max })
        );
        let reply = vec![0u8; MAX_REPLY_LEN + 1];
        assert_eq!(
            write_chunk(&mut chunk, &Outgoing::Reply { body: &reply }, [0; 4]),
            Err(BuildError::MessageTooLong {
                max_len: MAX_REPLY_LEN
            })
        );
    }

    #[test]
    fn an_empty_reply_round_trips() {
        let mut chunk = [0u8; MESSAGE_LEN];
        write_chunk(&mut chunk, &Outgoing::Reply { body: &[] }, [9; 4]).unwrap();
        assert_eq!(decode_reply(&chunk), Ok(&[][..]));
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
        write_chunk(&mut chunk, &message, [0; 4]).unwrap();
        assert_eq!(ExitMessage::decode(&chunk), Ok(ExitMessage::Cover));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut chunk = [0u8; MESSAGE_LEN];
        chunk[0..2].copy_from_slice(&u16::try_from(DATA_LEN + 1).unwrap().to_be_bytes());
        assert_eq!(unpad(&chunk), Err(DecodeError::PaddingLength));
        chunk[0..2].copy_from_slice(&u16::try_from(DATA_LEN).unwrap().to_be_bytes());
        assert_eq!(unpad(&chunk), Ok(&[][..]));
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
            assert_eq!(ExitMessage::decode(&chunk), Err(DecodeError::SurbCount));
        }
    }
}

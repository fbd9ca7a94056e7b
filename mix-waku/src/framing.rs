//! `uvarint(len) || bytes` framing, as nwaku's `writeLp`/`readLp` (WAKU.md §1.1) and as the
//! lightpush request and response travel inside mix packets (WAKU.md §4).

use crate::DEFAULT_MAX_MESSAGE_SIZE;

/// Largest frame body [`decode_length_prefixed`] accepts: nwaku's default maximum `WakuMessage`
/// size (150 KiB) plus its protocol-overhead allowance `DefaultSafetyBufferProtocolOverhead`
/// (64 KiB, `waku/waku_core/message/default_values.nim`). nwaku itself reads lightpush requests
/// with no limit (`DefaultMaxRpcSize = -1`); a bound keeps a forged prefix from mattering.
pub const MAX_FRAME_LEN: usize = DEFAULT_MAX_MESSAGE_SIZE + 64 * 1024;

/// Why [`decode_length_prefixed`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The input ends inside the uvarint length prefix (or is empty).
    #[error("truncated length prefix")]
    TruncatedPrefix,
    /// The length prefix is not a minimal uvarint or overflows.
    #[error("invalid length prefix")]
    InvalidPrefix,
    /// The declared length exceeds [`MAX_FRAME_LEN`].
    #[error("frame too large")]
    TooLarge,
    /// The input ends before the declared length.
    #[error("truncated frame")]
    Truncated,
    /// Bytes follow the frame.
    #[error("trailing bytes after frame")]
    TrailingBytes,
}

/// Encodes `message` as `uvarint(len) || protobuf`.
#[must_use]
pub fn encode_length_prefixed(message: &impl prost::Message) -> Vec<u8> {
    message.encode_length_delimited_to_vec()
}

/// Frames `body` as `uvarint(len) || body` (for bytes read from a stream without their prefix).
#[must_use]
pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let prefix = unsigned_varint::encode::usize(body.len(), &mut prefix);
    let mut framed = Vec::with_capacity(prefix.len().saturating_add(body.len()));
    framed.extend_from_slice(prefix);
    framed.extend_from_slice(body);
    framed
}

/// Returns the body of the single frame `bytes` holds: `bytes` must be exactly
/// `uvarint(len) || body` with a minimal uvarint, `len == body.len()` and `len <=`
/// [`MAX_FRAME_LEN`].
///
/// # Errors
/// [`FramingError::TruncatedPrefix`] / [`FramingError::InvalidPrefix`] for a bad prefix,
/// [`FramingError::TooLarge`] when the declared length exceeds [`MAX_FRAME_LEN`],
/// [`FramingError::Truncated`] when fewer bytes follow than declared, and
/// [`FramingError::TrailingBytes`] when more do.
pub fn decode_length_prefixed(bytes: &[u8]) -> Result<&[u8], FramingError> {
    let (len, rest) = unsigned_varint::decode::usize(bytes).map_err(|error| match error {
        unsigned_varint::decode::Error::Insufficient => FramingError::TruncatedPrefix,
        _ => FramingError::InvalidPrefix,
    })?;
    if len > MAX_FRAME_LEN {
        return Err(FramingError::TooLarge);
    }
    match rest.len().cmp(&len) {
        core::cmp::Ordering::Less => Err(FramingError::Truncated),
        core::cmp::Ordering::Greater => Err(FramingError::TrailingBytes),
        core::cmp::Ordering::Equal => Ok(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LightPushResponse;

    #[test]
    fn encode_prefixes_the_protobuf_length() {
        let response = LightPushResponse {
            request_id: "r1".into(),
            status_code: 200,
            status_desc: None,
            relay_peer_count: Some(3),
        };
        let framed = encode_length_prefixed(&response);
        assert_eq!(hex::encode(&framed), "090a02723150c8016003");
        assert_eq!(
            decode_length_prefixed(&framed).unwrap(),
            hex::decode("0a02723150c8016003").unwrap()
        );
    }

    #[test]
    fn two_byte_prefix() {
        let body = vec![0x42; 300];
        let mut framed = vec![0xAC, 0x02]; // 300 = 0b10_0101100
        framed.extend(&body);
        assert_eq!(decode_length_prefixed(&framed).unwrap(), body.as_slice());
        let message = crate::WakuMessage {
            payload: vec![0; 297],
            content_topic: "t".into(),
            ..Default::default()
        };
        let framed = encode_length_prefixed(&message);
        // 3 (payload tag + 2-byte len) + 297 + 3 (content_topic) = 303 = AF 02.
        assert_eq!(&framed[..2], &[0xAF, 0x02]);
        assert_eq!(framed.len(), 305);
    }

    #[test]
    fn empty_frame_is_valid() {
        assert_eq!(decode_length_prefixed(&[0x00]).unwrap(), &[] as &[u8]);
    }

    #[test]
    fn truncated_prefix() {
        assert_eq!(
            decode_length_prefixed(&[]),
            Err(FramingError::TruncatedPrefix)
        );
        assert_eq!(
            decode_length_prefixed(&[0x80]),
            Err(FramingError::TruncatedPrefix)
        );
        assert_eq!(
            decode_length_prefixed(&[0xFF, 0xFF]),
            Err(FramingError::TruncatedPrefix)
        );
    }

    #[test]
    fn invalid_prefix() {
        // Non-minimal encoding of 1.
        assert_eq!(
            decode_length_prefixed(&[0x81, 0x00, 0x00]),
            Err(FramingError::InvalidPrefix)
        );
        // More than 64 bits.
        assert_eq!(
            decode_length_prefixed(&[0xFF; 11]),
            Err(FramingError::InvalidPrefix)
        );
    }

    #[test]
    fn truncated_body() {
        assert_eq!(
            decode_length_prefixed(&[0x01]),
            Err(FramingError::Truncated)
        );
        assert_eq!(
            decode_length_prefixed(&[0x03, 1, 2]),
            Err(FramingError::Truncated)
        );
    }

    #[test]
    fn trailing_bytes() {
        assert_eq!(
            decode_length_prefixed(&[0x00, 0x00]),
            Err(FramingError::TrailingBytes)
        );
        assert_eq!(
            decode_length_prefixed(&[0x01, 7, 0x01, 7]),
            Err(FramingError::TrailingBytes)
        );
    }

    #[test]
    fn oversize() {
        let mut prefix = unsigned_varint::encode::usize_buffer();
        let at_limit = unsigned_varint::encode::usize(MAX_FRAME_LEN, &mut prefix).to_vec();
        let mut framed = at_limit.clone();
        framed.resize(at_limit.len() + MAX_FRAME_LEN, 0);
        assert_eq!(
            decode_length_prefixed(&framed).unwrap().len(),
            MAX_FRAME_LEN
        );

        let over = unsigned_varint::encode::usize(MAX_FRAME_LEN + 1, &mut prefix).to_vec();
        // Refused from the prefix alone, whether or not the body is there.
        assert_eq!(decode_length_prefixed(&over), Err(FramingError::TooLarge));
        let mut framed = over.clone();
        framed.resize(over.len() + MAX_FRAME_LEN + 1, 0);
        assert_eq!(decode_length_prefixed(&framed), Err(FramingError::TooLarge));
        // A huge declared length (u64::MAX) is TooLarge, not an overflow panic.
        let mut huge = vec![0xFF; 9];
        huge.push(0x01);
        assert_eq!(decode_length_prefixed(&huge), Err(FramingError::TooLarge));
    }

    #[test]
    fn max_frame_len_is_nwaku_size_plus_overhead() {
        assert_eq!(MAX_FRAME_LEN, 150 * 1024 + 64 * 1024);
    }
}

//! The sender's side of lightpush v3: the request bytes a sender puts on a stream or in a mix
//! packet (`uvarint(len) || LightPushRequest`, WAKU.md §1.1, §4), and the response read back
//! from the reply. The checks a sender makes before sending are [`check_request`](crate::check_request),
//! the service's own rules.
//!
//! One request-id format for every sender of this project: a random (version 4) UUID, as
//! js-waku makes them (36 characters). nwaku uses the hex of 10 random bytes (20 characters);
//! the service only echoes the id, so both work with every service.

use rand_core::CryptoRng;

use crate::{
    FramingError, LightPushRequest, LightPushResponse, UNKNOWN_REQUEST_ID, WakuMessage,
    decode_length_prefixed, encode_length_prefixed,
};

/// Length of a request id from [`request_id`]: a UUID in its 36-character text form.
pub const REQUEST_ID_LEN: usize = 36;

/// A fresh request id: a random (version 4) UUID in lowercase hex with hyphens, as js-waku's
/// `uuid.v4()` (RFC 9562 §5.4).
pub fn request_id<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    if let Some(version) = bytes.get_mut(6) {
        *version = (*version & 0x0f) | 0x40;
    }
    if let Some(variant) = bytes.get_mut(8) {
        *variant = (*variant & 0x3f) | 0x80;
    }
    let mut id = String::with_capacity(REQUEST_ID_LEN);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        for nibble in [byte >> 4, byte & 0x0f] {
            id.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    id
}

/// The framed request publishing `message` on `pubsub_topic`:
/// `uvarint(len) || LightPushRequest { request_id, pubsub_topic, message }`.
#[must_use]
pub fn encode_request(request_id: String, pubsub_topic: &str, message: WakuMessage) -> Vec<u8> {
    encode_length_prefixed(&LightPushRequest {
        request_id,
        pubsub_topic: Some(pubsub_topic.to_owned()),
        message: Some(message),
    })
}

/// Why a reply is not the answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply is empty: the exit could not reach the service (Nim's exit answers so).
    #[error("the reply is empty: the exit could not reach the service")]
    Empty,
    /// The reply is not one length-prefixed frame.
    #[error("the reply is not length-prefixed ({0})")]
    Framing(FramingError),
    /// The frame is not a `LightPushResponse` protobuf.
    #[error("the reply is not a LightPushResponse ({0})")]
    Malformed(prost::DecodeError),
    /// The response carries another request's id.
    #[error("the reply answers another request")]
    OtherRequest,
}

/// Reads the response to request `request_id` out of a reply body
/// (`uvarint(len) || LightPushResponse`). A response with request id `"N/A"` is accepted: the
/// service answers so to requests it refused before reading them (undecodable, rate limited).
///
/// # Errors
/// [`ReplyError`]: an empty reply, bad framing, a body that is not a `LightPushResponse`, or a
/// response to another request.
pub fn decode_response(reply: &[u8], request_id: &str) -> Result<LightPushResponse, ReplyError> {
    if reply.is_empty() {
        return Err(ReplyError::Empty);
    }
    let body = decode_length_prefixed(reply).map_err(ReplyError::Framing)?;
    let response =
        <LightPushResponse as prost::Message>::decode(body).map_err(ReplyError::Malformed)?;
    if response.request_id != request_id && response.request_id != UNKNOWN_REQUEST_ID {
        return Err(ReplyError::OtherRequest);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::{Rng as _, SeedableRng as _};
        for seed in 0..64 {
            let mut rng = ChaCha20Rng::from_seed([seed; 32]);
            let id = request_id(&mut rng.clone());
            // The same bytes, formatted independently.
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            bytes[6] = 0x40 | (bytes[6] & 0x0f);
            bytes[8] = 0x80 | (bytes[8] & 0x3f);
            let hex = hex::encode(bytes);
            let want = [
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..],
            ]
            .join("-");
            assert_eq!(id, want);
            assert_eq!(id.len(), REQUEST_ID_LEN);
            assert_eq!(id.as_bytes()[14], b'4');
            assert!(
                matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
                "{id}"
            );
        }
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        assert_ne!(request_id(&mut rng), request_id(&mut rng));
    }

    #[test]
    fn requests_are_framed_and_decode_as_the_service_reads_them() {
        let message = WakuMessage {
            payload: b"hi".to_vec(),
            content_topic: "/a/1/b/proto".into(),
            ..WakuMessage::default()
        };
        let framed = encode_request("id".into(), "/waku/2/rs/2/0", message.clone());
        let request = crate::decode_request(decode_length_prefixed(&framed).unwrap()).unwrap();
        assert_eq!(request.request_id, "id");
        assert_eq!(request.pubsub_topic.as_deref(), Some("/waku/2/rs/2/0"));
        assert_eq!(request.message, Some(message));
    }

    #[test]
    fn responses_decode_and_match_the_request() {
        let response = |id: &str| LightPushResponse {
            request_id: id.into(),
            status_code: 200,
            status_desc: None,
            relay_peer_count: Some(3),
        };
        let framed = encode_length_prefixed(&response("abc"));
        assert_eq!(decode_response(&framed, "abc"), Ok(response("abc")));
        assert_eq!(
            decode_response(&framed, "other"),
            Err(ReplyError::OtherRequest)
        );
        let unattributed = encode_length_prefixed(&response("N/A"));
        assert_eq!(decode_response(&unattributed, "abc"), Ok(response("N/A")));
        assert_eq!(decode_response(&[], "abc"), Err(ReplyError::Empty));
        assert_eq!(
            decode_response(&framed[1..], "abc"),
            Err(ReplyError::Framing(FramingError::Truncated))
        );
        assert!(matches!(
            decode_response(&[0x02, 0x0A, 0x05], "abc"),
            Err(ReplyError::Malformed(_))
        ));
    }
}

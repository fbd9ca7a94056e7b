//! Protobuf messages of lightpush v3 and 14/WAKU2-MESSAGE (WAKU.md §1.2, §2), and the
//! deterministic message hash.
//!
//! The public types are the published proto3 schemas, field for field. Decoding a request the way
//! nwaku does needs one thing proto3 cannot express: nwaku (`waku/waku_lightpush/rpc_codec.nim`,
//! `waku/waku_core/message/codec.nim`) insists that `request_id`, `message`, `payload` and
//! `content_topic` are *present on the wire*, even if empty. [`decode_request`] and
//! [`decode_waku_message`] therefore decode through private twins of the schemas in which those
//! fields are `optional` (same tags and wire types, so the same bytes), check presence, and only
//! then build the public types.

use sha2::{Digest, Sha256};

/// Longest `meta` nwaku accepts (`MaxMetaAttrLength`, `waku/waku_core/message/message.nim`).
pub const MAX_META_LEN: usize = 64;

/// A Waku message (14/WAKU2-MESSAGE, WAKU.md §2). This is the `data` of a Waku relay gossipsub
/// message and field 21 of a [`LightPushRequest`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WakuMessage {
    /// Application payload (`bytes payload = 1`).
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    /// Content topic, `/{app}/{version}/{name}/{encoding}` (`string content_topic = 2`).
    #[prost(string, tag = "2")]
    pub content_topic: String,
    /// Payload version: 0 none, 1 = 26/WAKU-PAYLOAD, 2 = Noise (`optional uint32 version = 3`).
    #[prost(uint32, optional, tag = "3")]
    pub version: Option<u32>,
    /// Sender timestamp in Unix nanoseconds (`optional sint64 timestamp = 10`, zig-zag).
    #[prost(sint64, optional, tag = "10")]
    pub timestamp: Option<i64>,
    /// Application metadata, at most [`MAX_META_LEN`] bytes (`optional bytes meta = 11`).
    #[prost(bytes = "vec", optional, tag = "11")]
    pub meta: Option<Vec<u8>>,
    /// RLN proof, an embedded `RateLimitProof` kept as raw bytes
    /// (`optional bytes rate_limit_proof = 21`).
    #[prost(bytes = "vec", optional, tag = "21")]
    pub rate_limit_proof: Option<Vec<u8>>,
    /// Whether stores should skip this message (`optional bool ephemeral = 31`).
    #[prost(bool, optional, tag = "31")]
    pub ephemeral: Option<bool>,
}

/// A lightpush v3 request (WAKU.md §1.2). Field 10 is reserved for a future `request_type`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LightPushRequest {
    /// Client-chosen id the service echoes (`string request_id = 1`).
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Relay topic to publish on, `/waku/2/rs/<cluster>/<shard>`
    /// (`optional string pubsub_topic = 20`).
    #[prost(string, optional, tag = "20")]
    pub pubsub_topic: Option<String>,
    /// The message to publish (`WakuMessage message = 21`); nwaku requires it.
    #[prost(message, optional, tag = "21")]
    pub message: Option<WakuMessage>,
}

/// A lightpush v3 response (WAKU.md §1.2).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LightPushResponse {
    /// The request's `request_id`, or `"N/A"` when the request could not be decoded
    /// (`string request_id = 1`).
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Status, one of nwaku's lightpush status codes (WAKU.md §1.3) (`uint32 status_code = 10`).
    #[prost(uint32, tag = "10")]
    pub status_code: u32,
    /// Short human-readable reason, set on errors (`optional string status_desc = 11`).
    #[prost(string, optional, tag = "11")]
    pub status_desc: Option<String>,
    /// Number of relay peers the message went to, set on success
    /// (`optional uint32 relay_peer_count = 12`).
    #[prost(uint32, optional, tag = "12")]
    pub relay_peer_count: Option<u32>,
}

/// Why request or message bytes were refused by the nwaku-compatible decoders.
///
/// `Display` follows nwaku's `$ProtobufError` where nwaku has an equivalent
/// (`MissingRequiredField <field>`, `InvalidLengthField meta`), so the lightpush service can answer
/// with the same `status_desc` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a valid protobuf encoding of the message (bad varint, wrong wire type,
    /// truncated field, invalid UTF-8 in a string, ...).
    #[error("malformed protobuf: {0}")]
    Malformed(prost::DecodeError),
    /// A field nwaku requires is absent from the wire (`request_id`, `message`, `payload` or
    /// `content_topic`).
    #[error("MissingRequiredField {0}")]
    MissingField(&'static str),
    /// `meta` is longer than [`MAX_META_LEN`].
    #[error("InvalidLengthField meta")]
    MetaTooLong,
}

/// Twins of the public schemas in which the fields nwaku requires are `optional`, so that their
/// presence can be checked. Same names as the public types, so prost's error texts read the same.
mod wire {
    /// `WakuMessage` with presence tracking for `payload` and `content_topic`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct WakuMessage {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub(super) payload: Option<Vec<u8>>,
        #[prost(string, optional, tag = "2")]
        pub(super) content_topic: Option<String>,
        #[prost(uint32, optional, tag = "3")]
        pub(super) version: Option<u32>,
        #[prost(sint64, optional, tag = "10")]
        pub(super) timestamp: Option<i64>,
        #[prost(bytes = "vec", optional, tag = "11")]
        pub(super) meta: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "21")]
        pub(super) rate_limit_proof: Option<Vec<u8>>,
        #[prost(bool, optional, tag = "31")]
        pub(super) ephemeral: Option<bool>,
    }

    /// `LightPushRequest` with presence tracking for `request_id` and `message`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct LightPushRequest {
        #[prost(string, optional, tag = "1")]
        pub(super) request_id: Option<String>,
        #[prost(string, optional, tag = "20")]
        pub(super) pubsub_topic: Option<String>,
        #[prost(message, optional, tag = "21")]
        pub(super) message: Option<WakuMessage>,
    }
}

impl wire::WakuMessage {
    /// Applies nwaku's `WakuMessage.decode` rules: `payload` and `content_topic` present, `meta`
    /// at most [`MAX_META_LEN`] bytes.
    fn into_message(self) -> Result<WakuMessage, DecodeError> {
        let payload = self.payload.ok_or(DecodeError::MissingField("payload"))?;
        let content_topic = self
            .content_topic
            .ok_or(DecodeError::MissingField("content_topic"))?;
        if self
            .meta
            .as_ref()
            .is_some_and(|meta| meta.len() > MAX_META_LEN)
        {
            return Err(DecodeError::MetaTooLong);
        }
        Ok(WakuMessage {
            payload,
            content_topic,
            version: self.version,
            timestamp: self.timestamp,
            meta: self.meta,
            rate_limit_proof: self.rate_limit_proof,
            ephemeral: self.ephemeral,
        })
    }
}

/// Decodes a `WakuMessage` as nwaku does (e.g. the `data` of a relay message):
/// `payload` and `content_topic` must be present (possibly empty) and `meta` must not exceed
/// [`MAX_META_LEN`] bytes. Unknown fields are skipped.
///
/// # Errors
/// [`DecodeError::Malformed`] for bytes that are not a protobuf `WakuMessage`,
/// [`DecodeError::MissingField`] for an absent `payload` or `content_topic`,
/// [`DecodeError::MetaTooLong`] for an oversized `meta`.
pub fn decode_waku_message(bytes: &[u8]) -> Result<WakuMessage, DecodeError> {
    <wire::WakuMessage as prost::Message>::decode(bytes)
        .map_err(DecodeError::Malformed)?
        .into_message()
}

/// Decodes a `LightPushRequest` (no length prefix) as nwaku does (`rpc_codec.nim`): `request_id`
/// and `message` must be present, and the message must pass [`decode_waku_message`]'s rules. On
/// success `message` is always `Some`.
///
/// # Errors
/// [`DecodeError::Malformed`] for bytes that are not a protobuf `LightPushRequest`,
/// [`DecodeError::MissingField`] for an absent `request_id`, `message`, `payload` or
/// `content_topic`, [`DecodeError::MetaTooLong`] for an oversized `meta`.
pub fn decode_request(bytes: &[u8]) -> Result<LightPushRequest, DecodeError> {
    let wire = <wire::LightPushRequest as prost::Message>::decode(bytes)
        .map_err(DecodeError::Malformed)?;
    let request_id = wire
        .request_id
        .ok_or(DecodeError::MissingField("request_id"))?;
    let message = wire
        .message
        .ok_or(DecodeError::MissingField("message"))?
        .into_message()?;
    Ok(LightPushRequest {
        request_id,
        pubsub_topic: wire.pubsub_topic,
        message: Some(message),
    })
}

/// The deterministic message hash of 14/WAKU2-MESSAGE (WAKU.md §2, nwaku
/// `computeMessageHash` in `waku/waku_core/message/digest.nim`):
/// `SHA-256(pubsub_topic || payload || content_topic || meta || timestamp)`, with an absent `meta`
/// as no bytes and the timestamp (0 when absent) as 8 big-endian bytes of its two's complement.
/// `version`, `rate_limit_proof` and `ephemeral` are not covered.
#[must_use]
pub fn message_hash(pubsub_topic: &str, msg: &WakuMessage) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(pubsub_topic.as_bytes());
    hasher.update(&msg.payload);
    hasher.update(msg.content_topic.as_bytes());
    hasher.update(msg.meta.as_deref().unwrap_or_default());
    hasher.update(msg.timestamp.unwrap_or(0).to_be_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// A test length as a one-byte varint/length.
    fn len_u8(len: usize) -> u8 {
        assert!(len < 0x80, "test frame too long for a one-byte length");
        u8::try_from(len).unwrap()
    }

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    /// A message with every field set, and its bytes assembled by hand from WAKU.md §2.
    fn full_message() -> (WakuMessage, Vec<u8>) {
        let msg = WakuMessage {
            payload: vec![0xAB, 0xCD],
            content_topic: "/a/1/b/p".into(),
            version: Some(1),
            timestamp: Some(-2),
            meta: Some(vec![0x01]),
            rate_limit_proof: Some(vec![0x09, 0x08]),
            ephemeral: Some(true),
        };
        let mut bytes = Vec::new();
        bytes.extend([0x0A, 0x02, 0xAB, 0xCD]); // 1: payload, LEN
        bytes.extend([0x12, 0x08]); // 2: content_topic, LEN 8
        bytes.extend(b"/a/1/b/p");
        bytes.extend([0x18, 0x01]); // 3: version, VARINT
        bytes.extend([0x50, 0x03]); // 10: timestamp, VARINT, zig-zag(-2) = 3
        bytes.extend([0x5A, 0x01, 0x01]); // 11: meta, LEN
        bytes.extend([0xAA, 0x01, 0x02, 0x09, 0x08]); // 21: rate_limit_proof, LEN
        bytes.extend([0xF8, 0x01, 0x01]); // 31: ephemeral, VARINT
        (msg, bytes)
    }

    #[test]
    fn waku_message_golden_bytes() {
        let (msg, bytes) = full_message();
        assert_eq!(hex::encode(msg.encode_to_vec()), hex::encode(&bytes));
        assert_eq!(WakuMessage::decode(bytes.as_slice()).unwrap(), msg);
        assert_eq!(decode_waku_message(&bytes).unwrap(), msg);
    }

    #[test]
    fn waku_message_absent_optionals_are_not_encoded() {
        let msg = WakuMessage {
            payload: vec![7],
            content_topic: "t".into(),
            ..WakuMessage::default()
        };
        assert_eq!(msg.encode_to_vec(), unhex("0a0107120174"));
        // Present-but-zero optionals are encoded (proto3 `optional` keeps presence).
        let zeroes = WakuMessage {
            version: Some(0),
            timestamp: Some(0),
            ephemeral: Some(false),
            ..msg
        };
        assert_eq!(
            zeroes.encode_to_vec(),
            unhex("0a0107120174_1800_5000_f80100".replace('_', "").as_str())
        );
    }

    #[test]
    fn timestamp_is_zig_zag() {
        let msg = WakuMessage {
            payload: vec![1],
            content_topic: "t".into(),
            timestamp: Some(0x175789bfa23f8400),
            ..WakuMessage::default()
        };
        // Field 10, VARINT (tag 0x50); zig-zag(n) = 2n = 0x2eaf137f447f0800 as LEB128.
        assert_eq!(
            hex::encode(msg.encode_to_vec()),
            "0a0101120174508090fca3f4efc4d72e"
        );
        let min = WakuMessage {
            timestamp: Some(i64::MIN),
            ..msg.clone()
        };
        let bytes = min.encode_to_vec();
        assert_eq!(&bytes[6..], &unhex("50ffffffffffffffffff01")[..]);
        assert_eq!(WakuMessage::decode(bytes.as_slice()).unwrap(), min);
    }

    #[test]
    fn request_golden_bytes() {
        let (msg, msg_bytes) = full_message();
        let request = LightPushRequest {
            request_id: "r1".into(),
            pubsub_topic: Some("/waku/2/rs/2/0".into()),
            message: Some(msg),
        };
        let mut bytes = vec![0x0A, 0x02, b'r', b'1']; // 1: request_id
        bytes.extend([0xA2, 0x01, 14]); // 20: pubsub_topic, LEN 14
        bytes.extend(b"/waku/2/rs/2/0");
        bytes.extend([0xAA, 0x01, len_u8(msg_bytes.len())]); // 21: message, LEN
        bytes.extend(&msg_bytes);
        assert_eq!(hex::encode(request.encode_to_vec()), hex::encode(&bytes));
        assert_eq!(LightPushRequest::decode(bytes.as_slice()).unwrap(), request);
        assert_eq!(decode_request(&bytes).unwrap(), request);
    }

    #[test]
    fn response_golden_bytes() {
        let ok = LightPushResponse {
            request_id: "r1".into(),
            status_code: 200,
            status_desc: None,
            relay_peer_count: Some(3),
        };
        // 1: "r1"; 10: 200 = C8 01; 12: 3.
        assert_eq!(ok.encode_to_vec(), unhex("0a02723150c8016003"));
        let err = LightPushResponse {
            request_id: "N/A".into(),
            status_code: 505,
            status_desc: Some("no".into()),
            relay_peer_count: None,
        };
        // 1: "N/A"; 10: 505 = F9 03; 11: "no".
        assert_eq!(err.encode_to_vec(), unhex("0a034e2f4150f9035a026e6f"));
        assert_eq!(
            LightPushResponse::decode(unhex("0a034e2f4150f9035a026e6f").as_slice()).unwrap(),
            err
        );
        // Relay count 0 is kept on the wire (optional presence).
        let zero = LightPushResponse {
            relay_peer_count: Some(0),
            ..ok
        };
        assert_eq!(zero.encode_to_vec(), unhex("0a02723150c8016000"));
    }

    #[test]
    fn round_trip_through_both_decoders() {
        let request = LightPushRequest {
            request_id: "0123456789abcdef0123".into(),
            pubsub_topic: None,
            message: Some(WakuMessage {
                payload: vec![0; 300],
                content_topic: "/toy-chat/2/huilong/proto".into(),
                version: Some(0),
                timestamp: Some(1_700_000_000_123_456_789),
                meta: Some(vec![0x55; MAX_META_LEN]),
                rate_limit_proof: None,
                ephemeral: None,
            }),
        };
        let bytes = request.encode_to_vec();
        assert_eq!(LightPushRequest::decode(bytes.as_slice()).unwrap(), request);
        assert_eq!(decode_request(&bytes).unwrap(), request);
    }

    #[test]
    fn strict_decoder_requires_present_fields() {
        // Empty strings/bytes present on the wire are accepted (nwaku writes them that way).
        let present_empty = unhex("0a00aa01040a001200");
        let request = decode_request(&present_empty).unwrap();
        assert_eq!(request.request_id, "");
        assert_eq!(request.message.unwrap(), WakuMessage::default());

        // Missing request_id.
        assert_eq!(
            decode_request(&unhex("aa01040a001200")),
            Err(DecodeError::MissingField("request_id"))
        );
        // Missing message.
        assert_eq!(
            decode_request(&unhex("0a0178a201026162")),
            Err(DecodeError::MissingField("message"))
        );
        // Present but empty message: payload is the first missing field.
        assert_eq!(
            decode_request(&unhex("0a0178aa0100")),
            Err(DecodeError::MissingField("payload"))
        );
        // Missing content_topic.
        assert_eq!(
            decode_request(&unhex("0a0178aa01020a00")),
            Err(DecodeError::MissingField("content_topic"))
        );
        assert_eq!(
            decode_waku_message(&unhex("1200")),
            Err(DecodeError::MissingField("payload"))
        );
        assert_eq!(
            decode_waku_message(&unhex("0a00")),
            Err(DecodeError::MissingField("content_topic"))
        );
        // The plain prost decoder accepts all of these (proto3 semantics).
        assert!(LightPushRequest::decode(unhex("aa01040a001200").as_slice()).is_ok());
    }

    #[test]
    fn strict_decoder_bounds_meta() {
        let mut msg = WakuMessage {
            payload: vec![1],
            content_topic: "t".into(),
            meta: Some(vec![0; MAX_META_LEN]),
            ..WakuMessage::default()
        };
        assert!(decode_waku_message(&msg.encode_to_vec()).is_ok());
        msg.meta = Some(vec![0; MAX_META_LEN + 1]);
        assert_eq!(
            decode_waku_message(&msg.encode_to_vec()),
            Err(DecodeError::MetaTooLong)
        );
        let request = LightPushRequest {
            request_id: "x".into(),
            pubsub_topic: None,
            message: Some(msg),
        };
        assert_eq!(
            decode_request(&request.encode_to_vec()),
            Err(DecodeError::MetaTooLong)
        );
    }

    #[test]
    fn strict_decoder_rejects_malformed_bytes() {
        for bad in [
            &b"\x0a"[..],                                    // truncated tag payload
            b"\x0a\x05ab",                                   // length past the end
            b"\x0a\x02\xff\xfe",                             // request_id not UTF-8
            b"\xaa\x01\x03\x12\x01",                         // message truncated inside
            b"\x0d\x00\x00",                                 // fixed32 truncated
            b"\x0f",                                         // wire type 7 does not exist
            b"\x00",                                         // field 0 does not exist
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // overlong varint tag
        ] {
            assert!(
                matches!(decode_request(bad), Err(DecodeError::Malformed(_))),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn strict_decoder_skips_unknown_fields() {
        // request_id "x", unknown field 10 (the reserved request_type) = 1, message {payload, topic}.
        let bytes = unhex("0a01785001aa01060a0101120174");
        let request = decode_request(&bytes).unwrap();
        assert_eq!(request.request_id, "x");
        assert_eq!(request.message.unwrap().payload, vec![1]);
    }

    #[test]
    fn message_hash_spec_vector() {
        // WAKU.md §2 (14/WAKU2-MESSAGE deterministic hashing test vector).
        let msg = WakuMessage {
            payload: unhex("010203045445535405060708"),
            content_topic: "/waku/2/default-content/proto".into(),
            meta: Some(unhex("73757065722d736563726574")),
            timestamp: Some(0x175789bfa23f8400),
            version: Some(1),
            rate_limit_proof: Some(vec![1, 2, 3]),
            ephemeral: Some(true),
        };
        let expected = "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05";
        assert_eq!(
            hex::encode(message_hash("/waku/2/default-waku/proto", &msg)),
            expected
        );
        // version, proof and ephemeral are not covered.
        let bare = WakuMessage {
            version: None,
            rate_limit_proof: None,
            ephemeral: None,
            ..msg.clone()
        };
        assert_eq!(
            hex::encode(message_hash("/waku/2/default-waku/proto", &bare)),
            expected
        );
        // Every covered input changes the hash.
        let topic = message_hash("/waku/2/rs/0/0", &msg);
        let ts = message_hash(
            "/waku/2/default-waku/proto",
            &WakuMessage {
                timestamp: Some(0x175789bfa23f8401),
                ..msg.clone()
            },
        );
        assert_ne!(hex::encode(topic), expected);
        assert_ne!(hex::encode(ts), expected);
    }

    #[test]
    fn message_hash_absent_fields_hash_as_empty_and_zero() {
        let msg = WakuMessage {
            payload: b"p".to_vec(),
            content_topic: "c".into(),
            ..WakuMessage::default()
        };
        let mut preimage = b"/t".to_vec();
        preimage.extend(b"p");
        preimage.extend(b"c");
        preimage.extend([0u8; 8]);
        let expected: [u8; 32] = Sha256::digest(&preimage).into();
        assert_eq!(message_hash("/t", &msg), expected);
        let explicit = WakuMessage {
            meta: Some(Vec::new()),
            timestamp: Some(0),
            ..msg.clone()
        };
        assert_eq!(message_hash("/t", &explicit), expected);
        // A negative timestamp hashes as its two's complement.
        let negative = WakuMessage {
            timestamp: Some(-1),
            ..msg
        };
        let mut preimage = b"/tpc".to_vec();
        preimage.extend([0xFF; 8]);
        let expected: [u8; 32] = Sha256::digest(&preimage).into();
        assert_eq!(message_hash("/t", &negative), expected);
    }
}

//! Waku lightpush v3 for the relay (service side) and every sender (client side): the
//! lightpush v3 and 14/WAKU2-MESSAGE protobufs with nwaku's decoding rules, the
//! `uvarint(len) || protobuf` framing, the service's decisions, the sender's request and response
//! codec, the protocol ids and static-sharding topics.
//!
//! Ground truth is `spec/WAKU.md` (§1 lightpush v3, §2 `WakuMessage`, §4 what travels through
//! mix), written from nwaku. Pure: no I/O, no clock (the caller's `publish` callback stamps
//! timestamps), randomness only from an RNG the caller passes; builds for wasm32.
//!
//! * [`WakuMessage`], [`LightPushRequest`], [`LightPushResponse`]: the protobuf messages
//!   (hand-written `prost` derives); [`decode_request`] / [`decode_waku_message`]: nwaku's stricter
//!   decoding rules; [`message_hash`]: the deterministic message hash (14/WAKU2-MESSAGE).
//! * [`encode_length_prefixed`] / [`decode_length_prefixed`]: the framing nwaku uses on the
//!   lightpush stream (`writeLp`/`readLp`) and inside mix packets (WAKU.md §4).
//! * [`LightPushService`]: decode, validate, publish through a callback, answer; its one entry
//!   point is [`LightPushService::handle_length_prefixed`] (framed bytes in, an [`Answer`] out).
//! * The sender's side: [`request_id`] (one format, a UUID v4), [`encode_request`],
//!   [`check_request`] (the service's rules a sender can check before sending) and
//!   [`decode_response`].
// Wire values never meet arithmetic that can overflow or panic (security review F1).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod client;
mod framing;
mod proto;
mod service;

pub use client::{REQUEST_ID_LEN, ReplyError, decode_response, encode_request, request_id};
pub use framing::{
    FramingError, MAX_FRAME_LEN, decode_length_prefixed, encode_frame, encode_length_prefixed,
};
pub use proto::{
    DecodeError, LightPushRequest, LightPushResponse, MAX_META_LEN, WakuMessage, decode_request,
    decode_waku_message, message_hash,
};
pub use service::{
    Answer, LightPushService, PublishOutcome, Refusal, ServiceConfig, StatusCode,
    UNKNOWN_REQUEST_ID, check_request,
};

/// nwaku's default maximum size of an encoded `WakuMessage` on relay: 150 KiB
/// (`DefaultMaxWakuMessageSize`, `waku/waku_core/message/default_values.nim`).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 150 * 1024;

/// Protocol id of Waku lightpush v3 (WAKU.md §1.1). It is also the origin codec of the mix
/// packets that carry lightpush requests (WAKU.md §4).
pub const LIGHTPUSH_PROTOCOL: &str = "/vac/waku/lightpush/3.0.0";

/// Protocol id of Waku relay (11/WAKU2-RELAY): gossipsub v1.1 under a Waku-specific id. nwaku and
/// js-waku (`packages/relay/src/constants.ts`, `RelayCodecs`) register only this id.
pub const RELAY_PROTOCOL: &str = "/vac/waku/relay/2.0.0";

/// Prefix of a static-sharding pubsub topic, `/waku/2/rs/<cluster>/<shard>`.
pub const STATIC_SHARDING_PREFIX: &str = "/waku/2/rs/";

/// The pubsub topic of shard `shard` in cluster `cluster`: `/waku/2/rs/<cluster>/<shard>`
/// (nwaku `RelayShard` `$`, `waku/waku_core/topics/pubsub_topic.nim`).
#[must_use]
pub fn pubsub_topic(cluster: u16, shard: u16) -> String {
    format!("{STATIC_SHARDING_PREFIX}{cluster}/{shard}")
}

/// Parses a static-sharding pubsub topic into `(cluster, shard)`.
///
/// Stricter than nwaku's `parseStaticSharding`: only the canonical form that [`pubsub_topic`]
/// produces is accepted (decimal digits, no sign, no leading zeros, exactly two parts, each fitting
/// a `u16`). Gossipsub topics are compared as strings, so `/waku/2/rs/1/01` is not the topic of
/// shard 1 and must not be treated as if it were.
#[must_use]
pub fn parse_pubsub_topic(topic: &str) -> Option<(u16, u16)> {
    let rest = topic.strip_prefix(STATIC_SHARDING_PREFIX)?;
    let (cluster, shard) = rest.split_once('/')?;
    Some((parse_canonical_u16(cluster)?, parse_canonical_u16(shard)?))
}

/// A `u16` written in canonical decimal: at least one digit, only ASCII digits, no leading zero
/// unless the number is 0.
fn parse_canonical_u16(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    let canonical = !bytes.is_empty()
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes.len() == 1 || bytes.first() != Some(&b'0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_ids() {
        assert_eq!(LIGHTPUSH_PROTOCOL, "/vac/waku/lightpush/3.0.0");
        assert_eq!(RELAY_PROTOCOL, "/vac/waku/relay/2.0.0");
    }

    #[test]
    fn pubsub_topic_formats() {
        assert_eq!(pubsub_topic(2, 0), "/waku/2/rs/2/0");
        assert_eq!(pubsub_topic(1, 7), "/waku/2/rs/1/7");
        assert_eq!(pubsub_topic(65535, 1023), "/waku/2/rs/65535/1023");
    }

    #[test]
    fn pubsub_topic_round_trips() {
        for (cluster, shard) in [(0, 0), (1, 0), (2, 7), (16, 1023), (65535, 65535)] {
            assert_eq!(
                parse_pubsub_topic(&pubsub_topic(cluster, shard)),
                Some((cluster, shard))
            );
        }
    }

    #[test]
    fn parse_pubsub_topic_rejects_non_canonical_forms() {
        for bad in [
            "",
            "/waku/2/rs/",
            "/waku/2/rs/1",
            "/waku/2/rs/1/",
            "/waku/2/rs//1",
            "/waku/2/rs/1/2/3",
            "/waku/2/rs/1/2/",
            "/waku/2/rs/01/2",
            "/waku/2/rs/1/02",
            "/waku/2/rs/00/0",
            "/waku/2/rs/+1/2",
            "/waku/2/rs/1/-2",
            "/waku/2/rs/-0/0",
            "/waku/2/rs/1/ 2",
            "/waku/2/rs/1/2 ",
            "/waku/2/rs/65536/0",
            "/waku/2/rs/1/65536",
            "/waku/2/rs/1/99999999999999999999",
            "/waku/2/rs/1/٣",
            "/waku/2/rs/a/b",
            "waku/2/rs/1/2",
            "/waku/3/rs/1/2",
            "/WAKU/2/rs/1/2",
            "/waku/2/default-waku/proto",
            "/waku/2/rs/1/2?",
        ] {
            assert_eq!(parse_pubsub_topic(bad), None, "{bad:?} must be rejected");
        }
    }

    #[test]
    fn parse_pubsub_topic_accepts_zero() {
        assert_eq!(parse_pubsub_topic("/waku/2/rs/0/0"), Some((0, 0)));
        assert_eq!(parse_pubsub_topic("/waku/2/rs/10/100"), Some((10, 100)));
    }
}

//! Waku for the exit node: the gossipsub settings of Waku relay and the glue between gossipsub
//! and the lightpush service, over the `mix-waku` crate (re-exported here), which holds the wire
//! types, the service's decisions and the sender's codec.
//!
//! Ground truth is `spec/WAKU.md` (§1 lightpush v3, §2 `WakuMessage`), written from nwaku.
//! Everything here is pure: no I/O, no clock, no randomness. The node code owns the streams, the
//! mix packets and the gossipsub behaviour, and hands bytes in.
//!
//! * [`WakuMessage`], [`LightPushRequest`], [`LightPushResponse`]: the protobuf messages
//!   (hand-written `prost` derives); [`decode_request`] / [`decode_waku_message`]: nwaku's stricter
//!   decoding rules; [`message_hash`]: the deterministic message hash (14/WAKU2-MESSAGE).
//! * [`encode_length_prefixed`] / [`decode_length_prefixed`]: the `uvarint(len) || protobuf`
//!   framing nwaku uses on the lightpush stream (`writeLp`/`readLp`) and inside mix packets
//!   (WAKU.md §4).
//! * [`LightPushService`] (from `mix-waku`): decode, validate, publish through a callback,
//!   answer; [`publish_outcome`] maps a gossipsub publish result for its callback.
//! * [`gossipsub_config`] / [`gossipsub_message_id`]: Waku relay (11/WAKU2-RELAY) on top of
//!   rust-libp2p gossipsub, with nwaku's parameters.

pub mod metadata;
mod relay;

pub use mix_waku::{
    Answer, DEFAULT_MAX_MESSAGE_SIZE, DecodeError, FramingError, LIGHTPUSH_PROTOCOL,
    LightPushRequest, LightPushResponse, LightPushService, MAX_FRAME_LEN, MAX_META_LEN,
    PublishOutcome, RELAY_PROTOCOL, ReplyError, STATIC_SHARDING_PREFIX, ServiceConfig, StatusCode,
    WakuMessage, decode_length_prefixed, decode_request, decode_response, decode_waku_message,
    encode_frame, encode_length_prefixed, encode_request, message_hash, parse_pubsub_topic,
    pubsub_topic, request_id,
};
pub use relay::{
    GOSSIPSUB_MAX_TRANSMIT_SIZE, RelayConfigError, gossipsub_behaviour, gossipsub_config,
    gossipsub_message_id, publish_outcome,
};

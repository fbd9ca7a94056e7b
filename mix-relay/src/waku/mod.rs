//! Waku for the exit node: lightpush v3 service logic and the gossipsub settings of Waku relay,
//! over the wire types of the `mix-waku` crate (re-exported here).
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
//! * [`LightPushService`]: decode, validate, publish through a callback, answer.
//! * [`gossipsub_config`] / [`gossipsub_message_id`]: Waku relay (11/WAKU2-RELAY) on top of
//!   rust-libp2p gossipsub, with nwaku's parameters.

pub mod metadata;
mod relay;
mod service;

pub use mix_waku::{
    DEFAULT_MAX_MESSAGE_SIZE, DecodeError, FramingError, LIGHTPUSH_PROTOCOL, LightPushRequest,
    LightPushResponse, MAX_FRAME_LEN, MAX_META_LEN, RELAY_PROTOCOL, STATIC_SHARDING_PREFIX,
    WakuMessage, decode_length_prefixed, decode_request, decode_waku_message,
    encode_length_prefixed, message_hash, parse_pubsub_topic, pubsub_topic,
};
pub use relay::{
    GOSSIPSUB_MAX_TRANSMIT_SIZE, RelayConfigError, gossipsub_behaviour, gossipsub_config,
    gossipsub_message_id,
};
pub use service::{LightPushService, PublishOutcome, ServiceConfig, StatusCode};

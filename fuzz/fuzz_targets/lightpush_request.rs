//! The lightpush v3 service of mix-waku on arbitrary request bytes, framed (its one entry point,
//! the one the relay's exit and stream server call) and bare, and the Waku decoders it relies on.
//! Must never panic; every response carries one of nwaku's status codes and decodes back; a
//! published message re-encodes to bytes nwaku accepts; a message the sender's check
//! (`check_request`) passes is one the service publishes.
//!
//! The bytes are also tried as the `WakuMessage` of a request for a served topic, so that the
//! message checks and the publish path are reached without the fuzzer finding the topic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core_fuzz::length_prefixed;
use mix_waku::{
    LightPushResponse, LightPushService, MAX_FRAME_LEN, MAX_META_LEN, PublishOutcome,
    ServiceConfig, StatusCode, WakuMessage, check_request, decode_length_prefixed, decode_request,
    decode_waku_message, encode_length_prefixed, parse_pubsub_topic, pubsub_topic,
};
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint};

const CLUSTER: u16 = 2;
const SHARDS: [u16; 2] = [0, 1];

/// The publish callback: checks what it is handed, and records that it was called.
fn publish(called: &mut bool, topic: &str, message: &WakuMessage) -> PublishOutcome {
    *called = true;
    let (cluster, shard) = parse_pubsub_topic(topic).expect("published on a static-sharding topic");
    assert!(cluster == CLUSTER && SHARDS.contains(&shard));
    assert!(!message.payload.is_empty() && !message.content_topic.is_empty());
    // The node publishes `message.encode_to_vec()`: nwaku must decode it to the same message.
    assert_eq!(
        decode_waku_message(&message.encode_to_vec()).as_ref(),
        Ok(message)
    );
    PublishOutcome::Published {
        relay_peer_count: 1,
    }
}

fn check_response(response: &LightPushResponse, called: bool) {
    let status = StatusCode::from_code(response.status_code);
    assert!(status.is_some(), "status {}", response.status_code);
    assert_eq!(called, status == Some(StatusCode::Success));
    if called {
        assert_eq!(response.relay_peer_count, Some(1));
    }
}

fuzz_target!(|data: &[u8]| {
    let service = LightPushService::new(ServiceConfig::new(CLUSTER, SHARDS.to_vec()));

    // Bare protobuf.
    let mut called = false;
    let response = service.handle(data, |topic, message| publish(&mut called, topic, message));
    check_response(&response, called);
    match decode_request(data) {
        Ok(request) => assert_eq!(response.request_id, request.request_id),
        Err(_) => {
            assert_eq!(response.request_id, "N/A");
            assert_eq!(response.status_code, StatusCode::BadRequest.code());
        }
    }

    // The same bytes framed: the same answer, framed.
    if data.len() <= MAX_FRAME_LEN {
        let mut called_framed = false;
        let framed = service.handle_length_prefixed(&length_prefixed(data), |topic, message| {
            publish(&mut called_framed, topic, message)
        });
        assert_eq!(called_framed, called);
        assert_eq!(framed.response, response);
        assert_eq!(framed.framed, encode_length_prefixed(&response));
    }

    // The raw bytes as a (probably ill-)framed request.
    let mut called_raw = false;
    let framed = service.handle_length_prefixed(data, |topic, message| {
        publish(&mut called_raw, topic, message)
    });
    let body = decode_length_prefixed(&framed.framed).expect("the response is one frame");
    let response = LightPushResponse::decode(body).expect("the response decodes");
    assert_eq!(response, framed.response);
    check_response(&response, called_raw);
    if decode_length_prefixed(data).is_err() {
        assert!(!called_raw);
        assert_eq!(response.status_code, StatusCode::BadRequest.code());
    }

    // The bytes as the message of a request for a served topic: published exactly when the
    // message passes nwaku's decoding and the service's checks.
    let topic = pubsub_topic(CLUSTER, SHARDS[data.len() % 2]);
    let mut request = Vec::new();
    for (tag, field) in [(1, &b"id"[..]), (20, topic.as_bytes()), (21, data)] {
        encode_key(tag, WireType::LengthDelimited, &mut request);
        encode_varint(field.len() as u64, &mut request);
        request.extend_from_slice(field);
    }
    let mut called_wrapped = false;
    let response = service.handle(&request, |topic, message| {
        publish(&mut called_wrapped, topic, message)
    });
    check_response(&response, called_wrapped);
    let decoded = decode_waku_message(data);
    let id = if decoded.is_ok() { "id" } else { "N/A" };
    assert_eq!(response.request_id, id);
    let publishable = decoded.as_ref().is_ok_and(|m| {
        !m.payload.is_empty()
            && !m.content_topic.is_empty()
            && m.encoded_len() <= service.config().max_message_size
    });
    assert_eq!(called_wrapped, publishable);
    // The sender's check: on a served topic it passes exactly the messages the service takes
    // (size aside, which a packet bounds far below the service's limit).
    if let Ok(message) = &decoded {
        let checked = check_request(&topic, message);
        if message.encoded_len() <= service.config().max_message_size {
            assert_eq!(checked.is_ok(), called_wrapped, "{checked:?}");
        }
        if let Err(refusal) = checked {
            assert_eq!(refusal.status.code(), response.status_code);
            assert_eq!(response.status_desc.as_deref(), Some(refusal.desc.as_str()));
        }
    }

    // The decoders on their own.
    if let Ok(message) = decode_waku_message(data) {
        assert!(
            message
                .meta
                .as_ref()
                .is_none_or(|m| m.len() <= MAX_META_LEN)
        );
    }
    if let Ok(body) = decode_length_prefixed(data) {
        assert!(body.len() <= MAX_FRAME_LEN);
        assert_eq!(length_prefixed(body), data);
    }
    let text = String::from_utf8_lossy(data);
    if let Some((cluster, shard)) = parse_pubsub_topic(&text) {
        assert_eq!(pubsub_topic(cluster, shard), text);
    }
});

//! Lightpush v3 over mix (WAKU.md §4) as JS sees it: the size a `WakuMessage` payload may
//! have, and the response with its trace. The request and response codec is `mix-waku`'s
//! (the relay's native sender uses the same).

use mix_libp2p::Client;
use mix_waku::{LIGHTPUSH_PROTOCOL, REQUEST_ID_LEN, WakuMessage};
use serde::Serialize;

use crate::error::{Code, MixError};

pub(crate) use mix_waku::{encode_request as request_bytes, request_id};

/// The largest `WakuMessage` payload that fits one packet of `format` with `surbs` SURBs, for a message
/// like `template` (its payload is ignored) on `pubsub_topic`, with a request id of
/// [`REQUEST_ID_LEN`] characters.
///
/// # Errors
/// `INVALID_OPTIONS` if the SURB count leaves no room at all.
pub(crate) fn max_payload(
    format: mix_core::Format,
    pubsub_topic: &str,
    template: &WakuMessage,
    surbs: usize,
) -> Result<usize, MixError> {
    let budget =
        Client::max_message_len(format, LIGHTPUSH_PROTOCOL, surbs).map_err(MixError::from)?;
    let framed_len = |payload_len: usize| {
        let mut message = template.clone();
        message.payload = vec![0; payload_len];
        request_bytes("0".repeat(REQUEST_ID_LEN), pubsub_topic, message).len()
    };
    if framed_len(0) > budget {
        return Err(MixError::invalid(format!(
            "the topics and metadata alone exceed the {budget} bytes a packet with {surbs} SURBs \
             carries"
        )));
    }
    // Framed length grows with the payload (by one byte per byte, plus varint steps): the
    // largest fit is found by bisection.
    let (mut lo, mut hi) = (0usize, budget);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if framed_len(mid) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

/// Where an answered request went and how long each phase took, as JS sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Trace {
    /// The forward hops (two intermediates, then the exit), as peer ids.
    pub(crate) hops: Vec<String>,
    /// The reply's hops back to this client's gateway circuit (two intermediates).
    pub(crate) reply_hops: Vec<String>,
    /// Choosing the path and building the Sphinx packet(s), in ms.
    pub(crate) build_ms: f64,
    /// From handing the packet to the first hop until the reply packet arrived: the three
    /// hops out, the service at the exit, the three hops back, in ms.
    pub(crate) mixnet_ms: f64,
    /// Opening the reply (one SURB's layers), in ms.
    pub(crate) open_ms: f64,
}

/// A lightpush response as JS sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Response {
    /// The request's id, echoed.
    pub(crate) request_id: String,
    /// nwaku's status code: 200 published, 4xx refused, 5xx failed.
    pub(crate) status_code: u32,
    /// The reason, on errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status_desc: Option<String>,
    /// How many relay peers the message went to, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay_peer_count: Option<u32>,
    /// The service node (the exit) that answered.
    pub(crate) service_peer_id: String,
    /// The hops the request and its reply took, and the time each phase took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace: Option<Trace>,
}

/// Reads the response out of a reply body.
///
/// # Errors
/// `BAD_REPLY` if the body is not a framed `LightPushResponse`, or answers another request
/// (the service answers `"N/A"` to requests it could not decode; that is passed on).
pub(crate) fn decode_response(
    reply: &[u8],
    request_id: &str,
    service: String,
) -> Result<Response, MixError> {
    let response = mix_waku::decode_response(reply, request_id)
        .map_err(|e| MixError::new(Code::BadReply, e.to_string()))?;
    Ok(Response {
        request_id: response.request_id,
        status_code: response.status_code,
        status_desc: response.status_desc,
        relay_peer_count: response.relay_peer_count,
        service_peer_id: service,
        trace: None,
    })
}

#[cfg(test)]
mod tests {
    use mix_core::PACKET_LEN;
    use rand_core::UnwrapErr;

    use super::*;

    fn message(payload: usize) -> WakuMessage {
        WakuMessage {
            payload: vec![7; payload],
            content_topic: "/mix-rs/1/test/proto".into(),
            timestamp: Some(1_763_000_000_000_000_000),
            ..WakuMessage::default()
        }
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let mut rng = UnwrapErr(getrandom::SysRng);
        let id = request_id(&mut rng);
        assert_eq!(id.len(), REQUEST_ID_LEN);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, request_id(&mut rng));
    }

    #[test]
    fn max_payload_is_the_exact_boundary() {
        let topic = "/waku/2/rs/2/0";
        for (format, surbs) in mix_core::Format::ALL
            .into_iter()
            .flat_map(|f| [0, 1, 2, 4].map(|n| (f, n)))
        {
            let max = max_payload(format, topic, &message(0), surbs).unwrap();
            let budget = Client::max_message_len(format, LIGHTPUSH_PROTOCOL, surbs).unwrap();
            let fits = request_bytes("x".repeat(36), topic, message(max));
            let over = request_bytes("x".repeat(36), topic, message(max + 1));
            assert!(fits.len() <= budget, "{format} surbs {surbs}");
            assert!(over.len() > budget, "{format} surbs {surbs}");
            assert!(budget < PACKET_LEN);
        }
        // WAKU.md §4: ≈3096 bytes with one SURB and a UUID request id.
        let one = max_payload(mix_core::Format::Lip183, topic, &message(0), 1).unwrap();
        assert!((3050..3150).contains(&one), "{one}");
        // LIP-183 has no seqNo trailer: 4 bytes more than v0.39.
        let old = max_payload(mix_core::Format::V039, topic, &message(0), 1).unwrap();
        assert_eq!(one, old + 4);
    }

    #[test]
    fn responses_decode_and_match_the_request() {
        let framed = mix_waku::encode_length_prefixed(&mix_waku::LightPushResponse {
            request_id: "abc".into(),
            status_code: 200,
            status_desc: None,
            relay_peer_count: Some(3),
        });
        let r = decode_response(&framed, "abc", "peer".into()).unwrap();
        assert_eq!((r.status_code, r.relay_peer_count), (200, Some(3)));
        let e = decode_response(&framed, "other", "peer".into()).unwrap_err();
        assert_eq!(e.kind(), Code::BadReply);
        assert_eq!(
            decode_response(&[], "abc", "p".into()).unwrap_err().kind(),
            Code::BadReply
        );
        assert_eq!(
            decode_response(&framed[1..], "abc", "p".into())
                .unwrap_err()
                .kind(),
            Code::BadReply
        );
    }
}

//! The lightpush v3 service, without I/O: decode, validate, publish through a callback, answer.
//!
//! Decisions follow nwaku @7d1c6ab (`waku/waku_lightpush/protocol.nim` `handleRequest`,
//! `callbacks.nim` `getRelayPushHandler`, `common.nim` `mapPubishingErrorToPushResult`,
//! `waku/waku_relay/protocol.nim` `validateMessage`/`publish`), in this order:
//!
//! | check | nwaku | here |
//! |---|---|---|
//! | protobuf invalid, `request_id`/`message`/`payload`/`content_topic` absent, `meta` > 64 B | 400, request id `"N/A"`, `decode_rpc_failure: …` | same |
//! | `pubsub_topic` absent (static sharding) | 420 | same |
//! | `pubsub_topic` empty or whitespace | 400 `topic must not be empty` | same |
//! | topic not `/waku/2/rs/<our cluster>/<served shard>` | not checked (publishes, then 505 if no peers) | 421 (spec's `UNSUPPORTED_PUBSUB_TOPIC`) |
//! | empty `payload` or `content_topic` (present on the wire) | accepted | 420 |
//! | encoded message > max size | 420 `Message size exceeded maximum of N bytes` | 413 (spec's `PAYLOAD_TOO_LARGE`), same text |
//! | published to n > 0 peers | 200, `relay_peer_count` n | same |
//! | published to 0 peers | 505 `No peers for topic, skipping publish` | same |
//! | already seen | 420 `Dropping already-seen message` by its mapping; in practice 505, because nim-libp2p's publish returns 0 for a seen message | 200 `message already relayed` with the topic's peer count (the message is on the network; a redundant or retried request must not look failed), 505 without peers |
//! | other publish failure | 500 | same |
//!
//! nwaku also attaches its own RLN proof when it runs RLN relay (504 when it cannot); we do not
//! run RLN. nwaku's relay sets a zero timestamp to "now" before publishing; this module reads no
//! clock, so the `publish` callback should do that.

use core::fmt;

use crate::{
    DEFAULT_MAX_MESSAGE_SIZE, LightPushResponse, MAX_META_LEN, STATIC_SHARDING_PREFIX, WakuMessage,
    decode_length_prefixed, decode_request, encode_length_prefixed, parse_pubsub_topic,
    pubsub_topic,
};

/// Request id of responses to requests that could not be decoded (nwaku; also used for 429).
pub const UNKNOWN_REQUEST_ID: &str = "N/A";

/// Lightpush v3 status codes with nwaku's numbering (WAKU.md §1.3,
/// `waku/waku_lightpush/common.nim`). Note 503 is "service not available" and 505 "no peers",
/// unlike the spec's example table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusCode {
    /// 200: published; `relay_peer_count` says to how many peers.
    Success,
    /// 400: the request could not be decoded or is malformed.
    BadRequest,
    /// 413: the message exceeds the size limit.
    PayloadTooLarge,
    /// 420: the message was refused (validation, missing topic under static sharding, ...).
    InvalidMessage,
    /// 421: this node does not serve the requested pubsub topic.
    UnsupportedPubsubTopic,
    /// 429: rate limited (request id `"N/A"`).
    TooManyRequests,
    /// 500: the service failed.
    InternalServerError,
    /// 503: the service is not available.
    ServiceNotAvailable,
    /// 504: no RLN proof could be attached.
    OutOfRlnProof,
    /// 505: no relay peers to publish to.
    NoPeersToRelay,
}

impl StatusCode {
    /// Every status code, in numeric order.
    pub const ALL: [Self; 10] = [
        Self::Success,
        Self::BadRequest,
        Self::PayloadTooLarge,
        Self::InvalidMessage,
        Self::UnsupportedPubsubTopic,
        Self::TooManyRequests,
        Self::InternalServerError,
        Self::ServiceNotAvailable,
        Self::OutOfRlnProof,
        Self::NoPeersToRelay,
    ];

    /// The numeric code carried in `status_code`.
    #[must_use]
    pub const fn code(self) -> u32 {
        match self {
            Self::Success => 200,
            Self::BadRequest => 400,
            Self::PayloadTooLarge => 413,
            Self::InvalidMessage => 420,
            Self::UnsupportedPubsubTopic => 421,
            Self::TooManyRequests => 429,
            Self::InternalServerError => 500,
            Self::ServiceNotAvailable => 503,
            Self::OutOfRlnProof => 504,
            Self::NoPeersToRelay => 505,
        }
    }

    /// The status with numeric code `code`, if nwaku defines one.
    #[must_use]
    pub const fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            200 => Self::Success,
            400 => Self::BadRequest,
            413 => Self::PayloadTooLarge,
            420 => Self::InvalidMessage,
            421 => Self::UnsupportedPubsubTopic,
            429 => Self::TooManyRequests,
            500 => Self::InternalServerError,
            503 => Self::ServiceNotAvailable,
            504 => Self::OutOfRlnProof,
            505 => Self::NoPeersToRelay,
            _ => return None,
        })
    }

    /// nwaku's name for the status (`LightPushErrorCode` field names).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::BadRequest => "BAD_REQUEST",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::InvalidMessage => "INVALID_MESSAGE",
            Self::UnsupportedPubsubTopic => "UNSUPPORTED_PUBSUB_TOPIC",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::ServiceNotAvailable => "SERVICE_NOT_AVAILABLE",
            Self::OutOfRlnProof => "OUT_OF_RLN_PROOF",
            Self::NoPeersToRelay => "NO_PEERS_TO_RELAY",
        }
    }
}

impl fmt::Display for StatusCode {
    /// `"<code> <NAME>"`, e.g. `505 NO_PEERS_TO_RELAY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// Configuration of a [`LightPushService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The relay cluster this node belongs to.
    pub cluster_id: u16,
    /// The shards of `cluster_id` this node relays; requests for other topics get 421.
    pub shards: Vec<u16>,
    /// Largest accepted encoded `WakuMessage`, in bytes; larger ones get 413.
    /// [`ServiceConfig::new`] sets [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
}

impl ServiceConfig {
    /// Serves `shards` of cluster `cluster_id` with the default maximum message size
    /// ([`DEFAULT_MAX_MESSAGE_SIZE`], 150 KiB).
    #[must_use]
    pub fn new(cluster_id: u16, shards: Vec<u16>) -> Self {
        Self {
            cluster_id,
            shards,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// What the `publish` callback of [`LightPushService::handle`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Handed to relay for `relay_peer_count` peers (200, or 505 when the count is 0, as nwaku's
    /// relay treats publishing to nobody).
    Published {
        /// Number of peers the message was sent to.
        relay_peer_count: u32,
    },
    /// No peer to publish to (505).
    NoPeers,
    /// Gossipsub had already seen this message: it is on the relay network already (200, with
    /// the topic's peer count; see [`LightPushService::handle`]).
    Duplicate {
        /// Peers on the topic.
        relay_peer_count: u32,
    },
    /// Publishing failed for another reason (500).
    Failed,
}

/// A refused request: the status and the `status_desc` a response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status (never [`StatusCode::Success`]).
    pub status: StatusCode,
    /// The human-readable reason, nwaku's wording where nwaku has one.
    pub desc: String,
}

impl Refusal {
    fn new(status: StatusCode, desc: impl Into<String>) -> Self {
        Self {
            status,
            desc: desc.into(),
        }
    }

    /// The response to request `request_id`.
    #[must_use]
    pub fn into_response(self, request_id: String) -> LightPushResponse {
        LightPushResponse {
            request_id,
            status_code: self.status.code(),
            status_desc: Some(self.desc),
            relay_peer_count: None,
        }
    }
}

impl fmt::Display for Refusal {
    /// `"<code> <NAME>: <desc>"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.desc)
    }
}

impl core::error::Error for Refusal {}

/// The service's answer to one framed request: the response, and the same response framed as it
/// goes back on the stream or in the reply packets (`uvarint(len) || LightPushResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response (its `status_code` is what metrics count).
    pub response: LightPushResponse,
    /// `response`, length-prefixed: the bytes to send back.
    pub framed: Vec<u8>,
}

impl Answer {
    /// The answer `response`, framed.
    #[must_use]
    pub fn new(response: LightPushResponse) -> Self {
        let framed = encode_length_prefixed(&response);
        Self { response, framed }
    }

    /// A refusal made before the request is read, so it answers request id `"N/A"` as nwaku
    /// does for undecodable (400) and rate-limited (429) requests.
    #[must_use]
    pub fn refused(status: StatusCode, desc: impl Into<String>) -> Self {
        Self::new(Refusal::new(status, desc).into_response(UNKNOWN_REQUEST_ID.to_owned()))
    }
}

/// The lightpush v3 service logic (module docs for every decision). Pure: the caller reads the
/// request, supplies a `publish` callback and writes the response.
#[derive(Debug, Clone)]
pub struct LightPushService {
    config: ServiceConfig,
}

impl LightPushService {
    /// A service for `config`.
    #[must_use]
    pub fn new(config: ServiceConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Answers one request as it travels on a lightpush stream or inside a mix packet:
    /// `request` must be exactly `uvarint(len) || LightPushRequest`. This is the service's one
    /// entry point (the fuzz target `lightpush_request` drives it).
    ///
    /// `publish(pubsub_topic, message)` is called at most once, only for a request that passed
    /// every check; it should stamp a missing or zero timestamp with the current time, as nwaku's
    /// relay does, then publish. The response echoes the request id, except for requests whose
    /// framing or protobuf is invalid: those get 400 with `"N/A"` (as nwaku), without calling
    /// `publish`. Never panics, whatever the bytes.
    pub fn handle_length_prefixed(
        &self,
        request: &[u8],
        publish: impl FnOnce(&str, &WakuMessage) -> PublishOutcome,
    ) -> Answer {
        Answer::new(match decode_length_prefixed(request) {
            Ok(body) => self.handle(body, publish),
            Err(error) => Refusal::new(
                StatusCode::BadRequest,
                format!("decode_rpc_failure: {error}"),
            )
            .into_response(UNKNOWN_REQUEST_ID.to_owned()),
        })
    }

    /// [`handle_length_prefixed`](Self::handle_length_prefixed) for the protobuf alone (no
    /// length prefix), returning the response unframed.
    pub fn handle(
        &self,
        request: &[u8],
        publish: impl FnOnce(&str, &WakuMessage) -> PublishOutcome,
    ) -> LightPushResponse {
        let request = match decode_request(request) {
            Ok(request) => request,
            Err(error) => {
                return Refusal::new(
                    StatusCode::BadRequest,
                    format!("decode_rpc_failure: {error}"),
                )
                .into_response(UNKNOWN_REQUEST_ID.to_owned());
            }
        };
        let request_id = request.request_id;
        let Some(message) = request.message else {
            // `decode_request` guarantees a message; answer as nwaku would for a missing one.
            return Refusal::new(
                StatusCode::BadRequest,
                "decode_rpc_failure: MissingRequiredField message",
            )
            .into_response(UNKNOWN_REQUEST_ID.to_owned());
        };
        let topic = match self.check(request.pubsub_topic.as_deref(), &message) {
            Ok(topic) => topic,
            Err(refusal) => return refusal.into_response(request_id),
        };
        let no_peers = || {
            Refusal::new(
                StatusCode::NoPeersToRelay,
                "No peers for topic, skipping publish",
            )
        };
        match publish(topic, &message) {
            PublishOutcome::Published { relay_peer_count } if relay_peer_count > 0 => {
                LightPushResponse {
                    request_id,
                    status_code: StatusCode::Success.code(),
                    status_desc: None,
                    relay_peer_count: Some(relay_peer_count),
                }
            }
            PublishOutcome::Published { .. } | PublishOutcome::NoPeers => {
                no_peers().into_response(request_id)
            }
            // A message gossipsub has already seen is on the network: the request's goal is met.
            // Answering success keeps a retried or redundant request (WAKU-MIX: a sender MAY use
            // two paths) from looking failed. nwaku answers 505 here, through nim-libp2p's
            // publish returning 0 peers for a seen message; its own mapping says 420.
            PublishOutcome::Duplicate { relay_peer_count } if relay_peer_count > 0 => {
                LightPushResponse {
                    request_id,
                    status_code: StatusCode::Success.code(),
                    status_desc: Some("message already relayed".to_owned()),
                    relay_peer_count: Some(relay_peer_count),
                }
            }
            PublishOutcome::Duplicate { .. } => no_peers().into_response(request_id),
            PublishOutcome::Failed => {
                Refusal::new(StatusCode::InternalServerError, "Failed to publish message")
                    .into_response(request_id)
            }
        }
    }

    /// The topic and message checks that follow decoding, in nwaku's order (module docs).
    /// Returns the topic to publish on.
    fn check<'a>(&self, topic: Option<&'a str>, message: &WakuMessage) -> Result<&'a str, Refusal> {
        let topic = topic.ok_or_else(|| {
            Refusal::new(
                StatusCode::InvalidMessage,
                "Pubsub topic must be specified when static sharding is enabled",
            )
        })?;
        check_topic_not_blank(topic)?;
        let served = parse_pubsub_topic(topic).is_some_and(|(cluster, shard)| {
            cluster == self.config.cluster_id && self.config.shards.contains(&shard)
        });
        if !served {
            return Err(Refusal::new(
                StatusCode::UnsupportedPubsubTopic,
                format!(
                    "Unsupported pubsub topic, this node serves {}",
                    self.served()
                ),
            ));
        }
        check_message_fields(message)?;
        let size = prost::Message::encoded_len(message);
        if size > self.config.max_message_size {
            return Err(Refusal::new(
                StatusCode::PayloadTooLarge,
                format!(
                    "Message size exceeded maximum of {} bytes",
                    self.config.max_message_size
                ),
            ));
        }
        Ok(topic)
    }

    /// The served topics, for `status_desc`: `/waku/2/rs/2/0`, or `/waku/2/rs/2/{0,1}`.
    fn served(&self) -> String {
        let cluster = self.config.cluster_id;
        match self.config.shards.as_slice() {
            [] => "no shards".to_owned(),
            [shard] => pubsub_topic(cluster, *shard),
            shards => {
                let list: Vec<String> = shards.iter().map(u16::to_string).collect();
                format!("{STATIC_SHARDING_PREFIX}{cluster}/{{{}}}", list.join(","))
            }
        }
    }
}

/// The checks a sender can make before sending, so that a request no service could accept is
/// refused before it is sent: the same rules, texts and statuses as [`LightPushService`], for
/// everything that does not depend on which shards the service serves or on its size limit.
///
/// In order: the topic is not blank (400), it is a static-sharding topic
/// `/waku/2/rs/<cluster>/<shard>` in canonical form (421: no service serves another), `meta` is at
/// most [`MAX_META_LEN`] bytes (400, as the service's decoder), the payload and the content topic
/// are not empty (420).
///
/// # Errors
/// The [`Refusal`] the service would answer with.
pub fn check_request(pubsub_topic: &str, message: &WakuMessage) -> Result<(), Refusal> {
    check_topic_not_blank(pubsub_topic)?;
    if parse_pubsub_topic(pubsub_topic).is_none() {
        return Err(Refusal::new(
            StatusCode::UnsupportedPubsubTopic,
            format!(
                "Unsupported pubsub topic {pubsub_topic:?}: not {STATIC_SHARDING_PREFIX}<cluster>/<shard>"
            ),
        ));
    }
    if message
        .meta
        .as_ref()
        .is_some_and(|meta| meta.len() > MAX_META_LEN)
    {
        return Err(Refusal::new(
            StatusCode::BadRequest,
            format!("meta is longer than {MAX_META_LEN} bytes"),
        ));
    }
    check_message_fields(message)
}

/// nwaku's blank-topic check: 400 for an empty or whitespace-only topic.
fn check_topic_not_blank(topic: &str) -> Result<(), Refusal> {
    if is_empty_or_whitespace(topic) {
        return Err(Refusal::new(
            StatusCode::BadRequest,
            "topic must not be empty",
        ));
    }
    Ok(())
}

/// The message's own checks: a non-empty payload and content topic (420).
fn check_message_fields(message: &WakuMessage) -> Result<(), Refusal> {
    if message.payload.is_empty() {
        return Err(Refusal::new(
            StatusCode::InvalidMessage,
            "Message payload must not be empty",
        ));
    }
    if message.content_topic.is_empty() {
        return Err(Refusal::new(
            StatusCode::InvalidMessage,
            "Content topic must not be empty",
        ));
    }
    Ok(())
}

/// nwaku's `isEmptyOrWhitespace`: empty, or only ' ', '\t', '\v', '\r', '\n', '\f'.
fn is_empty_or_whitespace(text: &str) -> bool {
    text.bytes()
        .all(|byte| matches!(byte, b' ' | b'\t' | 0x0B | b'\r' | b'\n' | 0x0C))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use prost::Message as _;

    use super::*;

    /// A test length as a one-byte varint/length.
    fn len_u8(len: usize) -> u8 {
        assert!(len < 0x80, "test frame too long for a one-byte length");
        u8::try_from(len).unwrap()
    }
    use crate::{LightPushRequest, MAX_META_LEN};

    const TOPIC: &str = "/waku/2/rs/2/1";

    fn service() -> LightPushService {
        LightPushService::new(ServiceConfig::new(2, vec![0, 1]))
    }

    fn message() -> WakuMessage {
        WakuMessage {
            payload: b"hello".to_vec(),
            content_topic: "/toy-chat/2/huilong/proto".into(),
            timestamp: Some(1_700_000_000_000_000_000),
            ..WakuMessage::default()
        }
    }

    fn request(topic: Option<&str>, message: WakuMessage) -> Vec<u8> {
        LightPushRequest {
            request_id: "abc123".into(),
            pubsub_topic: topic.map(str::to_owned),
            message: Some(message),
        }
        .encode_to_vec()
    }

    /// Runs `handle` and returns the response and whether `publish` ran.
    fn run(
        service: &LightPushService,
        bytes: &[u8],
        outcome: PublishOutcome,
    ) -> (LightPushResponse, bool) {
        let called = Cell::new(false);
        let response = service.handle(bytes, |topic, message| {
            called.set(true);
            assert_eq!(topic, TOPIC);
            assert_eq!(message, &tests::message());
            outcome
        });
        (response, called.get())
    }

    fn published(count: u32) -> PublishOutcome {
        PublishOutcome::Published {
            relay_peer_count: count,
        }
    }

    /// Asserts an error response without a publish call.
    fn assert_rejected(bytes: &[u8], status: StatusCode, request_id: &str, desc: &str) {
        let (response, called) = run(&service(), bytes, published(1));
        assert!(!called, "publish must not be called");
        assert_eq!(
            response,
            LightPushResponse {
                request_id: request_id.into(),
                status_code: status.code(),
                status_desc: Some(desc.into()),
                relay_peer_count: None,
            }
        );
    }

    #[test]
    fn status_codes_match_nwaku() {
        let expected = [
            (200, "SUCCESS"),
            (400, "BAD_REQUEST"),
            (413, "PAYLOAD_TOO_LARGE"),
            (420, "INVALID_MESSAGE"),
            (421, "UNSUPPORTED_PUBSUB_TOPIC"),
            (429, "TOO_MANY_REQUESTS"),
            (500, "INTERNAL_SERVER_ERROR"),
            (503, "SERVICE_NOT_AVAILABLE"),
            (504, "OUT_OF_RLN_PROOF"),
            (505, "NO_PEERS_TO_RELAY"),
        ];
        for (status, (code, name)) in StatusCode::ALL.into_iter().zip(expected) {
            assert_eq!(status.code(), code);
            assert_eq!(status.name(), name);
            assert_eq!(StatusCode::from_code(code), Some(status));
            assert_eq!(status.to_string(), format!("{code} {name}"));
        }
        for unknown in [0, 1, 201, 401, 422, 501, 502, 506, u32::MAX] {
            assert_eq!(StatusCode::from_code(unknown), None, "{unknown}");
        }
        assert_eq!(
            StatusCode::NoPeersToRelay.to_string(),
            "505 NO_PEERS_TO_RELAY"
        );
    }

    #[test]
    fn success() {
        let (response, called) = run(&service(), &request(Some(TOPIC), message()), published(4));
        assert!(called);
        assert_eq!(
            response,
            LightPushResponse {
                request_id: "abc123".into(),
                status_code: 200,
                status_desc: None,
                relay_peer_count: Some(4),
            }
        );
    }

    #[test]
    fn an_already_relayed_message_is_a_success() {
        let outcome = PublishOutcome::Duplicate {
            relay_peer_count: 3,
        };
        let (response, called) = run(&service(), &request(Some(TOPIC), message()), outcome);
        assert!(called);
        assert_eq!(response.status_code, 200);
        assert_eq!(response.relay_peer_count, Some(3));
        assert_eq!(response.request_id, "abc123");
    }

    #[test]
    fn publish_outcomes_map_to_nwaku_statuses() {
        let cases = [
            (
                published(0),
                StatusCode::NoPeersToRelay,
                "No peers for topic, skipping publish",
            ),
            (
                PublishOutcome::NoPeers,
                StatusCode::NoPeersToRelay,
                "No peers for topic, skipping publish",
            ),
            (
                PublishOutcome::Duplicate {
                    relay_peer_count: 0,
                },
                StatusCode::NoPeersToRelay,
                "No peers for topic, skipping publish",
            ),
            (
                PublishOutcome::Failed,
                StatusCode::InternalServerError,
                "Failed to publish message",
            ),
        ];
        for (outcome, status, desc) in cases {
            let (response, called) = run(&service(), &request(Some(TOPIC), message()), outcome);
            assert!(called);
            assert_eq!(
                response,
                LightPushResponse {
                    request_id: "abc123".into(),
                    status_code: status.code(),
                    status_desc: Some(desc.into()),
                    relay_peer_count: None,
                },
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn undecodable_request_is_400_with_unknown_id() {
        assert_rejected(
            &[0x0A, 0x05, b'a'],
            StatusCode::BadRequest,
            "N/A",
            "decode_rpc_failure: malformed protobuf: failed to decode Protobuf message: \
             LightPushRequest.request_id: buffer underflow",
        );
        let (response, _) = run(&service(), &[0xFF], published(1));
        assert_eq!(response.request_id, "N/A");
        assert_eq!(response.status_code, 400);
    }

    #[test]
    fn missing_required_fields_are_400_like_nwaku() {
        let no_message = LightPushRequest {
            request_id: "abc123".into(),
            pubsub_topic: Some(TOPIC.into()),
            message: None,
        }
        .encode_to_vec();
        assert_rejected(
            &no_message,
            StatusCode::BadRequest,
            "N/A",
            "decode_rpc_failure: MissingRequiredField message",
        );
        // request_id field absent (prost omits an empty string).
        let no_id = LightPushRequest {
            request_id: String::new(),
            pubsub_topic: Some(TOPIC.into()),
            message: Some(message()),
        }
        .encode_to_vec();
        assert_rejected(
            &no_id,
            StatusCode::BadRequest,
            "N/A",
            "decode_rpc_failure: MissingRequiredField request_id",
        );
        // payload field absent (prost omits empty bytes).
        let no_payload = request(
            Some(TOPIC),
            WakuMessage {
                payload: Vec::new(),
                ..message()
            },
        );
        assert_rejected(
            &no_payload,
            StatusCode::BadRequest,
            "N/A",
            "decode_rpc_failure: MissingRequiredField payload",
        );
        let no_content_topic = request(
            Some(TOPIC),
            WakuMessage {
                content_topic: String::new(),
                ..message()
            },
        );
        assert_rejected(
            &no_content_topic,
            StatusCode::BadRequest,
            "N/A",
            "decode_rpc_failure: MissingRequiredField content_topic",
        );
    }

    #[test]
    fn long_meta_is_400_like_nwaku() {
        let mut msg = message();
        msg.meta = Some(vec![0; MAX_META_LEN + 1]);
        assert_rejected(
            &request(Some(TOPIC), msg),
            StatusCode::BadRequest,
            "N/A",
            "decode_rpc_failure: InvalidLengthField meta",
        );
        let mut msg = message();
        msg.meta = Some(vec![0; MAX_META_LEN]);
        let response = service().handle(&request(Some(TOPIC), msg.clone()), |_, published_msg| {
            assert_eq!(published_msg, &msg);
            published(1)
        });
        assert_eq!(response.status_code, 200);
    }

    #[test]
    fn missing_pubsub_topic_is_420() {
        assert_rejected(
            &request(None, message()),
            StatusCode::InvalidMessage,
            "abc123",
            "Pubsub topic must be specified when static sharding is enabled",
        );
    }

    #[test]
    fn blank_pubsub_topic_is_400() {
        for blank in ["", " ", "\t\r\n\x0b\x0c"] {
            assert_rejected(
                &request(Some(blank), message()),
                StatusCode::BadRequest,
                "abc123",
                "topic must not be empty",
            );
        }
    }

    #[test]
    fn unserved_pubsub_topics_are_421() {
        let desc = "Unsupported pubsub topic, this node serves /waku/2/rs/2/{0,1}";
        for topic in [
            "/waku/2/rs/2/2",             // shard not served
            "/waku/2/rs/1/1",             // other cluster
            "/waku/2/rs/2/01",            // non-canonical
            "/waku/2/rs/2/1/",            // extra part
            "/waku/2/default-waku/proto", // named topic
            "x",
        ] {
            assert_rejected(
                &request(Some(topic), message()),
                StatusCode::UnsupportedPubsubTopic,
                "abc123",
                desc,
            );
        }
        let single = LightPushService::new(ServiceConfig::new(2, vec![0]));
        let (response, _) = run(&single, &request(Some(TOPIC), message()), published(1));
        assert_eq!(
            response.status_desc.as_deref(),
            Some("Unsupported pubsub topic, this node serves /waku/2/rs/2/0")
        );
        let none = LightPushService::new(ServiceConfig::new(2, vec![]));
        let (response, _) = run(&none, &request(Some(TOPIC), message()), published(1));
        assert_eq!(response.status_code, 421);
        assert_eq!(
            response.status_desc.as_deref(),
            Some("Unsupported pubsub topic, this node serves no shards")
        );
    }

    /// Hand-assembled request with a present-but-empty field (as nwaku's encoder writes them).
    fn raw_request(topic: Option<&str>, payload: &[u8], content_topic: &[u8]) -> Vec<u8> {
        let mut msg = vec![0x0A, len_u8(payload.len())];
        msg.extend(payload);
        msg.push(0x12);
        msg.push(len_u8(content_topic.len()));
        msg.extend(content_topic);
        let mut bytes = vec![0x0A, 0x06];
        bytes.extend(b"abc123");
        if let Some(topic) = topic {
            bytes.extend([0xA2, 0x01, len_u8(topic.len())]);
            bytes.extend(topic.as_bytes());
        }
        bytes.extend([0xAA, 0x01, len_u8(msg.len())]);
        bytes.extend(msg);
        bytes
    }

    #[test]
    fn empty_payload_or_content_topic_is_420() {
        assert_rejected(
            &raw_request(Some(TOPIC), b"", b"/toy-chat/2/huilong/proto"),
            StatusCode::InvalidMessage,
            "abc123",
            "Message payload must not be empty",
        );
        assert_rejected(
            &raw_request(Some(TOPIC), b"hello", b""),
            StatusCode::InvalidMessage,
            "abc123",
            "Content topic must not be empty",
        );
        // The same helper with both fields set is accepted (the checks above are the cause).
        let plain = WakuMessage {
            timestamp: None,
            ..message()
        };
        let response = service().handle(
            &raw_request(Some(TOPIC), b"hello", b"/toy-chat/2/huilong/proto"),
            |_, message| {
                assert_eq!(message, &plain);
                published(1)
            },
        );
        assert_eq!(response.status_code, 200);
    }

    #[test]
    fn message_size_limit_is_413() {
        let msg = message();
        let size = msg.encoded_len();
        let at_limit = LightPushService::new(ServiceConfig {
            max_message_size: size,
            ..ServiceConfig::new(2, vec![1])
        });
        let (response, called) = run(&at_limit, &request(Some(TOPIC), msg.clone()), published(2));
        assert!(called);
        assert_eq!(response.status_code, 200);

        let below = LightPushService::new(ServiceConfig {
            max_message_size: size - 1,
            ..ServiceConfig::new(2, vec![1])
        });
        let (response, called) = run(&below, &request(Some(TOPIC), msg), published(2));
        assert!(!called);
        assert_eq!(
            response,
            LightPushResponse {
                request_id: "abc123".into(),
                status_code: 413,
                status_desc: Some(format!(
                    "Message size exceeded maximum of {} bytes",
                    size - 1
                )),
                relay_peer_count: None,
            }
        );
    }

    #[test]
    fn default_limit_is_150_kib() {
        assert_eq!(ServiceConfig::new(0, vec![]).max_message_size, 153_600);
        let mut msg = message();
        msg.payload = vec![0; 150 * 1024];
        let (response, called) = run(&service(), &request(Some(TOPIC), msg), published(1));
        assert!(!called);
        assert_eq!(response.status_code, 413);
    }

    #[test]
    fn checks_run_in_nwaku_order() {
        // Every request below has an empty payload and is over the 1-byte size limit; the first
        // failing check decides the answer.
        let tiny = LightPushService::new(ServiceConfig {
            max_message_size: 1,
            ..ServiceConfig::new(2, vec![1])
        });
        let answer = |bytes: &[u8]| {
            let response = tiny.handle(bytes, |_, _| panic!("must not publish"));
            (
                response.status_code,
                response.status_desc.unwrap_or_default(),
            )
        };
        let mut undecodable = raw_request(None, b"", b"t");
        undecodable.push(0xFF);
        assert_eq!(answer(&undecodable).0, 400);
        assert!(
            answer(&undecodable)
                .1
                .starts_with("decode_rpc_failure: malformed")
        );
        assert_eq!(
            answer(&raw_request(None, b"", b"t")),
            (
                420,
                "Pubsub topic must be specified when static sharding is enabled".to_owned()
            )
        );
        assert_eq!(
            answer(&raw_request(Some(" "), b"", b"t")),
            (400, "topic must not be empty".to_owned())
        );
        assert_eq!(
            answer(&raw_request(Some("/waku/2/rs/2/2"), b"", b"t")).0,
            421
        );
        assert_eq!(
            answer(&raw_request(Some(TOPIC), b"", b"")),
            (420, "Message payload must not be empty".to_owned())
        );
        assert_eq!(
            answer(&raw_request(Some(TOPIC), b"p", b"")),
            (420, "Content topic must not be empty".to_owned())
        );
        assert_eq!(
            answer(&raw_request(Some(TOPIC), b"p", b"t")),
            (413, "Message size exceeded maximum of 1 bytes".to_owned())
        );
    }

    #[test]
    fn length_prefixed_round_trip() {
        let body = request(Some(TOPIC), message());
        let mut framed = vec![len_u8(body.len())];
        framed.extend(&body);
        let called = Cell::new(false);
        let out = service().handle_length_prefixed(&framed, |topic, msg| {
            called.set(true);
            assert_eq!(topic, TOPIC);
            assert_eq!(msg, &message());
            published(3)
        });
        assert!(called.get());
        // 1: "abc123"; 10: 200; 12: 3, behind a one-byte length.
        assert_eq!(hex::encode(&out.framed), "0d0a0661626331323350c8016003");
        assert_eq!(out.response.status_code, 200);
        assert_eq!(out.response.relay_peer_count, Some(3));
    }

    #[test]
    fn length_prefixed_bad_framing_is_400() {
        let body = request(Some(TOPIC), message());
        let mut trailing = vec![len_u8(body.len())];
        trailing.extend(&body);
        trailing.push(0);
        let mut too_large = unsigned_varint::encode::usize_buffer();
        let too_large = unsigned_varint::encode::usize(crate::MAX_FRAME_LEN + 1, &mut too_large);
        let cases: [(&[u8], &str); 6] = [
            (&[], "truncated length prefix"),
            (&[0x80, 0x80], "truncated length prefix"),
            (&[0x81, 0x00], "invalid length prefix"),
            (&[0x05, 0x0A, 0x00], "truncated frame"),
            (too_large, "frame too large"),
            (&trailing, "trailing bytes after frame"),
        ];
        for (bytes, reason) in cases {
            let out = service().handle_length_prefixed(bytes, |_, _| panic!("must not publish"));
            let response =
                LightPushResponse::decode_length_delimited(out.framed.as_slice()).unwrap();
            assert_eq!(response, out.response);
            assert_eq!(
                response,
                LightPushResponse {
                    request_id: "N/A".into(),
                    status_code: 400,
                    status_desc: Some(format!("decode_rpc_failure: {reason}")),
                    relay_peer_count: None,
                },
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // Every prefix and every single-byte corruption of a valid request, plus a simple
        // deterministic pseudo-random sweep.
        let valid = request(Some(TOPIC), message());
        let service = service();
        for end in 0..=valid.len() {
            let _ = service.handle(&valid[..end], |_, _| published(1));
            let _ = service.handle_length_prefixed(&valid[..end], |_, _| published(1));
        }
        for index in 0..valid.len() {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut bytes = valid.clone();
                bytes[index] = value;
                let response = service.handle(&bytes, |_, _| published(1));
                assert!(StatusCode::from_code(response.status_code).is_some());
            }
        }
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..(state % 64) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state.to_le_bytes()[0]);
            }
            let response = service.handle(&bytes, |_, _| published(1));
            assert!(StatusCode::from_code(response.status_code).is_some());
            let answer = service.handle_length_prefixed(&bytes, |_, _| published(1));
            assert!(StatusCode::from_code(answer.response.status_code).is_some());
            assert_eq!(answer, Answer::new(answer.response.clone()));
        }
    }

    #[test]
    fn refused_answers_are_unattributed_and_framed() {
        let answer = Answer::refused(StatusCode::TooManyRequests, "publish rate limit");
        assert_eq!(
            answer.response,
            LightPushResponse {
                request_id: "N/A".into(),
                status_code: 429,
                status_desc: Some("publish rate limit".into()),
                relay_peer_count: None,
            }
        );
        assert_eq!(
            decode_length_prefixed(&answer.framed).unwrap(),
            answer.response.encode_to_vec()
        );
    }

    #[test]
    fn sender_checks_give_the_services_answers() {
        // Every message the sender refuses is refused by a service of the same cluster with
        // the same status and text, except the topic, which only the service can say it serves.
        let cases = [
            (" ", message(), StatusCode::BadRequest),
            (
                "/waku/2/rs/2",
                message(),
                StatusCode::UnsupportedPubsubTopic,
            ),
            (
                "/waku/2/rs/2/01",
                message(),
                StatusCode::UnsupportedPubsubTopic,
            ),
            (
                TOPIC,
                WakuMessage {
                    payload: Vec::new(),
                    ..message()
                },
                StatusCode::InvalidMessage,
            ),
            (
                TOPIC,
                WakuMessage {
                    content_topic: String::new(),
                    ..message()
                },
                StatusCode::InvalidMessage,
            ),
            (
                TOPIC,
                WakuMessage {
                    meta: Some(vec![0; MAX_META_LEN + 1]),
                    ..message()
                },
                StatusCode::BadRequest,
            ),
        ];
        for (topic, msg, status) in cases {
            let refusal = check_request(topic, &msg).unwrap_err();
            assert_eq!(refusal.status, status, "{topic:?} {msg:?}");
            if msg.meta.is_some() {
                continue; // the service's decoder refuses it: below
            }
            let framed = raw_request(Some(topic), &msg.payload, msg.content_topic.as_bytes());
            let served = service().handle(&framed, |_, _| panic!("must not publish"));
            assert_eq!(served.status_code, status.code(), "{topic:?} {msg:?}");
            if status != StatusCode::UnsupportedPubsubTopic {
                assert_eq!(served.status_desc.as_deref(), Some(refusal.desc.as_str()));
            }
        }
        assert_eq!(check_request(TOPIC, &message()), Ok(()));
        let mut at_limit = message();
        at_limit.meta = Some(vec![0; MAX_META_LEN]);
        assert_eq!(check_request(TOPIC, &at_limit), Ok(()));
        let long = request(
            Some(TOPIC),
            WakuMessage {
                meta: Some(vec![0; MAX_META_LEN + 1]),
                ..message()
            },
        );
        assert_eq!(
            service().handle(&long, |_, _| published(1)).status_code,
            400
        );
    }
}

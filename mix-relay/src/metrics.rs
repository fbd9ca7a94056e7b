//! Prometheus metrics of the relay; [`serve`] (in `metrics/http.rs`) serves them over HTTP.
//!
//! The relay never tells a peer why a packet was dropped (STYLE Part 4.3); it counts the
//! reason here instead. [`Metrics`] is shared (`Arc`) between tasks; every method takes
//! `&self`. [`serve`] answers `GET /metrics` in the `OpenMetrics` text format.

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

mod http;

pub use http::serve;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a packet was dropped: the `reason` label of `mix_packets_dropped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The frame is not 4608 bytes (plus the proof, if one is configured).
    Length,
    /// The frame's length prefix is above the maximum; the stream was closed.
    Oversize,
    /// The frame's length prefix is not a minimal unsigned varint; the stream was closed.
    BadPrefix,
    /// The stream ended or broke part-way through a frame.
    Truncated,
    /// A frame began but did not finish in time (a slow-loris peer); the stream was closed.
    Stalled,
    /// The replay tag was seen before.
    Replay,
    /// The MAC or the α point check failed.
    Rejected,
    /// As the exit, the payload's zero prefix did not check out (LIP-183): tampered on the
    /// way, or built by a sender of the other wire format.
    PayloadIntegrity,
    /// A reply to one of our own requests did not open: tampered on the way, or our SURB was
    /// answered by nodes of the other wire format.
    ReplyUnreadable,
    /// The peeled packet did not decode (bad address, delay or exit block).
    Malformed,
    /// The sending peer exceeded its rate limit.
    RateLimited,
    /// The peer opened a stream beyond the per-connection limit while every held stream was
    /// part-way through a frame; the new stream was closed.
    StreamLimit,
    /// An idle inbound stream (between frames, nothing lost) was closed: the one idle longest
    /// when a new stream arrived at the per-connection limit, or one idle past the idle
    /// timeout. Counts streams, not packets.
    StreamIdleClosed,
    /// The delay queue was full.
    QueueFull,
    /// The replay filter was full or unavailable.
    ReplayStoreFull,
    /// Sending to the next hop failed.
    SendFailed,
    /// A reply arrived for a SURB id we do not know (or no longer hold).
    UnknownSurb,
    /// A cover packet reached its end (dropped by design).
    Cover,
    /// Forwarding needed a dial the limits refuse: a non-global address, too many dials in
    /// progress, or an address or peer whose dial failed recently.
    DialRefused,
    /// A forward-mode exit request for a codec not served in forward mode, to a non-global
    /// destination, or beyond the forward-mode budget.
    ExitRefused,
}

impl DropReason {
    /// Every reason, in a stable order.
    pub const ALL: [Self; 20] = [
        Self::Length,
        Self::Oversize,
        Self::BadPrefix,
        Self::Truncated,
        Self::Stalled,
        Self::Replay,
        Self::Rejected,
        Self::PayloadIntegrity,
        Self::ReplyUnreadable,
        Self::Malformed,
        Self::RateLimited,
        Self::StreamLimit,
        Self::StreamIdleClosed,
        Self::QueueFull,
        Self::ReplayStoreFull,
        Self::SendFailed,
        Self::UnknownSurb,
        Self::Cover,
        Self::DialRefused,
        Self::ExitRefused,
    ];

    /// The stable `snake_case` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::Oversize => "oversize",
            Self::BadPrefix => "bad_prefix",
            Self::Truncated => "truncated",
            Self::Stalled => "stalled",
            Self::Replay => "replay",
            Self::Rejected => "rejected",
            Self::PayloadIntegrity => "payload_integrity",
            Self::ReplyUnreadable => "reply_unreadable",
            Self::Malformed => "malformed",
            Self::RateLimited => "rate_limited",
            Self::StreamLimit => "stream_limit",
            Self::StreamIdleClosed => "stream_idle_closed",
            Self::QueueFull => "queue_full",
            Self::ReplayStoreFull => "replay_store_full",
            Self::SendFailed => "send_failed",
            Self::UnknownSurb => "unknown_surb",
            Self::Cover => "cover",
            Self::DialRefused => "dial_refused",
            Self::ExitRefused => "exit_refused",
        }
    }
}

impl From<mix_libp2p::DropReason> for DropReason {
    /// The label of a frame the `/mix/1.0.0` behaviour dropped.
    fn from(reason: mix_libp2p::DropReason) -> Self {
        match reason {
            mix_libp2p::DropReason::Length => Self::Length,
            mix_libp2p::DropReason::Oversize => Self::Oversize,
            mix_libp2p::DropReason::StreamLimit => Self::StreamLimit,
            mix_libp2p::DropReason::StreamIdle => Self::StreamIdleClosed,
            mix_libp2p::DropReason::RateLimited => Self::RateLimited,
            mix_libp2p::DropReason::BadPrefix => Self::BadPrefix,
            mix_libp2p::DropReason::Truncated => Self::Truncated,
            mix_libp2p::DropReason::Stalled => Self::Stalled,
        }
    }
}

impl From<mix_core::PeelError> for DropReason {
    /// The label of a packet peeling refused.
    fn from(error: mix_core::PeelError) -> Self {
        use mix_core::{PeelError, ReplayError};
        match error {
            PeelError::Length => Self::Length,
            PeelError::Replay(ReplayError::Replayed) => Self::Replay,
            PeelError::Replay(ReplayError::Full | ReplayError::Unavailable) => {
                Self::ReplayStoreFull
            }
            PeelError::Rejected
            | PeelError::AlphaZero
            | PeelError::AlphaNonCanonical
            | PeelError::AlphaLowOrder => Self::Rejected,
            PeelError::PayloadIntegrity => Self::PayloadIntegrity,
            PeelError::Malformed(_) => Self::Malformed,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for DropReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// What the exit layer did with a message: the `kind` label of `mix_exit_messages_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitKind {
    /// This node is the destination and handled the message itself (nwaku's
    /// `exit_is_dest` mode).
    ExitIsDestination,
    /// The message was forwarded to the destination peer.
    Forward,
}

impl ExitKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 2] = [Self::ExitIsDestination, Self::Forward];

    /// The stable `snake_case` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ExitIsDestination => "exit_is_destination",
            Self::Forward => "forward",
        }
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for ExitKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: DropReason,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: ExitKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: u32,
}

/// The kinds of [`Metrics::discovery_event`]: as a rendezvous point, registrations accepted,
/// withdrawn, refused, lookups answered; as a client, own registrations accepted, failed and
/// withdrawn (when the relay stops), lookups failed, records found; and pool nodes removed.
pub const DISCOVERY_EVENTS: [&str; 11] = [
    "served_registration",
    "served_unregistration",
    "served_refusal",
    "served_lookup",
    "registered",
    "register_failed",
    "unregistered",
    "lookup_failed",
    "record_found",
    "record_rejected",
    "node_removed",
];

/// The relay's metrics. `Send + Sync`; share it in an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: Counter,
    forwarded: Counter,
    dropped: Family<ReasonLabel, Counter>,
    exit_messages: Family<KindLabel, Counter>,
    replies_sent: Counter,
    replies_received: Counter,
    cover_sent: Counter,
    delay_queue_depth: Gauge,
    replay_store_size: Gauge,
    connected_peers: Gauge,
    connections_denied: Counter,
    pool_size: Gauge,
    lightpush: Family<StatusLabel, Counter>,
    relay_received: Counter,
    rendezvous_registrations: Gauge,
    discovery: Family<EventLabel, Counter>,
    delays_capped: Counter,
    pending_dials: Gauge,
    loop_lag_ms: Gauge,
    replay_occupancy: Gauge,
    replay_overflow: Gauge,
    replay_window_cut: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `usize` to a gauge value, saturating.
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// All metrics at zero, registered. Every drop reason and exit kind is present from the
    /// start, so dashboards see zeros rather than missing series.
    pub fn new() -> Self {
        let mut m = Self {
            received: Counter::default(),
            forwarded: Counter::default(),
            dropped: Family::default(),
            exit_messages: Family::default(),
            replies_sent: Counter::default(),
            replies_received: Counter::default(),
            cover_sent: Counter::default(),
            delay_queue_depth: Gauge::default(),
            replay_store_size: Gauge::default(),
            connected_peers: Gauge::default(),
            connections_denied: Counter::default(),
            pool_size: Gauge::default(),
            lightpush: Family::default(),
            relay_received: Counter::default(),
            rendezvous_registrations: Gauge::default(),
            discovery: Family::default(),
            delays_capped: Counter::default(),
            pending_dials: Gauge::default(),
            loop_lag_ms: Gauge::default(),
            replay_occupancy: Gauge::default(),
            replay_overflow: Gauge::default(),
            replay_window_cut: Counter::default(),
            registry: Registry::default(),
        };
        let registry = &mut m.registry;
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "mix_packets_received",
            "Sphinx packets received on /mix/1.0.0 streams",
            m.received.clone(),
        );
        registry.register(
            "mix_packets_forwarded",
            "Sphinx packets forwarded to the next hop",
            m.forwarded.clone(),
        );
        registry.register(
            "mix_packets_dropped",
            "Packets dropped, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "mix_exit_messages",
            "Messages that left the mix network at this node, by kind",
            m.exit_messages.clone(),
        );
        registry.register(
            "mix_replies_sent",
            "Replies sent back through a SURB",
            m.replies_sent.clone(),
        );
        registry.register(
            "mix_replies_received",
            "Replies received through one of our SURBs",
            m.replies_received.clone(),
        );
        registry.register(
            "mix_cover_packets_sent",
            "Cover packets sent",
            m.cover_sent.clone(),
        );
        registry.register(
            "mix_delay_queue_depth",
            "Packets waiting in the delay queue",
            m.delay_queue_depth.clone(),
        );
        registry.register(
            "mix_replay_store_size",
            "Replay fingerprints held",
            m.replay_store_size.clone(),
        );
        registry.register(
            "mix_connected_peers",
            "Connected libp2p peers",
            m.connected_peers.clone(),
        );
        registry.register(
            "mix_connections_denied",
            "Incoming connections refused by the connection limits (per peer, in total, pending)",
            m.connections_denied.clone(),
        );
        registry.register(
            "mix_pool_size",
            "Mix nodes known with a mix public key",
            m.pool_size.clone(),
        );
        registry.register(
            "waku_lightpush_requests",
            "Waku lightpush v3 requests served, by status code",
            m.lightpush.clone(),
        );
        registry.register(
            "waku_relay_messages_received",
            "Waku relay messages received",
            m.relay_received.clone(),
        );
        registry.register(
            "mix_rendezvous_registrations",
            "Registrations held as a Waku rendezvous point",
            m.rendezvous_registrations.clone(),
        );
        registry.register(
            "mix_discovery_events",
            "Discovery events: registrations served and made, lookups, records found, pool removals",
            m.discovery.clone(),
        );
        registry.register(
            "mix_delays_capped",
            "Packets whose encoded delay exceeded the honoured maximum and was cut to it",
            m.delays_capped.clone(),
        );
        registry.register(
            "mix_pending_dials",
            "Outbound dials caused by packets, in progress",
            m.pending_dials.clone(),
        );
        registry.register(
            "mix_event_loop_lag_max_ms",
            "The longest lag of the relay's event loop behind its 50 ms tick in the last 1-2 s, ms",
            m.loop_lag_ms.clone(),
        );
        registry.register(
            "mix_replay_store_occupancy_percent",
            "Replay store fill, percent of its capacity (alarm above 80)",
            m.replay_occupancy.clone(),
        );
        registry.register(
            "mix_replay_overflow_entries",
            "Replay tags held in the overflow Bloom filter (the exact store is full)",
            m.replay_overflow.clone(),
        );
        registry.register(
            "mix_replay_window_shortened",
            "Overflow slices dropped before their TTL to stay within memory (replay window cut)",
            m.replay_window_cut.clone(),
        );
        for event in DISCOVERY_EVENTS {
            let _ = m.discovery.get_or_create(&EventLabel { event });
        }
        for reason in DropReason::ALL {
            let _ = m.dropped.get_or_create(&ReasonLabel { reason });
        }
        for kind in ExitKind::ALL {
            let _ = m.exit_messages.get_or_create(&KindLabel { kind });
        }
        m
    }

    /// Registrations held as a rendezvous point.
    pub fn set_rendezvous_registrations(&self, n: usize) {
        self.rendezvous_registrations.set(gauge_value(n));
    }

    /// A discovery event, one of [`DISCOVERY_EVENTS`].
    pub fn discovery_event(&self, event: &'static str) {
        self.discovery.get_or_create(&EventLabel { event }).inc();
    }

    /// How many discovery events of this kind happened.
    pub fn discovery_count(&self, event: &'static str) -> u64 {
        self.discovery.get_or_create(&EventLabel { event }).get()
    }

    /// A packet arrived.
    pub fn packet_received(&self) {
        self.received.inc();
    }

    /// A packet was sent on to the next hop.
    pub fn packet_forwarded(&self) {
        self.forwarded.inc();
    }

    /// A packet was dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// An incoming connection was refused by the connection limits.
    pub fn connection_denied(&self) {
        self.connections_denied.inc();
    }

    /// How many incoming connections the connection limits refused.
    pub fn connections_denied_count(&self) -> u64 {
        self.connections_denied.get()
    }

    /// How many packets were dropped for `reason`.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped.get_or_create(&ReasonLabel { reason }).get()
    }

    /// How many packets arrived.
    pub fn received_count(&self) -> u64 {
        self.received.get()
    }

    /// How many packets were forwarded.
    pub fn forwarded_count(&self) -> u64 {
        self.forwarded.get()
    }

    /// A message left the mix network here.
    pub fn exit_message(&self, kind: ExitKind) {
        self.exit_messages.get_or_create(&KindLabel { kind }).inc();
    }

    /// How many messages left the mix network here as `kind`.
    pub fn exit_count(&self, kind: ExitKind) -> u64 {
        self.exit_messages.get_or_create(&KindLabel { kind }).get()
    }

    /// A reply was sent through a SURB.
    pub fn reply_sent(&self) {
        self.replies_sent.inc();
    }

    /// A reply arrived through one of our SURBs.
    pub fn reply_received(&self) {
        self.replies_received.inc();
    }

    /// How many replies were sent.
    pub fn replies_sent_count(&self) -> u64 {
        self.replies_sent.get()
    }

    /// How many replies were received.
    pub fn replies_received_count(&self) -> u64 {
        self.replies_received.get()
    }

    /// A cover packet was sent.
    pub fn cover_sent(&self) {
        self.cover_sent.inc();
    }

    /// Sets how many packets wait in the delay queue.
    pub fn set_delay_queue_depth(&self, n: usize) {
        self.delay_queue_depth.set(gauge_value(n));
    }

    /// A packet's delay was cut to the honoured maximum.
    pub fn delay_capped(&self) {
        self.delays_capped.inc();
    }

    /// Sets how many packet-caused dials are in progress.
    pub fn set_pending_dials(&self, n: usize) {
        self.pending_dials.set(gauge_value(n));
    }

    /// Sets the event loop's recent longest lag.
    pub fn set_loop_lag(&self, lag: Duration) {
        self.loop_lag_ms
            .set(i64::try_from(lag.as_millis()).unwrap_or(i64::MAX));
    }

    /// Sets the replay store's fill in percent, and the overflow filter's size.
    pub fn set_replay_occupancy(&self, percent: u64, overflow: usize) {
        self.replay_occupancy
            .set(i64::try_from(percent).unwrap_or(i64::MAX));
        self.replay_overflow.set(gauge_value(overflow));
    }

    /// Overflow slices were dropped before their TTL.
    pub fn replay_window_shortened(&self, slices: u64) {
        self.replay_window_cut.inc_by(slices);
    }

    /// Sets how many fingerprints the replay filter holds.
    pub fn set_replay_store_size(&self, n: usize) {
        self.replay_store_size.set(gauge_value(n));
    }

    /// Sets how many libp2p peers are connected.
    pub fn set_connected_peers(&self, n: usize) {
        self.connected_peers.set(gauge_value(n));
    }

    /// Sets how many mix nodes (with a mix key) the pool holds.
    pub fn set_pool_size(&self, n: usize) {
        self.pool_size.set(gauge_value(n));
    }

    /// A lightpush request was answered with `status` (200, 400, 429, …).
    pub fn lightpush_result(&self, status: u32) {
        self.lightpush.get_or_create(&StatusLabel { status }).inc();
    }

    /// How many lightpush requests were answered with `status`.
    pub fn lightpush_count(&self, status: u32) -> u64 {
        self.lightpush.get_or_create(&StatusLabel { status }).get()
    }

    /// A Waku relay message arrived.
    pub fn relay_message_received(&self) {
        self.relay_received.inc();
    }

    /// How many Waku relay messages arrived.
    pub fn relay_messages_count(&self) -> u64 {
        self.relay_received.get()
    }

    /// All metrics in the `OpenMetrics` text format ([`CONTENT_TYPE`]), ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing into a String cannot fail; a label encoder could only in theory.
            tracing::warn!(error = %e, "could not encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_of_other_layers_keep_their_meaning() {
        use mix_core::{DecodeError, PeelError, ReplayError};
        use mix_libp2p::DropReason as Wire;
        let wire = [
            (Wire::Length, DropReason::Length),
            (Wire::Oversize, DropReason::Oversize),
            (Wire::StreamLimit, DropReason::StreamLimit),
            (Wire::StreamIdle, DropReason::StreamIdleClosed),
            (Wire::RateLimited, DropReason::RateLimited),
            (Wire::BadPrefix, DropReason::BadPrefix),
            (Wire::Truncated, DropReason::Truncated),
            (Wire::Stalled, DropReason::Stalled),
        ];
        for (reason, label) in wire {
            assert_eq!(DropReason::from(reason), label);
        }
        let peel = [
            (PeelError::Length, DropReason::Length),
            (PeelError::Replay(ReplayError::Replayed), DropReason::Replay),
            (
                PeelError::Replay(ReplayError::Full),
                DropReason::ReplayStoreFull,
            ),
            (
                PeelError::Replay(ReplayError::Unavailable),
                DropReason::ReplayStoreFull,
            ),
            (PeelError::Rejected, DropReason::Rejected),
            (PeelError::AlphaZero, DropReason::Rejected),
            (PeelError::AlphaNonCanonical, DropReason::Rejected),
            (PeelError::AlphaLowOrder, DropReason::Rejected),
            (PeelError::PayloadIntegrity, DropReason::PayloadIntegrity),
            (
                PeelError::Malformed(DecodeError::RoutingBlock),
                DropReason::Malformed,
            ),
        ];
        for (error, label) in peel {
            assert_eq!(DropReason::from(error), label, "{error:?}");
        }
    }

    #[test]
    fn counters_move_and_are_encoded() {
        let m = Metrics::new();
        assert_eq!(m.received_count(), 0);
        m.packet_received();
        m.packet_received();
        m.packet_forwarded();
        m.dropped(DropReason::Replay);
        m.dropped(DropReason::Replay);
        m.dropped(DropReason::ReplayStoreFull);
        m.exit_message(ExitKind::ExitIsDestination);
        m.reply_sent();
        m.reply_received();
        m.cover_sent();
        m.set_delay_queue_depth(7);
        m.set_replay_store_size(1234);
        m.set_connected_peers(3);
        m.set_pool_size(5);
        m.lightpush_result(200);
        m.lightpush_result(200);
        m.lightpush_result(429);
        m.relay_message_received();

        assert_eq!(m.received_count(), 2);
        assert_eq!(m.forwarded_count(), 1);
        assert_eq!(m.dropped_count(DropReason::Replay), 2);
        assert_eq!(m.dropped_count(DropReason::ReplayStoreFull), 1);
        assert_eq!(m.dropped_count(DropReason::Length), 0);
        assert_eq!(m.exit_count(ExitKind::ExitIsDestination), 1);
        assert_eq!(m.exit_count(ExitKind::Forward), 0);
        assert_eq!(m.replies_sent_count(), 1);
        assert_eq!(m.replies_received_count(), 1);
        assert_eq!(m.lightpush_count(200), 2);
        assert_eq!(m.lightpush_count(429), 1);
        assert_eq!(m.lightpush_count(500), 0);
        assert_eq!(m.relay_messages_count(), 1);

        let text = m.encode();
        for line in [
            "mix_packets_received_total 2",
            "mix_packets_forwarded_total 1",
            "mix_packets_dropped_total{reason=\"replay\"} 2",
            "mix_packets_dropped_total{reason=\"replay_store_full\"} 1",
            "mix_packets_dropped_total{reason=\"length\"} 0",
            "mix_packets_dropped_total{reason=\"cover\"} 0",
            "mix_exit_messages_total{kind=\"exit_is_destination\"} 1",
            "mix_exit_messages_total{kind=\"forward\"} 0",
            "mix_replies_sent_total 1",
            "mix_replies_received_total 1",
            "mix_cover_packets_sent_total 1",
            "mix_delay_queue_depth 7",
            "mix_replay_store_size 1234",
            "mix_connected_peers 3",
            "mix_pool_size 5",
            "waku_lightpush_requests_total{status=\"200\"} 2",
            "waku_lightpush_requests_total{status=\"429\"} 1",
            "waku_relay_messages_received_total 1",
            "# TYPE mix_packets_dropped counter",
            "# TYPE mix_delay_queue_depth gauge",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn labels_are_stable_snake_case_and_distinct() {
        let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        for l in &labels {
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
        }
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), labels.len());
        assert_eq!(DropReason::RateLimited.to_string(), "rate_limited");
        assert_eq!(ExitKind::ExitIsDestination.as_str(), "exit_is_destination");
    }

    #[test]
    fn metrics_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Metrics>();
    }
}

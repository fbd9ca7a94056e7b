#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
#![doc = include_str!("../README.md")]

mod address;
pub mod client;
mod handler;
mod protocol;
mod rate;
pub mod sender;

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, DialError, FromSwarm, NetworkBehaviour, NotifyHandler,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
pub use libp2p::{Multiaddr, PeerId};
pub use web_time::Instant;

pub use address::{AddressError, from_multiaddr, is_circuit, peer_id, peer_id_bytes, to_multiaddr};
pub use client::{
    Client, ClientError, DEFAULT_SENDER_HOLD, Destination, Hops, MAX_CREDENTIAL_AGE,
    MAX_CREDENTIALS, MIN_POOL_SIZE, MixNode, Outgoing, PoolConfig, Removal, RequestId, SendOptions,
    sample_sender_hold,
};
pub use handler::{FromBehaviour, Handler, ToBehaviour};
pub use mix_core::Format;
#[doc(hidden)]
pub use protocol::decode_frames_for_fuzzing;
pub use protocol::{Frame, PROTOCOL_NAME};
pub use rate::RateLimiter;
pub use sender::{Event as SenderEvent, Received, Sender, UPKEEP_PERIOD};

/// Settings of the `/mix/1.0.0` behaviour.
#[derive(Debug, Clone)]
pub struct Config {
    proof_len: usize,
    max_inbound_streams: usize,
    stream_idle_timeout: Duration,
    max_queued_per_peer: usize,
    packets_per_second: u32,
    burst: u32,
    frame_timeout: Duration,
}

impl Config {
    /// The defaults: no per-hop proof (frames of exactly 4608 bytes), at most
    /// [`DEFAULT_MAX_INBOUND_STREAMS`] inbound `/mix/1.0.0` streams per connection, each
    /// closed after [`DEFAULT_STREAM_IDLE_TIMEOUT`] between frames, at most 1024 frames queued
    /// per peer, at most 5000 packets per second from one peer with bursts of 5000, and 10 s
    /// for a frame to arrive whole once its first byte has.
    pub fn new() -> Self {
        Self {
            proof_len: 0,
            max_inbound_streams: DEFAULT_MAX_INBOUND_STREAMS,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            max_queued_per_peer: 1024,
            packets_per_second: 5000,
            burst: 5000,
            frame_timeout: Duration::from_secs(10),
        }
    }

    /// Frames carry a per-hop proof of this many bytes after the packet (MIX.md §13.1).
    pub fn with_proof_len(mut self, bytes: usize) -> Self {
        self.proof_len = bytes;
        self
    }

    /// The most inbound streams one connection may hold open (at least 1). A new stream
    /// beyond it closes the stream idle longest ([`DropReason::StreamIdle`]); only when every
    /// held stream is part-way through a frame is the new one closed instead
    /// ([`DropReason::StreamLimit`]).
    pub fn with_max_inbound_streams(mut self, streams: usize) -> Self {
        self.max_inbound_streams = streams.max(1);
        self
    }

    /// How long an inbound stream may wait between frames (or for its first) before it is
    /// closed ([`DropReason::StreamIdle`]). Nothing is lost: a stream is only closed between
    /// frames, with a FIN, not a reset.
    pub fn with_stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// The most frames waiting for one peer (for its dial, or its stream); more fail with
    /// [`SendFailure::QueueFull`].
    pub fn with_max_queued_per_peer(mut self, frames: usize) -> Self {
        self.max_queued_per_peer = frames.max(1);
        self
    }

    /// The sustained rate and the burst of packets accepted from one peer; more are dropped
    /// as [`DropReason::RateLimited`].
    pub fn with_rate_limit(mut self, packets_per_second: u32, burst: u32) -> Self {
        self.packets_per_second = packets_per_second;
        self.burst = burst.max(1);
        self
    }

    /// How long a frame may take to arrive once its first byte has; a slower one closes the
    /// stream ([`DropReason::Stalled`]). Waiting between frames is bounded by
    /// [`Config::with_stream_idle_timeout`] instead.
    pub fn with_frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = timeout;
        self
    }

    /// The proof size frames carry.
    pub fn proof_len(&self) -> usize {
        self.proof_len
    }
}

/// The default most inbound `/mix/1.0.0` streams one connection may hold: 256.
///
/// nim-libp2p opens a fresh stream per concurrent send to a next hop it has not pooled yet and
/// leaves all but one open and unused, so a burst of N packets holds N streams; resetting one
/// of them while Nim is still negotiating makes Nim close the whole connection. 256 covers such
/// bursts with room to spare, while (with up to 128 streams still negotiating, the swarm's
/// default, and a few for other protocols) staying below yamux's own limit of 512 streams per
/// connection, which resets the stream over it. An idle stream holds no frame buffer (one is
/// allocated only once a frame starts), only its reader's state and the muxer's, so a
/// connection's 256 idle streams stay well under a megabyte.
pub const DEFAULT_MAX_INBOUND_STREAMS: usize = 256;

/// The default time an inbound stream may wait between frames: 300 s, the relay's connection
/// idle timeout, so no stream is closed sooner than a quiet connection would be. Streams Nim
/// leaks are reclaimed sooner when a connection reaches [`DEFAULT_MAX_INBOUND_STREAMS`].
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Why inbound bytes were dropped before they became a packet, or an inbound stream was
/// closed. Never told to the peer.
///
/// Not `#[non_exhaustive]`: callers map every reason to their own metrics, and a new reason
/// should fail their build rather than fall into a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A frame of the wrong length (read and discarded).
    Length,
    /// A length prefix above the frame size: the stream was closed.
    Oversize,
    /// A stream beyond the per-connection limit while every held stream was part-way through
    /// a frame: the new stream was closed at once.
    StreamLimit,
    /// An idle stream (between frames, none lost) was closed: the stream idle longest when a
    /// new one arrived at the per-connection limit, or one idle past the idle timeout.
    StreamIdle,
    /// A packet beyond the peer's rate limit.
    RateLimited,
    /// A length prefix that is not a minimal unsigned varint: the stream was closed.
    BadPrefix,
    /// The stream ended or broke part-way through a frame.
    Truncated,
    /// A frame began but did not finish within the frame timeout (a slow-loris peer): the
    /// stream was closed.
    Stalled,
}

/// Why outgoing frames were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SendFailure {
    /// The peer could not be dialed.
    #[error("the peer could not be dialed")]
    Dial,
    /// The peer does not speak `/mix/1.0.0`.
    #[error("the peer does not speak /mix/1.0.0")]
    Unsupported,
    /// Writing failed twice (the stream was reopened once).
    #[error("the mix stream failed")]
    Stream,
    /// Too many frames were already waiting for the peer.
    #[error("too many frames queued for the peer")]
    QueueFull,
    /// The connection closed with frames still queued.
    #[error("the connection closed")]
    ConnectionClosed,
}

/// What the behaviour reports.
#[derive(Debug)]
pub enum Event {
    /// A frame of the right length arrived from `peer`, within its rate limit.
    Received {
        /// The previous hop (never the original sender, unless it is the first hop).
        peer: PeerId,
        /// The frame.
        frame: Frame,
    },
    /// Inbound bytes from `peer` were dropped.
    Dropped {
        /// Who sent them.
        peer: PeerId,
        /// Why.
        reason: DropReason,
    },
    /// Frames for `peer` were not delivered.
    SendFailed {
        /// The intended next hop.
        peer: PeerId,
        /// How many frames.
        frames: usize,
        /// Why.
        reason: SendFailure,
    },
}

/// The `/mix/1.0.0` network behaviour: delivers frames to peers (dialing them when needed)
/// and reports the frames peers send. Packet processing is the caller's (see `mix_core::peel`).
#[derive(Debug)]
pub struct Behaviour {
    config: Config,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Frames waiting for a connection to their peer.
    pending: HashMap<PeerId, VecDeque<Frame>>,
    limiter: RateLimiter,
    events: VecDeque<ToSwarm<Event, FromBehaviour>>,
    /// Frames held before they are sent ([`Behaviour::send_after`]).
    held: FuturesUnordered<HeldFrame>,
}

/// A frame waiting out its hold: resolves to what [`Behaviour::send`] takes.
type HeldFrame = Pin<Box<dyn Future<Output = (PeerId, Vec<Multiaddr>, Frame)> + Send>>;

impl Behaviour {
    /// A behaviour with `config`.
    pub fn new(config: Config) -> Self {
        let limiter = RateLimiter::new(config.packets_per_second, config.burst);
        Self {
            config,
            connections: HashMap::new(),
            pending: HashMap::new(),
            limiter,
            events: VecDeque::new(),
            held: FuturesUnordered::new(),
        }
    }

    /// [`Behaviour::send`] after `hold` (upstream's sender hold before a first-hop write or a
    /// SURB reply); at once for a zero hold. Held frames are not reordered with each other in
    /// any meaningful way: each waits out its own hold.
    pub fn send_after(
        &mut self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        frame: Frame,
        hold: Duration,
    ) {
        if hold.is_zero() {
            self.send(peer, addresses, frame);
            return;
        }
        self.held.push(Box::pin(async move {
            futures_timer::Delay::new(hold).await;
            (peer, addresses, frame)
        }));
    }

    /// Frames held by [`Behaviour::send_after`] and not yet sent.
    pub fn held_frames(&self) -> usize {
        self.held.len()
    }

    /// Sends `frame` to `peer` on its pooled `/mix/1.0.0` stream, dialing `addresses` first if
    /// there is no connection. Failures are reported as [`Event::SendFailed`].
    pub fn send(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, frame: Frame) {
        if let Some(connection) = self.connections.get(&peer).and_then(|c| c.first()) {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(*connection),
                event: FromBehaviour::Send(frame),
            });
            return;
        }
        let queue = self.pending.entry(peer).or_default();
        if queue.len() >= self.config.max_queued_per_peer {
            self.events
                .push_back(ToSwarm::GenerateEvent(Event::SendFailed {
                    peer,
                    frames: 1,
                    reason: SendFailure::QueueFull,
                }));
            return;
        }
        let first = queue.is_empty();
        queue.push_back(frame);
        if first {
            self.events.push_back(ToSwarm::Dial {
                opts: DialOpts::peer_id(peer)
                    .addresses(addresses)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
            });
        }
    }

    /// Whether there is a connection to `peer`.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connections.contains_key(peer)
    }

    /// Frames waiting for a dial, over all peers.
    pub fn pending_frames(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }

    fn new_handler(&self) -> Handler {
        Handler::new(self.config.clone())
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.new_handler())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.new_handler())
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
                if let Some(frames) = self.pending.remove(&e.peer_id) {
                    for frame in frames {
                        self.events.push_back(ToSwarm::NotifyHandler {
                            peer_id: e.peer_id,
                            handler: NotifyHandler::One(e.connection_id),
                            event: FromBehaviour::Send(frame),
                        });
                    }
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(list) = self.connections.get_mut(&e.peer_id) {
                    list.retain(|c| *c != e.connection_id);
                    if list.is_empty() {
                        self.connections.remove(&e.peer_id);
                        self.limiter.forget(&e.peer_id, Instant::now());
                    }
                }
            }
            FromSwarm::DialFailure(e) => {
                let Some(peer) = e.peer_id else { return };
                if matches!(e.error, DialError::DialPeerConditionFalse(_)) {
                    return;
                }
                if self.connections.contains_key(&peer) {
                    return;
                }
                if let Some(frames) = self.pending.remove(&peer) {
                    tracing::debug!(%peer, error = %e.error, "mix next hop unreachable");
                    self.events
                        .push_back(ToSwarm::GenerateEvent(Event::SendFailed {
                            peer,
                            frames: frames.len(),
                            reason: SendFailure::Dial,
                        }));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        let event = match event {
            ToBehaviour::Received(frame) => {
                if self.limiter.try_acquire(peer, Instant::now()) {
                    Event::Received { peer, frame }
                } else {
                    Event::Dropped {
                        peer,
                        reason: DropReason::RateLimited,
                    }
                }
            }
            ToBehaviour::Dropped(reason) => Event::Dropped { peer, reason },
            ToBehaviour::SendFailed { frames, reason } => Event::SendFailed {
                peer,
                frames,
                reason,
            },
        };
        self.events.push_back(ToSwarm::GenerateEvent(event));
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        while let Poll::Ready(Some((peer, addresses, frame))) = self.held.poll_next_unpin(cx) {
            self.send(peer, addresses, frame);
        }
        match self.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }
}

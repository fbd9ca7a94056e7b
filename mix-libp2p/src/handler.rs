//! The per-connection half of `/mix/1.0.0`: reads every inbound stream in a loop and writes
//! outgoing frames on one pooled outbound stream (MIX.md §1).
//!
//! The pooled stream is given up, and the next frame goes on a new one, when the receiver
//! closes it (it reclaims streams idle past its timeout, below) or when it has been idle for
//! half of this side's idle timeout, so no frame is written into a stream nobody reads.
//!
//! Inbound streams are held up to [`Config::with_max_inbound_streams`] per connection. A
//! stream waiting between frames is idle; one idle past the idle timeout, or the one idle
//! longest when a new stream arrives at the limit, is reclaimed: closed with a FIN, never
//! part-way through a frame. nim-libp2p leaves streams open and unused after a burst (its
//! per-peer pool opens one per concurrent send), and resets the whole connection when one of
//! its streams is refused, so refusing the newest stream would lose every packet in flight.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures::{AsyncWriteExt as _, FutureExt, StreamExt};
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionHandler, ConnectionHandlerEvent, Stream, StreamProtocol, StreamUpgradeError,
    SubstreamProtocol,
};
use web_time::Instant;

use crate::protocol::{self, Frame, Inbound, PROTOCOL_NAME};
use crate::{Config, DropReason};

/// A command from the behaviour.
#[derive(Debug)]
pub enum FromBehaviour {
    /// Write this frame to the peer.
    Send(Frame),
}

/// What a connection reports to the behaviour.
#[derive(Debug)]
pub enum ToBehaviour {
    /// A frame of the right length arrived.
    Received(Frame),
    /// Something inbound was dropped before it became a frame.
    Dropped(DropReason),
    /// Outgoing frames that could not be written.
    SendFailed {
        /// How many.
        frames: usize,
        /// Why.
        reason: crate::SendFailure,
    },
}

type WriteFuture = BoxFuture<'static, (Stream, Frame, std::io::Result<()>)>;

enum Outbound {
    /// No stream and none requested.
    None,
    /// A stream was requested.
    Opening,
    /// The pooled stream, waiting for frames since the instant given.
    Idle(Stream, Instant),
    /// A frame is being written.
    Writing(WriteFuture),
}

/// What an inbound stream's reader yields, tagged with the stream's number.
enum Step {
    /// A frame's first byte arrived: the stream is busy until the frame ends.
    Started,
    /// A read finished; the stream goes on if [`Inbound::continues`].
    Read(Inbound),
    /// The stream ended (or broke) between frames.
    Ended,
    /// The handler reclaimed the stream while it was idle: here it is, to be closed.
    Reclaimed(Stream),
}

/// The handler's record of one inbound stream its reader still holds.
struct InboundStream {
    /// Dropping it asks the reader to give the stream back (once it is between frames).
    _reclaim: oneshot::Sender<()>,
    /// When the stream last went idle (opened, or finished a frame); `None` while a frame
    /// is arriving.
    idle_since: Option<Instant>,
}

/// The `/mix/1.0.0` connection handler.
pub struct Handler {
    config: Config,
    inbound: SelectAll<BoxStream<'static, (u64, Step)>>,
    /// The inbound streams held, by number; at most `config.max_inbound_streams`.
    streams: HashMap<u64, InboundStream>,
    next_stream: u64,
    /// Fires at or before the earliest idle deadline, while any stream is idle.
    idle_timer: Option<futures_timer::Delay>,
    /// Reclaimed streams whose FIN is being sent.
    closing: FuturesUnordered<BoxFuture<'static, ()>>,
    queue: VecDeque<Frame>,
    outbound: Outbound,
    /// Set after a failed write or open: the next failure drops the frame instead of retrying.
    retrying: bool,
    /// The peer does not speak `/mix/1.0.0`.
    unsupported: bool,
    events: VecDeque<ToBehaviour>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("inbound_streams", &self.streams.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            inbound: SelectAll::new(),
            streams: HashMap::new(),
            next_stream: 0,
            idle_timer: None,
            closing: FuturesUnordered::new(),
            queue: VecDeque::new(),
            outbound: Outbound::None,
            retrying: false,
            unsupported: false,
            events: VecDeque::new(),
        }
    }

    /// Takes a newly negotiated inbound stream, reclaiming the stream idle longest if the
    /// connection is at its limit.
    fn on_inbound_stream(&mut self, mut stream: Stream) {
        if self.streams.len() >= self.config.max_inbound_streams {
            let idle_longest = self
                .streams
                .iter()
                .filter_map(|(id, s)| s.idle_since.map(|since| (since, *id)))
                .min();
            match idle_longest {
                // Its reader gives it back as `Step::Reclaimed`, counted there.
                Some((_, id)) => {
                    self.streams.remove(&id);
                }
                None => {
                    // Every held stream is part-way through a frame (each bounded by the
                    // frame timeout): refuse this one.
                    self.events
                        .push_back(ToBehaviour::Dropped(DropReason::StreamLimit));
                    drop(stream);
                    return;
                }
            }
        }
        stream.ignore_for_keep_alive();
        let id = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(1);
        let (reclaim, reclaimed) = oneshot::channel();
        self.streams.insert(
            id,
            InboundStream {
                _reclaim: reclaim,
                idle_since: Some(Instant::now()),
            },
        );
        self.arm_idle_timer();
        self.inbound.push(inbound_reader(
            id,
            stream,
            reclaimed,
            self.config.proof_len,
            self.config.frame_timeout,
        ));
    }

    /// Arms the idle timer if it is not: a stream that just went idle has the latest deadline
    /// of all, so an armed timer already fires in time.
    fn arm_idle_timer(&mut self) {
        if self.idle_timer.is_none() {
            self.idle_timer = Some(futures_timer::Delay::new(self.config.stream_idle_timeout));
        }
    }

    /// Reclaims every stream idle past the timeout and re-arms the timer for the earliest
    /// deadline left.
    fn on_idle_timer(&mut self, now: Instant) {
        let timeout = self.config.stream_idle_timeout;
        // `None` (an overflowing deadline) never expires.
        let deadline = |since: Instant| since.checked_add(timeout);
        self.streams
            .retain(|_, s| match s.idle_since.and_then(deadline) {
                Some(at) => at > now,
                None => true,
            });
        self.idle_timer = self
            .streams
            .values()
            .filter_map(|s| s.idle_since.and_then(deadline))
            .min()
            .map(|at| futures_timer::Delay::new(at.saturating_duration_since(now)));
    }

    /// What the behaviour hears of a reader's step.
    fn on_step(&mut self, id: u64, step: Step) -> Option<ToBehaviour> {
        match step {
            Step::Started => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.idle_since = None;
                }
                None
            }
            Step::Read(inbound) => {
                if inbound.continues() {
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.idle_since = Some(Instant::now());
                        self.arm_idle_timer();
                    }
                } else {
                    self.streams.remove(&id);
                }
                // A frame is delivered even from a stream being reclaimed.
                Some(match inbound {
                    Inbound::Frame(frame) => ToBehaviour::Received(frame),
                    other => {
                        ToBehaviour::Dropped(other.drop_reason().unwrap_or(DropReason::Length))
                    }
                })
            }
            Step::Ended => {
                self.streams.remove(&id);
                None
            }
            Step::Reclaimed(stream) => {
                // A FIN rather than a reset; a stream whose FIN cannot go out in time, or one
                // beyond as many closing as may be held, is dropped (reset) instead.
                self.close(stream);
                Some(ToBehaviour::Dropped(DropReason::StreamIdle))
            }
        }
    }

    /// Closes the pooled outbound stream; the next frame opens a new one.
    fn retire(&mut self, stream: Stream) {
        self.outbound = Outbound::None;
        self.close(stream);
    }

    /// Closes `stream` with a FIN, given at most the frame timeout; beyond as many closing
    /// streams as inbound ones may be held, it is dropped (reset) instead.
    fn close(&mut self, mut stream: Stream) {
        if self.closing.len() < self.config.max_inbound_streams {
            let timeout = self.config.frame_timeout;
            self.closing.push(
                async move {
                    let close = stream.close();
                    let timer = futures_timer::Delay::new(timeout);
                    futures::pin_mut!(close);
                    let _ = futures::future::select(close, timer).await;
                }
                .boxed(),
            );
        }
    }

    fn fail_queue(&mut self, reason: crate::SendFailure) {
        let frames = self.queue.len();
        self.queue.clear();
        if frames > 0 {
            self.events
                .push_back(ToBehaviour::SendFailed { frames, reason });
        }
    }

    fn on_open_failure(&mut self, error: StreamUpgradeError<std::convert::Infallible>) {
        self.outbound = Outbound::None;
        match error {
            StreamUpgradeError::NegotiationFailed => {
                self.unsupported = true;
                self.fail_queue(crate::SendFailure::Unsupported);
            }
            StreamUpgradeError::Timeout | StreamUpgradeError::Io(_) => {
                if self.retrying {
                    self.retrying = false;
                    self.fail_queue(crate::SendFailure::Stream);
                } else {
                    // Reopen once (MIX.md §1: Nim reopens a stream once and retries).
                    self.retrying = true;
                }
            }
            StreamUpgradeError::Apply(never) => match never {},
        }
    }
}

/// Where an inbound stream's reader is.
enum Reader {
    /// Waiting for a frame's first byte, or for the handler to reclaim the stream.
    Idle(Stream, oneshot::Receiver<()>),
    /// A frame began with this byte.
    Busy(Stream, oneshot::Receiver<()>, u8),
    /// Nothing more to yield.
    Done,
}

/// Reads `stream` frame by frame, yielding each [`Step`] tagged with `id`, until it ends or
/// `reclaim` resolves (its sender sent or dropped) while the stream is between frames.
fn inbound_reader(
    id: u64,
    stream: Stream,
    reclaim: oneshot::Receiver<()>,
    proof_len: usize,
    frame_timeout: std::time::Duration,
) -> BoxStream<'static, (u64, Step)> {
    futures::stream::unfold(Reader::Idle(stream, reclaim), move |state| async move {
        match state {
            Reader::Idle(mut stream, mut reclaim) => {
                // `Some(first byte)`, `None` at the end, `Err` when reclaimed.
                let next = {
                    let first = protocol::read_first(&mut stream);
                    futures::pin_mut!(first);
                    // `read_first` first: a byte already there wins over a reclaim, and
                    // dropping `read_first` unfinished consumes nothing.
                    match futures::future::select(first, &mut reclaim).await {
                        futures::future::Either::Left((first, _)) => Ok(first),
                        futures::future::Either::Right(_) => Err(()),
                    }
                };
                match next {
                    Ok(Some(byte)) => {
                        Some(((id, Step::Started), Reader::Busy(stream, reclaim, byte)))
                    }
                    Ok(None) => Some(((id, Step::Ended), Reader::Done)),
                    Err(()) => Some(((id, Step::Reclaimed(stream)), Reader::Done)),
                }
            }
            Reader::Busy(mut stream, reclaim, first) => {
                let inbound = protocol::read_started(first, &mut stream, proof_len, || {
                    futures_timer::Delay::new(frame_timeout)
                })
                .await;
                // Oversize, a bad prefix, a truncated or stalled frame: report it, close
                // the stream.
                let next = if inbound.continues() {
                    Reader::Idle(stream, reclaim)
                } else {
                    Reader::Done
                };
                Some(((id, Step::Read(inbound)), next))
            }
            Reader::Done => None,
        }
    })
    .boxed()
}

impl ConnectionHandler for Handler {
    type FromBehaviour = FromBehaviour;
    type ToBehaviour = ToBehaviour;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL_NAME), ())
    }

    fn on_behaviour_event(&mut self, event: FromBehaviour) {
        match event {
            FromBehaviour::Send(frame) => {
                if self.unsupported {
                    self.events.push_back(ToBehaviour::SendFailed {
                        frames: 1,
                        reason: crate::SendFailure::Unsupported,
                    });
                } else if self.queue.len() >= self.config.max_queued_per_peer {
                    self.events.push_back(ToBehaviour::SendFailed {
                        frames: 1,
                        reason: crate::SendFailure::QueueFull,
                    });
                } else {
                    self.queue.push_back(frame);
                }
            }
        }
    }

    fn connection_keep_alive(&self) -> bool {
        !self.queue.is_empty() || matches!(self.outbound, Outbound::Opening | Outbound::Writing(_))
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        while let Poll::Ready(Some((id, step))) = self.inbound.poll_next_unpin(cx) {
            if let Some(event) = self.on_step(id, step) {
                // Come back for more inbound frames.
                cx.waker().wake_by_ref();
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
            }
        }
        if let Some(timer) = self.idle_timer.as_mut()
            && timer.poll_unpin(cx).is_ready()
        {
            self.on_idle_timer(Instant::now());
            // Poll the re-armed timer, and the readers just asked to give their streams back.
            cx.waker().wake_by_ref();
        }
        while let Poll::Ready(Some(())) = self.closing.poll_next_unpin(cx) {}
        loop {
            match std::mem::replace(&mut self.outbound, Outbound::None) {
                Outbound::None => {
                    if self.queue.is_empty() || self.unsupported {
                        break;
                    }
                    self.outbound = Outbound::Opening;
                    return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                        protocol: SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL_NAME), ()),
                    });
                }
                Outbound::Opening => {
                    self.outbound = Outbound::Opening;
                    break;
                }
                Outbound::Idle(mut stream, since) => {
                    // The receiver never writes on `/mix/1.0.0`: anything readable (its FIN
                    // when it reclaimed the idle stream, a reset, stray bytes) ends the
                    // stream, and the next frame goes on a fresh one instead of into a stream
                    // nobody reads.
                    let mut scratch = [0u8; 64];
                    let ended =
                        futures::AsyncRead::poll_read(Pin::new(&mut stream), cx, &mut scratch)
                            .is_ready();
                    // A stream idle for half the idle timeout is retired before the next
                    // frame: a receiver with the same timeout may be reclaiming it right now,
                    // while the frame would be in flight.
                    let stale = !self.queue.is_empty()
                        && since.elapsed()
                            >= self
                                .config
                                .stream_idle_timeout
                                .checked_div(2)
                                .unwrap_or_default();
                    if ended || stale {
                        self.retire(stream);
                        continue;
                    }
                    match self.queue.pop_front() {
                        Some(frame) => {
                            self.outbound = Outbound::Writing(
                                async move {
                                    let result = protocol::write_frame(&mut stream, &frame).await;
                                    (stream, frame, result)
                                }
                                .boxed(),
                            );
                        }
                        None => {
                            self.outbound = Outbound::Idle(stream, since);
                            break;
                        }
                    }
                }
                Outbound::Writing(mut write) => match write.poll_unpin(cx) {
                    Poll::Pending => {
                        self.outbound = Outbound::Writing(write);
                        break;
                    }
                    Poll::Ready((stream, _, Ok(()))) => {
                        self.retrying = false;
                        self.outbound = Outbound::Idle(stream, Instant::now());
                    }
                    Poll::Ready((_, frame, Err(error))) => {
                        tracing::debug!(%error, "mix stream write failed");
                        if self.retrying {
                            self.retrying = false;
                            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                                ToBehaviour::SendFailed {
                                    frames: 1,
                                    reason: crate::SendFailure::Stream,
                                },
                            ));
                        }
                        // Reopen once and retry this frame first.
                        self.retrying = true;
                        self.queue.push_front(frame);
                    }
                },
            }
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        Poll::Pending
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.on_inbound_stream(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: mut stream,
                ..
            }) => {
                stream.ignore_for_keep_alive();
                self.outbound = Outbound::Idle(stream, Instant::now());
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.on_open_failure(error);
            }
            _ => {}
        }
    }
}

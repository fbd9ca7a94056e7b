//! The per-connection half of `/mix/1.0.0`: reads every inbound stream in a loop and writes
//! outgoing frames on one pooled outbound stream (MIX.md §1).

use std::collections::VecDeque;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionHandler, ConnectionHandlerEvent, Stream, StreamProtocol, StreamUpgradeError,
    SubstreamProtocol,
};

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
    /// The pooled stream, waiting for frames.
    Idle(Stream),
    /// A frame is being written.
    Writing(WriteFuture),
}

/// The `/mix/1.0.0` connection handler.
pub struct Handler {
    config: Config,
    inbound: SelectAll<BoxStream<'static, Inbound>>,
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
            .field("inbound_streams", &self.inbound.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            inbound: SelectAll::new(),
            queue: VecDeque::new(),
            outbound: Outbound::None,
            retrying: false,
            unsupported: false,
            events: VecDeque::new(),
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

fn inbound_frames(
    stream: Stream,
    proof_len: usize,
    frame_timeout: std::time::Duration,
) -> BoxStream<'static, Inbound> {
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        let inbound = protocol::read_frame(&mut stream, proof_len, || {
            futures_timer::Delay::new(frame_timeout)
        })
        .await;
        match inbound {
            Inbound::End => None,
            // Oversize, a bad prefix, a truncated or stalled frame: report it, close the stream.
            item => {
                let next = item.continues().then_some(stream);
                Some((item, next))
            }
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
        if let Poll::Ready(Some(item)) = self.inbound.poll_next_unpin(cx) {
            let event = match item {
                Inbound::Frame(frame) => ToBehaviour::Received(frame),
                other => ToBehaviour::Dropped(other.drop_reason().unwrap_or(DropReason::Length)),
            };
            // Come back for more inbound frames.
            cx.waker().wake_by_ref();
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
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
                Outbound::Idle(mut stream) => match self.queue.pop_front() {
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
                        self.outbound = Outbound::Idle(stream);
                        break;
                    }
                },
                Outbound::Writing(mut write) => match write.poll_unpin(cx) {
                    Poll::Pending => {
                        self.outbound = Outbound::Writing(write);
                        break;
                    }
                    Poll::Ready((stream, _, Ok(()))) => {
                        self.retrying = false;
                        self.outbound = Outbound::Idle(stream);
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
                protocol: mut stream,
                ..
            }) => {
                if self.inbound.len() >= self.config.max_inbound_streams {
                    self.events
                        .push_back(ToBehaviour::Dropped(DropReason::StreamLimit));
                    drop(stream);
                    return;
                }
                stream.ignore_for_keep_alive();
                self.inbound.push(inbound_frames(
                    stream,
                    self.config.proof_len,
                    self.config.frame_timeout,
                ));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: mut stream,
                ..
            }) => {
                stream.ignore_for_keep_alive();
                self.outbound = Outbound::Idle(stream);
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.on_open_failure(error);
            }
            _ => {}
        }
    }
}

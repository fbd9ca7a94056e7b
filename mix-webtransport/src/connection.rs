//! An authenticated WebTransport session as a libp2p [`StreamMuxer`]: every bidirectional
//! WebTransport stream is a libp2p stream (no Yamux: the session multiplexes).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite, FutureExt as _};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt as _};
use wtransport::endpoint::endpoint_side;
use wtransport::stream::BiStream;
use wtransport::{Endpoint, RecvStream, SendStream, VarInt};

use crate::Error;

type StreamFuture = BoxFuture<'static, Result<(SendStream, RecvStream), Error>>;

/// A WebTransport session after the Noise handshake.
pub struct Connection {
    session: wtransport::Connection,
    /// A dialer's own QUIC endpoint, kept as long as the session.
    _endpoint: Option<Endpoint<endpoint_side::Client>>,
    inbound: Option<StreamFuture>,
    outbound: Option<StreamFuture>,
    closed: BoxFuture<'static, wtransport::error::ConnectionError>,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.session.remote_address())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        session: wtransport::Connection,
        endpoint: Option<Endpoint<endpoint_side::Client>>,
    ) -> Self {
        let watched = session.clone();
        Self {
            session,
            _endpoint: endpoint,
            inbound: None,
            outbound: None,
            closed: async move { watched.closed().await }.boxed(),
        }
    }
}

impl StreamMuxer for Connection {
    type Substream = Stream;
    type Error = Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let session = self.session.clone();
        poll_stream(&mut self.inbound, cx, || {
            async move { Ok(session.accept_bi().await?) }.boxed()
        })
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let session = self.session.clone();
        poll_stream(&mut self.outbound, cx, || {
            async move { Ok(session.open_bi().await?.await?) }.boxed()
        })
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.session.close(VarInt::from_u32(0), b"");
        Poll::Ready(Ok(()))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        // The session ending (closed by the peer, idle, reset) ends the connection.
        let reason = futures::ready!(self.closed.poll_unpin(cx));
        Poll::Ready(Err(Error::Connection(reason)))
    }
}

/// Polls the stream future in `slot`, started with `start` if there is none; the slot is
/// emptied once it yields.
fn poll_stream(
    slot: &mut Option<StreamFuture>,
    cx: &mut Context<'_>,
    start: impl FnOnce() -> StreamFuture,
) -> Poll<Result<Stream, Error>> {
    let result = futures::ready!(slot.get_or_insert_with(start).poll_unpin(cx));
    *slot = None;
    Poll::Ready(result.map(Stream::new))
}

/// A bidirectional WebTransport stream as a libp2p stream.
#[derive(Debug)]
pub struct Stream(Compat<BiStream>);

impl Stream {
    pub(crate) fn new(halves: (SendStream, RecvStream)) -> Self {
        Self(BiStream::join(halves).compat())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    /// Finishes the sending half (the peer reads end of stream).
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

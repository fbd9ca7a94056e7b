//! The browser's WebSocket connections, flushed without waiting.
//!
//! `libp2p-websocket-websys` 0.6 answers `poll_flush` with `Pending` while the socket's
//! `bufferedAmount` is not 0, and looks again only every 100 ms (an interval its source calls
//! "chosen arbitrarily and likely worth tuning"). Right after `WebSocket.send()` it is never 0,
//! so every flush waits up to 100 ms. Setting up a connection flushes several times
//! (multistream-select, the three Noise messages, Yamux), and that cost a browser about 0.4 s
//! for each new relay it dialed, the first hop of a request among them.
//!
//! Bytes handed to `WebSocket.send()` are queued by the browser, which sends them in order
//! whatever the page does next (`close()` sends them first, too), so a flush has nothing to
//! wait for that changes what the peer receives. Back-pressure stays: the transport's
//! `poll_write` still refuses bytes while the socket holds more than its buffer limit, and a
//! broken socket still fails the next read or write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};

/// A connection whose `poll_flush` is done as soon as the bytes are the browser's to send.
#[derive(Debug)]
pub(crate) struct FlushNow<C>(pub(crate) C);

impl<C: AsyncRead + Unpin> AsyncRead for FlushNow<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for FlushNow<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

//! The `/mix/1.0.0` wire exchange (MIX.md §1): each packet is one `uvarint(len) ‖ bytes` frame
//! on a unidirectional stream; nothing is ever written back.

use std::future::Future;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use mix_core::PACKET_LEN;

/// The protocol id, `/mix/1.0.0`.
pub const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new(mix_core::PROTOCOL_ID);

/// One received or outgoing frame: a Sphinx packet, and the per-hop proof appended to it when
/// the network runs spam protection (MIX.md §13.1; empty otherwise).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The 4608-byte Sphinx packet.
    pub packet: Box<[u8; PACKET_LEN]>,
    /// The proof that follows it in the frame (its length is the configured proof size).
    pub proof: Vec<u8>,
}

impl Frame {
    /// A frame without a proof.
    pub fn new(packet: Box<[u8; PACKET_LEN]>) -> Self {
        Self {
            packet,
            proof: Vec::new(),
        }
    }

    /// The frame's length on the wire, without the length prefix.
    pub fn len(&self) -> usize {
        PACKET_LEN.saturating_add(self.proof.len())
    }

    /// Never: a frame holds at least a packet. (For clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// What one read from an inbound stream produced.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A frame of exactly the expected length.
    Frame(Frame),
    /// A frame of another length (read and discarded; the stream goes on).
    WrongLength,
    /// A length prefix above the maximum: the stream is closed without reading the body.
    Oversize,
    /// A length prefix that is not a minimal unsigned varint: the stream is closed.
    BadPrefix,
    /// The stream ended or broke part-way through a frame.
    Truncated,
    /// A frame began but did not finish within the frame timeout (a slow-loris peer): the
    /// stream is closed.
    Stalled,
    /// The stream ended cleanly between frames (or broke before a frame began).
    End,
}

impl Inbound {
    /// Whether reading the stream goes on after this.
    pub(crate) fn continues(&self) -> bool {
        matches!(self, Self::Frame(_) | Self::WrongLength)
    }
}

/// Reads one frame whose body must be exactly `PACKET_LEN + proof_len` bytes.
///
/// Waiting for a frame's first byte has no limit here (a pooled stream idles between packets;
/// the handler reclaims streams that idle too long); once it arrives, `deadline()` is started
/// and the rest of the frame must arrive before it completes, or the read ends as
/// [`Inbound::Stalled`].
pub(crate) async fn read_frame<S, D, F>(stream: &mut S, proof_len: usize, deadline: D) -> Inbound
where
    S: AsyncRead + Unpin,
    D: FnOnce() -> F,
    F: Future<Output = ()>,
{
    match read_first(stream).await {
        Some(first) => read_started(first, stream, proof_len, deadline).await,
        None => Inbound::End,
    }
}

/// Waits for the first byte of the next frame: `None` if the stream ends or breaks first.
///
/// Cancel-safe: dropped before it completes, it has consumed nothing.
pub(crate) async fn read_first<S: AsyncRead + Unpin>(stream: &mut S) -> Option<u8> {
    let mut first = [0u8; 1];
    loop {
        match stream.read(&mut first).await {
            Ok(0) => return None,
            Ok(_) => return Some(first[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The rest of a frame whose first byte is `first`, within `deadline()`. The frame's buffer
/// is allocated here, once its length is known: a stream waiting between frames holds none.
pub(crate) async fn read_started<S, D, F>(
    first: u8,
    stream: &mut S,
    proof_len: usize,
    deadline: D,
) -> Inbound
where
    S: AsyncRead + Unpin,
    D: FnOnce() -> F,
    F: Future<Output = ()>,
{
    let rest = read_rest(first, stream, proof_len);
    let timer = deadline();
    futures::pin_mut!(rest, timer);
    match futures::future::select(rest, timer).await {
        futures::future::Either::Left((inbound, _)) => inbound,
        futures::future::Either::Right(((), _)) => Inbound::Stalled,
    }
}

/// The rest of a frame whose first byte is `first`.
async fn read_rest<S: AsyncRead + Unpin>(first: u8, stream: &mut S, proof_len: usize) -> Inbound {
    let expected = PACKET_LEN.saturating_add(proof_len);
    let mut reader = futures::io::Cursor::new([first]).chain(&mut *stream);
    let len = match unsigned_varint::aio::read_usize(&mut reader).await {
        Ok(len) => len,
        Err(unsigned_varint::io::ReadError::Io(_)) => return Inbound::Truncated,
        Err(_) => return Inbound::BadPrefix,
    };
    if len > expected {
        return Inbound::Oversize;
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).await.is_err() {
        return Inbound::Truncated;
    }
    if len != expected {
        return Inbound::WrongLength;
    }
    let proof = body.split_off(PACKET_LEN);
    match body.into_boxed_slice().try_into() {
        Ok(packet) => Inbound::Frame(Frame { packet, proof }),
        Err(_) => Inbound::WrongLength,
    }
}

/// Writes one frame, `uvarint(len) ‖ packet ‖ proof`, and flushes.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &Frame,
) -> std::io::Result<()> {
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let prefix = unsigned_varint::encode::usize(frame.len(), &mut prefix);
    let mut bytes = Vec::with_capacity(prefix.len().saturating_add(frame.len()));
    bytes.extend_from_slice(prefix);
    bytes.extend_from_slice(frame.packet.as_slice());
    bytes.extend_from_slice(&frame.proof);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// Runs [`read_frame`] over `bytes` as one inbound stream, as the handler does: a frame of the
/// right length is `Ok`, one of another length `Err(DropReason::Length)` (and reading goes on);
/// an oversize prefix, a bad prefix or a truncated frame is the matching `Err` and reading
/// stops, as it does at the end of the bytes.
///
/// Only for the fuzz targets (`fuzz/fuzz_targets/mix_frames.rs`): not part of the API.
#[doc(hidden)]
pub fn decode_frames_for_fuzzing(
    bytes: &[u8],
    proof_len: usize,
) -> Vec<Result<Frame, crate::DropReason>> {
    let mut stream = futures::io::Cursor::new(bytes);
    let mut out = Vec::new();
    futures::executor::block_on(async {
        loop {
            let inbound = read_frame(&mut stream, proof_len, futures::future::pending).await;
            let continues = inbound.continues();
            match inbound {
                Inbound::Frame(frame) => out.push(Ok(frame)),
                Inbound::End => {}
                other => out.extend(other.drop_reason().map(Err)),
            }
            if !continues {
                break;
            }
        }
    });
    out
}

impl Inbound {
    /// The reason reported for a dropped read, if it is one.
    pub(crate) fn drop_reason(&self) -> Option<crate::DropReason> {
        match self {
            Self::Frame(_) | Self::End => None,
            Self::WrongLength => Some(crate::DropReason::Length),
            Self::Oversize => Some(crate::DropReason::Oversize),
            Self::BadPrefix => Some(crate::DropReason::BadPrefix),
            Self::Truncated => Some(crate::DropReason::Truncated),
            Self::Stalled => Some(crate::DropReason::Stalled),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::io::Cursor;

    use super::*;

    fn frame(fill: u8) -> Frame {
        Frame::new(Box::new([fill; PACKET_LEN]))
    }

    async fn read(input: &mut Cursor<Vec<u8>>, proof_len: usize) -> Inbound {
        read_frame(input, proof_len, futures::future::pending).await
    }

    #[tokio::test]
    async fn a_packet_frame_is_prefixed_80_24() {
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, &frame(7)).await.unwrap();
        let bytes = out.into_inner();
        assert_eq!(&bytes[..2], &[0x80, 0x24]);
        assert_eq!(bytes.len(), 2 + PACKET_LEN);
    }

    #[tokio::test]
    async fn frames_round_trip_several_per_stream() {
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, &frame(1)).await.unwrap();
        write_frame(&mut out, &frame(2)).await.unwrap();
        let mut input = Cursor::new(out.into_inner());
        for fill in [1u8, 2] {
            match read(&mut input, 0).await {
                Inbound::Frame(f) => assert_eq!(f, frame(fill)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(matches!(read(&mut input, 0).await, Inbound::End));
    }

    #[tokio::test]
    async fn wrong_lengths_are_reported_and_oversize_stops() {
        let mut bytes = vec![0x05, 1, 2, 3, 4, 5];
        bytes.extend_from_slice(&[0x81, 0x24]); // 4609
        let mut input = Cursor::new(bytes);
        let first = read(&mut input, 0).await;
        assert!(matches!(first, Inbound::WrongLength) && first.continues());
        let second = read(&mut input, 0).await;
        assert!(matches!(second, Inbound::Oversize) && !second.continues());
    }

    #[tokio::test]
    async fn a_proof_travels_after_the_packet() {
        let mut f = frame(9);
        f.proof = vec![0xaa; 32];
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, &f).await.unwrap();
        let mut input = Cursor::new(out.into_inner());
        match read(&mut input, 32).await {
            Inbound::Frame(g) => assert_eq!(g, f),
            other => panic!("unexpected {other:?}"),
        }
        // Without the proof size configured, the same frame is too long.
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, &f).await.unwrap();
        let mut input = Cursor::new(out.into_inner());
        assert!(matches!(read(&mut input, 0).await, Inbound::Oversize));
    }

    #[tokio::test]
    async fn a_truncated_body_or_prefix_is_reported() {
        let mut input = Cursor::new(vec![0x80, 0x24, 1, 2, 3]);
        assert!(matches!(read(&mut input, 0).await, Inbound::Truncated));
        let mut input = Cursor::new(vec![0x80]);
        assert!(matches!(read(&mut input, 0).await, Inbound::Truncated));
    }

    #[tokio::test]
    async fn bad_varints_are_reported() {
        // Not minimal: 0x80 0x00 encodes 0 in two bytes.
        let mut input = Cursor::new(vec![0x80, 0x00, 0xff]);
        assert!(matches!(read(&mut input, 0).await, Inbound::BadPrefix));
        // Overflows a usize: eleven continuation bytes.
        let mut input = Cursor::new(vec![0xff; 11]);
        assert!(matches!(read(&mut input, 0).await, Inbound::BadPrefix));
    }

    /// A reader that yields `bytes` and then stays pending, as a stalled peer does.
    struct Stall(Vec<u8>);

    impl AsyncRead for Stall {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            if self.0.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    #[tokio::test]
    async fn a_frame_that_stops_part_way_stalls_once_its_deadline_passes() {
        let mut started = false;
        let mut stream = Stall(vec![0x80, 0x24, 1, 2, 3]);
        let inbound = read_frame(&mut stream, 0, || {
            started = true;
            futures::future::ready(())
        })
        .await;
        assert!(started);
        assert!(matches!(inbound, Inbound::Stalled) && !inbound.continues());
    }

    #[tokio::test]
    async fn an_idle_stream_has_no_deadline() {
        let mut stream = Stall(Vec::new());
        let read = read_frame(&mut stream, 0, || -> futures::future::Ready<()> {
            panic!("the deadline starts only with a frame's first byte")
        });
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), read).await;
        assert!(waited.is_err(), "still waiting for a first byte");
    }
}

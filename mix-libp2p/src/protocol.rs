//! The `/mix/1.0.0` wire exchange (MIX.md §1): each packet is one `uvarint(len) ‖ bytes` frame
//! on a unidirectional stream; nothing is ever written back.

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
        PACKET_LEN + self.proof.len()
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
}

/// Reads one frame whose body must be exactly `PACKET_LEN + proof_len` bytes.
///
/// Returns `Ok(None)` at a clean end of stream (before a length prefix).
pub(crate) async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    proof_len: usize,
) -> std::io::Result<Option<Inbound>> {
    let expected = PACKET_LEN + proof_len;
    let len = match unsigned_varint::aio::read_usize(&mut *stream).await {
        Ok(len) => len,
        Err(unsigned_varint::io::ReadError::Io(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            return Ok(None);
        }
        Err(unsigned_varint::io::ReadError::Io(e)) => return Err(e),
        Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    };
    if len > expected {
        return Ok(Some(Inbound::Oversize));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    if len != expected {
        return Ok(Some(Inbound::WrongLength));
    }
    let proof = body.split_off(PACKET_LEN);
    let packet: Box<[u8; PACKET_LEN]> = body
        .into_boxed_slice()
        .try_into()
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
    Ok(Some(Inbound::Frame(Frame { packet, proof })))
}

/// Writes one frame, `uvarint(len) ‖ packet ‖ proof`, and flushes.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &Frame,
) -> std::io::Result<()> {
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let prefix = unsigned_varint::encode::usize(frame.len(), &mut prefix);
    let mut bytes = Vec::with_capacity(prefix.len() + frame.len());
    bytes.extend_from_slice(prefix);
    bytes.extend_from_slice(frame.packet.as_slice());
    bytes.extend_from_slice(&frame.proof);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// Runs [`read_frame`] over `bytes` as one inbound stream, as the handler does: a frame of the
/// right length is `Ok`, one of another length `Err(DropReason::Length)` (and reading goes on),
/// an oversize prefix `Err(DropReason::Oversize)` (and reading stops). Reading also stops at the
/// end of the bytes or at an I/O error (a truncated frame, a bad length prefix).
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
        while let Ok(Some(inbound)) = read_frame(&mut stream, proof_len).await {
            match inbound {
                Inbound::Frame(frame) => out.push(Ok(frame)),
                Inbound::WrongLength => out.push(Err(crate::DropReason::Length)),
                Inbound::Oversize => {
                    out.push(Err(crate::DropReason::Oversize));
                    break;
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;

    use super::*;

    fn frame(fill: u8) -> Frame {
        Frame::new(Box::new([fill; PACKET_LEN]))
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
            match read_frame(&mut input, 0).await.unwrap() {
                Some(Inbound::Frame(f)) => assert_eq!(f, frame(fill)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(read_frame(&mut input, 0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn wrong_lengths_are_reported_and_oversize_stops() {
        let mut bytes = vec![0x05, 1, 2, 3, 4, 5];
        bytes.extend_from_slice(&[0x81, 0x24]); // 4609
        let mut input = Cursor::new(bytes);
        assert!(matches!(
            read_frame(&mut input, 0).await.unwrap(),
            Some(Inbound::WrongLength)
        ));
        assert!(matches!(
            read_frame(&mut input, 0).await.unwrap(),
            Some(Inbound::Oversize)
        ));
    }

    #[tokio::test]
    async fn a_proof_travels_after_the_packet() {
        let mut f = frame(9);
        f.proof = vec![0xaa; 32];
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, &f).await.unwrap();
        let mut input = Cursor::new(out.into_inner());
        match read_frame(&mut input, 32).await.unwrap() {
            Some(Inbound::Frame(g)) => assert_eq!(g, f),
            other => panic!("unexpected {other:?}"),
        }
        // Without the proof size configured, the same frame is too long.
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, &f).await.unwrap();
        let mut input = Cursor::new(out.into_inner());
        assert!(matches!(
            read_frame(&mut input, 0).await.unwrap(),
            Some(Inbound::Oversize)
        ));
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error() {
        let mut input = Cursor::new(vec![0x80, 0x24, 1, 2, 3]);
        assert!(read_frame(&mut input, 0).await.is_err());
    }
}

//! The forward-mode exit (destination ≠ exit, MIX.md §7.2): the request goes to the
//! destination on a fresh stream for its codec, and the length-prefixed answer (or an empty
//! one when the destination cannot be reached, as Nim) goes back through the SURBs. Only
//! allowed codecs, dialable addresses and a budget of exchanges in flight of its own.

use std::sync::atomic::Ordering;

use futures::AsyncWriteExt as _;
use libp2p::{PeerId, StreamProtocol};
use mix_core::Surb;
use mix_libp2p::Instant;

use super::streams::read_length_prefixed;
use super::{ExitResult, InFlight, Node};
use crate::metrics::DropReason;

impl Node {
    pub(super) fn forward_to_destination(
        &mut self,
        destination: mix_core::Address,
        codec: String,
        surbs: Vec<Surb>,
        body: Vec<u8>,
    ) {
        let Ok(peer) = mix_libp2p::peer_id(&destination.peer_id) else {
            self.metrics.dropped(DropReason::Malformed);
            return;
        };
        let addr = mix_libp2p::to_multiaddr(&destination);
        // Nim reads a reply only for lightpush (MIX.md §7.2); an open proxy to any protocol
        // at any address is not a service this relay offers.
        if !self.limits.forwards(&codec)
            || !self.limits.dialable(&addr)
            || self.forward_in_flight.load(Ordering::Relaxed) >= self.limits.max_forward_in_flight
        {
            self.metrics.dropped(DropReason::ExitRefused);
            return;
        }
        if self
            .dials
            .recently_failed(&self.limits, &addr, Instant::now())
        {
            // Unreachable a moment ago: answer as for an unreachable destination (empty, as
            // Nim), without dialing again.
            self.metrics.dropped(DropReason::ExitRefused);
            for surb in &surbs {
                self.reply_through(surb, &[]);
            }
            return;
        }
        self.swarm.add_peer_address(peer, addr.clone());
        let control = self.control.clone();
        let in_flight = InFlight::enter(&self.forward_in_flight);
        let exit_tx = self.exit_tx.clone();
        let timeout = self.forward_timeout;
        tokio::spawn(async move {
            let want_reply = !surbs.is_empty();
            let outcome =
                tokio::time::timeout(timeout, exchange(control, peer, codec, body, want_reply))
                    .await
                    .ok()
                    .and_then(Result::ok);
            drop(in_flight);
            let unreachable = outcome.is_none().then_some(addr);
            // Nim replies with an empty response when the destination cannot be reached.
            let response = outcome.unwrap_or_default();
            if want_reply || unreachable.is_some() {
                let surbs = if want_reply { surbs } else { Vec::new() };
                let _ = exit_tx
                    .send(ExitResult {
                        surbs,
                        response,
                        unreachable,
                    })
                    .await;
            }
        });
    }
}

/// Forward mode: one request to the destination on a new stream for `codec`, and its
/// length-prefixed response with the prefix kept (MIX.md §7.2, Nim's `readLp` behaviour).
async fn exchange(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    codec: String,
    body: Vec<u8>,
    want_reply: bool,
) -> anyhow::Result<Vec<u8>> {
    let protocol = StreamProtocol::try_from_owned(codec)?;
    let mut stream = control.open_stream(peer, protocol).await?;
    stream.write_all(&body).await?;
    stream.flush().await?;
    if !want_reply {
        stream.close().await?;
        return Ok(Vec::new());
    }
    let body = read_length_prefixed(&mut stream, mix_core::MAX_REPLY_LEN).await?;
    let _ = stream.close().await;
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let mut response = unsigned_varint::encode::usize(body.len(), &mut prefix).to_vec();
    response.extend_from_slice(&body);
    Ok(response)
}

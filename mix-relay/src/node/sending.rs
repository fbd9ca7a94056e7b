//! The relay's sender driver: it hands the one sans-IO [`mix_libp2p::Sender`] the requests of
//! [`super::RelayHandle::send`], the replies the processor peeled, the mix behaviour's send
//! failures and the time, and maps what comes out: frames to the `/mix/1.0.0` behaviour,
//! outcomes to the callers' channels, pool changes to logs and metrics.

use mix_core::{PAYLOAD_LEN, SurbId};
use mix_libp2p::{ClientError, Destination, Instant, Received, SendOptions, SenderEvent};
use tokio::sync::oneshot;

use super::Node;
use crate::metrics::DropReason;

/// Where a request's outcome goes.
pub(super) type Reply = oneshot::Sender<Result<Vec<u8>, ClientError>>;

impl Node {
    /// A request from [`super::RelayHandle::send`].
    pub(super) fn on_send(
        &mut self,
        destination: &Destination,
        codec: &str,
        body: &[u8],
        options: SendOptions,
        reply: Reply,
    ) {
        match self.sender.send(
            &mut self.rng,
            Instant::now(),
            destination,
            codec,
            body,
            options,
        ) {
            Ok(id) => {
                self.waiting.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
        self.drain_sender();
    }

    /// A reply the processor peeled for us.
    pub(super) fn on_reply(&mut self, surb_id: SurbId, payload: &mut [u8; PAYLOAD_LEN]) {
        match self.sender.handle_reply(surb_id, payload) {
            Received::Reply => self.metrics.reply_received(),
            Received::UnknownSurb => self.metrics.dropped(DropReason::UnknownSurb),
            Received::Unreadable => {
                self.metrics.dropped(DropReason::ReplyUnreadable);
                self.mismatch.reply_unreadable(self.processor.format());
            }
            // handle_reply only answers the three above; a new outcome is not a reply.
            _ => self.metrics.dropped(DropReason::UnknownSurb),
        }
        self.drain_sender();
    }

    /// The time passed: timeouts and the pool's upkeep.
    pub(super) fn on_sender_tick(&mut self) {
        let now = Instant::now();
        if self.sender.poll_timeout().is_none_or(|at| at <= now) {
            self.sender.handle_timeout(now);
            self.drain_sender();
        }
    }

    /// Moves what the sender has for us: frames to the behaviour, outcomes to their callers,
    /// pool changes to logs and metrics.
    pub(super) fn drain_sender(&mut self) {
        while let Some(out) = self.sender.poll_transmit() {
            self.swarm
                .behaviour_mut()
                .mix
                .send_after(out.peer, out.addresses, out.frame, out.hold);
        }
        while let Some(event) = self.sender.poll_event() {
            match event {
                SenderEvent::Replied { request, body, .. } => {
                    if let Some(tx) = self.waiting.remove(&request) {
                        let _ = tx.send(Ok(body));
                    }
                }
                SenderEvent::Sent { request } => {
                    if let Some(tx) = self.waiting.remove(&request) {
                        let _ = tx.send(Ok(Vec::new()));
                    }
                }
                SenderEvent::Failed { request, error } => {
                    if let Some(tx) = self.waiting.remove(&request) {
                        let _ = tx.send(Err(error));
                    }
                }
                SenderEvent::PoolChanged {
                    added,
                    removed,
                    size,
                    ..
                } => {
                    for (peer, why) in removed {
                        tracing::info!(%peer, ?why, "mix node left the pool");
                        self.metrics.discovery_event("node_removed");
                    }
                    if !added.is_empty() {
                        tracing::info!(new = added.len(), pool = size, "mix nodes joined the pool");
                    }
                    self.metrics.set_pool_size(size);
                }
                _ => {}
            }
        }
    }
}

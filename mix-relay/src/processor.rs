//! What a relay does with one received packet (MIX.md §5.5), without any I/O: peel it with the
//! node's mix key, check the replay filter, sample the delay, and say what to do next. The
//! node (`node.rs`) carries the decision out; the golden vectors test this exact code.

use std::time::Duration;

use mix_core::{
    Action, Address, DelayStrategy, ExitMessage, Format, NodeSecretKey, PACKET_LEN, PAYLOAD_LEN,
    ReplayFilter, Surb, SurbId,
};
use rand_core::CryptoRng;

use crate::metrics::DropReason;

/// What to do with a packet.
#[derive(Debug)]
pub enum Decision {
    /// Intermediate: send `packet` to `next_hop` after `delay`.
    Forward {
        /// The next hop.
        next_hop: Address,
        /// The sampled delay.
        delay: Duration,
        /// The packet to send (peeled in place).
        packet: Box<[u8; PACKET_LEN]>,
    },
    /// Exit == destination: run the request through this node's handler for `codec`.
    ExitLocal {
        /// The origin protocol.
        codec: String,
        /// The SURBs to reply through.
        surbs: Vec<Surb>,
        /// The request bytes.
        body: Vec<u8>,
    },
    /// Forward-mode exit: dial `destination` with `codec`, write `body`, relay the response.
    ExitForward {
        /// Where the request goes.
        destination: Address,
        /// The origin protocol.
        codec: String,
        /// The SURBs to reply through.
        surbs: Vec<Surb>,
        /// The request bytes.
        body: Vec<u8>,
    },
    /// A reply to one of this node's own requests: open it with the SURB keys for `surb_id`.
    Reply {
        /// The SURB it came back on.
        surb_id: SurbId,
        /// δ after this node's layer.
        payload: Box<[u8; PAYLOAD_LEN]>,
    },
    /// Drop it, silently (the reason is for metrics only).
    Drop(DropReason),
}

/// The per-packet state of a relay: its mix key, replay filter and delay strategy.
pub struct Processor<F> {
    secret: NodeSecretKey,
    replay: F,
    delay: DelayStrategy,
    format: Format,
}

impl<F> std::fmt::Debug for Processor<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("delay", &self.delay)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl<F: ReplayFilter> Processor<F> {
    /// A processor for the node holding `secret`, peeling the default wire format
    /// ([`Format::Lip183`]; see [`Processor::with_format`]).
    pub fn new(secret: NodeSecretKey, replay: F, delay: DelayStrategy) -> Self {
        Self {
            secret,
            replay,
            delay,
            format: Format::default(),
        }
    }

    /// The same processor peeling `format` (the deployment's wire format, MIX-LIONESS.md §10).
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The wire format it peels.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The replay filter (to flush or measure it).
    pub fn replay_filter(&mut self) -> &mut F {
        &mut self.replay
    }

    /// Processes one packet received at `now_ms` (wall clock, for the replay filter's expiry).
    pub fn process<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now_ms: u64,
        mut packet: Box<[u8; PACKET_LEN]>,
    ) -> Decision {
        let action = match mix_core::peel_with(
            self.format,
            &self.secret,
            &mut self.replay,
            now_ms,
            packet.as_mut_slice(),
        ) {
            Ok(action) => action,
            Err(e) => return Decision::Drop(e.into()),
        };
        let (next_hop, delay) = match action {
            Action::Forward {
                next_hop, delay, ..
            } => (next_hop, delay),
            Action::Exit {
                destination,
                message,
            } => {
                let ExitMessage::Request { codec, surbs, body } = message else {
                    return Decision::Drop(DropReason::Cover);
                };
                let (codec, surbs, body) =
                    (codec.to_owned(), surbs.iter().collect(), body.to_vec());
                return match destination {
                    None => Decision::ExitLocal { codec, surbs, body },
                    Some(destination) => Decision::ExitForward {
                        destination,
                        codec,
                        surbs,
                        body,
                    },
                };
            }
            Action::Reply { surb_id, payload } => {
                return Decision::Reply {
                    surb_id,
                    payload: Box::new(*payload),
                };
            }
        };
        let delay = self.delay.for_hop(delay, rng).to_duration();
        Decision::Forward {
            next_hop,
            delay,
            packet,
        }
    }
}

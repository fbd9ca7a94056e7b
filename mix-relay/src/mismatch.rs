//! Loud failure for a wire-format mismatch (MIX-LIONESS.md): the two formats cannot be told
//! apart on the wire, so a relay and a sender of different formats only see their packets fail
//! the payload integrity check at the exit, or their replies fail to open. Each such drop is
//! counted (`payload_integrity`, `reply_unreadable`); this logs a warning naming the likely
//! cause at the first one and then at most once a minute, with the count since the last.

use std::time::Duration;

use mix_core::Format;
use mix_libp2p::Instant;

/// How often the warning may repeat.
const EVERY: Duration = Duration::from_secs(60);

/// The warnings' state.
#[derive(Debug, Default)]
pub(crate) struct MismatchWarnings {
    exits: Counter,
    replies: Counter,
}

#[derive(Debug, Default)]
struct Counter {
    since_warned: u64,
    warned_at: Option<Instant>,
}

impl Counter {
    /// Counts one; the count to report if a warning is due now.
    fn count(&mut self, now: Instant) -> Option<u64> {
        self.since_warned = self.since_warned.saturating_add(1);
        let due = self
            .warned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= EVERY);
        if !due {
            return None;
        }
        self.warned_at = Some(now);
        Some(std::mem::take(&mut self.since_warned))
    }
}

impl MismatchWarnings {
    /// As the exit, a packet failed the payload integrity check.
    pub(crate) fn payload_integrity(&mut self, format: Format) {
        if let Some(count) = self.exits.count(Instant::now()) {
            tracing::warn!(
                count,
                %format,
                "packets failed the exit's payload integrity check: tampered, or built by senders of the other wire format than this relay's (--mix-format); `mix-relay probe-format` tells which format a set of nodes speaks"
            );
        }
    }

    /// A reply to one of our own requests did not open.
    pub(crate) fn reply_unreadable(&mut self, format: Format) {
        if let Some(count) = self.replies.count(Instant::now()) {
            tracing::warn!(
                count,
                %format,
                "replies to our requests did not open: tampered, or the nodes on their paths speak the other wire format than ours (--mix-format); `mix-relay probe-format` tells which format a set of nodes speaks"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_drop_warns_then_at_most_once_a_minute_with_the_count_since() {
        let mut c = Counter::default();
        let t0 = Instant::now();
        assert_eq!(c.count(t0), Some(1));
        assert_eq!(c.count(t0 + Duration::from_secs(1)), None);
        assert_eq!(c.count(t0 + Duration::from_secs(59)), None);
        assert_eq!(c.count(t0 + Duration::from_secs(60)), Some(3));
        assert_eq!(c.count(t0 + Duration::from_secs(61)), None);
    }
}

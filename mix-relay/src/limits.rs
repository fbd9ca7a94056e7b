//! Abuse limits on the work a packet can make a relay do: the dials it causes (next hops,
//! SURB first hops, forward-mode destinations), the delay it asks for, and what a forward-mode
//! exit may reach. Sans-IO: time is an argument. The node (`node.rs`) consults these before it
//! acts; every refusal is silent on the wire and counted in the metrics only.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use libp2p::PeerId;
use libp2p::multiaddr::{Multiaddr, Protocol};
use mix_libp2p::Instant;

use crate::waku::LIGHTPUSH_PROTOCOL;

/// The limits, with their defaults in [`Limits::default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Dial (and forward to) loopback, private, link-local, shared and other non-global IPv4
    /// addresses. Off for a public relay; on for local testnets ([`crate::node::Settings::local`]).
    pub allow_private_addresses: bool,
    /// Outbound dials caused by packets (next hops, SURB first hops) in progress at once, at
    /// most; a packet that needs one more is dropped (`dial_refused`).
    pub max_pending_dials: usize,
    /// After a packet-caused dial fails, packets for the same address (IP and port) or peer are
    /// dropped this long without dialing again.
    pub dial_failure_memory: Duration,
    /// The longest mixing delay honoured; longer encoded delays are cut to it.
    pub max_delay: Duration,
    /// Packets waiting out their delay, at most (about 4.7 KB each).
    pub max_delayed: usize,
    /// The share of [`Self::max_delayed`] one previous hop may hold, as a divisor: a hop
    /// holds at most `max_delayed / delay_share_divisor` packets.
    pub delay_share_divisor: usize,
    /// The codecs a forward-mode exit (destination ≠ exit) serves; other requests are dropped.
    pub forward_codecs: Vec<String>,
    /// Forward-mode exchanges in flight at once, at most (its own budget, apart from the
    /// direct lightpush streams).
    pub max_forward_in_flight: usize,
    /// Direct `/vac/waku/lightpush/3.0.0` streams served at once, at most.
    pub max_lightpush_in_flight: usize,
    /// Lightpush publishes per second, all senders together (burst twice that); beyond it
    /// requests are answered 429. 0: no limit.
    pub max_publish_rate: u32,
}

impl Default for Limits {
    /// Non-global addresses refused, 256 pending dials, 60 s of failure memory, delays cut to
    /// 2 s, 32,768 delayed packets (about 150 MB) with an eighth per previous hop, forward mode
    /// for lightpush only with 128 exchanges in flight, 256 direct lightpush streams, 100
    /// publishes a second (burst 200).
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            max_pending_dials: 256,
            dial_failure_memory: Duration::from_secs(60),
            max_delay: Duration::from_secs(2),
            max_delayed: 32_768,
            delay_share_divisor: 8,
            forward_codecs: vec![LIGHTPUSH_PROTOCOL.to_owned()],
            max_forward_in_flight: 128,
            max_lightpush_in_flight: 256,
            max_publish_rate: 100,
        }
    }
}

impl Limits {
    /// Whether a packet may make us dial `addr`: its first IPv4 address is global unicast, or
    /// non-global addresses are allowed. An address with no IPv4 (DNS, IPv6) is refused: a
    /// mix packet carries only IPv4 (MIX.md §5.2), so none should reach here.
    pub fn dialable(&self, addr: &Multiaddr) -> bool {
        match addr.iter().next() {
            Some(Protocol::Ip4(ip)) => self.allow_private_addresses || is_global(ip),
            _ => false,
        }
    }

    /// Whether a forward-mode exit serves `codec`.
    pub fn forwards(&self, codec: &str) -> bool {
        self.forward_codecs.iter().any(|c| c == codec)
    }

    /// The most delayed packets one previous hop may hold.
    pub fn delay_share(&self) -> usize {
        (self.max_delayed / self.delay_share_divisor.max(1)).max(1)
    }
}

/// Whether `ip` is a global unicast IPv4 address: none of 0/8 (0.0.0.0 reaches localhost on
/// Linux), 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
/// 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 (multicast), 240/4 and
/// 255.255.255.255 (`Ipv4Addr::is_global` is not stable yet).
pub fn is_global(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || (a == 100 && (64..128).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// The IPv4 address and TCP/UDP port a multiaddr starts with, the key of the failure memory.
/// None for a circuit address: its endpoint is the circuit relay's, shared by every peer behind
/// it (a browser's gateway), so one gone browser must not cut the others off; such dials are
/// remembered by peer only.
fn endpoint(addr: &Multiaddr) -> Option<(Ipv4Addr, u16)> {
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => ip,
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) | Protocol::Udp(port) => Some((ip, port)),
        _ => None,
    }
}

/// Why [`Dials::admit`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialRefusal {
    /// The address is not global (and they are not allowed).
    Address,
    /// [`Limits::max_pending_dials`] dials are in progress.
    Busy,
    /// A dial to this address or peer failed recently.
    RecentlyFailed,
}

/// The most remembered failures; beyond it the oldest are forgotten first.
const MAX_REMEMBERED_FAILURES: usize = 16_384;

/// Bookkeeping of packet-caused dials: the ones in progress and the recent failures.
#[derive(Debug, Default)]
pub struct Dials {
    /// Peers being dialed, with when and where.
    pending: HashMap<PeerId, (Instant, Option<(Ipv4Addr, u16)>)>,
    /// Peers and endpoints whose dial failed, with when.
    failed_peers: HashMap<PeerId, Instant>,
    failed_endpoints: HashMap<(Ipv4Addr, u16), Instant>,
}

impl Dials {
    /// Whether a packet may cause a dial of `peer` at `addr` now (the caller checked it is not
    /// connected); on `Ok` the dial counts as pending until [`Self::settled`] or
    /// [`Self::failed`].
    ///
    /// # Errors
    /// Why not.
    pub fn admit(
        &mut self,
        limits: &Limits,
        peer: PeerId,
        addr: &Multiaddr,
        now: Instant,
    ) -> Result<(), DialRefusal> {
        if !limits.dialable(addr) {
            return Err(DialRefusal::Address);
        }
        if self.pending.contains_key(&peer) {
            // Joins the dial in progress (the frame waits in the peer's queue).
            return Ok(());
        }
        let recent = |at: &Instant| now.saturating_duration_since(*at) < limits.dial_failure_memory;
        let key = endpoint(addr);
        if self.failed_peers.get(&peer).is_some_and(recent)
            || key
                .and_then(|k| self.failed_endpoints.get(&k))
                .is_some_and(recent)
        {
            return Err(DialRefusal::RecentlyFailed);
        }
        if self.pending.len() >= limits.max_pending_dials {
            return Err(DialRefusal::Busy);
        }
        self.pending.insert(peer, (now, key));
        Ok(())
    }

    /// A connection to `peer` is up (or it was connected all along).
    pub fn settled(&mut self, peer: &PeerId) {
        self.pending.remove(peer);
        self.failed_peers.remove(peer);
    }

    /// A dial to `peer` failed at `now`: remember it and its endpoint.
    pub fn failed(&mut self, peer: PeerId, now: Instant) {
        let key = self.pending.remove(&peer).and_then(|(_, k)| k);
        Self::remember(&mut self.failed_peers, peer, now);
        if let Some(key) = key {
            Self::remember(&mut self.failed_endpoints, key, now);
        }
    }

    /// A dial to `addr` (not tracked as pending, e.g. a forward-mode destination) failed.
    pub fn endpoint_failed(&mut self, addr: &Multiaddr, now: Instant) {
        if let Some(key) = endpoint(addr) {
            Self::remember(&mut self.failed_endpoints, key, now);
        }
    }

    /// Whether `addr` failed within the memory.
    pub fn recently_failed(&self, limits: &Limits, addr: &Multiaddr, now: Instant) -> bool {
        endpoint(addr)
            .and_then(|k| self.failed_endpoints.get(&k))
            .is_some_and(|at| now.saturating_duration_since(*at) < limits.dial_failure_memory)
    }

    fn remember<K: std::hash::Hash + Eq + Copy>(
        map: &mut HashMap<K, Instant>,
        key: K,
        now: Instant,
    ) {
        if map.len() >= MAX_REMEMBERED_FAILURES && !map.contains_key(&key) {
            // Forget the oldest (a rare O(n) pass, bounded by the cap).
            if let Some(oldest) = map.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(key, now);
    }

    /// Forgets failures older than the memory and pending dials older than `stale` (the
    /// swarm reports every dial's end; this only guards against a lost report).
    pub fn expire(&mut self, limits: &Limits, stale: Duration, now: Instant) {
        let memory = limits.dial_failure_memory;
        self.failed_peers
            .retain(|_, at| now.saturating_duration_since(*at) < memory);
        self.failed_endpoints
            .retain(|_, at| now.saturating_duration_since(*at) < memory);
        self.pending
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < stale);
    }

    /// Dials in progress.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Who holds how many places in the delay queue.
#[derive(Debug, Default)]
pub struct DelayShares {
    held: HashMap<PeerId, usize>,
}

impl DelayShares {
    /// Takes a place for `hop` if it holds fewer than `share`.
    pub fn take(&mut self, hop: PeerId, share: usize) -> bool {
        let n = self.held.entry(hop).or_insert(0);
        if *n >= share {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives `hop`'s place back (its packet left the queue).
    pub fn give_back(&mut self, hop: &PeerId) {
        if let Some(n) = self.held.get_mut(hop) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(hop);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_failed_circuit_dial_does_not_block_other_peers_behind_the_same_relay() {
        let limits = Limits {
            allow_private_addresses: true,
            ..Limits::default()
        };
        let mut dials = Dials::default();
        let now = Instant::now();
        let gateway =
            "/ip4/127.0.0.1/tcp/4000/p2p/16Uiu2HAmSuEj8DbbXZqmkG8HfzQFGXgB6WGHYc3Vxs7CTjVCM5Lq";
        let gone = PeerId::random();
        let other = PeerId::random();
        let circuit = |peer: PeerId| addr(&format!("{gateway}/p2p-circuit/p2p/{peer}"));
        dials.admit(&limits, gone, &circuit(gone), now).unwrap();
        dials.failed(gone, now);
        assert_eq!(
            dials.admit(&limits, gone, &circuit(gone), now),
            Err(DialRefusal::RecentlyFailed)
        );
        assert!(dials.admit(&limits, other, &circuit(other), now).is_ok());
        assert!(!dials.recently_failed(&limits, &circuit(other), now));
    }

    #[test]
    fn only_global_unicast_is_global() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "192.1.0.1",
        ] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn dials_are_capped_refused_for_private_addresses_and_remembered_when_failed() {
        let limits = Limits {
            max_pending_dials: 2,
            ..Limits::default()
        };
        let mut dials = Dials::default();
        let now = Instant::now();
        let public = addr("/ip4/8.8.8.8/tcp/1");
        assert_eq!(
            dials.admit(
                &limits,
                PeerId::random(),
                &addr("/ip4/127.0.0.1/tcp/1"),
                now
            ),
            Err(DialRefusal::Address)
        );
        let (p1, p2) = (PeerId::random(), PeerId::random());
        assert_eq!(dials.admit(&limits, p1, &public, now), Ok(()));
        assert_eq!(dials.admit(&limits, p1, &public, now), Ok(()));
        assert_eq!(
            dials.admit(&limits, p2, &addr("/ip4/8.8.4.4/tcp/1"), now),
            Ok(())
        );
        assert_eq!(
            dials.admit(&limits, PeerId::random(), &addr("/ip4/1.1.1.1/tcp/1"), now),
            Err(DialRefusal::Busy)
        );
        dials.failed(p1, now);
        assert_eq!(dials.pending(), 1);
        // Another fresh peer id at the failed endpoint: refused without a dial.
        assert_eq!(
            dials.admit(&limits, PeerId::random(), &public, now),
            Err(DialRefusal::RecentlyFailed)
        );
        let later = now + limits.dial_failure_memory;
        dials.expire(&limits, Duration::from_secs(3600), later);
        assert_eq!(
            dials.admit(&limits, PeerId::random(), &public, later),
            Ok(())
        );
        let local = Limits {
            allow_private_addresses: true,
            ..limits
        };
        assert!(local.dialable(&addr("/ip4/127.0.0.1/tcp/1")));
    }

    #[test]
    fn a_hop_holds_at_most_its_share_of_the_delay_queue() {
        let mut shares = DelayShares::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!((0..3).all(|_| shares.take(a, 3)));
        assert!(!shares.take(a, 3));
        assert!(shares.take(b, 3));
        shares.give_back(&a);
        assert!(shares.take(a, 3));
    }
}

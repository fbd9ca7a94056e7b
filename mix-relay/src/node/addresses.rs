//! The addresses a relay advertises: listen addresses as others dial them, and the WebTransport
//! ones, replaced as the certificates rotate.

use std::net::Ipv4Addr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mix_libp2p::Instant;

use super::{Node, Settings};

/// The IPv4 address of the first of `addrs` that has one.
pub(super) fn first_ipv4(addrs: &[Multiaddr]) -> Option<Ipv4Addr> {
    addrs.iter().find_map(|a| match a.iter().next() {
        Some(Protocol::Ip4(ip)) => Some(ip),
        _ => None,
    })
}

/// `addr` as others dial it: an unspecified IP (a 0.0.0.0 listener) replaced by `public`.
fn public_address(addr: &Multiaddr, public: Option<Ipv4Addr>) -> Multiaddr {
    addr.iter()
        .map(|p| match (p, public) {
            (Protocol::Ip4(ip), Some(public)) if ip.is_unspecified() => Protocol::Ip4(public),
            (p, _) => p,
        })
        .collect()
}

pub(super) fn with_p2p(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.clone()
    } else {
        addr.clone().with(Protocol::P2p(peer))
    }
}

pub(super) fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// The addresses to advertise: [`Settings::announce`] and the WebTransport listen addresses
/// (their certhashes are known only once they listen), the circuit address alone for a node
/// reachable only through a relay, or else every listen address.
pub(super) fn announced(
    settings: &Settings,
    listen: &[Multiaddr],
    peer_id: PeerId,
    public_ip: Option<Ipv4Addr>,
) -> Vec<Multiaddr> {
    if settings.announce.is_empty() && settings.relay_via.is_some() {
        // Reachable only through the relay: advertise the circuit address alone.
        listen
            .iter()
            .filter(|a| mix_libp2p::is_circuit(a))
            .cloned()
            .collect()
    } else if settings.announce.is_empty() {
        listen.to_vec()
    } else {
        // Announced addresses, plus the WebTransport ones: their certhashes are known only now.
        settings
            .announce
            .iter()
            .map(|a| with_p2p(a, peer_id))
            .chain(
                listen
                    .iter()
                    .filter(|a| mix_webtransport::is_webtransport(a))
                    .map(|a| public_address(a, public_ip)),
            )
            .collect()
    }
}

impl Node {
    /// A WebTransport listen address came (`added`) or went: its certificates rotated.
    /// Identify follows the listen addresses by itself; the external address, the rendezvous
    /// record and [`super::RelayHandle::current_addrs`] follow here, and the record is registered
    /// again at once.
    pub(super) fn on_webtransport_address(&mut self, address: &Multiaddr, added: bool) {
        let public = public_address(address, self.public_ip);
        let full = with_p2p(&public, self.peer_id);
        if added {
            tracing::info!(address = %full, "WebTransport address");
            self.swarm.add_external_address(full.clone());
            self.discovery.record_addrs.push(public);
            // Replaces the address of the same listener in one step, so that a reader never
            // sees the relay without one.
            let listener = mix_webtransport::without_certhashes(&full);
            self.addrs.send_modify(|a| {
                a.retain(|x| mix_webtransport::without_certhashes(x) != listener);
                a.push(full);
            });
            self.discovery.schedule.hurry(Instant::now());
        } else {
            self.swarm.remove_external_address(&full);
            self.discovery.record_addrs.retain(|a| *a != public);
        }
    }
}

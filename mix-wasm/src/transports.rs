//! Which of a relay's addresses a browser dials first.
//!
//! A relay may offer WebTransport (`/ip4/…/udp/…/quic-v1/webtransport/certhash/…/p2p/…`),
//! WebSocket (`/ip4/…/tcp/…/ws/p2p/…`) and plain TCP (`/ip4/…/tcp/…/p2p/…`, the address
//! packets carry, which a browser cannot dial). The client's swarm dials one address at a
//! time (dial concurrency 1) in the order it is given them, so every address list it hands
//! the swarm is sorted here: WebTransport first, then WebSocket, then the rest. WebTransport
//! counts only with a `/certhash/`: relays serve it with a self-signed certificate that the
//! browser accepts only through the hashes.

use mix_libp2p::{Multiaddr, PeerId};
use multiaddr::Protocol;

/// How a browser reaches an address, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reach {
    /// WebTransport with the certificate hashes: `/quic-v1/webtransport/certhash/…`.
    WebTransport,
    /// WebSocket: `/ws`, `/wss` or `/tls/ws`.
    WebSocket,
    /// Anything else: TCP and QUIC (which packets carry but a browser cannot dial), circuit
    /// addresses, WebTransport without a certificate hash.
    Other,
}

/// How a browser reaches `addr`.
pub(crate) fn reach(addr: &Multiaddr) -> Reach {
    let (mut webtransport, mut certhash, mut websocket) = (false, false, false);
    for protocol in addr.iter() {
        match protocol {
            // Through another relay: not the relay's own transport.
            Protocol::P2pCircuit => return Reach::Other,
            Protocol::WebTransport => webtransport = true,
            Protocol::Certhash(_) => certhash = true,
            Protocol::Ws(_) | Protocol::Wss(_) => websocket = true,
            _ => {}
        }
    }
    if webtransport && certhash {
        Reach::WebTransport
    } else if websocket {
        Reach::WebSocket
    } else {
        Reach::Other
    }
}

/// Sorts `addrs` into the order a browser dials them: WebTransport, WebSocket, the rest. The
/// sort is stable, so the packet address (the first TCP or QUIC one) does not change.
pub(crate) fn sort_for_dialing(addrs: &mut [Multiaddr]) {
    addrs.sort_by_key(reach);
}

/// The gateways to try, in the order of their first bootstrap entry, each with its addresses
/// (the entries naming it, without repeats) sorted for dialing.
pub(crate) fn gateway_order(
    bootstrap: impl IntoIterator<Item = (PeerId, Multiaddr)>,
) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut gateways: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
    for (peer, addr) in bootstrap {
        match gateways.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, addrs)) if addrs.contains(&addr) => {}
            Some((_, addrs)) => addrs.push(addr),
            None => gateways.push((peer, vec![addr])),
        }
    }
    for (_, addrs) in &mut gateways {
        sort_for_dialing(addrs);
    }
    gateways
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF";
    const B: &str = "16Uiu2HAkvZBc3ZfShLG4BAmHv1eVkTpSbMCuvmMVeUDhZ5bFJ5Qj";
    const HASH: &str = "uEiCaDd1Ca1A8IVJ3hsIxIyi11cwxaDKqzVrBkGJbKZU5ng";

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    fn tcp(peer: &str) -> Multiaddr {
        addr(&format!("/ip4/127.0.0.1/tcp/4000/p2p/{peer}"))
    }

    fn ws(peer: &str) -> Multiaddr {
        addr(&format!("/ip4/127.0.0.1/tcp/4001/ws/p2p/{peer}"))
    }

    fn webtransport(peer: &str) -> Multiaddr {
        addr(&format!(
            "/ip4/127.0.0.1/udp/4002/quic-v1/webtransport/certhash/{HASH}/certhash/{HASH}/p2p/{peer}"
        ))
    }

    fn peer(text: &str) -> PeerId {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_are_classified_by_how_a_browser_reaches_them() {
        assert_eq!(reach(&webtransport(A)), Reach::WebTransport);
        // Without /p2p, as rendezvous records carry them.
        assert_eq!(
            reach(&addr(&format!(
                "/ip4/10.0.0.1/udp/1/quic-v1/webtransport/certhash/{HASH}"
            ))),
            Reach::WebTransport
        );
        assert_eq!(reach(&ws(A)), Reach::WebSocket);
        assert_eq!(
            reach(&addr("/dns4/relay.example/tcp/443/wss")),
            Reach::WebSocket
        );
        assert_eq!(
            reach(&addr("/dns4/relay.example/tcp/443/tls/ws")),
            Reach::WebSocket
        );
        assert_eq!(reach(&tcp(A)), Reach::Other);
        assert_eq!(reach(&addr("/ip4/10.0.0.1/udp/1/quic-v1")), Reach::Other);
        // A browser cannot check a certificate it has no hash for.
        assert_eq!(
            reach(&addr("/ip4/10.0.0.1/udp/1/quic-v1/webtransport")),
            Reach::Other
        );
        assert_eq!(
            reach(&addr(&format!(
                "/ip4/127.0.0.1/tcp/4001/ws/p2p/{B}/p2p-circuit/p2p/{A}"
            ))),
            Reach::Other
        );
    }

    #[test]
    fn webtransport_comes_first_then_websocket_then_the_rest_in_their_order() {
        let quic = addr(&format!("/ip4/127.0.0.1/udp/4003/quic-v1/p2p/{A}"));
        let mut addrs = vec![
            tcp(A),
            ws(A),
            quic.clone(),
            webtransport(A),
            addr(&format!("/ip4/10.0.0.1/tcp/4001/ws/p2p/{A}")),
        ];
        sort_for_dialing(&mut addrs);
        assert_eq!(
            addrs,
            [
                webtransport(A),
                ws(A),
                addr(&format!("/ip4/10.0.0.1/tcp/4001/ws/p2p/{A}")),
                tcp(A),
                quic,
            ]
        );
    }

    #[test]
    fn gateways_keep_their_first_order_and_try_webtransport_before_websocket() {
        let gateways = gateway_order([
            (peer(A), ws(A)),
            (peer(B), ws(B)),
            (peer(A), webtransport(A)),
            (peer(A), ws(A)),
            (peer(B), tcp(B)),
        ]);
        assert_eq!(
            gateways,
            [
                (peer(A), vec![webtransport(A), ws(A)]),
                (peer(B), vec![ws(B), tcp(B)]),
            ]
        );
    }
}

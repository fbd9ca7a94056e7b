//! Conversion between mix-core's 94-byte [`Address`] and libp2p [`Multiaddr`]
//! (MIX.md §4.2). Exactly three shapes can be encoded:
//!
//! - `/ip4/<ip>/tcp/<port>/p2p/<peer>`
//! - `/ip4/<ip>/udp/<port>/quic-v1/p2p/<peer>`
//! - `/ip4/<ip>/tcp/<port>/p2p/<relay>/p2p-circuit/p2p/<peer>` (and the QUIC form)
//!
//! with secp256k1 peer ids. Anything else (IPv6, DNS, WebSocket, Ed25519 ids) is refused with
//! an [`AddressError`] naming what did not fit.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mix_core::{Address, PeerIdBytes, Transport};

/// Why a multiaddr or peer id cannot be written into a mix address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not `/ip4/…` first.
    #[error("a mix address must start with /ip4 (IPv6 and DNS names cannot be encoded)")]
    NotIpv4,
    /// Neither `/tcp/<port>` nor `/udp/<port>/quic-v1` after the IP.
    #[error("a mix address needs /tcp/<port> or /udp/<port>/quic-v1 after the IP")]
    Transport,
    /// The peer id is not a secp256k1 identity.
    #[error("peer {0} is not a secp256k1 identity (mix addresses carry only those)")]
    NotSecp256k1(String),
    /// No `/p2p/<peer>` and no peer id given.
    #[error("the multiaddr has no /p2p/<peer id>")]
    MissingPeerId,
    /// The `/p2p` in the multiaddr names another peer than the one expected.
    #[error("the multiaddr's /p2p names another peer than expected")]
    PeerMismatch,
    /// A component the format cannot carry (e.g. `/ws`, `/webtransport`, `/certhash`).
    #[error("the multiaddr component {0} cannot be encoded in a mix address")]
    Unsupported(String),
}

/// The libp2p peer id of a mix address's binary peer id.
///
/// # Errors
/// Never for a [`PeerIdBytes`] decoded by mix-core (its shape is checked); kept fallible
/// because libp2p parses the multihash again.
pub fn peer_id(bytes: &PeerIdBytes) -> Result<PeerId, AddressError> {
    PeerId::from_bytes(bytes.as_bytes()).map_err(|_| AddressError::MissingPeerId)
}

/// The binary form of a secp256k1 peer id.
///
/// # Errors
/// [`AddressError::NotSecp256k1`] for any other kind of peer id.
pub fn peer_id_bytes(peer: &PeerId) -> Result<PeerIdBytes, AddressError> {
    PeerIdBytes::from_bytes(&peer.to_bytes())
        .map_err(|_| AddressError::NotSecp256k1(peer.to_string()))
}

/// The multiaddr an [`Address`] names, ending in `/p2p/<peer>`.
pub fn to_multiaddr(address: &Address) -> Multiaddr {
    let mut addr = Multiaddr::empty().with(Protocol::Ip4(address.ip));
    addr = match address.transport {
        Transport::Tcp => addr.with(Protocol::Tcp(address.port)),
        Transport::QuicV1 => addr
            .with(Protocol::Udp(address.port))
            .with(Protocol::QuicV1),
    };
    let node = peer_id(&address.peer_id);
    if let Some(Ok(relay)) = address.relay.as_ref().map(peer_id) {
        addr = addr.with(Protocol::P2p(relay)).with(Protocol::P2pCircuit);
    }
    match node {
        Ok(node) => addr.with(Protocol::P2p(node)),
        Err(_) => addr,
    }
}

/// The mix address of `multiaddr`. `peer` is the node's peer id when the multiaddr does not end
/// in `/p2p/<peer>` (as listen addresses do); when both are present they must agree.
///
/// # Errors
/// An [`AddressError`] naming the first thing that cannot be encoded.
pub fn from_multiaddr(
    multiaddr: &Multiaddr,
    peer: Option<PeerId>,
) -> Result<Address, AddressError> {
    let mut it = multiaddr.iter().peekable();
    let ip = match it.next() {
        Some(Protocol::Ip4(ip)) => ip,
        _ => return Err(AddressError::NotIpv4),
    };
    let (transport, port) = match it.next() {
        Some(Protocol::Tcp(port)) => (Transport::Tcp, port),
        Some(Protocol::Udp(port)) => match it.next() {
            Some(Protocol::QuicV1) => (Transport::QuicV1, port),
            _ => return Err(AddressError::Transport),
        },
        _ => return Err(AddressError::Transport),
    };
    let mut relay = None;
    let mut node = None;
    while let Some(component) = it.next() {
        match component {
            Protocol::P2p(id)
                if matches!(it.peek(), Some(Protocol::P2pCircuit))
                    && relay.is_none()
                    && node.is_none() =>
            {
                it.next();
                relay = Some(id);
            }
            Protocol::P2p(id) if node.is_none() && it.peek().is_none() => node = Some(id),
            other => return Err(AddressError::Unsupported(other.to_string())),
        }
    }
    let node = match (node, peer) {
        (Some(found), Some(expected)) if found != expected => {
            return Err(AddressError::PeerMismatch);
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Err(AddressError::MissingPeerId),
    };
    Ok(Address {
        ip,
        transport,
        port,
        peer_id: peer_id_bytes(&node)?,
        relay: relay.map(|r| peer_id_bytes(&r)).transpose()?,
    })
}

/// Whether `multiaddr` is a circuit-relay address (`…/p2p-circuit/…`).
pub fn is_circuit(multiaddr: &Multiaddr) -> bool {
    multiaddr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;

    use super::*;

    fn secp() -> PeerId {
        Keypair::generate_secp256k1().public().to_peer_id()
    }

    #[test]
    fn tcp_quic_and_circuit_forms_round_trip_through_94_bytes() {
        let (node, relay) = (secp(), secp());
        for text in [
            format!("/ip4/127.0.0.1/tcp/4001/p2p/{node}"),
            format!("/ip4/10.1.2.3/udp/65535/quic-v1/p2p/{node}"),
            format!("/ip4/192.168.0.1/tcp/9000/p2p/{relay}/p2p-circuit/p2p/{node}"),
        ] {
            let ma: Multiaddr = text.parse().unwrap();
            let address = from_multiaddr(&ma, None).unwrap();
            let decoded = Address::from_bytes(&address.to_bytes()).unwrap();
            assert_eq!(to_multiaddr(&decoded), ma, "{text}");
        }
    }

    #[test]
    fn a_listen_address_takes_the_peer_id_given() {
        let node = secp();
        let ma: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let address = from_multiaddr(&ma, Some(node)).unwrap();
        assert_eq!(peer_id(&address.peer_id).unwrap(), node);
        assert_eq!(from_multiaddr(&ma, None), Err(AddressError::MissingPeerId));
        let other = secp();
        let full = ma.with(Protocol::P2p(other));
        assert!(matches!(
            from_multiaddr(&full, Some(node)),
            Err(AddressError::PeerMismatch)
        ));
    }

    #[test]
    fn what_cannot_be_encoded_is_refused() {
        let node = secp();
        let ed = Keypair::generate_ed25519().public().to_peer_id();
        type Check = fn(&AddressError) -> bool;
        let cases: [(String, Check); 6] = [
            (format!("/ip6/::1/tcp/1/p2p/{node}"), |e| {
                *e == AddressError::NotIpv4
            }),
            (format!("/dns4/example.org/tcp/1/p2p/{node}"), |e| {
                *e == AddressError::NotIpv4
            }),
            (format!("/ip4/127.0.0.1/udp/1/p2p/{node}"), |e| {
                *e == AddressError::Transport
            }),
            (format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{node}"), |e| {
                matches!(e, AddressError::Unsupported(_))
            }),
            (format!("/ip4/127.0.0.1/tcp/1/p2p/{ed}"), |e| {
                matches!(e, AddressError::NotSecp256k1(_))
            }),
            (format!("/ip4/127.0.0.1/tcp/1/p2p/{node}/p2p/{node}"), |e| {
                matches!(e, AddressError::Unsupported(_))
            }),
        ];
        for (text, expected) in cases {
            let err = from_multiaddr(&text.parse().unwrap(), None).unwrap_err();
            assert!(expected(&err), "{text}: {err:?}");
        }
    }
}

//! WebTransport multiaddrs: `/ip4|ip6/<ip>/udp/<port>/quic-v1/webtransport[/certhash/<mh>…][/p2p/<id>]`.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use libp2p::PeerId;
use libp2p::multiaddr::{Multiaddr, Protocol};
use libp2p::multihash::Multihash;

/// The multihash code of SHA2-256, the only certhash a browser accepts.
pub const SHA2_256: u64 = 0x12;

/// A parsed WebTransport multiaddr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebTransportAddr {
    pub(crate) socket: SocketAddr,
    pub(crate) certhashes: Vec<Multihash<64>>,
    pub(crate) peer: Option<PeerId>,
}

impl WebTransportAddr {
    /// Parses `addr`; `None` if it is not a WebTransport address this transport handles (DNS
    /// names are left to other transports: a self-signed certificate is pinned to an IP).
    pub(crate) fn parse(addr: &Multiaddr) -> Option<Self> {
        let mut it = addr.iter();
        let ip: IpAddr = match it.next()? {
            Protocol::Ip4(ip) => ip.into(),
            Protocol::Ip6(ip) => ip.into(),
            _ => return None,
        };
        let Protocol::Udp(port) = it.next()? else {
            return None;
        };
        if !matches!(it.next()?, Protocol::QuicV1) || !matches!(it.next()?, Protocol::WebTransport)
        {
            return None;
        }
        let mut certhashes = Vec::new();
        let mut peer = None;
        for p in it {
            match p {
                Protocol::Certhash(hash) if peer.is_none() => certhashes.push(hash),
                Protocol::P2p(id) if peer.is_none() => peer = Some(id),
                _ => return None,
            }
        }
        Some(Self {
            socket: SocketAddr::new(ip, port),
            certhashes,
            peer,
        })
    }

    /// The SHA-256 digests among the certhashes (others cannot be checked and are ignored by
    /// browsers too), deduplicated.
    pub(crate) fn sha256_digests(&self) -> Vec<[u8; 32]> {
        let mut seen = HashSet::new();
        self.certhashes
            .iter()
            .filter(|h| h.code() == SHA2_256)
            .filter_map(|h| <[u8; 32]>::try_from(h.digest()).ok())
            .filter(|d| seen.insert(*d))
            .collect()
    }
}

/// `/ip4|ip6/<ip>/udp/<port>/quic-v1/webtransport/certhash/<h>…`.
pub(crate) fn listen_multiaddr(socket: SocketAddr, certhashes: &[Multihash<64>]) -> Multiaddr {
    let mut addr = Multiaddr::empty()
        .with(match socket.ip() {
            IpAddr::V4(ip) => Protocol::Ip4(ip),
            IpAddr::V6(ip) => Protocol::Ip6(ip),
        })
        .with(Protocol::Udp(socket.port()))
        .with(Protocol::QuicV1)
        .with(Protocol::WebTransport);
    for hash in certhashes {
        addr.push(Protocol::Certhash(*hash));
    }
    addr
}

/// Whether `addr` is a WebTransport address (with or without certhashes).
pub fn is_webtransport(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::WebTransport))
}

/// `addr` without its `/certhash/…` components: what stays the same across rotations.
pub fn without_certhashes(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::Certhash(_)))
        .collect()
}

/// The multihash of a SHA-256 digest.
pub(crate) fn sha256_multihash(digest: &[u8; 32]) -> Multihash<64> {
    // A 32-byte digest always fits in 64 bytes.
    Multihash::wrap(SHA2_256, digest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().expect("test multiaddr")
    }

    #[test]
    fn parses_the_spec_example() {
        let addr = ma(
            "/ip4/127.0.0.1/udp/44874/quic-v1/webtransport/certhash/uEiCaDd1Ca1A8IVJ3hsIxIyi11cwxaDKqzVrBkGJbKZU5ng/certhash/uEiDv-VGW8oXxui_G_Kqp-87YjvET-Hr2qYAMYPePJDcsjQ/p2p/12D3KooWR7EfNv5SLtgjMRjUwR8AvNu3hP4fLrtSa9fmHHXKYWNG",
        );
        let parsed = WebTransportAddr::parse(&addr).expect("a WebTransport address");
        assert_eq!(parsed.socket, "127.0.0.1:44874".parse().expect("socket"));
        assert_eq!(parsed.certhashes.len(), 2);
        assert_eq!(parsed.sha256_digests().len(), 2);
        assert_eq!(
            parsed.peer.map(|p| p.to_string()).as_deref(),
            Some("12D3KooWR7EfNv5SLtgjMRjUwR8AvNu3hP4fLrtSa9fmHHXKYWNG")
        );
        assert!(is_webtransport(&addr));
        assert_eq!(
            without_certhashes(&addr).to_string(),
            "/ip4/127.0.0.1/udp/44874/quic-v1/webtransport/p2p/12D3KooWR7EfNv5SLtgjMRjUwR8AvNu3hP4fLrtSa9fmHHXKYWNG"
        );
    }

    #[test]
    fn refuses_other_addresses() {
        for s in [
            "/ip4/127.0.0.1/udp/1/quic-v1",
            "/ip4/127.0.0.1/tcp/1/ws",
            "/dns4/example.org/udp/1/quic-v1/webtransport",
            "/ip4/127.0.0.1/udp/1/quic-v1/webtransport/p2p-circuit",
            "/ip4/127.0.0.1/udp/1/quic-v1/webtransport/p2p/12D3KooWR7EfNv5SLtgjMRjUwR8AvNu3hP4fLrtSa9fmHHXKYWNG/certhash/uEiCaDd1Ca1A8IVJ3hsIxIyi11cwxaDKqzVrBkGJbKZU5ng",
        ] {
            assert!(WebTransportAddr::parse(&ma(s)).is_none(), "{s}");
        }
        assert!(!is_webtransport(&ma("/ip4/127.0.0.1/udp/1/quic-v1")));
    }

    #[test]
    fn listen_addresses_round_trip() {
        let hashes = [sha256_multihash(&[1; 32]), sha256_multihash(&[2; 32])];
        let socket: SocketAddr = "[::1]:4433".parse().expect("socket");
        let addr = listen_multiaddr(socket, &hashes);
        let parsed = WebTransportAddr::parse(&addr).expect("parses");
        assert_eq!(parsed.socket, socket);
        assert_eq!(parsed.sha256_digests(), vec![[1; 32], [2; 32]]);
        assert_eq!(parsed.peer, None);
    }

    #[test]
    fn only_sha256_digests_are_used() {
        let other = Multihash::<64>::wrap(0x13, &[7; 64]).expect("sha2-512 fits");
        let dup = sha256_multihash(&[3; 32]);
        let addr = listen_multiaddr("127.0.0.1:1".parse().expect("socket"), &[other, dup, dup]);
        let parsed = WebTransportAddr::parse(&addr).expect("parses");
        assert_eq!(parsed.sha256_digests(), vec![[3; 32]]);
    }
}

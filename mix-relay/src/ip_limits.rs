//! A per-IP cap on incoming connections (audit F12): peer ids cost nothing, so the per-peer
//! limit alone let one host take every incoming slot. Counts connections from their pending
//! (handshake) stage until they close; a connection beyond the cap is denied before its
//! handshake. The per-peer and total limits (`connection_limits`) still apply.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// The error an over-the-cap connection is denied with.
#[derive(Debug, Clone, Copy)]
pub struct PerIpExceeded {
    /// The cap.
    pub limit: usize,
}

impl fmt::Display for PerIpExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "more than {} connections from one IP address",
            self.limit
        )
    }
}

impl std::error::Error for PerIpExceeded {}

/// The IP address a multiaddr starts with (`None` for relayed or DNS addresses).
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// The behaviour: no protocol, only the cap.
#[derive(Debug)]
pub struct Behaviour {
    limit: usize,
    by_ip: HashMap<IpAddr, usize>,
    connections: HashMap<ConnectionId, IpAddr>,
}

impl Behaviour {
    /// At most `limit` incoming connections (pending or established) from one IP address.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            by_ip: HashMap::new(),
            connections: HashMap::new(),
        }
    }

    fn release(&mut self, id: ConnectionId) {
        if let Some(ip) = self.connections.remove(&id)
            && let Some(n) = self.by_ip.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let n = self.by_ip.entry(ip).or_insert(0);
        if *n >= self.limit {
            return Err(ConnectionDenied::new(PerIpExceeded { limit: self.limit }));
        }
        *n += 1;
        self.connections.insert(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(e) => self.release(e.connection_id),
            FromSwarm::ListenFailure(e) => self.release(e.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ip_holds_at_most_the_limit_and_gets_slots_back() {
        let mut b = Behaviour::new(2);
        let local: Multiaddr = "/ip4/0.0.0.0/tcp/1".parse().unwrap();
        let a: Multiaddr = "/ip4/1.2.3.4/tcp/5".parse().unwrap();
        let other: Multiaddr = "/ip4/1.2.3.5/tcp/5".parse().unwrap();
        let (c1, c2, c3) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        assert!(b.handle_pending_inbound_connection(c1, &local, &a).is_ok());
        assert!(b.handle_pending_inbound_connection(c2, &local, &a).is_ok());
        assert!(b.handle_pending_inbound_connection(c3, &local, &a).is_err());
        assert!(
            b.handle_pending_inbound_connection(ConnectionId::new_unchecked(4), &local, &other)
                .is_ok()
        );
        b.release(c1);
        assert!(b.handle_pending_inbound_connection(c3, &local, &a).is_ok());
    }
}

//! The libp2p side of a relay: its transports and behaviours ([`Behaviour`], [`build_swarm`])
//! and its listeners ([`listen`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, noise, ping, relay, tcp, yamux};
use mix_libp2p::Instant;

use super::Settings;
use super::addresses::with_p2p;
use crate::waku;

/// The libp2p behaviours of a relay.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) ip_limits: crate::ip_limits::Behaviour,
    pub(super) mix: mix_libp2p::Behaviour,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) relay: relay::Behaviour,
    pub(super) relay_client: relay::client::Behaviour,
    pub(super) stream: libp2p_stream::Behaviour,
    pub(super) rendezvous: mix_discovery::Behaviour,
    pub(super) peer_store:
        libp2p::peer_store::Behaviour<libp2p::peer_store::memory_store::MemoryStore>,
}

/// Incoming connections still in their handshake, at most.
const MAX_PENDING_INCOMING: u32 = 256;

/// The peers a circuit may come from: the mix nodes of the pool (a SURB reply's last hop).
pub type MixPeers = Arc<std::sync::RwLock<HashSet<PeerId>>>;

/// The circuit-relay v2 server limits (audit F7), sized for browsers that receive their mix
/// replies through this gateway. libp2p's defaults (16 circuits, 128 reservations, 2 min and
/// 128 KiB per circuit, a source may open one circuit every 2 minutes) suit hole punching:
/// here every (return hop, browser) pair holds a circuit, so
/// * 1,024 reservations (4 per peer, 1 h, libp2p's rate limits per peer and per IP: a burst of
///   30 and 60, then one every 2 min and every minute), and one IP holds at most
///   `--max-connections-per-ip` of them;
/// * 1,024 circuits, 256 from one source, each living up to an hour and 64 MiB (about 14,000
///   packets);
/// * circuits only from the mix nodes of the pool (`mix_peers`): the relay is not an open
///   general-purpose relay. A source may open a burst of 1,024 circuits, then 10 a second.
fn relay_server_config(mix_peers: MixPeers) -> relay::Config {
    let default = relay::Config::default();
    let mix_only = move |peer: PeerId, _: &Multiaddr, _: Instant| {
        mix_peers.read().is_ok_and(|peers| peers.contains(&peer))
    };
    let mut config = relay::Config {
        max_reservations: 1024,
        max_circuits: 1024,
        max_circuits_per_peer: 256,
        max_circuit_duration: Duration::from_secs(3600),
        max_circuit_bytes: 64 << 20,
        circuit_src_rate_limiters: vec![Box::new(mix_only)],
        ..default
    };
    if let Some(burst) = std::num::NonZeroU32::new(1024) {
        config = config.circuit_src_per_peer(burst, Duration::from_millis(100));
    }
    config
}

pub(super) async fn build_swarm(
    identity: libp2p::identity::Keypair,
    settings: &Settings,
    webtransport: mix_webtransport::Config,
    mix_peers: MixPeers,
) -> anyhow::Result<Swarm<Behaviour>> {
    let mix_config = settings.mix.clone();
    let discovery = settings.discovery.clone();
    let idle = settings.idle_timeout;
    let max_per_peer = settings.max_connections_per_peer.max(1);
    let max_incoming = settings.max_incoming_connections.max(1);
    let max_per_ip = settings.max_connections_per_ip;
    // A backstop under the node's own count of packet-caused dials: room for those plus the
    // node's own (mesh peers, its sends, forward-mode destinations).
    let max_pending_outgoing = u32::try_from(
        settings
            .limits
            .max_pending_dials
            .saturating_add(settings.limits.max_forward_in_flight)
            .saturating_add(256),
    )
    .unwrap_or(u32::MAX);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            (yamux::Config::default, libp2p_mplex::Config::default),
        )?
        .with_quic()
        .with_other_transport(|_| mix_webtransport::Transport::new(webtransport))?
        .with_dns()?
        .with_websocket(
            noise::Config::new,
            (yamux::Config::default, libp2p_mplex::Config::default),
        )
        .await?
        .with_relay_client(
            noise::Config::new,
            (yamux::Config::default, libp2p_mplex::Config::default),
        )?
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(
                    ConnectionLimits::default()
                        .with_max_established_per_peer(Some(max_per_peer))
                        .with_max_established_incoming(Some(max_incoming))
                        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                        .with_max_pending_outgoing(Some(max_pending_outgoing)),
                ),
                ip_limits: crate::ip_limits::Behaviour::new(max_per_ip),
                mix: mix_libp2p::Behaviour::new(mix_config),
                gossipsub: waku::gossipsub_behaviour()?,
                identify: identify::Behaviour::new(
                    identify::Config::new("/ipfs/id/1.0.0".into(), key.public())
                        .with_agent_version(format!("mix-relay/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::default(),
                relay: relay::Behaviour::new(peer, relay_server_config(mix_peers)),
                relay_client,
                stream: libp2p_stream::Behaviour::new(),
                rendezvous: mix_discovery::Behaviour::new(mix_discovery::Config {
                    server: discovery.serve,
                    ..mix_discovery::Config::client()
                }),
                peer_store: libp2p::peer_store::Behaviour::new(
                    libp2p::peer_store::memory_store::MemoryStore::new(Default::default()),
                ),
            })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

/// Opens the listeners `settings` asks for (and a reservation on [`Settings::relay_via`]) and
/// waits until they are up; returns every listen address with `/p2p/<peer id>`, the TCP one
/// first.
pub(super) async fn listen(
    swarm: &mut Swarm<Behaviour>,
    settings: &Settings,
    peer_id: PeerId,
) -> anyhow::Result<Vec<Multiaddr>> {
    let ip = Multiaddr::empty().with(Protocol::Ip4(settings.listen_ip));
    swarm
        .listen_on(ip.clone().with(Protocol::Tcp(settings.tcp_port)))
        .context("listening on TCP")?;
    if let Some(port) = settings.ws_port {
        swarm
            .listen_on(
                ip.clone()
                    .with(Protocol::Tcp(port))
                    .with(Protocol::Ws("/".into())),
            )
            .context("listening on WebSocket")?;
    }
    if let Some(port) = settings.quic_port {
        swarm
            .listen_on(ip.clone().with(Protocol::Udp(port)).with(Protocol::QuicV1))
            .context("listening on QUIC")?;
    }
    if let Some(port) = settings.webtransport_port {
        swarm
            .listen_on(
                ip.clone()
                    .with(Protocol::Udp(port))
                    .with(Protocol::QuicV1)
                    .with(Protocol::WebTransport),
            )
            .context("listening on WebTransport")?;
    }
    let wanted = 1
        + usize::from(settings.ws_port.is_some())
        + usize::from(settings.quic_port.is_some())
        + usize::from(settings.webtransport_port.is_some());
    let mut listen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while listen.len() < wanted {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .context("the listeners did not come up within 10 s")?;
        match event {
            SwarmEvent::NewListenAddr { address, .. } => listen.push(with_p2p(&address, peer_id)),
            SwarmEvent::ListenerError { error, .. } => anyhow::bail!("listener failed: {error}"),
            SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => anyhow::bail!("listener closed: {error}"),
            _ => {}
        }
    }
    if let Some(relay_addr) = &settings.relay_via {
        let circuit = relay_addr.clone().with(Protocol::P2pCircuit);
        swarm
            .listen_on(circuit.clone())
            .with_context(|| format!("reserving a slot on {relay_addr}"))?;
        let reserved = loop {
            let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .with_context(|| format!("no reservation on the relay {relay_addr} within 10 s"))?;
            match event {
                // One circuit address per address of the relay: wait for one a packet can carry.
                SwarmEvent::NewListenAddr { address, .. } if mix_libp2p::is_circuit(&address) => {
                    if mix_libp2p::from_multiaddr(&address, Some(peer_id)).is_ok() {
                        break address;
                    }
                    listen.push(with_p2p(&address, peer_id));
                }
                SwarmEvent::ListenerClosed {
                    reason: Err(error), ..
                } => {
                    anyhow::bail!("the relay {relay_addr} refused a reservation: {error}")
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    anyhow::bail!("cannot reach the relay {relay_addr}: {error}")
                }
                _ => {}
            }
        };
        listen.insert(0, with_p2p(&reserved, peer_id));
    }
    // The TCP address first: it is what packets and SURBs carry.
    listen.sort_by_key(|a| !matches!(mix_libp2p::from_multiaddr(a, None), Ok(m) if m.transport == mix_core::Transport::Tcp));
    Ok(listen)
}

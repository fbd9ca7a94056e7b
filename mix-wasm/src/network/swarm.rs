//! The browser's swarm: its transports (WebTransport, else WebSocket with Noise and Yamux;
//! the circuit-relay client) and behaviours.

use std::num::{NonZeroU8, NonZeroU32};
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::timeout::TransportTimeout;
use libp2p::core::upgrade::Version;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, Transport as _, identify, identity, noise, ping, relay,
    websocket_websys, webtransport_websys, yamux,
};

use crate::error::{Code, MixError};
use crate::ws::FlushNow;

/// How long a WebTransport dial (QUIC and HTTP/3 handshakes, then Noise) may take before the
/// swarm gives up on it and dials the relay's next address, its WebSocket one. Without it a
/// browser whose UDP is dropped on the way waits for its own QUIC handshake timeout.
const WEBTRANSPORT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(super) struct Behaviour {
    pub(super) relay: relay::client::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) mix: mix_libp2p::Behaviour,
    pub(super) rendezvous: mix_discovery::Behaviour,
}

/// The remote address of a new connection if it is the first to `peer` (`None` for a
/// further one). Logs the addresses of `peer` that failed before it connected (WebTransport
/// before a WebSocket fallback, say).
pub(super) fn first_connection<E: core::fmt::Display>(
    peer: PeerId,
    endpoint: &ConnectedPoint,
    num_established: NonZeroU32,
    failed: Option<&[(Multiaddr, E)]>,
) -> Option<Multiaddr> {
    for (tried, error) in failed.unwrap_or_default() {
        tracing::debug!(%tried, %error, "an earlier address of {peer} failed");
    }
    (num_established.get() == 1).then(|| endpoint.get_remote_address().clone())
}

pub(super) fn build_swarm(key: identity::Keypair) -> Result<Swarm<Behaviour>, MixError> {
    let internal = |e: &dyn core::fmt::Display| MixError::new(Code::Internal, e.to_string());
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            // `/quic-v1/webtransport/certhash/…` addresses: the transport runs Noise (bound to
            // the certificate hashes) itself, and WebTransport streams need no muxer. Every
            // other address it declines, and the WebSocket stack gets it.
            let webtransport = TransportTimeout::with_outgoing_timeout(
                webtransport_websys::Transport::new(webtransport_websys::Config::new(key)),
                WEBTRANSPORT_DIAL_TIMEOUT,
            )
            .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
            // Flushes return at once: see crate::ws.
            let websocket = websocket_websys::Transport::default()
                .map(|connection, _| FlushNow(connection))
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            Ok(webtransport
                .or_transport(websocket)
                .map(|either, _| either.into_inner()))
        })
        .map_err(|e| internal(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| internal(&e))?
        .with_behaviour(|key, relay| Behaviour {
            relay,
            identify: identify::Behaviour::new(identify::Config::new(
                "/mix-wasm/0.1.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            mix: mix_libp2p::Behaviour::new(mix_libp2p::Config::new()),
            rendezvous: mix_discovery::Behaviour::new(mix_discovery::Config::client()),
        })
        .map_err(|e| internal(&e))?
        // One address at a time, in the order given (crate::transports): WebSocket is dialed
        // only when WebTransport failed, and never alongside it.
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(60))
                .with_dial_concurrency_factor(NonZeroU8::MIN)
        })
        .build())
}

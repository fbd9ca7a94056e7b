//! A running relay: the libp2p swarm, the packet processor and the exit layer, driven by one
//! tokio task. [`start`] returns a [`RelayHandle`] that tests, the `testnet` command and the
//! `send` command use.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::gossipsub::{self, IdentTopic, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, noise, ping, relay, tcp, yamux};
use mix_core::{Delay, DelayStrategy, Format, NodePublicKey, PACKET_LEN, ReplayConfig, Surb};
use mix_discovery::{MixRecord, RegistryConfig, Rounds, Schedule};
use mix_libp2p::Instant;

use crate::mismatch::MismatchWarnings;
use mix_libp2p::{ClientError, Destination, Frame, MixNode, PoolConfig, SendOptions, Sender};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::seq::IteratorRandom as _;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::time::DelayQueue;

mod lookup;
mod sending;

use crate::keys::{self, MixNodeEntry, NodeKeys};
use crate::limits::{DelayShares, Dials, Limits};
use crate::metrics::{self, DropReason, ExitKind, Metrics};
use crate::processor::{Decision, Processor};
use crate::replay_store::{PersistentReplayFilter, unix_now_ms};
use crate::waku::{
    self, LIGHTPUSH_PROTOCOL, LightPushResponse, LightPushService, PublishOutcome, ServiceConfig,
    WakuMessage,
};

/// Where a relay's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// Loaded from (or created in) a directory, with nwaku's `--mixkey` override.
    Dir {
        /// The data directory.
        dir: PathBuf,
        /// A mix secret key in hex that replaces the stored one.
        mixkey: Option<String>,
    },
    /// Given (tests, the vectors).
    Given(Box<NodeKeys>),
    /// Fresh keys, forgotten at exit (the `send` command, throwaway nodes).
    Ephemeral,
}

/// Everything a relay needs to start. [`Settings::local`] gives a loopback node.
#[derive(Debug)]
pub struct Settings {
    /// The keys.
    pub keys: KeySource,
    /// Where the replay tags persist; `None` keeps them in memory only.
    pub replay_file: Option<PathBuf>,
    /// The IPv4 address to listen on.
    pub listen_ip: Ipv4Addr,
    /// TCP port (0: any).
    pub tcp_port: u16,
    /// WebSocket port, if any (0: any).
    pub ws_port: Option<u16>,
    /// QUIC-v1 UDP port, if any (0: any).
    pub quic_port: Option<u16>,
    /// libp2p WebTransport UDP port, if any (0: any): browsers dial
    /// `/ip4/…/udp/<port>/quic-v1/webtransport/certhash/…/certhash/…` with no CA certificate.
    pub webtransport_port: Option<u16>,
    /// How often the WebTransport certificate is replaced (at most 5 days 23 h: each
    /// certificate is valid 12 days). An address stays dialable for one to two periods, so
    /// the identify, rendezvous and pool-file copies of it are renewed in time.
    pub webtransport_rotate_every: Duration,
    /// Addresses to advertise (in SURBs and the pool file); by default the TCP listen address.
    pub announce: Vec<Multiaddr>,
    /// Be reachable through this circuit relay (`/ip4/…/tcp/…/p2p/<relay>`): reserve a slot on
    /// it and advertise the circuit address, for nodes that cannot accept connections (a
    /// browser, a sender behind NAT). SURB replies then reach this node through the relay.
    pub relay_via: Option<Multiaddr>,
    /// Static mix pool entries (nwaku's `--mixnode`).
    pub mixnodes: Vec<MixNodeEntry>,
    /// Peers to connect to at start (the Waku relay mesh).
    pub peers: Vec<Multiaddr>,
    /// The Waku cluster.
    pub cluster_id: u16,
    /// The shards this node relays and serves; empty for a sender-only node.
    pub shards: Vec<u16>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The delay strategy (MIX.md §10): the encoding for our own sends and the sampling at
    /// intermediate hops.
    pub delay: DelayStrategy,
    /// The network's wire format (MIX-LIONESS.md): every node of a network must speak the
    /// same one, and nothing on the wire tells them apart [default: LIP-183].
    pub format: Format,
    /// The mean of the exponential hold before our own first-hop writes and our SURB replies
    /// (upstream's sender hold); `None` writes at once [default: 100 ms, upstream's, for
    /// LIP-183; see [`Settings::default_sender_hold`]].
    pub sender_hold: Option<Delay>,
    /// Transport-level limits of `/mix/1.0.0`.
    pub mix: mix_libp2p::Config,
    /// Replay filter bounds.
    pub replay: ReplayConfig,
    /// Forward-mode exits give up on a destination after this long.
    pub forward_timeout: Duration,
    /// How long idle connections stay open.
    pub idle_timeout: Duration,
    /// Established connections one peer may hold (both directions together); more are
    /// refused and counted in `mix_connections_denied_total`.
    pub max_connections_per_peer: u32,
    /// Established incoming connections in total; more are refused and counted.
    pub max_incoming_connections: u32,
    /// Incoming connections (pending or established) from one IP address; more are refused
    /// before their handshake and counted.
    pub max_connections_per_ip: usize,
    /// Fault injection for tests of hostile relays: as an exit, flip one byte of every reply
    /// payload after building it (a tampering exit). Never set in production.
    pub tamper_replies: bool,
    /// Discovery through Waku rendezvous.
    pub discovery: DiscoverySettings,
    /// Abuse limits on what packets make this relay do (dials, delays, forward-mode exits).
    pub limits: Limits,
}

/// How a node finds mix nodes and makes itself found (Waku rendezvous, WAKU.md §5.3). The
/// rendezvous points are the connected peers that speak `/vac/waku/rendezvous/1.0.0`
/// (identify tells), as in nwaku.
#[derive(Clone, Debug)]
pub struct DiscoverySettings {
    /// Serve as a rendezvous point with these limits.
    pub serve: Option<RegistryConfig>,
    /// Register our own signed record (a mix node); a sender only looks up.
    pub register: bool,
    /// Look up mix nodes and keep the pool fresh with them.
    pub lookup: bool,
    /// How often to register and with what TTL, and how often to look up.
    pub register_every: Duration,
    /// The registration TTL.
    pub ttl: Duration,
    /// The lookup period once the pool is full.
    pub lookup_every: Duration,
    /// How the pool treats failing nodes.
    pub pool: PoolConfig,
}

impl Default for DiscoverySettings {
    /// nwaku's schedule: serve, register every 10 s with a 60 s TTL, look up every 10 s.
    fn default() -> Self {
        Self {
            serve: Some(RegistryConfig::default()),
            register: true,
            lookup: true,
            register_every: Duration::from_secs(10),
            ttl: Duration::from_secs(60),
            lookup_every: Duration::from_secs(10),
            pool: PoolConfig::default(),
        }
    }
}

impl DiscoverySettings {
    /// A fast schedule for local testnets and tests: register every second with a 4 s TTL,
    /// look up every second, quarantine failed nodes for 4 s. Stopped nodes leave pools within
    /// about five seconds.
    pub fn fast() -> Self {
        let ttl = Duration::from_secs(4);
        Self {
            serve: Some(RegistryConfig {
                min_ttl: Duration::from_secs(1),
                default_ttl: ttl,
                ..RegistryConfig::default()
            }),
            register_every: Duration::from_secs(1),
            ttl,
            lookup_every: Duration::from_secs(1),
            pool: PoolConfig {
                quarantine: ttl,
                ..PoolConfig::default()
            },
            ..Self::default()
        }
    }

    fn schedule(&self, now: Instant) -> Schedule {
        Schedule::new(now, self.register).with_periods(
            self.register_every,
            self.ttl,
            self.lookup_every,
        )
    }
}

impl Settings {
    /// Upstream's sender hold for `format`: an exponential with a 100 ms mean in the LIP-183
    /// format, none in the v0.39 format (whose senders wrote at once).
    pub fn default_sender_hold(format: Format) -> Option<Delay> {
        match format {
            Format::Lip183 => Some(mix_libp2p::DEFAULT_SENDER_HOLD),
            Format::V039 => None,
        }
    }

    /// A node on 127.0.0.1 with fresh keys and any free ports, cluster 2, shard 0, the
    /// no-sampling delay strategy (0–2 ms per hop, as Nim's default), the LIP-183 format
    /// with upstream's sender hold.
    pub fn local() -> Self {
        Self {
            keys: KeySource::Ephemeral,
            replay_file: None,
            listen_ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0,
            ws_port: None,
            quic_port: None,
            webtransport_port: None,
            webtransport_rotate_every: mix_webtransport::DEFAULT_ROTATE_EVERY,
            announce: Vec::new(),
            relay_via: None,
            mixnodes: Vec::new(),
            peers: Vec::new(),
            cluster_id: 2,
            shards: vec![0],
            metrics_addr: None,
            delay: DelayStrategy::NoSampling,
            format: Format::default(),
            sender_hold: Self::default_sender_hold(Format::default()),
            mix: mix_libp2p::Config::new(),
            replay: ReplayConfig::default(),
            forward_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections_per_peer: 8,
            max_incoming_connections: 4096,
            // Every peer of a loopback testnet (relays, browsers, tests) shares 127.0.0.1.
            max_connections_per_ip: 4096,
            tamper_replies: false,
            discovery: DiscoverySettings::default(),
            // A loopback node dials loopback peers: local testnets, tests and demos.
            limits: Limits {
                allow_private_addresses: true,
                ..Limits::default()
            },
        }
    }
}

/// The libp2p behaviours of a relay.
#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    ip_limits: crate::ip_limits::Behaviour,
    mix: mix_libp2p::Behaviour,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    relay: relay::Behaviour,
    relay_client: relay::client::Behaviour,
    stream: libp2p_stream::Behaviour,
    rendezvous: mix_discovery::Behaviour,
    peer_store: libp2p::peer_store::Behaviour<libp2p::peer_store::memory_store::MemoryStore>,
}

/// A node's entry in a pool file or a pool: who it is, where, and its mix key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The libp2p peer id.
    pub peer_id: PeerId,
    /// Dialable addresses, each ending in `/p2p/<peer id>`; the first is the TCP one.
    pub addrs: Vec<Multiaddr>,
    /// The X25519 mix public key.
    pub mix_public: NodePublicKey,
}

impl NodeInfo {
    /// The pool entry a sender uses.
    ///
    /// # Errors
    /// If no address can be written into a packet.
    pub fn mix_node(&self) -> Result<MixNode, mix_libp2p::AddressError> {
        MixNode::new(self.peer_id, self.addrs.clone(), self.mix_public)
    }
}

/// Why a lightpush through the mixnet failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LightpushError {
    /// The mix layer failed (no route, too long, timeout).
    #[error(transparent)]
    Mix(#[from] ClientError),
    /// The reply did not decode as a `LightPushResponse`.
    #[error("the reply is not a lightpush response")]
    BadReply,
    /// The relay stopped.
    #[error("the relay has stopped")]
    Stopped,
}

enum Command {
    Send {
        destination: Destination,
        codec: String,
        body: Vec<u8>,
        options: SendOptions,
        reply: oneshot::Sender<Result<Vec<u8>, ClientError>>,
    },
    AddMixNodes(Vec<MixNode>),
    Pool(oneshot::Sender<Vec<MixNode>>),
    Dial(Multiaddr),
    TopicPeers {
        topic: String,
        reply: oneshot::Sender<usize>,
    },
    Lightpush {
        request: Vec<u8>,
        reply: oneshot::Sender<Vec<u8>>,
    },
    SendFrame {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        frame: Frame,
    },
    Register {
        codec: String,
        handler: mpsc::Sender<ExitRequest>,
    },
}

/// A request that reached this node as the exit (exit == destination) for a protocol registered
/// with [`RelayHandle::register_protocol`].
#[derive(Debug)]
pub struct ExitRequest {
    /// The origin protocol.
    pub codec: String,
    /// The request bytes, exactly as the sender's protocol wrote them.
    pub body: Vec<u8>,
    reply: Option<oneshot::Sender<Vec<u8>>>,
}

impl ExitRequest {
    /// Whether the sender attached SURBs (a response will travel back).
    pub fn expects_reply(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers the request through every SURB it carried (at most [`mix_core::MAX_REPLY_LEN`]
    /// bytes; longer responses are replaced by an empty one).
    pub fn respond(self, response: Vec<u8>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(response);
        }
    }
}

/// A running relay. Dropping it does not stop the relay; call [`RelayHandle::shutdown`].
pub struct RelayHandle {
    info: NodeInfo,
    addrs: watch::Receiver<Vec<Multiaddr>>,
    enr: Option<String>,
    listen: Vec<Multiaddr>,
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
    commands: mpsc::Sender<Command>,
    messages: broadcast::Sender<(String, WakuMessage)>,
    stream_control: libp2p_stream::Control,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RelayHandle {
    /// Who and where this relay is.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// Its Waku ENR (`waku2` with the mix bit, `rs`, `multiaddrs`, `mix-key`), if its
    /// addresses fit in one.
    pub fn enr(&self) -> Option<&str> {
        self.enr.as_deref()
    }

    /// The peer id.
    pub fn peer_id(&self) -> PeerId {
        self.info.peer_id
    }

    /// Its advertised addresses now: [`NodeInfo::addrs`] at start, with the WebTransport
    /// ones replaced as its certificates rotate.
    pub fn current_addrs(&self) -> Vec<Multiaddr> {
        self.addrs.borrow().clone()
    }

    /// Changes of [`Self::current_addrs`].
    pub fn watch_addrs(&self) -> watch::Receiver<Vec<Multiaddr>> {
        self.addrs.clone()
    }

    /// Every address it listens on, with `/p2p/<peer id>`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen
    }

    /// Its counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Its counters, to read from another task.
    pub fn shared_metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Where its metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Waku messages this relay receives on its shards (from gossipsub).
    pub fn subscribe_messages(&self) -> broadcast::Receiver<(String, WakuMessage)> {
        self.messages.subscribe()
    }

    /// Raw streams from this node, for tests and tools that write their own bytes.
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.stream_control.clone()
    }

    async fn command(&self, command: Command) -> Result<(), LightpushError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| LightpushError::Stopped)
    }

    /// Adds nodes to this relay's sender pool.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn add_mix_nodes(&self, nodes: Vec<MixNode>) -> Result<(), LightpushError> {
        self.command(Command::AddMixNodes(nodes)).await
    }

    /// The sender pool as it is now: static entries and discovered ones.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn pool(&self) -> Result<Vec<MixNode>, LightpushError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Pool(tx)).await?;
        rx.await.map_err(|_| LightpushError::Stopped)
    }

    /// Waits until the sender pool holds at least `n` nodes, or `timeout` passes; returns the
    /// pool either way.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn wait_for_pool(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MixNode>, LightpushError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pool = self.pool().await?;
            if pool.len() >= n || tokio::time::Instant::now() >= deadline {
                return Ok(pool);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Dials a peer (e.g. to join the Waku relay mesh).
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), LightpushError> {
        self.command(Command::Dial(addr)).await
    }

    /// How many gossipsub peers are subscribed to `topic`.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn topic_peers(&self, topic: &str) -> Result<usize, LightpushError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::TopicPeers {
            topic: topic.to_owned(),
            reply,
        })
        .await?;
        rx.await.map_err(|_| LightpushError::Stopped)
    }

    /// Sends `body` for `codec` through the mixnet and waits for the first reply (or returns
    /// at once with an empty body when `options.surbs` is 0).
    ///
    /// # Errors
    /// A [`ClientError`] (no route, too long, timeout) or [`LightpushError::Stopped`].
    pub async fn send(
        &self,
        destination: Destination,
        codec: &str,
        body: Vec<u8>,
        options: SendOptions,
    ) -> Result<Vec<u8>, LightpushError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Send {
            destination,
            codec: codec.to_owned(),
            body,
            options,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| LightpushError::Stopped)??)
    }

    /// Publishes `message` on `pubsub_topic` with Waku lightpush v3 at `service` (which must be
    /// in the pool), through 3 hops with exit == destination, and returns the service's answer.
    ///
    /// # Errors
    /// As [`RelayHandle::send`], and [`LightpushError::BadReply`].
    pub async fn lightpush(
        &self,
        service: PeerId,
        pubsub_topic: &str,
        message: WakuMessage,
        options: SendOptions,
    ) -> Result<LightPushResponse, LightpushError> {
        let reply = self
            .send(
                Destination::ExitIsDestination(service),
                LIGHTPUSH_PROTOCOL,
                crate::sender::lightpush_request(pubsub_topic, message),
                options,
            )
            .await?;
        crate::sender::lightpush_response(&reply)
    }

    /// Answers a lightpush request (protobuf bytes) as the service would over a stream.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn handle_lightpush(&self, request: Vec<u8>) -> Result<Vec<u8>, LightpushError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Lightpush { request, reply }).await?;
        rx.await.map_err(|_| LightpushError::Stopped)
    }

    /// Sends a raw frame to `peer` on `/mix/1.0.0` (tools, tests and benchmarks that build
    /// their own packets).
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn send_frame(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        frame: Frame,
    ) -> Result<(), LightpushError> {
        self.command(Command::SendFrame { peer, addrs, frame })
            .await
    }

    /// Handles the exit == destination requests for `codec` in the caller: each arrives as an
    /// [`ExitRequest`] to answer (Nim runs the switch's handler for the codec). Lightpush v3 is
    /// built in; registering it again replaces the built-in service.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn register_protocol(
        &self,
        codec: &str,
    ) -> Result<mpsc::Receiver<ExitRequest>, LightpushError> {
        let (handler, rx) = mpsc::channel(1024);
        self.command(Command::Register {
            codec: codec.to_owned(),
            handler,
        })
        .await?;
        Ok(rx)
    }

    /// Stops the relay: closes its listeners, flushes the replay store, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The IPv4 address of the first of `addrs` that has one.
fn first_ipv4(addrs: &[Multiaddr]) -> Option<Ipv4Addr> {
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

fn with_p2p(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.clone()
    } else {
        addr.clone().with(Protocol::P2p(peer))
    }
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

async fn build_swarm(
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

/// Starts a relay and returns once it listens.
///
/// # Errors
/// If the keys cannot be loaded, the replay store opened, a port bound or the metrics server
/// started.
pub async fn start(settings: Settings) -> anyhow::Result<RelayHandle> {
    let keys = match &settings.keys {
        KeySource::Dir { dir, mixkey } => {
            let (keys, status) = keys::load_or_create(dir, mixkey.as_deref())
                .with_context(|| format!("loading the keys in {}", dir.display()))?;
            tracing::info!(?status, "keys ready");
            keys
        }
        KeySource::Given(keys) => NodeKeys {
            identity: keys.identity.clone(),
            mix: keys.mix.clone(),
        },
        KeySource::Ephemeral => NodeKeys::generate(),
    };
    let peer_id = keys.peer_id();
    let mix_public = keys.mix_public();
    let replay = match &settings.replay_file {
        Some(path) => PersistentReplayFilter::open(path, settings.replay, unix_now_ms())
            .with_context(|| format!("opening the replay store {}", path.display()))?,
        None => PersistentReplayFilter::in_memory(settings.replay),
    };
    let metrics = Arc::new(Metrics::new());
    metrics.set_replay_store_size(replay.len());

    let mut webtransport = mix_webtransport::Config::new(&keys.identity);
    webtransport.rotate_every = settings.webtransport_rotate_every;
    if settings.webtransport_port.is_some() {
        webtransport
            .check()
            .context("the WebTransport certificate schedule")?;
    }
    let mix_peers = MixPeers::default();
    let mut swarm = build_swarm(
        keys.identity.clone(),
        &settings,
        webtransport,
        mix_peers.clone(),
    )
    .await?;
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
    // The IP a listener on 0.0.0.0 is advertised with.
    let public_ip = first_ipv4(&settings.announce);
    let announce: Vec<Multiaddr> = if settings.announce.is_empty() && settings.relay_via.is_some() {
        // Reachable only through the relay: advertise the circuit address alone.
        listen
            .iter()
            .filter(|a| mix_libp2p::is_circuit(a))
            .cloned()
            .collect()
    } else if settings.announce.is_empty() {
        listen.clone()
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
    };
    for addr in &announce {
        swarm.add_external_address(addr.clone());
    }
    let me = MixNode::new(peer_id, announce.clone(), mix_public).context(
        "no announced address can be written into a mix packet (IPv4 TCP or QUIC needed)",
    )?;
    let mut sender = Sender::new(me, keys.mix.clone(), settings.delay)
        .with_client(|c| {
            c.with_format(settings.format)
                .with_sender_hold(settings.sender_hold)
        })
        .with_lookups(settings.discovery.lookup);
    sender.set_pool_config(settings.discovery.pool);
    for entry in &settings.mixnodes {
        match MixNode::new(entry.peer_id, vec![entry.addr.clone()], entry.mix_public) {
            Ok(node) => sender.insert_node(node),
            Err(e) => tracing::warn!(peer = %entry.peer_id, error = %e, "mix node skipped"),
        }
    }
    for shard in &settings.shards {
        let topic = IdentTopic::new(waku::pubsub_topic(settings.cluster_id, *shard));
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .context("subscribing to the shard")?;
    }
    for addr in &settings.peers {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "could not dial peer");
        }
    }
    let mut control = swarm.behaviour().stream.new_control();
    let metadata_streams = control
        .accept(StreamProtocol::new(waku::metadata::METADATA_PROTOCOL))
        .context("registering the Waku metadata protocol")?;
    tokio::spawn(serve_metadata(
        metadata_streams,
        waku::metadata::response(settings.cluster_id, &settings.shards),
    ));
    let lightpush_streams = control
        .accept(StreamProtocol::new(LIGHTPUSH_PROTOCOL))
        .context("registering the lightpush protocol")?;

    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let metrics_addr = match settings.metrics_addr {
        Some(addr) => {
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (bound, _) = metrics::serve(addr, metrics.clone(), async move {
                let _ = stop_rx.await;
            })
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
            tracing::info!(%bound, "metrics at http://{bound}/metrics");
            Some((bound, stop_tx))
        }
        None => None,
    };
    let (commands_tx, commands_rx) = mpsc::channel(1024);
    let (messages_tx, _) = broadcast::channel(4096);
    let (exit_tx, exit_rx) = mpsc::channel(256);
    let info = NodeInfo {
        peer_id,
        addrs: announce,
        mix_public,
    };
    tracing::info!(%peer_id, mix_public = %hex::encode(mix_public.as_bytes()), addrs = ?info.addrs, "relay listening");
    tracing::info!(
        format = %settings.format,
        sender_hold_ms = settings.sender_hold.map_or(0, Delay::as_millis),
        "wire format (--mix-format): every node of the network must speak the same"
    );
    let enr = match waku_enr(&keys, &info.addrs, settings.cluster_id, &settings.shards) {
        Ok(enr) => {
            tracing::info!(%enr, "ENR");
            Some(enr)
        }
        Err(error) => {
            tracing::warn!(%error, "no ENR for these addresses");
            None
        }
    };
    let (addrs_tx, addrs_rx) = watch::channel(info.addrs.clone());
    let node = Node {
        swarm,
        addrs: addrs_tx,
        public_ip,
        processor: Processor::new(keys.mix.clone(), replay, settings.delay)
            .with_format(settings.format),
        sender,
        lightpush: LightPushService::new(ServiceConfig::new(
            settings.cluster_id,
            settings.shards.clone(),
        )),
        metrics: metrics.clone(),
        delays: DelayQueue::new(),
        local: VecDeque::new(),
        waiting: HashMap::new(),
        peer_id,
        control: control.clone(),
        exit_tx,
        messages: messages_tx.clone(),
        forward_timeout: settings.forward_timeout,
        tamper_replies: settings.tamper_replies,
        sender_hold: settings.sender_hold,
        mismatch: MismatchWarnings::default(),
        discovery: Discovery {
            schedule: settings.discovery.schedule(Instant::now()),
            lookup: settings.discovery.lookup,
            rounds: Rounds::new(mix_discovery::mix_namespace(settings.cluster_id)),
            namespace: mix_discovery::mix_namespace(settings.cluster_id),
            identity: keys.identity.clone(),
            record_addrs: info.addrs.iter().map(without_p2p).collect(),
            mix_public,
            points: HashSet::new(),
            registering: 0,
            registered_any: false,
        },
        protocols: HashMap::new(),
        in_flight: Arc::new(AtomicUsize::new(0)),
        forward_in_flight: Arc::new(AtomicUsize::new(0)),
        limits: settings.limits.clone(),
        dials: Dials::default(),
        delay_shares: DelayShares::default(),
        lag: LagWindow::default(),
        replay_alarm: false,
        mix_peers,
        publish_budget: mix_libp2p::RateLimiter::new(
            settings.limits.max_publish_rate,
            settings.limits.max_publish_rate.saturating_mul(2),
        ),
        rng: rand::make_rng(),
    };
    let (metrics_bound, metrics_stop) = match metrics_addr {
        Some((a, s)) => (Some(a), Some(s)),
        None => (None, None),
    };
    let task = tokio::spawn(async move {
        node.run(commands_rx, exit_rx, lightpush_streams, shutdown_rx)
            .await;
        if let Some(stop) = metrics_stop {
            let _ = stop.send(());
        }
    });
    Ok(RelayHandle {
        info,
        addrs: addrs_rx,
        enr,
        listen,
        metrics,
        metrics_addr: metrics_bound,
        commands: commands_tx,
        messages: messages_tx,
        stream_control: control,
        shutdown: Some(shutdown_tx),
        task: Some(task),
    })
}

/// A pending packet-caused dial not reported settled after this long is forgotten (the
/// swarm's dial timeout is 10 s).
const STALE_DIAL: Duration = Duration::from_secs(30);

/// The replay store's fill, percent, above which the relay warns (the metric
/// `mix_replay_store_occupancy_percent` is the alarm to watch).
const REPLAY_ALARM_PERCENT: u64 = 80;

/// A forward-mode exit's result: the response to send back through `surbs`, and the
/// destination if it could not be reached.
struct ExitResult {
    surbs: Vec<Surb>,
    response: Vec<u8>,
    unreachable: Option<Multiaddr>,
}

/// The event loop's longest lag behind its tick, over the current and the previous second.
#[derive(Default)]
struct LagWindow {
    current: Duration,
    previous: Duration,
    started: Option<tokio::time::Instant>,
}

impl LagWindow {
    /// A tick due at `due` ran at `now`; returns the lag to report.
    fn record(&mut self, due: tokio::time::Instant, now: tokio::time::Instant) -> Duration {
        let started = *self.started.get_or_insert(now);
        if now.saturating_duration_since(started) >= Duration::from_secs(1) {
            self.previous = self.current;
            self.current = Duration::ZERO;
            self.started = Some(now);
        }
        self.current = self.current.max(now.saturating_duration_since(due));
        self.current.max(self.previous)
    }
}

struct Node {
    swarm: Swarm<Behaviour>,
    /// The advertised addresses (see [`RelayHandle::current_addrs`]).
    addrs: watch::Sender<Vec<Multiaddr>>,
    /// The IP to advertise for a listener on 0.0.0.0 (the first announced one).
    public_ip: Option<Ipv4Addr>,
    processor: Processor<PersistentReplayFilter>,
    sender: Sender,
    lightpush: LightPushService,
    metrics: Arc<Metrics>,
    /// Delayed packets with their previous hop (none for our own).
    delays: DelayQueue<(Option<PeerId>, mix_core::Address, Box<[u8; PACKET_LEN]>)>,
    /// Packets addressed to this node itself, processed next.
    local: VecDeque<Box<[u8; PACKET_LEN]>>,
    waiting: HashMap<mix_libp2p::RequestId, sending::Reply>,
    peer_id: PeerId,
    control: libp2p_stream::Control,
    exit_tx: mpsc::Sender<ExitResult>,
    messages: broadcast::Sender<(String, WakuMessage)>,
    forward_timeout: Duration,
    /// [`Settings::tamper_replies`].
    tamper_replies: bool,
    /// [`Settings::sender_hold`], for our SURB replies.
    sender_hold: Option<Delay>,
    mismatch: MismatchWarnings,
    discovery: Discovery,
    protocols: HashMap<String, mpsc::Sender<ExitRequest>>,
    /// Direct lightpush streams being served.
    in_flight: Arc<AtomicUsize>,
    /// Forward-mode exchanges in progress (a budget apart from `in_flight`).
    forward_in_flight: Arc<AtomicUsize>,
    limits: Limits,
    dials: Dials,
    delay_shares: DelayShares,
    lag: LagWindow,
    /// Whether the replay store is above [`REPLAY_ALARM_PERCENT`].
    replay_alarm: bool,
    /// The pool's peers, for the circuit relay's source policy.
    mix_peers: MixPeers,
    /// Lightpush publishes, all peers together (keyed by our own peer id).
    publish_budget: mix_libp2p::RateLimiter,
    rng: StdRng,
}

/// Discovery state of a node.
struct Discovery {
    schedule: Schedule,
    lookup: bool,
    /// The lookup rounds (points asked, pages, answers).
    rounds: Rounds,
    /// Where our record is registered.
    namespace: String,
    identity: libp2p::identity::Keypair,
    /// Our addresses as our record carries them (without `/p2p/<id>`, as nwaku).
    record_addrs: Vec<Multiaddr>,
    mix_public: NodePublicKey,
    /// Connected peers that serve rendezvous.
    points: HashSet<PeerId>,
    /// Registrations of the current round not answered yet.
    registering: usize,
    /// Whether one registration of the current round was accepted.
    registered_any: bool,
}

/// A round registers at this many rendezvous points at most, chosen at random among the
/// connected ones (nwaku registers at one; more keep small networks complete).
const REGISTER_AT: usize = 16;

fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// The Waku ENR of a node with `keys` at `addrs`: `ip`/`tcp` from the first IPv4 TCP address,
/// the other addresses in `multiaddrs`, `waku2` = mix (+ relay and lightpush when it serves
/// shards), `rs` and the `mix-key` field older nwaku nodes read.
///
/// # Errors
/// If the record does not fit in 300 bytes, or the identity is not secp256k1.
pub fn waku_enr(
    keys: &NodeKeys,
    addrs: &[Multiaddr],
    cluster: u16,
    shards: &[u16],
) -> Result<String, mix_discovery::enr::EnrError> {
    use mix_discovery::enr::{WAKU2_LIGHTPUSH, WAKU2_MIX, WAKU2_RELAY, WakuEnr};
    let mut ip4 = None;
    let mut tcp = None;
    let mut others = Vec::new();
    // WebTransport addresses change with every certificate rotation: not in a long-lived ENR.
    for addr in addrs
        .iter()
        .filter(|a| !mix_webtransport::is_webtransport(a))
    {
        let plain = without_p2p(addr);
        let parts: Vec<Protocol<'_>> = plain.iter().collect();
        match parts.as_slice() {
            [Protocol::Ip4(ip), Protocol::Tcp(port)] if tcp.is_none() => {
                ip4 = Some(*ip);
                tcp = Some(*port);
            }
            _ => others.push(plain.clone()),
        }
    }
    let waku2 = if shards.is_empty() {
        WAKU2_MIX
    } else {
        WAKU2_MIX | WAKU2_RELAY | WAKU2_LIGHTPUSH
    };
    WakuEnr {
        peer_id: keys.peer_id(),
        seq: unix_seconds(),
        ip4,
        tcp,
        udp: None,
        multiaddrs: others,
        waku2: Some(waku2),
        shards: (!shards.is_empty()).then(|| (cluster, shards.to_vec())),
        mix_key: Some(keys.mix_public()),
    }
    .encode(&keys.identity)
}

/// Unix seconds (a record's sequence number, as nwaku).
fn unix_seconds() -> u64 {
    unix_now_ms() / 1000
}

/// Counts a task in `Node::in_flight` while it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Node {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut exits: mpsc::Receiver<ExitResult>,
        mut lightpush_streams: libp2p_stream::IncomingStreams,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut flush = tokio::time::interval(Duration::from_secs(1));
        let mut discovery_tick = tokio::time::interval(Duration::from_millis(250));
        let (lp_tx, mut lp_rx) = mpsc::channel::<(Vec<u8>, oneshot::Sender<Vec<u8>>)>(256);
        loop {
            while let Some(packet) = self.local.pop_front() {
                self.on_packet(packet, None);
            }
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(expired) = self.delays.next(), if !self.delays.is_empty() => {
                    let (from, next_hop, packet) = expired.into_inner();
                    if let Some(hop) = from {
                        self.delay_shares.give_back(&hop);
                    }
                    self.send_packet(next_hop, packet);
                    self.metrics.set_delay_queue_depth(self.delays.len());
                }
                Some(command) = commands.recv() => self.on_command(command),
                Some(result) = exits.recv() => {
                    if let Some(addr) = &result.unreachable {
                        self.dials.endpoint_failed(addr, Instant::now());
                    }
                    for surb in result.surbs {
                        self.reply_through(&surb, &result.response);
                    }
                }
                Some((_peer, stream)) = lightpush_streams.next() => {
                    if self.in_flight.load(Ordering::Relaxed) >= self.limits.max_lightpush_in_flight {
                        // Dropping the stream resets it: the client sees the service busy.
                        drop(stream);
                    } else {
                        let tx = lp_tx.clone();
                        let guard = InFlight::enter(&self.in_flight);
                        tokio::spawn(async move {
                            serve_lightpush_stream(stream, tx).await;
                            drop(guard);
                        });
                    }
                }
                Some((request, reply)) = lp_rx.recv() => {
                    let response = self.handle_lightpush(&request);
                    let _ = reply.send(waku::encode_length_prefixed(&response));
                }
                due = tick.tick() => {
                    let lag = self.lag.record(due, tokio::time::Instant::now());
                    self.metrics.set_loop_lag(lag);
                    self.on_sender_tick();
                }
                _ = flush.tick() => self.flush_replay(),
                _ = discovery_tick.tick() => self.on_discovery_tick(),
                _ = &mut shutdown => break,
            }
        }
        self.flush_replay();
        tracing::info!(peer = %self.peer_id, "relay stopped");
    }

    fn flush_replay(&mut self) {
        let filter = self.processor.replay_filter();
        if let Err(error) = filter.flush() {
            tracing::error!(%error, "could not persist the replay store");
        }
        let (occupancy, overflow, cut) = (
            filter.occupancy_percent(),
            filter.overflow_len(),
            filter.take_window_cut(),
        );
        self.metrics.set_replay_store_size(filter.len());
        self.metrics.set_replay_occupancy(occupancy, overflow);
        if cut > 0 {
            self.metrics.replay_window_shortened(cut);
            tracing::warn!(
                slices = cut,
                "replay overflow filter at its memory budget: the replay window is shortened"
            );
        }
        let alarm = occupancy >= REPLAY_ALARM_PERCENT;
        if alarm && !self.replay_alarm {
            tracing::warn!(
                occupancy,
                overflow,
                "replay store above {REPLAY_ALARM_PERCENT} % of its capacity (a flood of packets?)"
            );
        }
        self.replay_alarm = alarm;
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send {
                destination,
                codec,
                body,
                options,
                reply,
            } => self.on_send(&destination, &codec, &body, options, reply),
            Command::AddMixNodes(nodes) => {
                for node in nodes {
                    self.sender.insert_node(node);
                }
                self.drain_sender();
            }
            Command::Pool(reply) => {
                let _ = reply.send(self.sender.client().nodes().cloned().collect());
            }
            Command::Dial(addr) => {
                if let Err(error) = self.swarm.dial(addr.clone()) {
                    tracing::debug!(%addr, %error, "dial failed");
                }
            }
            Command::TopicPeers { topic, reply } => {
                let n = topic_peer_count(
                    &self.swarm.behaviour().gossipsub,
                    &TopicHash::from_raw(topic),
                );
                let _ = reply.send(n);
            }
            Command::Lightpush { request, reply } => {
                let response = self.handle_lightpush(&request);
                let _ = reply.send(response.encode_to_vec());
            }
            Command::SendFrame { peer, addrs, frame } => {
                self.swarm.behaviour_mut().mix.send(peer, addrs, frame);
            }
            Command::Register { codec, handler } => {
                self.protocols.insert(codec, handler);
            }
        }
    }

    /// A WebTransport listen address came (`added`) or went: its certificates rotated.
    /// Identify follows the listen addresses by itself; the external address, the rendezvous
    /// record and [`RelayHandle::current_addrs`] follow here, and the record is registered
    /// again at once.
    fn on_webtransport_address(&mut self, address: &Multiaddr, added: bool) {
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

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Mix(event)) => self.on_mix_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(event)) => {
                self.on_rendezvous_event(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // Forward only what decodes as a WakuMessage (nwaku's relay validator).
                let decoded = waku::decode_waku_message(&message.data);
                let verdict = if decoded.is_ok() {
                    gossipsub::MessageAcceptance::Accept
                } else {
                    tracing::debug!(peer = %propagation_source, "undecodable Waku message on relay: rejected");
                    gossipsub::MessageAcceptance::Reject
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
                if let Ok(msg) = decoded {
                    self.metrics.relay_message_received();
                    let _ = self.messages.send((message.topic.into_string(), msg));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info
                    .protocols
                    .iter()
                    .any(|p| p.as_ref() == mix_discovery::PROTOCOL_NAME)
                    && self.discovery.points.insert(peer_id)
                {
                    tracing::debug!(peer = %peer_id, "rendezvous point connected");
                    // A new rendezvous point: register and look up there now.
                    self.discovery.schedule.hurry(Instant::now());
                }
                // Remember where peers listen, so forward-mode exits and streams can dial them.
                for addr in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            SwarmEvent::NewListenAddr { address, .. }
                if mix_webtransport::is_webtransport(&address) =>
            {
                self.on_webtransport_address(&address, true);
            }
            SwarmEvent::ExpiredListenAddr { address, .. }
                if mix_webtransport::is_webtransport(&address) =>
            {
                self.on_webtransport_address(&address, false);
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.dials.settled(&peer_id);
                self.metrics
                    .set_connected_peers(self.swarm.connected_peers().count());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                cause,
                num_established,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, num_established, "connection closed");
                if num_established == 0 {
                    self.discovery.points.remove(&peer_id);
                }
                self.metrics
                    .set_connected_peers(self.swarm.connected_peers().count());
            }
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                ..
            } if cause
                .downcast_ref::<connection_limits::Exceeded>()
                .is_some()
                || cause
                    .downcast_ref::<crate::ip_limits::PerIpExceeded>()
                    .is_some() =>
            {
                self.metrics.connection_denied();
            }
            _ => {}
        }
    }

    fn on_discovery_tick(&mut self) {
        let now = Instant::now();
        self.dials.expire(&self.limits, STALE_DIAL, now);
        self.metrics.set_pending_dials(self.dials.pending());
        if let Ok(mut peers) = self.mix_peers.write() {
            peers.clear();
            peers.extend(self.sender.client().nodes().map(|n| n.peer_id));
        }
        if let Some(registry) = self.swarm.behaviour().rendezvous.registry() {
            self.metrics.set_rendezvous_registrations(registry.len());
        }
        if self.discovery.schedule.register_due(now) {
            self.register_round(now);
        }
        if self.discovery.lookup
            && !self.discovery.rounds.in_flight()
            && self.discovery.schedule.discover_due(now)
        {
            self.lookup_round(now);
        }
    }

    /// Signs a fresh record and registers it at every rendezvous point (and at ourselves if
    /// we serve).
    fn register_round(&mut self, now: Instant) {
        let d = &mut self.discovery;
        let record = MixRecord {
            peer_id: self.peer_id,
            seq: unix_seconds(),
            addrs: d.record_addrs.clone(),
            mix_key: d.mix_public,
        };
        let envelope = match record.sign(&d.identity) {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(%error, "cannot sign our peer record");
                d.schedule.registered(now, false);
                return;
            }
        };
        let ttl = d.schedule.ttl;
        let namespace = d.namespace.clone();
        let rendezvous = &mut self.swarm.behaviour_mut().rendezvous;
        let local = rendezvous.registry().is_some();
        if let Err(refusal) =
            rendezvous.register_locally(self.peer_id, &namespace, envelope.clone(), ttl)
        {
            tracing::warn!(?refusal, "our own registry refused our record");
        }
        d.registering = 0;
        d.registered_any = false;
        let points = d.points.iter().copied().sample(&mut self.rng, REGISTER_AT);
        for point in points {
            rendezvous.register(point, &namespace, envelope.clone(), ttl);
            d.registering += 1;
        }
        if d.registering == 0 {
            // Nobody to register with yet: try again later (a point connecting makes it due).
            d.schedule.registered(now, local);
        } else {
            d.schedule.registering(now);
        }
    }

    fn on_rendezvous_event(&mut self, event: mix_discovery::Event) {
        let now = Instant::now();
        match event {
            mix_discovery::Event::Registered { peer, ttl, .. } => {
                tracing::debug!(%peer, ?ttl, "registered at the rendezvous point");
                self.metrics.discovery_event("registered");
                self.discovery.registered_any = true;
                self.register_answered(now);
            }
            mix_discovery::Event::RegisterFailed { peer, error, .. } => {
                tracing::debug!(%peer, %error, "registration failed");
                self.metrics.discovery_event("register_failed");
                self.register_answered(now);
            }
            mix_discovery::Event::Discovered {
                peer,
                records,
                rejected,
                cookie,
                full,
                ..
            } => {
                for _ in 0..rejected {
                    self.metrics.discovery_event("record_rejected");
                }
                for _ in 0..records.len() {
                    self.metrics.discovery_event("record_found");
                }
                self.on_lookup_page(peer, records, full, cookie, now);
            }
            mix_discovery::Event::DiscoverFailed { peer, error, .. } => {
                tracing::debug!(%peer, %error, "lookup failed");
                self.metrics.discovery_event("lookup_failed");
                self.on_lookup_failed(peer, error.to_string(), now);
            }
            mix_discovery::Event::Served { what, .. } => match what {
                mix_discovery::Served::Registered { .. } => {
                    self.metrics.discovery_event("served_registration");
                }
                mix_discovery::Served::Discovered { .. } => {
                    self.metrics.discovery_event("served_lookup");
                }
                mix_discovery::Served::Refused(_) | mix_discovery::Served::Malformed => {
                    self.metrics.discovery_event("served_refusal");
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn register_answered(&mut self, now: Instant) {
        let d = &mut self.discovery;
        d.registering = d.registering.saturating_sub(1);
        if d.registering == 0 {
            d.schedule.registered(now, d.registered_any);
        }
    }

    fn on_mix_event(&mut self, event: mix_libp2p::Event) {
        match event {
            mix_libp2p::Event::Received { peer, frame } => {
                self.metrics.packet_received();
                self.on_packet(frame.packet, Some(peer));
            }
            mix_libp2p::Event::Dropped { reason, .. } => self.metrics.dropped(match reason {
                mix_libp2p::DropReason::Length => DropReason::Length,
                mix_libp2p::DropReason::Oversize => DropReason::Oversize,
                mix_libp2p::DropReason::StreamLimit => DropReason::StreamLimit,
                mix_libp2p::DropReason::StreamIdle => DropReason::StreamIdleClosed,
                mix_libp2p::DropReason::RateLimited => DropReason::RateLimited,
                mix_libp2p::DropReason::BadPrefix => DropReason::BadPrefix,
                mix_libp2p::DropReason::Truncated => DropReason::Truncated,
                mix_libp2p::DropReason::Stalled => DropReason::Stalled,
            }),
            mix_libp2p::Event::SendFailed {
                peer,
                frames,
                reason,
            } => {
                tracing::debug!(%peer, frames, %reason, "mix send failed");
                if reason == mix_libp2p::SendFailure::Dial {
                    self.dials.failed(peer, Instant::now());
                    self.metrics.set_pending_dials(self.dials.pending());
                }
                // Only a failed dial of our own first hop counts against a pool entry, as one
                // strike: the next hops of forwarded packets are dialed at addresses the
                // packets name, so anyone could fail them (F10). The sender tells.
                self.sender
                    .handle_send_failed(peer, frames, reason, Instant::now());
                self.drain_sender();
                for _ in 0..frames {
                    self.metrics
                        .dropped(if reason == mix_libp2p::SendFailure::QueueFull {
                            DropReason::QueueFull
                        } else {
                            DropReason::SendFailed
                        });
                }
            }
        }
    }

    /// Processes a packet from the previous hop `from` (`None`: one of our own).
    fn on_packet(&mut self, packet: Box<[u8; PACKET_LEN]>, from: Option<PeerId>) {
        match self.processor.process(&mut self.rng, unix_now_ms(), packet) {
            Decision::Forward {
                next_hop,
                delay,
                packet,
            } => {
                let delay = if delay > self.limits.max_delay {
                    self.metrics.delay_capped();
                    self.limits.max_delay
                } else {
                    delay
                };
                if delay.is_zero() {
                    self.send_packet(next_hop, packet);
                } else if self.delays.len() >= self.limits.max_delayed
                    || from
                        .is_some_and(|hop| !self.delay_shares.take(hop, self.limits.delay_share()))
                {
                    self.metrics.dropped(DropReason::QueueFull);
                } else {
                    self.delays.insert((from, next_hop, packet), delay);
                    self.metrics.set_delay_queue_depth(self.delays.len());
                }
            }
            Decision::ExitLocal { codec, surbs, body } => {
                self.metrics.exit_message(ExitKind::ExitIsDestination);
                if let Some(handler) = self.protocols.get(&codec) {
                    let (tx, rx) = if surbs.is_empty() {
                        (None, None)
                    } else {
                        let (tx, rx) = oneshot::channel();
                        (Some(tx), Some(rx))
                    };
                    let request = ExitRequest {
                        codec,
                        body,
                        reply: tx,
                    };
                    if handler.try_send(request).is_err() {
                        self.metrics.dropped(DropReason::QueueFull);
                        return;
                    }
                    if let Some(rx) = rx {
                        let exit_tx = self.exit_tx.clone();
                        let timeout = self.forward_timeout;
                        tokio::spawn(async move {
                            // No answer in time: reply empty, as for an unreachable destination.
                            let response = tokio::time::timeout(timeout, rx)
                                .await
                                .ok()
                                .and_then(Result::ok)
                                .unwrap_or_default();
                            let _ = exit_tx
                                .send(ExitResult {
                                    surbs,
                                    response,
                                    unreachable: None,
                                })
                                .await;
                        });
                    }
                } else if codec == LIGHTPUSH_PROTOCOL {
                    let response = match waku::decode_length_prefixed(&body) {
                        Ok(request) => self.handle_lightpush(request),
                        Err(_) => self.handle_lightpush(&[0xff]),
                    };
                    let response = waku::encode_length_prefixed(&response);
                    for surb in &surbs {
                        self.reply_through(surb, &response);
                    }
                } else {
                    // No local handler for this codec: Nim's switch would find none either.
                    tracing::debug!(%codec, "exit message for a protocol this node does not serve");
                    self.metrics.dropped(DropReason::Malformed);
                }
            }
            Decision::ExitForward {
                destination,
                codec,
                surbs,
                body,
            } => {
                self.metrics.exit_message(ExitKind::Forward);
                self.forward_to_destination(destination, codec, surbs, body);
            }
            Decision::Reply {
                surb_id,
                mut payload,
            } => self.on_reply(surb_id, &mut payload),
            Decision::Drop(reason) => {
                if reason == DropReason::PayloadIntegrity {
                    self.mismatch.payload_integrity(self.processor.format());
                }
                self.metrics.dropped(reason);
            }
        }
    }

    fn send_packet(&mut self, next_hop: mix_core::Address, packet: Box<[u8; PACKET_LEN]>) {
        self.send_packet_after(next_hop, packet, Duration::ZERO);
    }

    /// [`Node::send_packet`] after `hold` (upstream's sender hold, for SURB replies).
    fn send_packet_after(
        &mut self,
        next_hop: mix_core::Address,
        packet: Box<[u8; PACKET_LEN]>,
        hold: Duration,
    ) {
        let Ok(peer) = mix_libp2p::peer_id(&next_hop.peer_id) else {
            self.metrics.dropped(DropReason::Malformed);
            return;
        };
        if peer == self.peer_id {
            self.metrics.packet_forwarded();
            self.local.push_back(packet);
            return;
        }
        let addr = mix_libp2p::to_multiaddr(&next_hop);
        if !self.swarm.behaviour().mix.is_connected(&peer) {
            if let Err(why) = self.dials.admit(&self.limits, peer, &addr, Instant::now()) {
                tracing::trace!(?why, "next hop not dialed");
                self.metrics.dropped(DropReason::DialRefused);
                return;
            }
            self.metrics.set_pending_dials(self.dials.pending());
        }
        self.metrics.packet_forwarded();
        self.swarm
            .behaviour_mut()
            .mix
            .send_after(peer, vec![addr], Frame::new(packet), hold);
    }

    fn reply_through(&mut self, surb: &Surb, response: &[u8]) {
        let mut packet = Box::new([0u8; PACKET_LEN]);
        let body = if response.len() > surb.format().max_reply_len() {
            tracing::debug!(
                len = response.len(),
                "response too long for a SURB: replying empty"
            );
            &[][..]
        } else {
            response
        };
        if surb
            .build_reply(&mut self.rng, body, packet.as_mut_slice())
            .is_err()
        {
            self.metrics.dropped(DropReason::Malformed);
            return;
        }
        if self.tamper_replies {
            // The first byte of δ: within the zero prefix the sender checks.
            packet[mix_core::HEADER_LEN] ^= 0x01;
        }
        self.metrics.reply_sent();
        let hold = self.sender_hold.map_or(Duration::ZERO, |mean| {
            mix_libp2p::sample_sender_hold(mean, &mut self.rng)
        });
        self.send_packet_after(*surb.first_hop(), packet, hold);
    }

    fn handle_lightpush(&mut self, request: &[u8]) -> LightPushResponse {
        // One budget for every publish from this relay's identity, direct or through the
        // mixnet (audit F13); beyond it, nwaku's 429.
        if !self
            .publish_budget
            .try_acquire(self.peer_id, Instant::now())
        {
            self.metrics
                .lightpush_result(waku::StatusCode::TooManyRequests.code());
            return LightPushResponse {
                request_id: "N/A".to_owned(),
                status_code: waku::StatusCode::TooManyRequests.code(),
                status_desc: Some("publish rate limit".to_owned()),
                relay_peer_count: None,
            };
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        let response = self.lightpush.handle(request, |topic, message| {
            let hash = TopicHash::from_raw(topic);
            let peers = topic_peer_count(gossipsub, &hash);
            let mut message = message.clone();
            if message.timestamp.unwrap_or(0) == 0 {
                let now_ns = i64::try_from(unix_now_ms())
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000);
                message.timestamp = Some(now_ns);
            }
            let result = gossipsub.publish(hash, message.encode_to_vec());
            PublishOutcome::from_gossipsub(&result, u32::try_from(peers).unwrap_or(u32::MAX))
        });
        self.metrics.lightpush_result(response.status_code);
        response
    }

    fn forward_to_destination(
        &mut self,
        destination: mix_core::Address,
        codec: String,
        surbs: Vec<Surb>,
        body: Vec<u8>,
    ) {
        let Ok(peer) = mix_libp2p::peer_id(&destination.peer_id) else {
            self.metrics.dropped(DropReason::Malformed);
            return;
        };
        let addr = mix_libp2p::to_multiaddr(&destination);
        // Nim reads a reply only for lightpush (MIX.md §7.2); an open proxy to any protocol
        // at any address is not a service this relay offers.
        if !self.limits.forwards(&codec)
            || !self.limits.dialable(&addr)
            || self.forward_in_flight.load(Ordering::Relaxed) >= self.limits.max_forward_in_flight
        {
            self.metrics.dropped(DropReason::ExitRefused);
            return;
        }
        if self
            .dials
            .recently_failed(&self.limits, &addr, Instant::now())
        {
            // Unreachable a moment ago: answer as for an unreachable destination (empty, as
            // Nim), without dialing again.
            self.metrics.dropped(DropReason::ExitRefused);
            for surb in &surbs {
                self.reply_through(surb, &[]);
            }
            return;
        }
        self.swarm.add_peer_address(peer, addr.clone());
        let control = self.control.clone();
        let in_flight = InFlight::enter(&self.forward_in_flight);
        let exit_tx = self.exit_tx.clone();
        let timeout = self.forward_timeout;
        tokio::spawn(async move {
            let want_reply = !surbs.is_empty();
            let outcome =
                tokio::time::timeout(timeout, exchange(control, peer, codec, body, want_reply))
                    .await
                    .ok()
                    .and_then(Result::ok);
            drop(in_flight);
            let unreachable = outcome.is_none().then_some(addr);
            // Nim replies with an empty response when the destination cannot be reached.
            let response = outcome.unwrap_or_default();
            if want_reply || unreachable.is_some() {
                let surbs = if want_reply { surbs } else { Vec::new() };
                let _ = exit_tx
                    .send(ExitResult {
                        surbs,
                        response,
                        unreachable,
                    })
                    .await;
            }
        });
    }
}

/// Forward mode: one request to the destination on a new stream for `codec`, and its
/// length-prefixed response with the prefix kept (MIX.md §7.2, Nim's `readLp` behaviour).
async fn exchange(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    codec: String,
    body: Vec<u8>,
    want_reply: bool,
) -> anyhow::Result<Vec<u8>> {
    let protocol = StreamProtocol::try_from_owned(codec)?;
    let mut stream = control.open_stream(peer, protocol).await?;
    stream.write_all(&body).await?;
    stream.flush().await?;
    if !want_reply {
        stream.close().await?;
        return Ok(Vec::new());
    }
    let body = read_length_prefixed(&mut stream, mix_core::MAX_REPLY_LEN).await?;
    let _ = stream.close().await;
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let mut response = unsigned_varint::encode::usize(body.len(), &mut prefix).to_vec();
    response.extend_from_slice(&body);
    Ok(response)
}

/// How many gossipsub peers are subscribed to `topic` (the lightpush `relay_peer_count`).
fn topic_peer_count(gossipsub: &gossipsub::Behaviour, topic: &TopicHash) -> usize {
    gossipsub
        .all_peers()
        .filter(|(_, topics)| topics.contains(&topic))
        .count()
}

/// Reads one `uvarint(len) ‖ bytes` frame of at most `max` bytes and returns the bytes.
async fn read_length_prefixed(stream: &mut libp2p::Stream, max: usize) -> anyhow::Result<Vec<u8>> {
    let len = unsigned_varint::aio::read_usize(&mut *stream).await?;
    anyhow::ensure!(
        len <= max,
        "a frame of {len} bytes exceeds the limit of {max}"
    );
    let mut bytes = vec![0u8; len];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Runs one request/response exchange on an inbound stream for at most 10 s, logging (at debug
/// level) why it failed; the peer learns nothing but the closed stream.
async fn serve_exchange(what: &str, exchange: impl Future<Output = anyhow::Result<()>>) {
    if let Ok(Err(error)) | Err(error) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(anyhow::Error::from)
    {
        tracing::debug!(%error, "{what} stream failed");
    }
}

/// Metadata exchanges served at once, at most; more streams are dropped (reset).
const METADATA_SLOTS: usize = 256;
/// Metadata exchanges one peer may have in progress; more of its streams are dropped.
const METADATA_PER_PEER: usize = 4;
/// A metadata request (at most 1 KiB) must arrive within this long.
const METADATA_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers every Waku metadata request with this node's cluster and shards (audit F15: at
/// most [`METADATA_SLOTS`] at once and [`METADATA_PER_PEER`] per peer, each request read within
/// [`METADATA_READ_TIMEOUT`], so one slow peer cannot hold every slot; the task ends when the
/// relay stops).
async fn serve_metadata(mut streams: libp2p_stream::IncomingStreams, response: Vec<u8>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(METADATA_SLOTS));
    let per_peer: Arc<std::sync::Mutex<HashMap<PeerId, usize>>> = Arc::default();
    while let Some((peer, mut stream)) = streams.next().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let admitted = per_peer.lock().is_ok_and(|mut held| {
            let n = held.entry(peer).or_insert(0);
            if *n >= METADATA_PER_PEER {
                false
            } else {
                *n += 1;
                true
            }
        });
        if !admitted {
            continue;
        }
        let response = response.clone();
        let per_peer = per_peer.clone();
        tokio::spawn(async move {
            serve_exchange("metadata", async {
                tokio::time::timeout(
                    METADATA_READ_TIMEOUT,
                    read_length_prefixed(&mut stream, waku::metadata::MAX_METADATA_LEN),
                )
                .await??;
                stream.write_all(&response).await?;
                stream.close().await?;
                Ok(())
            })
            .await;
            if let Ok(mut held) = per_peer.lock()
                && let Some(n) = held.get_mut(&peer)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    held.remove(&peer);
                }
            }
            drop(slot);
        });
    }
}

/// One direct (non-mix) lightpush request on a stream: read it, answer, close.
async fn serve_lightpush_stream(
    mut stream: libp2p::Stream,
    node: mpsc::Sender<(Vec<u8>, oneshot::Sender<Vec<u8>>)>,
) {
    serve_exchange("lightpush", async {
        let request = read_length_prefixed(&mut stream, waku::MAX_FRAME_LEN).await?;
        let (tx, rx) = oneshot::channel();
        node.send((request, tx))
            .await
            .map_err(|_| anyhow::anyhow!("relay stopped"))?;
        let response = rx.await?;
        stream.write_all(&response).await?;
        stream.close().await?;
        Ok(())
    })
    .await;
}

//! What a relay needs to start: [`Settings`], where its keys come from ([`KeySource`]) and
//! how it discovers mix nodes ([`DiscoverySettings`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use libp2p::Multiaddr;
use mix_core::{Delay, DelayStrategy, Format, ReplayConfig};
use mix_discovery::{RegistryConfig, Schedule};
use mix_libp2p::{Instant, PoolConfig};

use crate::keys::{self, MixNodeEntry, NodeKeys};
use crate::limits::Limits;

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

impl KeySource {
    /// The keys: loaded from (or created in) the directory, copied, or generated.
    ///
    /// # Errors
    /// If the key directory cannot be read or written, or holds a bad key.
    pub(super) fn load(&self) -> anyhow::Result<NodeKeys> {
        Ok(match self {
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
        })
    }
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
    /// payload after building it (a tampering exit). A test hook: compiled only into debug
    /// builds and builds with the `test-hooks` feature, never into a release relay.
    #[cfg(any(debug_assertions, feature = "test-hooks"))]
    #[doc(hidden)]
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

    pub(super) fn schedule(&self, now: Instant) -> Schedule {
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
            #[cfg(any(debug_assertions, feature = "test-hooks"))]
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

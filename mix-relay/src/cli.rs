//! The command line: `mix-relay run`, `mix-relay testnet`, `mix-relay send` (clap), and the
//! TOML config file `run` reads (flags override the file).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use libp2p::{Multiaddr, PeerId};
use mix_core::{Delay, DelayStrategy, Format};
use mix_libp2p::SendOptions;
use serde::Deserialize;

use crate::keys;
use crate::node::{self, KeySource, Settings};
use crate::pool::{PoolFile, PoolNode};
use crate::waku::{self, WakuMessage};

/// A libp2p mix (Sphinx) relay and exit node serving Waku lightpush v3.
#[derive(Debug, Parser)]
#[command(name = "mix-relay", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one relay.
    Run(RunArgs),
    /// Run N relays on 127.0.0.1 and write a pool file once they are ready.
    Testnet(TestnetArgs),
    /// Send lightpush requests through a mixnet described by a pool file or found from a
    /// bootstrap relay.
    Send(SendArgs),
    /// Print this relay's Waku ENR (the same flags as `run`; the keys come from --data-dir).
    Enr(RunArgs),
    /// Tell which wire format (lip183 or v039) a set of mix nodes speaks: a request with no
    /// message through them in each format (answered 400, never published), and which comes
    /// back.
    ProbeFormat(crate::probe::ProbeArgs),
}

/// `mix-relay run`. Every flag can also be set in the `--config` TOML file, under the same
/// name (e.g. `tcp-port = 60000`, `mixnode = ["…"]`); flags win.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunArgs {
    /// A TOML file with any of these settings.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where the keys and the replay store live [default: ./mix-relay-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The IPv4 address to listen on [default: 0.0.0.0].
    #[arg(long)]
    pub listen_ip: Option<Ipv4Addr>,
    /// TCP port [default: 60000].
    #[arg(long)]
    pub tcp_port: Option<u16>,
    /// WebSocket port (none by default).
    #[arg(long)]
    pub ws_port: Option<u16>,
    /// QUIC-v1 UDP port (none by default).
    #[arg(long)]
    pub quic_port: Option<u16>,
    /// libp2p WebTransport UDP port (none by default): browsers dial
    /// `/ip4/…/udp/<port>/quic-v1/webtransport/certhash/…` by IP, no CA certificate needed.
    #[arg(long)]
    pub webtransport_port: Option<u16>,
    /// Seconds between WebTransport certificate rotations (each certificate is valid 12
    /// days; at most 515,400) [default: 432000, 5 days].
    #[arg(long)]
    pub webtransport_rotate_secs: Option<u64>,
    /// An address to advertise (repeatable); required when listening on 0.0.0.0.
    #[arg(long)]
    #[serde(default)]
    pub announce: Vec<Multiaddr>,
    /// Be reachable only through this circuit relay (`/ip4/…/tcp/…/p2p/<relay>`): reserve a
    /// slot there and advertise the circuit address.
    #[arg(long)]
    pub relay_via: Option<Multiaddr>,
    /// The mix secret key, 64 hex characters (nwaku's --mixkey); overrides the stored one.
    /// Prefer the environment variable or the config file: a flag shows in the process list
    /// and the shell history.
    #[arg(long, env = "MIX_RELAY_MIXKEY", hide_env_values = true)]
    pub mixkey: Option<String>,
    /// A static mix pool entry `<multiaddr>:<64-hex X25519 public key>` (repeatable).
    #[arg(long)]
    #[serde(default)]
    pub mixnode: Vec<String>,
    /// A peer to connect to at start, for the Waku relay mesh (repeatable).
    #[arg(long)]
    #[serde(default)]
    pub peer: Vec<Multiaddr>,
    /// The Waku cluster id [default: 2].
    #[arg(long)]
    pub cluster_id: Option<u16>,
    /// A shard to relay and serve (repeatable) [default: 0].
    #[arg(long)]
    #[serde(default)]
    pub shard: Vec<u16>,
    /// Serve Prometheus metrics at http://<addr>/metrics.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
    /// Mean per-hop delay in ms for the exponential strategy; 0 selects Nim's default
    /// no-sampling strategy (0–2 ms) [default: 0].
    #[arg(long)]
    pub mean_delay_ms: Option<u16>,
    /// The network's wire format: `lip183` (LIONESS payload, current upstream and
    /// logos-delivery master) or `v039` (AES-CTR payload, logos-delivery v0.39 and older
    /// fleets). Every node of a network must use the same; nothing on the wire tells them
    /// apart [default: lip183].
    #[arg(long, value_parser = parse_format)]
    #[serde(default, deserialize_with = "deserialize_format")]
    pub mix_format: Option<Format>,
    /// Mean of the exponential hold, in ms, before this node writes its SURB replies and its
    /// own first-hop packets (upstream's sender hold); 0 for none [default: 100 with lip183,
    /// 0 with v039].
    #[arg(long)]
    pub sender_hold_ms: Option<u16>,
    /// Packets per second accepted from one peer, burst twice that [default: 1000].
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Seconds a /mix/1.0.0 frame may take to arrive once its first byte has; slower streams
    /// are closed (slow-loris peers) [default: 10].
    #[arg(long)]
    pub frame_timeout_secs: Option<u64>,
    /// Inbound /mix/1.0.0 streams one connection may hold; at the limit a new stream closes
    /// the one idle longest (`stream_idle_closed`) [default: 256].
    #[arg(long)]
    pub max_streams_per_connection: Option<usize>,
    /// Seconds an inbound /mix/1.0.0 stream may wait between frames before it is closed
    /// (`stream_idle_closed`; nothing is lost) [default: 300].
    #[arg(long)]
    pub stream_idle_timeout_secs: Option<u64>,
    /// Established connections one peer may hold [default: 8].
    #[arg(long)]
    pub max_connections_per_peer: Option<u32>,
    /// Let packets make this relay dial loopback, private and other non-global IPv4 addresses
    /// (next hops, SURB first hops, forward-mode destinations): for local testnets only.
    #[arg(long)]
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// Packet-caused outbound dials in progress at once [default: 256].
    #[arg(long)]
    pub max_pending_dials: Option<usize>,
    /// The longest per-hop mixing delay honoured, ms; longer encoded delays are cut to it
    /// [default: 2000].
    #[arg(long)]
    pub max_delay_ms: Option<u64>,
    /// Packets waiting out their delay, at most; one previous hop holds at most an eighth
    /// [default: 32768].
    #[arg(long)]
    pub max_delayed: Option<usize>,
    /// A codec a forward-mode exit serves (repeatable) [default: /vac/waku/lightpush/3.0.0].
    #[arg(long)]
    #[serde(default)]
    pub forward_codec: Vec<String>,
    /// Lightpush publishes per second from this relay, all senders together (burst twice
    /// that); beyond it requests are answered 429; 0 for no limit [default: 100].
    #[arg(long)]
    pub max_publish_rate: Option<u32>,
    /// Incoming connections from one IP address (pending or established) [default: 128].
    #[arg(long)]
    pub max_connections_per_ip: Option<usize>,
    /// Replay tags the exact, persisted store holds; beyond it they go to the overflow Bloom
    /// filter [default: 4194304].
    #[arg(long)]
    pub replay_capacity: Option<usize>,
}

impl RunArgs {
    fn merge(self, file: Self) -> Self {
        fn list<T>(cli: Vec<T>, file: Vec<T>) -> Vec<T> {
            if cli.is_empty() { file } else { cli }
        }
        Self {
            config: self.config,
            data_dir: self.data_dir.or(file.data_dir),
            listen_ip: self.listen_ip.or(file.listen_ip),
            tcp_port: self.tcp_port.or(file.tcp_port),
            ws_port: self.ws_port.or(file.ws_port),
            quic_port: self.quic_port.or(file.quic_port),
            webtransport_port: self.webtransport_port.or(file.webtransport_port),
            webtransport_rotate_secs: self
                .webtransport_rotate_secs
                .or(file.webtransport_rotate_secs),
            announce: list(self.announce, file.announce),
            relay_via: self.relay_via.or(file.relay_via),
            mixkey: self.mixkey.or(file.mixkey),
            mixnode: list(self.mixnode, file.mixnode),
            peer: list(self.peer, file.peer),
            cluster_id: self.cluster_id.or(file.cluster_id),
            shard: list(self.shard, file.shard),
            metrics: self.metrics.or(file.metrics),
            mean_delay_ms: self.mean_delay_ms.or(file.mean_delay_ms),
            mix_format: self.mix_format.or(file.mix_format),
            sender_hold_ms: self.sender_hold_ms.or(file.sender_hold_ms),
            rate_limit: self.rate_limit.or(file.rate_limit),
            frame_timeout_secs: self.frame_timeout_secs.or(file.frame_timeout_secs),
            max_streams_per_connection: self
                .max_streams_per_connection
                .or(file.max_streams_per_connection),
            stream_idle_timeout_secs: self
                .stream_idle_timeout_secs
                .or(file.stream_idle_timeout_secs),
            max_connections_per_peer: self
                .max_connections_per_peer
                .or(file.max_connections_per_peer),
            allow_private_addresses: self.allow_private_addresses || file.allow_private_addresses,
            max_pending_dials: self.max_pending_dials.or(file.max_pending_dials),
            max_delay_ms: self.max_delay_ms.or(file.max_delay_ms),
            max_delayed: self.max_delayed.or(file.max_delayed),
            forward_codec: list(self.forward_codec, file.forward_codec),
            replay_capacity: self.replay_capacity.or(file.replay_capacity),
            max_connections_per_ip: self.max_connections_per_ip.or(file.max_connections_per_ip),
            max_publish_rate: self.max_publish_rate.or(file.max_publish_rate),
        }
    }

    /// The settings these flags (and the config file they name) give.
    ///
    /// # Errors
    /// If the file cannot be read or a value is invalid.
    pub fn settings(self) -> anyhow::Result<Settings> {
        let args = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the config file {}", path.display()))?;
                let file: Self = toml::from_str(&text)
                    .with_context(|| format!("in the config file {}", path.display()))?;
                if file.mixkey.is_some() {
                    check_secret_file_mode(path)?;
                }
                self.merge(file)
            }
            None => self,
        };
        let data_dir = args
            .data_dir
            .unwrap_or_else(|| PathBuf::from("mix-relay-data"));
        let listen_ip = args.listen_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if listen_ip.is_unspecified() && args.announce.is_empty() && args.relay_via.is_none() {
            anyhow::bail!(
                "listening on 0.0.0.0 needs --announce /ip4/<public IPv4>/tcp/<port>: SURBs and pool entries must carry a dialable address"
            );
        }
        let mixnodes = args
            .mixnode
            .iter()
            .map(|m| keys::parse_mixnode(m).with_context(|| format!("--mixnode {m}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut settings = Settings::local();
        settings.replay_file = Some(data_dir.join("replay-tags.bin"));
        settings.keys = KeySource::Dir {
            dir: data_dir,
            mixkey: args.mixkey,
        };
        settings.listen_ip = listen_ip;
        settings.tcp_port = args.tcp_port.unwrap_or(60000);
        settings.ws_port = args.ws_port;
        settings.quic_port = args.quic_port;
        settings.webtransport_port = args.webtransport_port;
        if let Some(secs) = args.webtransport_rotate_secs {
            settings.webtransport_rotate_every = Duration::from_secs(secs);
        }
        settings.announce = args.announce;
        settings.relay_via = args.relay_via;
        settings.mixnodes = mixnodes;
        settings.peers = args.peer;
        settings.cluster_id = args.cluster_id.unwrap_or(2);
        settings.shards = if args.shard.is_empty() {
            vec![0]
        } else {
            args.shard
        };
        settings.metrics_addr = args.metrics;
        settings.delay = delay_strategy(args.mean_delay_ms.unwrap_or(0));
        settings.format = args.mix_format.unwrap_or_default();
        settings.sender_hold = sender_hold(settings.format, args.sender_hold_ms);
        // 1000/s is about 4.6 MB/s from one peer, and fills no more than a quarter of the
        // replay store's exact capacity in an hour.
        let rate = args.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT);
        settings.mix = settings
            .mix
            .with_rate_limit(rate, rate.saturating_mul(2).max(1));
        let mut limits = crate::limits::Limits {
            allow_private_addresses: args.allow_private_addresses,
            ..crate::limits::Limits::default()
        };
        if let Some(n) = args.max_pending_dials {
            anyhow::ensure!(n > 0, "--max-pending-dials must be at least 1");
            limits.max_pending_dials = n;
        }
        if let Some(ms) = args.max_delay_ms {
            limits.max_delay = Duration::from_millis(ms);
        }
        if let Some(n) = args.max_delayed {
            anyhow::ensure!(n > 0, "--max-delayed must be at least 1");
            limits.max_delayed = n;
        }
        if let Some(rate) = args.max_publish_rate {
            limits.max_publish_rate = rate;
        }
        if !args.forward_codec.is_empty() {
            limits.forward_codecs = args.forward_codec;
        }
        settings.limits = limits;
        if let Some(n) = args.max_connections_per_ip {
            anyhow::ensure!(n > 0, "--max-connections-per-ip must be at least 1");
            settings.max_connections_per_ip = n;
        }
        if let Some(n) = args.replay_capacity {
            anyhow::ensure!(n > 0, "--replay-capacity must be at least 1");
            settings.replay.capacity = n;
        }
        if let Some(secs) = args.frame_timeout_secs {
            anyhow::ensure!(secs > 0, "--frame-timeout-secs must be at least 1");
            settings.mix = settings.mix.with_frame_timeout(Duration::from_secs(secs));
        }
        if let Some(n) = args.max_streams_per_connection {
            anyhow::ensure!(n > 0, "--max-streams-per-connection must be at least 1");
            settings.mix = settings.mix.with_max_inbound_streams(n);
        }
        if let Some(secs) = args.stream_idle_timeout_secs {
            anyhow::ensure!(secs > 0, "--stream-idle-timeout-secs must be at least 1");
            settings.mix = settings
                .mix
                .with_stream_idle_timeout(Duration::from_secs(secs));
        }
        if let Some(n) = args.max_connections_per_peer {
            anyhow::ensure!(n > 0, "--max-connections-per-peer must be at least 1");
            settings.max_connections_per_peer = n;
        }
        Ok(settings)
    }
}

/// A config file that holds the mix secret key must not be readable by group or others.
fn check_secret_file_mode(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading the mode of {}", path.display()))?
            .permissions()
            .mode()
            & 0o7777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "the config file {} holds the mix key (mixkey) and is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `--mix-format`'s parser: `lip183` or `v039`, any case.
fn parse_format(text: &str) -> Result<Format, String> {
    text.parse::<Format>().map_err(|e| e.to_string())
}

fn deserialize_format<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Format>, D::Error> {
    let text = String::deserialize(d)?;
    parse_format(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The sender hold `--sender-hold-ms` asks for, or the format's default (upstream's).
fn sender_hold(format: Format, ms: Option<u16>) -> Option<Delay> {
    match ms {
        Some(0) => None,
        Some(ms) => Some(Delay::from_millis(ms)),
        None => Settings::default_sender_hold(format),
    }
}

/// `--rate-limit`'s default, packets per second from one peer.
const DEFAULT_RATE_LIMIT: u32 = 1000;

fn delay_strategy(mean_ms: u16) -> DelayStrategy {
    if mean_ms == 0 {
        DelayStrategy::NoSampling
    } else {
        DelayStrategy::exponential(Delay::from_millis(mean_ms))
    }
}

/// `mix-relay testnet`.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// How many relays (at least 4: a 3-hop path plus SURB hops).
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Node i listens on TCP base-port + 2i and WebSocket base-port + 2i + 1 (0: any free
    /// ports).
    #[arg(long, default_value_t = 60000)]
    pub base_port: u16,
    /// Where to write the pool (JSON) once every node is ready.
    #[arg(long)]
    pub pool_file: PathBuf,
    /// Keep keys and replay stores under this directory (node-<i>/); ephemeral otherwise.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The Waku cluster id.
    #[arg(long, default_value_t = 2)]
    pub cluster_id: u16,
    /// The shard the relays serve.
    #[arg(long, default_value_t = 0)]
    pub shard: u16,
    /// Serve node i's metrics on 127.0.0.1:<metrics-base-port + i>.
    #[arg(long)]
    pub metrics_base_port: Option<u16>,
    /// Mean per-hop delay in ms (exponential); 0 for Nim's default 0–2 ms.
    #[arg(long, default_value_t = 0)]
    pub mean_delay_ms: u16,
    /// The wire format every relay speaks: `lip183` or `v039` (written into the pool file).
    #[arg(long, value_parser = parse_format, default_value = "lip183")]
    pub mix_format: Format,
    /// Mean sender hold in ms (see `run --sender-hold-ms`) [default: the format's].
    #[arg(long)]
    pub sender_hold_ms: Option<u16>,
    /// Fault injection for tests: every node, as an exit, tampers with the replies it sends.
    #[arg(long, hide = true)]
    pub tamper_replies: bool,
    /// Relays know only node 0 (the bootstrap) and find each other through Waku rendezvous,
    /// instead of being given the whole pool.
    #[arg(long)]
    pub discovery: bool,
    /// Node i also listens on libp2p WebTransport (UDP base-port + 2i; any free port with
    /// base-port 0), advertised with its certhashes in the pool file.
    #[arg(long)]
    pub webtransport: bool,
    /// Seconds between WebTransport certificate rotations; the pool file is rewritten with
    /// the new addresses after each [default: 432000, 5 days].
    #[arg(long)]
    pub webtransport_rotate_secs: Option<u64>,
}

impl TestnetArgs {
    /// `nodes` relays on free ports of 127.0.0.1, cluster 2, shard 0, Nim's default delays, no
    /// files: what in-process tests and demos use.
    pub fn local(nodes: usize) -> Self {
        Self {
            nodes,
            base_port: 0,
            pool_file: PathBuf::from("pool.json"),
            data_dir: None,
            cluster_id: 2,
            shard: 0,
            metrics_base_port: None,
            mean_delay_ms: 0,
            mix_format: Format::default(),
            sender_hold_ms: None,
            tamper_replies: false,
            discovery: false,
            webtransport: false,
            webtransport_rotate_secs: None,
        }
    }
}

/// `mix-relay send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The pool file `mix-relay testnet` wrote.
    #[arg(long, required_unless_present = "bootstrap")]
    pub pool_file: Option<PathBuf>,
    /// Instead of a pool file: a relay to start from (repeatable). The sender connects to it
    /// and finds mix nodes through Waku rendezvous.
    #[arg(long, conflicts_with = "pool_file")]
    pub bootstrap: Vec<Multiaddr>,
    /// With --bootstrap: the Waku cluster whose mix namespace to look up.
    #[arg(long, default_value_t = 2)]
    pub cluster_id: u16,
    /// The network's wire format, `lip183` or `v039` [default: the pool file's, else lip183].
    #[arg(long, value_parser = parse_format)]
    pub mix_format: Option<Format>,
    /// Mean sender hold in ms before each first-hop write (see `run --sender-hold-ms`)
    /// [default: the format's].
    #[arg(long)]
    pub sender_hold_ms: Option<u16>,
    /// The per-hop delay to encode, as the network's nodes sample it (see `run
    /// --mean-delay-ms`; a sender that encodes other delays than the network's own senders
    /// stands out to every hop) [default: the pool file's, else 0, Nim's 0–2 ms].
    #[arg(long)]
    pub mean_delay_ms: Option<u16>,
    /// With --bootstrap: wait until the pool holds this many nodes (at most 30 s).
    #[arg(long, default_value_t = 4)]
    pub min_pool: usize,
    /// The pubsub topic, `/waku/2/rs/<cluster>/<shard>`.
    #[arg(long)]
    pub pubsub_topic: String,
    /// The content topic, e.g. `/my-app/1/chat/proto`.
    #[arg(long)]
    pub content_topic: String,
    /// The message text (the `WakuMessage` payload).
    #[arg(long)]
    pub message: String,
    /// How many requests.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// SURBs per request (1–4; the service answers through each, the first wins).
    #[arg(long, default_value_t = 1)]
    pub surbs: usize,
    /// Give up on a reply after this many ms.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Copies of each request on disjoint paths.
    #[arg(long, default_value_t = 1)]
    pub redundancy: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// One JSON line per request: `{"status":…, "latency_ms":…, …}`.
    #[arg(long)]
    pub json: bool,
}

/// SIGINT and SIGTERM, registered when created (so a signal that arrives while the relay starts
/// is not lost to the default action).
struct Interrupts {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
                term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `mix-relay run`.
///
/// # Errors
/// If the relay cannot start.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let mut interrupts = Interrupts::new()?;
    let relay = node::start(settings).await?;
    let entry = PoolNode::from_relay(&relay);
    tracing::info!(mixnode = %entry.mixnode, "ready; pool entry for senders and nwaku's --mixnode");
    interrupts.wait().await;
    tracing::info!("shutting down");
    relay.shutdown().await;
    Ok(())
}

/// `mix-relay enr`: prints the ENR `run` would advertise with the same flags, without
/// starting (the keys are loaded from, or created in, the data directory).
///
/// # Errors
/// If the keys cannot be loaded or the record does not fit in 300 bytes.
pub fn enr(args: RunArgs) -> anyhow::Result<()> {
    use libp2p::multiaddr::Protocol;
    let settings = args.settings()?;
    let KeySource::Dir { dir, mixkey } = &settings.keys else {
        anyhow::bail!("no data directory");
    };
    let (keys, _) = keys::load_or_create(dir, mixkey.as_deref())
        .with_context(|| format!("loading the keys in {}", dir.display()))?;
    let addrs: Vec<Multiaddr> = if settings.announce.is_empty() {
        let ip = Multiaddr::empty().with(Protocol::Ip4(settings.listen_ip));
        let mut addrs = vec![ip.clone().with(Protocol::Tcp(settings.tcp_port))];
        if let Some(port) = settings.ws_port {
            addrs.push(
                ip.clone()
                    .with(Protocol::Tcp(port))
                    .with(Protocol::Ws("/".into())),
            );
        }
        if let Some(port) = settings.quic_port {
            addrs.push(ip.with(Protocol::Udp(port)).with(Protocol::QuicV1));
        }
        addrs
    } else {
        settings.announce.clone()
    };
    let record = node::waku_enr(&keys, &addrs, settings.cluster_id, &settings.shards)?;
    println!("{record}");
    Ok(())
}

/// Starts the relays of a testnet, meshes them and waits until each sees every other on the
/// Waku topic. Returns the handles and the pool.
///
/// # Errors
/// If a relay cannot start.
pub async fn start_testnet(
    args: &TestnetArgs,
) -> anyhow::Result<(Vec<node::RelayHandle>, PoolFile)> {
    anyhow::ensure!(
        args.nodes >= 4,
        "a testnet needs at least 4 nodes (3 hops plus the SURB path)"
    );
    let mut relays: Vec<node::RelayHandle> = Vec::with_capacity(args.nodes);
    for i in 0..args.nodes {
        let offset = u16::try_from(2 * i).context("too many nodes")?;
        let mut settings = Settings::local();
        if args.webtransport {
            // UDP: the TCP port number is free there.
            settings.webtransport_port = Some(if args.base_port == 0 {
                0
            } else {
                args.base_port
                    .checked_add(offset)
                    .context("port out of range")?
            });
        }
        if let Some(secs) = args.webtransport_rotate_secs {
            settings.webtransport_rotate_every = Duration::from_secs(secs);
        }
        if args.base_port == 0 {
            settings.ws_port = Some(0);
        } else {
            settings.tcp_port = args
                .base_port
                .checked_add(offset)
                .context("port out of range")?;
            settings.ws_port = Some(
                settings
                    .tcp_port
                    .checked_add(1)
                    .context("port out of range")?,
            );
        }
        settings.cluster_id = args.cluster_id;
        settings.shards = vec![args.shard];
        settings.delay = delay_strategy(args.mean_delay_ms);
        settings.format = args.mix_format;
        settings.sender_hold = sender_hold(args.mix_format, args.sender_hold_ms);
        settings.tamper_replies = args.tamper_replies;
        settings.discovery = node::DiscoverySettings::fast();
        if let Some(dir) = &args.data_dir {
            let dir = dir.join(format!("node-{i}"));
            settings.replay_file = Some(dir.join("replay-tags.bin"));
            settings.keys = KeySource::Dir { dir, mixkey: None };
        }
        if let Some(base) = args.metrics_base_port {
            let port = base
                .checked_add(u16::try_from(i)?)
                .context("port out of range")?;
            settings.metrics_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
        settings.peers = if args.discovery {
            relays
                .first()
                .and_then(|r| r.info().addrs.first().cloned())
                .into_iter()
                .collect()
        } else {
            relays
                .iter()
                .filter_map(|r| r.info().addrs.first().cloned())
                .collect()
        };
        let relay = node::start(settings)
            .await
            .with_context(|| format!("starting node {i}"))?;
        eprintln!(
            "[testnet] node {i} up: {}",
            relay
                .info()
                .addrs
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        relays.push(relay);
    }
    let infos: Vec<node::NodeInfo> = relays.iter().map(|r| r.info().clone()).collect();
    if args.discovery {
        // Every relay finds the others through node 0.
        let deadline = Duration::from_secs(30);
        for (i, relay) in relays.iter().enumerate() {
            let pool = relay.wait_for_pool(args.nodes - 1, deadline).await?;
            if pool.len() < args.nodes - 1 {
                eprintln!(
                    "[testnet] warning: node {i} discovered {} of {} relays in 30 s",
                    pool.len(),
                    args.nodes - 1
                );
            }
        }
        eprintln!("[testnet] every relay discovered the others through node 0");
    } else {
        for relay in &relays {
            let pool = infos
                .iter()
                .filter(|i| i.peer_id != relay.peer_id())
                .map(node::NodeInfo::mix_node)
                .collect::<Result<Vec<_>, _>>()?;
            relay.add_mix_nodes(pool).await?;
        }
    }
    let topic = waku::pubsub_topic(args.cluster_id, args.shard);
    // With discovery only node 0 is dialed at start; the mesh grows as relays meet.
    let want = if args.discovery { 1 } else { args.nodes - 1 };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut counts = Vec::with_capacity(relays.len());
        for relay in &relays {
            counts.push(relay.topic_peers(&topic).await?);
        }
        if counts.iter().all(|c| *c >= want) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            eprintln!(
                "[testnet] warning: relay mesh incomplete after 30 s (topic peers per node: {counts:?})"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool = PoolFile {
        format: Some(args.mix_format.to_string()),
        mean_delay_ms: Some(args.mean_delay_ms),
        cluster_id: args.cluster_id,
        shards: vec![args.shard],
        nodes: relays.iter().map(PoolNode::from_relay).collect(),
    };
    Ok((relays, pool))
}

/// `mix-relay testnet`.
///
/// # Errors
/// If a relay cannot start or the pool file cannot be written.
pub async fn testnet(args: TestnetArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut interrupts = Interrupts::new()?;
    let (relays, mut pool) = start_testnet(&args).await?;
    pool.write(&args.pool_file)?;
    eprintln!(
        "[testnet] {} relays ready in {:.1} s; pool written to {}; Ctrl-C to stop",
        relays.len(),
        started.elapsed().as_secs_f64(),
        args.pool_file.display()
    );
    use futures::StreamExt as _;
    // Rewrite the pool file whenever a relay's addresses change (WebTransport rotations).
    let changes = futures::stream::select_all(
        relays
            .iter()
            .enumerate()
            .map(|(i, r)| Box::pin(changes_of(r.watch_addrs()).map(move |()| i))),
    );
    let stop = interrupts.wait();
    tokio::pin!(stop, changes);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(i) = changes.next() => {
                if let (Some(relay), Some(entry)) = (relays.get(i), pool.nodes.get_mut(i)) {
                    *entry = PoolNode::from_relay(relay);
                    pool.write(&args.pool_file)?;
                    eprintln!("[testnet] node {i}: addresses changed (WebTransport certificate rotation); pool rewritten");
                }
            }
        }
    }
    eprintln!("[testnet] stopping");
    for relay in relays {
        relay.shutdown().await;
    }
    Ok(())
}

/// The changes of a watched value, as a stream of `()` (the first value is not a change).
fn changes_of<T: Send + Sync + 'static>(
    mut rx: tokio::sync::watch::Receiver<T>,
) -> impl futures::Stream<Item = ()> + Send {
    rx.mark_unchanged();
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok().map(|()| ((), rx))
    })
}

/// One request's outcome, as `send --json` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SendReport {
    /// Which request (0-based).
    pub index: usize,
    /// The lightpush status code, or `null` when no reply came.
    pub status: Option<u32>,
    /// Time from handing the request to the mixnet until the reply was opened.
    pub latency_ms: f64,
    /// The service's `relay_peer_count`.
    pub relay_peer_count: Option<u32>,
    /// The service node (the exit).
    pub service: String,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl SendReport {
    /// Whether the request succeeded (status 200).
    pub fn ok(&self) -> bool {
        self.status == Some(200)
    }
}

/// Runs `mix-relay send` and returns one report per request.
///
/// # Errors
/// If the pool file cannot be read or the sender node cannot start.
pub async fn send_requests(args: &SendArgs) -> anyhow::Result<Vec<SendReport>> {
    use futures::StreamExt as _;

    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!((1..=4).contains(&args.surbs), "--surbs must be 1 to 4");
    waku::parse_pubsub_topic(&args.pubsub_topic).with_context(|| {
        format!(
            "--pubsub-topic {:?} is not /waku/2/rs/<cluster>/<shard>",
            args.pubsub_topic
        )
    })?;
    anyhow::ensure!(
        !args.content_topic.is_empty(),
        "--content-topic must not be empty"
    );
    let pool = args.pool_file.as_deref().map(PoolFile::read).transpose()?;
    let pool_format = pool
        .as_ref()
        .map(PoolFile::wire_format)
        .transpose()?
        .flatten();
    // A sender only sends and looks up: no relay, no gossipsub, no rendezvous server.
    let format = args.mix_format.or(pool_format).unwrap_or_default();
    let pool_delay = pool.as_ref().and_then(|p| p.mean_delay_ms);
    let sender = crate::sender::start(crate::sender::SenderSettings {
        format,
        sender_hold: sender_hold(format, args.sender_hold_ms),
        delay: delay_strategy(args.mean_delay_ms.or(pool_delay).unwrap_or(0)),
        bootstrap: args.bootstrap.clone(),
        cluster_id: args.cluster_id,
        lookup_every: Duration::from_secs(2),
        ..crate::sender::SenderSettings::default()
    })
    .await?;
    let services: Vec<PeerId> = if let Some(pool) = &pool {
        let infos = pool.infos()?;
        anyhow::ensure!(
            infos.len() >= 3,
            "the pool has {} nodes; exit == destination needs at least 3",
            infos.len()
        );
        sender
            .add_mix_nodes(
                infos
                    .iter()
                    .map(node::NodeInfo::mix_node)
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .await?;
        infos.iter().map(|i| i.peer_id).collect()
    } else {
        let started = std::time::Instant::now();
        let want = args.min_pool.max(3);
        eprintln!(
            "discovering mix nodes through {} bootstrap relay(s)…",
            args.bootstrap.len()
        );
        let pool = sender.wait_for_pool(want, Duration::from_secs(30)).await?;
        eprintln!(
            "pool: {} mix nodes after {:.1} s",
            pool.len(),
            started.elapsed().as_secs_f64()
        );
        anyhow::ensure!(
            pool.len() >= 3,
            "discovered {} mix nodes in 30 s; exit == destination needs at least 3 (is the bootstrap address right, and does it serve /vac/waku/rendezvous/1.0.0?)",
            pool.len()
        );
        pool.iter().map(|n| n.peer_id).collect()
    };
    let options = SendOptions {
        surbs: args.surbs,
        redundancy: args.redundancy,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let sender = &sender;
    let services = &services;
    let reports: Vec<SendReport> = futures::stream::iter(0..args.count)
        .map(|index| async move {
            let service = services[rand::random_range(0..services.len())];
            let message = WakuMessage {
                payload: args.message.as_bytes().to_vec(),
                content_topic: args.content_topic.clone(),
                timestamp: Some(now_ns()),
                ..WakuMessage::default()
            };
            let started = std::time::Instant::now();
            let result = sender
                .lightpush(service, &args.pubsub_topic, message, options)
                .await;
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(response) => SendReport {
                    index,
                    status: Some(response.status_code),
                    latency_ms,
                    relay_peer_count: response.relay_peer_count,
                    service: service.to_string(),
                    error: response.status_desc.filter(|_| response.status_code != 200),
                },
                Err(e) => SendReport {
                    index,
                    status: None,
                    latency_ms,
                    relay_peer_count: None,
                    service: service.to_string(),
                    error: Some(e.to_string()),
                },
            }
        })
        .buffer_unordered(args.parallel.max(1))
        .collect()
        .await;
    Ok(reports)
}

/// Unix time in ns, as js-waku stamps messages (`Date.now()·10⁶`, here with full resolution so
/// two requests in one millisecond are different messages).
fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// `mix-relay send`: prints the reports; fails if any request failed.
///
/// # Errors
/// If any request failed, or the sender could not start.
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let reports = send_requests(&args).await?;
    let failed = reports.iter().filter(|r| !r.ok()).count();
    for r in &reports {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            match (&r.status, &r.error) {
                (Some(status), None) => println!(
                    "request {}: status {status}, relayed to {} peers, {:.1} ms (exit {})",
                    r.index,
                    r.relay_peer_count.unwrap_or(0),
                    r.latency_ms,
                    r.service
                ),
                (status, error) => println!(
                    "request {}: FAILED ({}) after {:.1} ms (exit {})",
                    r.index,
                    error.as_deref().unwrap_or(&format!("status {status:?}")),
                    r.latency_ms,
                    r.service
                ),
            }
        }
    }
    if !args.json {
        let mut lat: Vec<f64> = reports
            .iter()
            .filter(|r| r.ok())
            .map(|r| r.latency_ms)
            .collect();
        lat.sort_by(f64::total_cmp);
        if let Some(p50) = lat.get(lat.len() / 2) {
            eprintln!(
                "{} of {} delivered; median latency {p50:.1} ms",
                lat.len(),
                reports.len()
            );
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} requests failed", reports.len());
    Ok(())
}

/// Reads a pool file (for tools and tests).
///
/// # Errors
/// As [`PoolFile::read`].
pub fn read_pool(path: &Path) -> anyhow::Result<PoolFile> {
    PoolFile::read(path)
}

//! `mix-relay run` and `mix-relay enr`: the flags and config file of one relay.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use libp2p::Multiaddr;
use mix_core::{Delay, DelayStrategy, Format};
use serde::Deserialize;

use crate::keys;
use crate::node::{self, KeySource, Settings};
use crate::pool_file::PoolNode;

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
pub(super) fn check_secret_file_mode(path: &Path) -> anyhow::Result<()> {
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
pub(super) fn parse_format(text: &str) -> Result<Format, String> {
    text.parse::<Format>().map_err(|e| e.to_string())
}

pub(super) fn deserialize_format<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Format>, D::Error> {
    let text = String::deserialize(d)?;
    parse_format(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The sender hold `--sender-hold-ms` asks for, or the format's default (upstream's).
pub(super) fn sender_hold(format: Format, ms: Option<u16>) -> Option<Delay> {
    match ms {
        Some(0) => None,
        Some(ms) => Some(Delay::from_millis(ms)),
        None => Settings::default_sender_hold(format),
    }
}

/// `--rate-limit`'s default, packets per second from one peer.
pub(super) const DEFAULT_RATE_LIMIT: u32 = 1000;

pub(super) fn delay_strategy(mean_ms: u16) -> DelayStrategy {
    if mean_ms == 0 {
        DelayStrategy::NoSampling
    } else {
        DelayStrategy::exponential(Delay::from_millis(mean_ms))
    }
}

/// SIGINT and SIGTERM, registered when created (so a signal that arrives while the relay starts
/// is not lost to the default action).
pub(super) struct Interrupts {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    pub(super) fn new() -> anyhow::Result<Self> {
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

    pub(super) async fn wait(&mut self) {
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

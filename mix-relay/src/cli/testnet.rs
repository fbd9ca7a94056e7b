//! `mix-relay testnet`: N relays on 127.0.0.1 and their pool file.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use mix_core::Format;

use super::run::{Interrupts, delay_strategy, parse_format, sender_hold};
use crate::node::{self, KeySource, Settings};
use crate::pool_file::{PoolFile, PoolNode};
use crate::waku;

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
    /// Only in debug builds and builds with the `test-hooks` feature.
    #[cfg(any(debug_assertions, feature = "test-hooks"))]
    #[arg(long, hide = true)]
    #[doc(hidden)]
    pub tamper_replies: bool,
    /// Relays know only node 0 (the bootstrap) and find each other through Waku rendezvous,
    /// instead of being given the whole pool.
    #[arg(long)]
    pub discovery: bool,
    /// Seconds an inbound /mix/1.0.0 stream may wait between frames before the relay closes
    /// it (see `run --stream-idle-timeout-secs`) [default: 300].
    #[arg(long)]
    pub stream_idle_timeout_secs: Option<u64>,
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
            #[cfg(any(debug_assertions, feature = "test-hooks"))]
            tamper_replies: false,
            discovery: false,
            stream_idle_timeout_secs: None,
            webtransport: false,
            webtransport_rotate_secs: None,
        }
    }
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
        if let Some(secs) = args.stream_idle_timeout_secs {
            anyhow::ensure!(secs > 0, "--stream-idle-timeout-secs must be at least 1");
            settings.mix = settings
                .mix
                .with_stream_idle_timeout(Duration::from_secs(secs));
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
        #[cfg(any(debug_assertions, feature = "test-hooks"))]
        {
            settings.tamper_replies = args.tamper_replies;
        }
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
pub(super) fn changes_of<T: Send + Sync + 'static>(
    mut rx: tokio::sync::watch::Receiver<T>,
) -> impl futures::Stream<Item = ()> + Send {
    rx.mark_unchanged();
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok().map(|()| ((), rx))
    })
}

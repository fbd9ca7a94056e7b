//! `mix-relay send`: lightpush requests through a mixnet.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use libp2p::{Multiaddr, PeerId};
use mix_core::Format;
use mix_libp2p::SendOptions;

use super::run::{delay_strategy, parse_format, sender_hold};
use crate::node;
use crate::pool_file::PoolFile;
use crate::waku::{self, WakuMessage};

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
pub(super) fn now_ns() -> i64 {
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

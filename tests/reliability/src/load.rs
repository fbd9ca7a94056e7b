//! The sender and the open-loop load: lightpush requests at a fixed rate, whatever the replies
//! do, each timed from hand-over to the mixnet until its reply is opened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mix_core::{Delay, DelayStrategy};
use mix_libp2p::{ClientError, MixNode, PeerId, SendOptions};
use mix_relay::node::{DiscoverySettings, LightpushError, RelayHandle, Settings};
use mix_relay::waku::WakuMessage;

/// The pubsub topic of the testnet (cluster 2, shard 0).
pub(crate) const TOPIC: &str = "/waku/2/rs/2/0";

/// Starts an in-process sender (a node that neither serves nor advertises) with `pool`,
/// encoding `mean_delay_ms` per hop (0: no mixing delay at all).
pub(crate) async fn sender(pool: Vec<MixNode>, mean_delay_ms: u16) -> anyhow::Result<RelayHandle> {
    sender_with(pool, mean_delay_ms, |_| {}).await
}

/// [`sender`] with its settings adjusted by `adjust`.
pub(crate) async fn sender_with(
    pool: Vec<MixNode>,
    mean_delay_ms: u16,
    adjust: impl FnOnce(&mut Settings),
) -> anyhow::Result<RelayHandle> {
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.delay = DelayStrategy::exponential(Delay::from_millis(mean_delay_ms));
    settings.discovery = DiscoverySettings {
        serve: None,
        register: false,
        lookup: false,
        ..DiscoverySettings::default()
    };
    adjust(&mut settings);
    let sender = mix_relay::start(settings).await?;
    sender.add_mix_nodes(pool).await?;
    Ok(sender)
}

/// One request's outcome.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// Status 200 after this many ms.
    Delivered(f64),
    /// The service answered with another status.
    Status(u32),
    /// No reply within the request timeout.
    Timeout,
    /// Failed at once: the first hop of every copy could not be reached (this peer last).
    Unreachable(PeerId),
    /// Anything else (no route, a bad reply, …).
    Failed(String),
}

/// One request: when it was issued (seconds into the run), how long it took to resolve, and
/// how it ended.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) issued: f64,
    pub(crate) took: f64,
    pub(crate) outcome: Outcome,
}

/// Sends one lightpush request and times it.
pub(crate) async fn lightpush(
    sender: &RelayHandle,
    service: PeerId,
    options: SendOptions,
    text: String,
) -> (f64, Outcome) {
    let message = WakuMessage {
        payload: text.into_bytes(),
        content_topic: "/mix-reliability/1/load/proto".into(),
        timestamp: Some(now_ns()),
        ..WakuMessage::default()
    };
    let started = Instant::now();
    let result = sender.lightpush(service, TOPIC, message, options).await;
    let took = started.elapsed().as_secs_f64();
    let outcome = match result {
        Ok(r) if r.status_code == 200 => Outcome::Delivered(took * 1000.0),
        Ok(r) => Outcome::Status(r.status_code),
        Err(LightpushError::Mix(ClientError::Timeout)) => Outcome::Timeout,
        Err(LightpushError::Mix(ClientError::FirstHopUnreachable { peer, .. })) => {
            Outcome::Unreachable(peer)
        }
        Err(e) => Outcome::Failed(e.to_string()),
    };
    (took, outcome)
}

/// What to offer.
#[derive(Clone, Debug)]
pub(crate) struct Offered {
    /// Requests per second.
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    /// Services to spread the requests over (round robin).
    pub(crate) services: Vec<PeerId>,
    pub(crate) options: SendOptions,
    /// Tag for the message text.
    pub(crate) label: &'static str,
}

/// Offers `offered` and waits for every request to resolve.
pub(crate) async fn run(sender: Arc<RelayHandle>, offered: Offered) -> Vec<Record> {
    let started = Instant::now();
    let total = (offered.rate * offered.duration.as_secs_f64()).round() as usize;
    let period = Duration::from_secs_f64(1.0 / offered.rate);
    let mut tick = tokio::time::interval(period);
    // Catch up after a stall, so the offered load stays what was asked.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let progress_every = ((offered.rate * 30.0).round() as usize).max(1);
    for i in 0..total {
        tick.tick().await;
        if i > 0 && i % progress_every == 0 {
            eprintln!(
                "[load] {}: {:.0} s, {i} of {total} requests issued",
                offered.label,
                started.elapsed().as_secs_f64()
            );
        }
        let sender = sender.clone();
        let service = offered.services[i % offered.services.len()];
        let options = offered.options;
        let issued = started.elapsed().as_secs_f64();
        let text = format!("{} {i}", offered.label);
        tasks.spawn(async move {
            let (took, outcome) = lightpush(&sender, service, options, text).await;
            Record {
                issued,
                took,
                outcome,
            }
        });
    }
    let mut records = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(record) => records.push(record),
            Err(e) => records.push(Record {
                issued: 0.0,
                took: 0.0,
                outcome: Outcome::Failed(format!("task: {e}")),
            }),
        }
    }
    records.sort_by(|a, b| a.issued.total_cmp(&b.issued));
    records
}

/// Counts and latency percentiles of some records.
#[derive(Clone, Debug, Default)]
pub(crate) struct Summary {
    pub(crate) sent: usize,
    pub(crate) delivered: usize,
    pub(crate) timeouts: usize,
    /// Requests failed at once because no first hop could be reached, and those hops.
    pub(crate) unreachable: usize,
    pub(crate) unreachable_peers: Vec<PeerId>,
    pub(crate) other: usize,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    /// The longest any request took to resolve, delivered or not, in seconds.
    pub(crate) longest: f64,
    /// The first few non-timeout failures, for the report.
    pub(crate) failures: Vec<String>,
}

impl Summary {
    pub(crate) fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut s = Self::default();
        let mut latencies = Vec::new();
        for r in records {
            s.sent += 1;
            s.longest = s.longest.max(r.took);
            match &r.outcome {
                Outcome::Delivered(ms) => {
                    s.delivered += 1;
                    latencies.push(*ms);
                }
                Outcome::Timeout => s.timeouts += 1,
                Outcome::Unreachable(peer) => {
                    s.unreachable += 1;
                    if !s.unreachable_peers.contains(peer) {
                        s.unreachable_peers.push(*peer);
                    }
                }
                Outcome::Status(code) => {
                    s.other += 1;
                    if s.failures.len() < 5 {
                        s.failures.push(format!("status {code}"));
                    }
                }
                Outcome::Failed(e) => {
                    s.other += 1;
                    if s.failures.len() < 5 {
                        s.failures.push(e.clone());
                    }
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| -> f64 {
            if latencies.is_empty() {
                return f64::NAN;
            }
            let i = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            latencies[i - 1]
        };
        s.p50 = pick(0.50);
        s.p95 = pick(0.95);
        s.p99 = pick(0.99);
        s.max = latencies.last().copied().unwrap_or(f64::NAN);
        s
    }

    /// delivered / sent.
    pub(crate) fn ratio(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.delivered as f64 / self.sent as f64
    }
}

/// Unix time in ns (the message timestamp).
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

//! End-to-end relay benchmark: 5 relays and 1 sender node on 127.0.0.1 in this process, packets
//! along random 3-hop routes (3 distinct relays of the 5, exit == destination) with zero
//! mixing delay, each handed by its exit to a `/bench/1.0.0` handler registered in the bench.
//!
//! Prints forwarded hop-packets/s per core of process CPU time, wall-clock rates, the added
//! latency (p50/p99/max end to end, and p99/3 per hop) of a paced run, peak RSS and drops.
//! It asserts nothing about timing. The targets: ≥ 5,000 forwarded packets/s per core
//! and p99 added latency < 2 ms per hop at zero delay.
//!
//! `cargo bench -p mix-relay --bench relay` does the full run (a paced latency run of 2,000
//! packets at 500/s, then a throughput run of 20,000 packets). Under `cargo test --benches`
//! (no `--bench` argument) it does a tiny run of 50 packets each, to exercise the code only.
//!
//! Packets are built (about 150 µs each) before the timed phases. The sender is a 6th relay
//! that injects the frames with [`mix_relay::RelayHandle::send_frame`]; every route is warmed
//! up first so that connection set-up is not measured.

#![allow(
    clippy::cast_precision_loss,
    reason = "counts and durations become f64 for printing rates; exactness is not needed"
)]
#![allow(clippy::print_stdout, reason = "a bench binary prints its figures")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use libp2p::{Multiaddr, PeerId};
use mix_core::{Delay, DelayStrategy, Hop, PACKET_LEN, PacketBuilder, Route};
use mix_libp2p::Frame;
use mix_relay::metrics::DropReason;
use mix_relay::{RelayHandle, Settings, start};
use rand::RngExt as _;
use rand::rngs::StdRng;
use tokio::sync::mpsc;

/// The origin protocol the exits hand to the bench.
const CODEC: &str = "/bench/1.0.0";
/// Relays in the mixnet (the sender is one more node).
const RELAYS: usize = 5;
/// Hops per packet.
const HOPS: usize = 3;
/// A phase ends when no packet has been delivered for this long.
const STALL: Duration = Duration::from_secs(15);
/// The targets.
const TARGET_PER_CORE: f64 = 5_000.0;
const TARGET_P99_PER_HOP: Duration = Duration::from_millis(2);

/// A packet ready to send: its route's index and the packet.
type Built = (usize, Box<[u8; PACKET_LEN]>);

/// Sizes of a run.
struct Plan {
    /// Whether this is the full run (`cargo bench`) or the quick one (`cargo test`).
    full: bool,
    /// Packets of the throughput run.
    throughput: usize,
    /// Packets in flight at most during the throughput run.
    window: usize,
    /// Packets of the paced latency run.
    paced: usize,
    /// Their rate, packets per second.
    rate: u32,
}

/// One delivery: the sequence number in the body and when the exit handed it over.
type Delivery = (u64, Instant);

/// The outcome of one phase.
struct Phase {
    sent: usize,
    delivered: usize,
    duplicates: usize,
    /// Time from the first send to the last delivery.
    wall: Duration,
    /// Process CPU time (user + system) over the same span.
    cpu: Duration,
    /// Send-to-delivery times of the delivered packets, sorted.
    latencies: Vec<Duration>,
    /// Hop operations counted by the relays (sum of `received_count` deltas).
    relay_hops: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        Plan {
            full,
            throughput: 20_000,
            // MIX_BENCH_WINDOW: packets in flight in the throughput run.
            window: std::env::var("MIX_BENCH_WINDOW")
                .ok()
                .and_then(|w| w.parse().ok())
                .unwrap_or(4_096),
            paced: 2_000,
            rate: 500,
        }
    } else {
        Plan {
            full,
            throughput: 50,
            window: 16,
            paced: 50,
            rate: 1_000,
        }
    };
    run(&plan).await
}

fn settings() -> Settings {
    let mut s = Settings::local();
    s.delay = DelayStrategy::exponential(Delay::ZERO);
    s.shards = vec![];
    s.mix = mix_libp2p::Config::new()
        .with_rate_limit(0, 1)
        .with_max_queued_per_peer(100_000);
    s
}

async fn run(plan: &Plan) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let clk_tck = clock_ticks_per_second();
    println!(
        "mix-relay bench, {}: {RELAYS} relays + 1 sender on 127.0.0.1, {HOPS} hops, zero mixing delay",
        if plan.full {
            "full run"
        } else {
            "quick run (pass --bench for the full one)"
        }
    );
    println!(
        "machine: {cores} CPUs available; CPU time from /proc/self/stat at {} ticks/s ({})",
        clk_tck.0, clk_tck.1
    );

    let rss_before = proc_status_kb("VmRSS");
    let mut relays = Vec::with_capacity(RELAYS);
    for _ in 0..RELAYS {
        relays.push(start(settings()).await.context("starting a relay")?);
    }
    let sender = start(settings()).await.context("starting the sender")?;

    let (tx, mut deliveries) = mpsc::unbounded_channel::<Delivery>();
    for relay in &relays {
        let mut rx = relay.register_protocol(CODEC).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(request) = rx.recv().await {
                let now = Instant::now();
                let seq = request
                    .body
                    .first_chunk::<8>()
                    .map(|b| u64::from_be_bytes(*b));
                if let Some(seq) = seq
                    && tx.send((seq, now)).is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);

    let routes = all_routes(&relays)?;
    let first_hops: Vec<(PeerId, Vec<Multiaddr>)> = routes
        .iter()
        .map(|(first, _)| {
            (
                relays[*first].peer_id(),
                relays[*first].info().addrs.clone(),
            )
        })
        .collect();
    let route_defs: Vec<Route> = routes.iter().map(|(_, r)| *r).collect();
    let mut next_seq = 0u64;

    // Warm-up: one packet along every route (every sender→first hop and relay→relay link).
    let warm_start = Instant::now();
    let mut warm_ok = false;
    for _attempt in 0..3 {
        let packets = build_packets(&route_defs, (0..routes.len()).collect(), next_seq)?;
        let phase = send_phase(
            &sender,
            &relays,
            &first_hops,
            packets,
            next_seq,
            None,
            routes.len(),
            &mut deliveries,
        )
        .await?;
        next_seq += routes.len() as u64;
        if phase.delivered == phase.sent {
            warm_ok = true;
            break;
        }
    }
    anyhow::ensure!(
        warm_ok,
        "warm-up: packets along some routes were never delivered"
    );
    println!(
        "warm-up: {} routes (all ordered triples of distinct relays) in {:.2} s",
        routes.len(),
        warm_start.elapsed().as_secs_f64()
    );
    let rss_idle = proc_status_kb("VmRSS");
    let drops_before = total_drops(&relays, &sender);

    // Paced latency run (before the throughput run, whose queued packets dominate the RSS).
    let indices = random_routes(plan.paced, routes.len());
    let packets = build_packets(&route_defs, indices, next_seq)?;
    let period = Duration::from_secs(1) / plan.rate;
    let paced = send_phase(
        &sender,
        &relays,
        &first_hops,
        packets,
        next_seq,
        Some(period),
        plan.paced,
        &mut deliveries,
    )
    .await?;
    next_seq += plan.paced as u64;
    let hwm_paced = proc_status_kb("VmHWM");

    // Throughput run.
    let indices = random_routes(plan.throughput, routes.len());
    let packets = build_packets(&route_defs, indices, next_seq)?;
    let rss_built = proc_status_kb("VmRSS");
    let flood = send_phase(
        &sender,
        &relays,
        &first_hops,
        packets,
        next_seq,
        None,
        plan.window,
        &mut deliveries,
    )
    .await?;
    let hwm_end = proc_status_kb("VmHWM");
    let drops = total_drops(&relays, &sender).saturating_sub(drops_before);
    let drop_detail = drop_breakdown(&relays, &sender);

    report(
        plan,
        cores,
        &paced,
        &flood,
        Memory {
            before: rss_before,
            idle: rss_idle,
            paced_peak: hwm_paced,
            built: rss_built,
            peak: hwm_end,
        },
        drops,
        &drop_detail,
    );

    for relay in relays {
        relay.shutdown().await;
    }
    sender.shutdown().await;
    Ok(())
}

/// Every ordered triple of distinct relays, with the index of its first hop.
fn all_routes(relays: &[RelayHandle]) -> anyhow::Result<Vec<(usize, Route)>> {
    let hops = relays
        .iter()
        .map(|r| {
            let node = r.info().mix_node()?;
            Ok(Hop {
                address: node.address,
                public_key: node.public_key,
            })
        })
        .collect::<anyhow::Result<Vec<Hop>>>()?;
    let mut routes = Vec::new();
    for a in 0..hops.len() {
        for b in (0..hops.len()).filter(|&b| b != a) {
            for c in (0..hops.len()).filter(|&c| c != a && c != b) {
                routes.push((
                    a,
                    Route {
                        hops: [hops[a], hops[b], hops[c]],
                        delays: [Delay::ZERO; HOPS - 1],
                    },
                ));
            }
        }
    }
    Ok(routes)
}

fn random_routes(n: usize, routes: usize) -> Vec<usize> {
    let mut rng: StdRng = rand::make_rng();
    (0..n).map(|_| rng.random_range(0..routes)).collect()
}

/// Builds one packet per entry of `route_indices`, carrying sequence numbers from `first_seq`,
/// on every available core.
fn build_packets(
    routes: &[Route],
    route_indices: Vec<usize>,
    first_seq: u64,
) -> anyhow::Result<Vec<Built>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = route_indices.len().div_ceil(threads).max(1);
    let jobs: Vec<(u64, &[usize])> = route_indices
        .chunks(chunk)
        .enumerate()
        .map(|(i, c)| (first_seq + (i * chunk) as u64, c))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(seq0, indices)| {
                scope.spawn(move || -> anyhow::Result<Vec<Built>> {
                    let mut rng: StdRng = rand::make_rng();
                    let mut out = Vec::with_capacity(indices.len());
                    for (seq, &route) in (seq0..).zip(indices) {
                        let mut packet = Box::new([0u8; PACKET_LEN]);
                        PacketBuilder::new(&routes[route])
                            .build(&mut rng, CODEC, &seq.to_be_bytes(), packet.as_mut_slice())
                            .map_err(|e| anyhow::anyhow!("building a packet: {e:?}"))?;
                        out.push((route, packet));
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(route_indices.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a packet-building thread panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// Sends `packets` (sequence numbers `first_seq..`) from `sender`, at most `window` in flight,
/// one per `period` if paced, and collects their deliveries.
#[allow(
    clippy::too_many_arguments,
    reason = "a private helper with one caller per phase"
)]
async fn send_phase(
    sender: &RelayHandle,
    relays: &[RelayHandle],
    first_hops: &[(PeerId, Vec<Multiaddr>)],
    packets: Vec<Built>,
    first_seq: u64,
    period: Option<Duration>,
    window: usize,
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
) -> anyhow::Result<Phase> {
    let n = packets.len();
    let window = window.max(1);
    let mut sent_at: Vec<Option<Instant>> = vec![None; n];
    let mut delivered_at: Vec<Option<Instant>> = vec![None; n];
    let mut delivered = 0usize;
    let mut duplicates = 0usize;
    let mut record = |(seq, at): Delivery, delivered: &mut usize| {
        let Some(i) = seq
            .checked_sub(first_seq)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < n)
        else {
            return; // a late packet of an earlier phase
        };
        if delivered_at[i].is_some() {
            duplicates += 1;
        } else {
            delivered_at[i] = Some(at);
            *delivered += 1;
        }
    };

    let received_before: u64 = relays.iter().map(|r| r.metrics().received_count()).sum();
    let cpu_before = process_cpu();
    let start = Instant::now();
    let mut stalled = false;
    for (i, (route, packet)) in packets.into_iter().enumerate() {
        if let Some(period) = period {
            let due = start + period * u32::try_from(i).unwrap_or(u32::MAX);
            tokio::time::sleep_until(due.into()).await;
        }
        while i - delivered >= window {
            match tokio::time::timeout(STALL, deliveries.recv()).await {
                Ok(Some(d)) => record(d, &mut delivered),
                Ok(None) => anyhow::bail!("the exit handlers stopped"),
                Err(_) => {
                    stalled = true;
                    break;
                }
            }
        }
        if stalled {
            break;
        }
        while let Ok(d) = deliveries.try_recv() {
            record(d, &mut delivered);
        }
        let (peer, addrs) = &first_hops[route];
        sent_at[i] = Some(Instant::now());
        sender
            .send_frame(*peer, addrs.clone(), Frame::new(packet))
            .await?;
    }
    let sent = sent_at.iter().filter(|s| s.is_some()).count();
    while !stalled && delivered < sent {
        match tokio::time::timeout(STALL, deliveries.recv()).await {
            Ok(Some(d)) => record(d, &mut delivered),
            Ok(None) => anyhow::bail!("the exit handlers stopped"),
            Err(_) => stalled = true,
        }
    }
    let last = delivered_at.iter().flatten().max().copied();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let received_after: u64 = relays.iter().map(|r| r.metrics().received_count()).sum();
    let wall = last.map_or(Duration::ZERO, |l| l.saturating_duration_since(start));
    let mut latencies: Vec<Duration> = sent_at
        .iter()
        .zip(&delivered_at)
        .filter_map(|(s, d)| Some(d.as_ref()?.saturating_duration_since(*s.as_ref()?)))
        .collect();
    latencies.sort_unstable();
    Ok(Phase {
        sent,
        delivered,
        duplicates,
        wall,
        cpu,
        latencies,
        relay_hops: received_after.saturating_sub(received_before),
    })
}

/// Resident-set figures in KiB (`None` where /proc is unavailable).
struct Memory {
    before: Option<u64>,
    idle: Option<u64>,
    paced_peak: Option<u64>,
    built: Option<u64>,
    peak: Option<u64>,
}

fn report(
    plan: &Plan,
    cores: usize,
    paced: &Phase,
    flood: &Phase,
    memory: Memory,
    drops: u64,
    drop_detail: &[(DropReason, u64)],
) {
    let cpu_s = flood.cpu.as_secs_f64();
    let wall_s = flood.wall.as_secs_f64();
    let hop_ops = (flood.delivered * HOPS) as f64;
    let per_core = if cpu_s > 0.0 { hop_ops / cpu_s } else { 0.0 };
    let rate = |x: f64| if wall_s > 0.0 { x / wall_s } else { 0.0 };
    let mb = |kb: Option<u64>| {
        kb.map_or("n/a".to_owned(), |kb| {
            format!("{:.1} MiB", kb as f64 / 1024.0)
        })
    };
    let packet_mib = (plan.throughput * PACKET_LEN) as f64 / (1024.0 * 1024.0);

    println!();
    println!(
        "throughput run: {} packets on random routes, at most {} in flight",
        plan.throughput, plan.window
    );
    row(
        "delivered",
        format!(
            "{} / {} sent ({} duplicates)",
            flood.delivered, flood.sent, flood.duplicates
        ),
    );
    row(
        "hop operations (relay counters)",
        format!("{} (expected {})", flood.relay_hops, flood.delivered * HOPS),
    );
    row("wall time", format!("{wall_s:.3} s"));
    row(
        "process CPU (user+sys)",
        format!(
            "{cpu_s:.2} s = {:.2} of {cores} cores busy",
            if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 }
        ),
    );
    row(
        "delivered packets/s (wall)",
        format!("{:.0}", rate(flood.delivered as f64)),
    );
    row("hop-packets/s (wall)", format!("{:.0}", rate(hop_ops)));
    row(
        "hop-packets/s per core (CPU)",
        format!(
            "{per_core:.0}   target >= {TARGET_PER_CORE:.0}: {}",
            verdict(per_core >= TARGET_PER_CORE, plan.full)
        ),
    );
    row(
        "latency under load p50 / p99",
        format!(
            "{} / {} (queueing, not the target figure)",
            ms(pct(&flood.latencies, 50.0)),
            ms(pct(&flood.latencies, 99.0))
        ),
    );

    println!();
    println!(
        "latency run: {} packets paced at {}/s on random routes",
        plan.paced, plan.rate
    );
    row(
        "delivered",
        format!(
            "{} / {} sent ({} duplicates)",
            paced.delivered, paced.sent, paced.duplicates
        ),
    );
    let p99 = pct(&paced.latencies, 99.0);
    let p99_hop = p99.map(|d| d / u32::try_from(HOPS).unwrap_or(1));
    row("end to end (3 hops) p50", ms(pct(&paced.latencies, 50.0)));
    row("end to end (3 hops) p99", ms(p99));
    row(
        "end to end (3 hops) max",
        ms(paced.latencies.last().copied()),
    );
    row(
        "per hop p99 (= p99 / 3)",
        format!(
            "{}   target < {} ms: {}",
            ms(p99_hop),
            TARGET_P99_PER_HOP.as_millis(),
            verdict(p99_hop.is_some_and(|d| d < TARGET_P99_PER_HOP), plan.full)
        ),
    );
    row(
        "process CPU during the run",
        format!(
            "{:.2} s over {:.2} s",
            paced.cpu.as_secs_f64(),
            paced.wall.as_secs_f64()
        ),
    );

    println!();
    println!("memory (whole process: 6 nodes, the bench's tables and pre-built packets)");
    row("RSS at start (no nodes)", mb(memory.before));
    row("RSS after warm-up (6 idle nodes)", mb(memory.idle));
    row(
        "peak RSS up to the end of the latency run",
        mb(memory.paced_peak),
    );
    row(
        "RSS with throughput packets built",
        format!(
            "{} (incl. {packet_mib:.1} MiB of packets)",
            mb(memory.built)
        ),
    );
    row("peak RSS (VmHWM), whole run", mb(memory.peak));

    println!();
    let detail: Vec<String> = drop_detail
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    row(
        "drops (all nodes, after warm-up)",
        if drops == 0 {
            "0".to_owned()
        } else {
            format!("{drops} (NOT zero: {})", detail.join(", "))
        },
    );
    let lost = (flood.sent - flood.delivered) + (paced.sent - paced.delivered);
    if lost > 0 {
        row("lost packets", format!("{lost} never delivered"));
    }
    println!();
    println!(
        "notes: a hop-packet is one packet processed by one relay (3 per delivered packet). CPU \
         time covers the whole process: the 5 relays, the sender node (noise/yamux of every \
         first hop) and the bench. Latency is send_frame call to exit hand-off, over 3 hops, so \
         the per-hop figure also carries the sender's own send and the exit's hand-off to the \
         bench. All traffic is loopback TCP (noise + yamux)."
    );
}

fn row(label: &str, value: impl std::fmt::Display) {
    println!("  {label:<42} {value}");
}

fn verdict(ok: bool, full: bool) -> &'static str {
    match (ok, full) {
        (_, false) => "n/a in quick mode",
        (true, true) => "met",
        (false, true) => "NOT met",
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("n/a".to_owned(), |d| {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    })
}

/// The nearest-rank percentile of sorted values.
fn pct(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "rank is in 1..=len"
    )]
    let i = (rank as usize).clamp(1, sorted.len()) - 1;
    sorted.get(i).copied()
}

fn total_drops(relays: &[RelayHandle], sender: &RelayHandle) -> u64 {
    drop_breakdown(relays, sender).iter().map(|(_, n)| n).sum()
}

fn drop_breakdown(relays: &[RelayHandle], sender: &RelayHandle) -> Vec<(DropReason, u64)> {
    let mut by_reason: HashMap<DropReason, u64> = HashMap::new();
    for node in relays.iter().chain(std::iter::once(sender)) {
        for reason in DropReason::ALL {
            *by_reason.entry(reason).or_default() += node.metrics().dropped_count(reason);
        }
    }
    DropReason::ALL
        .iter()
        .map(|r| (*r, by_reason.get(r).copied().unwrap_or(0)))
        .collect()
}

/// The clock ticks per second of /proc/self/stat: `AT_CLKTCK` from /proc/self/auxv (what
/// `sysconf(_SC_CLK_TCK)` returns), else 100, its value on Linux in practice.
fn clock_ticks_per_second() -> (u64, &'static str) {
    const AT_CLKTCK: u64 = 17;
    if let Ok(auxv) = std::fs::read("/proc/self/auxv") {
        let words: Vec<u64> = auxv
            .chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(u64::from_ne_bytes))
            .collect();
        for pair in words.chunks_exact(2) {
            if let [key, value] = pair
                && *key == AT_CLKTCK
                && *value > 0
            {
                return (*value, "AT_CLKTCK from /proc/self/auxv");
            }
        }
    }
    (100, "assumed; /proc/self/auxv unreadable")
}

/// User + system CPU time of the whole process (fields 14 and 15 of /proc/self/stat).
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name (field 2) may contain spaces; fields after it start at 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (hz, _) = clock_ticks_per_second();
    let total = ticks(14) + ticks(15);
    Duration::from_secs(total / hz)
        + Duration::from_secs(total % hz) / u32::try_from(hz).unwrap_or(100)
}

/// A `kB` field of /proc/self/status (`VmRSS`, `VmHWM`).
fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

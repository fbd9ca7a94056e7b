//! `mix-reliability`: starts a 5-relay `mix-relay` testnet on 127.0.0.1 and measures it under
//! load, faults and hostile input (docs/RELIABILITY.md). Exits non-zero if a check fails.
//!
//! ```text
//! target/debug/mix-reliability                 # short mode (CI): about 3 minutes
//! target/release/mix-reliability --mode long   # long mode: about 25 minutes
//! ```

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "request counts and percentiles come from small non-negative rates and durations"
)]

mod dos;
mod faults;
mod hostile;
mod load;
mod net;
mod packets;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use mix_libp2p::{MixNode, SendOptions};

use crate::load::Offered;
use crate::net::{RelayOptions, Sampler, Testnet};

/// Load, fault and hostile-input harness for a local mix-relay testnet.
#[derive(Debug, Parser)]
#[command(name = "mix-reliability", version, about)]
struct Args {
    /// short: 30 s of load per delay setting, short outages (CI); long: 10 minutes each.
    #[arg(long, value_enum, default_value_t = Mode::Short)]
    mode: Mode,
    /// Offered load in lightpush requests per second [default: short 20, long 100].
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of load per delay setting [default: short 30, long 600].
    #[arg(long)]
    load_secs: Option<u64>,
    /// The mix-relay binary [default: mix-relay next to this program].
    #[arg(long)]
    relay: Option<PathBuf>,
    /// Where relay data directories and logs go [default: a fresh temporary directory, kept
    /// if a check fails].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the Markdown report here (it is printed too).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these parts.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Short,
    Long,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    Load,
    Faults,
    Hostile,
}

/// The relays' settings in every mode.
const RELAYS: usize = 5;
const MEAN_DELAY_MS: u16 = 50;
const RATE_LIMIT: u32 = 1000;
const FRAME_TIMEOUT_SECS: u64 = 3;
/// Most a relay's RSS may grow within one load run.
const RSS_GROWTH_LIMIT: u64 = 64 * 1024 * 1024;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let long = args.mode == Mode::Long;
    let rate = args.rate.unwrap_or(if long { 100.0 } else { 20.0 });
    anyhow::ensure!(
        rate > 0.0 && rate <= 2000.0,
        "--rate must be above 0 and at most 2000"
    );
    let load_secs = args.load_secs.unwrap_or(if long { 600 } else { 30 });
    anyhow::ensure!(load_secs >= 5, "--load-secs must be at least 5");
    let binary = match args.relay {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this program")?
            .join("mix-relay"),
    };
    anyhow::ensure!(
        binary.is_file(),
        "no mix-relay binary at {} (build it, or pass --relay)",
        binary.display()
    );
    let (work, _temp) = match args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            (dir, None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("mix-reliability-")
                .tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let parts = if args.only.is_empty() {
        vec![Part::Load, Part::Faults, Part::Hostile]
    } else {
        args.only.clone()
    };

    eprintln!(
        "[reliability] {} mode: {RELAYS} relays ({}), {rate} requests/s, {load_secs} s per delay setting; work directory {}",
        if long { "long" } else { "short" },
        binary.display(),
        work.display()
    );
    let mut net = Testnet::start(
        &work,
        RELAYS,
        RelayOptions {
            binary: binary.clone(),
            mean_delay_ms: MEAN_DELAY_MS,
            rate_limit: RATE_LIMIT,
            frame_timeout_secs: FRAME_TIMEOUT_SECS,
            target_args: dos::TARGET_ARGS.iter().map(|a| (*a).to_owned()).collect(),
        },
    )
    .await?;
    let pool: Vec<MixNode> = net
        .relays
        .iter()
        .map(net::Relay::mix_node)
        .collect::<anyhow::Result<_>>()?;
    let mut report = report::Report::new(report::Setup {
        mode: if long { "long" } else { "short" },
        rate,
        load_secs,
        relays: RELAYS,
        mean_delay_ms: MEAN_DELAY_MS,
        rate_limit: RATE_LIMIT,
        frame_timeout_secs: FRAME_TIMEOUT_SECS,
        binary: binary.display().to_string(),
    });
    let outcome = async {
        warm_up(&pool).await?;
        eprintln!(
            "[reliability] {RELAYS} relays up and meshed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if parts.contains(&Part::Load) {
            for (label, mean) in [("no mixing delay", 0u16), ("exponential delay, mean 50 ms per hop", MEAN_DELAY_MS)] {
                let run = load_run(&net, &pool, rate, Duration::from_secs(load_secs), mean, label)
                    .await?;
                report.load.push(run);
            }
        }
        if parts.contains(&Part::Faults) {
            let plan = faults::Plan {
                rate: rate / 2.0,
                warm: Duration::from_secs(if long { 30 } else { 5 }),
                outage: Duration::from_secs(if long { 60 } else { 15 }),
                after: Duration::from_secs(if long { 30 } else { 10 }),
                timeout: Duration::from_secs(5),
                mean_ms: MEAN_DELAY_MS,
                captured: 5,
            };
            eprintln!(
                "[faults] two streams of {} requests/s (one copy; two copies on disjoint paths) for {} s",
                plan.rate,
                (plan.warm + plan.outage + plan.after).as_secs()
            );
            report.faults = Some(faults::run(&mut net, &pool, RELAYS - 1, &plan).await?);
        }
        if parts.contains(&Part::Hostile) {
            let plan = hostile::Plan {
                streams: if long { 10_000 } else { 2_000 },
                flood_secs: if long { 30 } else { 5 },
                rate_limit: RATE_LIMIT,
                frame_timeout: Duration::from_secs(FRAME_TIMEOUT_SECS),
                honest_rate: 5.0,
                connections: if long { 200 } else { 50 },
            };
            // Let the last replies of the fault run drain first.
            tokio::time::sleep(Duration::from_secs(3)).await;
            eprintln!("[hostile] eighteen kinds of hostile input against relay 0");
            let (cases, rss_before) = hostile::run(&mut net, &pool, &plan).await?;
            report.hostile = cases;
            report.hostile_rss_before = rss_before;
        }
        anyhow::Ok(())
    }
    .await;
    report.exited = net.exited();
    report.panics = net.panics();
    report.seconds = started.elapsed().as_secs_f64();
    net.stop().await;
    outcome?;

    let text = report.markdown();
    println!("{text}");
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("[reliability] report written to {}", path.display());
    }
    let failures = report.failures();
    if failures.is_empty() {
        eprintln!(
            "[reliability] all checks passed in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(true)
    } else {
        for f in &failures {
            eprintln!("[reliability] FAILED: {f}");
        }
        if let Some(temp) = _temp {
            let kept = temp.keep();
            eprintln!("[reliability] relay logs kept in {}", kept.display());
        }
        Ok(false)
    }
}

/// Waits until every relay answers a lightpush with status 200 (the Waku mesh is up).
async fn warm_up(pool: &[MixNode]) -> anyhow::Result<()> {
    let sender = load::sender(pool.to_vec(), 0).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in pool {
        loop {
            let (_, outcome) = load::lightpush(
                &sender,
                node.peer_id,
                SendOptions {
                    timeout: Duration::from_secs(5),
                    ..SendOptions::default()
                },
                "warm-up".into(),
            )
            .await;
            if matches!(outcome, load::Outcome::Delivered(_)) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "relay {} did not serve a lightpush within 60 s ({outcome:?})",
                node.peer_id
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    sender.shutdown().await;
    Ok(())
}

/// One load run: `rate` requests/s for `duration`, encoding `mean_ms` per hop, with every
/// relay's memory and CPU sampled each second.
async fn load_run(
    net: &Testnet,
    pool: &[MixNode],
    rate: f64,
    duration: Duration,
    mean_ms: u16,
    label: &'static str,
) -> anyhow::Result<report::LoadRun> {
    eprintln!(
        "[load] {label}: {rate} requests/s for {} s",
        duration.as_secs()
    );
    let sender = Arc::new(load::sender(pool.to_vec(), mean_ms).await?);
    let mut before = Vec::with_capacity(net.relays.len());
    for relay in &net.relays {
        before.push(relay.metrics().await.unwrap_or_default());
    }
    let sampler = Sampler::start(net.pids(), Duration::from_secs(1));
    let started = Instant::now();
    let records = load::run(
        sender.clone(),
        Offered {
            rate,
            duration,
            services: pool.iter().map(|m| m.peer_id).collect(),
            options: SendOptions {
                surbs: 1,
                redundancy: 1,
                timeout: Duration::from_secs(10),
            },
            label,
        },
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    let samples = sampler.finish();
    let mut metrics = Vec::with_capacity(net.relays.len());
    for relay in &net.relays {
        metrics.push(relay.metrics().await.unwrap_or_default());
    }
    if let Ok(s) = Arc::try_unwrap(sender) {
        s.shutdown().await;
    }
    let run = report::LoadRun::new(label, duration, wall, &records, &samples, &before, &metrics);
    eprintln!("[load] {label}: {}", run.one_line());
    Ok(run)
}

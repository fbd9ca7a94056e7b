//! Faults: a middle relay is killed (SIGKILL) under load and later restarted from its data
//! directory; packets captured before the kill are replayed to the restarted relay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mix_libp2p::{MixNode, SendOptions};

use crate::load::{self, Offered, Record, Summary};
use crate::net::Testnet;
use crate::packets;

/// How long each stage lasts and how hard the load pushes.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Requests per second of each of the two streams (one copy; two copies).
    pub(crate) rate: f64,
    pub(crate) warm: Duration,
    pub(crate) outage: Duration,
    pub(crate) after: Duration,
    /// The request timeout.
    pub(crate) timeout: Duration,
    /// The mean delay per hop the sender encodes (requests in flight at the kill are then
    /// caught on the dead relay).
    pub(crate) mean_ms: u16,
    /// Packets captured through the victim before the kill and replayed after the restart.
    pub(crate) captured: usize,
}

/// What happened.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) victim: usize,
    pub(crate) plan: Plan,
    /// One copy per request: issued before the kill, during the outage, after the restart.
    pub(crate) single: [Summary; 3],
    /// Two copies on disjoint paths, over the whole run.
    pub(crate) redundant: Summary,
    /// Seconds from the kill until the sender's pool no longer held the victim.
    pub(crate) removed_after: Option<f64>,
    /// Seconds from the restart command until the relay served its metrics again.
    pub(crate) restart_secs: f64,
    /// Replays of the captured packets the restarted relay dropped as `replay`.
    pub(crate) replays_dropped: f64,
    /// A fresh packet through the restarted relay was forwarded (same peer id and mix key).
    pub(crate) fresh_forwarded: bool,
    /// Packets the restarted relay rejected (a changed mix key would show here).
    pub(crate) rejected_after: f64,
    pub(crate) failures: Vec<String>,
}

impl Report {
    pub(crate) fn pass(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the fault scenario on relay `victim`, which is never a service (only a middle hop).
pub(crate) async fn run(
    net: &mut Testnet,
    pool: &[MixNode],
    victim: usize,
    plan: &Plan,
) -> anyhow::Result<Report> {
    let n = net.relays.len();
    let (a, b) = ((victim + 1) % n, (victim + 2) % n);
    let victim_id = net.relays[victim].peer_id;
    let victim_addr = net.relays[victim].addr.clone();
    let sender = Arc::new(load::sender(pool.to_vec(), plan.mean_ms).await?);
    let mut failures = Vec::new();

    // Capture: packets through the victim, forwarded by it, kept to replay later.
    let before = net.relays[victim].metrics().await?;
    let mut captured = Vec::with_capacity(plan.captured);
    for i in 0..plan.captured {
        let frame = packets::forward(
            [&pool[victim], &pool[a], &pool[b]],
            &format!("captured {i}"),
        )?;
        sender
            .send_frame(victim_id, vec![victim_addr.clone()], frame.clone())
            .await?;
        captured.push(frame);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = net.relays[victim].metrics().await?;
        let forwarded =
            now.get("mix_packets_forwarded_total") - before.get("mix_packets_forwarded_total");
        if forwarded >= plan.captured as f64 {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the victim forwarded {forwarded} of the {} packets to capture",
                plan.captured
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The replay store is flushed every second; a crash loses at most the last one.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let services: Vec<_> = pool
        .iter()
        .filter(|m| m.peer_id != victim_id)
        .map(|m| m.peer_id)
        .collect();
    let total = plan.warm + plan.outage + plan.after;
    let stream = |copies: usize, label: &'static str| {
        tokio::spawn(load::run(
            sender.clone(),
            Offered {
                rate: plan.rate,
                duration: total,
                services: services.clone(),
                options: SendOptions {
                    surbs: 1,
                    redundancy: copies,
                    timeout: plan.timeout,
                },
                label,
            },
        ))
    };
    let load_started = Instant::now();
    let single = stream(1, "fault one copy");
    let redundant = stream(2, "fault two copies");

    tokio::time::sleep(plan.warm).await;
    eprintln!("[faults] killing relay {victim} (SIGKILL) under load");
    let killed_at = load_started.elapsed().as_secs_f64();
    net.kill(victim).await?;
    let kill_instant = Instant::now();
    let mut removed_after = None;
    while kill_instant.elapsed() < plan.outage {
        if removed_after.is_none() {
            let pool_now = sender.pool().await?;
            if pool_now.iter().all(|m| m.peer_id != victim_id) {
                removed_after = Some(kill_instant.elapsed().as_secs_f64());
                eprintln!(
                    "[faults] the sender's pool dropped relay {victim} {:.1} s after the kill",
                    kill_instant.elapsed().as_secs_f64()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("[faults] restarting relay {victim} from its data directory");
    let restart_started = Instant::now();
    let restarted_at = load_started.elapsed().as_secs_f64();
    net.restart(victim).await?;
    let restart_secs = restart_started.elapsed().as_secs_f64();

    // Replay what was captured, then one fresh packet.
    let before = net.relays[victim].metrics().await?;
    for frame in &captured {
        sender
            .send_frame(victim_id, vec![victim_addr.clone()], frame.clone())
            .await?;
    }
    let fresh = packets::forward([&pool[victim], &pool[a], &pool[b]], "fresh after restart")?;
    sender
        .send_frame(victim_id, vec![victim_addr.clone()], fresh)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let now = net.relays[victim].metrics().await?;
        let replays = now.dropped("replay") - before.dropped("replay");
        let forwarded =
            now.get("mix_packets_forwarded_total") - before.get("mix_packets_forwarded_total");
        if (replays >= plan.captured as f64 && forwarded >= 1.0) || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            break net.relays[victim].metrics().await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let replays_dropped = after.dropped("replay") - before.dropped("replay");
    let fresh_forwarded =
        after.get("mix_packets_forwarded_total") - before.get("mix_packets_forwarded_total") >= 1.0;
    let rejected_after = after.dropped("rejected") - before.dropped("rejected");

    let single = single.await.unwrap_or_default();
    let redundant = redundant.await.unwrap_or_default();
    let split = |from: f64, to: f64| -> Vec<&Record> {
        single
            .iter()
            .filter(|r| r.issued >= from && r.issued < to)
            .collect()
    };
    let single_split = [
        Summary::of(split(0.0, killed_at)),
        Summary::of(split(killed_at, restarted_at)),
        Summary::of(split(restarted_at, f64::MAX)),
    ];
    let redundant_summary = Summary::of(&redundant);
    let all_single = Summary::of(&single);

    if redundant_summary.ratio() < 0.99 {
        failures.push(format!(
            "two copies on disjoint paths: {} of {} delivered, below 99 %",
            redundant_summary.delivered, redundant_summary.sent
        ));
    }
    if removed_after.is_none() {
        failures.push(format!(
            "the sender's pool still held relay {victim} {:.0} s after the kill",
            plan.outage.as_secs_f64()
        ));
    }
    let limit = plan.timeout.as_secs_f64() + 2.0;
    if all_single.longest > limit || redundant_summary.longest > limit {
        failures.push(format!(
            "a request took {:.1} s to resolve, more than its {:.0} s timeout + 2 s",
            all_single.longest.max(redundant_summary.longest),
            plan.timeout.as_secs_f64()
        ));
    }
    // A request whose only first hop is the killed relay fails at once (the sender's rule
    // since the sender rework); any other unreachable first hop is a failure.
    let wrong_unreachable: Vec<_> = all_single
        .unreachable_peers
        .iter()
        .chain(&redundant_summary.unreachable_peers)
        .filter(|p| **p != victim_id)
        .collect();
    if !wrong_unreachable.is_empty() {
        failures.push(format!(
            "requests failed at first hops that were up: {wrong_unreachable:?}"
        ));
    }
    if all_single.other + redundant_summary.other > 0 {
        failures.push(format!(
            "requests failed other than by timing out or at the killed first hop: {:?}",
            all_single
                .failures
                .iter()
                .chain(&redundant_summary.failures)
                .collect::<Vec<_>>()
        ));
    }
    if (replays_dropped - plan.captured as f64).abs() > 0.5 {
        failures.push(format!(
            "the restarted relay dropped {replays_dropped} of {} replayed packets as `replay`",
            plan.captured
        ));
    }
    if !fresh_forwarded || rejected_after > 0.0 {
        failures.push(format!(
            "the restarted relay did not forward a fresh packet to its old key (forwarded: {fresh_forwarded}, rejected: {rejected_after})"
        ));
    }
    if let Ok(s) = Arc::try_unwrap(sender) {
        s.shutdown().await;
    }
    Ok(Report {
        victim,
        plan: plan.clone(),
        single: single_split,
        redundant: redundant_summary,
        removed_after,
        restart_secs,
        replays_dropped,
        fresh_forwarded,
        rejected_after,
        failures,
    })
}

//! The figures, the checks on them, and the Markdown report.

use std::fmt::Write as _;
use std::time::Duration;

use crate::faults;
use crate::hostile::Case;
use crate::load::{Record, Summary};
use crate::net::{Metrics, Sample};

const MIB: f64 = 1024.0 * 1024.0;

/// One relay over one load run.
#[derive(Clone, Debug)]
pub(crate) struct RelayFigures {
    pub(crate) rss_start: u64,
    pub(crate) rss_max: u64,
    pub(crate) rss_end: u64,
    /// CPU time over wall time, percent of one core.
    pub(crate) cpu_percent: f64,
    pub(crate) received: f64,
    pub(crate) forwarded: f64,
    pub(crate) dropped: Vec<(String, f64)>,
}

/// One load run's figures.
#[derive(Clone, Debug)]
pub(crate) struct LoadRun {
    pub(crate) label: &'static str,
    pub(crate) duration: Duration,
    pub(crate) wall: f64,
    pub(crate) summary: Summary,
    pub(crate) relays: Vec<RelayFigures>,
    /// RSS of each relay about every minute (every 10 s in short runs): (seconds, MiB each).
    pub(crate) timeline: Vec<(f64, Vec<f64>)>,
}

impl LoadRun {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        label: &'static str,
        duration: Duration,
        wall: f64,
        records: &[Record],
        samples: &[Sample],
        before: &[Metrics],
        after: &[Metrics],
    ) -> Self {
        let relays_n = after.len();
        let mut relays = Vec::with_capacity(relays_n);
        for i in 0..relays_n {
            let usage: Vec<(f64, crate::net::Usage)> = samples
                .iter()
                .filter_map(|s| s.usage.get(i).copied().flatten().map(|u| (s.at, u)))
                .collect();
            let (first, last) = (usage.first(), usage.last());
            let cpu_percent = match (first, last) {
                (Some((t0, u0)), Some((t1, u1))) if t1 > t0 => {
                    (u1.cpu - u0.cpu) / (t1 - t0) * 100.0
                }
                _ => f64::NAN,
            };
            let (b, a) = (&before[i], &after[i]);
            let dropped = a
                .drops()
                .into_iter()
                .map(|(r, v)| {
                    let d = v - b.dropped(&r);
                    (r, d)
                })
                .filter(|(_, d)| *d > 0.0)
                .collect();
            relays.push(RelayFigures {
                rss_start: first.map_or(0, |(_, u)| u.rss),
                rss_max: usage.iter().map(|(_, u)| u.rss).max().unwrap_or(0),
                rss_end: last.map_or(0, |(_, u)| u.rss),
                cpu_percent,
                received: a.get("mix_packets_received_total") - b.get("mix_packets_received_total"),
                forwarded: a.get("mix_packets_forwarded_total")
                    - b.get("mix_packets_forwarded_total"),
                dropped,
            });
        }
        let step = if duration.as_secs() >= 300 {
            60.0
        } else {
            10.0
        };
        let mut timeline = Vec::new();
        let mut next = 0.0;
        let row = |s: &Sample| -> (f64, Vec<f64>) {
            let rss = s
                .usage
                .iter()
                .map(|u| u.map_or(f64::NAN, |u| u.rss as f64 / MIB));
            (s.at, rss.collect())
        };
        for s in samples {
            if s.at + 0.5 >= next {
                timeline.push(row(s));
                next += step;
            }
        }
        if let Some(s) = samples.last()
            && timeline.last().is_some_and(|(t, _)| *t < s.at)
        {
            timeline.push(row(s));
        }
        Self {
            label,
            duration,
            wall,
            summary: Summary::of(records),
            relays,
            timeline,
        }
    }

    pub(crate) fn one_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{}/{} delivered ({:.2} %), {} timed out; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            s.delivered,
            s.sent,
            s.ratio() * 100.0,
            s.timeouts,
            s.p50,
            s.p95,
            s.p99
        )
    }

    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.summary.ratio() < 0.99 {
            out.push(format!(
                "load ({}): {} — below 99 % delivered",
                self.label,
                self.one_line()
            ));
        }
        for (i, r) in self.relays.iter().enumerate() {
            if r.rss_max.saturating_sub(r.rss_start) > super::RSS_GROWTH_LIMIT {
                out.push(format!(
                    "load ({}): relay {i}'s RSS grew from {:.1} MiB to {:.1} MiB, more than {} MiB",
                    self.label,
                    r.rss_start as f64 / MIB,
                    r.rss_max as f64 / MIB,
                    super::RSS_GROWTH_LIMIT / (1024 * 1024)
                ));
            }
        }
        out
    }
}

/// How the run was set up.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) mode: &'static str,
    pub(crate) rate: f64,
    pub(crate) load_secs: u64,
    pub(crate) relays: usize,
    pub(crate) mean_delay_ms: u16,
    pub(crate) rate_limit: u32,
    pub(crate) frame_timeout_secs: u64,
    pub(crate) binary: String,
}

/// Everything measured.
#[derive(Debug)]
pub(crate) struct Report {
    setup: Setup,
    pub(crate) load: Vec<LoadRun>,
    pub(crate) faults: Option<faults::Report>,
    pub(crate) hostile: Vec<Case>,
    pub(crate) hostile_rss_before: u64,
    pub(crate) exited: Vec<usize>,
    pub(crate) panics: Vec<String>,
    pub(crate) seconds: f64,
}

impl Report {
    pub(crate) fn new(setup: Setup) -> Self {
        Self {
            setup,
            load: Vec::new(),
            faults: None,
            hostile: Vec::new(),
            hostile_rss_before: 0,
            exited: Vec::new(),
            panics: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Every failed check, one line each.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.load.iter().flat_map(LoadRun::failures).collect();
        if let Some(f) = &self.faults {
            out.extend(f.failures.iter().map(|e| format!("faults: {e}")));
        }
        for case in self.hostile.iter().filter(|c| !c.pass) {
            out.push(format!(
                "hostile input ({}): expected {}; observed {}; honest requests {}/{}",
                case.name, case.expected, case.observed, case.served.0, case.served.1
            ));
        }
        if let Some(last) = self.hostile.last() {
            let growth = last.rss_after.saturating_sub(self.hostile_rss_before);
            if growth > super::RSS_GROWTH_LIMIT {
                out.push(format!(
                    "hostile input: the target's RSS grew by {:.1} MiB",
                    growth as f64 / MIB
                ));
            }
        }
        for i in &self.exited {
            out.push(format!(
                "relay {i} exited while it should have been running"
            ));
        }
        out.extend(self.panics.iter().map(|p| format!("panic: {p}")));
        out
    }

    /// The report.
    pub(crate) fn markdown(&self) -> String {
        let mut m = String::new();
        let setup = &self.setup;
        let _ = writeln!(
            m,
            "## mix-reliability, {} mode\n\n{} relays (`{}`) on 127.0.0.1, each `--mean-delay-ms {}` (exponential), `--rate-limit {}`, `--frame-timeout-secs {}`; one in-process sender. Total {:.0} s.\n",
            setup.mode,
            setup.relays,
            setup.binary,
            setup.mean_delay_ms,
            setup.rate_limit,
            setup.frame_timeout_secs,
            self.seconds
        );
        if !self.load.is_empty() {
            let _ = writeln!(
                m,
                "### Load\n\nOpen loop: {} lightpush requests/s for {} s per row, one copy, one SURB, 10 s timeout, exit == destination spread over all relays. Latency is from handing the request to the mixnet until the reply is opened.\n",
                setup.rate, setup.load_secs
            );
            let _ = writeln!(
                m,
                "| delay per hop | sent | delivered | timed out | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|"
            );
            for run in &self.load {
                let s = &run.summary;
                let _ = writeln!(
                    m,
                    "| {} | {} | {} ({:.2} %) | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    run.label,
                    s.sent,
                    s.delivered,
                    s.ratio() * 100.0,
                    s.timeouts,
                    s.p50,
                    s.p95,
                    s.p99,
                    s.max
                );
            }
            for run in &self.load {
                let _ = writeln!(
                    m,
                    "\n**{}** ({:.0} s of load, {:.0} s until the last reply): per relay\n\n| relay | CPU (% of a core) | RSS start → max → end (MiB) | packets in | forwarded | dropped |\n|---|---:|---|---:|---:|---|",
                    run.label,
                    run.duration.as_secs_f64(),
                    run.wall
                );
                for (i, r) in run.relays.iter().enumerate() {
                    let dropped = if r.dropped.is_empty() {
                        "none".to_owned()
                    } else {
                        r.dropped
                            .iter()
                            .map(|(k, v)| format!("{v:.0} {k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let _ = writeln!(
                        m,
                        "| {i} | {:.1} | {:.1} → {:.1} → {:.1} | {:.0} | {:.0} | {dropped} |",
                        r.cpu_percent,
                        r.rss_start as f64 / MIB,
                        r.rss_max as f64 / MIB,
                        r.rss_end as f64 / MIB,
                        r.received,
                        r.forwarded
                    );
                }
                let _ = writeln!(m, "\nRSS over time (MiB):\n");
                let _ = write!(m, "| s |");
                for i in 0..run.relays.len() {
                    let _ = write!(m, " relay {i} |");
                }
                let _ = write!(m, "\n|---:|");
                for _ in 0..run.relays.len() {
                    let _ = write!(m, "---:|");
                }
                let _ = writeln!(m);
                for (t, rss) in &run.timeline {
                    let _ = write!(m, "| {t:.0} |");
                    for v in rss {
                        let _ = write!(m, " {v:.1} |");
                    }
                    let _ = writeln!(m);
                }
            }
            let _ = writeln!(m);
        }
        if let Some(f) = &self.faults {
            let p = &f.plan;
            let _ = writeln!(
                m,
                "### Faults\n\nTwo request streams of {} requests/s each (one copy; two copies on disjoint paths), exponential delay with a 50 ms mean per hop, {} s timeout, services = every relay but relay {} (a middle hop only). Relay {} was killed with SIGKILL after {} s, restarted from its data directory after a {} s outage, and the load ran {} s more.\n",
                p.rate,
                p.timeout.as_secs(),
                f.victim,
                f.victim,
                p.warm.as_secs(),
                p.outage.as_secs(),
                p.after.as_secs()
            );
            let _ = writeln!(
                m,
                "| requests | sent | delivered | timed out | first hop down | other | p50 ms | p99 ms | longest to resolve |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let rows = [
                ("one copy, before the kill", &f.single[0]),
                ("one copy, during the outage", &f.single[1]),
                ("one copy, after the restart", &f.single[2]),
                ("two copies, whole run", &f.redundant),
            ];
            for (label, s) in rows {
                let _ = writeln!(
                    m,
                    "| {label} | {} | {} ({:.1} %) | {} | {} | {} | {:.1} | {:.1} | {:.1} s |",
                    s.sent,
                    s.delivered,
                    s.ratio() * 100.0,
                    s.timeouts,
                    s.unreachable,
                    s.other,
                    s.p50,
                    s.p99,
                    s.longest
                );
            }
            let _ = writeln!(
                m,
                "\n- The sender's pool dropped relay {}: {}.\n- Restart (same data directory, same port) served metrics after {:.2} s; a fresh packet to its old peer id and mix key was forwarded: {}; packets it rejected after the restart: {:.0}.\n- Packets captured before the kill and replayed after the restart: {} sent, {:.0} dropped as `replay`.\n- Verdict: {}\n",
                f.victim,
                f.removed_after.map_or_else(
                    || "**not within the outage**".to_owned(),
                    |s| format!("{s:.1} s after the kill")
                ),
                f.restart_secs,
                if f.fresh_forwarded { "yes" } else { "**no**" },
                f.rejected_after,
                p.captured,
                f.replays_dropped,
                if f.pass() {
                    "pass".to_owned()
                } else {
                    format!("**FAIL**: {}", f.failures.join("; "))
                }
            );
        }
        if !self.hostile.is_empty() {
            let _ = writeln!(
                m,
                "### Hostile input\n\nAgainst relay 0 (for tampered δ, the exit it reaches) from an in-process attacker node; after each case honest lightpush requests with relay 0 as the service must succeed. RSS of relay 0 before: {:.1} MiB.\n",
                self.hostile_rss_before as f64 / MIB
            );
            let _ = writeln!(
                m,
                "| case | input | expected | observed (drops by reason; process; RSS) | honest served | longest stall (ms) | s | verdict |\n|---|---|---|---|---:|---:|---:|---|"
            );
            for c in &self.hostile {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} | {}/{} | {:.0} | {:.1} | {} |",
                    c.name,
                    c.input,
                    c.expected,
                    c.observed,
                    c.served.0,
                    c.served.1,
                    c.stall_ms,
                    c.seconds,
                    if c.pass { "pass" } else { "**FAIL**" }
                );
            }
            let _ = writeln!(m);
        }
        let failures = self.failures();
        let _ = writeln!(
            m,
            "### Verdict\n\n{}",
            if failures.is_empty() {
                "Every check passed; no relay exited unexpectedly and no relay log reports a panic."
                    .to_owned()
            } else {
                failures
                    .iter()
                    .map(|f| format!("- FAIL: {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        );
        m
    }
}

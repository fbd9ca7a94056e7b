//! A testnet of `mix-relay run` processes on 127.0.0.1: start, kill, restart, scrape metrics,
//! and read each process's memory and CPU time from `/proc`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use libp2p::multiaddr::Protocol;
use mix_core::NodePublicKey;
use mix_libp2p::{MixNode, Multiaddr, PeerId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

/// How every relay of the testnet is run.
#[derive(Clone, Debug)]
pub(crate) struct RelayOptions {
    /// The `mix-relay` binary.
    pub(crate) binary: PathBuf,
    /// `--mean-delay-ms`: the relays sample exponential delays around the mean a sender
    /// encodes (a sender encoding 0 gets no delay).
    pub(crate) mean_delay_ms: u16,
    /// `--rate-limit`: packets per second from one peer.
    pub(crate) rate_limit: u32,
    /// `--frame-timeout-secs`.
    pub(crate) frame_timeout_secs: u64,
    /// Extra flags for relay 0 alone (the hostile cases' target).
    pub(crate) target_args: Vec<String>,
}

/// One relay process.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) index: usize,
    pub(crate) dir: PathBuf,
    pub(crate) peer_id: PeerId,
    pub(crate) mix_public: NodePublicKey,
    pub(crate) tcp_port: u16,
    pub(crate) metrics_port: u16,
    /// `/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>`.
    pub(crate) addr: Multiaddr,
    pub(crate) log: PathBuf,
    /// `--peer` arguments (the relays started before it).
    peers: Vec<Multiaddr>,
    child: Option<Child>,
    /// How many times it was started.
    pub(crate) starts: u32,
}

impl Relay {
    /// Its pool entry.
    pub(crate) fn mix_node(&self) -> anyhow::Result<MixNode> {
        Ok(MixNode::new(
            self.peer_id,
            vec![self.addr.clone()],
            self.mix_public,
        )?)
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process is still running (`false` once it has exited, for any reason).
    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The metrics it serves now.
    pub(crate) async fn metrics(&self) -> anyhow::Result<Metrics> {
        Metrics::scrape(self.metrics_port).await
    }

    /// Resident memory and CPU time of the process, from `/proc`.
    pub(crate) fn usage(&self) -> Option<Usage> {
        Usage::of(self.pid()?)
    }
}

/// Each relay's current process id, shared with [`Sampler`].
pub(crate) type Pids = std::sync::Arc<std::sync::Mutex<Vec<Option<u32>>>>;

/// The relays.
#[derive(Debug)]
pub(crate) struct Testnet {
    pub(crate) relays: Vec<Relay>,
    options: RelayOptions,
    pids: Pids,
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl Testnet {
    /// Creates the keys of `n` relays under `work` (so their peer ids and mix keys are known
    /// before they start), starts them one by one (each dials those before it) and waits
    /// until each serves its metrics.
    pub(crate) async fn start(
        work: &Path,
        n: usize,
        options: RelayOptions,
    ) -> anyhow::Result<Self> {
        let mut relays: Vec<Relay> = Vec::with_capacity(n);
        let pids: Pids = std::sync::Arc::new(std::sync::Mutex::new(vec![None; n]));
        for index in 0..n {
            let dir = work.join(format!("relay-{index}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let (keys, _) = mix_relay::keys::load_or_create(&dir, None)
                .with_context(|| format!("creating the keys in {}", dir.display()))?;
            let tcp_port = free_port()?;
            let metrics_port = free_port()?;
            let peer_id = keys.peer_id();
            let addr = Multiaddr::empty()
                .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
                .with(Protocol::Tcp(tcp_port))
                .with(Protocol::P2p(peer_id));
            let peers = relays.iter().map(|r| r.addr.clone()).collect();
            let mut relay = Relay {
                index,
                log: work.join(format!("relay-{index}.log")),
                dir,
                peer_id,
                mix_public: keys.mix_public(),
                tcp_port,
                metrics_port,
                addr,
                peers,
                child: None,
                starts: 0,
            };
            spawn(&mut relay, &options, &pids).await?;
            relays.push(relay);
        }
        Ok(Self {
            relays,
            options,
            pids,
        })
    }

    /// The process ids, kept current across kills and restarts.
    pub(crate) fn pids(&self) -> Pids {
        self.pids.clone()
    }

    /// Kills relay `i` with SIGKILL (a crash: no shutdown, no last flush).
    pub(crate) async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let relay = &mut self.relays[i];
        if let Ok(mut pids) = self.pids.lock() {
            pids[i] = None;
        }
        if let Some(mut child) = relay.child.take() {
            child.start_kill().context("killing a relay")?;
            child.wait().await.context("reaping a relay")?;
        }
        Ok(())
    }

    /// Starts relay `i` again from its data directory (same keys, replay store and ports).
    pub(crate) async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let options = self.options.clone();
        spawn(&mut self.relays[i], &options, &self.pids).await
    }

    /// Stops every relay with SIGTERM (a clean shutdown) and waits for them, SIGKILL after 10 s.
    pub(crate) async fn stop(&mut self) {
        for relay in &mut self.relays {
            if let Some(pid) = relay.pid() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for relay in &mut self.relays {
            if let Some(mut child) = relay.child.take()
                && tokio::time::timeout(Duration::from_secs(10), child.wait())
                    .await
                    .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Indices of relays that should run but have exited.
    pub(crate) fn exited(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for relay in &mut self.relays {
            if relay.child.is_some() && !relay.is_running() {
                out.push(relay.index);
            }
        }
        out
    }

    /// Lines of the relays' logs that report a panic.
    pub(crate) fn panics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for relay in &self.relays {
            if let Ok(text) = std::fs::read_to_string(&relay.log) {
                out.extend(
                    text.lines()
                        .filter(|l| l.contains("panicked"))
                        .map(|l| format!("relay {}: {l}", relay.index)),
                );
            }
        }
        out
    }
}

async fn spawn(relay: &mut Relay, options: &RelayOptions, pids: &Pids) -> anyhow::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&relay.log)
        .with_context(|| format!("opening {}", relay.log.display()))?;
    let mut command = Command::new(&options.binary);
    command
        .arg("run")
        // A loopback testnet: its relays dial each other on 127.0.0.1.
        .arg("--allow-private-addresses")
        .arg("--data-dir")
        .arg(&relay.dir)
        .args(["--listen-ip", "127.0.0.1"])
        .args(["--tcp-port", &relay.tcp_port.to_string()])
        .args(["--metrics", &format!("127.0.0.1:{}", relay.metrics_port)])
        .args(["--mean-delay-ms", &options.mean_delay_ms.to_string()])
        .args(["--rate-limit", &options.rate_limit.to_string()])
        .args([
            "--frame-timeout-secs",
            &options.frame_timeout_secs.to_string(),
        ]);
    if relay.index == 0 {
        command.args(&options.target_args);
    }
    for peer in &relay.peers {
        command.arg("--peer").arg(peer.to_string());
    }
    command
        .env(
            "RUST_LOG",
            std::env::var("MIX_RELAY_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", options.binary.display()))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "relay {} exited at start ({status}); see {}",
                relay.index,
                relay.log.display()
            );
        }
        if Metrics::scrape(relay.metrics_port).await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill().await;
            bail!(
                "relay {} did not serve metrics within 30 s; see {}",
                relay.index,
                relay.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Ok(mut table) = pids.lock() {
        table[relay.index] = child.id();
    }
    relay.child = Some(child);
    relay.starts += 1;
    Ok(())
}

/// A scrape of `/metrics`: each sample line's series (`name{labels}`) and value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics(HashMap<String, f64>);

impl Metrics {
    async fn scrape(port: u16) -> anyhow::Result<Self> {
        let fetch = async {
            let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await?;
            let mut body = String::new();
            stream.read_to_string(&mut body).await?;
            anyhow::Ok(body)
        };
        let text = tokio::time::timeout(Duration::from_secs(5), fetch)
            .await
            .context("metrics: no answer in 5 s")??;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .context("metrics: not an HTTP response")?;
        anyhow::ensure!(
            head.starts_with("HTTP/1.1 200"),
            "metrics: {}",
            head.lines().next().unwrap_or_default()
        );
        let mut series = HashMap::new();
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ')
                && let Ok(value) = value.parse::<f64>()
            {
                series.insert(name.to_owned(), value);
            }
        }
        Ok(Self(series))
    }

    /// A series' value (0 when absent).
    pub(crate) fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// `mix_packets_dropped_total{reason="<reason>"}`.
    pub(crate) fn dropped(&self, reason: &str) -> f64 {
        self.get(&format!("mix_packets_dropped_total{{reason=\"{reason}\"}}"))
    }

    /// Every drop reason with a non-zero count.
    pub(crate) fn drops(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let reason = k
                    .strip_prefix("mix_packets_dropped_total{reason=\"")?
                    .strip_suffix("\"}")?;
                (*v > 0.0).then(|| (reason.to_owned(), *v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// A process's resident memory and CPU time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    /// Resident set size, bytes.
    pub(crate) rss: u64,
    /// User + system CPU time, seconds.
    pub(crate) cpu: f64,
}

impl Usage {
    fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces): state is field 3, utime 14,
        // stime 15.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some(Self {
            rss: rss_kb * 1024,
            cpu: (utime + stime) / clock_ticks(),
        })
    }
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux when it cannot be asked).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Samples every running relay's usage once a second until dropped.
#[derive(Debug)]
pub(crate) struct Sampler {
    task: tokio::task::JoinHandle<()>,
    samples: std::sync::Arc<std::sync::Mutex<Vec<Sample>>>,
}

/// One sampling instant: seconds since the sampler started, and each relay's usage.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) at: f64,
    pub(crate) usage: Vec<Option<Usage>>,
}

impl Sampler {
    /// Starts sampling the processes in `pids` (re-read every time: a restarted relay has a
    /// new pid).
    pub(crate) fn start(pids: Pids, every: Duration) -> Self {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = samples.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now: Vec<Option<u32>> = pids.lock().map(|p| p.clone()).unwrap_or_default();
                let usage = now.into_iter().map(|p| p.and_then(Usage::of)).collect();
                if let Ok(mut s) = out.lock() {
                    s.push(Sample {
                        at: started.elapsed().as_secs_f64(),
                        usage,
                    });
                }
            }
        });
        Self { task, samples }
    }

    /// Stops and returns the samples.
    pub(crate) fn finish(self) -> Vec<Sample> {
        self.task.abort();
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

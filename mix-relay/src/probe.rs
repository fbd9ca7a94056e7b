//! `mix-relay probe-format`: which wire format a set of mix nodes speaks.
//!
//! The two formats (MIX-LIONESS.md) cannot be told apart on the wire: a packet of the other
//! format peels at every hop and is dropped silently at the exit. So the probe asks: for each
//! format, it starts a sender of that format and sends lightpush requests through random paths
//! of the nodes, each a request with no message, which a lightpush service (ours or nwaku's)
//! answers with 400 through the SURB and never publishes. The format whose requests come back
//! is the one the nodes speak; answers in neither mean the nodes are unreachable or are not
//! exits; answers in both, or some in one, mean a mixed set.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use libp2p::PeerId;
use mix_core::Format;
use mix_libp2p::{Destination, MixNode, SendOptions};

use crate::keys;
use crate::node::{self, Settings};
use crate::pool_file::PoolFile;
use crate::waku::{self, LIGHTPUSH_PROTOCOL, LightPushRequest};

/// `mix-relay probe-format`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The nodes to probe, as a pool file (`mix-relay testnet` writes one).
    #[arg(long, required_unless_present = "mixnode")]
    pub pool_file: Option<PathBuf>,
    /// Or the nodes one by one, as `--mixnode` takes them (`<multiaddr>:<key>` or `enr:…`;
    /// repeatable, at least 3).
    #[arg(long, conflicts_with = "pool_file")]
    pub mixnode: Vec<String>,
    /// Probe requests per format, each through a random path ending at a random node.
    #[arg(long, default_value_t = 6)]
    pub count: usize,
    /// How long to wait for each answer, in ms.
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
}

/// What the probe found for one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatProbe {
    /// The format probed.
    pub format: Format,
    /// Requests sent.
    pub sent: usize,
    /// Requests answered (any lightpush status: the answer came back through the mixnet).
    pub answered: usize,
}

/// The verdict over both formats, as printed.
pub fn verdict(probes: &[FormatProbe]) -> String {
    let answering: Vec<&FormatProbe> = probes.iter().filter(|p| p.answered > 0).collect();
    match answering.as_slice() {
        [] => "no answer in either format: the nodes are unreachable from here, are not lightpush \
               exits, or are not mix nodes"
            .to_owned(),
        [p] if p.answered == p.sent => format!(
            "these nodes speak {}: use --mix-format {} (MixClient option format: '{}')",
            p.format, p.format, p.format
        ),
        [p] => format!(
            "{} answered {} of {}: the nodes speak {}, but some are down or speak the other format",
            p.format, p.answered, p.sent, p.format
        ),
        _ => "answers in both formats: the set mixes nodes of both formats (a path works only \
              when every node on it speaks the sender's format)"
            .to_owned(),
    }
}

/// Runs the probe: for each format, `args.count` requests through the nodes.
///
/// # Errors
/// If the nodes cannot be read, are fewer than 3, or a sender cannot start.
pub async fn probe(args: &ProbeArgs) -> anyhow::Result<Vec<FormatProbe>> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let nodes = nodes(args)?;
    anyhow::ensure!(
        nodes.len() >= 3,
        "{} nodes given; a path needs at least 3",
        nodes.len()
    );
    let exits: Vec<PeerId> = nodes.iter().map(|n| n.peer_id).collect();
    let options = SendOptions {
        surbs: 1,
        redundancy: 1,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let mut probes = Vec::new();
    for format in Format::ALL {
        let mut settings = Settings::local();
        settings.shards = Vec::new();
        settings.format = format;
        settings.sender_hold = None;
        let sender = node::start(settings).await?;
        sender.add_mix_nodes(nodes.clone()).await?;
        let requests = (0..args.count).map(|i| {
            let service = exits[i % exits.len()];
            let request = LightPushRequest {
                request_id: format!("probe-{format}-{i}"),
                pubsub_topic: None,
                message: None,
            };
            let sender = &sender;
            async move {
                sender
                    .send(
                        Destination::ExitIsDestination(service),
                        LIGHTPUSH_PROTOCOL,
                        waku::encode_length_prefixed(&request),
                        options,
                    )
                    .await
            }
        });
        let answers = futures::future::join_all(requests).await;
        let answered = answers.iter().filter(|a| a.is_ok()).count();
        eprintln!(
            "[probe] {format}: {answered} of {} requests answered",
            args.count
        );
        probes.push(FormatProbe {
            format,
            sent: args.count,
            answered,
        });
        sender.shutdown().await;
    }
    Ok(probes)
}

fn nodes(args: &ProbeArgs) -> anyhow::Result<Vec<MixNode>> {
    if let Some(path) = &args.pool_file {
        return PoolFile::read(path)?
            .infos()?
            .iter()
            .map(|i| Ok(i.mix_node()?))
            .collect();
    }
    args.mixnode
        .iter()
        .map(|m| {
            let entry = keys::parse_mixnode(m).with_context(|| format!("--mixnode {m}"))?;
            Ok(MixNode::new(
                entry.peer_id,
                vec![entry.addr],
                entry.mix_public,
            )?)
        })
        .collect()
}

/// `mix-relay probe-format`: prints one line per format and the verdict; exits non-zero when
/// no format answers.
///
/// # Errors
/// As [`probe`], and when neither format answered.
pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let probes = probe(&args).await?;
    for p in &probes {
        println!("{}: {} of {} answered", p.format, p.answered, p.sent);
    }
    let verdict = verdict(&probes);
    println!("{verdict}");
    anyhow::ensure!(probes.iter().any(|p| p.answered > 0), "{verdict}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(format: Format, answered: usize) -> FormatProbe {
        FormatProbe {
            format,
            sent: 6,
            answered,
        }
    }

    #[test]
    fn the_verdict_names_the_format_that_answered() {
        let v = verdict(&[probe(Format::Lip183, 6), probe(Format::V039, 0)]);
        assert!(v.starts_with("these nodes speak lip183"), "{v}");
        let v = verdict(&[probe(Format::Lip183, 0), probe(Format::V039, 6)]);
        assert!(v.contains("--mix-format v039"), "{v}");
        let v = verdict(&[probe(Format::Lip183, 2), probe(Format::V039, 0)]);
        assert!(v.contains("2 of 6"), "{v}");
        let v = verdict(&[probe(Format::Lip183, 0), probe(Format::V039, 0)]);
        assert!(v.starts_with("no answer"), "{v}");
        let v = verdict(&[probe(Format::Lip183, 3), probe(Format::V039, 3)]);
        assert!(v.contains("both formats"), "{v}");
    }
}

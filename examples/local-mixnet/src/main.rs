#![doc = include_str!("../README.md")]
#![allow(clippy::print_stdout, reason = "a demo prints")]

use std::time::{Duration, Instant};

use mix_libp2p::{MixNode, SendOptions};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::waku::WakuMessage;
use mix_relay::{Settings, start};

const TOPIC: &str = "/waku/2/rs/2/0";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let args = TestnetArgs::local(5);
    let (relays, pool) = start_testnet(&args).await?;
    println!(
        "\n{} relays meshed on {TOPIC} in {:.0} ms:",
        relays.len(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    for (i, node) in pool.nodes.iter().enumerate() {
        println!(
            "  relay {i}: {}  mix key {}…",
            node.multiaddrs[0],
            &node.mix_public_key[..16]
        );
    }

    let mut settings = Settings::local();
    settings.shards = Vec::new();
    let sender = start(settings).await?;
    let entries: Vec<MixNode> = relays
        .iter()
        .map(|r| r.info().mix_node())
        .collect::<Result<_, _>>()?;
    sender.add_mix_nodes(entries).await?;
    println!("sender {} (its SURBs end here)\n", sender.info().addrs[0]);

    let mut watch = relays[0].subscribe_messages();
    for i in 0..3u8 {
        let service = &relays[1 + usize::from(i) % (relays.len() - 1)];
        let text = format!("hello mixnet #{i}");
        let message = WakuMessage {
            payload: text.clone().into_bytes(),
            content_topic: "/demo/1/chat/proto".into(),
            timestamp: Some(1_700_000_000_000_000_000 + i64::from(i)),
            ..WakuMessage::default()
        };
        let started = Instant::now();
        let response = sender
            .lightpush(service.peer_id(), TOPIC, message, SendOptions::default())
            .await?;
        println!(
            "lightpush {text:?} via 3 hops to service {}…: status {} ({} relay peers) in {:.1} ms",
            &service.peer_id().to_string()[..20],
            response.status_code,
            response.relay_peer_count.unwrap_or(0),
            started.elapsed().as_secs_f64() * 1e3
        );
        let (topic, seen) = tokio::time::timeout(Duration::from_secs(5), watch.recv()).await??;
        println!(
            "  relay 0 received on {topic}: {:?}",
            String::from_utf8_lossy(&seen.payload)
        );
    }

    println!("\nper relay: packets received / forwarded / dropped, replies sent:");
    for (i, r) in relays.iter().enumerate() {
        let m = r.metrics();
        let dropped: u64 = mix_relay::metrics::DropReason::ALL
            .iter()
            // A reclaimed idle stream is not a dropped packet.
            .filter(|d| **d != mix_relay::metrics::DropReason::StreamIdleClosed)
            .map(|d| m.dropped_count(*d))
            .sum();
        println!(
            "  relay {i}: {} / {} / {}, {}",
            m.received_count(),
            m.forwarded_count(),
            dropped,
            m.replies_sent_count()
        );
    }
    println!(
        "sender: {} replies opened",
        sender.metrics().replies_received_count()
    );
    sender.shutdown().await;
    for r in relays {
        r.shutdown().await;
    }
    println!("done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

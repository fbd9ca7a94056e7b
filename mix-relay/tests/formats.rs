//! The two wire formats (MIX-LIONESS.md) end to end on loopback: a testnet and a sender of the
//! same format deliver lightpush through 3 hops and back; a sender of the other format fails
//! loudly (the exit counts `payload_integrity`), not only by timing out; and the pool file
//! carries the format to `mix-relay send`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use mix_core::Format;
use mix_libp2p::{MixNode, SendOptions};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::metrics::DropReason;
use mix_relay::probe::ProbeArgs;
use mix_relay::waku::WakuMessage;
use mix_relay::{RelayHandle, Settings, start};

const TOPIC: &str = "/waku/2/rs/2/0";

async fn sender(format: Format, relays: &[RelayHandle]) -> RelayHandle {
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.format = format;
    settings.sender_hold = Settings::default_sender_hold(format);
    let node = start(settings).await.unwrap();
    let pool: Vec<MixNode> = relays
        .iter()
        .map(|r| r.info().mix_node().unwrap())
        .collect();
    node.add_mix_nodes(pool).await.unwrap();
    node
}

fn message(i: usize) -> WakuMessage {
    WakuMessage {
        payload: format!("format test {i}").into_bytes(),
        content_topic: "/mix-test/1/formats/proto".into(),
        ..WakuMessage::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_format_delivers_end_to_end_and_a_mismatched_sender_fails_loudly() {
    for format in Format::ALL {
        let args = TestnetArgs {
            mix_format: format,
            ..TestnetArgs::local(5)
        };
        let (relays, pool) = start_testnet(&args).await.unwrap();
        assert_eq!(
            pool.wire_format().unwrap(),
            Some(format),
            "the pool file names it"
        );

        // Same format: delivered, with the largest lightpush payload the format allows.
        let client = sender(format, &relays).await;
        for i in 0..3 {
            let service = relays[i % relays.len()].peer_id();
            let response = client
                .lightpush(service, TOPIC, message(i), SendOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{format}: request {i}: {e}"));
            assert_eq!(response.status_code, 200, "{format}: request {i}");
        }
        client.shutdown().await;

        // The other format: every packet peels at the hops but fails at the exit, which counts
        // it as `payload_integrity` (and warns); the request times out.
        let other = Format::ALL.into_iter().find(|f| *f != format).unwrap();
        let client = sender(other, &relays).await;
        let exit = &relays[0];
        let before = exit.metrics().dropped_count(DropReason::PayloadIntegrity);
        let options = SendOptions {
            timeout: Duration::from_secs(2),
            ..SendOptions::default()
        };
        let result = client
            .lightpush(exit.peer_id(), TOPIC, message(9), options)
            .await;
        assert!(
            result.is_err(),
            "{other} sender, {format} network: {result:?}"
        );
        let after = exit.metrics().dropped_count(DropReason::PayloadIntegrity);
        assert_eq!(
            after - before,
            1,
            "{other} sender, {format} network: the exit counts the mismatch"
        );
        client.shutdown().await;
        for relay in relays {
            relay.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_format_names_the_format_a_testnet_speaks() {
    for format in Format::ALL {
        let args = TestnetArgs {
            mix_format: format,
            ..TestnetArgs::local(4)
        };
        let dir = tempfile::tempdir().unwrap();
        let (relays, pool) = start_testnet(&args).await.unwrap();
        // Pool files written before there were two formats name none: the probe must not
        // need the field.
        let mut unnamed = pool.clone();
        unnamed.format = None;
        let path = dir.path().join("pool.json");
        unnamed.write(&path).unwrap();
        let probes = mix_relay::probe::probe(&ProbeArgs {
            pool_file: Some(path),
            mixnode: Vec::new(),
            count: 3,
            timeout_ms: 3_000,
        })
        .await
        .unwrap();
        for p in &probes {
            let want = if p.format == format { 3 } else { 0 };
            assert_eq!(p.answered, want, "{format} testnet, {} probe", p.format);
        }
        let verdict = mix_relay::probe::verdict(&probes);
        assert!(
            verdict.starts_with(&format!("these nodes speak {format}")),
            "{verdict}"
        );
        for relay in relays {
            relay.shutdown().await;
        }
    }
}

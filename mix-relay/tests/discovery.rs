//! Discovery on loopback: a 12-relay testnet in which every relay knows only node 0, and a
//! sender that knows only node 0 finds the other 11 with their mix keys through Waku
//! rendezvous, sends through paths that use them, and drops relays that stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use mix_libp2p::SendOptions;
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::node::DiscoverySettings;
use mix_relay::waku::WakuMessage;
use mix_relay::{RelayHandle, Settings, start};

const TOPIC: &str = "/waku/2/rs/2/0";

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A sender that knows nothing but `bootstrap`'s address and looks up every second.
async fn bootstrap_only_sender(bootstrap: &RelayHandle) -> RelayHandle {
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.peers = vec![bootstrap.info().addrs[0].clone()];
    settings.discovery = DiscoverySettings {
        serve: None,
        register: false,
        ..DiscoverySettings::fast()
    };
    start(settings).await.unwrap()
}

async fn pool_ids(node: &RelayHandle) -> HashSet<PeerId> {
    node.pool()
        .await
        .unwrap()
        .iter()
        .map(|n| n.peer_id)
        .collect()
}

async fn send_some(client: &RelayHandle, services: &[PeerId], n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let service = services[i % services.len()];
        let message = WakuMessage {
            payload: format!("discovered {i}").into_bytes(),
            content_topic: "/mix-test/1/discovery/proto".into(),
            timestamp: Some(1_700_000_000_000_000_000 + i64::try_from(i).unwrap()),
            ..WakuMessage::default()
        };
        let options = SendOptions {
            timeout: Duration::from_secs(10),
            ..SendOptions::default()
        };
        match client.lightpush(service, TOPIC, message, options).await {
            Ok(r) if r.status_code == 200 => ok += 1,
            other => eprintln!("request {i} to {service}: {other:?}"),
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_only_sender_discovers_eleven_relays_uses_them_and_drops_stopped_ones() {
    logs();
    let args = TestnetArgs {
        discovery: true,
        ..TestnetArgs::local(12)
    };
    let (mut relays, _) = start_testnet(&args).await.unwrap();
    let keys: HashMap<PeerId, [u8; 32]> = relays
        .iter()
        .map(|r| (r.peer_id(), r.info().mix_public.to_bytes()))
        .collect();

    // The relays found each other through node 0 alone (start_testnet waited for it).
    for (i, relay) in relays.iter().enumerate() {
        let pool = pool_ids(relay).await;
        assert_eq!(pool.len(), 11, "relay {i} knows {} relays", pool.len());
        assert!(!pool.contains(&relay.peer_id()));
    }

    // The sender knows only node 0 and discovers all 12 (node 0 lists itself), with the keys
    // the relays really hold.
    let client = bootstrap_only_sender(&relays[0]).await;
    let started = tokio::time::Instant::now();
    let pool = client
        .wait_for_pool(12, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(pool.len(), 12, "discovered {} of 12", pool.len());
    eprintln!(
        "the sender discovered 12 relays in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    for node in &pool {
        assert_eq!(
            keys.get(&node.peer_id),
            Some(&node.public_key.to_bytes()),
            "{} has the key its relay holds",
            node.peer_id
        );
    }

    // Paths through the discovered nodes: every relay, not only the bootstrap, carries packets.
    let before: Vec<u64> = relays
        .iter()
        .map(|r| r.metrics().received_count())
        .collect();
    let services: Vec<PeerId> = relays[1..].iter().map(RelayHandle::peer_id).collect();
    let ok = send_some(&client, &services, 40).await;
    assert_eq!(ok, 40, "{ok} of 40 delivered");
    for (i, relay) in relays.iter().enumerate() {
        let carried = relay.metrics().received_count() - before[i];
        assert!(carried > 0, "relay {i} carried no packet");
    }

    // Two relays stop: they leave the sender's pool and every running relay's pool.
    let stopped: Vec<RelayHandle> = vec![relays.remove(7), relays.remove(3)];
    let gone: HashSet<PeerId> = stopped.iter().map(RelayHandle::peer_id).collect();
    let withdrawn_before = relays[0].metrics().discovery_count("served_unregistration");
    for relay in stopped {
        relay.shutdown().await;
    }
    let stopped_at = tokio::time::Instant::now();
    // They withdrew their records as they stopped: the bootstrap point read both withdrawals
    // and no longer hands them out, TTL or not.
    for _ in 0..50 {
        if relays[0].metrics().discovery_count("served_unregistration") >= withdrawn_before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        relays[0].metrics().discovery_count("served_unregistration") >= withdrawn_before + 2,
        "the stopped relays did not withdraw their records"
    );
    let deadline = stopped_at + Duration::from_secs(20);
    loop {
        let sender_pool = pool_ids(&client).await;
        let mut left = sender_pool.is_disjoint(&gone);
        for relay in &relays {
            left &= pool_ids(relay).await.is_disjoint(&gone);
        }
        if left {
            assert_eq!(sender_pool.len(), 10);
            eprintln!(
                "stopped relays left every pool {:.1} s after they stopped",
                stopped_at.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stopped relays still in pools after 20 s (sender: {} nodes)",
            sender_pool.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        client.metrics().discovery_count("node_removed") >= 2,
        "the removals are counted"
    );

    // The smaller mixnet still delivers.
    let services: Vec<PeerId> = relays[1..].iter().map(RelayHandle::peer_id).collect();
    assert_eq!(send_some(&client, &services, 10).await, 10);

    client.shutdown().await;
    for relay in relays {
        relay.shutdown().await;
    }
}

/// Every relay publishes a Waku ENR (mix bit, `mix-key`, its TCP and WebSocket addresses), and
/// a sender whose pool comes only from those `enr:` strings (as `--mixnode` takes them) gets
/// its lightpush through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_publish_enrs_that_work_as_pool_entries() {
    logs();
    let (relays, pool_file) = start_testnet(&TestnetArgs::local(5)).await.unwrap();
    let mut entries = Vec::new();
    for (relay, listed) in relays.iter().zip(&pool_file.nodes) {
        let text = relay
            .enr()
            .expect("a loopback relay's ENR fits in 300 bytes");
        assert_eq!(
            listed.enr.as_deref(),
            Some(text),
            "the pool file carries it"
        );
        let record = mix_discovery::enr::WakuEnr::decode(text).unwrap();
        assert_eq!(record.peer_id, relay.peer_id());
        assert_eq!(record.mix_key, Some(relay.info().mix_public));
        // Relay (bit 0), lightpush (bit 3), mix (bit 5); no filter or store.
        assert_eq!(record.waku2, Some(0x29));
        assert_eq!(record.shards, Some((2, vec![0])));
        assert!(
            record
                .multiaddrs
                .iter()
                .any(|a| a.to_string().ends_with("/ws")),
            "the WebSocket address is in multiaddrs: {:?}",
            record.multiaddrs
        );
        let entry = mix_relay::keys::parse_mixnode(text).unwrap();
        assert_eq!(entry.addr, relay.info().addrs[0]);
        entries.push(entry);
    }
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.mixnodes = entries;
    let client = start(settings).await.unwrap();
    assert_eq!(client.pool().await.unwrap().len(), 5);
    let services: Vec<PeerId> = relays.iter().map(RelayHandle::peer_id).collect();
    assert_eq!(send_some(&client, &services, 5).await, 5);
    // Bad ENRs are refused with the reason.
    let err = mix_relay::keys::parse_mixnode("enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8").unwrap_err();
    assert!(err.to_string().contains("waku2 bit 5"), "{err}");
    client.shutdown().await;
    for relay in relays {
        relay.shutdown().await;
    }
}

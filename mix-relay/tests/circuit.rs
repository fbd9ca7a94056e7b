//! A sender that accepts no connections receives its SURB replies through a circuit relay
//! (circuit-relay v2): the relay serves the reservation, the SURB's last hop dials the
//! circuit address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use mix_libp2p::{MixNode, SendOptions};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::waku::WakuMessage;
use mix_relay::{Settings, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_a_sender_behind_a_circuit_relay() {
    let args = TestnetArgs::local(5);
    let (relays, _) = start_testnet(&args).await.unwrap();
    let gateway = relays[0].info().addrs[0].clone();
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.relay_via = Some(gateway);
    let sender = start(settings).await.unwrap();
    let me = &sender.info().addrs;
    assert!(
        !me.is_empty() && me.iter().all(mix_libp2p::is_circuit),
        "only circuit addresses are advertised: {me:?}"
    );
    let packet_address = sender.info().mix_node().unwrap().address;
    assert_eq!(
        packet_address
            .relay
            .map(|r| mix_libp2p::peer_id(&r).unwrap()),
        Some(relays[0].peer_id()),
        "SURBs name the gateway as the circuit relay"
    );

    let pool: Vec<MixNode> = relays
        .iter()
        .map(|r| r.info().mix_node().unwrap())
        .collect();
    sender.add_mix_nodes(pool).await.unwrap();
    for i in 0..10 {
        let message = WakuMessage {
            payload: format!("via circuit {i}").into_bytes(),
            content_topic: "/mix-test/1/circuit/proto".into(),
            timestamp: Some(1_900_000_000_000_000_000 + i),
            ..WakuMessage::default()
        };
        let service = relays[1 + usize::try_from(i).unwrap() % 4].peer_id();
        let response = sender
            .lightpush(service, "/waku/2/rs/2/0", message, SendOptions::default())
            .await
            .unwrap();
        assert_eq!(response.status_code, 200, "request {i}");
    }
    assert_eq!(sender.metrics().replies_received_count(), 10);
    sender.shutdown().await;
    for r in relays {
        r.shutdown().await;
    }
}

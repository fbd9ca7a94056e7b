//! Mix addresses can name QUIC-v1 (transport byte 1): relays known only by their QUIC addresses
//! carry a request and its SURB reply over QUIC, and a registered protocol answers at the exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use libp2p::Multiaddr;
use mix_libp2p::{Destination, MixNode, SendOptions};
use mix_relay::{RelayHandle, Settings, start};

fn quic_only(relay: &RelayHandle) -> MixNode {
    let info = relay.info();
    let quic: Vec<Multiaddr> = info
        .addrs
        .iter()
        .filter(|a| a.to_string().contains("/quic-v1/"))
        .cloned()
        .collect();
    assert_eq!(quic.len(), 1, "{:?}", info.addrs);
    let node = MixNode::new(info.peer_id, quic, info.mix_public).unwrap();
    assert_eq!(node.address.transport, mix_core::Transport::QuicV1);
    node
}

async fn quic_relay() -> RelayHandle {
    let mut settings = Settings::local();
    settings.quic_port = Some(0);
    settings.shards = Vec::new();
    start(settings).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_reply_travel_over_quic() {
    let mut relays = Vec::new();
    for _ in 0..4 {
        relays.push(quic_relay().await);
    }
    // The sender is reached over TCP (the SURB's last hop); every relay-to-relay hop is QUIC.
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    let sender = start(settings).await.unwrap();
    let pool: Vec<MixNode> = relays.iter().map(quic_only).collect();
    sender.add_mix_nodes(pool).await.unwrap();

    let exit = &relays[3];
    let mut requests = exit.register_protocol("/test/quic/1.0.0").await.unwrap();
    let answer = tokio::spawn(async move {
        let request = requests.recv().await.unwrap();
        assert!(request.expects_reply());
        let mut reply = b"echo: ".to_vec();
        reply.extend_from_slice(&request.body);
        request.respond(reply);
    });
    let reply = sender
        .send(
            Destination::ExitIsDestination(exit.peer_id()),
            "/test/quic/1.0.0",
            b"over quic".to_vec(),
            SendOptions::default(),
        )
        .await
        .unwrap();
    answer.await.unwrap();
    assert_eq!(reply, b"echo: over quic");
    let forwarded: u64 = relays.iter().map(|r| r.metrics().forwarded_count()).sum();
    assert_eq!(
        forwarded, 5,
        "two forwards each way, plus the exit's reply packet"
    );
    sender.shutdown().await;
    for r in relays {
        r.shutdown().await;
    }
}

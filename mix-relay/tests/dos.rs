//! Denial-of-service limits that need a relay configured unlike the local testnet (audit F3,
//! F7), over real sockets: a relay that refuses non-global next hops never dials one, and a
//! gateway relays circuits only from the mix nodes of its pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use mix_core::{Delay, Hop, NodeSecretKey, PACKET_LEN, PacketBuilder, Route};
use mix_libp2p::{Frame, MixNode};
use mix_relay::metrics::DropReason;
use mix_relay::waku::LIGHTPUSH_PROTOCOL;
use mix_relay::{RelayHandle, Settings, start};

fn hop(node: &MixNode) -> Hop {
    Hop {
        address: node.address,
        public_key: node.public_key,
    }
}

fn packet(nodes: [&MixNode; 3]) -> Frame {
    let route = Route {
        hops: nodes.map(hop),
        delays: [Delay::ZERO; 2],
    };
    let mut packet = Box::new([0u8; PACKET_LEN]);
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    PacketBuilder::new(&route)
        .build(&mut rng, LIGHTPUSH_PROTOCOL, b"\x00", packet.as_mut_slice())
        .unwrap();
    Frame::new(packet)
}

/// A node that does not exist, at `addr`.
fn phantom(addr: &Multiaddr) -> MixNode {
    let peer = libp2p::identity::Keypair::generate_secp256k1()
        .public()
        .to_peer_id();
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    MixNode::new(
        peer,
        vec![addr.clone().with(Protocol::P2p(peer))],
        NodeSecretKey::generate(&mut rng).public_key(),
    )
    .unwrap()
}

fn sender_only() -> Settings {
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.discovery.lookup = false;
    settings.discovery.register = false;
    settings.discovery.serve = None;
    settings
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn node(r: &RelayHandle) -> MixNode {
    r.info().mix_node().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_relay_never_dials_a_loopback_next_hop() {
    let mut settings = sender_only();
    settings.limits.allow_private_addresses = false;
    let relay = start(settings).await.unwrap();
    let attacker = start(sender_only()).await.unwrap();
    // The would-be next hop: a listener on 127.0.0.1 that counts connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let pit = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            held.push(s);
        }
    });
    let target = Multiaddr::empty()
        .with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
        .with(Protocol::Tcp(port));
    let r = node(&relay);
    let (next, last) = (phantom(&target), phantom(&target));
    for _ in 0..5 {
        attacker
            .send_frame(
                relay.peer_id(),
                relay.info().addrs.clone(),
                packet([&r, &next, &last]),
            )
            .await
            .unwrap();
    }
    let metrics = relay.shared_metrics();
    wait_until("5 × dial_refused", || {
        metrics.dropped_count(DropReason::DialRefused) == 5
    })
    .await;
    // Meanwhile it still serves: a packet that stays at the relay (it is every hop) exits.
    attacker
        .send_frame(
            relay.peer_id(),
            relay.info().addrs.clone(),
            packet([&r, &r, &r]),
        )
        .await
        .unwrap();
    wait_until("the exit", || {
        metrics.exit_count(mix_relay::metrics::ExitKind::ExitIsDestination) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        0,
        "no connection to 127.0.0.1"
    );
    pit.abort();
    attacker.shutdown().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_relays_circuits_only_from_mix_nodes_of_its_pool() {
    let gateway = start(Settings::local()).await.unwrap();
    let mut behind = sender_only();
    behind.relay_via = Some(gateway.info().addrs[0].clone());
    let browser = start(behind).await.unwrap();
    let stranger = start(sender_only()).await.unwrap();
    let b = node(&browser);
    // A packet for which the browser is the first hop (it drops it: no such route of its
    // own), so the browser's `received` counter tells whether the circuit carried it.
    let frame = || packet([&b, &b, &b]);
    let received = browser.shared_metrics();
    stranger
        .send_frame(browser.peer_id(), browser.info().addrs.clone(), frame())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        received.received_count(),
        0,
        "a stranger's circuit is refused"
    );
    // Once the stranger is a mix node of the gateway's pool, its circuit is relayed.
    gateway.add_mix_nodes(vec![node(&stranger)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..20 {
        stranger
            .send_frame(browser.peer_id(), browser.info().addrs.clone(), frame())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        if received.received_count() > 0 {
            break;
        }
    }
    assert!(
        received.received_count() > 0,
        "a pool member's circuit is relayed"
    );
    for r in [browser, stranger, gateway] {
        r.shutdown().await;
    }
}

//! Relays listen on libp2p WebTransport: a native rust-libp2p client dials the advertised
//! certhash address and runs ping and identify; rotations renew the address everywhere it is
//! advertised (the handle, identify, rendezvous records, the pool file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use futures::StreamExt as _;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, SwarmBuilder, identify, identity, ping};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::pool_file::PoolNode;
use mix_relay::{RelayHandle, Settings, start};
use mix_webtransport::is_webtransport;

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Probe {
    ping: ping::Behaviour,
    identify: identify::Behaviour,
}

fn webtransport_addrs(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    addrs
        .iter()
        .filter(|a| is_webtransport(a))
        .cloned()
        .collect()
}

/// Dials `addr` over WebTransport only; returns the ping RTT and the addresses identify
/// reported.
async fn probe(addr: &Multiaddr) -> (Duration, Vec<Multiaddr>) {
    let mut swarm = SwarmBuilder::with_existing_identity(identity::Keypair::generate_ed25519())
        .with_tokio()
        .with_other_transport(|key| {
            mix_webtransport::Transport::new(mix_webtransport::Config::new(key))
        })
        .unwrap()
        .with_behaviour(|key| Probe {
            ping: ping::Behaviour::new(
                ping::Config::new().with_interval(Duration::from_millis(100)),
            ),
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/id/1.0.0".into(),
                key.public(),
            )),
        })
        .unwrap()
        .build();
    swarm.dial(addr.clone()).unwrap();
    let (mut rtt, mut listen) = (None, None);
    tokio::time::timeout(Duration::from_secs(20), async {
        while rtt.is_none() || listen.is_none() {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(ProbeEvent::Ping(ping::Event { result: Ok(r), .. })) => {
                    rtt = Some(r);
                }
                SwarmEvent::Behaviour(ProbeEvent::Identify(identify::Event::Received {
                    info,
                    ..
                })) => listen = Some(info.listen_addrs),
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial {addr}: {error}"),
                _ => {}
            }
        }
    })
    .await
    .expect("ping and identify within 20 s");
    (rtt.unwrap(), listen.unwrap())
}

async fn relay(rotate: Duration) -> RelayHandle {
    let mut settings = Settings::local();
    settings.webtransport_port = Some(0);
    settings.webtransport_rotate_every = rotate;
    settings.shards = Vec::new();
    start(settings).await.unwrap()
}

fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_client_dials_the_advertised_address_and_pings() {
    let relay = relay(Duration::from_secs(3600)).await;
    let advertised = webtransport_addrs(&relay.info().addrs);
    assert_eq!(advertised.len(), 1, "{:?}", relay.info().addrs);
    let addr = &advertised[0];
    let hashes = addr
        .iter()
        .filter(|p| matches!(p, Protocol::Certhash(_)))
        .count();
    assert_eq!(hashes, 2, "current and next certificate: {addr}");
    assert_eq!(addr.iter().last(), Some(Protocol::P2p(relay.peer_id())));
    // The packet address stays TCP; the ENR leaves out the rotating address.
    let node = relay.info().mix_node().unwrap();
    assert_eq!(node.address.transport, mix_core::Transport::Tcp);
    let enr = mix_discovery::enr::WakuEnr::decode(relay.enr().unwrap()).unwrap();
    assert!(
        !enr.multiaddrs.iter().any(is_webtransport),
        "{:?}",
        enr.multiaddrs
    );
    assert!(
        PoolNode::from_relay(&relay)
            .multiaddrs
            .contains(&addr.to_string())
    );

    let (_rtt, listen) = probe(addr).await;
    assert!(
        listen.contains(&without_p2p(addr)),
        "identify lists the WebTransport address: {listen:?}"
    );
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_renews_the_advertised_address() {
    let relay = relay(Duration::from_secs(2)).await;
    let first = webtransport_addrs(&relay.current_addrs()).remove(0);
    let mut changes = relay.watch_addrs();
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .expect("a rotation within 10 s")
        .unwrap();
    let now = webtransport_addrs(&relay.current_addrs());
    assert_eq!(now.len(), 1, "one WebTransport address at a time: {now:?}");
    let second = now[0].clone();
    assert_ne!(second, first);
    assert_eq!(
        mix_webtransport::without_certhashes(&second),
        mix_webtransport::without_certhashes(&first),
        "same port, new certhashes"
    );
    assert!(
        PoolNode::from_relay(&relay)
            .multiaddrs
            .contains(&second.to_string())
    );
    // Both the new address and the one from before the rotation dial.
    let (_, listen) = probe(&second).await;
    assert!(listen.contains(&without_p2p(&second)), "{listen:?}");
    assert!(!listen.contains(&without_p2p(&first)), "{listen:?}");
    probe(&first).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendezvous_records_carry_the_webtransport_address() {
    let mut args = TestnetArgs::local(4);
    args.discovery = true;
    args.webtransport = true;
    let (relays, pool) = start_testnet(&args).await.unwrap();
    for entry in &pool.nodes {
        assert!(
            entry
                .multiaddrs
                .iter()
                .any(|a| a.contains("/webtransport/certhash/")),
            "pool file entry: {:?}",
            entry.multiaddrs
        );
    }
    // Relay 1 knew only relay 0 and found the others through rendezvous.
    let found = relays[1]
        .wait_for_pool(3, Duration::from_secs(30))
        .await
        .unwrap();
    for node in found.iter().filter(|n| n.peer_id != relays[1].peer_id()) {
        let relay = relays.iter().find(|r| r.peer_id() == node.peer_id).unwrap();
        let expected = webtransport_addrs(&relay.current_addrs());
        let in_record: Vec<Multiaddr> = webtransport_addrs(&node.addresses)
            .iter()
            .map(without_p2p)
            .collect();
        assert!(
            expected
                .iter()
                .map(without_p2p)
                .any(|a| in_record.contains(&a)),
            "record of {}: {:?}",
            node.peer_id,
            node.addresses
        );
    }
    for r in relays {
        r.shutdown().await;
    }
}

//! In-process mixnets of 5–7 relays on loopback: lightpush through 3 hops with SURB replies,
//! the drops a relay must make silently, forward mode, dead hops and redundancy, and a tampering
//! exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use mix_core::{Delay, Hop, PACKET_LEN, PacketBuilder, Route};
use mix_libp2p::{ClientError, Destination, Frame, MixNode, SendOptions};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::metrics::DropReason;
use mix_relay::waku::{self, LIGHTPUSH_PROTOCOL, LightPushResponse, WakuMessage};
use mix_relay::{LightpushError, RelayHandle, Settings, start};
use prost::Message as _;

const TOPIC: &str = "/waku/2/rs/2/0";

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn testnet(nodes: usize) -> Vec<RelayHandle> {
    logs();
    let args = TestnetArgs::local(nodes);
    start_testnet(&args).await.unwrap().0
}

/// A sender-only node (no shards) whose pool is `relays`.
async fn sender(relays: &[&RelayHandle]) -> RelayHandle {
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    let node = start(settings).await.unwrap();
    let pool: Vec<MixNode> = relays
        .iter()
        .map(|r| r.info().mix_node().unwrap())
        .collect();
    node.add_mix_nodes(pool).await.unwrap();
    node
}

fn message(text: &str) -> WakuMessage {
    WakuMessage {
        payload: text.as_bytes().to_vec(),
        content_topic: "/mix-test/1/chat/proto".into(),
        timestamp: Some(1_700_000_000_000_000_000),
        ..WakuMessage::default()
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn shutdown(relays: Vec<RelayHandle>) {
    for r in relays {
        r.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_lightpush_requests_through_the_mixnet() {
    let relays = testnet(5).await;
    let all: Vec<&RelayHandle> = relays.iter().collect();
    let client = sender(&all).await;
    // Relay 0 listens on the shard; the services are relays 1..4, so every message must cross
    // the gossipsub mesh to reach it.
    let mut seen = relays[0].subscribe_messages();
    let services: Vec<PeerId> = relays[1..].iter().map(RelayHandle::peer_id).collect();
    let client = &client;
    let responses: Vec<(usize, Result<LightPushResponse, LightpushError>)> =
        futures::stream::iter(0..100)
            .map(|i| {
                let service = services[i % services.len()];
                async move {
                    let mut msg = message(&format!("message {i}"));
                    msg.timestamp = Some(1_700_000_000_000_000_000 + i as i64);
                    (
                        i,
                        client
                            .lightpush(service, TOPIC, msg, SendOptions::default())
                            .await,
                    )
                }
            })
            .buffer_unordered(10)
            .collect()
            .await;
    for (i, r) in &responses {
        let r = r.as_ref().unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status_code, 200, "request {i}: {r:?}");
        assert_eq!(
            r.relay_peer_count,
            Some(4),
            "request {i}: every other relay is a relay peer"
        );
    }
    let mut payloads = HashSet::new();
    while payloads.len() < 100 {
        let (topic, msg) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("relay 0 saw every message")
            .unwrap();
        assert_eq!(topic, TOPIC);
        payloads.insert(String::from_utf8(msg.payload).unwrap());
    }
    for i in 0..100 {
        assert!(payloads.contains(&format!("message {i}")));
    }
    let replies: u64 = relays
        .iter()
        .map(|r| r.metrics().replies_sent_count())
        .sum();
    assert_eq!(replies, 100, "one SURB reply per request");
    assert_eq!(client.metrics().replies_received_count(), 100);
    let lightpush_ok: u64 = relays
        .iter()
        .map(|r| r.metrics().lightpush_count(200))
        .sum();
    assert_eq!(lightpush_ok, 100);
    for r in &relays {
        for reason in DropReason::ALL {
            assert_eq!(
                r.metrics().dropped_count(reason),
                0,
                "{reason:?} at {}",
                r.peer_id()
            );
        }
    }
    shutdown(relays).await;
}

/// A packet to `route` (exit == destination at its last hop) for `codec`, without SURBs.
fn packet(route: [&RelayHandle; 3], codec: &str, body: &[u8]) -> Box<[u8; PACKET_LEN]> {
    let hop = |r: &RelayHandle| {
        let node = r.info().mix_node().unwrap();
        Hop {
            address: node.address,
            public_key: node.public_key,
        }
    };
    let route = Route {
        hops: [hop(route[0]), hop(route[1]), hop(route[2])],
        delays: [Delay::ZERO; 2],
    };
    let mut packet = Box::new([0u8; PACKET_LEN]);
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    PacketBuilder::new(&route)
        .build(&mut rng, codec, body, packet.as_mut_slice())
        .unwrap();
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_tampered_and_missized_packets_are_dropped_silently() {
    let relays = testnet(5).await;
    let client = sender(&[]).await;
    let mut exits = relays[2]
        .register_protocol("/test/echo/1.0.0")
        .await
        .unwrap();
    let (first, addrs) = (relays[0].peer_id(), relays[0].info().addrs.clone());
    let good = packet(
        [&relays[0], &relays[1], &relays[2]],
        "/test/echo/1.0.0",
        b"once",
    );

    client
        .send_frame(first, addrs.clone(), Frame::new(good.clone()))
        .await
        .unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), exits.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered.body, b"once");
    assert!(!delivered.expects_reply());

    // The same bytes again: the first hop has the tag.
    client
        .send_frame(first, addrs.clone(), Frame::new(good.clone()))
        .await
        .unwrap();
    eventually("the replay drop", || {
        relays[0].metrics().dropped_count(DropReason::Replay) == 1
    })
    .await;

    // One bit flipped in β: the MAC fails.
    let mut tampered = packet(
        [&relays[0], &relays[1], &relays[2]],
        "/test/echo/1.0.0",
        b"tampered",
    );
    tampered[40] ^= 0x01;
    client
        .send_frame(first, addrs.clone(), Frame::new(tampered))
        .await
        .unwrap();
    eventually("the MAC drop", || {
        relays[0].metrics().dropped_count(DropReason::Rejected) == 1
    })
    .await;

    // Raw frames of the wrong size on one /mix/1.0.0 stream: 100 bytes (read and dropped), then
    // a prefix above 4608 (the stream is closed).
    let mut control = client.stream_control();
    let mut stream = control
        .open_stream(first, StreamProtocol::new("/mix/1.0.0"))
        .await
        .unwrap();
    let mut bytes = vec![100u8];
    bytes.extend_from_slice(&[0u8; 100]);
    bytes.extend_from_slice(&[0x81, 0x24]); // 4609
    bytes.extend_from_slice(&[0u8; 64]);
    stream.write_all(&bytes).await.unwrap();
    stream.flush().await.unwrap();
    eventually("the size drops", || {
        relays[0].metrics().dropped_count(DropReason::Length) == 1
            && relays[0].metrics().dropped_count(DropReason::Oversize) == 1
    })
    .await;

    // Only the good packet went on: one forward from each of the first two hops.
    assert_eq!(relays[0].metrics().forwarded_count(), 1);
    assert_eq!(relays[1].metrics().forwarded_count(), 1);
    assert!(exits.try_recv().is_err(), "nothing else reached the exit");
    // Nothing is ever written back on a mix stream.
    shutdown(relays).await;
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_mode_reaches_a_destination_and_an_unreachable_one_still_replies_empty() {
    let relays = testnet(5).await;
    // The destination is relay 4, reached as a plain lightpush service (no mix on its side of
    // the exchange); the pool holds relays 0..3.
    let pool: Vec<&RelayHandle> = relays[..4].iter().collect();
    let client = sender(&pool).await;
    let dest = relays[4].info().mix_node().unwrap().address;
    let request = waku::LightPushRequest {
        request_id: "forward-1".into(),
        pubsub_topic: Some(TOPIC.into()),
        message: Some(message("forwarded")),
    };
    let reply = client
        .send(
            Destination::Forward(dest),
            LIGHTPUSH_PROTOCOL,
            waku::encode_length_prefixed(&request),
            SendOptions::default(),
        )
        .await
        .unwrap();
    let response =
        LightPushResponse::decode(waku::decode_length_prefixed(&reply).unwrap()).unwrap();
    assert_eq!(
        (response.request_id.as_str(), response.status_code),
        ("forward-1", 200)
    );
    let forwards: u64 = relays
        .iter()
        .map(|r| {
            r.metrics()
                .exit_count(mix_relay::metrics::ExitKind::Forward)
        })
        .sum();
    assert_eq!(forwards, 1);

    // A destination nobody listens at: the exit still answers, with an empty response (Nim).
    let nobody = libp2p::identity::Keypair::generate_secp256k1()
        .public()
        .to_peer_id();
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/9/p2p/{nobody}")
        .parse()
        .unwrap();
    let dead = mix_libp2p::from_multiaddr(&addr, None).unwrap();
    let reply = client
        .send(
            Destination::Forward(dead),
            LIGHTPUSH_PROTOCOL,
            waku::encode_length_prefixed(&request),
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert!(reply.is_empty(), "{reply:?}");
    shutdown(relays).await;
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hop_is_a_timeout_and_redundant_paths_get_through() {
    let mut relays = testnet(7).await;
    let dead = relays.remove(6);
    let dead_info = dead.info().mix_node().unwrap();
    dead.shutdown().await;

    // A pool of three: every path (2 intermediates + the service) crosses the dead node.
    let client = sender(&[&relays[0], &relays[1]]).await;
    client.add_mix_nodes(vec![dead_info.clone()]).await.unwrap();
    let opts = SendOptions {
        timeout: Duration::from_secs(2),
        ..SendOptions::default()
    };
    let started = std::time::Instant::now();
    let err = client
        .lightpush(relays[0].peer_id(), TOPIC, message("lost"), opts)
        .await
        .unwrap_err();
    // The dead node as an intermediate: the timeout; as the first hop: the failed dial fails
    // the request at once (the sender's rule for unreachable first hops).
    match &err {
        LightpushError::Mix(ClientError::Timeout) => {}
        LightpushError::Mix(ClientError::FirstHopUnreachable { peer, .. }) => {
            assert_eq!(*peer, dead_info.peer_id, "{err}");
        }
        other => panic!("{other}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout fired on time"
    );
    client.shutdown().await;

    // Seven nodes, one dead: two copies on disjoint pairs of intermediates, each copy's SURB
    // returning through its own pair. The dead node sits in at most one pair, so the other
    // copy's round trip avoids it: every request gets through. (The first client stopped and
    // withdrew its record from the rendezvous points, so it is not a second dead node.)
    let all: Vec<&RelayHandle> = relays.iter().collect();
    let client = sender(&all).await;
    client.add_mix_nodes(vec![dead_info]).await.unwrap();
    let opts = SendOptions {
        redundancy: 2,
        timeout: Duration::from_secs(5),
        ..SendOptions::default()
    };
    let mut delivered = 0u64;
    for i in 0..10 {
        let mut msg = message(&format!("redundant {i}"));
        msg.timestamp = Some(1_800_000_000_000_000_000 + i);
        match client
            .lightpush(
                relays[usize::try_from(i).unwrap() % 6].peer_id(),
                TOPIC,
                msg,
                opts,
            )
            .await
        {
            Ok(r) => {
                assert_eq!(r.status_code, 200);
                delivered += 1;
            }
            Err(LightpushError::Mix(ClientError::Timeout)) => {}
            Err(e) => panic!("redundant {i}: {e}"),
        }
    }
    assert_eq!(
        delivered, 10,
        "{delivered} of 10 redundant requests delivered"
    );
    // Each request was answered once to the caller, whatever the second copy did.
    assert_eq!(client.metrics().replies_received_count(), delivered);
    // And the dead node was on some path: a hop failed to reach it.
    let failed: u64 = relays
        .iter()
        .chain([&client])
        .map(|r| r.metrics().dropped_count(DropReason::SendFailed))
        .sum();
    assert!(failed > 0, "no copy crossed the dead node");
    client.shutdown().await;
    shutdown(relays).await;
}

/// Needs the tampering hook: debug builds, or `--features test-hooks`.
#[cfg(any(debug_assertions, feature = "test-hooks"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_from_a_tampering_exit_fail_the_request_at_once() {
    logs();
    let mut args = TestnetArgs::local(4);
    args.tamper_replies = true;
    let relays = start_testnet(&args).await.unwrap().0;
    let all: Vec<&RelayHandle> = relays.iter().collect();
    let client = sender(&all).await;
    let opts = SendOptions {
        surbs: 2,
        timeout: Duration::from_secs(20),
        ..SendOptions::default()
    };
    let err = client
        .lightpush(relays[0].peer_id(), TOPIC, message("tampered"), opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LightpushError::Mix(ClientError::InvalidReply)),
        "{err}"
    );
    // Both SURBs came back unopenable (not a Timeout: the request ended when the last did).
    assert_eq!(client.metrics().replies_received_count(), 0);
    client.shutdown().await;
    shutdown(relays).await;
}

/// Found by the browser suite: a testnet idle for longer than the stream idle timeout delivered
/// nothing more, because each relay kept writing into the pooled stream its next hop had
/// reclaimed. Here the timeout is 1 s; after 3 s of silence every request still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_after_the_relays_reclaimed_their_idle_streams_get_through() {
    logs();
    let mut args = TestnetArgs::local(5);
    args.stream_idle_timeout_secs = Some(1);
    let relays = start_testnet(&args).await.unwrap().0;
    let all: Vec<&RelayHandle> = relays.iter().collect();
    let client = sender(&all).await;
    let service = relays[1].peer_id();
    for round in 0..3 {
        for i in 0..4 {
            let response = client
                .lightpush(
                    service,
                    TOPIC,
                    message(&format!("round {round} message {i}")),
                    SendOptions::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("round {round} request {i}: {e}"));
            assert_eq!(response.status_code, 200, "round {round} request {i}");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let reclaimed: u64 = relays
        .iter()
        .map(|r| r.metrics().dropped_count(DropReason::StreamIdleClosed))
        .sum();
    assert!(reclaimed > 0, "the relays reclaimed idle streams");
    client.shutdown().await;
    shutdown(relays).await;
}

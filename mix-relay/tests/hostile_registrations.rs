//! F11: filling a relay's rendezvous registry, over real TCP on loopback.
//!
//! The victim serves rendezvous with room for 40 registrations (50,000 in production: the
//! shape is the same, the test is just smaller). Four attacker identities, all connected from
//! 127.0.0.2, each try to register in 20 namespaces with nwaku's longest TTL (72 h): before
//! the fix the first 40 filled the registry for 72 h and every relay that joined later got
//! `E_UNAVAILABLE`. Now one address holds at most 32 registrations and one peer 16, each
//! granted at most 5 min, so a relay that joins afterwards (from 127.0.0.1) still registers,
//! is listed, and the victim keeps serving honest traffic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use futures::StreamExt as _;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{Swarm, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};
use mix_core::NodeSecretKey;
use mix_discovery::proto::{Discover, Message, MessageType, Register, ResponseStatus};
use mix_discovery::{MixRecord, RegistryConfig};
use mix_libp2p::SendOptions;
use mix_relay::node::DiscoverySettings;
use mix_relay::waku::WakuMessage;
use mix_relay::{RelayHandle, Settings, start};

const TOPIC: &str = "/waku/2/rs/2/0";
const MIX_NAMESPACE: &str = "rs/2/mix";

type Rendezvous = request_response::Behaviour<mix_discovery::Codec>;

fn rendezvous_swarm(key: Keypair) -> Swarm<Rendezvous> {
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                mix_discovery::Codec,
                [(
                    StreamProtocol::new(mix_discovery::PROTOCOL_NAME),
                    ProtocolSupport::Outbound,
                )],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Waits until `swarm` is connected to `peer`.
async fn connected(swarm: &mut Swarm<Rendezvous>, peer: PeerId) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } =
                swarm.select_next_some().await
                && peer_id == peer
            {
                return;
            }
        }
    })
    .await
    .expect("no connection to the victim");
}

/// Sends `requests` to `peer` and collects the answers (`None` for a failed request).
async fn exchange(
    swarm: &mut Swarm<Rendezvous>,
    peer: PeerId,
    requests: Vec<Message>,
) -> Vec<Option<Message>> {
    let mut ids = Vec::new();
    for request in requests {
        ids.push(swarm.behaviour_mut().send_request(&peer, request));
    }
    let mut answers: Vec<Option<Option<Message>>> = vec![None; ids.len()];
    tokio::time::timeout(Duration::from_secs(20), async {
        while answers.iter().any(Option::is_none) {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) => {
                    if let Some(i) = ids.iter().position(|id| *id == request_id) {
                        answers[i] = Some(Some(response));
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    ..
                }) => {
                    if let Some(i) = ids.iter().position(|id| *id == request_id) {
                        answers[i] = Some(None);
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the victim stopped answering");
    answers.into_iter().map(Option::flatten).collect()
}

/// One attacker identity, listening on 127.0.0.2 and dialed by the victim (so the victim sees
/// it at 127.0.0.2), registers its own signed record in `namespaces` namespaces with a 72 h
/// TTL. Returns the TTLs granted.
async fn attacker(victim: &RelayHandle, namespaces: usize) -> Vec<u64> {
    let key = Keypair::generate_secp256k1();
    let me = key.public().to_peer_id();
    let record = MixRecord {
        peer_id: me,
        seq: 1,
        addrs: vec!["/ip4/127.0.0.2/tcp/9".parse().unwrap()],
        mix_key: NodeSecretKey::generate(&mut rand::rng()).public_key(),
    }
    .sign(&key)
    .unwrap();
    let mut swarm = rendezvous_swarm(key);
    swarm
        .listen_on("/ip4/127.0.0.2/tcp/0".parse().unwrap())
        .unwrap();
    let listen = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    victim
        .dial(listen.with(libp2p::multiaddr::Protocol::P2p(me)))
        .await
        .unwrap();
    connected(&mut swarm, victim.peer_id()).await;
    let requests = (0..namespaces)
        .map(|i| Message {
            r#type: Some(MessageType::Register as i32),
            register: Some(Register {
                ns: Some(format!("filler/{i}")),
                signed_peer_record: Some(record.clone()),
                ttl: Some(72 * 3600),
            }),
            ..Message::default()
        })
        .collect();
    exchange(&mut swarm, victim.peer_id(), requests)
        .await
        .into_iter()
        .filter_map(|answer| {
            let r = answer?.register_response?;
            (r.status == Some(ResponseStatus::Ok as i32)).then(|| r.ttl.unwrap_or(0))
        })
        .collect()
}

/// The peers the victim lists in the mix namespace, asked as a stranger from 127.0.0.1.
async fn listed(victim: &RelayHandle) -> Vec<PeerId> {
    let mut swarm = rendezvous_swarm(Keypair::generate_secp256k1());
    let addr: Multiaddr = victim.info().addrs[0].clone();
    swarm.dial(addr).unwrap();
    connected(&mut swarm, victim.peer_id()).await;
    let lookup = Message {
        r#type: Some(MessageType::Discover as i32),
        discover: Some(Discover {
            ns: Some(MIX_NAMESPACE.into()),
            limit: Some(100),
            cookie: None,
        }),
        ..Message::default()
    };
    let answer = exchange(&mut swarm, victim.peer_id(), vec![lookup])
        .await
        .pop()
        .flatten()
        .and_then(|m| m.discover_response)
        .expect("a lookup answer");
    answer
        .registrations
        .iter()
        .filter_map(|r| MixRecord::open(r.signed_peer_record.as_deref()?).ok())
        .map(|r| r.peer_id)
        .collect()
}

async fn relay(bootstrap: Option<&RelayHandle>, serve: Option<RegistryConfig>) -> RelayHandle {
    let mut settings = Settings::local();
    settings.peers = bootstrap
        .map(|b| b.info().addrs[0].clone())
        .into_iter()
        .collect();
    settings.discovery = DiscoverySettings {
        serve,
        ..DiscoverySettings::fast()
    };
    start(settings).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_fill_the_registry_and_lock_new_relays_out() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let fast = DiscoverySettings::fast().serve.unwrap();
    let limits = RegistryConfig {
        max_total: 40,
        ..fast
    };
    let victim = relay(None, Some(limits)).await;
    let mut honest = Vec::new();
    for _ in 0..3 {
        honest.push(relay(Some(&victim), Some(fast)).await);
    }

    // The attack: 4 identities x 20 namespaces, all from 127.0.0.2, asking for 72 h each.
    let mut granted = Vec::new();
    for _ in 0..4 {
        granted.push(attacker(&victim, 20).await);
    }
    let accepted: usize = granted.iter().map(Vec::len).sum();
    eprintln!(
        "the attacker asked for 80 registrations of 72 h from one address; granted {accepted} ({:?} per identity), TTLs {:?}",
        granted.iter().map(Vec::len).collect::<Vec<_>>(),
        granted.iter().flatten().max()
    );
    assert_eq!(accepted, limits.max_per_ip, "per address");
    assert!(granted.iter().all(|g| g.len() <= limits.max_per_peer));
    assert!(
        granted
            .iter()
            .flatten()
            .all(|ttl| *ttl <= limits.max_granted_ttl.as_secs()),
        "a TTL past the granted maximum"
    );

    // A relay that joins after the attack registers at the victim and is listed.
    let newcomer = relay(Some(&victim), Some(fast)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if listed(&victim).await.contains(&newcomer.peer_id()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the newcomer was locked out of the victim's registry"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Honest traffic: a sender that knows only the victim finds every relay, the newcomer
    // included, and lightpushes through the victim.
    let mut settings = Settings::local();
    settings.shards = Vec::new();
    settings.peers = vec![victim.info().addrs[0].clone()];
    settings.discovery = DiscoverySettings {
        serve: None,
        register: false,
        ..DiscoverySettings::fast()
    };
    let sender = start(settings).await.unwrap();
    let pool = sender
        .wait_for_pool(5, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        pool.iter().any(|n| n.peer_id == newcomer.peer_id()),
        "the sender found the newcomer through the victim"
    );
    let mut ok = 0;
    for i in 0..5 {
        let message = WakuMessage {
            payload: format!("honest {i}").into_bytes(),
            content_topic: "/mix-test/1/registry/proto".into(),
            ..WakuMessage::default()
        };
        let options = SendOptions {
            timeout: Duration::from_secs(10),
            ..SendOptions::default()
        };
        match sender
            .lightpush(victim.peer_id(), TOPIC, message, options)
            .await
        {
            Ok(r) if r.status_code == 200 => ok += 1,
            other => eprintln!("honest request {i}: {other:?}"),
        }
    }
    assert_eq!(ok, 5, "honest lightpush through the attacked relay");
    sender.shutdown().await;
    newcomer.shutdown().await;
    for r in honest {
        r.shutdown().await;
    }
    victim.shutdown().await;
}

//! A fake rendezvous point, over real TCP on loopback, against a relay that looks up mix nodes.
//!
//! The attacker is a bare libp2p node that lists `/vac/waku/rendezvous/1.0.0` in identify, so
//! the relay asks it for mix records within a moment of connecting. It answers every lookup
//! with what an attacker would send: one signed throwaway record with `ttl = u64::MAX` (before
//! the fix, `now + ttl` panicked and the relay's only task died), and pages far longer than
//! asked (thousands of signed records, each a signature check on the relay's event loop).
//! The relay must stay up, bound what it takes, and keep serving honest traffic.
//!
//! F4: every answer carries fresh identities, and full pages with a cookie ask for more. The
//! relay asks one point for at most `1 + MAX_LOOKUP_PAGES` pages a round, lets that point
//! bring at most `PoolConfig::max_per_source` nodes into its pool, and forgets them within
//! `KEEP_PERIODS` lookup periods once the point stops listing them (not after 72 h).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, noise, tcp, yamux};
use mix_core::NodeSecretKey;
use mix_discovery::proto::{
    DiscoverResponse, Message, MessageType, Register, RegisterResponse, ResponseStatus,
};
use mix_discovery::{KEEP_PERIODS, LOOKUP_PAGE, MAX_LOOKUP_PAGES, MAX_TTL, MixRecord};
use mix_libp2p::{PoolConfig, SendOptions};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::node::DiscoverySettings;
use mix_relay::waku::WakuMessage;
use mix_relay::{Settings, start};

const TOPIC: &str = "/waku/2/rs/2/0";

#[derive(NetworkBehaviour)]
struct Attacker {
    identify: identify::Behaviour,
    rendezvous: request_response::Behaviour<mix_discovery::Codec>,
}

/// A signed mix record of a fresh throwaway identity (secp256k1, so it fits a packet address),
/// and that identity.
fn throwaway_record(seq: u64) -> (Vec<u8>, PeerId) {
    let key = Keypair::generate_secp256k1();
    let mix_key = NodeSecretKey::generate(&mut rand::rng()).public_key();
    let record = MixRecord {
        peer_id: key.public().to_peer_id(),
        seq,
        addrs: vec!["/ip4/127.0.0.1/tcp/9".parse().unwrap()],
        mix_key,
    };
    (record.sign(&key).unwrap(), key.public().to_peer_id())
}

/// `pages` answers, each with one registration of `ttl = u64::MAX` first, then `extra` more
/// with lifetimes just below it, every one from a fresh identity; and those identities.
fn hostile_pages(pages: usize, extra: usize) -> (Vec<Vec<Register>>, HashSet<PeerId>) {
    let mut ids = HashSet::new();
    let pages = (0..pages)
        .map(|_| {
            (0..=extra as u64)
                .map(|i| {
                    let (record, peer) = throwaway_record(1 + i);
                    ids.insert(peer);
                    Register {
                        ns: None,
                        signed_peer_record: Some(record),
                        ttl: Some(u64::MAX - i),
                    }
                })
                .collect()
        })
        .collect();
    (pages, ids)
}

/// What the fake point saw: lookups answered, and the longest run of pages one round asked
/// for (a lookup without a cookie starts a round).
#[derive(Default)]
struct Seen {
    answered: AtomicUsize,
    run: AtomicUsize,
    longest_run: AtomicUsize,
}

/// Starts the attacker, dials `target` and answers every lookup on the connection with the
/// next of `pages` (and a cookie, so the relay asks for the next page), and every registration
/// with an OK of `ttl = u64::MAX`. Returns the number of lookups answered, as it goes, what it
/// saw, and its task (abort it to take the point away).
fn fake_rendezvous_point(
    target: Multiaddr,
    pages: Vec<Vec<Register>>,
) -> (
    tokio::sync::watch::Receiver<usize>,
    Arc<Seen>,
    tokio::task::JoinHandle<()>,
) {
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(Keypair::generate_secp256k1())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Attacker {
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/id/1.0.0".into(),
                key.public(),
            )),
            rendezvous: request_response::Behaviour::with_codec(
                mix_discovery::Codec,
                [(
                    StreamProtocol::new(mix_discovery::PROTOCOL_NAME),
                    ProtocolSupport::Inbound,
                )],
                request_response::Config::default(),
            ),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(target).unwrap();
    let pages: Vec<Message> = pages
        .into_iter()
        .map(|registrations| Message {
            r#type: Some(MessageType::DiscoverResponse as i32),
            discover_response: Some(DiscoverResponse {
                registrations,
                cookie: Some(b"next page, forever".to_vec()),
                status: Some(ResponseStatus::Ok as i32),
                status_text: None,
            }),
            ..Message::default()
        })
        .collect();
    let seen = Arc::new(Seen::default());
    let seen_in = seen.clone();
    let registered = Message {
        r#type: Some(MessageType::RegisterResponse as i32),
        register_response: Some(RegisterResponse {
            status: Some(ResponseStatus::Ok as i32),
            status_text: None,
            ttl: Some(u64::MAX),
        }),
        ..Message::default()
    };
    let (answered_tx, answered) = tokio::sync::watch::channel(0usize);
    let task = tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            if let SwarmEvent::Behaviour(AttackerEvent::Rendezvous(
                request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                },
            )) = swarm.select_next_some().await
            {
                let lookup = request.discover.is_some();
                let answer = if let Some(discover) = &request.discover {
                    let run = if discover.cookie.is_none() {
                        seen_in.run.store(1, Ordering::SeqCst);
                        1
                    } else {
                        seen_in.run.fetch_add(1, Ordering::SeqCst) + 1
                    };
                    seen_in.longest_run.fetch_max(run, Ordering::SeqCst);
                    next += 1;
                    pages[next % pages.len()].clone()
                } else {
                    registered.clone()
                };
                if swarm
                    .behaviour_mut()
                    .rendezvous
                    .send_response(channel, answer)
                    .is_ok()
                    && lookup
                {
                    seen_in.answered.fetch_add(1, Ordering::SeqCst);
                    answered_tx.send_modify(|n| *n += 1);
                }
            }
        }
    });
    (answered, seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_rendezvous_point_with_u64_max_ttls_and_oversized_pages_does_not_stop_a_relay() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // Four relays that find each other through Waku rendezvous; relay 0 is the victim.
    let args = TestnetArgs {
        discovery: true,
        ..TestnetArgs::local(4)
    };
    let (relays, _) = start_testnet(&args).await.unwrap();
    let victim = &relays[0];
    let read_before = victim.metrics().discovery_count("record_found")
        + victim.metrics().discovery_count("record_rejected");
    let attack_started = tokio::time::Instant::now();

    // Ten times the page the relay asks for, each with a lifetime near u64::MAX seconds, and
    // fresh identities in every answer.
    let page = usize::try_from(LOOKUP_PAGE).unwrap();
    let (pages, hostile_ids) = hostile_pages(3, page * 10);
    let (mut answered, seen, attacker) =
        fake_rendezvous_point(victim.info().addrs[0].clone(), pages);

    // Lookups are answered (so the hostile records were read) ...
    tokio::time::timeout(Duration::from_secs(30), answered.wait_for(|n| *n >= 3))
        .await
        .expect("the relay never asked the fake point for mix records")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // ... and the relay is still alive and bounded: its loop answers, it read the records
    // (the u64::MAX one first in every page, its lifetime clamped to MAX_TTL), and no page gave
    // more records than were asked for.
    tokio::time::timeout(Duration::from_secs(5), victim.pool())
        .await
        .expect("the relay's event loop stopped answering")
        .expect("the relay stopped");
    let pages = *answered.borrow();
    let read = victim.metrics().discovery_count("record_found")
        + victim.metrics().discovery_count("record_rejected")
        - read_before;
    // The honest points (the 3 others and itself) add at most 4 records each per round, a
    // round a second at most while the pool is small.
    let honest_bound = 16 * (attack_started.elapsed().as_secs() + 1);
    let hostile_bound = u64::try_from(pages * page).unwrap();
    assert!(
        read >= hostile_bound / 2,
        "the hostile records were read ({read})"
    );
    assert!(
        read <= hostile_bound + honest_bound,
        "{read} records read from {pages} hostile pages of at most {page}"
    );
    eprintln!(
        "the fake point answered {pages} lookups with {} records each; the relay read {read} (MAX_TTL {MAX_TTL:?})",
        page * 10 + 1
    );

    // F4 bounds: pages per round from one point, the point's share of the pool, the pool.
    // Let a few more rounds run first, each with fresh identities on offer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let longest_run = seen.longest_run.load(Ordering::SeqCst);
    assert!(
        longest_run <= 1 + MAX_LOOKUP_PAGES,
        "one round asked the point for {longest_run} pages"
    );
    let pool = victim.pool().await.unwrap();
    let hostile_in_pool = pool
        .iter()
        .filter(|n| hostile_ids.contains(&n.peer_id))
        .count();
    let honest_in_pool = pool.len() - hostile_in_pool;
    let cap = PoolConfig::default().max_per_source;
    eprintln!(
        "after {} lookups ({} distinct identities offered, {longest_run} pages in a round at most): \
         pool {} = {honest_in_pool} honest + {hostile_in_pool} from the fake point (cap {cap})",
        seen.answered.load(Ordering::SeqCst),
        hostile_ids.len(),
        pool.len()
    );
    assert!(hostile_in_pool > 0, "the hostile records reached the pool");
    assert!(
        hostile_in_pool <= cap,
        "the fake point brought {hostile_in_pool} nodes, more than its share {cap}"
    );
    assert!(pool.len() <= cap + 4, "the pool grew to {}", pool.len());

    // The point goes away: what it listed (with lifetimes near u64::MAX seconds) leaves the
    // pool within KEEP_PERIODS lookup periods (1 s in the test schedule), not in 72 h.
    attacker.abort();
    let gone_by = Duration::from_secs(u64::from(KEEP_PERIODS) + 4);
    let deadline = tokio::time::Instant::now() + gone_by;
    let left = loop {
        let pool = victim.pool().await.unwrap();
        let left = pool
            .iter()
            .filter(|n| hostile_ids.contains(&n.peer_id))
            .count();
        if left == 0 || tokio::time::Instant::now() >= deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(left, 0, "hostile records outlived {gone_by:?}");

    // Honest traffic: a sender that knows only the victim (the testnet's rendezvous hub) finds
    // the others through it and lightpushes with the victim as the exit.
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
        .wait_for_pool(4, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(pool.len(), 4, "the sender found the honest relays");
    let mut ok = 0;
    for i in 0..5 {
        let message = WakuMessage {
            payload: format!("honest {i}").into_bytes(),
            content_topic: "/mix-test/1/hostile/proto".into(),
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
    for relay in relays {
        relay.shutdown().await;
    }
}

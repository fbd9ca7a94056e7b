//! The discovering client's whole response path, on arbitrary bytes: a rendezvous answer read
//! as the behaviour reads it (`DiscoveredPage::read`: the page cut to what was asked, records
//! verified, wire TTLs clamped) and put into a sender pool by `Schedule::add_records` at the
//! current time, as a relay or a browser does. Every wire value meets the clock here (a TTL of
//! `u64::MAX` once panicked at `now + ttl`). Must never panic; no page gives more records than
//! asked for, and no TTL exceeds `MAX_TTL`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::{DelayStrategy, NodeSecretKey};
use mix_discovery::proto::Message;
use mix_discovery::{DiscoveredPage, LOOKUP_PAGE, MAX_TTL, Schedule};
use mix_libp2p::{Client, MixNode};
use prost::Message as _;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use web_time::Instant;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, data)) = data.split_first() else {
        return;
    };
    let limit = u64::from(limit % 8).max(1).min(LOOKUP_PAGE);
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let Some(response) = message.discover_response else {
        return;
    };
    let page = DiscoveredPage::read(response, limit);
    assert!(page.records.len() as u64 <= limit);
    assert!(page.records.iter().all(|(_, ttl)| *ttl <= MAX_TTL));

    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let secret = NodeSecretKey::generate(&mut rng);
    let me = MixNode::new(
        me_peer(),
        vec!["/ip4/127.0.0.1/tcp/1".parse().expect("an address")],
        secret.public_key(),
    )
    .expect("a node");
    let mut client = Client::new(me, DelayStrategy::default());
    let now = Instant::now();
    let schedule = Schedule::new(now, false);
    let added = schedule.add_records(&mut client, me_peer(), page.records, now);
    assert!(added.len() as u64 <= limit);
    client.expire_nodes(now);
});

fn me_peer() -> libp2p::PeerId {
    static PEER: std::sync::OnceLock<libp2p::PeerId> = std::sync::OnceLock::new();
    *PEER.get_or_init(|| {
        let mut bytes = [1u8; 32];
        let secret = libp2p::identity::secp256k1::SecretKey::try_from_bytes(&mut bytes)
            .expect("a valid scalar");
        libp2p::identity::Keypair::from(libp2p::identity::secp256k1::Keypair::from(secret))
            .public()
            .to_peer_id()
    })
}

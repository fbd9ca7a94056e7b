//! Everything a rendezvous point or a discovering client reads from the wire, on arbitrary
//! bytes: the rendezvous `Message` (as a request to the registry: register, discover with any
//! cookie, unregister), a signed Waku peer record, and a Waku ENR string. Must never panic;
//! an accepted record verifies and names its signer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_discovery::proto::Message;
use mix_discovery::{MixRecord, Registry, RegistryConfig};
use prost::Message as _;
use web_time::Instant;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    static PEER: std::sync::OnceLock<libp2p::PeerId> = std::sync::OnceLock::new();
    let peer = *PEER.get_or_init(|| {
        let mut bytes = [1u8; 32];
        let secret = libp2p::identity::secp256k1::SecretKey::try_from_bytes(&mut bytes)
            .expect("a valid scalar");
        libp2p::identity::Keypair::from(libp2p::identity::secp256k1::Keypair::from(secret))
            .public()
            .to_peer_id()
    });
    if let Ok(message) = Message::decode(data) {
        let mut registry = Registry::new(RegistryConfig::default());
        if let Some(register) = &message.register {
            let _ = registry.register(peer, register, now);
        }
        if let Some(discover) = &message.discover {
            let _ = registry.discover(
                discover.ns.as_deref(),
                discover.limit,
                discover.cookie.as_deref(),
                now,
            );
        }
        if let Some(response) = &message.discover_response {
            for r in &response.registrations {
                if let Some(bytes) = &r.signed_peer_record {
                    let _ = MixRecord::open(bytes);
                }
            }
        }
    }
    if let Ok(record) = MixRecord::open(data) {
        let _ = record.mix_node();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(record) = mix_discovery::enr::WakuEnr::decode(text) {
            let _ = record.mix_node();
            let _ = record.addrs();
        }
    }
});

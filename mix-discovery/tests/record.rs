//! Signed Waku peer records and the rendezvous point, against bytes laid out by hand from the
//! sources: the envelope is libp2p RFC 0002 (libp2p/specs `RFC/0002-signed-envelopes.md`:
//! `public_key = 1`, `payload_type = 2`, `payload = 3`, `signature = 5`, signed over
//! `varint(len) domain ‖ varint(len) type ‖ varint(len) payload`); the domain, payload type and
//! `WakuPeerRecord` fields are nwaku's (`waku/waku_rendezvous/waku_peer_record.nim`, WAKU.md
//! §5.3): `peer_id = 1` bytes, `seqNo = 2` varint, `multiaddrs = 3` binary, mix key `= 4` the
//! string `"0x" + 64 hex`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use libp2p::identity::{Keypair, secp256k1};
use libp2p::{Multiaddr, PeerId};
use mix_core::NodePublicKey;
use mix_discovery::proto::{Register, ResponseStatus, WakuPeerRecord};
use mix_discovery::{MixRecord, RecordError, Registry, RegistryConfig};
use prost::Message as _;
use web_time::Instant;

fn keypair(seed: u8) -> Keypair {
    let mut bytes = [seed; 32];
    let secret = secp256k1::SecretKey::try_from_bytes(&mut bytes).unwrap();
    Keypair::from(secp256k1::Keypair::from(secret))
}

fn record(key: &Keypair) -> MixRecord {
    MixRecord {
        peer_id: key.public().to_peer_id(),
        seq: 1_763_700_000,
        addrs: vec!["/ip4/127.0.0.1/tcp/60000".parse().unwrap()],
        mix_key: NodePublicKey::from_bytes([0xab; 32]),
    }
}

/// Protobuf length-delimited field: tag, length (one byte here), bytes.
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(bytes.len()).unwrap()];
    out.extend_from_slice(bytes);
    out
}

#[test]
fn the_envelope_and_payload_are_laid_out_as_nwaku_writes_them() {
    let key = keypair(1);
    let rec = record(&key);
    let signed = rec.sign(&key).unwrap();

    // The payload, by hand.
    let peer = rec.peer_id.to_bytes();
    // A secp256k1 peer id: the identity multihash (00 25) of the 37-byte protobuf key.
    assert_eq!(&peer[..2], &[0x00, 0x25]);
    assert_eq!(peer[2..], key.public().encode_protobuf());
    let mut payload = field(0x0a, &peer);
    payload.push(0x10); // seqNo, varint 1_763_700_000
    payload.extend_from_slice(&[0xa0, 0xda, 0xff, 0xc8, 0x06]);
    payload.extend(field(0x1a, &[0x04, 127, 0, 0, 1, 0x06, 0xea, 0x60]));
    let mix_key = format!("0x{}", "ab".repeat(32));
    payload.extend(field(0x22, mix_key.as_bytes()));

    // The envelope, by hand, up to the signature.
    let public = key.public().encode_protobuf();
    assert_eq!(
        &public[..4],
        &[0x08, 0x02, 0x12, 0x21],
        "KeyType.Secp256k1, 33 bytes"
    );
    let mut head = field(0x0a, &public);
    head.extend(field(0x12, &[0x30, 0x00, 0x00]));
    head.extend(field(0x1a, &payload));
    assert_eq!(&signed[..head.len()], head.as_slice());
    assert_eq!(signed[head.len()], 0x2a, "signature = 5");
    let signature = &signed[head.len() + 2..];
    assert_eq!(usize::from(signed[head.len() + 1]), signature.len());

    // The signature covers the domain, the type and the payload, each length-prefixed.
    let mut message = vec![25];
    message.extend_from_slice(b"libp2p-custom-peer-record");
    message.extend_from_slice(&[3, 0x30, 0x00, 0x00]);
    message.push(u8::try_from(payload.len()).unwrap());
    message.extend_from_slice(&payload);
    assert!(key.public().verify(&message, signature));

    // And it opens back to the record.
    assert_eq!(MixRecord::open(&signed).unwrap(), rec);
}

#[test]
fn forged_or_foreign_records_do_not_open() {
    let key = keypair(2);
    let rec = record(&key);
    let mut signed = rec.sign(&key).unwrap();
    let last = signed.len() - 40;
    signed[last] ^= 1;
    assert!(matches!(
        MixRecord::open(&signed),
        Err(RecordError::Signature | RecordError::Envelope)
    ));
    assert_eq!(MixRecord::open(b"\x0a\x01"), Err(RecordError::Envelope));

    // Signed by one key, claiming another peer.
    let other = keypair(3);
    let claim = MixRecord {
        peer_id: other.public().to_peer_id(),
        ..rec.clone()
    };
    assert_eq!(
        MixRecord::open(&claim.sign(&key).unwrap()),
        Err(RecordError::WrongSigner)
    );

    // Another payload type: not a Waku peer record.
    let envelope = libp2p::core::SignedEnvelope::new(
        &key,
        "libp2p-custom-peer-record".into(),
        b"/libp2p/routing-state-record".to_vec(),
        vec![],
    )
    .unwrap();
    assert_eq!(
        MixRecord::open(&envelope.into_protobuf_encoding()),
        Err(RecordError::Signature)
    );
}

fn sign_payload(key: &Keypair, payload: &WakuPeerRecord) -> Vec<u8> {
    libp2p::core::SignedEnvelope::new(
        key,
        mix_discovery::DOMAIN.into(),
        mix_discovery::PAYLOAD_TYPE.to_vec(),
        payload.encode_to_vec(),
    )
    .unwrap()
    .into_protobuf_encoding()
}

#[test]
fn the_mix_key_must_be_nwakus_hex_string() {
    let key = keypair(4);
    let peer_id = key.public().to_peer_id().to_bytes();
    let with = |mix_key: Option<String>| WakuPeerRecord {
        peer_id: peer_id.clone(),
        seq_no: 1,
        multiaddrs: vec![],
        mix_key,
    };
    let good = format!("0x{}", "01".repeat(32));
    assert_eq!(
        MixRecord::open(&sign_payload(&key, &with(Some(good))))
            .unwrap()
            .mix_key,
        NodePublicKey::from_bytes([1; 32])
    );
    for bad in [
        None,
        Some("0x1234".into()),
        Some(format!("0x{}", "zz".repeat(32))),
    ] {
        assert_eq!(
            MixRecord::open(&sign_payload(&key, &with(bad))),
            Err(RecordError::MixKey)
        );
    }
    // 17 addresses: too many.
    let mut many = with(Some(format!("0x{}", "01".repeat(32))));
    let addr: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
    many.multiaddrs = vec![addr.to_vec(); 17];
    assert_eq!(
        MixRecord::open(&sign_payload(&key, &many)),
        Err(RecordError::Addresses)
    );
}

fn register(ns: &str, envelope: Vec<u8>, ttl: Option<u64>) -> Register {
    Register {
        ns: Some(ns.into()),
        signed_peer_record: Some(envelope),
        ttl,
    }
}

#[test]
fn the_registry_checks_registrations_and_lets_them_expire() {
    let mut registry = Registry::new(RegistryConfig::default());
    let t0 = Instant::now();
    let key = keypair(5);
    let peer = key.public().to_peer_id();
    let signed = record(&key).sign(&key).unwrap();
    let status = |r: Result<u64, mix_discovery::Refusal>| r.map_err(|e| e.status);

    assert_eq!(
        status(registry.register(peer, &register("rs/2/mix", signed.clone(), Some(60)), t0)),
        Ok(60)
    );
    assert_eq!(
        status(registry.register(peer, &register("rs/2/mix", signed.clone(), None), t0)),
        Ok(60)
    );
    assert_eq!(registry.len(), 1, "a re-registration replaces the old one");
    assert_eq!(
        status(registry.register(peer, &register("", signed.clone(), None), t0)),
        Err(ResponseStatus::EInvalidNamespace)
    );
    assert_eq!(
        status(registry.register(peer, &register(&"n".repeat(256), signed.clone(), None), t0)),
        Err(ResponseStatus::EInvalidNamespace)
    );
    assert_eq!(
        status(registry.register(peer, &register("rs/2/mix", signed.clone(), Some(59)), t0)),
        Err(ResponseStatus::EInvalidTtl)
    );
    assert_eq!(
        status(registry.register(
            peer,
            &register("rs/2/mix", signed.clone(), Some(72 * 3600 + 1)),
            t0
        )),
        Err(ResponseStatus::EInvalidTtl)
    );
    assert_eq!(
        status(registry.register(peer, &register("rs/2/mix", b"junk".to_vec(), None), t0)),
        Err(ResponseStatus::EInvalidSignedPeerRecord)
    );
    // Someone else's record.
    let stranger = keypair(6).public().to_peer_id();
    assert_eq!(
        status(registry.register(stranger, &register("rs/2/mix", signed.clone(), None), t0)),
        Err(ResponseStatus::ENotAuthorized)
    );

    let page = registry
        .discover(Some("rs/2/mix"), None, None, t0 + Duration::from_secs(20))
        .unwrap();
    assert_eq!(page.registrations.len(), 1);
    assert_eq!(page.registrations[0].ttl, Some(40), "the remaining TTL");
    assert_eq!(
        page.registrations[0].signed_peer_record.as_deref(),
        Some(signed.as_slice())
    );
    assert!(
        registry
            .discover(Some("rs/1/mix"), None, None, t0)
            .unwrap()
            .registrations
            .is_empty()
    );
    let later = registry
        .discover(Some("rs/2/mix"), None, None, t0 + Duration::from_secs(60))
        .unwrap();
    assert!(later.registrations.is_empty(), "expired after its TTL");
    assert!(registry.is_empty());
}

#[test]
fn discovery_pages_with_cookies_and_limits() {
    let mut registry = Registry::new(RegistryConfig {
        max_per_peer: 2,
        max_total: 25,
        ..RegistryConfig::default()
    });
    let t0 = Instant::now();
    let peers: Vec<(PeerId, Vec<u8>)> = (10..35u8)
        .map(|seed| {
            let key = keypair(seed);
            (key.public().to_peer_id(), record(&key).sign(&key).unwrap())
        })
        .collect();
    for (peer, signed) in &peers {
        registry
            .register(*peer, &register("rs/2/mix", signed.clone(), None), t0)
            .unwrap();
    }
    // Full: a 26th registration is refused; a peer's third namespace too.
    let extra = keypair(99);
    let extra_signed = record(&extra).sign(&extra).unwrap();
    let refused = registry
        .register(
            extra.public().to_peer_id(),
            &register("rs/2/mix", extra_signed, None),
            t0,
        )
        .unwrap_err();
    assert_eq!(refused.status, ResponseStatus::EUnavailable);

    let mut seen = Vec::new();
    let mut cookie: Option<Vec<u8>> = None;
    for _ in 0..5 {
        let page = registry
            .discover(Some("rs/2/mix"), Some(12), cookie.as_deref(), t0)
            .unwrap();
        seen.extend(page.registrations);
        cookie = Some(page.cookie);
    }
    assert_eq!(seen.len(), 25, "pages of 12, 12, 1, then nothing new");
    // A cookie for another namespace starts over (nim-libp2p), an undecodable one is refused.
    let other = registry.discover(Some("rs/3/mix"), Some(12), cookie.as_deref(), t0);
    assert!(other.unwrap().registrations.is_empty());
    let restart = registry
        .discover(None, Some(30), cookie.as_deref(), t0)
        .unwrap();
    assert_eq!(
        restart.registrations.len(),
        25,
        "a cookie of rs/2/mix used for all starts over"
    );
    let junk = registry.discover(Some("rs/2/mix"), None, Some(b"\xff\xff"), t0);
    assert_eq!(junk.unwrap_err().status, ResponseStatus::EInvalidCookie);
    // A limit of zero still returns one; an absent one is the maximum.
    assert_eq!(
        registry
            .discover(Some("rs/2/mix"), Some(0), None, t0)
            .unwrap()
            .registrations
            .len(),
        1
    );
    assert_eq!(
        registry
            .discover(Some("rs/2/mix"), None, None, t0)
            .unwrap()
            .registrations
            .len(),
        25
    );
}

#[test]
fn one_address_cannot_fill_the_registry_and_granted_ttls_are_short() {
    // F11: 50 identities from one address, each in 40 namespaces with nwaku's longest TTL,
    // used to fill the registry for 72 h. Now one address holds 32, one peer 16, and what is
    // granted lapses within 5 min; a node from another address still registers.
    let mut registry = Registry::new(RegistryConfig::default());
    let t0 = Instant::now();
    let attacker_ip: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let mut accepted = 0;
    let mut granted = Vec::new();
    for seed in 40..90u8 {
        let key = keypair(seed);
        let peer = key.public().to_peer_id();
        let signed = record(&key).sign(&key).unwrap();
        for ns in 0..40 {
            let r = register(&format!("ns/{ns}"), signed.clone(), Some(72 * 3600));
            if let Ok(ttl) = registry.register_from(peer, Some(attacker_ip), &r, t0) {
                accepted += 1;
                granted.push(ttl);
            }
        }
    }
    assert_eq!(accepted, 32, "per address");
    assert_eq!(registry.from_ip(attacker_ip), 32);
    assert!(granted.iter().all(|t| *t == 300), "granted {granted:?}");
    // One peer from many addresses: 16 namespaces at most.
    let key = keypair(91);
    let peer = key.public().to_peer_id();
    let signed = record(&key).sign(&key).unwrap();
    let per_peer = (0..40u8)
        .filter(|i| {
            let ip = std::net::IpAddr::from([198, 51, 100, *i]);
            registry
                .register_from(
                    peer,
                    Some(ip),
                    &register(&format!("p/{i}"), signed.clone(), None),
                    t0,
                )
                .is_ok()
        })
        .count();
    assert_eq!(per_peer, 16);
    // IPv6: one /64 is one address.
    let key = keypair(92);
    let v6_peer = key.public().to_peer_id();
    let signed = record(&key).sign(&key).unwrap();
    let first: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let same_64: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    registry
        .register_from(
            v6_peer,
            Some(first),
            &register("rs/2/mix", signed.clone(), None),
            t0,
        )
        .unwrap();
    assert_eq!(registry.from_ip(same_64), 1);
    // An honest node elsewhere still gets in.
    let honest = keypair(93);
    let signed = record(&honest).sign(&honest).unwrap();
    assert_eq!(
        registry.register_from(
            honest.public().to_peer_id(),
            Some("192.0.2.1".parse().unwrap()),
            &register("rs/2/mix", signed, Some(60)),
            t0
        ),
        Ok(60)
    );
    // Everything the attacker holds is gone 5 min later.
    registry.expire(t0 + Duration::from_secs(300));
    assert_eq!(registry.from_ip(attacker_ip), 0);
}

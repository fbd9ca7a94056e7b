//! Waku ENRs against hand-checked bytes: the EIP-778 example record (its text, key and fields
//! are in the EIP), the WAKU2-ENR field layouts, and the mix fields.
#![cfg(feature = "enr")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::Ipv4Addr;

use libp2p::Multiaddr;
use libp2p::identity::{Keypair, PublicKey, secp256k1};
use mix_core::NodePublicKey;
use mix_discovery::enr::{
    EnrError, WAKU2_FILTER, WAKU2_LIGHTPUSH, WAKU2_MIX, WAKU2_RELAY, WakuEnr, decode_multiaddrs,
    decode_shards, encode_multiaddrs, encode_shards,
};

/// EIP-778, "Test Vectors": the example record, its private key and its public key.
const EIP778_ENR: &str = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
const EIP778_KEY: &str = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";
const EIP778_PUBLIC: &str = "03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138";

fn eip_keypair() -> Keypair {
    let mut bytes = hex::decode(EIP778_KEY).unwrap();
    let secret = secp256k1::SecretKey::try_from_bytes(&mut bytes).unwrap();
    Keypair::from(secp256k1::Keypair::from(secret))
}

#[test]
fn the_eip778_example_decodes_to_its_fields() {
    let record = WakuEnr::decode(EIP778_ENR).unwrap();
    let public =
        secp256k1::PublicKey::try_from_bytes(&hex::decode(EIP778_PUBLIC).unwrap()).unwrap();
    assert_eq!(record.peer_id, PublicKey::from(public).to_peer_id());
    assert_eq!(record.seq, 1);
    assert_eq!(record.ip4, Some(Ipv4Addr::LOCALHOST));
    assert_eq!(record.udp, Some(30303));
    assert_eq!(
        (record.tcp, record.waku2, record.mix_key),
        (None, None, None)
    );
    assert!(record.multiaddrs.is_empty());
    assert_eq!(record.mix_node(), Err(EnrError::NotMix));
}

/// The record we sign for the EIP's key and fields has the EIP record's content byte for byte
/// (the signature differs: ours uses RFC 6979 nonces, the EIP's was made with another).
#[test]
fn the_eip778_example_content_is_reproduced_byte_for_byte() {
    let record = WakuEnr {
        peer_id: eip_keypair().public().to_peer_id(),
        seq: 1,
        ip4: Some(Ipv4Addr::LOCALHOST),
        tcp: None,
        udp: Some(30303),
        multiaddrs: Vec::new(),
        waku2: None,
        shards: None,
        mix_key: None,
    };
    let ours: enr::Enr<enr::k256::ecdsa::SigningKey> =
        record.encode(&eip_keypair()).unwrap().parse().unwrap();
    let theirs: enr::Enr<enr::k256::ecdsa::SigningKey> = EIP778_ENR.parse().unwrap();
    assert!(ours.compare_content(&theirs));
    assert_eq!(ours.size(), theirs.size());
    assert!(ours.verify());
    // Same length, same text after the signature.
    let text = ours.to_base64();
    assert_eq!(text.len(), EIP778_ENR.len());
    assert_eq!(text[96..], EIP778_ENR[96..]);
}

#[test]
fn a_changed_byte_breaks_the_signature() {
    // Flip one character of the signature part (after "enr:-IS4Q").
    let mut text = EIP778_ENR.to_owned();
    let i = 12;
    let c = if &text[i..=i] == "A" { "B" } else { "A" };
    text.replace_range(i..=i, c);
    assert!(matches!(WakuEnr::decode(&text), Err(EnrError::Invalid(_))));
    assert!(matches!(WakuEnr::decode("enr:"), Err(EnrError::Invalid(_))));
    assert!(matches!(
        WakuEnr::decode("not an enr"),
        Err(EnrError::Invalid(_))
    ));
}

#[test]
fn multiaddrs_carry_a_two_byte_big_endian_length_each() {
    // WAKU2-ENR: `/ip4/127.0.0.1/tcp/60001/ws` is 04 7f000001 | 06 ea61 | dd03 (ws = 477),
    // ten bytes; `/dns4/a.b/tcp/443/wss` is 36 03 "a.b" | 06 01bb | de03 (wss = 478).
    let addrs: Vec<Multiaddr> = vec![
        "/ip4/127.0.0.1/tcp/60001/ws".parse().unwrap(),
        "/dns4/a.b/tcp/443/wss".parse().unwrap(),
    ];
    let bytes = encode_multiaddrs(&addrs).unwrap();
    assert_eq!(
        hex::encode(&bytes),
        "000a047f00000106ea61dd03\
         000a3603612e620601bbde03"
    );
    assert_eq!(decode_multiaddrs(&bytes).unwrap(), addrs);
    assert!(decode_multiaddrs(&bytes[..bytes.len() - 1]).is_err());
    assert!(decode_multiaddrs(&[0x00]).is_err());
    assert!(decode_multiaddrs(&[0x00, 0x02, 0xff, 0xff]).is_err());
}

#[test]
fn relay_shards_are_cluster_count_and_shards_big_endian() {
    // WAKU2-ENR `rs`: cluster 2, one shard, shard 0 → 0002 01 0000.
    assert_eq!(hex::encode(encode_shards(2, &[0]).unwrap()), "0002010000");
    assert_eq!(
        hex::encode(encode_shards(1, &[1, 258]).unwrap()),
        "00010200010102"
    );
    assert_eq!(
        decode_shards(&hex::decode("00010200010102").unwrap()).unwrap(),
        (1, vec![1, 258])
    );
    assert!(decode_shards(&hex::decode("000102000101").unwrap()).is_err());
}

#[test]
fn a_mix_node_record_round_trips_and_becomes_a_pool_entry() {
    let identity = Keypair::generate_secp256k1();
    let mix_key = NodePublicKey::from_bytes([0x9d; 32]);
    // nwaku's simulation node: relay, filter, lightpush and mix = 0x2d.
    let waku2 = WAKU2_RELAY | WAKU2_FILTER | WAKU2_LIGHTPUSH | WAKU2_MIX;
    assert_eq!(waku2, 0x2d);
    let record = WakuEnr {
        peer_id: identity.public().to_peer_id(),
        seq: 7,
        ip4: Some(Ipv4Addr::new(127, 0, 0, 1)),
        tcp: Some(60000),
        udp: None,
        multiaddrs: vec!["/ip4/127.0.0.1/tcp/60001/ws".parse().unwrap()],
        waku2: Some(waku2),
        shards: Some((2, vec![0])),
        mix_key: Some(mix_key),
    };
    let text = record.encode(&identity).unwrap();
    assert!(text.starts_with("enr:-"));
    let back = WakuEnr::decode(&text).unwrap();
    assert_eq!(back, record);
    let node = back.mix_node().unwrap();
    assert_eq!(node.public_key, mix_key);
    assert_eq!(node.peer_id, record.peer_id);
    assert_eq!(
        node.addresses[0].to_string(),
        format!("/ip4/127.0.0.1/tcp/60000/p2p/{}", record.peer_id)
    );
    assert_eq!(
        node.addresses[1].to_string(),
        format!("/ip4/127.0.0.1/tcp/60001/ws/p2p/{}", record.peer_id)
    );
    // Bit 5 alone is not enough (nwaku after October 2025); nor is a key without bit 5.
    let no_key = WakuEnr {
        mix_key: None,
        ..record.clone()
    };
    assert_eq!(
        WakuEnr::decode(&no_key.encode(&identity).unwrap())
            .unwrap()
            .mix_node(),
        Err(EnrError::NoMixKey)
    );
    let no_bit = WakuEnr {
        waku2: Some(WAKU2_RELAY),
        ..record.clone()
    };
    assert_eq!(
        WakuEnr::decode(&no_bit.encode(&identity).unwrap())
            .unwrap()
            .mix_node(),
        Err(EnrError::NotMix)
    );
    // Only secp256k1 identities sign Waku ENRs.
    assert_eq!(
        record.encode(&Keypair::generate_ed25519()),
        Err(EnrError::Identity)
    );
}

#[test]
fn records_over_300_bytes_are_refused() {
    let identity = Keypair::generate_secp256k1();
    let many: Vec<Multiaddr> = (0..12)
        .map(|i| {
            format!("/dns4/relay-{i}.example.org/tcp/443/wss")
                .parse()
                .unwrap()
        })
        .collect();
    let record = WakuEnr {
        peer_id: identity.public().to_peer_id(),
        seq: 1,
        ip4: None,
        tcp: None,
        udp: None,
        multiaddrs: many,
        waku2: Some(WAKU2_MIX),
        shards: None,
        mix_key: None,
    };
    assert!(matches!(
        record.encode(&identity),
        Err(EnrError::Invalid(_))
    ));
}

/// nwaku's mix proof-of-concept node (waku-org/nwaku `simulations/mixnet/README.md`, the log
/// line of the node started from `simulations/mixnet/config.toml`): `waku2 = 0x2d`, a
/// `mix-key`, cluster 2 shard 0, TCP 60001, UDP 9001, an empty `multiaddrs`.
const NWAKU_MIX_ENR: &str = "enr:-NC4QKYtas8STkenlqBTJ3a1TTLzJA2DsGGbFlnxem9aSM2IXm-CSVZULdk2467bAyFnepnt8KP_QlfDzdaMXd_zqtwBgmlkgnY0gmlwhH8AAAGHbWl4LWtleaCdCc5iT3bo9gYmXtucyit96bQXcqbXhL3a-S_6j7p9LIptdWx0aWFkZHJzgIJyc4UAAgEAAIlzZWNwMjU2azGhA6RFtVJVBh0SYOoP8xrgnXSlpiFARmQkF9d8Rn4fSeiog3RjcILqYYN1ZHCCIymFd2FrdTIt";

#[test]
fn nwakus_mix_poc_enr_becomes_a_pool_entry_with_its_configured_keys() {
    let record = WakuEnr::decode(NWAKU_MIX_ENR).unwrap();
    assert_eq!(record.waku2, Some(0x2d));
    assert_eq!(
        (record.ip4, record.tcp, record.udp),
        (Some(Ipv4Addr::LOCALHOST), Some(60001), Some(9001))
    );
    assert_eq!(record.shards, Some((2, vec![0])));
    assert!(record.multiaddrs.is_empty());
    assert_eq!(record.seq, 1);
    // The node's keys from `simulations/mixnet/config.toml`: the nodekey gives the peer id,
    // X25519 of the mixkey gives the mix-key field.
    let mut nodekey =
        hex::decode("f98e3fba96c32e8d1967d460f1b79457380e1a895f7971cecc8528abe733781a").unwrap();
    let secret = secp256k1::SecretKey::try_from_bytes(&mut nodekey).unwrap();
    let peer = Keypair::from(secp256k1::Keypair::from(secret))
        .public()
        .to_peer_id();
    assert_eq!(
        peer.to_string(),
        "16Uiu2HAmPiEs2ozjjJF2iN2Pe2FYeMC9w4caRHKYdLdAfjgbWM6o"
    );
    assert_eq!(record.peer_id, peer);
    let mixkey: [u8; 32] =
        hex::decode("a87db88246ec0eedda347b9b643864bee3d6933eb15ba41e6d58cb678d813258")
            .unwrap()
            .try_into()
            .unwrap();
    let public = mix_core::NodeSecretKey::from_bytes(mixkey).public_key();
    assert_eq!(
        hex::encode(public.as_bytes()),
        "9d09ce624f76e8f606265edb9cca2b7de9b41772a6d784bddaf92ffa8fba7d2c"
    );
    let node = record.mix_node().unwrap();
    assert_eq!(node.public_key, public);
    assert_eq!(
        node.addresses[0].to_string(),
        format!("/ip4/127.0.0.1/tcp/60001/p2p/{peer}")
    );
}

/// nwaku's `tests/test_waku_enr.nim` ("decode record with multiaddrs field"): two `/dns4`
/// multiaddrs, `rs` for cluster 16 with five shards, `waku2 = 03`.
#[test]
fn nwakus_multiaddrs_test_record_decodes_as_its_test_expects() {
    let text = "enr:-QEMuEAs8JmmyUI3b9v_ADqYtELHUYAsAMS21lA2BMtrzF86tVmyy9cCrhmzfHGHx_g3nybn7jIRybzXTGNj3C2KzrriAYJpZIJ2NIJpcISf3_Jeim11bHRpYWRkcnO4XAArNiZzdG9yZS0wMS5kby1hbXMzLnN0YXR1cy5wcm9kLnN0YXR1cy5pbQZ2XwAtNiZzdG9yZS0wMS5kby1hbXMzLnN0YXR1cy5wcm9kLnN0YXR1cy5pbQYBu94DgnJzjQAQBQABACAAQACAAQCJc2VjcDI1NmsxoQLfoaQH3oSYW59yxEBfeAZbltmUnC4BzYkHqer2VQMTyoN0Y3CCdl-DdWRwgiMohXdha3UyAw";
    let record = WakuEnr::decode(text).unwrap();
    let addrs: Vec<String> = record.multiaddrs.iter().map(ToString::to_string).collect();
    assert_eq!(
        addrs,
        [
            "/dns4/store-01.do-ams3.status.prod.status.im/tcp/30303",
            "/dns4/store-01.do-ams3.status.prod.status.im/tcp/443/wss"
        ]
    );
    assert_eq!(record.shards, Some((16, vec![1, 32, 64, 128, 256])));
    assert_eq!(record.waku2, Some(WAKU2_RELAY | 0b10));
    assert_eq!(
        (record.ip4, record.tcp, record.udp),
        (
            Some(Ipv4Addr::new(159, 223, 242, 94)),
            Some(30303),
            Some(9000)
        )
    );
    assert_eq!(record.mix_node(), Err(EnrError::NotMix));
}

/// js-waku's `packages/enr/src/enr.spec.ts` ("Waku2 key: decode"): `waku2 = 07`, sequence 0
/// (an empty RLP string).
#[test]
fn js_wakus_waku2_record_decodes() {
    let text = "enr:-Iu4QADPfXNCM6iYyte0pIdbMirIw_AsKR7J1DeJBysXDWz4DZvyjgIwpMt-sXTVUzLJdE9FaStVy2ZKtHUVQAH61-KAgmlkgnY0gmlwhMCosvuJc2VjcDI1NmsxoQI0OCNtPJtBayNgvFvKp-0YyCozcvE1rqm_V1W51nHVv4N0Y3CC6mCFd2FrdTIH";
    let record = WakuEnr::decode(text).unwrap();
    assert_eq!(record.waku2, Some(0x07));
    assert_eq!(record.seq, 0);
    assert_eq!(
        (record.ip4, record.tcp),
        (Some(Ipv4Addr::new(192, 168, 178, 251)), Some(60000))
    );
}

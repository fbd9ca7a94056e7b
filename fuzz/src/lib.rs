//! Fixtures shared by the fuzz targets: a three-node network and valid packets arriving at
//! each hop, built once from a fixed seed, so mutations start from packets that pass the MAC.
//! One fixture per wire format: [`fixture`] is the v0.39 one (whose malleable δ the older
//! targets steer by XOR), [`fixture_for`] gives either.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use mix_core::hazmat;
use mix_core::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const CODEC: &str = "/vac/waku/lightpush/3.0.0";
pub const BODY: &[u8] = b"a lightpush request";
pub const SEQ_NO: [u8; 4] = [1, 2, 3, 4];

pub struct Fixture {
    /// The wire format every packet of the fixture is in.
    pub format: Format,
    /// Keys of nodes 0..3 (forward path 0→1→2) and node 3 (SURB creator, return path 1→0→3).
    pub keys: Vec<NodeSecretKey>,
    /// The forward packet as it arrives at hop 0, 1 and 2.
    pub at_hop: [[u8; PACKET_LEN]; 3],
    /// The chunk plaintext the exit recovers.
    pub chunk: [u8; MESSAGE_LEN],
    /// A SURB reply as it arrives at each hop of the return path, and the creator's keys.
    pub reply_at_hop: [[u8; PACKET_LEN]; 3],
    pub reply_path: [usize; 3],
    pub reply_chunk: [u8; MESSAGE_LEN],
    pub surb_keys: SurbKeys,
    pub surb: Surb,
}

fn address(i: u8) -> Address {
    let mut key = [i; 33];
    key[0] = 2;
    Address::direct(
        Ipv4Addr::new(127, 0, 0, 1),
        Transport::Tcp,
        4000 + u16::from(i),
        PeerIdBytes::from_secp256k1_public_key(&key).unwrap(),
    )
}

fn forward_all(
    format: Format,
    keys: &[NodeSecretKey],
    path: [usize; 3],
    first: [u8; PACKET_LEN],
) -> [[u8; PACKET_LEN]; 3] {
    let mut out = [first; 3];
    for i in 0..2 {
        let mut packet = out[i];
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        match peel_with(format, &keys[path[i]], &mut filter, 0, &mut packet) {
            Ok(Action::Forward { .. }) => out[i + 1] = packet,
            other => panic!("fixture hop {i}: {other:?}"),
        }
    }
    out
}

/// The v0.39 fixture.
pub fn fixture() -> &'static Fixture {
    fixture_for(Format::V039)
}

/// The fixture of `format`.
pub fn fixture_for(format: Format) -> &'static Fixture {
    static V039: OnceLock<Fixture> = OnceLock::new();
    static LIP183: OnceLock<Fixture> = OnceLock::new();
    match format {
        Format::V039 => V039.get_or_init(|| build_fixture(Format::V039)),
        Format::Lip183 => LIP183.get_or_init(|| build_fixture(Format::Lip183)),
    }
}

fn build_fixture(format: Format) -> Fixture {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let keys: Vec<_> = (0..4).map(|_| NodeSecretKey::generate(&mut rng)).collect();
    let hop = |i: usize| Hop {
        address: address(i as u8),
        public_key: keys[i].public_key(),
    };
    let route = Route {
        hops: [hop(0), hop(1), hop(2)],
        delays: [Delay::from_millis(1); 2],
    };
    let reply_path = [1, 0, 3];
    let back = Route {
        hops: reply_path.map(hop),
        delays: [Delay::ZERO; 2],
    };
    let (surb, surb_keys) = Surb::create_with_format(format, &mut rng, &back).unwrap();

    let mut first = [0u8; PACKET_LEN];
    let surbs = [surb.clone()];
    PacketBuilder::new(&route)
        .format(format)
        .surbs(&surbs)
        .build_with_fixed_randomness_for_testing_only(&[9; 32], SEQ_NO, CODEC, BODY, &mut first)
        .unwrap();
    let mut chunk = [0u8; MESSAGE_LEN];
    payload::encode_forward_chunk(format, CODEC, &surbs, BODY, SEQ_NO, &mut chunk).unwrap();

    let mut reply = [0u8; PACKET_LEN];
    surb.build_reply_with_fixed_randomness_for_testing_only(SEQ_NO, b"response", &mut reply)
        .unwrap();
    let mut reply_chunk = [0u8; MESSAGE_LEN];
    payload::encode_reply_chunk(format, b"response", SEQ_NO, &mut reply_chunk).unwrap();

    Fixture {
        format,
        at_hop: forward_all(format, &keys, [0, 1, 2], first),
        reply_at_hop: forward_all(format, &keys, reply_path, reply),
        keys,
        chunk,
        reply_path,
        reply_chunk,
        surb_keys,
        surb,
    }
}

/// The LIONESS layer of `hop_key` for the packet it receives (LIP-183).
fn lioness_of(hop_key: &NodeSecretKey, packet: &[u8; PACKET_LEN]) -> hazmat::Lioness {
    let secrets = hop_key.hop_secrets_with(Format::Lip183, packet).unwrap();
    hazmat::Lioness::new(secrets.keys().payload_enc_key()).unwrap()
}

/// LIP-183: replaces δ so that the exit holding `exit_key` recovers `0₁₆ ‖ chunk` (`chunk`
/// zero-padded or cut to 3968 bytes): δ = Enc(pek_exit, 0₁₆ ‖ chunk).
pub fn steer_lioness_exit(exit_key: &NodeSecretKey, packet: &mut [u8; PACKET_LEN], chunk: &[u8]) {
    let layer = lioness_of(exit_key, packet);
    let delta = &mut packet[HEADER_LEN..];
    delta.fill(0);
    for (d, c) in delta[16..].iter_mut().zip(chunk) {
        *d = *c;
    }
    layer.encrypt(delta).unwrap();
}

/// LIP-183: replaces the δ that the SURB creator (the last hop of the fixture's return path)
/// receives so that `open_reply` recovers `0₁₆ ‖ chunk`. The creator's own hop decrypts with
/// pek₂ and `open_reply` re-encrypts with it, so the incoming δ is
/// Dec(pek₁, Dec(pek₀, Enc(k̃, 0₁₆ ‖ chunk))).
pub fn steer_lioness_reply(f: &Fixture, packet: &mut [u8; PACKET_LEN], chunk: &[u8]) {
    let reply_key: [u8; 16] = f.surb.to_bytes()[params::SURB_LEN - 16..]
        .try_into()
        .unwrap();
    let delta = &mut packet[HEADER_LEN..];
    delta.fill(0);
    for (d, c) in delta[16..].iter_mut().zip(chunk) {
        *d = *c;
    }
    hazmat::Lioness::new(&reply_key)
        .unwrap()
        .encrypt(delta)
        .unwrap();
    for secret in f.surb_keys.shared_secrets()[..2].iter() {
        let pek = *HopKeys::derive(secret).payload_enc_key();
        hazmat::Lioness::new(&pek).unwrap().decrypt(delta).unwrap();
    }
}

/// Replaces the packet's β and γ so that `hop_key` decrypts β to `block` (its first 576
/// bytes) and the MAC verifies: the fuzzer then controls the authenticated routing block.
pub fn steer_routing_block(hop_key: &NodeSecretKey, packet: &mut [u8; PACKET_LEN], block: &[u8]) {
    let secrets = hop_key.hop_secrets(packet).unwrap();
    let keys = secrets.keys();
    let mut beta = [0u8; 576];
    for (b, v) in beta.iter_mut().zip(block) {
        *b = *v;
    }
    hazmat::aes128_ctr(*keys.aes_key(), *keys.iv(), 0, &mut beta);
    let gamma = hazmat::mac16(keys.mac_key(), &beta);
    packet[32..608].copy_from_slice(&beta);
    packet[608..624].copy_from_slice(&gamma);
}

/// XORs `wanted ⊕ known` into the payload at `offset`, so that whoever recovers `known`
/// there recovers `wanted` instead (δ is malleable: MIX.md §3).
pub fn steer_payload(packet: &mut [u8; PACKET_LEN], offset: usize, known: &[u8], wanted: &[u8]) {
    for ((p, k), w) in packet[offset..].iter_mut().zip(known).zip(wanted) {
        *p ^= k ^ w;
    }
}

/// Two secp256k1 peer ids (the only kind a mix address or `--mixnode` entry carries), so the
/// mix-libp2p and mix-relay targets reach past the peer-id checks without the fuzzer having to
/// find a valid curve point.
pub fn secp256k1_peers() -> &'static [libp2p::PeerId; 2] {
    static PEERS: OnceLock<[libp2p::PeerId; 2]> = OnceLock::new();
    PEERS.get_or_init(|| {
        [1u8, 2].map(|fill| {
            let secret = libp2p::identity::secp256k1::SecretKey::try_from_bytes([fill; 32])
                .expect("a valid secp256k1 secret key");
            let keypair = libp2p::identity::secp256k1::Keypair::from(secret);
            libp2p::identity::PublicKey::from(keypair.public().clone()).to_peer_id()
        })
    })
}

/// A valid X25519 mix public key in hex, as `--mixnode` entries and pool files carry it.
pub const MIX_PUBLIC_HEX: &str = "0101010101010101010101010101010101010101010101010101010101010101";

/// `uvarint(bytes.len()) ‖ bytes`, the framing of `/mix/1.0.0` and of lightpush.
pub fn length_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 10);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

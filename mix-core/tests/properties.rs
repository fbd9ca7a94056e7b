//! Properties of the whole construction (STYLE Part 5), in both wire formats: round trips for
//! any fitting message and any seed, tamper and replay rejection (in LIP-183 a flip anywhere in
//! δ), the α rules, length errors instead of panics, encoding round trips, and redacted secrets.

#![cfg(not(target_arch = "wasm32"))]
#![allow(
    missing_docs,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::panic,
    clippy::std_instead_of_core,
    reason = "test code: a panic is a test failure"
)]

use core::net::Ipv4Addr;

use mix_core::*;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const LIGHTPUSH: &str = "/vac/waku/lightpush/3.0.0";

/// A small in-memory network: node keys and their addresses.
struct Net {
    keys: Vec<NodeSecretKey>,
    hops: Vec<Hop>,
}

impl Net {
    fn new(rng: &mut ChaCha20Rng, n: usize) -> Self {
        let keys: Vec<_> = (0..n).map(|_| NodeSecretKey::generate(rng)).collect();
        let hops = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Hop {
                address: random_address(rng, i),
                public_key: k.public_key(),
            })
            .collect();
        Self { keys, hops }
    }

    fn route(&self, path: [usize; 3], delays: [u16; 2]) -> Route {
        Route {
            hops: path.map(|i| self.hops[i]),
            delays: delays.map(Delay::from_millis),
        }
    }

    /// The node listening at `address`.
    fn node_at(&self, address: &Address) -> usize {
        self.hops
            .iter()
            .position(|h| h.address == *address)
            .unwrap()
    }
}

fn peer(rng: &mut ChaCha20Rng) -> PeerIdBytes {
    let mut key = [0u8; 33];
    rng.fill_bytes(&mut key);
    key[0] = 2 + (key[0] & 1);
    PeerIdBytes::from_secp256k1_public_key(&key).unwrap()
}

fn random_address(rng: &mut ChaCha20Rng, i: usize) -> Address {
    let relayed = rng.next_u32().is_multiple_of(4);
    Address {
        ip: Ipv4Addr::new(127, 0, 0, 1 + u8::try_from(i % 200).unwrap()),
        transport: if rng.next_u32().is_multiple_of(2) {
            Transport::Tcp
        } else {
            Transport::QuicV1
        },
        port: 1 + u16::try_from(rng.next_u32() % 65535).unwrap(),
        peer_id: peer(rng),
        relay: relayed.then(|| peer(rng)),
    }
}

/// Drives `packet` from `first` along forward hops until an exit or reply; checks every
/// forward hop against `expect_hops`. Returns the node that ended the route.
fn drive<'a>(
    format: Format,
    net: &Net,
    filter: &mut MemoryReplayFilter,
    first: usize,
    packet: &'a mut [u8; PACKET_LEN],
    expect: &Route,
) -> (usize, Result<Action<'a>, PeelError>) {
    let mut node = first;
    // Two forward hops, then the final one; the borrow checker wants the loop unrolled.
    for i in 0..2 {
        match peel_with(format, &net.keys[node], filter, 0, packet) {
            Ok(Action::Forward {
                next_hop, delay, ..
            }) => {
                assert_eq!(next_hop, expect.hops[i + 1].address, "next hop of hop {i}");
                assert_eq!(delay, expect.delays[i], "delay of hop {i}");
                node = net.node_at(&next_hop);
            }
            other => panic!("hop {i}: expected Forward, got {other:?}"),
        }
    }
    (node, peel_with(format, &net.keys[node], filter, 0, packet))
}

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Lip183), Just(Format::V039)]
}

fn codec_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(LIGHTPUSH.to_owned()),
        Just(String::new()),
        "[ -~]{1,127}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Build → peel at each hop → Exit with the original bytes, for any fitting message, any
    /// SURB count, both destination modes and any seed.
    #[test]
    fn any_fitting_message_reaches_the_exit_intact(
        format in format_strategy(),
        seed in any::<[u8; 32]>(),
        codec in codec_strategy(),
        surb_count in 0usize..=MAX_SURBS,
        fill in any::<u8>(),
        len_fraction in 0.0f64..=1.0,
        forward_mode in any::<bool>(),
        delays in any::<[u16; 2]>(),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let net = Net::new(&mut rng, 7);
        let route = net.route([0, 1, 2], delays);
        let back = net.route([3, 4, 6], [0, 0]);
        let mut surbs = Vec::new();
        for _ in 0..surb_count {
            surbs.push(Surb::create_with_format(format, &mut rng, &back).unwrap().0);
        }
        let Ok(max) = format.max_message_len(&codec, surb_count) else {
            // Only a long codec beside five SURBs can leave no room at all.
            prop_assert!(codec.len() + 2 + surb_count * SURB_LEN > format.data_len());
            return Ok(());
        };
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let len = ((max as f64) * len_fraction) as usize;
        let body: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i.to_le_bytes()[0])).collect();
        let destination = random_address(&mut rng, 99);
        let builder = PacketBuilder::new(&route).format(format).surbs(&surbs);
        let builder = if forward_mode { builder.destination(&destination) } else { builder };
        prop_assert_eq!(builder.max_message_len(&codec), Ok(max));

        let mut packet = [0u8; PACKET_LEN];
        prop_assert_eq!(builder.build(&mut rng, &codec, &body, &mut packet), Ok(PACKET_LEN));
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let (exit, action) = drive(format, &net, &mut filter, 0, &mut packet, &route);
        prop_assert_eq!(exit, 2);
        match action.unwrap() {
            Action::Exit { destination: got, message } => {
                prop_assert_eq!(got, forward_mode.then_some(destination));
                if codec == COVER_CODEC {
                    prop_assert_eq!(message, ExitMessage::Cover);
                } else {
                    let ExitMessage::Request { codec: c, surbs: s, body: b } = message else {
                        panic!("not a request");
                    };
                    prop_assert_eq!(c, codec.as_str());
                    prop_assert_eq!(b, &body[..]);
                    prop_assert_eq!(s.format(), format);
                    prop_assert_eq!(s.iter().collect::<Vec<_>>(), surbs);
                }
            }
            other => panic!("expected Exit, got {other:?}"),
        }
    }

    /// One byte too many is refused with the exact size that fits.
    #[test]
    fn an_oversize_message_is_refused_with_the_largest_size_that_fits(
        format in format_strategy(),
        seed in any::<[u8; 32]>(),
        codec in codec_strategy(),
        surb_count in 0usize..=MAX_SURBS,
        extra in 1usize..100,
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let net = Net::new(&mut rng, 3);
        let route = net.route([0, 1, 2], [0, 0]);
        let surbs: Vec<_> = (0..surb_count)
            .map(|_| Surb::create_with_format(format, &mut rng, &route).unwrap().0)
            .collect();
        let mut packet = [0u8; PACKET_LEN];
        let builder = PacketBuilder::new(&route).format(format).surbs(&surbs);
        match format.max_message_len(&codec, surb_count) {
            Ok(max) => {
                let body = vec![0u8; max + extra];
                prop_assert_eq!(
                    builder.build(&mut rng, &codec, &body, &mut packet),
                    Err(BuildError::MessageTooLong { max_len: max })
                );
            }
            Err(e) => prop_assert_eq!(builder.build(&mut rng, &codec, &[], &mut packet), Err(e)),
        }
    }

    /// SURB: create → use by a party holding only the `Surb` bytes → return path → open.
    #[test]
    fn a_reply_through_a_surb_opens_for_its_creator_only(
        format in format_strategy(),
        seed in any::<[u8; 32]>(),
        reply in proptest::collection::vec(any::<u8>(), 0..=3965),
        flip in (0usize..PAYLOAD_LEN, 0u8..8),
    ) {
        let reply = &reply[..reply.len().min(format.max_reply_len())];
        let mut rng = ChaCha20Rng::from_seed(seed);
        let net = Net::new(&mut rng, 5);
        let back = net.route([1, 3, 4], [5, 6]);
        let (surb, keys) = Surb::create_with_format(format, &mut rng, &back).unwrap();
        let (_, other_keys) = Surb::create_with_format(format, &mut rng, &back).unwrap();
        prop_assert_ne!(keys.id(), other_keys.id());
        // The exit sees only the 734 bytes (and answers in the format it peels with).
        let at_exit = Surb::from_bytes(&surb.to_bytes()).unwrap().with_format(format);
        prop_assert_eq!(&at_exit, &surb);
        let mut packet = [0u8; PACKET_LEN];
        at_exit.build_reply(&mut rng, reply, &mut packet).unwrap();
        prop_assert_eq!(net.node_at(at_exit.first_hop()), 1);

        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let (end, action) = drive(format, &net, &mut filter, 1, &mut packet, &back);
        prop_assert_eq!(end, 4);
        let Ok(Action::Reply { surb_id, payload }) = action else {
            panic!("expected Reply, got {action:?}");
        };
        prop_assert_eq!(surb_id, keys.id());
        let mut copy = *payload;
        prop_assert_eq!(other_keys.open_reply(&mut copy), Err(SurbError::Integrity));
        // Tampered on the way back: LIONESS garbles the whole payload, so any flip is caught
        // (v0.39's XOR stream only catches flips in the zero prefix).
        let mut tampered = *payload;
        tampered[flip.0] ^= 1 << flip.1;
        let opened = keys.open_reply(&mut tampered);
        if format == Format::Lip183 || flip.0 < 16 {
            prop_assert_eq!(opened, Err(SurbError::Integrity));
        }
        // Opening in the other format fails too.
        let mut bytes = keys.to_bytes();
        bytes[SURB_KEYS_LEN - 1] ^= 1;
        let mut copy = *payload;
        prop_assert!(SurbKeys::from_bytes(&*bytes).unwrap().open_reply(&mut copy).is_err());
        // Keys survive persistence, format included.
        let restored = SurbKeys::from_bytes(&*keys.to_bytes()).unwrap();
        prop_assert_eq!(restored.format(), format);
        prop_assert_eq!(restored.open_reply(payload).unwrap(), reply);
    }

    /// Any buffer that is not exactly one packet is an error, never a panic.
    #[test]
    fn buffers_of_the_wrong_length_are_errors(len in 0usize..2 * PACKET_LEN, byte in any::<u8>()) {
        prop_assume!(len != PACKET_LEN);
        let key = NodeSecretKey::from_bytes([byte; 32]);
        let mut buf = vec![byte; len];
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        prop_assert_eq!(peel(&key, &mut filter, 0, &mut buf).err(), Some(PeelError::Length));
        prop_assert_eq!(key.hop_secrets(&buf).err(), Some(PeelError::Length));
        // Each decoder refuses every length but its own (a buffer of its own length may be
        // valid: that is not this property).
        if len != SURB_LEN {
            prop_assert_eq!(Surb::from_bytes(&buf).err(), Some(DecodeError::Length { expected: SURB_LEN }));
        }
        if len != SURB_KEYS_LEN && len != LEGACY_SURB_KEYS_LEN {
            prop_assert!(SurbKeys::from_bytes(&buf).is_err());
        }
        // Addresses are 94 bytes (MIX.md §2).
        if len.min(200) != 94 {
            prop_assert!(Address::from_bytes(&buf[..len.min(200)]).is_err());
        }
        let mut short = vec![0u8; len.min(PAYLOAD_LEN - 1)];
        prop_assert_eq!(
            SurbKeys::from_bytes(&[byte; LEGACY_SURB_KEYS_LEN]).unwrap().open_reply(&mut short),
            Err(SurbError::Length)
        );
        let mut out = vec![0u8; len.min(PACKET_LEN - 1)];
        let mut rng = ChaCha20Rng::from_seed([byte; 32]);
        let net = Net::new(&mut rng, 3);
        prop_assert_eq!(
            PacketBuilder::new(&net.route([0, 1, 2], [0, 0])).build(&mut rng, "", &[], &mut out),
            Err(BuildError::BufferTooSmall { required: PACKET_LEN })
        );
    }

    /// Random bytes of the right length are rejected (or, for the odd α, refused) cleanly.
    #[test]
    fn random_packets_are_rejected(
        format in format_strategy(),
        bytes in proptest::collection::vec(any::<u8>(), PACKET_LEN),
        key in any::<[u8; 32]>(),
    ) {
        let mut buf = bytes;
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let top_bit = buf[31] & 0x80 != 0;
        prop_assert_eq!(
            peel_with(format, &NodeSecretKey::from_bytes(key), &mut filter, 0, &mut buf).err(),
            Some(if top_bit { PeelError::AlphaNonCanonical } else { PeelError::Rejected })
        );
        prop_assert!(filter.is_empty());
    }

    /// LIP-183: a flip anywhere in δ passes both intermediates (γ covers only β) and garbles
    /// the whole payload at the exit, which rejects it; its tag is recorded by then.
    #[test]
    fn a_flip_anywhere_in_delta_is_rejected_at_the_exit_in_lip183(
        offset in HEADER_LEN..PACKET_LEN,
        bit in 0u8..8,
    ) {
        let (net, route, mut packet) = fixture(Format::Lip183);
        packet[offset] ^= 1 << bit;
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let (_, last) = drive(Format::Lip183, &net, &mut filter, 0, &mut packet, &route);
        prop_assert_eq!(last.err(), Some(PeelError::PayloadIntegrity));
        prop_assert_eq!(filter.len(), 3);
    }

    #[test]
    fn addresses_round_trip(seed in any::<[u8; 32]>()) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let address = random_address(&mut rng, usize::from(seed[0]));
        prop_assert_eq!(Address::from_bytes(&address.to_bytes()), Ok(address));
        prop_assert_eq!(Address::decode_optional(&address.to_bytes()), Ok(Some(address)));
    }

    #[test]
    fn mix_messages_round_trip(
        format in format_strategy(),
        codec in prop_oneof![codec_strategy(), "[a-z/]{128,400}"],
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut out = vec![0u8; 4000];
        let Ok(n) = payload::encode_forward_message(format, &codec, &[], &body, &mut out) else {
            // v0.39 decoders read one-byte codec lengths only.
            prop_assert!(format == Format::V039 && codec.len() > 127);
            return Ok(());
        };
        let (c, rest) = payload::decode_mix_message(&out[..n]).unwrap();
        prop_assert_eq!(c, codec.as_str());
        prop_assert_eq!(rest[0], 0);
        prop_assert_eq!(&rest[1..], &body[..]);
    }
}

/// A valid packet of `format` and the network it travels.
fn fixture(format: Format) -> (Net, Route, [u8; PACKET_LEN]) {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let net = Net::new(&mut rng, 3);
    let route = net.route([0, 1, 2], [1, 2]);
    let mut packet = [0u8; PACKET_LEN];
    PacketBuilder::new(&route)
        .format(format)
        .build(&mut rng, LIGHTPUSH, b"payload", &mut packet)
        .unwrap();
    (net, route, packet)
}

mod tampering {
    use super::*;

    /// Every single-bit flip in α, β or γ makes the first hop reject the packet: α's top bit
    /// as non-canonical, the rest by the MAC.
    #[test]
    fn every_single_bit_flip_in_the_header_is_rejected() {
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            for bit in 0..HEADER_LEN * 8 {
                let mut tampered = packet;
                tampered[bit / 8] ^= 1 << (bit % 8);
                let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
                let want = if bit == 255 {
                    PeelError::AlphaNonCanonical
                } else {
                    PeelError::Rejected
                };
                assert_eq!(
                    peel_with(format, &net.keys[0], &mut filter, 0, &mut tampered).err(),
                    Some(want),
                    "{format}: bit {bit} (byte {})",
                    bit / 8
                );
                assert!(filter.is_empty());
            }
        }
    }

    /// The same holds at the second and third hop for the header they receive.
    #[test]
    fn header_flips_are_rejected_at_later_hops() {
        for format in Format::ALL {
            let (net, _, mut packet) = fixture(format);
            let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
            for hop in 0..2 {
                assert!(matches!(
                    peel_with(format, &net.keys[hop], &mut filter, 0, &mut packet),
                    Ok(Action::Forward { .. })
                ));
                for byte in (0..HEADER_LEN - 1).step_by(7) {
                    let mut tampered = packet;
                    tampered[byte] ^= 0x10;
                    let mut fresh = MemoryReplayFilter::new(ReplayConfig::default());
                    assert_eq!(
                        peel_with(format, &net.keys[hop + 1], &mut fresh, 0, &mut tampered).err(),
                        Some(PeelError::Rejected),
                        "{format}: hop {} byte {byte}",
                        hop + 1
                    );
                }
            }
        }
    }

    /// A flip in δ's zero prefix fails at the exit in both formats.
    #[test]
    fn a_flip_in_the_payload_zero_prefix_is_rejected_at_the_exit() {
        for format in Format::ALL {
            let (net, route, packet) = fixture(format);
            for bit in 0..16 * 8 {
                let mut tampered = packet;
                tampered[HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
                let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
                let (_, last) = drive(format, &net, &mut filter, 0, &mut tampered, &route);
                assert_eq!(
                    last.err(),
                    Some(PeelError::PayloadIntegrity),
                    "{format}: bit {bit}"
                );
            }
        }
    }

    /// MIX.md §3: in v0.39 δ is malleable beyond its prefix (an XOR stream). This documents the
    /// threat model of the legacy format: applications needing integrity must add their own.
    #[test]
    fn the_v039_payload_is_malleable_beyond_its_zero_prefix() {
        let (net, route, mut packet) = fixture(Format::V039);
        packet[PACKET_LEN - 1] ^= 1; // inside the seqNo trailer: ignored by receivers
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let (_, last) = drive(Format::V039, &net, &mut filter, 0, &mut packet, &route);
        assert!(matches!(last, Ok(Action::Exit { .. })));
    }

    /// LIP-183: the last byte of δ, which v0.39 ignores, is caught like any other.
    #[test]
    fn the_lip183_payload_is_not_malleable() {
        let (net, route, mut packet) = fixture(Format::Lip183);
        packet[PACKET_LEN - 1] ^= 1;
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let (_, last) = drive(Format::Lip183, &net, &mut filter, 0, &mut packet, &route);
        assert_eq!(last.err(), Some(PeelError::PayloadIntegrity));
    }

    /// A packet peeled in the wrong format: the header is the same, so γ verifies and the
    /// intermediates forward garbage δ, and the exit rejects it.
    #[test]
    fn a_packet_peeled_in_the_other_format_fails_at_the_exit() {
        for (built, peeled) in [
            (Format::Lip183, Format::V039),
            (Format::V039, Format::Lip183),
        ] {
            let (net, route, mut packet) = fixture(built);
            let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
            let (_, last) = drive(peeled, &net, &mut filter, 0, &mut packet, &route);
            assert_eq!(
                last.err(),
                Some(PeelError::PayloadIntegrity),
                "{built} as {peeled}"
            );
        }
    }

    /// The split steps refuse a buffer swapped between verification and peeling.
    #[test]
    fn peeling_a_different_buffer_than_the_verified_one_is_rejected() {
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            let verified = net.keys[0]
                .hop_secrets_with(format, &packet)
                .unwrap()
                .verify_mac(&packet)
                .unwrap();
            let mut other = packet;
            other[HEADER_LEN - 1] ^= 1;
            assert_eq!(
                verified.peel_in_place(&mut other).err(),
                Some(PeelError::Rejected)
            );
        }
    }
}

mod alpha {
    use super::*;

    fn with_alpha(packet: &[u8; PACKET_LEN], alpha: [u8; 32]) -> [u8; PACKET_LEN] {
        let mut p = *packet;
        p[..32].copy_from_slice(&alpha);
        p
    }

    /// MIX-LIONESS.md §5 steps 1–2, applied in both formats, before any tag is recorded.
    #[test]
    fn zero_non_canonical_and_low_order_alphas_are_refused() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut p_plus_1 = p;
        p_plus_1[0] = 0xee;
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut order8 = [0u8; 32];
        hex::decode_to_slice(
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            &mut order8,
        )
        .unwrap();
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            let mut top = [0u8; 32];
            top.copy_from_slice(&packet[..32]);
            top[31] |= 0x80;
            for (alpha, want) in [
                ([0u8; 32], PeelError::AlphaZero),
                (p, PeelError::AlphaNonCanonical),
                (p_plus_1, PeelError::AlphaNonCanonical),
                (top, PeelError::AlphaNonCanonical),
                ([0xff; 32], PeelError::AlphaNonCanonical),
                (one, PeelError::AlphaLowOrder),
                (order8, PeelError::AlphaLowOrder),
            ] {
                let mut tampered = with_alpha(&packet, alpha);
                assert_eq!(
                    net.keys[0].hop_secrets_with(format, &tampered).err(),
                    Some(want),
                    "{format} {}",
                    hex::encode(alpha)
                );
                let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
                assert_eq!(
                    peel_with(format, &net.keys[0], &mut filter, 0, &mut tampered).err(),
                    Some(want)
                );
                assert!(filter.is_empty());
            }
        }
    }

    /// The replay tag is `SHA-256(s)` in LIP-183 and `SHA-256(α ‖ s)` in v0.39; the blinding
    /// factor is `SHA-256(α ‖ s)` in both.
    #[test]
    fn the_replay_tag_follows_the_format() {
        use sha2::Digest;
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            let hop = net.keys[0].hop_secrets_with(format, &packet).unwrap();
            let s = hop.shared_secret().as_bytes();
            let alpha_s: [u8; 32] = sha2::Sha256::new()
                .chain_update(&packet[..32])
                .chain_update(s)
                .finalize()
                .into();
            let s_only: [u8; 32] = sha2::Sha256::digest(s).into();
            assert_eq!(hop.blinding_factor(), &alpha_s);
            assert_eq!(hop.format(), format);
            let want = match format {
                Format::Lip183 => s_only,
                Format::V039 => alpha_s,
            };
            assert_eq!(hop.replay_tag().as_bytes(), &want, "{format}");
        }
    }
}

mod replay {
    use super::*;

    #[test]
    fn the_same_packet_twice_is_a_replay_and_a_new_packet_is_not() {
        for format in Format::ALL {
            let (net, route, packet) = fixture(format);
            let key = &net.keys[0];
            let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
            let mut first = packet;
            assert!(peel_with(format, key, &mut filter, 1000, &mut first).is_ok());
            let mut again = packet;
            assert_eq!(
                peel_with(format, key, &mut filter, 2000, &mut again).err(),
                Some(PeelError::Replay(ReplayError::Replayed))
            );
            // A fresh packet to the same route is independent.
            let mut rng = ChaCha20Rng::from_seed([1; 32]);
            let mut other = [0u8; PACKET_LEN];
            PacketBuilder::new(&route)
                .format(format)
                .build(&mut rng, LIGHTPUSH, b"x", &mut other)
                .unwrap();
            assert!(peel_with(format, key, &mut filter, 3000, &mut other).is_ok());
            // After the TTL (and its bucket) the tag is forgotten, as in Nim.
            let mut late = packet;
            let later = 1000 + 3_600_000 + 300_000;
            assert!(peel_with(format, key, &mut filter, later, &mut late).is_ok());
        }
    }

    #[test]
    fn a_packet_failing_its_mac_does_not_poison_the_filter() {
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
            // Same α (so the same tag), garbled β: rejected, and not recorded.
            let mut forged = packet;
            forged[100] ^= 0xff;
            assert_eq!(
                peel_with(format, &net.keys[0], &mut filter, 0, &mut forged).err(),
                Some(PeelError::Rejected)
            );
            assert!(filter.is_empty());
            let mut genuine = packet;
            assert!(peel_with(format, &net.keys[0], &mut filter, 0, &mut genuine).is_ok());
        }
    }

    /// X25519 ignores α's top bit, so a copy with it flipped has the same shared secret and a
    /// valid γ, but v0.39's tag `SHA-256(α ‖ s)` over the raw bytes differs: a v0.39 Nim relay
    /// would process the replay again. A non-canonical α is refused before any of that.
    #[test]
    fn a_replay_with_the_top_bit_of_alpha_flipped_is_refused() {
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            let mut flipped = packet;
            flipped[31] ^= 0x80;
            let alpha: [u8; 32] = packet[..32].try_into().unwrap();
            let flipped_alpha: [u8; 32] = flipped[..32].try_into().unwrap();
            let sk = net.keys[0].to_bytes();
            assert_eq!(
                hazmat::x25519(&sk, &alpha),
                hazmat::x25519(&sk, &flipped_alpha),
                "the same shared secret"
            );
            let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
            let mut first = packet;
            assert!(peel_with(format, &net.keys[0], &mut filter, 0, &mut first).is_ok());
            assert_eq!(
                peel_with(format, &net.keys[0], &mut filter, 0, &mut flipped).err(),
                Some(PeelError::AlphaNonCanonical)
            );
        }
    }

    /// LIP-183 records the tag before the exit's zero-prefix check, so a replay of a tampered
    /// packet is refused as a replay (MIX-LIONESS.md §5 step 8).
    #[test]
    fn a_tampered_packet_replayed_at_the_exit_is_a_replay() {
        let (net, route, mut packet) = fixture(Format::Lip183);
        packet[HEADER_LEN + 500] ^= 4;
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let (exit, _) = drive(
            Format::Lip183,
            &net,
            &mut filter,
            0,
            &mut packet.clone(),
            &route,
        );
        // Replay the packet as it reached the exit.
        let mut at_exit = packet;
        for hop in 0..2 {
            let mut fresh = MemoryReplayFilter::new(ReplayConfig::default());
            peel_with(Format::Lip183, &net.keys[hop], &mut fresh, 0, &mut at_exit).unwrap();
        }
        assert_eq!(
            peel_with(
                Format::Lip183,
                &net.keys[exit],
                &mut filter,
                0,
                &mut at_exit
            )
            .err(),
            Some(PeelError::Replay(ReplayError::Replayed))
        );
    }

    #[test]
    fn tags_differ_per_hop_and_per_packet() {
        for format in Format::ALL {
            let (net, _, packet) = fixture(format);
            let a = net.keys[0].hop_secrets_with(format, &packet).unwrap();
            let b = net.keys[1].hop_secrets_with(format, &packet).unwrap();
            assert_ne!(a.replay_tag(), b.replay_tag());
        }
    }
}

mod hygiene {
    use super::*;

    fn assert_redacted(debug: &str, secret: &[u8]) {
        let hex = hex::encode(secret);
        for window in 0..secret.len().saturating_sub(3) {
            assert!(
                !debug.contains(&hex[window * 2..window * 2 + 8]),
                "{debug} shows secret bytes"
            );
        }
        assert!(
            !debug.contains(&format!("{:?}", &secret[..4])[1..8]),
            "{debug}"
        );
    }

    #[test]
    fn secrets_debug_shows_no_bytes() {
        let secret = [0xa7u8; 32];
        let sk = NodeSecretKey::from_bytes(secret);
        assert_redacted(&format!("{sk:?}"), &secret);
        let shared = SharedSecret::from_bytes(secret);
        assert_redacted(&format!("{shared:?}"), &secret);
        let keys = HopKeys::derive(&shared);
        for k in [
            keys.aes_key(),
            keys.mac_key(),
            keys.iv(),
            keys.delta_aes_key(),
            keys.delta_iv(),
        ] {
            assert_redacted(&format!("{keys:?}"), k);
        }
        assert_redacted(&format!("{keys:?}"), keys.payload_enc_key());
        let (net, route, packet) = fixture(Format::Lip183);
        let hop = net.keys[0].hop_secrets(&packet).unwrap();
        let debug = format!("{hop:?} {:?}", hop.replay_tag());
        assert_redacted(&debug, hop.shared_secret().as_bytes());
        assert_redacted(&debug, hop.replay_tag().as_bytes());
        assert_redacted(&debug, hop.blinding_factor());
        let lioness = hazmat::Lioness::new(&secret).unwrap();
        for k in lioness.round_keys() {
            assert_redacted(&format!("{lioness:?}"), k);
        }
        let verified = hop.verify_mac(&packet).unwrap();
        assert_redacted(&format!("{verified:?}"), verified.replay_tag().as_bytes());

        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let (surb, keys) = Surb::create(&mut rng, &route).unwrap();
        let bytes = keys.to_bytes();
        let debug = format!("{keys:?}");
        assert_redacted(&debug, &bytes[16..]);
        assert!(
            debug.contains(&hex::encode(keys.id().as_bytes())),
            "the id is not secret"
        );
        // The SURB's reply key (its last 16 bytes) is not shown either.
        assert_redacted(&format!("{surb:?}"), &surb.to_bytes()[SURB_LEN - 16..]);
    }

    #[test]
    fn weak_public_keys_are_refused() {
        let (net, mut route, _) = fixture(Format::Lip183);
        route.hops[1].public_key = NodePublicKey::from_bytes([0u8; 32]);
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let mut packet = [0u8; PACKET_LEN];
        assert_eq!(
            PacketBuilder::new(&route).build(&mut rng, "", &[], &mut packet),
            Err(BuildError::WeakPublicKey)
        );
        // A zero α is refused by the hop.
        packet = [0u8; PACKET_LEN];
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        assert_eq!(
            peel(&net.keys[0], &mut filter, 0, &mut packet).err(),
            Some(PeelError::AlphaZero)
        );
    }
}

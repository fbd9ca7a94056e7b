//! Per-hop processing of mutated *valid* LIP-183 packets (LIONESS payload), so the fuzzer gets
//! past the MAC and, through LIONESS steering, past the payload's zero prefix:
//! - mode 0: byte mutations anywhere in a packet arriving at hop 0, 1 or 2; a changed δ must
//!   be rejected at the exit (LIONESS garbles the whole payload);
//! - mode 1: a fuzzer-chosen authenticated routing block (β re-encrypted, γ recomputed);
//! - mode 2: a fuzzer-chosen exit chunk (δ = Enc(pek_exit, 0₁₆ ‖ chunk)), decoded with and
//!   without a service handler for the codec, and replies built through its SURBs;
//! - mode 3: a fuzzer-chosen reply chunk for the SURB creator's LIP-183 `open_reply`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;
use mix_core_fuzz::{fixture_for, steer_lioness_exit, steer_lioness_reply, steer_routing_block};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = Format::Lip183;
    let f = fixture_for(format);
    let hop = usize::from(selector >> 2) % 3;
    let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
    match selector & 3 {
        0 => {
            let mut packet = f.at_hop[hop];
            for op in rest.chunks_exact(3) {
                let offset = usize::from(u16::from_le_bytes([op[0], op[1]])) % PACKET_LEN;
                packet[offset] ^= op[2];
            }
            let unchanged = packet == f.at_hop[hop];
            let header_unchanged = packet[..HEADER_LEN] == f.at_hop[hop][..HEADER_LEN];
            let result = peel_with(format, &f.keys[hop], &mut filter, 0, &mut packet);
            if unchanged {
                assert!(result.is_ok(), "the valid packet must peel: {result:?}");
            } else if header_unchanged && hop == 2 {
                // Only δ changed: the exit's zero prefix check catches it (p ≈ 2⁻¹²⁸).
                assert_eq!(result.err(), Some(PeelError::PayloadIntegrity));
            }
        }
        1 => {
            let mut packet = f.at_hop[hop];
            steer_routing_block(&f.keys[hop], &mut packet, rest);
            if let Ok(Action::Forward { next_hop, .. }) =
                peel_with(format, &f.keys[hop], &mut filter, 0, &mut packet)
            {
                let mut field = [0u8; 94];
                for (b, v) in field.iter_mut().zip(rest) {
                    *b = *v;
                }
                assert_eq!(next_hop.to_bytes(), field);
            }
        }
        2 => {
            let mut packet = f.at_hop[2];
            steer_lioness_exit(&f.keys[2], &mut packet, rest);
            let mut again = packet;
            let verified = f.keys[2]
                .hop_secrets_with(format, &packet)
                .and_then(|s| s.verify_mac(&packet))
                .expect("the header is untouched");
            // The fixture's exit is the destination: a service handler for the chunk's codec.
            let mut chunk = [0u8; MESSAGE_LEN];
            for (c, r) in chunk.iter_mut().zip(rest) {
                *c = *r;
            }
            let codec = payload::unpad(format, &chunk)
                .and_then(payload::decode_mix_message)
                .map(|(c, _)| c.to_owned())
                .unwrap_or_default();
            let _ = verified.peel_in_place_with_services(&mut again, &[codec.as_str()]);
            if let Ok(Action::Exit {
                message: ExitMessage::Request { surbs, .. },
                ..
            }) = peel_with(format, &f.keys[2], &mut filter, 0, &mut packet)
            {
                assert_eq!(surbs.format(), format);
                for surb in surbs.iter() {
                    let mut reply = [0u8; PACKET_LEN];
                    let _ = surb.build_reply_with_fixed_randomness_for_testing_only(
                        [0; 4], rest, &mut reply,
                    );
                }
            }
        }
        _ => {
            let last = f.reply_path[2];
            let mut packet = f.reply_at_hop[2];
            steer_lioness_reply(f, &mut packet, rest);
            match peel_with(format, &f.keys[last], &mut filter, 0, &mut packet) {
                Ok(Action::Reply { surb_id, payload }) => {
                    assert_eq!(surb_id, f.surb_keys.id());
                    // The steered plaintext starts with the zero prefix: only decoding can fail.
                    assert!(!matches!(
                        f.surb_keys.open_reply(payload),
                        Err(SurbError::Integrity)
                    ));
                }
                other => panic!("the reply must reach its creator: {other:?}"),
            }
        }
    }
});

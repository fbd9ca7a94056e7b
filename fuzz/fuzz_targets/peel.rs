//! Per-hop processing of mutated *valid* v0.39 packets, so the fuzzer gets past the MAC (the
//! LIP-183 format has its own target, `peel_lip183`):
//! - mode 0: byte mutations anywhere in a packet arriving at hop 0, 1 or 2;
//! - mode 1: a fuzzer-chosen authenticated routing block (β re-encrypted, γ recomputed);
//! - mode 2: a fuzzer-chosen exit chunk (δ steered through its malleability);
//! - mode 3: a fuzzer-chosen reply chunk for the SURB creator's `open_reply`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;
use mix_core_fuzz::{fixture, steer_payload, steer_routing_block};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
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
            let result = peel_with(f.format, &f.keys[hop], &mut filter, 0, &mut packet);
            if unchanged {
                assert!(result.is_ok(), "the valid packet must peel: {result:?}");
            }
        }
        1 => {
            let mut packet = f.at_hop[hop];
            steer_routing_block(&f.keys[hop], &mut packet, rest);
            if let Ok(Action::Forward { next_hop, .. }) =
                peel_with(f.format, &f.keys[hop], &mut filter, 0, &mut packet)
            {
                // The next hop is exactly the address the routing block carries.
                let mut field = [0u8; 94];
                for (b, v) in field.iter_mut().zip(rest) {
                    *b = *v;
                }
                assert_eq!(next_hop.to_bytes(), field);
            }
        }
        2 => {
            let mut packet = f.at_hop[2];
            steer_payload(&mut packet, HEADER_LEN + 16, &f.chunk, rest);
            if let Ok(Action::Exit {
                message: ExitMessage::Request { surbs, .. },
                ..
            }) = peel_with(f.format, &f.keys[2], &mut filter, 0, &mut packet)
            {
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
            // After the creator's own layer the payload is k̃ ⊕ s-layers over 0₁₆ ‖ chunk;
            // steering the incoming δ steers the opened chunk by the same XOR.
            steer_payload(&mut packet, HEADER_LEN + 16, &f.reply_chunk, rest);
            match peel_with(f.format, &f.keys[last], &mut filter, 0, &mut packet) {
                Ok(Action::Reply { surb_id, payload }) => {
                    assert_eq!(surb_id, f.surb_keys.id());
                    let _ = f.surb_keys.open_reply(payload);
                }
                other => panic!("the reply must reach its creator: {other:?}"),
            }
        }
    }
});

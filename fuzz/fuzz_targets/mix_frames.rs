//! The `/mix/1.0.0` frame reader over arbitrary stream bytes, without a per-hop proof and with
//! a small one (1 to 32 bytes, from the first byte). Must never panic; every frame it accepts
//! has exactly the configured length and reads back the same once re-framed.
//!
//! libFuzzer seldom grows an input to a whole frame (4610 bytes), so the bytes are also read
//! after a valid frame made of them (zero-padded): the reader must accept that frame and go on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::PACKET_LEN;
use mix_core_fuzz::length_prefixed;
use mix_libp2p::{DropReason, Frame, decode_frames_for_fuzzing};

fn check(stream: &[u8], proof_len: usize) -> Vec<Result<Frame, DropReason>> {
    let results = decode_frames_for_fuzzing(stream, proof_len);
    // Every result consumed at least one byte (a prefix), a frame its whole length.
    assert!(results.len() <= stream.len());
    let frames = results.iter().filter(|r| r.is_ok()).count();
    assert!(frames * (PACKET_LEN + proof_len) <= stream.len());
    // Reading stops at an oversize or bad prefix and at a truncated frame: nothing follows.
    let stops = |r: &Result<Frame, DropReason>| {
        matches!(
            r,
            Err(DropReason::Oversize | DropReason::BadPrefix | DropReason::Truncated)
        )
    };
    if let Some(i) = results.iter().position(stops) {
        assert_eq!(i + 1, results.len());
    }
    for result in &results {
        match result {
            Ok(frame) => {
                assert_eq!(frame.proof.len(), proof_len);
                assert_eq!(frame.len(), PACKET_LEN + proof_len);
                let mut body = frame.packet.to_vec();
                body.extend_from_slice(&frame.proof);
                let again = decode_frames_for_fuzzing(&length_prefixed(&body), proof_len);
                assert_eq!(again, [Ok(frame.clone())]);
            }
            // No deadline here, so nothing stalls.
            Err(reason) => assert!(matches!(
                reason,
                DropReason::Length
                    | DropReason::Oversize
                    | DropReason::BadPrefix
                    | DropReason::Truncated
            )),
        }
    }
    results
}

fuzz_target!(|data: &[u8]| {
    check(data, 0);
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let proof_len = 1 + usize::from(first % 32);
    check(rest, proof_len);
    for proof_len in [0, proof_len] {
        let mut body = rest.to_vec();
        body.resize(PACKET_LEN + proof_len, 0);
        let mut stream = length_prefixed(&body);
        stream.extend_from_slice(rest);
        match check(&stream, proof_len).first() {
            Some(Ok(frame)) => {
                assert_eq!(&frame.packet[..], &body[..PACKET_LEN]);
                assert_eq!(frame.proof, body[PACKET_LEN..]);
            }
            other => panic!("a valid frame was refused: {other:?}"),
        }
    }
});

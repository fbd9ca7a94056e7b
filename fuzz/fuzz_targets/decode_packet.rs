//! Arbitrary bytes as a received packet: any length, any content. Must never panic; a buffer
//! that is not exactly one packet must be refused as such.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;

fuzz_target!(|data: &[u8]| {
    let fixture = mix_core_fuzz::fixture();
    let mut buf = data.to_vec();
    let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
    let result = peel(&fixture.keys[0], &mut filter, 0, &mut buf);
    if data.len() != PACKET_LEN {
        assert_eq!(result.err(), Some(PeelError::Length));
    }
    // The same bytes through the split steps.
    if let Ok(secrets) = fixture.keys[1].hop_secrets(data) {
        let _ = secrets.replay_tag().fingerprint();
        if let Ok(verified) = secrets.verify_mac(data) {
            let _ = verified.peel_in_place(&mut buf);
        }
    }
});

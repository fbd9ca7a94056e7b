//! Arbitrary bytes as a received packet. Must never panic.
//!
//! libFuzzer grows inputs only when coverage rewards it, and nothing between 1 and 4607 bytes
//! does, so most inputs are mapped onto a full packet: the first byte picks the mode, the rest
//! is the packet's leading bytes (α first), zero-padded to 4608. Mode 0 uses the raw bytes at
//! whatever length they have, which must be refused as such. The mode's top bit picks the wire
//! format (LIP-183 or v0.39).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixture = mix_core_fuzz::fixture();
    let mut buf = if mode == 0 {
        rest.to_vec()
    } else {
        let mut packet = vec![0u8; PACKET_LEN];
        for (p, d) in packet.iter_mut().zip(rest) {
            *p = *d;
        }
        packet
    };
    let original = buf.clone();
    let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
    let key = &fixture.keys[usize::from(mode) % fixture.keys.len()];
    let is_packet = buf.len() == PACKET_LEN;
    let format = if mode & 0x80 == 0 {
        Format::Lip183
    } else {
        Format::V039
    };
    let result = peel_with(format, key, &mut filter, 0, &mut buf);
    if !is_packet {
        assert_eq!(result.err(), Some(PeelError::Length));
    }
    // The same bytes through the split steps.
    if let Ok(secrets) = key.hop_secrets_with(format, &original) {
        let _ = secrets.replay_tag().fingerprint();
        if let Ok(verified) = secrets.verify_mac(&original) {
            let mut again = original.clone();
            let _ = verified.peel_in_place(&mut again);
        }
    }
});

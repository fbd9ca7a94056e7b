//! SURB and SURB-key decoding: arbitrary bytes; whatever decodes must re-encode to the same
//! bytes and be usable by an exit, in both wire formats. SURB keys carry their format (the
//! last byte, or v0.39 for the 112-byte legacy layout), so `open_reply` runs in either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(surb) = Surb::from_bytes(data) {
        assert_eq!(&surb.to_bytes()[..], data);
        for format in Format::ALL {
            let surb = surb.clone().with_format(format);
            let mut reply = [0u8; PACKET_LEN];
            let body = &data[..data.len().min(format.max_reply_len())];
            assert_eq!(
                surb.build_reply_with_fixed_randomness_for_testing_only([0; 4], body, &mut reply),
                Ok(PACKET_LEN)
            );
        }
    }
    if let Ok(keys) = SurbKeys::from_bytes(data) {
        if data.len() == SURB_KEYS_LEN {
            assert_eq!(&keys.to_bytes()[..], data);
        } else {
            assert_eq!(keys.format(), Format::V039);
            assert_eq!(&keys.to_bytes()[..LEGACY_SURB_KEYS_LEN], data);
        }
        let mut payload = [0u8; PAYLOAD_LEN];
        for (p, d) in payload.iter_mut().zip(data.iter().cycle()) {
            *p = *d;
        }
        let _ = keys.open_reply(&mut payload);
    }
    if let Ok(surbs) = Surbs::new(data) {
        assert_eq!(surbs.iter().count(), surbs.len());
    }
});

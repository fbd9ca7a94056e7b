//! Message-chunk, mix-message and address decoding on arbitrary bytes; what decodes as a
//! request re-encodes to the same mix message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;

fuzz_target!(|data: &[u8]| {
    let mut chunk = [0u8; MESSAGE_LEN];
    for (c, d) in chunk.iter_mut().zip(data) {
        *c = *d;
    }
    if let Ok(ExitMessage::Request { codec, surbs, body }) = ExitMessage::decode(&chunk) {
        let inner = payload::unpad(&chunk).unwrap();
        let surbs: Vec<Surb> = surbs.iter().collect();
        let mut out = vec![0u8; MESSAGE_LEN];
        // Codecs over 127 bytes decode (two-byte uvarint) but are not written by us.
        if let Ok(n) = payload::encode_forward_message(codec, &surbs, body, &mut out) {
            assert_eq!(&out[..n], inner);
        }
    }
    let _ = payload::decode_reply(&chunk);
    if let Ok((codec, rest)) = payload::decode_mix_message(data) {
        assert!(codec.len() + rest.len() < data.len());
    }
    if let Some(field) = data.first_chunk::<94>() {
        if let Ok(Some(address)) = Address::decode_optional(field) {
            assert_eq!(&address.to_bytes(), field);
        }
    }
});

//! Message-chunk, mix-message and address decoding on arbitrary bytes, in both wire formats;
//! what decodes as a request re-encodes to the same mix message (in LIP-183 including codecs
//! with a two-byte LEB128 length), and service framing takes the body whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core::*;

fuzz_target!(|data: &[u8]| {
    let mut chunk = [0u8; MESSAGE_LEN];
    for (c, d) in chunk.iter_mut().zip(data) {
        *c = *d;
    }
    for format in Format::ALL {
        if let Ok(ExitMessage::Request { codec, surbs, body }) = ExitMessage::decode(format, &chunk)
        {
            let inner = payload::unpad(format, &chunk).unwrap();
            assert_eq!(surbs.format(), format);
            let surbs: Vec<Surb> = surbs.iter().collect();
            let mut out = vec![0u8; MESSAGE_LEN];
            // v0.39 does not write codecs over 127 bytes (two-byte uvarint); LIP-183 does.
            match payload::encode_forward_message(format, codec, &surbs, body, &mut out) {
                Ok(n) => assert_eq!(&out[..n], inner),
                Err(e) => assert!(format == Format::V039 && codec.len() > 127, "{e}"),
            }
        }
        // With a service handler for whatever codec the chunk names, LIP-183 hands the body
        // after the codec over whole.
        if let Ok(inner) = payload::unpad(format, &chunk)
            && let Ok((codec, rest)) = payload::decode_mix_message(inner)
            && codec != COVER_CODEC
        {
            let service = ExitMessage::decode_with_services(format, &chunk, true, &[codec]);
            if format == Format::Lip183 {
                assert_eq!(service, Ok(ExitMessage::Service { codec, body: rest }));
            } else {
                assert_eq!(service, ExitMessage::decode(format, &chunk));
            }
        }
        let _ = payload::decode_reply(format, &chunk);
    }
    if let Ok((codec, rest)) = payload::decode_mix_message(data) {
        assert!(codec.len() + rest.len() < data.len());
        // Minimal LEB128: re-encoding gives the same length field.
        let field = data.len() - codec.len() - rest.len();
        assert_eq!(field, if codec.len() < 128 { 1 } else { 2 });
    }
    if let Some(field) = data.first_chunk::<94>() {
        if let Ok(Some(address)) = Address::decode_optional(field) {
            assert_eq!(&address.to_bytes(), field);
        }
    }
});

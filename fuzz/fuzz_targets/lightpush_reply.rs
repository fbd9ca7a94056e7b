//! The browser client's reader of lightpush replies (what comes out of a SURB) on arbitrary
//! bytes. Must never panic; whatever it accepts is a framed `LightPushResponse` answering the
//! request (or `"N/A"`), and every refusal is `BAD_REPLY`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_relay::waku::{LightPushResponse, decode_length_prefixed};
use mix_wasm::{Code, decode_lightpush_reply_for_fuzzing};
use prost::Message as _;

const REQUEST_ID: &str = "0b5d3f4e-8a3c-4a8e-9d41-3c1f2a7b9e10";

fuzz_target!(|data: &[u8]| {
    match decode_lightpush_reply_for_fuzzing(data, REQUEST_ID) {
        Ok((status, id)) => {
            assert!(id == REQUEST_ID || id == "N/A", "{id}");
            let body = decode_length_prefixed(data).expect("accepted replies are one frame");
            let response = LightPushResponse::decode(body).expect("and a LightPushResponse");
            assert_eq!(response.status_code, status);
        }
        Err(e) => assert_eq!(e.kind(), Code::BadReply, "{e}"),
    }
});

//! The sender's reader of lightpush replies (mix-waku `decode_response`: what comes out of a
//! SURB, for the browser and the native sender alike) on arbitrary bytes. Must never panic;
//! whatever it accepts is a framed `LightPushResponse` answering the request (or `"N/A"`), and
//! whatever it refuses is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_waku::{LightPushResponse, ReplyError, decode_length_prefixed, decode_response};
use prost::Message as _;

const REQUEST_ID: &str = "0b5d3f4e-8a3c-4a8e-9d41-3c1f2a7b9e10";

fuzz_target!(|data: &[u8]| {
    let framed = decode_length_prefixed(data);
    let decoded = framed.map(LightPushResponse::decode);
    match decode_response(data, REQUEST_ID) {
        Ok(response) => {
            let id = response.request_id.as_str();
            assert!(id == REQUEST_ID || id == "N/A", "{id}");
            let body = framed.expect("accepted replies are one frame");
            assert_eq!(LightPushResponse::decode(body).as_ref(), Ok(&response));
        }
        Err(ReplyError::Empty) => assert!(data.is_empty()),
        Err(ReplyError::Framing(e)) => assert_eq!(framed, Err(e)),
        Err(ReplyError::Malformed(_)) => assert!(matches!(decoded, Ok(Err(_)))),
        Err(ReplyError::OtherRequest) => {
            let response = decoded.expect("one frame").expect("a LightPushResponse");
            assert!(response.request_id != REQUEST_ID && response.request_id != "N/A");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
});

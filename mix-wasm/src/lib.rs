//! The browser sender of the libp2p mix protocol, for wasm-bindgen (STYLE Part 6).
//!
//! * `WasmMixClient` (feature `network`, the default, wasm32 only): a libp2p node in the
//!   browser (WebTransport, or WebSocket with Noise and Yamux; circuit-relay client, identify,
//!   ping, `/mix/1.0.0`) that sends requests, Waku lightpush above all, through the mixnet
//!   and opens the SURB replies that come back over its gateway relay.
//! * `SphinxClient` (every build): the same sender without a network, for callers that move
//!   the packets themselves; built alone, it is the small "core-only" package.
//! * `WasmMixError`: the one error type, with a stable `code`.
//!
//! The npm package in `js/` wraps this in an idiomatic TypeScript API.

#![cfg_attr(
    not(all(feature = "network", target_arch = "wasm32")),
    allow(dead_code, reason = "the network client is built for wasm32 only")
)]

mod error;
#[cfg(test)]
mod js_constants;
mod lightpush;
#[cfg(all(feature = "network", target_arch = "wasm32"))]
mod network;
mod options;
mod sender;
mod sphinx;
mod transports;
#[cfg(all(feature = "network", target_arch = "wasm32"))]
mod ws;

pub use error::{Code, MixError};
#[cfg(all(feature = "network", target_arch = "wasm32"))]
pub use network::MixClient;
pub use sphinx::SphinxClient;

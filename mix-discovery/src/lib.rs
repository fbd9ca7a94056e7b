#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod behaviour;
#[cfg(feature = "enr")]
pub mod enr;
pub mod proto;
mod record;
mod registry;
mod rounds;
mod schedule;

pub use behaviour::{
    Behaviour, Codec, Config, DiscoveredPage, Error, Event, MAX_REQUEST_LEN, MAX_RESPONSE_LEN,
    PROTOCOL_NAME, Served, mix_namespace,
};
pub use record::{
    DOMAIN, MAX_ADDRS, MixRecord, PAYLOAD_TYPE, RecordError, open_envelope, with_peer,
};
pub use registry::{MAX_NAMESPACE_LEN, MAX_TTL, Page, Refusal, Registry, RegistryConfig};
pub use rounds::{Pool, Rounds, Step};
pub use schedule::{
    Backoff, KEEP_PERIODS, LOOKUP_PAGE, LookupRound, MAX_LOOKUP_PAGES, MAX_ROUND_RECORDS, Schedule,
};

#![doc = include_str!("../README.md")]

pub mod bloom;
pub mod cli;
pub mod ip_limits;
pub mod keys;
pub mod limits;
pub mod metrics;
mod mismatch;
pub mod node;
pub mod pool_file;
pub mod probe;
pub mod processor;
pub mod replay_store;
pub mod sender;
pub mod waku;

pub use node::{ExitRequest, KeySource, LightpushError, NodeInfo, RelayHandle, Settings, start};

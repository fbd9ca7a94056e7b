#![doc = include_str!("../README.md")]

pub mod cli;
pub mod keys;
pub mod metrics;
mod mismatch;
pub mod node;
pub mod pool;
pub mod probe;
pub mod processor;
pub mod replay_store;
pub mod waku;

pub use node::{ExitRequest, KeySource, LightpushError, NodeInfo, RelayHandle, Settings, start};

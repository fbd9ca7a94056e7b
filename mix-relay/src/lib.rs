//! A `/mix/1.0.0` relay: intermediary, exit and Waku lightpush v3 service.

pub mod keys;
pub mod metrics;
pub mod replay_store;
pub mod waku;

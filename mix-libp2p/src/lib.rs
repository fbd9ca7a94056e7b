//! The libp2p `/mix/1.0.0` protocol.

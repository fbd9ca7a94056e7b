//! Waku relay (11/WAKU2-RELAY) as rust-libp2p gossipsub settings.
//!
//! What nwaku does (`waku/waku_relay/protocol.nim`, `WakuRelay.new` and `GossipsubParameters`,
//! nwaku @7d1c6ab, unchanged in logos-delivery @69fbffa):
//! * codec `/vac/waku/relay/2.0.0` only; js-waku sets `pubsub.multicodecs = RelayCodecs`, the same
//!   single id (`packages/relay/src/relay.ts`, `wakuGossipSub`);
//! * `anonymize = true, verifySignature = false, sign = false`: no `from`, `seqno`, `signature`
//!   or `key` (js-waku: `SignaturePolicy.StrictNoSign`);
//! * message id = `SHA-256(data)` of the gossipsub message, i.e. of the *encoded* `WakuMessage`
//!   bytes as published (`defaultMessageIdProvider`, `waku/waku_relay/message_id.nim`; js-waku
//!   `msgIdFn: ({ data }) => sha256(data)`). It is **not** the deterministic message hash of
//!   [`message_hash`](super::message_hash) (that one covers the pubsub topic and skips some
//!   fields); nothing is decoded, so undecodable data still gets an id (and is then rejected by
//!   validation, as nwaku's `generateOrderedValidator` does);
//! * `maxMessageSize = 150 KiB`, which nim-libp2p applies to the **whole RPC frame**, in both
//!   directions (`readLp(p.maxMessageSize)` and the drop of larger sends in
//!   `libp2p/protocols/pubsub/pubsubpeer.nim`);
//! * `d = 6, dLow = 4, dHigh = 8, dOut = 3, dLazy = 6, gossipFactor = 0.25, heartbeat 1 s,
//!   historyLength 6, historyGossip 3, fanoutTTL 1 min, seenTTL 2 min, pruneBackoff 1 min,
//!   unsubscribeBackoff 5 s, floodPublish = true`.
//!
//! Not covered here: nwaku's peer-scoring parameters (`TopicParameters` and the thresholds), which
//! rust-libp2p takes through `Behaviour::with_peer_score`, not through `Config`; and `dScore`,
//! which rust-libp2p does not expose.

use std::time::Duration;

use libp2p::gossipsub::{
    self, ConfigBuilder, ConfigBuilderError, MessageAuthenticity, MessageId, ValidationMode,
    Version,
};
use sha2::{Digest, Sha256};

use super::{DEFAULT_MAX_MESSAGE_SIZE, PublishOutcome, RELAY_PROTOCOL};

/// Gossipsub frame limit: nwaku's relay `maxMessageSize` (150 KiB), which nim-libp2p enforces on
/// whole RPC frames. A larger limit would let us send frames nwaku peers drop; rust-libp2p also
/// applies it to whole frames, so a `WakuMessage` of exactly 150 KiB does not fit in either
/// implementation.
pub const GOSSIPSUB_MAX_TRANSMIT_SIZE: usize = DEFAULT_MAX_MESSAGE_SIZE;

/// Why [`gossipsub_behaviour`] could not build the behaviour.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayConfigError {
    /// The gossipsub configuration was refused.
    #[error("invalid gossipsub configuration")]
    Config(#[source] ConfigBuilderError),
    /// Gossipsub refused the authenticity/validation combination.
    #[error("gossipsub behaviour: {0}")]
    Behaviour(&'static str),
}

/// Gossipsub configuration for Waku relay: protocol id [`RELAY_PROTOCOL`] only (no `/meshsub`
/// ids, no floodsub), [`ValidationMode::Anonymous`], [`gossipsub_message_id`], frame limit
/// [`GOSSIPSUB_MAX_TRANSMIT_SIZE`], and nwaku's mesh, gossip and timing parameters (module docs).
///
/// Pair it with [`MessageAuthenticity::Anonymous`] (as [`gossipsub_behaviour`] does). Messages
/// are validated by the application before they are forwarded (`validate_messages`): the node
/// must report each one, accepting what [`decode_waku_message`](super::decode_waku_message)
/// decodes and rejecting the rest, like nwaku's relay validator.
///
/// # Errors
/// Returns the builder's error if rust-libp2p refuses the parameters (it does not for these
/// values; the `Result` keeps a future libp2p constraint from becoming a panic).
pub fn gossipsub_config() -> Result<gossipsub::Config, ConfigBuilderError> {
    ConfigBuilder::default()
        .protocol_id(RELAY_PROTOCOL, Version::V1_1)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(gossipsub_message_id)
        .max_transmit_size(GOSSIPSUB_MAX_TRANSMIT_SIZE)
        .mesh_n(6)
        .mesh_n_low(4)
        .mesh_n_high(8)
        .mesh_outbound_min(3)
        .gossip_lazy(6)
        .gossip_factor(0.25)
        .heartbeat_interval(Duration::from_secs(1))
        .history_length(6)
        .history_gossip(3)
        .fanout_ttl(Duration::from_secs(60))
        .duplicate_cache_time(Duration::from_secs(120))
        .prune_backoff(Duration::from_secs(60))
        .unsubscribe_backoff(Duration::from_secs(5))
        .flood_publish(true)
        .build()
}

/// The Waku relay message id: `SHA-256(message.data)` (nwaku `defaultMessageIdProvider`, js-waku
/// `msgIdFn`). Source, sequence number and topic are ignored.
#[must_use]
pub fn gossipsub_message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::new(Sha256::digest(&message.data).as_slice())
}

/// A gossipsub behaviour for Waku relay: [`gossipsub_config`] with
/// [`MessageAuthenticity::Anonymous`] (no author, sequence number or signature, as nwaku
/// publishes).
///
/// # Errors
/// [`RelayConfigError::Config`] if [`gossipsub_config`] fails, [`RelayConfigError::Behaviour`] if
/// rust-libp2p refuses the combination.
pub fn gossipsub_behaviour() -> Result<gossipsub::Behaviour, RelayConfigError> {
    let config = gossipsub_config().map_err(RelayConfigError::Config)?;
    gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
        .map_err(RelayConfigError::Behaviour)
}

/// The lightpush service's [`PublishOutcome`] for the result of rust-libp2p's
/// `gossipsub::Behaviour::publish`, given the number of peers the caller counts as having
/// received it (gossipsub's `publish` does not say).
#[must_use]
pub fn publish_outcome(
    result: &Result<MessageId, gossipsub::PublishError>,
    relay_peer_count: u32,
) -> PublishOutcome {
    use gossipsub::PublishError;
    match result {
        Ok(_) => PublishOutcome::Published { relay_peer_count },
        Err(PublishError::NoPeersSubscribedToTopic) => PublishOutcome::NoPeers,
        Err(PublishError::Duplicate) => PublishOutcome::Duplicate { relay_peer_count },
        Err(_) => PublishOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use libp2p::core::upgrade::UpgradeInfo;
    use libp2p::swarm::{ConnectionHandler, ConnectionId, NetworkBehaviour};
    use libp2p::{Multiaddr, PeerId};
    use prost::Message as _;

    use super::*;
    use crate::waku::WakuMessage;

    fn relay_message(data: Vec<u8>) -> gossipsub::Message {
        gossipsub::Message {
            source: None,
            data,
            sequence_number: None,
            topic: gossipsub::TopicHash::from_raw("/waku/2/rs/2/0"),
        }
    }

    #[test]
    fn message_id_is_sha256_of_data() {
        // SHA-256("abc"), FIPS 180-2 example.
        let id = gossipsub_message_id(&relay_message(b"abc".to_vec()));
        assert_eq!(
            hex::encode(&id.0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn message_id_of_a_waku_message() {
        let data = WakuMessage {
            payload: b"hello".to_vec(),
            content_topic: "/toy-chat/2/huilong/proto".into(),
            timestamp: Some(1_700_000_000_000_000_000),
            ..WakuMessage::default()
        }
        .encode_to_vec();
        let expected = Sha256::digest(&data);
        let message = relay_message(data.clone());
        let id = gossipsub_message_id(&message);
        assert_eq!(id.0, expected.as_slice());
        assert_eq!(id.0.len(), 32);
        // Deterministic, and independent of source, sequence number and topic.
        let other = gossipsub::Message {
            source: Some(PeerId::random()),
            sequence_number: Some(7),
            topic: gossipsub::TopicHash::from_raw("/waku/2/rs/1/1"),
            ..message
        };
        assert_eq!(gossipsub_message_id(&other), id);
        // But not of the data.
        let mut changed = data;
        changed.push(0);
        assert_ne!(gossipsub_message_id(&relay_message(changed)), id);
        // Undecodable data still gets an id.
        assert_eq!(
            hex::encode(gossipsub_message_id(&relay_message(vec![0xFF])).0),
            hex::encode(Sha256::digest([0xFF]))
        );
    }

    #[test]
    fn config_uses_nwaku_parameters() {
        let config = gossipsub_config().unwrap();
        assert_eq!(config.mesh_n(), 6);
        assert!(
            config.validate_messages(),
            "messages are checked before they are forwarded"
        );
        assert_eq!(config.mesh_n_low(), 4);
        assert_eq!(config.mesh_n_high(), 8);
        assert_eq!(config.mesh_outbound_min(), 3);
        assert_eq!(config.gossip_lazy(), 6);
        assert!((config.gossip_factor() - 0.25).abs() < f64::EPSILON);
        assert_eq!(config.heartbeat_interval(), Duration::from_secs(1));
        assert_eq!(config.history_length(), 6);
        assert_eq!(config.history_gossip(), 3);
        assert_eq!(config.fanout_ttl(), Duration::from_secs(60));
        assert_eq!(config.duplicate_cache_time(), Duration::from_secs(120));
        assert_eq!(config.prune_backoff(), Duration::from_secs(60));
        assert_eq!(config.unsubscribe_backoff(), Duration::from_secs(5));
        assert!(config.flood_publish());
        assert!(!config.support_floodsub());
        assert_eq!(config.max_transmit_size(), 150 * 1024);
        assert!(matches!(
            config.validation_mode(),
            ValidationMode::Anonymous
        ));
        let data = b"waku".to_vec();
        assert_eq!(
            config.message_id(&relay_message(data.clone())),
            MessageId::new(Sha256::digest(&data).as_slice())
        );
    }

    #[test]
    fn behaviour_speaks_only_the_relay_protocol() {
        let mut behaviour = gossipsub_behaviour().unwrap();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let handler = behaviour
            .handle_established_inbound_connection(
                ConnectionId::new_unchecked(0),
                PeerId::random(),
                &addr,
                &addr,
            )
            .unwrap();
        let protocols: Vec<String> = handler
            .listen_protocol()
            .upgrade()
            .protocol_info()
            .into_iter()
            .map(|protocol| AsRef::<str>::as_ref(&protocol).to_owned())
            .collect();
        assert_eq!(protocols, vec![RELAY_PROTOCOL.to_owned()]);
    }

    #[test]
    fn anonymous_publish_is_accepted() {
        // Behaviour::new refuses Anonymous authenticity unless validation is Anonymous too, so
        // building proves the pair; publishing to a topic without peers reaches the peer check
        // (not a signing or configuration error).
        let mut behaviour = gossipsub_behaviour().unwrap();
        let topic = gossipsub::IdentTopic::new("/waku/2/rs/2/0");
        assert!(matches!(
            behaviour.publish(topic, b"x".to_vec()),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
        ));
        // A Strict config would be refused with Anonymous authenticity.
        let strict = ConfigBuilder::default()
            .validation_mode(ValidationMode::Strict)
            .build()
            .unwrap();
        assert!(
            gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(
                MessageAuthenticity::Anonymous,
                strict
            )
            .is_err()
        );
    }

    #[test]
    fn publish_outcome_from_gossipsub_result() {
        use libp2p::gossipsub::PublishError;

        use crate::waku::PublishOutcome;
        let id = MessageId::new(b"id");
        assert_eq!(
            publish_outcome(&Ok(id), 5),
            PublishOutcome::Published {
                relay_peer_count: 5
            }
        );
        assert_eq!(
            publish_outcome(&Err(PublishError::NoPeersSubscribedToTopic), 5),
            PublishOutcome::NoPeers
        );
        assert_eq!(
            publish_outcome(&Err(PublishError::Duplicate), 5),
            PublishOutcome::Duplicate {
                relay_peer_count: 5
            }
        );
        assert_eq!(
            publish_outcome(&Err(PublishError::MessageTooLarge), 5),
            PublishOutcome::Failed
        );
        assert_eq!(
            publish_outcome(&Err(PublishError::AllQueuesFull(3)), 5),
            PublishOutcome::Failed
        );
    }
}

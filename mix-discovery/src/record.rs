//! Signed mix-node records: a `WakuPeerRecord` (who, where, which mix key) in a libp2p signed
//! envelope (RFC 0002) with nwaku's domain and payload type (WAKU.md §5.3).

use libp2p::core::SignedEnvelope;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mix_core::NodePublicKey;
use mix_libp2p::MixNode;
use prost::Message as _;

use crate::proto::WakuPeerRecord;

/// The envelope's domain-separation string.
pub const DOMAIN: &str = "libp2p-custom-peer-record";
/// The envelope's payload type.
pub const PAYLOAD_TYPE: [u8; 3] = [0x30, 0x00, 0x00];
/// The most addresses a record may carry; more make it invalid (a record is not a dump).
pub const MAX_ADDRS: usize = 16;

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The envelope does not decode.
    #[error("the envelope does not decode")]
    Envelope,
    /// The payload type or the signature is wrong.
    #[error("the envelope's payload type or signature is wrong")]
    Signature,
    /// The payload does not decode as a `WakuPeerRecord`.
    #[error("the payload is not a WakuPeerRecord")]
    Payload,
    /// The record's peer id is not the signer's.
    #[error("the record's peer id is not the signer's")]
    WrongSigner,
    /// The record has no mix key, or one that is not `0x` and 64 hex digits.
    #[error("the record has no valid mix key")]
    MixKey,
    /// An address does not decode, or there are more than [`MAX_ADDRS`].
    #[error("the record's addresses are invalid")]
    Addresses,
}

/// What a mix node says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixRecord {
    /// Its peer id (the envelope's signer).
    pub peer_id: PeerId,
    /// Unix seconds when it was made: the newer record wins.
    pub seq: u64,
    /// Its addresses, as it wrote them (without `/p2p/<id>`, as nwaku).
    pub addrs: Vec<Multiaddr>,
    /// Its X25519 mix public key.
    pub mix_key: NodePublicKey,
}

impl MixRecord {
    /// The signed envelope's bytes, as nwaku writes them.
    ///
    /// # Errors
    /// If the key cannot sign.
    pub fn sign(&self, key: &Keypair) -> Result<Vec<u8>, libp2p::identity::SigningError> {
        let payload = WakuPeerRecord {
            peer_id: self.peer_id.to_bytes(),
            seq_no: self.seq,
            multiaddrs: self.addrs.iter().map(Multiaddr::to_vec).collect(),
            mix_key: Some(format!("0x{}", hex::encode(self.mix_key.as_bytes()))),
        };
        let envelope = SignedEnvelope::new(
            key,
            DOMAIN.to_owned(),
            PAYLOAD_TYPE.to_vec(),
            payload.encode_to_vec(),
        )?;
        Ok(envelope.into_protobuf_encoding())
    }

    /// Opens a signed envelope: checks the signature, the payload type, that the signer is the
    /// record's peer, and decodes the payload.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn open(bytes: &[u8]) -> Result<Self, RecordError> {
        let (peer_id, record) = open_envelope(bytes)?;
        let mix_key = parse_mix_key(record.mix_key.as_deref().ok_or(RecordError::MixKey)?)?;
        if record.multiaddrs.len() > MAX_ADDRS {
            return Err(RecordError::Addresses);
        }
        let addrs = record
            .multiaddrs
            .into_iter()
            .map(|a| Multiaddr::try_from(a).map_err(|_| RecordError::Addresses))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            peer_id,
            seq: record.seq_no,
            addrs,
            mix_key,
        })
    }

    /// The pool entry: the addresses with `/p2p/<id>` appended where missing.
    ///
    /// # Errors
    /// If no address can be written into a packet (MIX.md §11).
    pub fn mix_node(&self) -> Result<MixNode, mix_libp2p::AddressError> {
        let addrs = self
            .addrs
            .iter()
            .map(|a| with_peer(a, self.peer_id))
            .collect();
        MixNode::new(self.peer_id, addrs, self.mix_key)
    }
}

/// Opens a Waku peer-record envelope: checks the payload type and the signature, decodes the
/// payload and checks that its peer id is the signer's. The mix key is not required (a
/// rendezvous point stores records of any Waku node).
///
/// # Errors
/// The first check that fails.
pub fn open_envelope(bytes: &[u8]) -> Result<(PeerId, WakuPeerRecord), RecordError> {
    let envelope =
        SignedEnvelope::from_protobuf_encoding(bytes).map_err(|_| RecordError::Envelope)?;
    let (payload, signer) = envelope
        .payload_and_signing_key(DOMAIN.to_owned(), &PAYLOAD_TYPE)
        .map_err(|_| RecordError::Signature)?;
    let record = WakuPeerRecord::decode(payload).map_err(|_| RecordError::Payload)?;
    let peer_id = PeerId::from_bytes(&record.peer_id).map_err(|_| RecordError::Payload)?;
    if peer_id != signer.to_peer_id() {
        return Err(RecordError::WrongSigner);
    }
    Ok((peer_id, record))
}

/// `addr` ending in `/p2p/<peer>`.
pub fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    if matches!(addr.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(p)) if p == peer) {
        addr.clone()
    } else {
        addr.clone().with(libp2p::multiaddr::Protocol::P2p(peer))
    }
}

/// nwaku's mix-key string: `0x` (or `0X`) and 64 hex digits. Bare hex is accepted too.
fn parse_mix_key(text: &str) -> Result<NodePublicKey, RecordError> {
    let hex_part = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut key).map_err(|_| RecordError::MixKey)?;
    Ok(NodePublicKey::from_bytes(key))
}

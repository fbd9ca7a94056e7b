//! Waku ENRs (EIP-778 records with the WAKU2-ENR fields, WAKU.md §3 and §5.3): the `waku2`
//! capability byte (bit 5 = mix), `multiaddrs` (2-byte big-endian length before each binary
//! multiaddr), `rs` (the relay shards: cluster, count, shards, all big-endian) and the
//! `mix-key` field (32 raw bytes) that nwaku wrote from September to October 2025.
//!
//! Signing, RLP and the `v4` identity scheme are the `enr` crate's; this module adds the Waku
//! fields and the mapping to libp2p peer ids and mix pool entries.

use std::net::Ipv4Addr;

use alloy_rlp::Bytes;
use enr::k256::ecdsa::SigningKey;
use libp2p::identity::{Keypair, PublicKey, secp256k1};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mix_core::NodePublicKey;
use mix_libp2p::MixNode;
use zeroize::Zeroizing;

use crate::record::with_peer;

/// `waku2` bit 0: relay.
pub const WAKU2_RELAY: u8 = 1 << 0;
/// `waku2` bit 1: store.
pub const WAKU2_STORE: u8 = 1 << 1;
/// `waku2` bit 2: filter.
pub const WAKU2_FILTER: u8 = 1 << 2;
/// `waku2` bit 3: lightpush.
pub const WAKU2_LIGHTPUSH: u8 = 1 << 3;
/// `waku2` bit 4: sync.
pub const WAKU2_SYNC: u8 = 1 << 4;
/// `waku2` bit 5: mix (WAKU-MIX; nwaku sets it when `--mix` is on).
pub const WAKU2_MIX: u8 = 1 << 5;

/// The ENR keys this module reads and writes.
pub const KEY_WAKU2: &str = "waku2";
/// See [`KEY_WAKU2`].
pub const KEY_MULTIADDRS: &str = "multiaddrs";
/// See [`KEY_WAKU2`].
pub const KEY_MIX_KEY: &str = "mix-key";
/// See [`KEY_WAKU2`].
pub const KEY_RELAY_SHARDS: &str = "rs";

/// EIP-778's size limit for a whole record.
pub const MAX_ENR_LEN: usize = 300;

/// Why an ENR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrError {
    /// The text is not an `enr:` record, its signature does not verify, or it exceeds 300
    /// bytes.
    #[error("not a valid ENR: {0}")]
    Invalid(String),
    /// A Waku field does not decode.
    #[error("the {0} field does not decode")]
    Field(&'static str),
    /// The record's key is not secp256k1 (`v4`).
    #[error("the ENR's identity is not secp256k1")]
    Identity,
    /// The record does not say it supports mix (`waku2` bit 5).
    #[error("the ENR does not advertise mix (waku2 bit 5)")]
    NotMix,
    /// The record carries no `mix-key` (nwaku removed it in October 2025: use rendezvous).
    #[error("the ENR carries no mix-key (newer nwaku nodes advertise it through rendezvous)")]
    NoMixKey,
    /// The record has no IPv4 TCP address a packet can carry.
    #[error("the ENR has no usable address: {0}")]
    Address(String),
    /// The identity key could not sign.
    #[error("cannot sign the ENR")]
    Sign,
}

/// The Waku content of an ENR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WakuEnr {
    /// The libp2p peer id of the record's secp256k1 key.
    pub peer_id: PeerId,
    /// The sequence number.
    pub seq: u64,
    /// `ip`.
    pub ip4: Option<Ipv4Addr>,
    /// `tcp`.
    pub tcp: Option<u16>,
    /// `udp`.
    pub udp: Option<u16>,
    /// `multiaddrs` (without `/p2p/<id>`, as Waku writes them).
    pub multiaddrs: Vec<Multiaddr>,
    /// `waku2`, the capability bits.
    pub waku2: Option<u8>,
    /// `rs`: the cluster and its shards.
    pub shards: Option<(u16, Vec<u16>)>,
    /// `mix-key`.
    pub mix_key: Option<NodePublicKey>,
}

impl WakuEnr {
    /// Decodes and verifies an `enr:…` string.
    ///
    /// # Errors
    /// If it does not decode or verify, is not `v4`, or a Waku field is malformed.
    pub fn decode(text: &str) -> Result<Self, EnrError> {
        let record: enr::Enr<SigningKey> = text.trim().parse().map_err(EnrError::Invalid)?;
        if record.size() > MAX_ENR_LEN {
            return Err(EnrError::Invalid("longer than 300 bytes".into()));
        }
        let compressed = enr::EnrPublicKey::encode(&record.public_key());
        let key =
            secp256k1::PublicKey::try_from_bytes(&compressed).map_err(|_| EnrError::Identity)?;
        let peer_id = PublicKey::from(key).to_peer_id();
        let bytes = |name: &'static str| -> Result<Option<Bytes>, EnrError> {
            record
                .get_decodable::<Bytes>(name)
                .transpose()
                .map_err(|_| EnrError::Field(name))
        };
        let waku2 = match bytes(KEY_WAKU2)? {
            None => None,
            Some(b) if b.len() == 1 => Some(b[0]),
            // An RLP integer 0 is the empty string.
            Some(b) if b.is_empty() => Some(0),
            Some(_) => return Err(EnrError::Field(KEY_WAKU2)),
        };
        let multiaddrs = match bytes(KEY_MULTIADDRS)? {
            None => Vec::new(),
            Some(b) => decode_multiaddrs(&b)?,
        };
        let mix_key = match bytes(KEY_MIX_KEY)? {
            None => None,
            Some(b) => Some(NodePublicKey::from_bytes(
                <[u8; 32]>::try_from(b.as_ref()).map_err(|_| EnrError::Field(KEY_MIX_KEY))?,
            )),
        };
        let shards = match bytes(KEY_RELAY_SHARDS)? {
            None => None,
            Some(b) => Some(decode_shards(&b)?),
        };
        Ok(Self {
            peer_id,
            seq: record.seq(),
            ip4: record.ip4(),
            tcp: record.tcp4(),
            udp: record.udp4(),
            multiaddrs,
            waku2,
            shards,
            mix_key,
        })
    }

    /// Signs the record with `identity` (a secp256k1 libp2p key) and gives its `enr:` text.
    ///
    /// # Errors
    /// If the key is not secp256k1, or the record is over 300 bytes.
    pub fn encode(&self, identity: &Keypair) -> Result<String, EnrError> {
        let pair = identity
            .clone()
            .try_into_secp256k1()
            .map_err(|_| EnrError::Identity)?;
        let secret = Zeroizing::new(pair.secret().to_bytes());
        let key = SigningKey::from_slice(secret.as_slice()).map_err(|_| EnrError::Identity)?;
        let mut builder = enr::Enr::builder();
        builder.seq(self.seq);
        if let Some(ip) = self.ip4 {
            builder.ip4(ip);
        }
        if let Some(port) = self.tcp {
            builder.tcp4(port);
        }
        if let Some(port) = self.udp {
            builder.udp4(port);
        }
        if !self.multiaddrs.is_empty() {
            builder.add_value(
                KEY_MULTIADDRS,
                &Bytes::from(encode_multiaddrs(&self.multiaddrs)?),
            );
        }
        if let Some((cluster, shards)) = &self.shards {
            builder.add_value(
                KEY_RELAY_SHARDS,
                &Bytes::from(encode_shards(*cluster, shards)?),
            );
        }
        if let Some(bits) = self.waku2 {
            builder.add_value(KEY_WAKU2, &Bytes::from(vec![bits]));
        }
        if let Some(mix) = &self.mix_key {
            builder.add_value(KEY_MIX_KEY, &Bytes::from(mix.as_bytes().to_vec()));
        }
        let record = builder.build(&key).map_err(|e| match e {
            enr::Error::ExceedsMaxSize => EnrError::Invalid("longer than 300 bytes".into()),
            _ => EnrError::Sign,
        })?;
        Ok(record.to_base64())
    }

    /// Where the node listens: the `ip`/`tcp` address first, then `multiaddrs`, each with
    /// `/p2p/<peer id>`.
    pub fn addrs(&self) -> Vec<Multiaddr> {
        let mut addrs = Vec::new();
        if let (Some(ip), Some(port)) = (self.ip4, self.tcp) {
            addrs.push(
                Multiaddr::empty()
                    .with(Protocol::Ip4(ip))
                    .with(Protocol::Tcp(port))
                    .with(Protocol::P2p(self.peer_id)),
            );
        }
        addrs.extend(self.multiaddrs.iter().map(|a| with_peer(a, self.peer_id)));
        addrs
    }

    /// The mix pool entry this record describes: it must advertise mix (`waku2` bit 5), carry
    /// a `mix-key`, and have an address a packet can carry.
    ///
    /// # Errors
    /// Which of these is missing.
    pub fn mix_node(&self) -> Result<MixNode, EnrError> {
        if self.waku2.is_none_or(|b| b & WAKU2_MIX == 0) {
            return Err(EnrError::NotMix);
        }
        let key = self.mix_key.ok_or(EnrError::NoMixKey)?;
        MixNode::new(self.peer_id, self.addrs(), key).map_err(|e| EnrError::Address(e.to_string()))
    }
}

/// `multiaddrs`: each multiaddr's 2-byte big-endian length, then its bytes.
///
/// # Errors
/// If one is longer than 65535 bytes.
pub fn encode_multiaddrs(addrs: &[Multiaddr]) -> Result<Vec<u8>, EnrError> {
    let mut out = Vec::new();
    for addr in addrs {
        let bytes = addr.to_vec();
        let len = u16::try_from(bytes.len()).map_err(|_| EnrError::Field(KEY_MULTIADDRS))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// The inverse of [`encode_multiaddrs`].
///
/// # Errors
/// A length that runs past the end, or bytes that are not a multiaddr.
pub fn decode_multiaddrs(mut bytes: &[u8]) -> Result<Vec<Multiaddr>, EnrError> {
    let mut addrs = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or(EnrError::Field(KEY_MULTIADDRS))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(EnrError::Field(KEY_MULTIADDRS));
        }
        let (addr, rest) = rest.split_at(len);
        addrs
            .push(Multiaddr::try_from(addr.to_vec()).map_err(|_| EnrError::Field(KEY_MULTIADDRS))?);
        bytes = rest;
    }
    Ok(addrs)
}

/// `rs`: cluster (2 bytes), shard count (1 byte), shards (2 bytes each), big-endian.
///
/// # Errors
/// More than 255 shards.
pub fn encode_shards(cluster: u16, shards: &[u16]) -> Result<Vec<u8>, EnrError> {
    let count = u8::try_from(shards.len()).map_err(|_| EnrError::Field(KEY_RELAY_SHARDS))?;
    let mut out = cluster.to_be_bytes().to_vec();
    out.push(count);
    for shard in shards {
        out.extend_from_slice(&shard.to_be_bytes());
    }
    Ok(out)
}

/// The inverse of [`encode_shards`].
///
/// # Errors
/// A length that does not match the count.
pub fn decode_shards(bytes: &[u8]) -> Result<(u16, Vec<u16>), EnrError> {
    let bad = EnrError::Field(KEY_RELAY_SHARDS);
    let (cluster, rest) = bytes.split_first_chunk::<2>().ok_or(bad.clone())?;
    let (count, rest) = rest.split_first().ok_or(bad.clone())?;
    if rest.len() != 2 * usize::from(*count) {
        return Err(bad);
    }
    let shards = rest
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Ok((u16::from_be_bytes(*cluster), shards))
}

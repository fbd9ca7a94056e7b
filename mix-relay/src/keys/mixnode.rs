//! A static mix pool entry in nwaku's `--mixnode` form (`<multiaddr>:<mix public key>`, or an
//! ENR that advertises mix).

use libp2p::identity::{KeyType, PublicKey};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mix_core::NodePublicKey;

use super::{KeyError, parse_mix_public};

/// Binary form of a secp256k1 peer id starts with this: identity multihash of length 37, then
/// the protobuf `PublicKey { Type: Secp256k1, Data: <33 bytes> }` header.
const SECP256K1_PEER_ID_PREFIX: [u8; 6] = [0x00, 0x25, 0x08, 0x02, 0x12, 0x21];

/// Length of a binary secp256k1 peer id.
const SECP256K1_PEER_ID_LEN: usize = 39;

/// One static mix pool entry, nwaku's `--mixnode=<multiaddr>:<mix public key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixNodeEntry {
    /// The node's peer id: the last `/p2p/` component of `addr`, a secp256k1 id.
    pub peer_id: PeerId,
    /// The full multiaddr as given, including its `/p2p/<peer id>` part.
    pub addr: Multiaddr,
    /// The node's X25519 mix public key.
    pub mix_public: NodePublicKey,
}

/// Parses nwaku's `--mixnode` value `<multiaddr>:<64-hex X25519 public key>`.
///
/// The string is split at its last `:` (IPv6 multiaddrs contain colons, hex does not). The
/// multiaddr must contain `/p2p/<peer id>`; the last such component names the node (for a
/// circuit address `…/p2p/<relay>/p2p-circuit/p2p/<node>`, the node), and it must be a
/// secp256k1 peer id, the only kind a mix address can carry.
///
/// # Errors
/// [`KeyError::InvalidMixNode`] for a missing key, a bad multiaddr, a missing or
/// non-secp256k1 peer id; [`KeyError::InvalidHexKey`] for a bad key.
pub fn parse_mixnode(s: &str) -> Result<MixNodeEntry, KeyError> {
    let s = s.trim();
    let invalid = |reason: String| KeyError::InvalidMixNode {
        entry: s.to_owned(),
        reason,
    };
    if s.starts_with("enr:") {
        return parse_enr_mixnode(s).map_err(|e| invalid(e.to_string()));
    }
    let (addr, key) = s
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected <multiaddr>:<64-hex mix public key>".into()))?;
    let addr: Multiaddr = addr
        .parse()
        .map_err(|e| invalid(format!("bad multiaddr: {e}")))?;
    let peer_id = addr
        .iter()
        .filter_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .last()
        .ok_or_else(|| invalid("the multiaddr has no /p2p/<peer id>".into()))?;
    if !is_secp256k1_peer_id(&peer_id) {
        return Err(invalid(format!(
            "peer id {peer_id} is not a secp256k1 identity (mix addresses carry only those)"
        )));
    }
    let mix_public = parse_mix_public(key)?;
    Ok(MixNodeEntry {
        peer_id,
        addr,
        mix_public,
    })
}

/// A pool entry from a Waku ENR that advertises mix (`waku2` bit 5) and carries a `mix-key`
/// (nwaku's records of September–October 2025). The entry's address is the record's TCP one.
///
/// # Errors
/// Why the record is not a usable mix node.
pub fn parse_enr_mixnode(s: &str) -> Result<MixNodeEntry, mix_discovery::enr::EnrError> {
    let record = mix_discovery::enr::WakuEnr::decode(s)?;
    let node = record.mix_node()?;
    let addr = node
        .addresses
        .first()
        .cloned()
        .ok_or_else(|| mix_discovery::enr::EnrError::Address("no address".into()))?;
    Ok(MixNodeEntry {
        peer_id: node.peer_id,
        addr,
        mix_public: node.public_key,
    })
}

/// Formats an entry as nwaku's `--mixnode` value: `<multiaddr>:<64 lowercase hex>`.
///
/// The multiaddr is written as stored; if it lacks `/p2p/<peer id>`, that is appended so the
/// result parses back with [`parse_mixnode`].
pub fn format_mixnode(entry: &MixNodeEntry) -> String {
    let has_p2p = entry
        .addr
        .iter()
        .any(|p| matches!(p, Protocol::P2p(id) if id == entry.peer_id));
    let addr = if has_p2p {
        entry.addr.clone()
    } else {
        entry.addr.clone().with(Protocol::P2p(entry.peer_id))
    };
    format!("{addr}:{}", entry.mix_public)
}

/// Whether `peer_id` is the identity multihash of a protobuf secp256k1 public key.
pub(super) fn is_secp256k1_peer_id(peer_id: &PeerId) -> bool {
    let bytes = peer_id.to_bytes();
    bytes.len() == SECP256K1_PEER_ID_LEN
        && bytes.starts_with(&SECP256K1_PEER_ID_PREFIX)
        && bytes
            .get(2..)
            .and_then(|key| PublicKey::try_decode_protobuf(key).ok())
            .is_some_and(|key| key.key_type() == KeyType::Secp256k1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeKeys;

    /// MIX.md §9: the public key of nwaku's simulation config.
    const NWAKU_PUB: &str = "9231e86da6432502900a84f867004ce78632ab52cd8e30b1ec322cd795710c2a";
    /// MIX.md §4.2: the node of nwaku's simulation on port 60002.
    const NWAKU_ADDR: &str =
        "/ip4/127.0.0.1/tcp/60002/p2p/16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF";

    #[test]
    fn mixnode_entries_round_trip() {
        let s = format!("{NWAKU_ADDR}:{NWAKU_PUB}");
        let entry = parse_mixnode(&s).unwrap();
        assert_eq!(
            entry.peer_id.to_string(),
            "16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF"
        );
        assert_eq!(entry.addr.to_string(), NWAKU_ADDR);
        assert_eq!(entry.mix_public.to_string(), NWAKU_PUB);
        assert_eq!(
            &entry.peer_id.to_bytes()[..6],
            &SECP256K1_PEER_ID_PREFIX[..]
        );
        assert_eq!(format_mixnode(&entry), s);
        assert_eq!(parse_mixnode(&format_mixnode(&entry)).unwrap(), entry);

        // IPv6 (colons in the multiaddr) and a 0x key.
        let v6 = format!(
            "/ip6/::1/udp/9000/quic-v1/p2p/16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF:0x{NWAKU_PUB}"
        );
        let e6 = parse_mixnode(&v6).unwrap();
        assert_eq!(e6.peer_id, entry.peer_id);

        // Circuit address: the node is the last /p2p.
        let relay = NodeKeys::generate().peer_id();
        let circuit = format!(
            "/ip4/1.2.3.4/tcp/1/p2p/{relay}/p2p-circuit/p2p/{}:{NWAKU_PUB}",
            entry.peer_id
        );
        assert_eq!(parse_mixnode(&circuit).unwrap().peer_id, entry.peer_id);

        // format adds a missing /p2p part.
        let bare = MixNodeEntry {
            addr: "/ip4/127.0.0.1/tcp/60002".parse().unwrap(),
            ..entry.clone()
        };
        assert_eq!(format_mixnode(&bare), s);
    }

    #[test]
    fn bad_mixnode_entries_are_refused() {
        let no_key = NWAKU_ADDR;
        // "…UF" then no colon at all: there is none in an ip4 multiaddr.
        assert!(matches!(
            parse_mixnode(no_key),
            Err(KeyError::InvalidMixNode { .. })
        ));
        let no_p2p = format!("/ip4/127.0.0.1/tcp/60002:{NWAKU_PUB}");
        let err = parse_mixnode(&no_p2p).unwrap_err();
        assert!(err.to_string().contains("/p2p/"), "{err}");
        let bad_ma = format!(
            "/ip4/300.0.0.1/tcp/1/p2p/16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF:{NWAKU_PUB}"
        );
        assert!(matches!(
            parse_mixnode(&bad_ma),
            Err(KeyError::InvalidMixNode { .. })
        ));
        // An Ed25519 peer id (12D3KooW…).
        let mut ed_bytes = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
        ed_bytes.extend([9u8; 32]);
        let ed = PeerId::from_bytes(&ed_bytes).unwrap();
        let err = parse_mixnode(&format!("/ip4/1.2.3.4/tcp/1/p2p/{ed}:{NWAKU_PUB}")).unwrap_err();
        assert!(err.to_string().contains("secp256k1"), "{err}");
        let short = format!("{NWAKU_ADDR}:{}", &NWAKU_PUB[..10]);
        assert!(matches!(
            parse_mixnode(&short),
            Err(KeyError::InvalidHexKey { .. })
        ));
        assert!(parse_mixnode("").is_err());
        assert!(parse_mixnode(":").is_err());
    }
}

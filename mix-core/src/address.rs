//! The 94-byte address field (MIX.md §4.2; Nim `multiaddr.nim`).
//!
//! ```text
//! [0..4)   IPv4 address, network order
//! [4]      transport: 0 = /tcp/<port>, 1 = /udp/<port>/quic-v1
//! [5..7)   port, u16 big-endian
//! [7..46)  peer id #1: the node itself, or the circuit relay
//! [46..85) peer id #2: zeros, or the node behind the circuit relay
//! [85..94) zeros
//! ```
//!
//! Peer ids are 39-byte identity multihashes of secp256k1 public keys; nothing else fits
//! (Ed25519 ids are 38 bytes and both Nim's encoder and decoder refuse them). An all-zero
//! field means "no address": the exit is the destination, or the block ends a SURB path.
//!
//! Decoding is stricter than Nim's where Nim accepts bytes it cannot use: a transport byte
//! other than 0 or 1 (Nim turns it into a bare `/udp` it cannot dial), a peer id that is not
//! a secp256k1 identity multihash, and non-zero padding are refused, so that every decoded
//! address re-encodes to the same bytes.

use core::fmt;
use core::net::Ipv4Addr;

use crate::error::DecodeError;
use crate::params::ADDR_LEN;
use crate::util::{Hex, Reader};

/// Length of a secp256k1 libp2p peer id in binary multihash form.
pub const PEER_ID_LEN: usize = 39;

/// `identity multihash, length 37` ‖ `PublicKey { Type: Secp256k1, Data: <33 bytes> }`.
const SECP256K1_PEER_ID_PREFIX: [u8; 6] = [0x00, 0x25, 0x08, 0x02, 0x12, 0x21];

/// A libp2p peer id of a secp256k1 identity, in its 39-byte binary form
/// (`00 25 08 02 12 21` followed by the 33-byte compressed public key).
///
/// Only the shape is checked here; whether the 33 bytes are a point on secp256k1 is for the
/// libp2p layer to decide when it dials.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerIdBytes([u8; PEER_ID_LEN]);

impl PeerIdBytes {
    /// Checks the shape of a binary peer id.
    ///
    /// # Errors
    /// [`DecodeError::PeerId`] unless `bytes` is 39 bytes long, starts with the secp256k1
    /// identity-multihash prefix and then a compressed-point tag (`02` or `03`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let array: [u8; PEER_ID_LEN] = bytes.try_into().map_err(|_| DecodeError::PeerId)?;
        let well_formed = array.starts_with(&SECP256K1_PEER_ID_PREFIX)
            && matches!(array.get(SECP256K1_PEER_ID_PREFIX.len()), Some(0x02 | 0x03));
        if well_formed {
            Ok(Self(array))
        } else {
            Err(DecodeError::PeerId)
        }
    }

    /// The peer id from a 33-byte compressed secp256k1 public key.
    ///
    /// # Errors
    /// [`DecodeError::PeerId`] if the key does not start with `02` or `03`.
    pub fn from_secp256k1_public_key(key: &[u8; 33]) -> Result<Self, DecodeError> {
        let mut array = [0u8; PEER_ID_LEN];
        let (prefix, rest) = array.split_at_mut(SECP256K1_PEER_ID_PREFIX.len());
        prefix.copy_from_slice(&SECP256K1_PEER_ID_PREFIX);
        rest.copy_from_slice(key);
        Self::from_bytes(&array)
    }

    /// The 39 bytes (the peer id's binary multihash).
    pub const fn as_bytes(&self) -> &[u8; PEER_ID_LEN] {
        &self.0
    }

    /// The 33-byte compressed secp256k1 public key inside the peer id.
    pub fn secp256k1_public_key(&self) -> [u8; 33] {
        let mut key = [0u8; 33];
        for (k, b) in key
            .iter_mut()
            .zip(self.0.iter().skip(SECP256K1_PEER_ID_PREFIX.len()))
        {
            *k = *b;
        }
        key
    }
}

impl fmt::Debug for PeerIdBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerIdBytes({})", Hex(&self.0))
    }
}

/// The transport an address names (byte 4 of the field).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transport {
    /// `/ip4/…/tcp/<port>` (byte 0).
    Tcp,
    /// `/ip4/…/udp/<port>/quic-v1` (byte 1).
    QuicV1,
}

/// A decoded 94-byte address: where the next hop, a SURB's first hop or a destination is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Address {
    /// The IPv4 address.
    pub ip: Ipv4Addr,
    /// TCP or QUIC-v1.
    pub transport: Transport,
    /// The TCP or UDP port.
    pub port: u16,
    /// The node to reach.
    pub peer_id: PeerIdBytes,
    /// The circuit relay in front of the node, for
    /// `/ip4/…/tcp/…/p2p/<relay>/p2p-circuit/p2p/<node>` addresses.
    pub relay: Option<PeerIdBytes>,
}

impl Address {
    /// A direct address, `/ip4/<ip>/<transport>/<port>/p2p/<peer_id>`.
    pub const fn direct(
        ip: Ipv4Addr,
        transport: Transport,
        port: u16,
        peer_id: PeerIdBytes,
    ) -> Self {
        Self {
            ip,
            transport,
            port,
            peer_id,
            relay: None,
        }
    }

    /// The 94-byte field.
    pub fn to_bytes(&self) -> [u8; ADDR_LEN] {
        let mut out = [0u8; ADDR_LEN];
        let (first, second) = match &self.relay {
            Some(relay) => (relay, Some(&self.peer_id)),
            None => (&self.peer_id, None),
        };
        let fields = self
            .ip
            .octets()
            .into_iter()
            .chain([match self.transport {
                Transport::Tcp => 0,
                Transport::QuicV1 => 1,
            }])
            .chain(self.port.to_be_bytes())
            .chain(first.0)
            .chain(second.map_or([0u8; PEER_ID_LEN], |p| p.0));
        for (o, b) in out.iter_mut().zip(fields) {
            *o = b;
        }
        out
    }

    /// Decodes a field that must hold an address.
    ///
    /// # Errors
    /// [`DecodeError::Length`] unless `bytes` is 94 bytes; [`DecodeError::EmptyAddress`] if
    /// they are all zero; otherwise as [`Address::decode_optional`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_optional(bytes)?.ok_or(DecodeError::EmptyAddress)
    }

    /// Decodes a field that may be all zero ("no address").
    ///
    /// # Errors
    /// [`DecodeError::Length`] unless `bytes` is 94 bytes; [`DecodeError::Transport`] for a
    /// transport byte other than 0 or 1; [`DecodeError::PeerId`] for a peer id that is not a
    /// secp256k1 identity; [`DecodeError::AddressPadding`] for non-zero bytes after the ids.
    pub fn decode_optional(bytes: &[u8]) -> Result<Option<Self>, DecodeError> {
        let field: &[u8; ADDR_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::Length { expected: ADDR_LEN })?;
        if field.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let mut r = Reader::new(field);
        let length = DecodeError::Length { expected: ADDR_LEN };
        let ip = Ipv4Addr::from(*r.take_array::<4>().ok_or(length)?);
        let transport = match r.take_u8().ok_or(length)? {
            0 => Transport::Tcp,
            1 => Transport::QuicV1,
            _ => return Err(DecodeError::Transport),
        };
        let port = u16::from_be_bytes(*r.take_array::<2>().ok_or(length)?);
        let first = r.take_array::<PEER_ID_LEN>().ok_or(length)?;
        let second = r.take_array::<PEER_ID_LEN>().ok_or(length)?;
        if r.rest().iter().any(|b| *b != 0) {
            return Err(DecodeError::AddressPadding);
        }
        let first = PeerIdBytes::from_bytes(first)?;
        let (peer_id, relay) = if second.iter().all(|b| *b == 0) {
            (first, None)
        } else {
            (PeerIdBytes::from_bytes(second)?, Some(first))
        };
        Ok(Some(Self {
            ip,
            transport,
            port,
            peer_id,
            relay,
        }))
    }

    /// The field for an optional address: 94 zeros for `None`.
    pub fn encode_optional(address: Option<&Self>) -> [u8; ADDR_LEN] {
        address.map_or([0u8; ADDR_LEN], Self::to_bytes)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn peer(tag: u8) -> PeerIdBytes {
        let mut key = [tag; 33];
        key[0] = 0x02 | (tag & 1);
        PeerIdBytes::from_secp256k1_public_key(&key).unwrap()
    }

    /// MIX.md §4.2: nwaku's simulation address
    /// `/ip4/127.0.0.1/tcp/60002/p2p/16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF`.
    #[test]
    fn decodes_the_real_nwaku_address_of_the_spec() {
        let mut bytes = [0u8; ADDR_LEN];
        hex::decode_to_slice(
            "7f00000100ea62002508021221037a47c830d4fbbc2303254daa74fc4eef55dd7071a16083f55469a79559265854",
            &mut bytes[..46],
        )
        .unwrap();
        let address = Address::from_bytes(&bytes).unwrap();
        assert_eq!(address.ip, Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(address.transport, Transport::Tcp);
        assert_eq!(address.port, 60002);
        assert_eq!(address.relay, None);
        assert_eq!(address.peer_id.secp256k1_public_key()[0], 0x03);
        assert_eq!(address.to_bytes(), bytes);
    }

    #[test]
    fn round_trips_direct_relayed_tcp_and_quic_addresses() {
        for transport in [Transport::Tcp, Transport::QuicV1] {
            for relay in [None, Some(peer(9))] {
                let address = Address {
                    ip: Ipv4Addr::new(10, 1, 2, 3),
                    transport,
                    port: 4001,
                    peer_id: peer(4),
                    relay,
                };
                let bytes = address.to_bytes();
                assert_eq!(bytes[4], u8::from(transport == Transport::QuicV1));
                if relay.is_some() {
                    assert_eq!(&bytes[7..46], peer(9).as_bytes());
                    assert_eq!(&bytes[46..85], peer(4).as_bytes());
                } else {
                    assert_eq!(&bytes[46..], &[0u8; 48][..]);
                }
                assert_eq!(Address::from_bytes(&bytes), Ok(address));
            }
        }
    }

    #[test]
    fn an_all_zero_field_is_no_address() {
        assert_eq!(Address::decode_optional(&[0u8; ADDR_LEN]), Ok(None));
        assert_eq!(
            Address::from_bytes(&[0u8; ADDR_LEN]),
            Err(DecodeError::EmptyAddress)
        );
        assert_eq!(Address::encode_optional(None), [0u8; ADDR_LEN]);
    }

    #[test]
    fn rejects_what_cannot_be_dialled() {
        let good = Address::direct(Ipv4Addr::LOCALHOST, Transport::Tcp, 1, peer(1)).to_bytes();

        let mut bad = good;
        bad[4] = 2;
        assert_eq!(Address::from_bytes(&bad), Err(DecodeError::Transport));

        // An Ed25519 peer id (38 bytes: 00 24 08 01 12 20 ‖ 32) does not have the shape.
        let mut bad = good;
        bad[7..13].copy_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
        assert_eq!(Address::from_bytes(&bad), Err(DecodeError::PeerId));

        let mut bad = good;
        bad[13] = 0x04;
        assert_eq!(Address::from_bytes(&bad), Err(DecodeError::PeerId));

        let mut bad = good;
        bad[93] = 1;
        assert_eq!(Address::from_bytes(&bad), Err(DecodeError::AddressPadding));

        // A relayed address whose second id is garbage.
        let mut bad = good;
        bad[46] = 0xff;
        assert_eq!(Address::from_bytes(&bad), Err(DecodeError::PeerId));

        for len in [0, 93, 95] {
            assert_eq!(
                Address::from_bytes(&vec![1u8; len]),
                Err(DecodeError::Length { expected: ADDR_LEN })
            );
        }
    }
}

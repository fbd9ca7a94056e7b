//! The Waku ENR a relay prints and serves (WAKU.md §5).

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use super::addresses::without_p2p;
use crate::keys::NodeKeys;
use crate::replay_store::unix_now_ms;

/// The Waku ENR of a node with `keys` at `addrs`: `ip`/`tcp` from the first IPv4 TCP address,
/// the other addresses in `multiaddrs`, `waku2` = mix (+ relay and lightpush when it serves
/// shards), `rs` and the `mix-key` field older nwaku nodes read.
///
/// # Errors
/// If the record does not fit in 300 bytes, or the identity is not secp256k1.
pub fn waku_enr(
    keys: &NodeKeys,
    addrs: &[Multiaddr],
    cluster: u16,
    shards: &[u16],
) -> Result<String, mix_discovery::enr::EnrError> {
    use mix_discovery::enr::{WAKU2_LIGHTPUSH, WAKU2_MIX, WAKU2_RELAY, WakuEnr};
    let mut ip4 = None;
    let mut tcp = None;
    let mut others = Vec::new();
    // WebTransport addresses change with every certificate rotation: not in a long-lived ENR.
    for addr in addrs
        .iter()
        .filter(|a| !mix_webtransport::is_webtransport(a))
    {
        let plain = without_p2p(addr);
        let parts: Vec<Protocol<'_>> = plain.iter().collect();
        match parts.as_slice() {
            [Protocol::Ip4(ip), Protocol::Tcp(port)] if tcp.is_none() => {
                ip4 = Some(*ip);
                tcp = Some(*port);
            }
            _ => others.push(plain.clone()),
        }
    }
    let waku2 = if shards.is_empty() {
        WAKU2_MIX
    } else {
        WAKU2_MIX | WAKU2_RELAY | WAKU2_LIGHTPUSH
    };
    WakuEnr {
        peer_id: keys.peer_id(),
        seq: unix_seconds(),
        ip4,
        tcp,
        udp: None,
        multiaddrs: others,
        waku2: Some(waku2),
        shards: (!shards.is_empty()).then(|| (cluster, shards.to_vec())),
        mix_key: Some(keys.mix_public()),
    }
    .encode(&keys.identity)
}

/// Unix seconds (a record's sequence number, as nwaku).
pub(super) fn unix_seconds() -> u64 {
    unix_now_ms() / 1000
}

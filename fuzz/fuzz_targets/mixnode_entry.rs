//! nwaku's `--mixnode=<multiaddr>:<key>` entries and the multiaddr ↔ mix address conversion, on
//! arbitrary text and multiaddr bytes. Must never panic; what parses formats back to itself.
//!
//! The first byte steers the input towards the success paths (a valid secp256k1 peer id is out
//! of the fuzzer's reach): bits 0-1 add a valid `/p2p/<peer>` and/or mix key to the text, bit 2
//! appends `/p2p/<peer>` to the multiaddr bytes, bit 3 passes the expected peer id, bit 4 picks
//! which of two peers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use mix_core::Address;
use mix_core_fuzz::{MIX_PUBLIC_HEX, secp256k1_peers};
use mix_libp2p::{from_multiaddr, peer_id, to_multiaddr};
use mix_relay::keys::{format_mixnode, parse_mixnode};

fn check_mixnode(text: &str) {
    if let Ok(entry) = parse_mixnode(text) {
        let formatted = format_mixnode(&entry);
        assert_eq!(
            parse_mixnode(&formatted).ok().as_ref(),
            Some(&entry),
            "{formatted:?}"
        );
    }
}

fn check_address(multiaddr: &Multiaddr, peer: Option<libp2p::PeerId>) {
    let Ok(address) = from_multiaddr(multiaddr, peer) else {
        return;
    };
    let node = peer_id(&address.peer_id).expect("a decoded peer id converts back");
    if let Some(peer) = peer {
        assert_eq!(node, peer);
    }
    let again = to_multiaddr(&address);
    assert_eq!(from_multiaddr(&again, None).as_ref(), Ok(&address));
    assert_eq!(from_multiaddr(&again, Some(node)).as_ref(), Ok(&address));
    // And through the 94-byte wire form.
    assert_eq!(
        Address::decode_optional(&address.to_bytes())
            .ok()
            .flatten()
            .as_ref(),
        Some(&address)
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let peer = secp256k1_peers()[usize::from(mode >> 4 & 1)];
    let expected = (mode & 8 != 0).then_some(peer);

    let mut text = String::from_utf8_lossy(rest).into_owned();
    match mode & 3 {
        1 => text.push_str(&format!(":{MIX_PUBLIC_HEX}")),
        2 => text.push_str(&format!("/p2p/{peer}")),
        3 => text.push_str(&format!("/p2p/{peer}:{MIX_PUBLIC_HEX}")),
        _ => {}
    }
    check_mixnode(&text);
    if let Ok(multiaddr) = text.parse::<Multiaddr>() {
        check_address(&multiaddr, expected);
    }

    if let Ok(mut multiaddr) = Multiaddr::try_from(rest.to_vec()) {
        assert_eq!(
            Multiaddr::try_from(multiaddr.to_vec()).ok().as_ref(),
            Some(&multiaddr)
        );
        if mode & 4 != 0 {
            multiaddr.push(Protocol::P2p(peer));
        }
        check_address(&multiaddr, expected);
    }
});

//! mix-webtransport's reading of untrusted input: the HTTP/3 `CONNECT` path a browser sends
//! (must be `/.well-known/libp2p-webtransport` with `type=noise` among its query parameters),
//! and WebTransport multiaddrs with their `/certhash/…` components, as they come from pool
//! files, rendezvous records and identify. Must never panic; an address it accepts keeps its
//! socket and peer when its certhashes are stripped, and only 32-byte SHA-256 digests come out,
//! each once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libp2p::Multiaddr;
use mix_webtransport::{is_webtransport, parse_for_fuzzing, without_certhashes};

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input: a path string, then multiaddr bytes.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (path, addr) = rest.split_at(split);
    let path = String::from_utf8_lossy(path);
    let Ok(addr) = Multiaddr::try_from(addr.to_vec()) else {
        let _ = parse_for_fuzzing(&path, &Multiaddr::empty());
        return;
    };
    let (_, parsed) = parse_for_fuzzing(&path, &addr);
    if let Some((socket, digests, peer)) = parsed {
        assert!(is_webtransport(&addr));
        let mut unique = digests.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), digests.len(), "digests are deduplicated");
        let bare = without_certhashes(&addr);
        let (_, again) = parse_for_fuzzing(&path, &bare);
        let (socket2, digests2, peer2) = again.expect("still a WebTransport address");
        assert_eq!((socket2, peer2), (socket, peer));
        assert!(digests2.is_empty());
    }
});

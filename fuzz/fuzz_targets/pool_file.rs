//! The pool file `mix-relay testnet` writes and `mix-relay send` reads, on arbitrary bytes.
//! Must never panic; what parses survives a write/read round trip.
//!
//! Mode 0 (first byte even) takes the bytes as JSON. Mode 1 builds a pool file from the bytes
//! (newline-separated fields, four per node), substituting a valid peer id, multiaddr or key
//! for some fields (bits 1-3 of the first byte), so that `infos` gets past JSON and the peer-id
//! check; bit 4 adds an `enr` field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mix_core_fuzz::{MIX_PUBLIC_HEX, secp256k1_peers};
use mix_relay::pool_file::{PoolFile, PoolNode};

fn structured(mode: u8, rest: &[u8]) -> PoolFile {
    let peer = secp256k1_peers()[0];
    let valid_addr = format!("/ip4/127.0.0.1/tcp/4000/p2p/{peer}");
    let fields: Vec<String> = rest
        .split(|b| *b == b'\n')
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let nodes = fields
        .chunks(4)
        .map(|f| {
            let field = |i: usize| f.get(i).cloned().unwrap_or_default();
            PoolNode {
                peer_id: if mode & 2 != 0 {
                    peer.to_string()
                } else {
                    field(0)
                },
                multiaddrs: if mode & 4 != 0 {
                    vec![valid_addr.clone(), field(1)]
                } else {
                    vec![field(1)]
                },
                mix_public_key: if mode & 8 != 0 {
                    MIX_PUBLIC_HEX.to_owned()
                } else {
                    field(2)
                },
                mixnode: field(3),
                // With bit 4, the `mixnode` text as the ENR too (reading never parses it).
                enr: (mode & 16 != 0).then(|| field(3)),
            }
        })
        .collect();
    PoolFile {
        // With bit 5, a format name from the input (reading checks it).
        format: (mode & 32 != 0).then(|| String::from_utf8_lossy(rest).into_owned()),
        mean_delay_ms: (mode & 64 != 0).then_some(u16::from(mode)),
        cluster_id: u16::from(mode),
        shards: vec![0, 1],
        nodes,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pool = if mode & 1 == 0 {
        match serde_json::from_slice::<PoolFile>(rest) {
            Ok(pool) => pool,
            Err(_) => return,
        }
    } else {
        structured(mode, rest)
    };
    // What `PoolFile::write` writes, `PoolFile::read` reads back.
    let text = serde_json::to_string_pretty(&pool).expect("a pool file serialises");
    assert_eq!(
        serde_json::from_str::<PoolFile>(&text).as_ref().ok(),
        Some(&pool)
    );
    if let Ok(infos) = pool.infos() {
        assert_eq!(infos.len(), pool.nodes.len());
        for info in &infos {
            // What `testnet` writes for a running node, `send` reads back.
            assert_eq!(
                PoolNode::from_info(info).to_info().ok().as_ref(),
                Some(info)
            );
        }
    }
    for node in &pool.nodes {
        let _ = node.to_mixnode();
    }
    // A named format is one of the two, or an error; never a panic.
    if let Ok(Some(format)) = pool.wire_format() {
        assert_eq!(
            pool.format.as_deref().map(str::to_ascii_lowercase),
            Some(format.to_string())
        );
    }
});

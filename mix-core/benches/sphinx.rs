//! Criterion benches of mix-core beside the same jobs done by Nym's `sphinx-packet` 0.8 from
//! crates.io (a different format, the same work: the nearest Rust peer), with a summary of
//! per-hop µs, packets/s/core and our/their ratios printed at the end.
//!
//! `cargo bench -p mix-core --bench sphinx`. Under `cargo test` each bench runs once and
//! the summary says so.
//!
//! Both sides use a 3-hop route, a payload of the same size (3984 bytes, the mix payload) and
//! SURBs on 3-hop return paths. Ours runs in both wire formats: LIP-183 (the default, a
//! LIONESS payload like sphinx-packet's, though built from AES-128-CTR and SHA-256 rather than
//! `ChaCha20` and BLAKE2) and v0.39 (AES-CTR payload). The LIONESS layer alone is measured too.
//!
//! Group `peel_parts` breaks one LIP-183 hop (`peel_hop/mix_core_lip183`) into its pieces: the
//! three steps of `peel_with` one by one (step 4 is a forward hop), and inside them the curve
//! work (lifting α to Edwards form, one clamped Edwards multiplication, the conversion back to
//! a u-coordinate), the key derivation, the header keystream over β ‖ 0 and the MAC over β.
//! The summary adds them up into the hop's floor with curve25519-dalek's public API: two
//! variable-base multiplications, one lift, two conversions and the symmetric work that the
//! format fixes (printed as "peel floor" in the summary).
//!
//! The workspace builds curve25519-dalek in one codegen unit for `release` and `bench` (see the
//! root Cargo.toml): it makes the Edwards multiplication markedly faster, and the ladder that
//! sphinx-packet uses not at all, so compare with that setting in place.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::std_instead_of_core,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "bench code"
)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use mix_core::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const CODEC: &str = "/vac/waku/lightpush/3.0.0";
const SURB_COUNTS: [usize; 3] = [0, 1, 4];
const FORMATS: [Format; 2] = Format::ALL;

struct Ours {
    keys: Vec<NodeSecretKey>,
    route: Route,
    back: Route,
}

fn ours() -> Ours {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let keys: Vec<_> = (0..5).map(|_| NodeSecretKey::generate(&mut rng)).collect();
    let hop = |i: usize| {
        let mut key = [u8::try_from(i).unwrap(); 33];
        key[0] = 2;
        Hop {
            address: Address::direct(
                Ipv4Addr::new(10, 0, 0, 1),
                Transport::Tcp,
                4000,
                PeerIdBytes::from_secp256k1_public_key(&key).unwrap(),
            ),
            public_key: keys[i].public_key(),
        }
    };
    let delays = [Delay::from_millis(1); 2];
    Ours {
        route: Route {
            hops: [hop(0), hop(1), hop(2)],
            delays,
        },
        back: Route {
            hops: [hop(3), hop(1), hop(4)],
            delays,
        },
        keys,
    }
}

/// The largest body that fits with `surbs` SURBs, so both sides carry a full payload.
fn body(format: Format, surbs: usize) -> Vec<u8> {
    vec![0x5a; format.max_message_len(CODEC, surbs).unwrap()]
}

mod nym {
    pub(crate) use sphinx_packet::crypto::{PrivateKey as StaticSecret, PublicKey};
    pub(crate) use sphinx_packet::header::delays::Delay;
    pub(crate) use sphinx_packet::packet::builder::SphinxPacketBuilder;
    pub(crate) use sphinx_packet::payload::Payload;
    pub(crate) use sphinx_packet::route::{
        Destination, DestinationAddressBytes, Node, NodeAddressBytes,
    };
    pub(crate) use sphinx_packet::surb::{SURB, SURBMaterial};
    pub(crate) use sphinx_packet::version::SINGLE_SEED_SURB_VERSION;
    pub(crate) use sphinx_packet::{ProcessedPacketData, SphinxPacket};
}

struct Theirs {
    keys: Vec<nym::StaticSecret>,
    route: Vec<nym::Node>,
    back: Vec<nym::Node>,
    delays: Vec<nym::Delay>,
}

fn theirs() -> Theirs {
    let keys: Vec<_> = (0..5)
        .map(|i| nym::StaticSecret::from([i as u8 + 1; 32]))
        .collect();
    let node = |i: usize| {
        nym::Node::new(
            nym::NodeAddressBytes::from_bytes([i as u8; 32]),
            nym::PublicKey::from(&keys[i]),
        )
    };
    Theirs {
        route: vec![node(0), node(1), node(2)],
        back: vec![node(3), node(1), node(4)],
        delays: vec![nym::Delay::new_from_millis(1); 3],
        keys,
    }
}

fn destination(id: u8) -> nym::Destination {
    nym::Destination::new(nym::DestinationAddressBytes::from_bytes([7; 32]), [id; 16])
}

fn nym_surb(t: &Theirs, id: u8) -> (nym::SURB, sphinx_packet::surb::SurbReplyRecovery) {
    nym::SURBMaterial::new(
        t.back.clone(),
        t.delays.clone(),
        destination(id),
        nym::SINGLE_SEED_SURB_VERSION,
    )
    .construct_recoverable_SURB()
    .unwrap()
}

fn nym_build(t: &Theirs, surbs: usize) -> nym::SphinxPacket {
    let mut message = Vec::new();
    for i in 0..surbs {
        message.extend_from_slice(&nym_surb(t, i as u8 + 1).0.to_bytes());
    }
    // Fill the payload as our side does.
    message.resize(PAYLOAD_LEN - 17, 0x5a);
    nym::SphinxPacketBuilder::new()
        .with_payload_size(PAYLOAD_LEN)
        .build_packet(&message, &t.route, &destination(0), &t.delays)
        .unwrap()
}

fn bench_x25519(c: &mut Criterion) {
    let mut g = c.benchmark_group("x25519");
    let scalar = [0x42; 32];
    let point = NodeSecretKey::from_bytes([9; 32]).public_key().to_bytes();
    g.bench_function("ladder", |b| {
        b.iter(|| hazmat::x25519(black_box(&scalar), black_box(&point)));
    });
    g.finish();
}

fn bench_build(c: &mut Criterion) {
    let o = ours();
    let t = theirs();
    let mut g = c.benchmark_group("build_3_hops");
    for n in SURB_COUNTS {
        for format in FORMATS {
            let body = body(format, n);
            let mut rng = ChaCha20Rng::from_seed([2; 32]);
            let mut packet = [0u8; PACKET_LEN];
            g.bench_function(format!("mix_core_{format}_{n}_surbs"), |b| {
                b.iter(|| {
                    let surbs: Vec<Surb> = (0..n)
                        .map(|_| {
                            Surb::create_with_format(format, &mut rng, &o.back)
                                .unwrap()
                                .0
                        })
                        .collect();
                    PacketBuilder::new(&o.route)
                        .format(format)
                        .surbs(&surbs)
                        .build(&mut rng, CODEC, &body, &mut packet)
                        .unwrap();
                    black_box(&packet);
                });
            });
        }
        g.bench_function(format!("sphinx_packet_{n}_surbs"), |b| {
            b.iter(|| black_box(nym_build(&t, n)));
        });
    }
    g.finish();
}

fn bench_peel(c: &mut Criterion) {
    let o = ours();
    let t = theirs();
    let mut g = c.benchmark_group("peel_hop");

    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut packet = [0u8; PACKET_LEN];
    for format in FORMATS {
        PacketBuilder::new(&o.route)
            .format(format)
            .build(&mut rng, CODEC, &body(format, 0), &mut packet)
            .unwrap();
        g.bench_function(format!("mix_core_{format}"), |b| {
            b.iter_batched_ref(
                || packet,
                |p| {
                    let verified = o.keys[0]
                        .hop_secrets_with(format, p)
                        .unwrap()
                        .verify_mac(p)
                        .unwrap();
                    assert!(matches!(
                        verified.peel_in_place(p),
                        Ok(Action::Forward { .. })
                    ));
                },
                BatchSize::SmallInput,
            );
        });
    }

    let bytes = nym_build(&t, 0).to_bytes();
    g.bench_function("sphinx_packet", |b| {
        b.iter_batched(
            || nym::SphinxPacket::from_bytes(&bytes).unwrap(),
            |p| {
                let processed = p.process(&t.keys[0]).unwrap();
                assert!(matches!(
                    processed.data,
                    nym::ProcessedPacketData::ForwardHop { .. }
                ));
                processed
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();

    // The replay filter's share of a relay's per-packet work: one fingerprint and one
    // insert of a fresh tag.
    let mut g = c.benchmark_group("replay_filter");
    let tag = o.keys[0].hop_secrets(&packet).unwrap();
    g.bench_function("fingerprint", |b| {
        b.iter(|| black_box(tag.replay_tag().fingerprint()));
    });
    g.bench_function("insert_fresh", |b| {
        b.iter_custom(|iters| {
            let mut filter = MemoryReplayFilter::new(ReplayConfig {
                capacity: usize::MAX,
                ..ReplayConfig::default()
            });
            let start = Instant::now();
            for i in 0..iters {
                let mut fp = [0u8; FINGERPRINT_LEN];
                fp[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
                filter.insert_fingerprint(fp, 0).unwrap();
            }
            start.elapsed()
        });
    });
    g.finish();
}

/// Where one LIP-183 hop's time goes: the steps of [`peel_with`] one by one, and the curve
/// operations and hashes inside step 1 and step 4, on the same packet as `peel_hop`.
fn bench_peel_parts(c: &mut Criterion) {
    use curve25519_dalek::montgomery::MontgomeryPoint;

    let o = ours();
    let mut g = c.benchmark_group("peel_parts");
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut packet = [0u8; PACKET_LEN];
    let format = Format::Lip183;
    PacketBuilder::new(&o.route)
        .format(format)
        .build(&mut rng, CODEC, &body(format, 0), &mut packet)
        .unwrap();
    let key = &o.keys[0];
    let alpha: [u8; 32] = packet[..32].try_into().unwrap();
    let scalar = [0x42; 32];
    let edwards = MontgomeryPoint(alpha).to_edwards(0).unwrap();
    g.bench_function("lift_to_edwards", |b| {
        b.iter(|| black_box(MontgomeryPoint(black_box(alpha)).to_edwards(0)));
    });
    g.bench_function("edwards_mul_clamped", |b| {
        b.iter(|| black_box(black_box(edwards).mul_clamped(scalar)));
    });
    let product = edwards.mul_clamped(scalar);
    g.bench_function("to_montgomery", |b| {
        b.iter(|| black_box(black_box(product).to_montgomery()));
    });
    g.bench_function("step1_hop_secrets", |b| {
        b.iter(|| black_box(key.hop_secrets_with(format, black_box(&packet)).unwrap()));
    });
    let shared = key.hop_secrets(&packet).unwrap().shared_secret().clone();
    g.bench_function("hop_keys_derive", |b| {
        b.iter(|| black_box(HopKeys::derive(black_box(&shared))));
    });
    g.bench_function("step3_verify_mac", |b| {
        b.iter_batched(
            || key.hop_secrets_with(format, &packet).unwrap(),
            |s| s.verify_mac(&packet).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("step4_peel_in_place", |b| {
        b.iter_batched_ref(
            || {
                let verified = key
                    .hop_secrets_with(format, &packet)
                    .unwrap()
                    .verify_mac(&packet)
                    .unwrap();
                (Some(verified), packet)
            },
            |(verified, p)| {
                let action = verified.take().unwrap().peel_in_place(p);
                assert!(matches!(action, Ok(Action::Forward { .. })));
            },
            BatchSize::SmallInput,
        );
    });
    let keys = HopKeys::derive(&shared);
    let mut beta = [0u8; params::DECRYPTED_BETA_LEN];
    g.bench_function("header_aes128_ctr_688", |b| {
        b.iter(|| hazmat::aes128_ctr(*keys.aes_key(), *keys.iv(), 0, black_box(&mut beta)));
    });
    g.bench_function("mac16_576", |b| {
        let beta = &packet[32..32 + params::BETA_LEN];
        b.iter(|| black_box(hazmat::mac16(keys.mac_key(), black_box(beta))));
    });
    g.finish();
}

fn bench_surb(c: &mut Criterion) {
    let o = ours();
    let t = theirs();
    let mut g = c.benchmark_group("surb");
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    g.bench_function("mix_core_create", |b| {
        b.iter(|| black_box(Surb::create(&mut rng, &o.back).unwrap()));
    });
    g.bench_function("sphinx_packet_create", |b| {
        b.iter(|| black_box(nym_surb(&t, 1)));
    });
    g.finish();

    // Open a reply: the creator removes every layer and checks it.
    let mut g = c.benchmark_group("open_reply");
    for format in FORMATS {
        let (surb, keys) = Surb::create_with_format(format, &mut rng, &o.back).unwrap();
        let mut reply = [0u8; PACKET_LEN];
        let len = format.max_reply_len();
        surb.build_reply(&mut rng, &vec![0x33; len], &mut reply)
            .unwrap();
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        for (i, key) in [3, 1, 4].map(|i| &o.keys[i]).into_iter().enumerate() {
            match peel_with(format, key, &mut filter, 0, &mut reply).unwrap() {
                Action::Forward { .. } if i < 2 => {}
                Action::Reply { .. } if i == 2 => {}
                other => panic!("{other:?}"),
            }
        }
        let payload: [u8; PAYLOAD_LEN] = reply[HEADER_LEN..].try_into().unwrap();
        g.bench_function(format!("mix_core_{format}"), |b| {
            b.iter_batched_ref(
                || payload,
                |p| assert_eq!(keys.open_reply(p).unwrap().len(), len),
                BatchSize::SmallInput,
            );
        });
    }

    let (nsurb, recovery) = nym_surb(&t, 9);
    let (packet, _) = nsurb.use_surb(&[0x33; 3900], PAYLOAD_LEN).unwrap();
    let mut packet = packet;
    let mut final_payload = None;
    for key in [3, 1, 4].map(|i| &t.keys[i]) {
        match packet.process(key).unwrap().data {
            nym::ProcessedPacketData::ForwardHop {
                next_hop_packet, ..
            } => packet = next_hop_packet,
            nym::ProcessedPacketData::FinalHop { payload, .. } => {
                final_payload = Some(payload.into_bytes());
                break;
            }
        }
    }
    let sealed = final_payload.unwrap();
    g.bench_function("sphinx_packet", |b| {
        b.iter_batched(
            || nym::Payload::from_bytes(&sealed).unwrap(),
            |p| black_box(recovery.recover_plaintext(p).unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

/// The LIP-183 payload layer alone: one LIONESS pass over the 3984-byte δ (2 AES-128-CTR and
/// 2 SHA-256 passes over ~3.95 KB), beside the v0.39 layer (one AES-128-CTR pass).
fn bench_lioness(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload_layer_3984");
    let lioness = hazmat::Lioness::new(&[0x11; 32]).unwrap();
    let mut block = [0x5au8; PAYLOAD_LEN];
    g.bench_function("lioness_encrypt", |b| {
        b.iter(|| lioness.encrypt(black_box(&mut block)).unwrap());
    });
    g.bench_function("lioness_decrypt", |b| {
        b.iter(|| lioness.decrypt(black_box(&mut block)).unwrap());
    });
    g.bench_function("lioness_keys_and_decrypt", |b| {
        b.iter(|| {
            hazmat::Lioness::new(black_box(&[0x11; 32]))
                .unwrap()
                .decrypt(black_box(&mut block))
                .unwrap();
        });
    });
    g.bench_function("aes128_ctr", |b| {
        b.iter(|| hazmat::aes128_ctr([1; 16], [2; 16], 0, black_box(&mut block)));
    });
    g.finish();
}

fn output_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    // Benches run in the package directory; a relative CARGO_TARGET_DIR (and cargo's default
    // `target`) is relative to the workspace root. `join` keeps an absolute one as it is.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(target)
        .join("criterion")
}

/// Mean time of a finished bench, from criterion's own estimates.
fn mean(group: &str, name: &str) -> Option<Duration> {
    let path = output_dir()
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let ns = json["mean"]["point_estimate"].as_f64()?;
    Some(Duration::from_secs_f64(ns / 1e9))
}

fn us(d: Duration) -> String {
    format!("{:>9.2} µs", d.as_secs_f64() * 1e6)
}

fn summary(started: std::time::SystemTime) {
    // Only report estimates written by this run.
    let fresh = |group: &str, name: &str| {
        let path = output_dir()
            .join(group)
            .join(name)
            .join("new/estimates.json");
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
        (modified >= started).then(|| mean(group, name)).flatten()
    };
    println!("\n== mix-core vs sphinx-packet 0.8 (means; ratio = ours / theirs) ==");
    println!("(target: LIP-183 peel ≤ 0.5× sphinx-packet's process)");
    #[cfg(target_arch = "x86_64")]
    println!(
        "CPU: avx2 {}, avx512ifma {} (curve25519-dalek picks its backend at run time when built with this repo's .cargo/config.toml)",
        std::arch::is_x86_feature_detected!("avx2"),
        std::arch::is_x86_feature_detected!("avx512ifma"),
    );
    let mut rows = Vec::new();
    for n in SURB_COUNTS {
        for format in FORMATS {
            rows.push((
                format!("build 3-hop packet, {n} SURB(s), {format}"),
                fresh("build_3_hops", &format!("mix_core_{format}_{n}_surbs")),
                fresh("build_3_hops", &format!("sphinx_packet_{n}_surbs")),
            ));
        }
    }
    rows.push((
        "create one SURB".into(),
        fresh("surb", "mix_core_create"),
        fresh("surb", "sphinx_packet_create"),
    ));
    for format in FORMATS {
        rows.push((
            format!("peel one hop, {format}"),
            fresh("peel_hop", &format!("mix_core_{format}")),
            fresh("peel_hop", "sphinx_packet"),
        ));
    }
    for format in FORMATS {
        rows.push((
            format!("open a reply, {format}"),
            fresh("open_reply", &format!("mix_core_{format}")),
            fresh("open_reply", "sphinx_packet"),
        ));
    }
    let peel = fresh("peel_hop", "mix_core_lip183");
    let mut missing = false;
    for (what, ours, theirs) in rows {
        match (ours, theirs) {
            (Some(o), Some(t)) => println!(
                "{what:<44} {}  {}  ratio {:.2}",
                us(o),
                us(t),
                o.as_secs_f64() / t.as_secs_f64()
            ),
            _ => missing = true,
        }
    }
    for (what, name) in [
        (
            "LIONESS encrypt, 3984 B (target ≤ 10 µs)",
            "lioness_encrypt",
        ),
        ("LIONESS decrypt, 3984 B", "lioness_decrypt"),
        (
            "LIONESS round keys + decrypt, 3984 B",
            "lioness_keys_and_decrypt",
        ),
        ("AES-128-CTR, 3984 B (the v0.39 layer)", "aes128_ctr"),
    ] {
        if let Some(d) = fresh("payload_layer_3984", name) {
            println!("{what:<44} {}", us(d));
        }
    }
    let ladder = fresh("x25519", "ladder");
    let filter = fresh("replay_filter", "fingerprint")
        .zip(fresh("replay_filter", "insert_fresh"))
        .map(|(a, b)| a + b);
    if let (Some(peel), Some(ladder), Some(filter)) = (peel, ladder, filter) {
        println!(
            "LIP-183 peel vs two X25519 ladders: {} vs {} = {:.2}× (target ≤ 1.1)",
            us(peel),
            us(ladder * 2),
            peel.as_secs_f64() / (ladder * 2).as_secs_f64()
        );
        println!(
            "relay per hop incl. replay filter: {} → {:.0} packets/s/core (peel alone: {:.0})",
            us(peel + filter),
            1.0 / (peel + filter).as_secs_f64(),
            1.0 / peel.as_secs_f64()
        );
    } else {
        missing = true;
    }
    // The floor of a LIP-183 forward hop with dalek's public API: every piece but the
    // multiplications is already a single call, so the hop cannot cost less than their sum.
    let part = |name: &str| fresh("peel_parts", name);
    if let (Some(mul), Some(conv), Some(lift), Some(lioness), Some(derive), Some(aes), Some(mac)) = (
        part("edwards_mul_clamped"),
        part("to_montgomery"),
        part("lift_to_edwards"),
        fresh("payload_layer_3984", "lioness_keys_and_decrypt"),
        part("hop_keys_derive"),
        part("header_aes128_ctr_688"),
        part("mac16_576"),
    ) && let (Some(peel), Some(theirs)) = (peel, fresh("peel_hop", "sphinx_packet"))
    {
        let floor = mul * 2 + conv * 2 + lift + lioness + derive + aes + mac;
        println!(
            "peel floor with dalek's public API: 2 Edwards mul {} + 2 to_montgomery {} + lift {} + LIONESS {} + keys {} + β keystream {} + MAC {}",
            us(mul * 2),
            us(conv * 2),
            us(lift),
            us(lioness),
            us(derive),
            us(aes),
            us(mac),
        );
        println!(
            "  = {} (peel measured {}) → floor ratio {:.2} vs sphinx-packet (2 mul alone: {:.2})",
            us(floor),
            us(peel),
            floor.as_secs_f64() / theirs.as_secs_f64(),
            (mul * 2).as_secs_f64() / theirs.as_secs_f64()
        );
    }
    if missing {
        println!(
            "(some benches did not run in this invocation: no full summary; run `cargo bench -p mix-core --bench sphinx`)"
        );
    }
}

fn main() {
    let started = std::time::SystemTime::now();
    let mut c = Criterion::default()
        .output_directory(&output_dir())
        .configure_from_args();
    bench_x25519(&mut c);
    bench_build(&mut c);
    bench_peel(&mut c);
    bench_peel_parts(&mut c);
    bench_surb(&mut c);
    bench_lioness(&mut c);
    c.final_summary();
    summary(started);
}

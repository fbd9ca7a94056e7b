//! The relay against the golden vectors (MIX.md §5.5, §6): the packets of the vector file,
//! processed by the relay's own per-packet code ([`Processor`]) and by a running relay, with
//! the node keys loaded from the file, must give exactly what the file says.
//!
//! Reads `$MIX_VECTORS` if set, else `../shared/spec/vectors/mix-sphinx-vectors-lioness.json`
//! beside the repository (the relay's default format, LIP-183), else the copy committed under
//! `mix-core/tests/vectors/`. A mismatch names the case, hop and field. The file's `format` field
//! says its wire format (`"lioness-lip183"`, absent for v0.39), and the [`Processor`] tests peel
//! in it, so `MIX_VECTORS=…/mix-sphinx-vectors.json` checks the legacy format. The running relay
//! has no format setting yet and peels in the default format; its tests check only that hop 0
//! forwards the packet once and drops its replay, which does not depend on the format (the
//! header and γ are the same in both).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mix_core::payload;
use mix_core::{
    Address, Delay, DelayStrategy, Format, Hop, MESSAGE_LEN, NodePublicKey, NodeSecretKey,
    PACKET_LEN, PATH_LEN, ReplayConfig, Route, Surb, SurbId,
};
use mix_relay::keys::NodeKeys;
use mix_relay::metrics::{DropReason, Metrics};
use mix_relay::processor::{Decision, Processor};
use mix_relay::replay_store::{PersistentReplayFilter, unix_now_ms};
use mix_relay::{KeySource, RelayHandle, Settings, start};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The vector file.

fn vectors_path() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../shared/spec/vectors/mix-sphinx-vectors-lioness.json");
    let committed = manifest.join("../mix-core/tests/vectors/mix-sphinx-vectors-lioness.json");
    match std::env::var_os("MIX_VECTORS") {
        Some(p) => PathBuf::from(p),
        None if shared.exists() => shared,
        None => committed,
    }
}

fn vectors() -> &'static Value {
    static VECTORS: OnceLock<Value> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = vectors_path();
        let json = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
    })
}

/// The file's wire format: its `format` field (`"lioness-lip183"`), absent for v0.39.
fn file_format() -> Format {
    match vectors().get("format") {
        None => Format::V039,
        Some(Value::String(s)) if s == "lioness-lip183" => Format::Lip183,
        Some(other) => panic!("{}: unknown format {other}", vectors_path().display()),
    }
}

/// A section of the file (`forward`, `surb`, ...).
fn section(name: &str) -> &'static Value {
    vectors()
        .get(name)
        .unwrap_or_else(|| panic!("{}: no `{name}` section", vectors_path().display()))
}

fn at(case: &str, hop: Option<usize>, field: &str) -> String {
    match hop {
        Some(hop) => format!("case `{case}`, hop {hop}, field `{field}`"),
        None => format!("case `{case}`, field `{field}`"),
    }
}

fn get<'v>(v: &'v Value, name: &str, what: &str) -> &'v Value {
    v.get(name)
        .unwrap_or_else(|| panic!("{what}: missing in the vector file"))
}

fn str_field<'v>(v: &'v Value, name: &str, what: &str) -> &'v str {
    get(v, name, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a string"))
}

fn u64_field(v: &Value, name: &str, what: &str) -> u64 {
    get(v, name, what)
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: not an unsigned integer"))
}

fn hex_value(v: &Value, what: &str) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a hex string"));
    hex::decode(s).unwrap_or_else(|e| panic!("{what}: bad hex: {e}"))
}

fn hex_field(v: &Value, name: &str, what: &str) -> Vec<u8> {
    hex_value(get(v, name, what), what)
}

fn array<const N: usize>(bytes: Vec<u8>, what: &str) -> [u8; N] {
    let len = bytes.len();
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("{what}: {len} bytes, expected {N}"))
}

fn packet_field(v: &Value, name: &str, what: &str) -> Box<[u8; PACKET_LEN]> {
    Box::new(array(hex_field(v, name, what), what))
}

fn hex_list(v: &Value, name: &str, what: &str) -> Vec<Vec<u8>> {
    get(v, name, what)
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list"))
        .iter()
        .enumerate()
        .map(|(i, item)| hex_value(item, &format!("{what}[{i}]")))
        .collect()
}

/// The case's node secret keys, one per hop.
fn node_keys(case: &str, v: &Value) -> Vec<NodeSecretKey> {
    let what = at(case, None, "node_private_keys");
    let keys: Vec<_> = hex_list(v, "node_private_keys", &what)
        .into_iter()
        .map(|k| NodeSecretKey::from_bytes(array(k, &what)))
        .collect();
    assert_eq!(keys.len(), PATH_LEN, "{what}: number of keys");
    keys
}

/// The case's `processing` list, one step per hop, each naming its hop.
fn steps<'v>(case: &str, v: &'v Value) -> &'v [Value] {
    let what = at(case, None, "processing");
    let steps = get(v, "processing", &what)
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list"));
    assert_eq!(steps.len(), PATH_LEN, "{what}: number of hops");
    for (i, step) in steps.iter().enumerate() {
        let what = at(case, Some(i), "hop");
        assert_eq!(u64_field(step, "hop", &what), i as u64, "{what}");
    }
    steps
}

/// Equal bytes, or a failure naming `what` and the first differing byte.
fn assert_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let window = |b: &[u8]| {
        let start = first.saturating_sub(4).min(b.len());
        hex::encode(&b[start..(start + 16).min(b.len())])
    };
    panic!(
        "{what}: mismatch (lengths {} vs {}), first difference at byte {first}: got …{}…, want …{}…",
        got.len(),
        want.len(),
        window(got),
        window(want),
    );
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// A processor as the relay builds it: in-memory replay filter, no-sampling delays (so the
/// delay waited is the encoded one).
fn processor(key: &NodeSecretKey) -> Processor<PersistentReplayFilter> {
    Processor::new(
        key.clone(),
        PersistentReplayFilter::in_memory(ReplayConfig::default()),
        DelayStrategy::NoSampling,
    )
    .with_format(file_format())
}

fn process(
    processor: &mut Processor<PersistentReplayFilter>,
    packet: Box<[u8; PACKET_LEN]>,
) -> Decision {
    processor.process(&mut rand::rng(), unix_now_ms(), packet)
}

/// The packet hop `hop` receives: the one the previous hop forwarded.
fn next(packet: Option<Box<[u8; PACKET_LEN]>>, case: &str, hop: usize) -> Box<[u8; PACKET_LEN]> {
    packet.unwrap_or_else(|| {
        panic!(
            "{}: no packet reaches this hop (the vector file has a hop after the last one)",
            at(case, Some(hop), "status")
        )
    })
}

/// A short name of a decision, for failure messages (no packet dumps).
fn kind(d: &Decision) -> String {
    match d {
        Decision::Forward { .. } => "Forward".to_owned(),
        Decision::ExitLocal { .. } => "ExitLocal".to_owned(),
        Decision::ExitForward { .. } => "ExitForward".to_owned(),
        Decision::Reply { .. } => "Reply".to_owned(),
        Decision::Drop(reason) => format!("Drop({reason})"),
    }
}

/// Checks an intermediate hop's decision against the step: next hop, delay and, when the
/// step gives it, the outgoing packet. Returns the outgoing packet.
fn check_forward(
    case: &str,
    hop: usize,
    step: &Value,
    decision: Decision,
) -> Box<[u8; PACKET_LEN]> {
    let Decision::Forward {
        next_hop,
        delay,
        packet,
    } = decision
    else {
        panic!(
            "{}: got {}, want Forward (status Intermediate)",
            at(case, Some(hop), "status"),
            kind(&decision)
        );
    };
    let what = at(case, Some(hop), "next_hop_94B");
    assert_bytes(
        &what,
        &next_hop.to_bytes(),
        &hex_field(step, "next_hop_94B", &what),
    );
    let what = at(case, Some(hop), "delay_ms");
    assert_eq!(
        delay,
        Duration::from_millis(u64_field(step, "delay_ms", &what)),
        "{what}"
    );
    if step.get("packet_out_4608B").is_some() {
        let what = at(case, Some(hop), "packet_out_4608B");
        assert_bytes(
            &what,
            packet.as_slice(),
            &hex_field(step, "packet_out_4608B", &what),
        );
    }
    packet
}

/// The forward cases of the file: `forward` and its `additional_cases`, if any.
fn forward_cases() -> Vec<(String, &'static Value)> {
    let f = section("forward");
    let mut cases = vec![("forward".to_owned(), f)];
    if let Some(extra) = f.get("additional_cases").and_then(Value::as_array) {
        for (i, v) in extra.iter().enumerate() {
            cases.push((format!("forward.additional_cases[{i}]"), v));
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// The per-packet code.

/// Every hop of the forward case: the processor with that hop's key turns the incoming packet
/// into exactly the vector's outgoing packet, next hop and delay; the exit gives a forward-mode
/// exit to the vector's destination, with its codec and application frame and no SURBs.
#[test]
fn forward_case_every_hop_is_reproduced() {
    for (case, v) in forward_cases() {
        let case = case.as_str();
        let keys = node_keys(case, v);
        let steps = steps(case, v);
        let addresses = hex_list(v, "hop_addresses_94B", &at(case, None, "hop_addresses_94B"));
        let delays = get(v, "delays_ms", &at(case, None, "delays_ms"))
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut packet = Some(packet_field(
            v,
            "packet_4608B",
            &at(case, None, "packet_4608B"),
        ));
        for (i, step) in steps.iter().enumerate() {
            let status = str_field(step, "status", &at(case, Some(i), "status"));
            let decision = process(&mut processor(&keys[i]), next(packet.take(), case, i));
            if i + 1 < PATH_LEN {
                assert_eq!(status, "Intermediate", "{}", at(case, Some(i), "status"));
                // The step's next hop is the route's next hop, its delay the route's delay.
                let what = at(case, Some(i), "next_hop_94B (vs hop_addresses_94B)");
                assert_bytes(
                    &what,
                    &hex_field(step, "next_hop_94B", &what),
                    &addresses[i + 1],
                );
                let what = at(case, Some(i), "delay_ms (vs delays_ms)");
                assert_eq!(
                    step.get("delay_ms"),
                    delays.get(i),
                    "{what}: the vector file disagrees with itself"
                );
                packet = Some(check_forward(case, i, step, decision));
                continue;
            }
            assert_eq!(status, "Exit", "{}", at(case, Some(i), "status"));
            let Decision::ExitForward {
                destination,
                codec,
                surbs,
                body,
            } = decision
            else {
                panic!(
                    "{}: got {}, want ExitForward (status Exit with a destination)",
                    at(case, Some(i), "status"),
                    kind(&decision)
                );
            };
            let what = at(case, Some(i), "destination_94B");
            assert_bytes(
                &what,
                &destination.to_bytes(),
                &hex_field(step, "destination_94B", &what),
            );
            let what = at(case, None, "destination_94B");
            assert_bytes(
                &what,
                &destination.to_bytes(),
                &hex_field(v, "destination_94B", &what),
            );
            let what = at(case, Some(i), "codec");
            assert_eq!(codec, str_field(step, "codec", &what), "{what}");
            let what = at(case, None, "codec");
            assert_eq!(codec, str_field(v, "codec", &what), "{what}");
            let what = at(case, Some(i), "SURBs");
            assert!(surbs.is_empty(), "{what}: got {}, want none", surbs.len());
            let what = at(case, None, "app_frame");
            assert_bytes(&what, &body, &hex_field(v, "app_frame", &what));
            let what = at(case, Some(i), "message_after_codec");
            let mut after_codec = vec![0u8];
            after_codec.extend_from_slice(&body);
            assert_bytes(
                &what,
                &after_codec,
                &hex_field(step, "message_after_codec", &what),
            );
        }
    }
}

/// `forward_exit_is_dest`: the same route with an all-zero destination; the intermediates
/// forward along the route and the exit hands the request to its own handler (`ExitLocal`)
/// with the forward case's codec and application frame.
#[test]
fn forward_exit_is_dest_exits_locally() {
    let case = "forward_exit_is_dest";
    let f = section("forward");
    let v = section(case);
    let keys = node_keys("forward", f);
    let forward_steps = steps("forward", f);
    let mut packet = Some(packet_field(
        v,
        "packet_4608B",
        &at(case, None, "packet_4608B"),
    ));
    for (i, key) in keys.iter().enumerate() {
        let decision = process(&mut processor(key), next(packet.take(), case, i));
        if i + 1 < PATH_LEN {
            // Same route as `forward`: same next hop and delay (the packet differs: no vector).
            let step = &forward_steps[i];
            let step = serde_json::json!({
                "next_hop_94B": step["next_hop_94B"],
                "delay_ms": step["delay_ms"],
            });
            packet = Some(check_forward(case, i, &step, decision));
            continue;
        }
        let Decision::ExitLocal { codec, surbs, body } = decision else {
            panic!(
                "{}: got {}, want ExitLocal (exit == destination)",
                at(case, Some(i), "status"),
                kind(&decision)
            );
        };
        let what = at(case, Some(i), "codec");
        assert_eq!(codec, str_field(f, "codec", &what), "{what}");
        let what = at(case, Some(i), "SURBs");
        assert!(surbs.is_empty(), "{what}: got {}, want none", surbs.len());
        let what = at(case, Some(i), "app_frame");
        assert_bytes(&what, &body, &hex_field(f, "app_frame", &what));
    }
}

/// `replay_of_first_packet_at_hop0`: the hop-0 packet a second time is a replay.
#[test]
fn forward_packet_replayed_at_hop0_is_dropped() {
    let case = "forward";
    let v = section(case);
    let what = at(case, Some(0), "replay_of_first_packet_at_hop0");
    assert_eq!(
        str_field(v, "replay_of_first_packet_at_hop0", &what),
        "Duplicate",
        "{what}: this test knows only `Duplicate`"
    );
    let keys = node_keys(case, v);
    let packet = packet_field(v, "packet_4608B", &at(case, None, "packet_4608B"));
    let mut hop0 = processor(&keys[0]);
    let first = process(&mut hop0, packet.clone());
    assert!(
        matches!(first, Decision::Forward { .. }),
        "{}: first time: got {}, want Forward",
        what,
        kind(&first)
    );
    let second = process(&mut hop0, packet);
    assert!(
        matches!(second, Decision::Drop(DropReason::Replay)),
        "{what}: second time: got {}, want Drop(replay)",
        kind(&second)
    );
}

/// The replay filter on a file remembers the hop-0 packet across a restart of the processor.
#[test]
fn forward_packet_replayed_after_restart_is_dropped() {
    let case = "forward";
    let v = section(case);
    let what = at(
        case,
        Some(0),
        "replay_of_first_packet_at_hop0 (after a restart)",
    );
    let keys = node_keys(case, v);
    let packet = packet_field(v, "packet_4608B", &at(case, None, "packet_4608B"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.store");
    let open = || {
        Processor::new(
            keys[0].clone(),
            PersistentReplayFilter::open(&path, ReplayConfig::default(), unix_now_ms())
                .expect("open the replay store"),
            DelayStrategy::NoSampling,
        )
        .with_format(file_format())
    };

    let mut hop0 = open();
    let first = process(&mut hop0, packet.clone());
    assert!(
        matches!(first, Decision::Forward { .. }),
        "{what}: before the restart: got {}, want Forward",
        kind(&first)
    );
    hop0.replay_filter()
        .flush()
        .expect("flush the replay store");
    drop(hop0);

    let mut hop0 = open();
    assert_eq!(
        hop0.replay_filter().len(),
        1,
        "{what}: tags restored from the file"
    );
    let second = process(&mut hop0, packet);
    assert!(
        matches!(second, Decision::Drop(DropReason::Replay)),
        "{what}: after the restart: got {}, want Drop(replay)",
        kind(&second)
    );
}

/// The SURB reply packet through the SURB's path, each hop with its key: the intermediates
/// give the vector's packets, next hops and delays, and the last hop recognises the reply
/// with the vector's SURB id and δ′, which the SURB's keys open to the vector's reply.
#[test]
fn surb_reply_is_reproduced() {
    let case = "surb";
    let v = section(case);
    let keys = node_keys(case, v);
    let steps = steps(case, v);
    let mut packet = Some(packet_field(
        v,
        "reply_packet_4608B",
        &at(case, None, "reply_packet_4608B"),
    ));
    for (i, step) in steps.iter().enumerate() {
        let status = str_field(step, "status", &at(case, Some(i), "status"));
        let decision = process(&mut processor(&keys[i]), next(packet.take(), case, i));
        match status {
            "Intermediate" => {
                packet = Some(check_forward(case, i, step, decision));
                continue;
            }
            "Reply" => {}
            other => panic!(
                "{}: unknown status `{other}` in the vector file",
                at(case, Some(i), "status")
            ),
        }
        let Decision::Reply {
            surb_id,
            mut payload,
        } = decision
        else {
            panic!(
                "{}: got {}, want Reply",
                at(case, Some(i), "status"),
                kind(&decision)
            );
        };
        let what = at(case, Some(i), "surb_id");
        assert_bytes(
            &what,
            surb_id.as_bytes(),
            &hex_field(step, "surb_id", &what),
        );
        let what = at(case, None, "surb_id");
        assert_bytes(&what, surb_id.as_bytes(), &hex_field(v, "surb_id", &what));
        let what = at(case, Some(i), "delta_prime_sha256");
        assert_bytes(
            &what,
            &sha256(payload.as_slice()),
            &hex_field(step, "delta_prime_sha256", &what),
        );

        // Open δ′ with the SURB's keys, rebuilt from the vector's inputs.
        let surb_keys = surb_keys(case, v, &keys);
        let what = at(case, Some(i), "recovered_reply");
        let body = surb_keys
            .open_reply(payload.as_mut_slice())
            .unwrap_or_else(|e| panic!("{what}: the SURB keys do not open the reply: {e}"))
            .to_vec();
        assert_bytes(&what, &body, &hex_field(step, "recovered_reply", &what));
        let what = at(case, None, "reply_frame");
        assert_bytes(&what, &body, &hex_field(v, "reply_frame", &what));
        let what = at(case, Some(i), "recovered_codec");
        let chunk: &[u8; MESSAGE_LEN] = payload[16..].try_into().unwrap();
        let codec = payload::unpad(file_format(), chunk)
            .and_then(payload::decode_mix_message)
            .map(|(codec, _)| codec)
            .unwrap_or_else(|e| panic!("{what}: the opened chunk does not decode: {e}"));
        assert_eq!(codec, str_field(step, "recovered_codec", &what), "{what}");
    }
}

/// The SURB's keys, rebuilt from the vector's ephemeral secret, id, reply key and route.
fn surb_keys(case: &str, v: &Value, secrets: &[NodeSecretKey]) -> mix_core::SurbKeys {
    let what = at(case, None, "hop_addresses_94B");
    let addresses = hex_list(v, "hop_addresses_94B", &what);
    let hops: Vec<Hop> = secrets
        .iter()
        .zip(&addresses)
        .map(|(sk, a)| Hop {
            address: Address::from_bytes(a).unwrap_or_else(|e| panic!("{what}: {e}")),
            public_key: NodePublicKey::from_bytes(*sk.public_key().as_bytes()),
        })
        .collect();
    let what = at(case, None, "delays_ms");
    let delays: Vec<Delay> = get(v, "delays_ms", &what)
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list"))
        .iter()
        .map(|d| {
            Delay::from_millis(
                d.as_u64()
                    .and_then(|d| u16::try_from(d).ok())
                    .unwrap_or_else(|| panic!("{what}: not a 16-bit delay")),
            )
        })
        .collect();
    let route = Route {
        hops: hops.try_into().unwrap_or_else(|_| panic!("{what}: 3 hops")),
        delays: [delays[0], delays[1]],
    };
    let x = array(
        hex_field(v, "ephemeral_x", &at(case, None, "ephemeral_x")),
        "ephemeral_x",
    );
    let id = SurbId::from_bytes(array(
        hex_field(v, "surb_id", &at(case, None, "surb_id")),
        "surb_id",
    ));
    let reply_key = array(
        hex_field(v, "reply_key", &at(case, None, "reply_key")),
        "reply_key",
    );
    let (_surb, keys) = Surb::create_with_fixed_randomness_for_testing_only(
        file_format(),
        &x,
        id,
        &reply_key,
        &route,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", at(case, None, "surb")));
    keys
}

// ---------------------------------------------------------------------------------------------
// A running relay.

const WAIT: Duration = Duration::from_secs(5);

/// Polls `done` until it holds or [`WAIT`] has passed; fails naming `what` and the counters.
async fn wait_for(what: &str, metrics: &Metrics, done: impl Fn(&Metrics) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(metrics) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?} (received {}, forwarded {}, replay drops {}, send failures {})",
            metrics.received_count(),
            metrics.forwarded_count(),
            metrics.dropped_count(DropReason::Replay),
            metrics.dropped_count(DropReason::SendFailed),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback relay holding the vector's hop-0 mix key.
async fn vector_relay(replay_file: Option<PathBuf>) -> RelayHandle {
    let case = "forward";
    let v = section(case);
    let keys = node_keys(case, v);
    let mut settings = Settings::local();
    settings.keys = KeySource::Given(Box::new(NodeKeys {
        identity: libp2p::identity::Keypair::generate_secp256k1(),
        mix: keys[0].clone(),
    }));
    settings.replay_file = replay_file;
    let relay = start(settings).await.expect("start the vector relay");
    let what = at(case, Some(0), "node_public_keys");
    let want = hex_list(v, "node_public_keys", &what);
    assert_bytes(&what, relay.info().mix_public.as_bytes(), &want[0]);
    relay
}

async fn send_vector_packet(sender: &RelayHandle, relay: &RelayHandle) {
    let v = section("forward");
    let packet = packet_field(v, "packet_4608B", &at("forward", None, "packet_4608B"));
    sender
        .send_frame(
            relay.peer_id(),
            relay.listen_addrs().to_vec(),
            mix_libp2p::Frame::new(packet),
        )
        .await
        .expect("send the frame");
}

/// Waits for the relay to have received `n` packets and decided on the last one: forwarded
/// (after hop 0's delay) or dropped as a replay. Then waits out hop 0's delay once more, so a
/// replay that was wrongly accepted would show as a second forward.
async fn wait_for_packet(relay: &RelayHandle, n: u64) {
    let m = relay.metrics();
    wait_for(&format!("packet {n} received"), m, |m| {
        m.received_count() >= n
    })
    .await;
    wait_for(&format!("packet {n} forwarded or dropped"), m, |m| {
        m.forwarded_count() + m.dropped_count(DropReason::Replay) >= n
    })
    .await;
    let delay = u64_field(
        &steps("forward", section("forward"))[0],
        "delay_ms",
        "delay",
    );
    tokio::time::sleep(Duration::from_millis(2 * delay + 200)).await;
}

async fn shutdown(relay: RelayHandle) {
    tokio::time::timeout(WAIT, relay.shutdown())
        .await
        .expect("relay shutdown within 5 s");
}

/// A relay with the vector's hop-0 key receives the vector packet over `/mix/1.0.0`,
/// forwards it once (towards the vector's next hop, which is not there: a send failure), and
/// drops the same packet sent again as a replay.
#[tokio::test(flavor = "multi_thread")]
async fn relay_forwards_the_vector_packet_once_and_drops_its_replay() {
    let what = at("forward", Some(0), "relay");
    let relay = vector_relay(None).await;
    let sender = start(Settings::local()).await.expect("start the sender");
    let m = relay.metrics();

    send_vector_packet(&sender, &relay).await;
    wait_for_packet(&relay, 1).await;
    assert_eq!(
        m.received_count(),
        1,
        "{what}: received after the first send"
    );
    assert_eq!(
        m.forwarded_count(),
        1,
        "{what}: forwarded after the first send"
    );
    assert_eq!(
        m.dropped_count(DropReason::Replay),
        0,
        "{what}: replay drops after the first send"
    );

    send_vector_packet(&sender, &relay).await;
    wait_for_packet(&relay, 2).await;
    assert_eq!(m.received_count(), 2, "{what}: received after the replay");
    assert_eq!(
        m.dropped_count(DropReason::Replay),
        1,
        "{what}: replay drops after the replay"
    );
    assert_eq!(m.forwarded_count(), 1, "{what}: forwarded after the replay");

    shutdown(sender).await;
    shutdown(relay).await;
}

/// The same across a restart of the relay with a replay store file: the packet forwarded
/// before the restart is a replay after it.
#[tokio::test(flavor = "multi_thread")]
async fn relay_drops_the_vector_packet_replayed_after_a_restart() {
    let what = at("forward", Some(0), "relay (restarted)");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replay.store");
    let sender = start(Settings::local()).await.expect("start the sender");

    let relay = vector_relay(Some(file.clone())).await;
    send_vector_packet(&sender, &relay).await;
    wait_for_packet(&relay, 1).await;
    assert_eq!(
        relay.metrics().forwarded_count(),
        1,
        "{what}: forwarded before the restart"
    );
    shutdown(relay).await;

    let relay = vector_relay(Some(file)).await;
    let m = relay.metrics();
    send_vector_packet(&sender, &relay).await;
    wait_for_packet(&relay, 1).await;
    assert_eq!(
        m.dropped_count(DropReason::Replay),
        1,
        "{what}: replay drops after the restart"
    );
    assert_eq!(
        m.forwarded_count(),
        0,
        "{what}: forwarded after the restart"
    );

    shutdown(sender).await;
    shutdown(relay).await;
}

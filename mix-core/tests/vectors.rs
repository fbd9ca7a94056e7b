//! Golden vectors generated from the deployed Nim implementation (MIX.md §15.3).
//!
//! Reads `$MIX_VECTORS` if set, else `../shared/spec/vectors/mix-sphinx-vectors.json` beside
//! the repository, else the copy committed under `tests/vectors/` (the copy a wasm32 build
//! embeds). Every value in the file is checked; a mismatch names the case, hop and field, and
//! all mismatches are reported together.

#![allow(
    missing_docs,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::std_instead_of_core,
    reason = "test code: a panic is a test failure"
)]

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use mix_core::hazmat;
use mix_core::params::{ADDR_LEN, HEADER_LEN, MESSAGE_LEN, SURB_LEN};
use mix_core::payload::{self, encode_forward_chunk, encode_forward_message, encode_reply_chunk};
use mix_core::*;
use serde_json::Value;

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Collects every comparison; fails once at the end with all mismatches.
struct Checker {
    checked: usize,
    failures: Vec<String>,
}

/// Where a value lives in the file, for messages: `case`, optional hop, field.
#[derive(Clone, Copy)]
struct At<'a> {
    case: &'a str,
    hop: Option<usize>,
}

impl At<'_> {
    fn name(&self, field: &str) -> String {
        match self.hop {
            Some(hop) => format!("case `{}`, hop {hop}, field `{field}`", self.case),
            None => format!("case `{}`, field `{field}`", self.case),
        }
    }
}

impl Checker {
    fn bytes(&mut self, at: At<'_>, field: &str, got: &[u8], want: &[u8]) {
        self.checked += 1;
        if got != want {
            let first = got
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            let window = |b: &[u8]| {
                let start = first.saturating_sub(4).min(b.len());
                hex::encode(&b[start..(start + 16).min(b.len())])
            };
            self.failures.push(format!(
                "{}: mismatch (lengths {} vs {}), first difference at byte {first}: got …{}…, want …{}…",
                at.name(field),
                got.len(),
                want.len(),
                window(got),
                window(want),
            ));
        }
    }

    fn hex(&mut self, at: At<'_>, field: &str, got: &[u8], want: &Value) {
        match want.as_str().map(hex::decode) {
            Some(Ok(want)) => self.bytes(at, field, got, &want),
            _ => self.schema(at, field),
        }
    }

    fn value<T: PartialEq + std::fmt::Debug>(&mut self, at: At<'_>, field: &str, got: T, want: T) {
        self.checked += 1;
        if got != want {
            self.failures
                .push(format!("{}: got {got:?}, want {want:?}", at.name(field)));
        }
    }

    fn fail(&mut self, at: At<'_>, field: &str, what: impl std::fmt::Display) {
        self.checked += 1;
        self.failures.push(format!("{}: {what}", at.name(field)));
    }

    fn schema(&mut self, at: At<'_>, field: &str) {
        self.failures
            .push(format!("{}: missing or not a hex string", at.name(field)));
    }
}

fn field<'v>(c: &mut Checker, at: At<'_>, v: &'v Value, name: &str) -> Option<&'v Value> {
    let found = v.get(name);
    if found.is_none() {
        c.failures.push(format!("{}: missing", at.name(name)));
    }
    found
}

fn hex_field<const N: usize>(
    c: &mut Checker,
    at: At<'_>,
    v: &Value,
    name: &str,
) -> Option<[u8; N]> {
    let bytes = hex_vec(c, at, v, name)?;
    match bytes.try_into() {
        Ok(array) => Some(array),
        Err(bytes) => {
            c.failures.push(format!(
                "{}: {} bytes, expected {N}",
                at.name(name),
                Vec::len(&bytes)
            ));
            None
        }
    }
}

fn hex_vec(c: &mut Checker, at: At<'_>, v: &Value, name: &str) -> Option<Vec<u8>> {
    let s = field(c, at, v, name)?;
    match s.as_str().map(hex::decode) {
        Some(Ok(bytes)) => Some(bytes),
        _ => {
            c.schema(at, name);
            None
        }
    }
}

fn hex_list<const N: usize>(
    c: &mut Checker,
    at: At<'_>,
    v: &Value,
    name: &str,
) -> Option<Vec<[u8; N]>> {
    let list = field(c, at, v, name)?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let wrapped = serde_json::json!({ "item": item });
        out.push(hex_field::<N>(c, at, &wrapped, "item").or_else(|| {
            c.failures
                .push(format!("{}[{i}]: bad entry", at.name(name)));
            None
        })?);
    }
    Some(out)
}

fn primitives(c: &mut Checker, v: &Value) {
    let at = At {
        case: "primitives",
        hop: None,
    };
    if let Some(b) = v.get("x25519_base")
        && let (Some(scalar), Some(public)) = (hex_field::<32>(c, at, b, "scalar"), b.get("public"))
    {
        c.hex(
            at,
            "x25519_base.public",
            NodeSecretKey::from_bytes(scalar).public_key().as_bytes(),
            public,
        );
    }
    if let Some(m) = v.get("x25519_mul")
        && let (Some(point), Some(scalar)) = (
            hex_field::<32>(c, at, m, "point"),
            hex_field::<32>(c, at, m, "scalar"),
        )
    {
        c.hex(
            at,
            "x25519_mul.result",
            &hazmat::x25519(&scalar, &point),
            &m["result"],
        );
        // The same product through a hop's shared-secret step (Edwards path).
        let mut packet = vec![0u8; PACKET_LEN];
        packet[..32].copy_from_slice(&point);
        match NodeSecretKey::from_bytes(scalar).hop_secrets(&packet) {
            Ok(s) => c.hex(
                at,
                "x25519_mul.result (hop step)",
                s.shared_secret().as_bytes(),
                &m["result"],
            ),
            Err(e) => c.fail(at, "x25519_mul.result (hop step)", e),
        }
    }
    if let Some(k) = v.get("kdf_labels_example")
        && let Some(s) = hex_field::<32>(c, at, k, "s")
    {
        keys(
            c,
            at,
            &HopKeys::derive(&SharedSecret::from_bytes(s)),
            &k["derived"],
        );
    }
    if let Some(a) = v.get("aes_ctr_example")
        && let (Some(key), Some(iv)) = (
            hex_field::<16>(c, at, a, "key"),
            hex_field::<16>(c, at, a, "iv"),
        )
    {
        let mut buf = [0u8; 48];
        hazmat::aes128_ctr(key, iv, 0, &mut buf);
        c.hex(
            at,
            "aes_ctr_example.zeros48_keystream",
            &buf,
            &a["zeros48_keystream"],
        );
        let mut buf = [0u8; 16];
        hazmat::aes128_ctr(key, iv, 2, &mut buf);
        c.hex(
            at,
            "aes_ctr_example.start_index_32_of_16",
            &buf,
            &a["start_index_32_of_16"],
        );
    }
}

fn keys(c: &mut Checker, at: At<'_>, got: &HopKeys, want: &Value) {
    c.hex(at, "keys.aes_key", got.aes_key(), &want["aes_key"]);
    c.hex(at, "keys.mac_key", got.mac_key(), &want["mac_key"]);
    c.hex(at, "keys.iv", got.iv(), &want["iv"]);
    c.hex(
        at,
        "keys.delta_aes_key",
        got.delta_aes_key(),
        &want["delta_aes_key"],
    );
    c.hex(at, "keys.delta_iv", got.delta_iv(), &want["delta_iv"]);
}

/// Node keys, addresses and delays of a case, as a route.
struct CaseRoute {
    secret_keys: Vec<NodeSecretKey>,
    route: Route,
}

fn case_route(c: &mut Checker, at: At<'_>, v: &Value) -> Option<CaseRoute> {
    let privs = hex_list::<32>(c, at, v, "node_private_keys")?;
    let pubs = hex_list::<32>(c, at, v, "node_public_keys")?;
    let addrs = hex_list::<ADDR_LEN>(c, at, v, "hop_addresses_94B")?;
    let delays: Vec<u64> = field(c, at, v, "delays_ms")?
        .as_array()?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    if privs.len() != PATH_LEN
        || pubs.len() != PATH_LEN
        || addrs.len() != PATH_LEN
        || delays.len() != PATH_LEN
    {
        c.fail(
            at,
            "node_private_keys/node_public_keys/hop_addresses_94B/delays_ms",
            format!("need {PATH_LEN} entries each"),
        );
        return None;
    }
    if delays[PATH_LEN - 1] != 0 {
        c.fail(
            at,
            "delays_ms",
            "the exit's delay must be 0 (Nim recognises the exit by it)",
        );
    }
    let secret_keys: Vec<_> = privs.into_iter().map(NodeSecretKey::from_bytes).collect();
    let mut hops = Vec::new();
    for (i, (sk, (public, addr))) in secret_keys.iter().zip(pubs.iter().zip(&addrs)).enumerate() {
        let at = At { hop: Some(i), ..at };
        c.bytes(at, "node_public_keys", sk.public_key().as_bytes(), public);
        let address = match Address::from_bytes(addr) {
            Ok(a) => a,
            Err(e) => {
                c.fail(at, "hop_addresses_94B", format!("does not decode: {e}"));
                return None;
            }
        };
        c.bytes(
            at,
            "hop_addresses_94B (re-encoded)",
            &address.to_bytes(),
            addr,
        );
        hops.push(Hop {
            address,
            public_key: NodePublicKey::from_bytes(*public),
        });
    }
    let delay = |ms: u64| Delay::from_millis(u16::try_from(ms).unwrap_or(u16::MAX));
    Some(CaseRoute {
        secret_keys,
        route: Route {
            hops: hops.try_into().ok()?,
            delays: [delay(delays[0]), delay(delays[1])],
        },
    })
}

/// The checks of an intermediate hop's step: status, next hop, delay, outgoing packet.
fn intermediate(
    c: &mut Checker,
    at: At<'_>,
    step: &Value,
    next_hop: &Address,
    delay: Delay,
    packet: &[u8],
) {
    let status = step["status"].as_str().unwrap_or_default();
    c.value(at, "status", "Intermediate", status);
    c.hex(
        at,
        "next_hop_94B",
        &next_hop.to_bytes(),
        &step["next_hop_94B"],
    );
    c.value(
        at,
        "delay_ms",
        Some(u64::from(delay.as_millis())),
        step["delay_ms"].as_u64(),
    );
    c.hex(at, "packet_out_4608B", packet, &step["packet_out_4608B"]);
}

/// A case's `processing` list, checked to have one step per hop.
fn steps(c: &mut Checker, at: At<'_>, v: &Value) -> Vec<Value> {
    let steps = field(c, at, v, "processing")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    c.value(at, "processing (number of hops)", steps.len(), PATH_LEN);
    steps
}

fn forward(c: &mut Checker, case: &str, v: &Value, exit_is_dest: Option<&Value>) {
    let at = At { case, hop: None };
    let Some(CaseRoute { secret_keys, route }) = case_route(c, at, v) else {
        return;
    };
    let (Some(dest), Some(x), Some(app)) = (
        hex_vec(c, at, v, "destination_94B"),
        hex_field::<32>(c, at, v, "ephemeral_x"),
        hex_vec(c, at, v, "app_frame"),
    ) else {
        return;
    };
    let destination = match Address::decode_optional(&dest) {
        Ok(d) => d,
        Err(e) => return c.fail(at, "destination_94B", format!("does not decode: {e}")),
    };
    c.bytes(
        at,
        "destination_94B (re-encoded)",
        &Address::encode_optional(destination.as_ref()),
        &dest,
    );
    let Some(codec) = field(c, at, v, "codec").and_then(Value::as_str) else {
        return;
    };
    let Some(padded) = hex_vec(c, at, v, "padded_message_3968B") else {
        return;
    };
    // The trailer is an input (the vectors fix it); it is the chunk's last 4 bytes.
    let seq_no: [u8; 4] = padded[padded.len().saturating_sub(4)..]
        .try_into()
        .unwrap_or_default();
    if let Some(s) = v.get("seqNo").and_then(Value::as_str) {
        let n = u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_default();
        c.value(
            at,
            "seqNo (trailer of padded_message_3968B)",
            n.to_be_bytes(),
            seq_no,
        );
    }

    let mut message = vec![0u8; MESSAGE_LEN];
    match encode_forward_message(codec, &[], &app, &mut message) {
        Ok(n) => c.hex(
            at,
            "mix_message_serialized",
            &message[..n],
            &v["mix_message_serialized"],
        ),
        Err(e) => c.fail(at, "mix_message_serialized", e),
    }
    let mut chunk = [0u8; MESSAGE_LEN];
    match encode_forward_chunk(codec, &[], &app, seq_no, &mut chunk) {
        Ok(()) => c.bytes(at, "padded_message_3968B", &chunk, &padded),
        Err(e) => c.fail(at, "padded_message_3968B", e),
    }

    let build = |destination: Option<&Address>| {
        let mut packet = vec![0u8; PACKET_LEN];
        let builder = PacketBuilder::new(&route);
        let builder = match destination {
            Some(d) => builder.destination(d),
            None => builder,
        };
        builder
            .build_with_fixed_randomness_for_testing_only(&x, seq_no, codec, &app, &mut packet)
            .map(|_| packet)
    };
    let packet = match build(destination.as_ref()) {
        Ok(p) => p,
        Err(e) => return c.fail(at, "packet_4608B", e),
    };
    c.hex(at, "packet_4608B", &packet, &v["packet_4608B"]);
    if let Some(e) = exit_is_dest {
        let at = At {
            case: "forward_exit_is_dest",
            hop: None,
        };
        match build(None) {
            Ok(p) => c.hex(at, "packet_4608B", &p, &e["packet_4608B"]),
            Err(err) => c.fail(at, "packet_4608B", err),
        }
    }

    // Process the *vector's* packet hop by hop, so a build bug cannot mask a peel bug.
    let Some(mut current) = hex_vec(c, at, v, "packet_4608B") else {
        return;
    };
    let original = current.clone();
    let mut filters: Vec<_> = (0..PATH_LEN)
        .map(|_| MemoryReplayFilter::new(ReplayConfig::default()))
        .collect();
    let steps = steps(c, at, v);
    for (i, step) in steps.iter().enumerate().take(PATH_LEN) {
        let at = At { case, hop: Some(i) };
        c.value(at, "hop", step["hop"].as_u64(), Some(i as u64));
        c.hex(at, "alpha_in", &current[..32], &step["alpha_in"]);
        let secrets = match secret_keys[i].hop_secrets(&current) {
            Ok(s) => s,
            Err(e) => return c.fail(at, "shared_secret", e),
        };
        c.hex(
            at,
            "shared_secret",
            secrets.shared_secret().as_bytes(),
            &step["shared_secret"],
        );
        c.hex(
            at,
            "replay_tag_sha256_alpha_s",
            secrets.replay_tag().as_bytes(),
            &step["replay_tag_sha256_alpha_s"],
        );
        c.hex(
            at,
            "blinder_sha256_alpha_s",
            secrets.replay_tag().as_bytes(),
            &step["blinder_sha256_alpha_s"],
        );
        keys(c, at, secrets.keys(), &step["keys"]);
        let verified = match secrets.verify_mac(&current) {
            Ok(v) => v,
            Err(e) => return c.fail(at, "status", format!("γ rejected: {e}")),
        };
        if let Err(e) = filters[i].check_and_insert(verified.replay_tag(), 0) {
            return c.fail(at, "status", format!("replay filter: {e}"));
        }
        let status = step["status"].as_str().unwrap_or_default();
        match verified.peel_in_place(&mut current) {
            Ok(Action::Forward {
                next_hop,
                delay,
                packet,
            }) => intermediate(c, at, step, &next_hop, delay, packet),
            Ok(Action::Exit {
                destination,
                message,
            }) => {
                c.value(at, "status", "Exit", status);
                c.hex(
                    at,
                    "destination_94B",
                    &Address::encode_optional(destination.as_ref()),
                    &step["destination_94B"],
                );
                match message {
                    ExitMessage::Request { codec, surbs, body } => {
                        c.value(at, "codec", Some(codec), step["codec"].as_str());
                        let mut after_codec = vec![u8::try_from(surbs.len()).unwrap()];
                        for surb in surbs.iter() {
                            after_codec.extend_from_slice(&surb.to_bytes());
                        }
                        after_codec.extend_from_slice(body);
                        c.hex(
                            at,
                            "message_after_codec",
                            &after_codec,
                            &step["message_after_codec"],
                        );
                    }
                    ExitMessage::Cover => c.fail(at, "codec", "decoded as cover traffic"),
                }
                c.hex(
                    at,
                    "message_chunk_3968B_sha256",
                    &sha256(&current[HEADER_LEN + 16..]),
                    &step["message_chunk_3968B_sha256"],
                );
            }
            Ok(other) => c.fail(at, "status", format!("got {other:?}, want {status}")),
            Err(e) => c.fail(at, "status", format!("got error {e}, want {status}")),
        }
    }
    if let Some(want) = v
        .get("replay_of_first_packet_at_hop0")
        .and_then(Value::as_str)
    {
        let at = At { case, hop: Some(0) };
        let mut again = original;
        let got = match peel(&secret_keys[0], &mut filters[0], 1, &mut again) {
            Err(PeelError::Replay(ReplayError::Replayed)) => "Duplicate".to_owned(),
            Ok(a) => format!("{a:?}"),
            Err(e) => format!("{e}"),
        };
        c.value(at, "replay_of_first_packet_at_hop0", got.as_str(), want);
    }
}

fn surb_case(c: &mut Checker, case: &str, v: &Value) {
    let at = At { case, hop: None };
    let Some(CaseRoute { secret_keys, route }) = case_route(c, at, v) else {
        return;
    };
    let (Some(x), Some(id), Some(reply_key), Some(reply_frame), Some(padded)) = (
        hex_field::<32>(c, at, v, "ephemeral_x"),
        hex_field::<16>(c, at, v, "surb_id"),
        hex_field::<16>(c, at, v, "reply_key"),
        hex_vec(c, at, v, "reply_frame"),
        hex_vec(c, at, v, "reply_padded_message_3968B"),
    ) else {
        return;
    };
    let (surb, surb_keys) = match Surb::create_with_fixed_randomness_for_testing_only(
        &x,
        SurbId::from_bytes(id),
        &reply_key,
        &route,
    ) {
        Ok(pair) => pair,
        Err(e) => return c.fail(at, "surb", e),
    };
    if let Some(want) = hex_list::<32>(c, at, v, "secrets_s0_s1_s2") {
        for (i, (got, want)) in surb_keys.shared_secrets().iter().zip(&want).enumerate() {
            c.bytes(
                At { hop: Some(i), ..at },
                "secrets_s0_s1_s2",
                got.as_bytes(),
                want,
            );
        }
    }
    // `count ‖ SURB ‖ application bytes` as carried in the forward payload.
    let name = "surb_serialized_in_payload_1+734+2B";
    if let Some(want) = hex_vec(c, at, v, name) {
        let app = want.get(1 + SURB_LEN..).unwrap_or_default();
        let mut out = vec![0u8; MESSAGE_LEN];
        match encode_forward_message("", std::slice::from_ref(&surb), app, &mut out) {
            Ok(n) => c.bytes(at, name, &out[1..n], &want),
            Err(e) => c.fail(at, name, e),
        }
        match Surb::from_bytes(&want[1..1 + SURB_LEN.min(want.len() - 1)]) {
            Ok(decoded) => c.value(at, "surb (decoded from payload)", decoded == surb, true),
            Err(e) => c.fail(at, "surb (decoded from payload)", e),
        }
    }
    let seq_no: [u8; 4] = padded[padded.len().saturating_sub(4)..]
        .try_into()
        .unwrap_or_default();
    let mut chunk = [0u8; MESSAGE_LEN];
    match encode_reply_chunk(&reply_frame, seq_no, &mut chunk) {
        Ok(()) => c.bytes(at, "reply_padded_message_3968B", &chunk, &padded),
        Err(e) => c.fail(at, "reply_padded_message_3968B", e),
    }
    let mut reply = vec![0u8; PACKET_LEN];
    match surb.build_reply_with_fixed_randomness_for_testing_only(seq_no, &reply_frame, &mut reply)
    {
        Ok(_) => c.hex(at, "reply_packet_4608B", &reply, &v["reply_packet_4608B"]),
        Err(e) => c.fail(at, "reply_packet_4608B", e),
    }

    let Some(mut current) = hex_vec(c, at, v, "reply_packet_4608B") else {
        return;
    };
    let steps = steps(c, at, v);
    let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
    for (i, step) in steps.iter().enumerate().take(PATH_LEN) {
        let at = At { case, hop: Some(i) };
        c.value(at, "hop", step["hop"].as_u64(), Some(i as u64));
        let status = step["status"].as_str().unwrap_or_default();
        match peel(&secret_keys[i], &mut filter, 0, &mut current) {
            Ok(Action::Forward {
                next_hop,
                delay,
                packet,
            }) => intermediate(c, at, step, &next_hop, delay, packet),
            Ok(Action::Reply { surb_id, payload }) => {
                c.value(at, "status", "Reply", status);
                c.hex(at, "surb_id", surb_id.as_bytes(), &step["surb_id"]);
                c.value(at, "surb_id (matches the keys)", surb_id, surb_keys.id());
                c.hex(
                    at,
                    "delta_prime_sha256",
                    &sha256(payload.as_slice()),
                    &step["delta_prime_sha256"],
                );
                match surb_keys.open_reply(payload) {
                    Ok(body) => c.hex(at, "recovered_reply", body, &step["recovered_reply"]),
                    Err(e) => c.fail(at, "recovered_reply", e),
                }
                // `open_reply` decrypted in place: decode the codec from the opened chunk.
                let chunk: &[u8; MESSAGE_LEN] = payload[16..].try_into().unwrap();
                let codec = payload::unpad(chunk)
                    .and_then(payload::decode_mix_message)
                    .map(|(codec, _)| codec);
                c.value(
                    at,
                    "recovered_codec",
                    codec.ok(),
                    step["recovered_codec"].as_str(),
                );
            }
            Ok(other) => c.fail(at, "status", format!("got {other:?}, want {status}")),
            Err(e) => c.fail(at, "status", format!("got error {e}, want {status}")),
        }
    }
}

fn check_file(json: &str, source: &str) {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{source}: not JSON: {e}"));
    let mut c = Checker {
        checked: 0,
        failures: Vec::new(),
    };
    if let Some(params) = v.get("params") {
        let at = At {
            case: "params",
            hop: None,
        };
        for (name, ours) in [
            ("k", 16),
            ("r", 5),
            ("t", 6),
            ("L", PATH_LEN),
            ("AlphaSize", 32),
            ("BetaSize", 576),
            ("GammaSize", 16),
            ("HeaderSize", HEADER_LEN),
            ("AddrSize", ADDR_LEN),
            ("PacketSize", PACKET_LEN),
            ("PayloadSize", PAYLOAD_LEN),
            ("MessageSize", MESSAGE_LEN),
            ("DataSize", params::DATA_LEN),
            ("SurbSize", SURB_LEN),
        ] {
            c.value(
                at,
                name,
                params.get(name).and_then(Value::as_u64),
                Some(ours as u64),
            );
        }
    }
    primitives(&mut c, &v);
    let mut cases = 0;
    if let Some(f) = v.get("forward") {
        forward(&mut c, "forward", f, v.get("forward_exit_is_dest"));
        cases += 1;
        for (i, extra) in f
            .get("additional_cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            forward(
                &mut c,
                &format!("forward.additional_cases[{i}]"),
                extra,
                None,
            );
            cases += 1;
        }
    }
    if let Some(s) = v.get("surb") {
        surb_case(&mut c, "surb", s);
        cases += 1;
        for (i, extra) in s
            .get("additional_cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            surb_case(&mut c, &format!("surb.additional_cases[{i}]"), extra);
            cases += 1;
        }
    }
    assert!(
        cases > 0,
        "{source}: no `forward` or `surb` case in the file"
    );
    assert!(
        c.failures.is_empty(),
        "{source}: {} of {} checks failed:\n  {}",
        c.failures.len(),
        c.checked,
        c.failures.join("\n  ")
    );
    println!("{source}: {} values of {cases} cases reproduced", c.checked);
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;

    fn committed_copy() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/mix-sphinx-vectors.json")
    }

    fn shared_copy() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/spec/vectors/mix-sphinx-vectors.json")
    }

    #[test]
    fn every_golden_vector_is_reproduced() {
        let path = match std::env::var_os("MIX_VECTORS") {
            Some(p) => PathBuf::from(p),
            None if shared_copy().exists() => shared_copy(),
            None => committed_copy(),
        };
        let json = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        super::check_file(&json, &path.display().to_string());
    }

    /// The committed copy (what wasm32 embeds) must not drift from the shared spec.
    #[test]
    fn the_committed_copy_equals_the_shared_vectors() {
        if let Ok(shared) = std::fs::read(shared_copy()) {
            assert!(
                std::fs::read(committed_copy()).unwrap() == shared,
                "tests/vectors/mix-sphinx-vectors.json differs from ../shared/spec/vectors"
            );
        }
    }
}

#[cfg(target_arch = "wasm32")]
#[test]
fn every_golden_vector_is_reproduced_on_wasm32() {
    check_file(
        include_str!("vectors/mix-sphinx-vectors.json"),
        "embedded mix-sphinx-vectors.json",
    );
}

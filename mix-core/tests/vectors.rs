//! Golden vectors generated from the Nim implementation (MIX.md §15.3, MIX-LIONESS.md §9).
//!
//! One test binary checks either format: the file's `format` field says which
//! (`"lioness-lip183"` → [`Format::Lip183`], absent → [`Format::V039`]).
//!
//! Reads `$MIX_VECTORS` if set; otherwise checks **both** known files,
//! `mix-sphinx-vectors.json` (v0.39) and `mix-sphinx-vectors-lioness.json` (LIP-183), each from
//! `../shared/spec/vectors/` beside the repository if present, else from the copy committed
//! under `tests/vectors/` (the copies a wasm32 build embeds). Every value in a file is checked;
//! a mismatch names the case, hop and field, and all mismatches are reported together.

#![allow(
    missing_docs,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::std_instead_of_core,
    clippy::cast_possible_truncation,
    reason = "test code: a panic is a test failure; offsets and masks in the file are small"
)]

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use mix_core::hazmat;
use mix_core::hazmat::Lioness;
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
    format: Format,
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
        let derived = HopKeys::derive(&SharedSecret::from_bytes(s));
        keys(c, at, &derived, &k["derived"]);
        lioness_seed(
            c,
            at,
            derived.payload_enc_key(),
            k,
            "payload_enc_key_32B",
            "lioness_round_keys",
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

/// A LIONESS seed and its round keys, where the file has them.
fn lioness_seed(c: &mut Checker, at: At<'_>, pek: &[u8; 32], v: &Value, seed: &str, rounds: &str) {
    if let Some(want) = v.get(seed) {
        c.hex(at, seed, pek, want);
    }
    if let Some(want) = v.get(rounds).and_then(Value::as_array) {
        let got = Lioness::new(pek).unwrap();
        c.value(at, &format!("{rounds} (count)"), want.len(), 4);
        for (i, (got, want)) in got.round_keys().iter().zip(want).enumerate() {
            c.hex(at, &format!("{rounds}[{i}]"), got, want);
        }
    }
}

/// `lioness_kats` (MIX-LIONESS.md §1).
fn lioness_kats(c: &mut Checker, v: &Value) {
    let at = At {
        case: "lioness_kats",
        hop: None,
    };
    let get = |c: &mut Checker, section: &str, name: &str| {
        let at = At {
            case: "lioness_kats",
            hop: None,
        };
        v.get(section)
            .and_then(|s| hex_vec(c, at, s, name))
            .unwrap_or_default()
    };
    // S: AES-128-CTR keyed by k[0..16) from the counter block k[16..32).
    let key = get(c, "aes_ctr_stream", "key");
    let mut data = get(c, "aes_ctr_stream", "data");
    if let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) {
        let (k, iv) = key.split_at(16);
        hazmat::aes128_ctr(k.try_into().unwrap(), iv.try_into().unwrap(), 0, &mut data);
        c.hex(at, "aes_ctr_stream.out", &data, &v["aes_ctr_stream"]["out"]);
    }
    let key = get(c, "sha256_keyed_hash", "key");
    let msg = get(c, "sha256_keyed_hash", "msg");
    c.hex(
        at,
        "sha256_keyed_hash.out",
        &sha256(&[key, msg].concat()),
        &v["sha256_keyed_hash"]["out"],
    );
    if let Some(kdf) = v.get("sha256_domsep_kdf") {
        c.value(
            at,
            "sha256_domsep_kdf.dom",
            kdf["dom"].as_str(),
            Some("payload_enc_key"),
        );
        // The per-hop seed, through the hop's own key derivation.
        let seed = get(c, "sha256_domsep_kdf", "seed");
        match <[u8; 32]>::try_from(seed.as_slice()) {
            Ok(s) => c.hex(
                at,
                "sha256_domsep_kdf.out",
                HopKeys::derive(&SharedSecret::from_bytes(s)).payload_enc_key(),
                &kdf["out"],
            ),
            Err(_) => c.schema(at, "sha256_domsep_kdf.seed"),
        }
    }
    let seed = get(c, "round_keys", "seed");
    match Lioness::new(&seed) {
        Some(l) => {
            let want = v["round_keys"]["k1_k2_k3_k4"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            c.value(at, "round_keys (count)", want.len(), 4);
            for (i, (got, want)) in l.round_keys().iter().zip(&want).enumerate() {
                c.hex(at, &format!("round_keys.k1_k2_k3_k4[{i}]"), got, want);
            }
        }
        None => c.fail(at, "round_keys.seed", "refused"),
    }
    for name in [
        "encrypt_64",
        "encrypt_512",
        "encrypt_seed16_100",
        "encrypt_payload_3984",
        "tamper_256",
    ] {
        if v.get(name).is_none() {
            c.fail(at, name, "missing");
            continue;
        }
        let seed = get(c, name, "seed");
        let plain = get(c, name, "plaintext");
        let Some(l) = Lioness::new(&seed) else {
            c.fail(at, &format!("{name}.seed"), "refused");
            continue;
        };
        let mut block = plain.clone();
        if l.encrypt(&mut block).is_none() {
            c.fail(at, &format!("{name}.plaintext"), "block refused");
            continue;
        }
        c.hex(
            at,
            &format!("{name}.ciphertext"),
            &block,
            &v[name]["ciphertext"],
        );
        let mut back = block.clone();
        l.decrypt(&mut back).unwrap();
        c.bytes(at, &format!("{name} (decrypts back)"), &back, &plain);
        if name == "encrypt_payload_3984" {
            let kdf = &v["kdf_labels_example"];
            let _ = kdf;
            c.value(
                at,
                "encrypt_payload_3984.seed_is",
                v[name]["seed_is"].as_str(),
                Some("kdf_labels_example.payload_enc_key_32B"),
            );
        }
        if name == "tamper_256" {
            let offset = v[name]["flip_offset"].as_u64().unwrap_or(0) as usize;
            let mask = v[name]["flip_mask"].as_u64().unwrap_or(0) as u8;
            block[offset] ^= mask;
            l.decrypt(&mut block).unwrap();
            c.hex(
                at,
                "tamper_256.decrypted_after_flip",
                &block,
                &v[name]["decrypted_after_flip"],
            );
            c.value(
                at,
                "tamper_256 (prefix garbled)",
                block[..16] != [0u8; 16],
                true,
            );
        }
    }
}

/// The wording of Nim's errors for each of ours.
fn nim_error(e: PeelError) -> String {
    match e {
        PeelError::AlphaZero => "Invalid alpha: Field element must not be all zero".into(),
        PeelError::AlphaNonCanonical => "Invalid alpha: Field element must be canonical".into(),
        PeelError::AlphaLowOrder => "Invalid alpha: low-order shared secret".into(),
        PeelError::PayloadIntegrity => "payload integrity check failed".into(),
        PeelError::Rejected => "InvalidMAC".into(),
        PeelError::Replay(ReplayError::Replayed) => "Duplicate".into(),
        other => format!("{other}"),
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

/// The chunk trailer of a padded message: the v0.39 seqNo (an input the vectors fix), or
/// nothing in LIP-183. Also checks the file's `seqNo`-style field (null in LIP-183).
fn trailer(c: &mut Checker, at: At<'_>, v: &Value, padded: &[u8], seq_field: &str) -> [u8; 4] {
    match c.format {
        Format::Lip183 => {
            if let Some(seq) = v.get(seq_field) {
                c.value(at, seq_field, seq.is_null(), true);
            }
            [0; 4]
        }
        Format::V039 => {
            let seq_no: [u8; 4] = padded[padded.len().saturating_sub(4)..]
                .try_into()
                .unwrap_or_default();
            if let Some(s) = v.get(seq_field).and_then(Value::as_str) {
                let n = u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_default();
                c.value(
                    at,
                    &format!("{seq_field} (trailer of the padded message)"),
                    n.to_be_bytes(),
                    seq_no,
                );
            }
            seq_no
        }
    }
}

/// Per-hop intermediates a step may carry: α, s, tags, blinder, keys, LIONESS seed.
fn hop_details(c: &mut Checker, at: At<'_>, step: &Value, secrets: &HopSecrets, alpha: &[u8]) {
    if let Some(want) = step.get("alpha_in") {
        c.hex(at, "alpha_in", alpha, want);
    }
    if let Some(want) = step.get("shared_secret") {
        c.hex(
            at,
            "shared_secret",
            secrets.shared_secret().as_bytes(),
            want,
        );
    }
    // The tag that decides acceptance, and SHA-256(α ‖ s) under its literal name.
    let (tag_field, other) = match c.format {
        Format::Lip183 => ("replay_tag_sha256_s", Some("replay_tag_sha256_alpha_s")),
        Format::V039 => ("replay_tag_sha256_alpha_s", None),
    };
    if let Some(want) = step.get(tag_field) {
        c.hex(at, tag_field, secrets.replay_tag().as_bytes(), want);
    } else if step.get("shared_secret").is_some() {
        c.fail(at, tag_field, "missing");
    }
    if let Some(other) = other
        && let Some(want) = step.get(other)
    {
        c.hex(at, other, secrets.blinding_factor(), want);
    }
    if let Some(want) = step.get("blinder_sha256_alpha_s") {
        c.hex(
            at,
            "blinder_sha256_alpha_s",
            secrets.blinding_factor(),
            want,
        );
    }
    if let Some(want) = step.get("keys") {
        keys(c, at, secrets.keys(), want);
    }
    lioness_seed(
        c,
        at,
        secrets.keys().payload_enc_key(),
        step,
        "payload_enc_key",
        "lioness_round_keys",
    );
}

/// What the exit step of a forward case may check beyond status and destination.
fn exit_message(c: &mut Checker, at: At<'_>, step: &Value, message: &ExitMessage<'_>) {
    match message {
        ExitMessage::Request { codec, surbs, body } => {
            if let Some(want) = step.get("codec") {
                c.value(at, "codec", Some(*codec), want.as_str());
            }
            c.value(at, "surbs.format", surbs.format(), c.format);
            if let Some(want) = step.get("message_after_codec") {
                let mut after_codec = vec![u8::try_from(surbs.len()).unwrap()];
                for surb in surbs.iter() {
                    after_codec.extend_from_slice(&surb.to_bytes());
                }
                after_codec.extend_from_slice(body);
                c.hex(at, "message_after_codec", &after_codec, want);
            }
            if let Some(want) = step.get("surb_count") {
                c.value(at, "surb_count", Some(surbs.len() as u64), want.as_u64());
            }
            if let Some(want) = step.get("app_frame_after_surbs_sha256") {
                c.hex(at, "app_frame_after_surbs_sha256", &sha256(body), want);
            }
        }
        other => c.fail(at, "codec", format!("decoded as {other:?}")),
    }
}

/// Processes `packet` hop by hop with the split steps, checking every step of `steps`.
/// Returns the filters (one per hop) holding the recorded tags.
fn process_hops(
    c: &mut Checker,
    case: &str,
    secret_keys: &[NodeSecretKey],
    packet: &[u8],
    steps: &[Value],
) -> Vec<MemoryReplayFilter> {
    let mut current = packet.to_vec();
    let mut filters: Vec<_> = (0..PATH_LEN)
        .map(|_| MemoryReplayFilter::new(ReplayConfig::default()))
        .collect();
    for (i, step) in steps.iter().enumerate().take(PATH_LEN) {
        let at = At { case, hop: Some(i) };
        c.value(at, "hop", step["hop"].as_u64(), Some(i as u64));
        let status = step["status"].as_str().unwrap_or_default();
        let secrets = match secret_keys[i].hop_secrets_with(c.format, &current) {
            Ok(s) => s,
            Err(e) => return filters.tap_fail(c, at, e),
        };
        hop_details(c, at, step, &secrets, &current[..32]);
        let verified = match secrets.verify_mac(&current) {
            Ok(v) => v,
            Err(e) => return filters.tap_fail(c, at, e),
        };
        c.value(
            at,
            "format (of the verified hop)",
            verified.format(),
            c.format,
        );
        if let Err(e) = filters[i].check_and_insert(verified.replay_tag(), 0) {
            return filters.tap_fail(c, at, PeelError::Replay(e));
        }
        match verified.peel_in_place(&mut current) {
            Ok(Action::Forward {
                next_hop,
                delay,
                packet,
            }) => {
                c.value(at, "status", "Intermediate", status);
                if step.get("next_hop_94B").is_some() {
                    intermediate(c, at, step, &next_hop, delay, packet);
                }
                if let Some(want) = step.get("packet_out_4608B_sha256") {
                    c.hex(at, "packet_out_4608B_sha256", &sha256(packet), want);
                }
            }
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
                exit_message(c, at, step, &message);
                c.hex(
                    at,
                    "message_chunk_3968B_sha256",
                    &sha256(&current[HEADER_LEN + 16..]),
                    &step["message_chunk_3968B_sha256"],
                );
            }
            Ok(other) => c.fail(at, "status", format!("got {other:?}, want {status}")),
            Err(e) => {
                c.value(at, "status", "Error", status);
                c.value(
                    at,
                    "error",
                    Some(nim_error(e).as_str()),
                    step["error"].as_str(),
                );
                // δ' stays in the buffer: the exit decrypted it before checking the prefix.
                if let Some(want) = step.get("delta_prime_prefix16") {
                    c.hex(
                        at,
                        "delta_prime_prefix16",
                        &current[HEADER_LEN..HEADER_LEN + 16],
                        want,
                    );
                }
                if let Some(want) = step.get("delta_prime_3984B_sha256") {
                    c.hex(
                        at,
                        "delta_prime_3984B_sha256",
                        &sha256(&current[HEADER_LEN..]),
                        want,
                    );
                }
            }
        }
    }
    filters
}

trait TapFail {
    fn tap_fail(self, c: &mut Checker, at: At<'_>, e: PeelError) -> Self;
}

impl TapFail for Vec<MemoryReplayFilter> {
    fn tap_fail(self, c: &mut Checker, at: At<'_>, e: PeelError) -> Self {
        c.fail(at, "status", format!("got error {e}"));
        self
    }
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
    let format = c.format;
    let seq_no = trailer(c, at, v, &padded, "seqNo");

    let mut message = vec![0u8; MESSAGE_LEN];
    match encode_forward_message(format, codec, &[], &app, &mut message) {
        Ok(n) => c.hex(
            at,
            "mix_message_serialized",
            &message[..n],
            &v["mix_message_serialized"],
        ),
        Err(e) => c.fail(at, "mix_message_serialized", e),
    }
    let mut chunk = [0u8; MESSAGE_LEN];
    match encode_forward_chunk(format, codec, &[], &app, seq_no, &mut chunk) {
        Ok(()) => c.bytes(at, "padded_message_3968B", &chunk, &padded),
        Err(e) => c.fail(at, "padded_message_3968B", e),
    }

    let build = |destination: Option<&Address>| {
        let mut packet = vec![0u8; PACKET_LEN];
        let builder = PacketBuilder::new(&route).format(format);
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
        let case = "forward_exit_is_dest";
        let at = At { case, hop: None };
        match build(None) {
            Ok(p) => c.hex(at, "packet_4608B", &p, &e["packet_4608B"]),
            Err(err) => c.fail(at, "packet_4608B", err),
        }
        if e.get("processing").is_some()
            && let Some(packet) = hex_vec(c, at, e, "packet_4608B")
        {
            let steps = steps(c, at, e);
            process_hops(c, case, &secret_keys, &packet, &steps);
        }
    }

    // Process the *vector's* packet hop by hop, so a build bug cannot mask a peel bug.
    let Some(original) = hex_vec(c, at, v, "packet_4608B") else {
        return;
    };
    let steps = steps(c, at, v);
    let mut filters = process_hops(c, case, &secret_keys, &original, &steps);
    if let Some(want) = v.get("replay_checkReplay_isReplay_at_hop0") {
        // Nim's read-only check: is hop 0's tag for this packet recorded?
        let at = At { case, hop: Some(0) };
        let seen = secret_keys[0]
            .hop_secrets_with(format, &original)
            .map(|s| filters[0].check_and_insert(s.replay_tag(), 1));
        c.value(
            at,
            "replay_checkReplay_isReplay_at_hop0",
            Some(matches!(seen, Ok(Err(ReplayError::Replayed)))),
            want.as_bool(),
        );
    }
    if let Some(want) = v
        .get("replay_of_first_packet_at_hop0")
        .and_then(Value::as_str)
    {
        let at = At { case, hop: Some(0) };
        let mut again = original;
        let got = match peel_with(format, &secret_keys[0], &mut filters[0], 1, &mut again) {
            Ok(a) => format!("{a:?}"),
            Err(e) => nim_error(e),
        };
        c.value(at, "replay_of_first_packet_at_hop0", got.as_str(), want);
    }
}

/// `forward_tampered_payload`, `forward_tampered_header` and `alpha_validation`, which start
/// from the `forward` case's packet and nodes.
fn tampered(c: &mut Checker, v: &Value) {
    let Some(f) = v.get("forward") else { return };
    let at = At {
        case: "forward",
        hop: None,
    };
    let Some(CaseRoute { secret_keys, .. }) = case_route(c, at, f) else {
        return;
    };
    let Some(packet) = hex_vec(c, at, f, "packet_4608B") else {
        return;
    };
    let flipped = |t: &Value, offset: &str| {
        let mut p = packet.clone();
        let offset = t[offset].as_u64().unwrap_or(0) as usize;
        p[offset] ^= t["flip_mask"].as_u64().unwrap_or(0) as u8;
        (p, offset)
    };
    if let Some(t) = v.get("forward_tampered_payload") {
        let case = "forward_tampered_payload";
        let at = At { case, hop: None };
        let (p, offset) = flipped(t, "flip_offset_in_packet");
        c.value(
            at,
            "flip_offset_in_packet (in δ)",
            offset >= HEADER_LEN,
            true,
        );
        c.hex(at, "tampered_packet_4608B", &p, &t["tampered_packet_4608B"]);
        let steps = steps(c, at, t);
        process_hops(c, case, &secret_keys, &p, &steps);
    }
    if let Some(t) = v.get("forward_tampered_header") {
        let at = At {
            case: "forward_tampered_header",
            hop: Some(0),
        };
        let (mut p, _) = flipped(t, "flip_offset_in_packet");
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let got = match peel_with(c.format, &secret_keys[0], &mut filter, 0, &mut p) {
            Ok(a) => format!("{a:?}"),
            Err(e) => nim_error(e),
        };
        c.value(
            at,
            "status_at_hop0",
            Some(got.as_str()),
            t["status_at_hop0"].as_str(),
        );
        c.value(
            at,
            "tag_stored",
            Some(!filter.is_empty()),
            t["tag_stored"].as_bool(),
        );
    }
    for (i, a) in v
        .get("alpha_validation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let case = format!(
            "alpha_validation[{i}] ({})",
            a["case"].as_str().unwrap_or("?")
        );
        let at = At {
            case: &case,
            hop: None,
        };
        let (Some(alpha), Some(key)) = (
            hex_field::<32>(c, at, a, "alpha"),
            hex_field::<32>(c, at, a, "node_private_key"),
        ) else {
            continue;
        };
        let mut p = packet.clone();
        p[..32].copy_from_slice(&alpha);
        let key = NodeSecretKey::from_bytes(key);
        let got = match key.hop_secrets_with(c.format, &p) {
            Ok(_) => "accepted".to_owned(),
            Err(e) => nim_error(e),
        };
        for field in ["processSphinxPacket_error", "checkReplay_error"] {
            c.value(at, field, Some(got.as_str()), a[field].as_str());
        }
        let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
        let peeled = peel_with(c.format, &key, &mut filter, 0, &mut p).err();
        c.value(
            at,
            "peel refuses it, recording nothing",
            (peeled.is_some(), filter.is_empty()),
            (true, true),
        );
    }
}

fn surb_case(c: &mut Checker, case: &str, v: &Value) -> Option<Surb> {
    let at = At { case, hop: None };
    let CaseRoute { secret_keys, route } = case_route(c, at, v)?;
    let (Some(x), Some(id), Some(reply_key), Some(reply_frame), Some(padded)) = (
        hex_field::<32>(c, at, v, "ephemeral_x"),
        hex_field::<16>(c, at, v, "surb_id"),
        hex_field::<16>(c, at, v, "reply_key"),
        hex_vec(c, at, v, "reply_frame"),
        hex_vec(c, at, v, "reply_padded_message_3968B"),
    ) else {
        return None;
    };
    let format = c.format;
    let (surb, surb_keys) = match Surb::create_with_fixed_randomness_for_testing_only(
        format,
        &x,
        SurbId::from_bytes(id),
        &reply_key,
        &route,
    ) {
        Ok(pair) => pair,
        Err(e) => {
            c.fail(at, "surb", e);
            return None;
        }
    };
    c.value(
        at,
        "surb format",
        (surb.format(), surb_keys.format()),
        (format, format),
    );
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
    if let Some(want) = v.get("surb_734B") {
        c.hex(at, "surb_734B", &surb.to_bytes(), want);
    }
    // `count ‖ SURB ‖ application bytes` as carried in the forward payload.
    let name = "surb_serialized_in_payload_1+734+2B";
    if let Some(want) = hex_vec(c, at, v, name) {
        let app = want.get(1 + SURB_LEN..).unwrap_or_default();
        let mut out = vec![0u8; MESSAGE_LEN];
        match encode_forward_message(format, "", std::slice::from_ref(&surb), app, &mut out) {
            Ok(n) => c.bytes(at, name, &out[1..n], &want),
            Err(e) => c.fail(at, name, e),
        }
        match Surb::from_bytes(&want[1..1 + SURB_LEN.min(want.len() - 1)]) {
            Ok(decoded) => c.value(
                at,
                "surb (decoded from payload)",
                decoded.with_format(format) == surb,
                true,
            ),
            Err(e) => c.fail(at, "surb (decoded from payload)", e),
        }
    }
    let seq_no = trailer(c, at, v, &padded, "reply_seqNo");
    let mut chunk = [0u8; MESSAGE_LEN];
    match encode_reply_chunk(format, &reply_frame, seq_no, &mut chunk) {
        Ok(()) => c.bytes(at, "reply_padded_message_3968B", &chunk, &padded),
        Err(e) => c.fail(at, "reply_padded_message_3968B", e),
    }
    let mut reply = vec![0u8; PACKET_LEN];
    match surb.build_reply_with_fixed_randomness_for_testing_only(seq_no, &reply_frame, &mut reply)
    {
        Ok(_) => c.hex(at, "reply_packet_4608B", &reply, &v["reply_packet_4608B"]),
        Err(e) => c.fail(at, "reply_packet_4608B", e),
    }

    let mut current = hex_vec(c, at, v, "reply_packet_4608B")?;
    let steps = steps(c, at, v);
    let mut filter = MemoryReplayFilter::new(ReplayConfig::default());
    for (i, step) in steps.iter().enumerate().take(PATH_LEN) {
        let at = At { case, hop: Some(i) };
        c.value(at, "hop", step["hop"].as_u64(), Some(i as u64));
        let status = step["status"].as_str().unwrap_or_default();
        if let Ok(secrets) = secret_keys[i].hop_secrets_with(format, &current) {
            let alpha = current[..32].to_vec();
            hop_details(c, at, step, &secrets, &alpha);
        }
        match peel_with(format, &secret_keys[i], &mut filter, 0, &mut current) {
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
                let delta_prime = *payload;
                // The keys survive persisting them.
                let keys = SurbKeys::from_bytes(surb_keys.to_bytes().as_slice()).unwrap();
                match keys.open_reply(payload) {
                    Ok(body) => c.hex(at, "recovered_reply", body, &step["recovered_reply"]),
                    Err(e) => c.fail(at, "recovered_reply", e),
                }
                // `open_reply` decrypted in place: decode the codec from the opened chunk.
                let chunk: &[u8; MESSAGE_LEN] = payload[16..].try_into().unwrap();
                let codec = payload::unpad(format, chunk)
                    .and_then(payload::decode_mix_message)
                    .map(|(codec, _)| codec);
                c.value(
                    at,
                    "recovered_codec",
                    codec.ok(),
                    step["recovered_codec"].as_str(),
                );
                if let Some(t) = v.get("tampered_reply") {
                    let mut bad = delta_prime;
                    let offset = t["delta_prime_offset"].as_u64().unwrap_or(0) as usize;
                    bad[offset] ^= t["flip_mask"].as_u64().unwrap_or(0) as u8;
                    let got = match surb_keys.open_reply(&mut bad) {
                        Err(SurbError::Integrity) => "reply payload integrity check failed".into(),
                        other => format!("{other:?}"),
                    };
                    c.value(
                        at,
                        "tampered_reply.error",
                        Some(got.as_str()),
                        t["error"].as_str(),
                    );
                }
            }
            Ok(other) => c.fail(at, "status", format!("got {other:?}, want {status}")),
            Err(e) => c.fail(at, "status", format!("got error {e}, want {status}")),
        }
    }
    Some(surb)
}

/// `forward_multi_surb`: the `forward` case's nodes, exit == destination, two SURBs (those of
/// `surb.additional_cases`) and the largest application frame that fits beside them.
fn multi_surb(c: &mut Checker, v: &Value, surbs: &[Surb]) {
    let (Some(m), Some(f)) = (v.get("forward_multi_surb"), v.get("forward")) else {
        return;
    };
    let case = "forward_multi_surb";
    let at = At { case, hop: None };
    let mut route_source = f.clone();
    route_source["delays_ms"] = m["delays_ms"].clone();
    let Some(CaseRoute { secret_keys, route }) = case_route(c, at, &route_source) else {
        return;
    };
    let format = c.format;
    let (Some(x), Some(app), Some(codec)) = (
        hex_field::<32>(c, at, m, "ephemeral_x"),
        hex_vec(c, at, m, "app_frame"),
        m["codec"].as_str(),
    ) else {
        return;
    };
    let Some(listed) = hex_list::<SURB_LEN>(c, at, m, "surbs_734B") else {
        return;
    };
    let decoded: Vec<Surb> = listed
        .iter()
        .filter_map(|b| Surb::from_bytes(b).ok().map(|s| s.with_format(format)))
        .collect();
    c.value(
        at,
        "surbs_734B (the additional SURB cases')",
        decoded.as_slice(),
        surbs,
    );
    let builder = PacketBuilder::new(&route).format(format).surbs(&decoded);
    c.value(
        at,
        "max_app_bytes_for_2_surbs",
        builder.max_message_len(codec).ok().map(|n| n as u64),
        m["max_app_bytes_for_2_surbs"].as_u64(),
    );
    let mut message = vec![0u8; MESSAGE_LEN];
    match encode_forward_message(format, codec, &decoded, &app, &mut message) {
        Ok(n) => c.hex(
            at,
            "mix_message_serialized",
            &message[..n],
            &m["mix_message_serialized"],
        ),
        Err(e) => c.fail(at, "mix_message_serialized", e),
    }
    let mut chunk = [0u8; MESSAGE_LEN];
    match encode_forward_chunk(format, codec, &decoded, &app, [0; 4], &mut chunk) {
        Ok(()) => c.hex(
            at,
            "padded_message_3968B",
            &chunk,
            &m["padded_message_3968B"],
        ),
        Err(e) => c.fail(at, "padded_message_3968B", e),
    }
    let mut packet = vec![0u8; PACKET_LEN];
    match builder.build_with_fixed_randomness_for_testing_only(&x, [0; 4], codec, &app, &mut packet)
    {
        Ok(_) => c.hex(at, "packet_4608B", &packet, &m["packet_4608B"]),
        Err(e) => c.fail(at, "packet_4608B", e),
    }
    // One byte more does not fit.
    let longer = vec![0u8; app.len() + 1];
    c.value(
        at,
        "one byte more than app_frame",
        builder
            .build(
                &mut rand_core::UnwrapErr(ZeroRng),
                codec,
                &longer,
                &mut packet,
            )
            .err(),
        Some(BuildError::MessageTooLong { max_len: app.len() }),
    );
    if let Some(original) = hex_vec(c, at, m, "packet_4608B") {
        let steps = steps(c, at, m);
        process_hops(c, case, &secret_keys, &original, &steps);
    }
}

/// An rng for a build that must fail before drawing anything useful.
struct ZeroRng;

impl rand_core::TryRng for ZeroRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ZeroRng {}

/// The format a vector file is in: its `format` field, absent for v0.39.
fn file_format(v: &Value) -> Result<Format, String> {
    match v.get("format") {
        None => Ok(Format::V039),
        Some(Value::String(s)) if s == "lioness-lip183" => Ok(Format::Lip183),
        Some(other) => Err(format!("unknown vector format {other}")),
    }
}

fn check_file(json: &str, source: &str) {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{source}: not JSON: {e}"));
    let format = file_format(&v).unwrap_or_else(|e| panic!("{source}: {e}"));
    let mut c = Checker {
        checked: 0,
        failures: Vec::new(),
        format,
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
            ("DataSize", format.data_len()),
            ("SurbSize", SURB_LEN),
        ] {
            c.value(
                at,
                name,
                params.get(name).and_then(Value::as_u64),
                Some(ours as u64),
            );
        }
        // Present in the LIP-183 file only.
        for (name, ours) in [
            ("SurbLenSize", 1),
            ("SurbIdLen", 16),
            ("Mu", 32),
            ("MinBlockSize", Lioness::MIN_BLOCK_LEN),
            ("MaxSurbsPerPacket", MAX_SURBS),
        ] {
            if let Some(want) = params.get(name) {
                c.value(at, name, want.as_u64(), Some(ours as u64));
            }
        }
    }
    primitives(&mut c, &v);
    let mut cases = 0;
    if let Some(k) = v.get("lioness_kats") {
        lioness_kats(&mut c, k);
        cases += 1;
    } else if format == Format::Lip183 {
        c.failures.push("lioness_kats: missing".into());
    }
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
    tampered(&mut c, &v);
    let mut extra_surbs = Vec::new();
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
            extra_surbs.extend(surb_case(
                &mut c,
                &format!("surb.additional_cases[{i}]"),
                extra,
            ));
            cases += 1;
        }
    }
    if v.get("forward_multi_surb").is_some() {
        multi_surb(&mut c, &v, &extra_surbs);
        cases += 1;
    }
    assert!(
        cases > 0,
        "{source}: no `forward` or `surb` case in the file"
    );
    assert!(
        c.failures.is_empty(),
        "{source} ({format}): {} of {} checks failed:\n  {}",
        c.failures.len(),
        c.checked,
        c.failures.join("\n  ")
    );
    println!(
        "{source} ({format}): {} values of {cases} cases reproduced",
        c.checked
    );
}

/// The vector files this repository knows, one per format.
const KNOWN_FILES: [&str; 2] = ["mix-sphinx-vectors.json", "mix-sphinx-vectors-lioness.json"];

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;

    use super::KNOWN_FILES;

    fn committed_copy(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(name)
    }

    fn shared_copy(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/spec/vectors")
            .join(name)
    }

    fn check(path: &PathBuf) {
        let json = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        super::check_file(&json, &path.display().to_string());
    }

    /// `$MIX_VECTORS` alone if set; otherwise every known file, so a plain `cargo test`
    /// checks both formats.
    #[test]
    fn every_golden_vector_is_reproduced() {
        if let Some(p) = std::env::var_os("MIX_VECTORS") {
            return check(&PathBuf::from(p));
        }
        for name in KNOWN_FILES {
            let shared = shared_copy(name);
            check(&if shared.exists() {
                shared
            } else {
                committed_copy(name)
            });
        }
    }

    /// The committed copies (what wasm32 embeds) must not drift from the shared spec.
    #[test]
    fn the_committed_copies_equal_the_shared_vectors() {
        for name in KNOWN_FILES {
            if let Ok(shared) = std::fs::read(shared_copy(name)) {
                assert!(
                    std::fs::read(committed_copy(name)).unwrap() == shared,
                    "tests/vectors/{name} differs from ../shared/spec/vectors"
                );
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
#[test]
fn every_golden_vector_is_reproduced_on_wasm32() {
    let _ = KNOWN_FILES;
    check_file(
        include_str!("vectors/mix-sphinx-vectors.json"),
        "embedded mix-sphinx-vectors.json",
    );
    check_file(
        include_str!("vectors/mix-sphinx-vectors-lioness.json"),
        "embedded mix-sphinx-vectors-lioness.json",
    );
}

//! The browser client in headless Chromium against real relays (`tests/browser/run.sh` starts
//! two `mix-relay testnet`s and passes their pool files in at build time): connect through a
//! gateway relay, send lightpush through 3 hops, get the reply through a SURB over the circuit
//! address; the payload cap, timeouts, bad options, and a tampering exit; a client given only
//! a bootstrap address that finds the pool through the gateway's Waku rendezvous; both wire
//! formats (a v0.39 testnet: a `format: "v039"` client delivers there, a LIP-183 one does not).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use mix_wasm::{MixClient, SphinxClient};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The pool of the honest testnet (JSON written by `mix-relay testnet`).
const POOL: &str = env!("MIX_POOL_JSON", "run these tests with tests/browser/run.sh");
/// The pool of a testnet whose exits tamper with every reply.
const HOSTILE_POOL: &str = env!(
    "MIX_HOSTILE_POOL_JSON",
    "run these tests with tests/browser/run.sh"
);
/// The pool of an honest testnet in the v0.39 wire format (its pool file says `"format": "v039"`).
const V039_POOL: &str = env!(
    "MIX_V039_POOL_JSON",
    "run these tests with tests/browser/run.sh"
);
const TOPIC: &str = "/waku/2/rs/2/0";

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap()
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    Reflect::set(obj, &key.into(), &value.into()).unwrap();
}

/// `WasmClientOptions` for a pool file: node 0's WebSocket address as the gateway, and the
/// file's wire format if it names one.
fn options(pool: &str) -> Object {
    let pool = JSON::parse(pool).unwrap();
    let format = get(&pool, "format");
    let nodes = Array::from(&get(&pool, "nodes"));
    let mixnodes = Array::new();
    let mut bootstrap = None;
    for node in nodes.iter() {
        let entry = Object::new();
        set(&entry, "peerId", get(&node, "peer_id"));
        set(&entry, "multiaddrs", get(&node, "multiaddrs"));
        set(&entry, "mixPublicKey", get(&node, "mix_public_key"));
        mixnodes.push(&entry);
        if bootstrap.is_none() {
            bootstrap = Array::from(&get(&node, "multiaddrs"))
                .iter()
                .find(|a| a.as_string().unwrap().contains("/ws/"));
        }
    }
    let opts = Object::new();
    set(
        &opts,
        "bootstrap",
        Array::of1(&bootstrap.expect("a /ws address")),
    );
    set(&opts, "mixnodes", mixnodes);
    set(&opts, "logLevel", "warn");
    if format.is_string() {
        set(&opts, "format", format);
    }
    opts
}

async fn connect(pool: &str) -> MixClient {
    connect_with(options(pool)).await
}

async fn connect_with(options: Object) -> MixClient {
    let client = JsFuture::from(MixClient::create(options.into()))
        .await
        .map_err(|e| error_text(&e))
        .expect("the client connects");
    // The wasm-bindgen class comes back as a JS object; take ownership of it again.
    MixClient::try_from_js_value(client).expect("a WasmMixClient")
}

/// Options with node 0's WebSocket address as the only bootstrap and no mix nodes: the pool
/// comes from rendezvous. Also returns how many relays the testnet has.
fn bootstrap_only(pool: &str) -> (Object, u32) {
    let full = options(pool);
    let relays = Array::from(&get(&full, "mixnodes")).length();
    let opts = Object::new();
    set(&opts, "bootstrap", get(&full, "bootstrap"));
    set(
        &opts,
        "clusterId",
        get(&JSON::parse(pool).unwrap(), "cluster_id"),
    );
    set(&opts, "logLevel", "warn");
    (opts, relays)
}

fn error_text(e: &JsValue) -> String {
    format!(
        "{}: {}",
        get(e, "code").as_string().unwrap_or_default(),
        get(e, "message").as_string().unwrap_or_default()
    )
}

fn code(e: &JsValue) -> String {
    get(e, "code").as_string().unwrap_or_default()
}

fn message(payload_len: usize) -> JsValue {
    let m = Object::new();
    set(
        &m,
        "payload",
        Uint8Array::from(vec![0x61u8; payload_len].as_slice()),
    );
    set(&m, "contentTopic", "/mix-rs/1/browser-test/proto");
    m.into()
}

fn send_options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        set(&o, k, v.clone());
    }
    o.into()
}

async fn lightpush(client: &MixClient, payload_len: usize) -> Result<JsValue, JsValue> {
    JsFuture::from(client.lightpush(TOPIC.into(), message(payload_len), JsValue::UNDEFINED)).await
}

#[wasm_bindgen_test]
async fn lightpush_through_three_hops_gets_the_200_reply_over_the_circuit() {
    let client = connect(POOL).await;
    assert!(client.circuit_address().contains("/p2p-circuit/p2p/"));
    assert!(client.circuit_address().ends_with(&client.peer_id()));
    let event = JsFuture::from(client.next_event()).await.unwrap();
    let mut saw_reservation = false;
    let mut event = event;
    for _ in 0..8 {
        if get(&event, "type").as_string().as_deref() == Some("reservation") {
            saw_reservation = true;
            assert_eq!(
                get(&event, "address").as_string().unwrap(),
                client.circuit_address()
            );
            break;
        }
        event = JsFuture::from(client.next_event()).await.unwrap();
    }
    assert!(saw_reservation);

    for _ in 0..3 {
        let response = lightpush(&client, 64)
            .await
            .map_err(|e| error_text(&e))
            .unwrap();
        assert_eq!(get(&response, "statusCode").as_f64(), Some(200.0));
        assert!(get(&response, "relayPeerCount").as_f64().unwrap() >= 1.0);
        assert_eq!(get(&response, "requestId").as_string().unwrap().len(), 36);
    }
    let stats = client.stats().unwrap();
    assert_eq!(get(&stats, "sent").as_f64(), Some(3.0));
    assert_eq!(get(&stats, "replies").as_f64(), Some(3.0));
    assert_eq!(Array::from(&get(&stats, "buildMs")).length(), 3);
    assert_eq!(Array::from(&get(&stats, "openMs")).length(), 3);
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn redundant_copies_still_give_one_reply() {
    let client = connect(POOL).await;
    let opts = send_options(&[("redundancy", 2.into()), ("surbs", 2.into())]);
    let response = JsFuture::from(client.lightpush(TOPIC.into(), message(10), opts))
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(get(&response, "statusCode").as_f64(), Some(200.0));
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn the_payload_cap_is_exact_and_checked_before_sending() {
    let client = connect(POOL).await;
    let max = client
        .max_lightpush_payload(TOPIC, "/mix-rs/1/browser-test/proto", 1)
        .unwrap();
    assert!((3000..3200).contains(&max), "{max}");
    let err = lightpush(&client, max + 1).await.unwrap_err();
    assert_eq!(code(&err), "PAYLOAD_TOO_LARGE");
    assert_eq!(get(&err, "maxLen").as_f64(), Some(max as f64));
    assert_eq!(get(&client.stats().unwrap(), "sent").as_f64(), Some(0.0));
    let response = lightpush(&client, max)
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(get(&response, "statusCode").as_f64(), Some(200.0));
    // The raw API's cap.
    let body_max = client.max_message_len("/x/1", 1).unwrap();
    let err =
        JsFuture::from(client.send("/x/1".into(), &vec![0; body_max + 1], JsValue::UNDEFINED))
            .await
            .unwrap_err();
    assert_eq!(code(&err), "PAYLOAD_TOO_LARGE");
    assert_eq!(get(&err, "maxLen").as_f64(), Some(body_max as f64));
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_request_nobody_answers_times_out() {
    let client = connect(POOL).await;
    // No relay serves this protocol: the exit drops the request and no reply comes.
    let opts = send_options(&[("timeoutMs", 1500.into())]);
    let err = JsFuture::from(client.send("/nobody/serves/this/1.0.0".into(), b"hi", opts))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "TIMEOUT", "{}", error_text(&err));
    assert_eq!(
        get(&client.stats().unwrap(), "timeouts").as_f64(),
        Some(1.0)
    );
    JsFuture::from(client.close()).await.unwrap();
    let err = lightpush(&client, 8).await.unwrap_err();
    assert_eq!(code(&err), "CLOSED");
    // Once closed, the event stream ends after what was queued.
    let mut ended = false;
    for _ in 0..100 {
        if JsFuture::from(client.next_event())
            .await
            .unwrap()
            .is_undefined()
        {
            ended = true;
            break;
        }
    }
    assert!(ended);
}

#[wasm_bindgen_test]
async fn a_tampered_reply_is_rejected() {
    let client = connect(HOSTILE_POOL).await;
    let err = lightpush(&client, 16).await.unwrap_err();
    assert_eq!(code(&err), "INVALID_REPLY", "{}", error_text(&err));
    assert_eq!(get(&client.stats().unwrap(), "replies").as_f64(), Some(0.0));
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn bad_options_and_unreachable_gateways_are_typed_errors() {
    let opts = options(POOL);
    set(&opts, "bootstrap", Array::new());
    let err = JsFuture::from(MixClient::create(opts.into()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "INVALID_OPTIONS");

    let opts = options(POOL);
    set(&opts, "surprise", 1);
    let err = JsFuture::from(MixClient::create(opts.into()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "INVALID_OPTIONS");

    for (key, value) in [
        ("format", JsValue::from("v040")),
        ("format", JsValue::from(183)),
        ("senderHoldMs", JsValue::from(70_000)),
        ("senderHoldMs", JsValue::from(-1)),
    ] {
        let opts = options(POOL);
        set(&opts, key, value.clone());
        let err = JsFuture::from(MixClient::create(opts.into()))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "INVALID_OPTIONS", "{key}: {value:?}");
    }

    // A loopback port nothing listens on.
    let opts = options(POOL);
    let ws = Array::from(&get(&opts, "bootstrap"))
        .get(0)
        .as_string()
        .unwrap();
    let peer = ws.rsplit('/').next().unwrap().to_owned();
    set(
        &opts,
        "bootstrap",
        Array::of1(&format!("/ip4/127.0.0.1/tcp/9/ws/p2p/{peer}").into()),
    );
    set(&opts, "connectTimeoutMs", 5000);
    let err = JsFuture::from(MixClient::create(opts.into()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NOT_CONNECTED", "{}", error_text(&err));

    assert_eq!(
        code(&MixClient::new().unwrap_err().into()),
        "INVALID_OPTIONS"
    );

    let client = connect(POOL).await;
    let err =
        JsFuture::from(client.lightpush("not-a-topic".into(), message(4), JsValue::UNDEFINED))
            .await
            .unwrap_err();
    assert_eq!(code(&err), "INVALID_OPTIONS");
    let err = JsFuture::from(client.lightpush(
        TOPIC.into(),
        message(4),
        send_options(&[("redundancy", 9.into())]),
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&err), "INVALID_OPTIONS");
    let err =
        JsFuture::from(client.lightpush_encoded(TOPIC.into(), &[0xff, 0xff], JsValue::UNDEFINED))
            .await
            .unwrap_err();
    assert_eq!(code(&err), "INVALID_OPTIONS");
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
fn the_sans_io_client_builds_and_refuses_foreign_packets() {
    let opts = options(POOL);
    let pool = JSON::parse(POOL).unwrap();
    let first = Array::from(&get(&pool, "nodes")).get(0);
    let gateway_tcp = Array::from(&get(&first, "multiaddrs"))
        .get(0)
        .as_string()
        .unwrap();
    let me = "16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF";
    let o = Object::new();
    set(&o, "peerId", me);
    set(&o, "address", format!("{gateway_tcp}/p2p-circuit/p2p/{me}"));
    set(&o, "mixnodes", get(&opts, "mixnodes"));
    let mut sphinx = SphinxClient::new(o.clone().into())
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(sphinx.mix_public_key().len(), 64);
    let request = sphinx
        .build_lightpush(TOPIC, message(100), JsValue::UNDEFINED)
        .map_err(|e| e.to_string())
        .unwrap();
    let packets = Array::from(&get(&request, "packets"));
    assert_eq!(packets.length(), 1);
    let packet = Uint8Array::from(get(&packets.get(0), "packet")).to_vec();
    assert_eq!(packet.len(), 4608);
    // Our own request packet is not a reply to us.
    assert!(sphinx.open_reply(&packet).unwrap().is_undefined());
    assert_eq!(
        code(&sphinx.open_reply(&packet[1..]).unwrap_err().into()),
        "INVALID_OPTIONS"
    );
    // LIP-183 by default, with upstream's sender hold: each packet says how long to hold it.
    assert_eq!(sphinx.format(), "lip183");
    assert!(get(&packets.get(0), "holdMs").as_f64().unwrap() >= 0.0);

    // v0.39: no hold unless asked for; the format's own size limits.
    set(&o, "format", "v039");
    let mut old = SphinxClient::new(o.clone().into())
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(old.format(), "v039");
    let request = old
        .build_lightpush(TOPIC, message(100), JsValue::UNDEFINED)
        .map_err(|e| e.to_string())
        .unwrap();
    let packet = Array::from(&get(&request, "packets")).get(0);
    assert_eq!(get(&packet, "holdMs").as_f64(), Some(0.0));
    let lightpush = "/vac/waku/lightpush/3.0.0";
    assert_eq!(
        SphinxClient::max_message_len(lightpush, 1, None).unwrap(),
        3205
    );
    assert_eq!(
        SphinxClient::max_message_len(lightpush, 1, Some("v039".into())).unwrap(),
        3201
    );
    set(&o, "format", "aes");
    let err = SphinxClient::new(o.clone().into()).unwrap_err();
    assert_eq!(code(&err.into()), "INVALID_OPTIONS");
    set(&o, "format", "lip183");
    set(&o, "senderHoldMs", 0);
    let mut unheld = SphinxClient::new(o.into())
        .map_err(|e| e.to_string())
        .unwrap();
    let request = unheld
        .build_lightpush(TOPIC, message(100), JsValue::UNDEFINED)
        .map_err(|e| e.to_string())
        .unwrap();
    let packet = Array::from(&get(&request, "packets")).get(0);
    assert_eq!(get(&packet, "holdMs").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn a_v039_client_delivers_on_a_v039_testnet() {
    let opts = options(V039_POOL);
    // The pool file names its format; say it here too, as an application would.
    assert_eq!(get(&opts, "format").as_string().as_deref(), Some("v039"));
    set(&opts, "format", "v039");
    let client = connect_with(opts).await;
    assert_eq!(client.format(), "v039");
    // The v0.39 chunk ends in a 4-byte seqNo: 4 bytes less than LIP-183.
    assert_eq!(
        client
            .max_message_len("/vac/waku/lightpush/3.0.0", 1)
            .unwrap(),
        3201
    );
    let response = lightpush(&client, 64)
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(get(&response, "statusCode").as_f64(), Some(200.0));
    assert!(get(&response, "relayPeerCount").as_f64().unwrap() >= 1.0);
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_client_of_the_other_format_gets_no_reply() {
    // A LIP-183 client (the default) on the v0.39 testnet: the exit cannot read the payload.
    let opts = options(V039_POOL);
    Reflect::delete_property(&opts, &"format".into()).unwrap();
    let client = connect_with(opts).await;
    assert_eq!(client.format(), "lip183");
    let err = JsFuture::from(client.lightpush(
        TOPIC.into(),
        message(16),
        send_options(&[("timeoutMs", 2500.into())]),
    ))
    .await
    .unwrap_err();
    let code = code(&err);
    assert!(
        code == "TIMEOUT" || code == "INVALID_REPLY",
        "{}",
        error_text(&err)
    );
    assert_eq!(get(&client.stats().unwrap(), "replies").as_f64(), Some(0.0));
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_bootstrap_only_client_finds_every_relay_through_rendezvous_and_gets_a_200() {
    let (opts, relays) = bootstrap_only(POOL);
    let started = js_sys::Date::now();
    let client = connect_with(opts).await;
    let create_ms = js_sys::Date::now() - started;
    console_log!("bootstrap-only create(), pool filled through rendezvous: {create_ms} ms");
    // Every relay registers at node 0 and node 0 lists itself: the whole testnet.
    let stats = client.stats().unwrap();
    assert_eq!(get(&stats, "poolSize").as_f64(), Some(f64::from(relays)));
    // The first lookup's `pool` event is queued before create() resolves.
    let mut pool_event = None;
    for _ in 0..16 {
        let event = JsFuture::from(client.next_event()).await.unwrap();
        if get(&event, "type").as_string().as_deref() == Some("pool") {
            pool_event = Some(event);
            break;
        }
    }
    let event = pool_event.expect("a pool event");
    assert_eq!(get(&event, "size").as_f64(), Some(f64::from(relays)));
    assert_eq!(Array::from(&get(&event, "added")).length(), relays);
    assert_eq!(Array::from(&get(&event, "removed")).length(), 0);
    assert_eq!(get(&event, "belowMinimum").as_bool(), Some(false));
    let pool = JSON::parse(POOL).unwrap();
    let added: Vec<String> = Array::from(&get(&event, "added"))
        .iter()
        .map(|p| p.as_string().unwrap())
        .collect();
    for node in Array::from(&get(&pool, "nodes")).iter() {
        let peer = get(&node, "peer_id").as_string().unwrap();
        assert!(added.contains(&peer), "{peer} was not discovered");
    }

    let response = lightpush(&client, 64)
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(get(&response, "statusCode").as_f64(), Some(200.0));
    assert!(get(&response, "relayPeerCount").as_f64().unwrap() >= 1.0);
    JsFuture::from(client.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_bootstrap_only_client_without_mix_nodes_in_its_namespace_is_no_route() {
    let (opts, _) = bootstrap_only(POOL);
    // No relay registers in cluster 999's namespace: lookups succeed and find nothing.
    set(&opts, "clusterId", 999);
    set(&opts, "connectTimeoutMs", 3000);
    let started = js_sys::Date::now();
    let err = JsFuture::from(MixClient::create(opts.into()))
        .await
        .unwrap_err();
    let waited = js_sys::Date::now() - started;
    assert_eq!(code(&err), "NO_ROUTE", "{}", error_text(&err));
    assert!(
        error_text(&err).contains("rs/999/mix"),
        "{}",
        error_text(&err)
    );
    assert!(waited < 6000.0, "gave up after {waited} ms");

    let (opts, _) = bootstrap_only(POOL);
    set(&opts, "clusterId", 70_000);
    let err = JsFuture::from(MixClient::create(opts.into()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "INVALID_OPTIONS", "{}", error_text(&err));
}

//! Option bags from JS, decoded once with `serde-wasm-bindgen` (STYLE Part 6.4), and their
//! TypeScript shapes.

use std::time::Duration;

use mix_core::{Format, NodePublicKey};
use mix_libp2p::{MixNode, Multiaddr, PeerId, SendOptions};
use mix_waku::WakuMessage;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::error::MixError;
use crate::transports;

#[wasm_bindgen(typescript_custom_section)]
const TS_OPTIONS: &str = r#"
/** A mix node of the pool: its libp2p peer id (secp256k1), its multiaddrs (a browser dials
 * its WebTransport ones, `/quic-v1/webtransport/certhash/…`, first and its `/ws` or `/wss` ones
 * if those fail; packets carry the TCP one) and its X25519 mix public key as 64 hex
 * characters. */
export interface WasmMixNode {
  peerId: string;
  multiaddrs: string[];
  mixPublicKey: string;
}
/** Options of `WasmMixClient.create`. */
export interface WasmClientOptions {
  /** Gateway relays, as WebTransport (`/quic-v1/webtransport/certhash/…`) or WebSocket
   * (`/ws`, `/wss`) multiaddrs, each ending in `/p2p/<peer id>`. Entries naming the same peer
   * are alternatives: WebTransport is tried first, WebSocket if it fails. The first relay that
   * connects and grants a circuit reservation is the gateway the replies come back through. */
  bootstrap: string[];
  /** A fixed pool of mix nodes to route through (at least 3; they never expire). Absent or
   * empty: the pool is found through Waku rendezvous at the gateway and kept fresh. */
  mixnodes?: WasmMixNode[];
  /** The Waku cluster whose mix nodes rendezvous finds (namespace `rs/<clusterId>/mix`;
   * default 2). */
  clusterId?: number;
  /** How long `create` may take, in ms (default 10000): reaching a gateway, its reservation
   * and, without `mixnodes`, the first rendezvous lookup. */
  connectTimeoutMs?: number;
  /** Console log level (default "warn"). */
  logLevel?: "off" | "error" | "warn" | "info" | "debug" | "trace";
  /** The wire format of the network (every node on a path must speak it), as the relay's
   * `--mix-format` names it: `"lip183"` (default: the current upstream format, LIONESS
   * payload) or `"v039"` (the format of logos-delivery v0.39, AES-CTR payload). A client of
   * the wrong format gets no reply (`TIMEOUT`) or `INVALID_REPLY`. */
  format?: WasmMixFormat;
  /** The mean, in ms, of the random (exponential) wait before each packet is written to its
   * first hop, as upstream's LIP-183 senders hold theirs: default 100 with `"lip183"`, 0 with
   * `"v039"`; 0 = none. At most 65535. */
  senderHoldMs?: number;
}
/** A wire format, named as `mix-relay --mix-format` names it. */
export type WasmMixFormat = "lip183" | "v039";
/** Per-request options. */
export interface WasmSendOptions {
  /** SURBs in the packet: how many replies the exit may send (default 1, at most 4 with
   * lightpush). */
  surbs?: number;
  /** How long to wait for the reply, in ms (default 30000). */
  timeoutMs?: number;
  /** Copies of the request on disjoint paths, 1 to 4 (default 1); the first reply wins. */
  redundancy?: number;
  /** The exit == destination node (a pool peer id); default: a random pool node. */
  destination?: string;
}
/** A Waku message (14/WAKU2-MESSAGE). */
export interface WasmWakuMessage {
  payload: Uint8Array;
  contentTopic: string;
  /** Unix nanoseconds; stamped with the current time if absent. */
  timestamp?: bigint;
  meta?: Uint8Array;
  ephemeral?: boolean;
  version?: number;
  rateLimitProof?: Uint8Array;
}
/** A lightpush v3 response, read from the SURB reply. */
export interface WasmLightPushResponse {
  requestId: string;
  statusCode: number;
  statusDesc?: string;
  relayPeerCount?: number;
  servicePeerId: string;
  /** The hops the request and its reply took, and the time each phase took. */
  trace?: WasmTrace;
}
/** Where an answered request went (peer ids) and how long each phase took (ms). */
export interface WasmTrace {
  /** Out: two intermediates, then the exit (the service node). */
  hops: string[];
  /** Back: the two intermediates the answering SURB went through. */
  replyHops: string[];
  /** Choosing the path and building the Sphinx packet. */
  buildMs: number;
  /** Handed to the first hop until the reply arrived: 3 hops out, the service, 3 hops back. */
  mixnetMs: number;
  /** Opening the reply. */
  openMs: number;
}
"#;

/// Refuses keys a bag does not know (serde-wasm-bindgen reads only the fields it knows, so
/// `deny_unknown_fields` alone would let a misspelt option pass silently).
///
/// # Errors
/// `INVALID_OPTIONS` naming the first unknown key, or if `value` is not an object.
pub(crate) fn check_keys(value: &JsValue, known: &[&str], what: &str) -> Result<(), MixError> {
    if !value.is_object() {
        return Err(MixError::invalid(format!("{what} must be an object")));
    }
    for key in js_sys::Object::keys(value.unchecked_ref()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(MixError::invalid(format!(
                "{what} has no option {key:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// One pool entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MixNodeOptions {
    /// Base58 peer id.
    pub(crate) peer_id: String,
    /// Multiaddrs.
    pub(crate) multiaddrs: Vec<String>,
    /// 64 hex characters.
    pub(crate) mix_public_key: String,
}

impl ClientOptions {
    /// Decodes the options of `create`.
    ///
    /// # Errors
    /// `INVALID_OPTIONS`.
    pub(crate) fn from_js(value: JsValue) -> Result<Self, MixError> {
        check_keys(
            &value,
            &[
                "bootstrap",
                "mixnodes",
                "clusterId",
                "connectTimeoutMs",
                "logLevel",
                "format",
                "senderHoldMs",
            ],
            "the client options",
        )?;
        let options: Self = serde_wasm_bindgen::from_value(value.clone())?;
        options.network()?;
        let nodes = js_sys::Reflect::get(&value, &"mixnodes".into()).unwrap_or_default();
        // Absent (or null) means discovery; anything else is an array (serde checked it).
        if !js_sys::Array::is_array(&nodes) {
            return Ok(options);
        }
        for node in js_sys::Array::from(&nodes).iter() {
            check_keys(
                &node,
                &["peerId", "multiaddrs", "mixPublicKey"],
                "a mix node",
            )?;
        }
        Ok(options)
    }
}

impl MixNodeOptions {
    /// The pool entries of `nodes`.
    ///
    /// # Errors
    /// `INVALID_OPTIONS` for the first entry that does not parse.
    pub(crate) fn pool(nodes: &[Self]) -> Result<Vec<MixNode>, MixError> {
        nodes.iter().map(Self::to_node).collect()
    }

    /// The pool entry, its addresses in the order a browser dials them.
    ///
    /// # Errors
    /// `INVALID_OPTIONS`, naming the field.
    pub(crate) fn to_node(&self) -> Result<MixNode, MixError> {
        let peer_id: PeerId = self
            .peer_id
            .parse()
            .map_err(|e| MixError::invalid(format!("mix node {:?}: peerId: {e}", self.peer_id)))?;
        let mut addresses = self
            .multiaddrs
            .iter()
            .map(|a| {
                a.parse::<Multiaddr>().map_err(|e| {
                    MixError::invalid(format!("mix node {peer_id}: multiaddr {a:?}: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        transports::sort_for_dialing(&mut addresses);
        let key = parse_key(&self.mix_public_key).ok_or_else(|| {
            MixError::invalid(format!(
                "mix node {peer_id}: mixPublicKey must be 64 hex characters"
            ))
        })?;
        MixNode::new(peer_id, addresses, key).map_err(|e| {
            MixError::invalid(format!(
                "mix node {peer_id}: no multiaddr a packet can carry (IPv4 TCP or QUIC): {e}"
            ))
        })
    }
}

fn parse_key(text: &str) -> Option<NodePublicKey> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(NodePublicKey::from_bytes(bytes))
}

/// The Waku cluster whose mix nodes a client looks up when `clusterId` is not given.
pub(crate) const DEFAULT_CLUSTER_ID: u16 = 2;

/// The shard of the pubsub topic lightpush uses when none is given (`/waku/2/rs/<cluster>/0`).
/// JS reads it from `js/src/generated.ts`.
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "rendered into js/src/generated.ts by a test")
)]
pub(crate) const DEFAULT_SHARD: u16 = 0;

/// The options of `WasmMixClient.create`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ClientOptions {
    /// Gateway multiaddrs.
    pub(crate) bootstrap: Vec<String>,
    /// A static pool; `None` or empty: discover it through rendezvous.
    pub(crate) mixnodes: Option<Vec<MixNodeOptions>>,
    /// The Waku cluster of the rendezvous namespace (default 2).
    pub(crate) cluster_id: Option<u16>,
    /// Gateway connect timeout.
    pub(crate) connect_timeout_ms: Option<u32>,
    /// Log level.
    pub(crate) log_level: Option<String>,
    /// The wire format's name (`lip183`, `v039`).
    pub(crate) format: Option<String>,
    /// The sender hold's mean, in ms.
    pub(crate) sender_hold_ms: Option<u32>,
}

impl ClientOptions {
    /// The wire format and sender hold these options ask for.
    ///
    /// # Errors
    /// `INVALID_OPTIONS` for an unknown format or a hold past 65535 ms.
    pub(crate) fn network(&self) -> Result<Network, MixError> {
        Network::new(self.format.as_deref(), self.sender_hold_ms)
    }
}

/// The network settings of a sender: the wire format its packets and SURBs are built and
/// peeled in, and the mean of its sender hold (`None`: write at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    /// The wire format.
    pub(crate) format: Format,
    /// The sender hold's mean.
    pub(crate) hold: Option<mix_core::Delay>,
}

impl Network {
    /// From the `format` and `senderHoldMs` options: `lip183` by default; the hold defaults to
    /// upstream's 100 ms mean with LIP-183 and to none with v0.39, and 0 means none.
    ///
    /// # Errors
    /// `INVALID_OPTIONS` for an unknown format or a hold past 65535 ms.
    pub(crate) fn new(format: Option<&str>, sender_hold_ms: Option<u32>) -> Result<Self, MixError> {
        let format = parse_format(format)?;
        let hold = match sender_hold_ms {
            None => match format {
                Format::Lip183 => Some(mix_libp2p::DEFAULT_SENDER_HOLD),
                Format::V039 => None,
            },
            Some(0) => None,
            Some(ms) => Some(mix_core::Delay::from_millis(u16::try_from(ms).map_err(
                |_| MixError::invalid(format!("senderHoldMs must be 0 to {}, not {ms}", u16::MAX)),
            )?)),
        };
        Ok(Self { format, hold })
    }
}

/// The wire format named `name`: `lip183` (the default) or `v039`, as the relay's
/// `--mix-format` takes them.
///
/// # Errors
/// `INVALID_OPTIONS` naming the known formats.
pub(crate) fn parse_format(name: Option<&str>) -> Result<Format, MixError> {
    let Some(name) = name else {
        return Ok(Format::default());
    };
    name.parse().map_err(|_| {
        MixError::invalid(format!(
            "format {name:?} is not a wire format (known: {})",
            Format::ALL.map(Format::name).join(", ")
        ))
    })
}

/// The per-request options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RequestOptions {
    /// SURBs.
    pub(crate) surbs: Option<u32>,
    /// Timeout.
    pub(crate) timeout_ms: Option<u32>,
    /// Copies.
    pub(crate) redundancy: Option<u32>,
    /// The exit == destination.
    pub(crate) destination: Option<String>,
}

impl RequestOptions {
    /// Decodes the optional JS object (`undefined` and `null` mean the defaults).
    ///
    /// # Errors
    /// `INVALID_OPTIONS`.
    pub(crate) fn from_js(value: JsValue) -> Result<Self, MixError> {
        if value.is_undefined() || value.is_null() {
            return Ok(Self::default());
        }
        check_keys(
            &value,
            &["surbs", "timeoutMs", "redundancy", "destination"],
            "the send options",
        )?;
        Ok(serde_wasm_bindgen::from_value(value)?)
    }

    /// The client's options (range checks happen in `Client::send`).
    ///
    /// # Errors
    /// `INVALID_OPTIONS` for a zero timeout.
    pub(crate) fn send_options(&self) -> Result<SendOptions, MixError> {
        let defaults = SendOptions::default();
        let timeout = match self.timeout_ms {
            Some(0) => return Err(MixError::invalid("timeoutMs must be positive")),
            Some(ms) => Duration::from_millis(u64::from(ms)),
            None => defaults.timeout,
        };
        Ok(SendOptions {
            surbs: self.surbs.map_or(defaults.surbs, |s| s as usize),
            redundancy: self.redundancy.map_or(defaults.redundancy, |r| r as usize),
            timeout,
        })
    }

    /// The destination, if given.
    ///
    /// # Errors
    /// `INVALID_OPTIONS` if it is not a peer id.
    pub(crate) fn destination(&self) -> Result<Option<PeerId>, MixError> {
        self.destination
            .as_deref()
            .map(|d| {
                d.parse()
                    .map_err(|e| MixError::invalid(format!("destination {d:?}: {e}")))
            })
            .transpose()
    }
}

/// A Waku message from JS.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WakuMessageOptions {
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    content_topic: String,
    timestamp: Option<i64>,
    #[serde(default, with = "serde_bytes")]
    meta: Option<Vec<u8>>,
    ephemeral: Option<bool>,
    version: Option<u32>,
    #[serde(default, with = "serde_bytes")]
    rate_limit_proof: Option<Vec<u8>>,
}

impl WakuMessageOptions {
    /// Decodes the JS object.
    ///
    /// # Errors
    /// `INVALID_OPTIONS`.
    pub(crate) fn from_js(value: JsValue) -> Result<Self, MixError> {
        check_keys(
            &value,
            &[
                "payload",
                "contentTopic",
                "timestamp",
                "meta",
                "ephemeral",
                "version",
                "rateLimitProof",
            ],
            "the message",
        )?;
        Ok(serde_wasm_bindgen::from_value(value)?)
    }

    /// The message, stamped with `now_ns` if it has no timestamp.
    pub(crate) fn into_message(self, now_ns: i64) -> WakuMessage {
        WakuMessage {
            payload: self.payload,
            content_topic: self.content_topic,
            version: self.version,
            timestamp: Some(self.timestamp.unwrap_or(now_ns)),
            meta: self.meta,
            rate_limit_proof: self.rate_limit_proof,
            ephemeral: self.ephemeral,
        }
    }
}

/// Checks a message with the service's own rules (`mix_waku::check_request`: WAKU.md §1.3), so
/// a request that cannot succeed is refused before it is sent.
///
/// # Errors
/// `INVALID_OPTIONS`, with the service's status and reason.
pub(crate) fn check_message(message: &WakuMessage, pubsub_topic: &str) -> Result<(), MixError> {
    mix_waku::check_request(pubsub_topic, message)
        .map_err(|refusal| MixError::invalid(refusal.to_string()))
}

/// The current time in Unix milliseconds (`Date.now()`), as replay filters take it.
pub(crate) fn now_ms() -> u64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "Date.now() is a non-negative integer of ms since 1970"
    )]
    let ms = js_sys::Date::now() as u64;
    ms
}

/// The current time in Unix nanoseconds, as Waku timestamps are, rounded down to the whole
/// second: a timestamp is public on the Waku network, and at ms precision its offset from the
/// arrival time (nearly constant with 0-2 ms hops) is a clock-skew fingerprint that links one
/// client's messages across requests and sessions (audit F18). Apps that need more precision
/// set `timestamp` themselves.
pub(crate) fn now_ns() -> i64 {
    i64::try_from(now_ms() / 1000)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

/// A Rust value as a plain JS object (maps as objects, bytes as `Uint8Array`).
///
/// # Errors
/// `INTERNAL` if the value cannot be converted (a bug).
pub(crate) fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, MixError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))
        .map_err(|e| MixError::new(crate::error::Code::Internal, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_sender_holds_default_as_upstream() {
        let hold = |ms| Some(mix_core::Delay::from_millis(ms));
        let n = Network::new(None, None).unwrap();
        assert_eq!((n.format, n.hold), (Format::Lip183, hold(100)));
        let n = Network::new(Some("lip183"), Some(0)).unwrap();
        assert_eq!((n.format, n.hold), (Format::Lip183, None));
        let n = Network::new(Some("v039"), None).unwrap();
        assert_eq!((n.format, n.hold), (Format::V039, None));
        let n = Network::new(Some("v039"), Some(250)).unwrap();
        assert_eq!((n.format, n.hold), (Format::V039, hold(250)));
        let e = Network::new(Some("v040"), None).unwrap_err();
        assert_eq!(e.kind(), crate::Code::InvalidOptions);
        assert!(e.text().contains("lip183, v039"), "{}", e.text());
        let e = Network::new(None, Some(70_000)).unwrap_err();
        assert_eq!(e.kind(), crate::Code::InvalidOptions);
    }

    #[test]
    fn keys_parse_with_or_without_0x() {
        let hex = "11".repeat(32);
        assert!(parse_key(&hex).is_some());
        assert!(parse_key(&format!("0x{hex}")).is_some());
        assert!(parse_key(&hex[2..]).is_none());
        assert!(parse_key(&"zz".repeat(32)).is_none());
    }

    #[test]
    fn pool_entries_are_checked() {
        let peer = "16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF";
        let good = MixNodeOptions {
            peer_id: peer.into(),
            multiaddrs: vec![
                format!("/ip4/127.0.0.1/tcp/4001/ws/p2p/{peer}"),
                format!("/ip4/127.0.0.1/tcp/4000/p2p/{peer}"),
            ],
            mix_public_key: "22".repeat(32),
        };
        let node = good.to_node().unwrap();
        assert_eq!(node.addresses.len(), 2);
        let mut ws_only = good.clone();
        ws_only.multiaddrs.truncate(1);
        assert!(ws_only.to_node().unwrap_err().text().contains("TCP"));
        let mut bad_peer = good.clone();
        bad_peer.peer_id = "nope".into();
        assert!(bad_peer.to_node().unwrap_err().text().contains("peerId"));
        let mut bad_key = good;
        bad_key.mix_public_key = "22".into();
        assert!(
            bad_key
                .to_node()
                .unwrap_err()
                .text()
                .contains("mixPublicKey")
        );
    }

    #[test]
    fn pool_entries_list_webtransport_then_websocket_and_keep_their_packet_address() {
        let peer = "16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF";
        let hash = "uEiCaDd1Ca1A8IVJ3hsIxIyi11cwxaDKqzVrBkGJbKZU5ng";
        let tcp = format!("/ip4/127.0.0.1/tcp/4000/p2p/{peer}");
        let ws = format!("/ip4/127.0.0.1/tcp/4001/ws/p2p/{peer}");
        let webtransport = format!(
            "/ip4/127.0.0.1/udp/4002/quic-v1/webtransport/certhash/{hash}/certhash/{hash}/p2p/{peer}"
        );
        let node = MixNodeOptions {
            peer_id: peer.into(),
            multiaddrs: vec![tcp.clone(), ws.clone(), webtransport.clone()],
            mix_public_key: "22".repeat(32),
        }
        .to_node()
        .unwrap();
        let dialed: Vec<String> = node.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(dialed, [webtransport, ws, tcp.clone()]);
        assert_eq!(mix_libp2p::to_multiaddr(&node.address).to_string(), tcp);
    }

    #[test]
    fn messages_are_checked_like_the_service() {
        let ok = WakuMessage {
            payload: vec![1],
            content_topic: "/a/1/b/proto".into(),
            ..WakuMessage::default()
        };
        assert!(check_message(&ok, "/waku/2/rs/2/0").is_ok());
        assert!(check_message(&ok, "/waku/2/rs/2").is_err());
        let mut empty = ok.clone();
        empty.payload.clear();
        assert!(check_message(&empty, "/waku/2/rs/2/0").is_err());
        let mut meta = ok;
        meta.meta = Some(vec![0; 65]);
        assert!(check_message(&meta, "/waku/2/rs/2/0").is_err());
    }
}

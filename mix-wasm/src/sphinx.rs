//! `SphinxClient`: the sender without a network (the core-only package). It builds request
//! packets with SURBs and opens the replies; the caller moves the bytes over its own
//! transport (e.g. js-libp2p on `/mix/1.0.0`). The network `WasmMixClient` runs the same
//! [`mix_libp2p::Sender`] code.

use mix_core::PACKET_LEN;
use mix_libp2p::{ClientError, Destination, Instant, Multiaddr, PeerId, Sender, SenderEvent};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::error::MixError;
use crate::lightpush;
use crate::options::{
    MixNodeOptions, Network, RequestOptions, WakuMessageOptions, check_keys, check_message, now_ms,
    now_ns, parse_format, to_js,
};
use crate::sender::{self, SysRng, rng};

#[wasm_bindgen(typescript_custom_section)]
const TS_SPHINX: &str = r#"
/** Options of `new SphinxClient(...)`. */
export interface SphinxClientOptions {
  /** This sender's libp2p peer id (secp256k1). */
  peerId: string;
  /** Where replies reach it: an IPv4 TCP/QUIC multiaddr or a circuit address
   * (`/ip4/…/tcp/…/p2p/<relay>/p2p-circuit/p2p/<peerId>`). */
  address: string;
  mixnodes: WasmMixNode[];
  /** The network's wire format, `"lip183"` (default) or `"v039"`: as `WasmClientOptions`. */
  format?: WasmMixFormat;
  /** The sender hold's mean in ms (default 100 with `"lip183"`, 0 with `"v039"`; 0 = none):
   * each packet's `holdMs` is drawn from it. */
  senderHoldMs?: number;
}
/** A packet to write on `/mix/1.0.0` to `peerId` (dial one of `multiaddrs`), framed as
 * `uvarint(4608) || packet`, after waiting `holdMs`. */
export interface SphinxPacket {
  peerId: string;
  multiaddrs: string[];
  packet: Uint8Array;
  /** How long to hold the packet before writing it, in ms: upstream's sender hold (an
   * exponential draw of mean `senderHoldMs`; 0 without one). The caller waits it out
   * (`setTimeout`) so the send time does not give away when the request was made. */
  holdMs: number;
}
export interface SphinxRequest {
  requestId: number;
  /** For lightpush: the request id inside the LightPushRequest. */
  lightpushRequestId?: string;
  destination: string;
  packets: SphinxPacket[];
}
export interface SphinxReply {
  requestId: number;
  body: Uint8Array;
}
"#;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SphinxOptions {
    peer_id: String,
    address: String,
    mixnodes: Vec<MixNodeOptions>,
    format: Option<String>,
    sender_hold_ms: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PacketOut {
    peer_id: String,
    multiaddrs: Vec<String>,
    #[serde(with = "serde_bytes")]
    packet: Vec<u8>,
    hold_ms: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestOut {
    request_id: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lightpush_request_id: Option<String>,
    destination: String,
    packets: Vec<PacketOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplyOut {
    request_id: f64,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

/// A request id as a JS number (ids count up from 0; far below 2^53).
#[allow(clippy::cast_precision_loss, reason = "ids stay far below 2^53")]
pub(crate) fn id_number(id: mix_libp2p::RequestId) -> f64 {
    u64::from(id) as f64
}

/// The sans-IO sender. See the module docs.
#[wasm_bindgen]
pub struct SphinxClient {
    sender: Sender,
    rng: SysRng,
}

impl core::fmt::Debug for SphinxClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.sender.fmt(f)
    }
}

#[wasm_bindgen]
impl SphinxClient {
    /// A sender with a fresh mix key.
    ///
    /// # Errors
    /// `INVALID_OPTIONS` for a malformed option.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "SphinxClientOptions")] options: JsValue,
    ) -> Result<SphinxClient, MixError> {
        check_keys(
            &options,
            &["peerId", "address", "mixnodes", "format", "senderHoldMs"],
            "the options",
        )?;
        let options: SphinxOptions = serde_wasm_bindgen::from_value(options)?;
        let me: PeerId = options
            .peer_id
            .parse()
            .map_err(|e| MixError::invalid(format!("peerId: {e}")))?;
        let address: Multiaddr = options
            .address
            .parse()
            .map_err(|e| MixError::invalid(format!("address: {e}")))?;
        let network = Network::new(options.format.as_deref(), options.sender_hold_ms)?;
        let pool = MixNodeOptions::pool(&options.mixnodes)?;
        let mut rng = rng()?;
        Ok(Self {
            sender: sender::new_sender(&mut rng, me, address, pool, network)?,
            rng,
        })
    }

    /// The largest body `buildRequest` takes with `codec` and `surbs` SURBs, in `format`
    /// (`"lip183"`, the default, or `"v039"`).
    ///
    /// # Errors
    /// `INVALID_OPTIONS` if the codec or SURB count leave no room, or for an unknown format.
    #[wasm_bindgen(js_name = maxMessageLen)]
    pub fn max_message_len(
        codec: &str,
        surbs: u32,
        #[wasm_bindgen(unchecked_param_type = "WasmMixFormat | undefined")] format: Option<String>,
    ) -> Result<usize, MixError> {
        Ok(mix_libp2p::Client::max_message_len(
            parse_format(format.as_deref())?,
            codec,
            surbs as usize,
        )?)
    }

    /// The wire format this client builds and opens packets in: `"lip183"` or `"v039"`.
    #[wasm_bindgen(getter, unchecked_return_type = "WasmMixFormat")]
    pub fn format(&self) -> String {
        self.sender.client().format().name().to_owned()
    }

    /// This sender's X25519 mix public key (hex): the key its SURBs' last layer uses.
    #[wasm_bindgen(getter, js_name = mixPublicKey)]
    pub fn mix_public_key(&self) -> String {
        hex::encode(self.sender.me().public_key.as_bytes())
    }

    /// Builds the packets of one request: `body` for the `codec` handler of the destination.
    ///
    /// # Errors
    /// `INVALID_OPTIONS`, `PAYLOAD_TOO_LARGE`, `NO_ROUTE`, `UNKNOWN_DESTINATION`.
    #[wasm_bindgen(js_name = buildRequest, unchecked_return_type = "SphinxRequest")]
    pub fn build_request(
        &mut self,
        codec: &str,
        body: &[u8],
        #[wasm_bindgen(unchecked_param_type = "WasmSendOptions | undefined")] options: JsValue,
    ) -> Result<JsValue, MixError> {
        let options = RequestOptions::from_js(options)?;
        self.build(codec, body, &options, None)
    }

    /// Builds a lightpush v3 request for `message` on `pubsubTopic`.
    ///
    /// # Errors
    /// As `buildRequest`, and `INVALID_OPTIONS` for a message the service would refuse.
    #[wasm_bindgen(js_name = buildLightpush, unchecked_return_type = "SphinxRequest")]
    pub fn build_lightpush(
        &mut self,
        #[wasm_bindgen(js_name = pubsubTopic)] pubsub_topic: &str,
        #[wasm_bindgen(unchecked_param_type = "WasmWakuMessage")] message: JsValue,
        #[wasm_bindgen(unchecked_param_type = "WasmSendOptions | undefined")] options: JsValue,
    ) -> Result<JsValue, MixError> {
        let options = RequestOptions::from_js(options)?;
        let message = WakuMessageOptions::from_js(message)?.into_message(now_ns());
        check_message(&message, pubsub_topic)?;
        let id = lightpush::request_id(&mut self.rng);
        let body = lightpush::request_bytes(id.clone(), pubsub_topic, message);
        self.build(mix_waku::LIGHTPUSH_PROTOCOL, &body, &options, Some(id))
    }

    fn build(
        &mut self,
        codec: &str,
        body: &[u8],
        options: &RequestOptions,
        lightpush_request_id: Option<String>,
    ) -> Result<JsValue, MixError> {
        let send = options.send_options()?;
        let destination = sender::destination(&self.sender, &mut self.rng, options.destination()?)?;
        let id = self.sender.send(
            &mut self.rng,
            Instant::now(),
            &Destination::ExitIsDestination(destination),
            codec,
            body,
            send,
        )?;
        // Without SURBs the request is settled at once: nothing to report.
        sender::events(&mut self.sender);
        let packets = std::iter::from_fn(|| self.sender.poll_transmit())
            .map(|o| PacketOut {
                peer_id: o.peer.to_string(),
                multiaddrs: o.addresses.iter().map(ToString::to_string).collect(),
                packet: o.frame.packet.to_vec(),
                hold_ms: o.hold.as_secs_f64() * 1000.0,
            })
            .collect();
        to_js(&RequestOut {
            request_id: id_number(id),
            lightpush_request_id,
            destination: destination.to_string(),
            packets,
        })
    }

    /// Opens a packet that arrived on `/mix/1.0.0`: the reply, or `undefined` if it is not a
    /// reply this client awaits (a late copy, a replay, noise).
    ///
    /// # Errors
    /// `INVALID_REPLY` when the request's last SURB came back tampered with; `INVALID_OPTIONS`
    /// unless `packet` is 4608 bytes.
    #[wasm_bindgen(js_name = openReply, unchecked_return_type = "SphinxReply | undefined")]
    pub fn open_reply(&mut self, packet: &[u8]) -> Result<JsValue, MixError> {
        let mut buf: Box<[u8; PACKET_LEN]> = Box::new(packet.try_into().map_err(|_| {
            MixError::invalid(format!(
                "a packet is {PACKET_LEN} bytes, not {}",
                packet.len()
            ))
        })?);
        self.sender.handle_packet(&mut buf, now_ms());
        for event in sender::events(&mut self.sender) {
            match event {
                SenderEvent::Replied { request, body, .. } => {
                    return to_js(&ReplyOut {
                        request_id: id_number(request),
                        body,
                    });
                }
                SenderEvent::Failed { error, .. } => return Err(MixError::from(error)),
                _ => {}
            }
        }
        Ok(JsValue::UNDEFINED)
    }

    /// The ids of requests whose timeout has passed (they are forgotten).
    pub fn expire(&mut self) -> Vec<f64> {
        self.sender.handle_timeout(Instant::now());
        sender::events(&mut self.sender)
            .into_iter()
            .filter_map(|event| match event {
                SenderEvent::Failed {
                    request,
                    error: ClientError::Timeout,
                } => Some(id_number(request)),
                _ => None,
            })
            .collect()
    }
}

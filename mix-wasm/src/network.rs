//! `WasmMixClient`: a libp2p node in the browser that sends requests through the mixnet and
//! receives their SURB replies.
//!
//! * Transport ([`swarm`]): libp2p WebTransport (`webtransport-websys`: QUIC with the relay's
//!   certificate hashes, Noise, WebTransport's own streams) where a relay offers it, else
//!   WebSocket (`websocket-websys`, Noise, Yamux); a secp256k1 identity; identify and ping; the
//!   `/mix/1.0.0` behaviour of `mix-libp2p`. The swarm dials one address at a time, in the
//!   order of [`crate::transports`]: WebTransport, then WebSocket if it fails.
//! * Reachability ([`gateway`]): a browser cannot listen, so it reserves a slot on its gateway
//!   relay (circuit relay v2) and writes `<gateway TCP address>/p2p/<gateway>/p2p-circuit/p2p/<me>`
//!   into its SURBs: the last SURB hop dials that, the gateway relays the stream to us, and the
//!   behaviour hands us the frame to peel.
//! * The pool: a fixed `mixnodes` list, or, without one, the mix nodes the gateway's Waku
//!   rendezvous registry lists (`/vac/waku/rendezvous/1.0.0`, namespace `rs/<cluster>/mix`),
//!   looked up on nwaku's schedule ([`mix_discovery::Rounds`]) and dropped when their records
//!   lapse or they cannot be dialed. `create` resolves once the first lookup gave a pool a path
//!   can be built from.
//! * One task ([`driver`], `spawn_local`) owns the swarm and the [`mix_libp2p::Sender`]; the
//!   JS-facing methods here talk to it over a channel and get Promises back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Once;

use futures::channel::{mpsc, oneshot};
use mix_libp2p::{Client, Instant, Multiaddr, PeerId, Removal, SendOptions};
use mix_waku::{LIGHTPUSH_PROTOCOL, WakuMessage};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{Code, MixError};
use crate::lightpush::{self, Trace};
use crate::options::{
    ClientOptions, RequestOptions, WakuMessageOptions, check_message, now_ns, to_js,
};
use crate::sender::SysRng;

mod driver;
mod gateway;
mod swarm;

#[wasm_bindgen(typescript_custom_section)]
const TS_NETWORK: &str = r#"
/** Why a node left the pool: its rendezvous record lapsed, it could not be dialed, requests
 * through it kept timing out, or a reason this version does not know. */
export type WasmPoolRemoval = "expired" | "failed" | "strikes" | "other";
/** What happened to the client's connections, reservation and pool. `connected.address` is
 * the remote multiaddr of the new connection: `…/quic-v1/webtransport/…` over WebTransport,
 * `…/ws/…` or `…/wss/…` over WebSocket, and just `/p2p/<peer id>` for a reply's last hop,
 * which reaches this client through the gateway's circuit. */
export type WasmClientEvent =
  | { type: "connected"; peerId: string; address: string }
  | { type: "disconnected"; peerId: string }
  | { type: "reservation"; relay: string; address: string }
  | { type: "reservation-lost"; relay: string }
  /** The pool changed (and once when it is first known): its `size` now, the peer ids that
   * joined, those that left and why, and whether it is below nwaku's minimum of 4 (paths
   * through few nodes are easy to guess). */
  | {
      type: "pool";
      size: number;
      added: string[];
      removed: { peerId: string; reason: WasmPoolRemoval }[];
      belowMinimum: boolean;
    };
/** Counters and the latest timings (ms, at most 1024 of each). */
export interface WasmStats {
  sent: number;
  replies: number;
  timeouts: number;
  poolSize: number;
  buildMs: number[];
  openMs: number[];
}
"#;

/// Timings kept for `stats()`.
const MAX_SAMPLES: usize = 1024;
/// Unread events kept for `nextEvent()`; older ones are dropped first.
const MAX_EVENTS: usize = 64;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    sent: u32,
    replies: u32,
    timeouts: u32,
    pool_size: u32,
    build_ms: VecDeque<f64>,
    open_ms: VecDeque<f64>,
}

fn push_sample(samples: &mut VecDeque<f64>, ms: f64) {
    if samples.len() == MAX_SAMPLES {
        samples.pop_front();
    }
    samples.push_back(ms);
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum ClientEvent {
    Connected {
        #[serde(rename = "peerId")]
        peer_id: String,
        /// The remote multiaddr of the connection (shows the transport).
        address: String,
    },
    Disconnected {
        #[serde(rename = "peerId")]
        peer_id: String,
    },
    Reservation {
        relay: String,
        address: String,
    },
    ReservationLost {
        relay: String,
    },
    Pool {
        size: u32,
        added: Vec<String>,
        removed: Vec<PoolRemoved>,
        #[serde(rename = "belowMinimum")]
        below_minimum: bool,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PoolRemoved {
    peer_id: String,
    reason: &'static str,
}

/// The `WasmPoolRemoval` string of `why`.
fn removal_name(why: Removal) -> &'static str {
    match why {
        Removal::Expired => "expired",
        Removal::Failed => "failed",
        Removal::Strikes => "strikes",
        // Removal is non_exhaustive: a reason added later is reported, unnamed.
        _ => "other",
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

type Reply = oneshot::Sender<Result<Delivery, MixError>>;

/// An answered request: who answered, the reply, and how it went.
pub(crate) struct Delivery {
    /// The destination (the exit that answered).
    pub(crate) destination: PeerId,
    /// The reply bytes.
    pub(crate) body: Vec<u8>,
    /// The path and the time each phase took.
    pub(crate) trace: Trace,
}

fn millis(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

enum Command {
    Send {
        destination: Option<PeerId>,
        codec: String,
        body: Vec<u8>,
        options: SendOptions,
        reply: Reply,
    },
    Close(oneshot::Sender<()>),
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    events: RefCell<VecDeque<ClientEvent>>,
    /// Wakes a waiting `nextEvent()`.
    event_waiters: RefCell<Vec<oneshot::Sender<()>>>,
    closed: Cell<bool>,
    stats: RefCell<Stats>,
    rng: RefCell<SysRng>,
    peer_id: PeerId,
    circuit: Multiaddr,
    /// The wire format the sender builds and peels in.
    format: mix_core::Format,
}

impl Shared {
    fn emit(&self, event: ClientEvent) {
        let mut events = self.events.borrow_mut();
        if events.len() == MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
        drop(events);
        self.wake();
    }

    fn wake(&self) {
        for waiter in self.event_waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// The browser's mix client. Create it with `WasmMixClient.create(options)`.
#[wasm_bindgen(js_name = WasmMixClient)]
pub struct MixClient {
    shared: Rc<Shared>,
}

impl core::fmt::Debug for MixClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MixClient")
            .field("peer_id", &self.shared.peer_id)
            .finish_non_exhaustive()
    }
}

fn reject(e: MixError) -> js_sys::Promise {
    js_sys::Promise::reject(&JsValue::from(e))
}

fn init_logging(level: Option<&str>) -> Result<(), MixError> {
    static LOGGING: Once = Once::new();
    let level = match level.unwrap_or("warn") {
        "off" => return Ok(()),
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        other => return Err(MixError::invalid(format!("logLevel {other:?}"))),
    };
    LOGGING.call_once(|| {
        let config = tracing_wasm::WASMLayerConfigBuilder::new()
            .set_max_level(level)
            .build();
        tracing_wasm::set_as_global_default_with_config(config);
    });
    Ok(())
}

#[wasm_bindgen(js_class = WasmMixClient)]
impl MixClient {
    /// Not a way to make a client: connecting is asynchronous.
    ///
    /// # Errors
    /// Always: use `WasmMixClient.create(options)`.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<MixClient, MixError> {
        Err(MixError::invalid(
            "WasmMixClient has no constructor: use `await WasmMixClient.create(options)`",
        ))
    }

    /// Connects to a gateway relay, reserves a circuit slot on it, and resolves to a client.
    /// Without `mixnodes`, it first looks the pool up through the gateway's rendezvous registry
    /// and resolves once that lookup gave at least 3 mix nodes. Rejects with a `WasmMixError`:
    /// `INVALID_OPTIONS`, `NOT_CONNECTED` (no gateway reachable or no reservation within
    /// `connectTimeoutMs`), `NO_ROUTE` (without `mixnodes`: the gateway does not serve
    /// rendezvous, or fewer than 3 mix nodes were found within `connectTimeoutMs`).
    #[wasm_bindgen(unchecked_return_type = "Promise<WasmMixClient>")]
    pub fn create(
        #[wasm_bindgen(unchecked_param_type = "WasmClientOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let options = match ClientOptions::from_js(options) {
            Ok(o) => o,
            Err(e) => return reject(e),
        };
        future_to_promise(async move {
            let client = gateway::connect(options).await.map_err(JsValue::from)?;
            Ok(JsValue::from(client))
        })
    }

    /// This node's libp2p peer id.
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.shared.peer_id.to_string()
    }

    /// The address the replies come back to (in every SURB).
    #[wasm_bindgen(getter, js_name = circuitAddress)]
    pub fn circuit_address(&self) -> String {
        self.shared.circuit.to_string()
    }

    /// The wire format this client's packets are built in: `"lip183"` or `"v039"`.
    #[wasm_bindgen(getter, unchecked_return_type = "WasmMixFormat")]
    pub fn format(&self) -> String {
        self.shared.format.name().to_owned()
    }

    /// The largest body `send` takes with `codec` and `surbs` SURBs (in this client's format).
    ///
    /// # Errors
    /// `INVALID_OPTIONS` if the codec or SURB count leave no room.
    #[wasm_bindgen(js_name = maxMessageLen)]
    pub fn max_message_len(&self, codec: &str, surbs: u32) -> Result<usize, MixError> {
        Ok(Client::max_message_len(
            self.shared.format,
            codec,
            surbs as usize,
        )?)
    }

    /// The largest `WakuMessage` payload `lightpush` takes for this topic pair and SURB count
    /// (no `meta`, no RLN proof; a stamped timestamp).
    ///
    /// # Errors
    /// `INVALID_OPTIONS` if nothing fits.
    #[wasm_bindgen(js_name = maxLightpushPayload)]
    pub fn max_lightpush_payload(
        &self,
        #[wasm_bindgen(js_name = pubsubTopic)] pubsub_topic: &str,
        #[wasm_bindgen(js_name = contentTopic)] content_topic: &str,
        surbs: u32,
    ) -> Result<usize, MixError> {
        let template = WakuMessage {
            content_topic: content_topic.to_owned(),
            timestamp: Some(now_ns()),
            ..WakuMessage::default()
        };
        lightpush::max_payload(self.shared.format, pubsub_topic, &template, surbs as usize)
    }

    /// Sends `body` to the `codec` handler of a mix node (exit == destination) and resolves to
    /// the reply bytes (a copy); with `surbs: 0` no reply can come, and it resolves to an empty
    /// array once the packets are handed to their first hops. Rejects with `SEND_FAILED` as
    /// soon as the first hop of every copy could not be reached.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn send(
        &self,
        codec: String,
        body: &[u8],
        #[wasm_bindgen(unchecked_param_type = "WasmSendOptions | undefined")] options: JsValue,
    ) -> js_sys::Promise {
        let request = match RequestOptions::from_js(options) {
            Ok(r) => r,
            Err(e) => return reject(e),
        };
        let shared = self.shared.clone();
        let body = body.to_vec();
        future_to_promise(async move {
            let delivery = request_reply(&shared, codec, body, &request)
                .await
                .map_err(JsValue::from)?;
            Ok(js_sys::Uint8Array::from(delivery.body.as_slice()).into())
        })
    }

    /// Publishes `message` on `pubsubTopic` with lightpush v3 through the mixnet and resolves
    /// to the service's response (`statusCode` 200: published).
    #[wasm_bindgen(unchecked_return_type = "Promise<WasmLightPushResponse>")]
    pub fn lightpush(
        &self,
        #[wasm_bindgen(js_name = pubsubTopic)] pubsub_topic: String,
        #[wasm_bindgen(unchecked_param_type = "WasmWakuMessage")] message: JsValue,
        #[wasm_bindgen(unchecked_param_type = "WasmSendOptions | undefined")] options: JsValue,
    ) -> js_sys::Promise {
        let parsed = WakuMessageOptions::from_js(message)
            .map(|m| m.into_message(now_ns()))
            .and_then(|m| RequestOptions::from_js(options).map(|o| (m, o)));
        match parsed {
            Ok((message, request)) => self.push(pubsub_topic, message, request),
            Err(e) => reject(e),
        }
    }

    /// As `lightpush`, for a message already encoded as a `WakuMessage` protobuf (what
    /// js-waku's `encoder.toWire(message)` returns).
    #[wasm_bindgen(
        js_name = lightpushEncoded,
        unchecked_return_type = "Promise<WasmLightPushResponse>"
    )]
    pub fn lightpush_encoded(
        &self,
        #[wasm_bindgen(js_name = pubsubTopic)] pubsub_topic: String,
        #[wasm_bindgen(js_name = wakuMessage)] waku_message: &[u8],
        #[wasm_bindgen(unchecked_param_type = "WasmSendOptions | undefined")] options: JsValue,
    ) -> js_sys::Promise {
        let parsed = mix_waku::decode_waku_message(waku_message)
            .map_err(MixError::from)
            .and_then(|mut m| {
                m.timestamp.get_or_insert_with(now_ns);
                RequestOptions::from_js(options).map(|o| (m, o))
            });
        match parsed {
            Ok((message, request)) => self.push(pubsub_topic, message, request),
            Err(e) => reject(e),
        }
    }

    fn push(
        &self,
        pubsub_topic: String,
        message: WakuMessage,
        request: RequestOptions,
    ) -> js_sys::Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let response = lightpush_request(&shared, &pubsub_topic, message, &request)
                .await
                .map_err(JsValue::from)?;
            to_js(&response).map_err(JsValue::from)
        })
    }

    /// The next connection or reservation event; `undefined` once the client is closed.
    #[wasm_bindgen(
        js_name = nextEvent,
        unchecked_return_type = "Promise<WasmClientEvent | undefined>"
    )]
    pub fn next_event(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            loop {
                if let Some(event) = shared.events.borrow_mut().pop_front() {
                    return to_js(&event).map_err(JsValue::from);
                }
                if shared.closed.get() {
                    return Ok(JsValue::UNDEFINED);
                }
                let (tx, rx) = oneshot::channel();
                shared.event_waiters.borrow_mut().push(tx);
                let _ = rx.await;
            }
        })
    }

    /// Counters and the latest build and open timings.
    ///
    /// # Errors
    /// `INTERNAL` if the stats cannot be converted (a bug).
    #[wasm_bindgen(unchecked_return_type = "WasmStats")]
    pub fn stats(&self) -> Result<JsValue, MixError> {
        to_js(&*self.shared.stats.borrow())
    }

    /// Closes the connections; requests still waiting fail with `CLOSED`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let (tx, rx) = oneshot::channel();
            if shared.commands.unbounded_send(Command::Close(tx)).is_ok() {
                let _ = rx.await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }
}

async fn request_reply(
    shared: &Shared,
    codec: String,
    body: Vec<u8>,
    request: &RequestOptions,
) -> Result<Delivery, MixError> {
    let options = request.send_options()?;
    let destination = request.destination()?;
    let (reply, rx) = oneshot::channel();
    shared
        .commands
        .unbounded_send(Command::Send {
            destination,
            codec,
            body,
            options,
            reply,
        })
        .map_err(|_| closed())?;
    rx.await.map_err(|_| closed())?
}

fn closed() -> MixError {
    MixError::new(Code::Closed, "the client is closed")
}

async fn lightpush_request(
    shared: &Shared,
    pubsub_topic: &str,
    message: WakuMessage,
    request: &RequestOptions,
) -> Result<lightpush::Response, MixError> {
    check_message(&message, pubsub_topic)?;
    let surbs = request.send_options()?.surbs;
    let max_body = Client::max_message_len(shared.format, LIGHTPUSH_PROTOCOL, surbs)?;
    let id = lightpush::request_id(&mut *shared.rng.borrow_mut());
    let template = WakuMessage {
        payload: Vec::new(),
        ..message.clone()
    };
    let body = lightpush::request_bytes(id.clone(), pubsub_topic, message);
    if body.len() > max_body {
        let max = lightpush::max_payload(shared.format, pubsub_topic, &template, surbs)?;
        return Err(MixError::too_large("WakuMessage payload", max));
    }
    let delivery = request_reply(shared, LIGHTPUSH_PROTOCOL.into(), body, request).await?;
    let mut response =
        lightpush::decode_response(&delivery.body, &id, delivery.destination.to_string())?;
    response.trace = Some(delivery.trace);
    Ok(response)
}

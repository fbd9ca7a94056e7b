//! `WasmMixClient`: a libp2p node in the browser that sends requests through the mixnet and
//! receives their SURB replies.
//!
//! * Transport: libp2p WebTransport (`webtransport-websys`: QUIC with the relay's certificate
//!   hashes, Noise, WebTransport's own streams) where a relay offers it, else WebSocket
//!   (`websocket-websys`, Noise, Yamux); a secp256k1 identity; identify and ping; the
//!   `/mix/1.0.0` behaviour of `mix-libp2p`. The swarm dials one address at a time, in the
//!   order of [`crate::transports`]: WebTransport, then WebSocket if it fails.
//! * Reachability: a browser cannot listen, so it reserves a slot on its gateway relay
//!   (circuit relay v2) and writes `<gateway TCP address>/p2p/<gateway>/p2p-circuit/p2p/<me>`
//!   into its SURBs: the last SURB hop dials that, the gateway relays the stream to us, and the
//!   behaviour hands us the frame to peel.
//! * The pool: a fixed `mixnodes` list, or, without one, the mix nodes the gateway's Waku
//!   rendezvous registry lists (`/vac/waku/rendezvous/1.0.0`, namespace `rs/<cluster>/mix`),
//!   looked up on nwaku's schedule and dropped when their records lapse or they cannot be
//!   dialed. `create` resolves once the first lookup gave a pool a path can be built from.
//! * One task (`spawn_local`) owns the swarm and the [`Sender`]; the JS-facing methods talk to
//!   it over a channel and get Promises back.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU8, NonZeroU32};
use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt as _, StreamExt as _};
use futures_timer::Delay;
use libp2p::core::ConnectedPoint;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::ListenerId;
use libp2p::core::transport::timeout::TransportTimeout;
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, Transport as _, identify, identity, noise, ping, relay,
    websocket_websys, webtransport_websys, yamux,
};
use mix_discovery::Schedule;
use mix_libp2p::{Client, Hops, Instant, MixNode, Removal, RequestId, SendFailure, SendOptions};
use mix_waku::{LIGHTPUSH_PROTOCOL, WakuMessage};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{Code, MixError};
use crate::lightpush::{self, Trace};
use crate::options::{
    ClientOptions, DEFAULT_CLUSTER_ID, MixNodeOptions, RequestOptions, WakuMessageOptions,
    check_message, now_ms, now_ns, to_js,
};
use crate::sender::{Opened, Sender, SysRng, rng};
use crate::transports;
use crate::ws::FlushNow;

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
/// The fewest pool nodes a request can be routed through: the destination (the exit) and two
/// others. `create` without `mixnodes` waits for this many.
const MIN_ROUTE_NODES: usize = 3;
/// How often lapsed pool entries are dropped and quarantined static ones put back.
const POOL_TICK: Duration = Duration::from_secs(1);
/// How long a WebTransport dial (QUIC and HTTP/3 handshakes, then Noise) may take before the
/// swarm gives up on it and dials the relay's next address, its WebSocket one. Without it a
/// browser whose UDP is dropped on the way waits for its own QUIC handshake timeout.
const WEBTRANSPORT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time `create` gives one gateway (all its addresses) before it moves on.
const MIN_GATEWAY_SHARE: Duration = Duration::from_secs(2);

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    relay: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mix: mix_libp2p::Behaviour,
    rendezvous: mix_discovery::Behaviour,
}

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
            let client = connect(options).await.map_err(JsValue::from)?;
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
    /// the reply bytes (a copy).
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

/// The gateway's address a packet can carry (IPv4 TCP or QUIC), from the pool or, failing
/// that, from what the gateway told identify.
fn packet_address(
    gateway: PeerId,
    pool: &[MixNode],
    identified: &[Multiaddr],
) -> Option<Multiaddr> {
    let from_pool = pool
        .iter()
        .find(|n| n.peer_id == gateway)
        .map(|n| mix_libp2p::to_multiaddr(&n.address));
    from_pool.or_else(|| {
        identified.iter().find_map(|a| {
            let a = a.clone().with_p2p(gateway).ok()?;
            let parsed = mix_libp2p::from_multiaddr(&a, Some(gateway)).ok()?;
            (parsed.relay.is_none()).then(|| mix_libp2p::to_multiaddr(&parsed))
        })
    })
}

/// The remote address of a new connection if it is the first to `peer` (`None` for a
/// further one). Logs the addresses of `peer` that failed before it connected (WebTransport
/// before a WebSocket fallback, say).
fn first_connection<E: core::fmt::Display>(
    peer: PeerId,
    endpoint: &ConnectedPoint,
    num_established: NonZeroU32,
    failed: Option<&[(Multiaddr, E)]>,
) -> Option<Multiaddr> {
    for (tried, error) in failed.unwrap_or_default() {
        tracing::debug!(%tried, %error, "an earlier address of {peer} failed");
    }
    (num_established.get() == 1).then(|| endpoint.get_remote_address().clone())
}

fn build_swarm(key: identity::Keypair) -> Result<Swarm<Behaviour>, MixError> {
    let internal = |e: &dyn core::fmt::Display| MixError::new(Code::Internal, e.to_string());
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            // `/quic-v1/webtransport/certhash/…` addresses: the transport runs Noise (bound to
            // the certificate hashes) itself, and WebTransport streams need no muxer. Every
            // other address it declines, and the WebSocket stack gets it.
            let webtransport = TransportTimeout::with_outgoing_timeout(
                webtransport_websys::Transport::new(webtransport_websys::Config::new(key)),
                WEBTRANSPORT_DIAL_TIMEOUT,
            )
            .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
            // Flushes return at once: see crate::ws.
            let websocket = websocket_websys::Transport::default()
                .map(|connection, _| FlushNow(connection))
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            Ok(webtransport
                .or_transport(websocket)
                .map(|either, _| either.into_inner()))
        })
        .map_err(|e| internal(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| internal(&e))?
        .with_behaviour(|key, relay| Behaviour {
            relay,
            identify: identify::Behaviour::new(identify::Config::new(
                "/mix-wasm/0.1.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            mix: mix_libp2p::Behaviour::new(mix_libp2p::Config::new()),
            rendezvous: mix_discovery::Behaviour::new(mix_discovery::Config::client()),
        })
        .map_err(|e| internal(&e))?
        // One address at a time, in the order given (crate::transports): WebSocket is dialed
        // only when WebTransport failed, and never alongside it.
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(60))
                .with_dial_concurrency_factor(NonZeroU8::MIN)
        })
        .build())
}

async fn connect(options: ClientOptions) -> Result<MixClient, MixError> {
    init_logging(options.log_level.as_deref())?;
    let network = options.network()?;
    tracing::info!(
        format = %network.format,
        sender_hold_ms = network.hold.map_or(0, mix_core::Delay::as_millis),
        "wire format"
    );
    let pool = MixNodeOptions::pool(options.mixnodes.as_deref().unwrap_or_default())?;
    // No fixed pool: look it up through rendezvous at the gateway.
    let discover = pool.is_empty();
    let cluster = options.cluster_id.unwrap_or(DEFAULT_CLUSTER_ID);
    let bootstrap = options
        .bootstrap
        .iter()
        .map(|a| {
            let addr: Multiaddr = a
                .parse()
                .map_err(|e| MixError::invalid(format!("bootstrap {a:?}: {e}")))?;
            match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Ok((peer, addr)),
                _ => Err(MixError::invalid(format!(
                    "bootstrap {a:?} must end in /p2p/<peer id>"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if bootstrap.is_empty() {
        return Err(MixError::invalid("bootstrap must name at least one relay"));
    }
    let timeout = Duration::from_millis(u64::from(options.connect_timeout_ms.unwrap_or(10_000)));
    let give_up_at = Instant::now() + timeout;
    let key = identity::Keypair::generate_secp256k1();
    let me = key.public().to_peer_id();

    // Entries naming the same relay are one gateway's alternatives (WebTransport first); each
    // gateway gets its share of the timeout, whichever of its addresses uses it.
    let gateways = transports::gateway_order(bootstrap);
    let share = (timeout / count(gateways.len())).max(MIN_GATEWAY_SHARE);
    let mut search = Search {
        swarm: build_swarm(key)?,
        deadline: Delay::new(timeout).fuse(),
        connections: Vec::new(),
    };
    let reserved = search.reserve(&gateways, share, &pool).await;
    let Search {
        mut swarm,
        connections,
        ..
    } = search;
    let Reserved {
        gateway,
        dialed,
        listener,
        identified,
    } = reserved.map_err(|failures| {
        let why = if failures.is_empty() {
            "no gateway answered".to_owned()
        } else {
            failures.join("; ")
        };
        MixError::new(
            Code::NotConnected,
            format!("no gateway relay granted a reservation within {timeout:?}: {why}"),
        )
    })?;
    let listen_addrs = identified
        .as_ref()
        .map_or(&[][..], |i| i.listen_addrs.as_slice());
    let Some(gateway_addr) = packet_address(gateway, &pool, listen_addrs) else {
        return Err(MixError::new(
            Code::NotConnected,
            format!("the gateway {gateway} has no IPv4 TCP or QUIC address to put in SURBs"),
        ));
    };
    let serves_rendezvous = identified.as_ref().is_some_and(|i| {
        i.protocols
            .iter()
            .any(|p| p.as_ref() == mix_discovery::PROTOCOL_NAME)
    });
    if discover && !serves_rendezvous {
        return Err(MixError::new(
            Code::NoRoute,
            format!(
                "no mixnodes were given and the gateway {gateway} does not serve Waku rendezvous \
                 ({}): pass mixnodes, or bootstrap from a relay that serves it",
                mix_discovery::PROTOCOL_NAME
            ),
        ));
    }
    let circuit = gateway_addr
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(me));
    let static_nodes = pool.clone();
    let mut sender = Sender::new(rng()?, me, circuit.clone(), pool, network)?;
    // The gateway knows our IP and relays every reply to us: never on our paths, never the
    // exit (F9), even when it is in the pool or lists itself.
    sender.client_mut().exclude(gateway);
    let (commands, commands_rx) = mpsc::unbounded();
    let shared = Rc::new(Shared {
        commands,
        events: RefCell::new(VecDeque::new()),
        event_waiters: RefCell::new(Vec::new()),
        closed: Cell::new(false),
        stats: RefCell::new(Stats {
            pool_size: count(sender.client().pool_len()),
            ..Stats::default()
        }),
        rng: RefCell::new(rng()?),
        peer_id: me,
        circuit: circuit.clone(),
        format: network.format,
    });
    for (peer, address) in &connections {
        shared.emit(ClientEvent::Connected {
            peer_id: peer.to_string(),
            address: address.to_string(),
        });
    }
    shared.emit(ClientEvent::Reservation {
        relay: gateway.to_string(),
        address: circuit.to_string(),
    });
    // Lookups may have to dial the gateway again after a lost connection: the address that
    // worked first, then its others.
    let others = gateways
        .iter()
        .filter(|(peer, _)| *peer == gateway)
        .flat_map(|(_, addrs)| addrs)
        .filter(|a| **a != dialed);
    for addr in std::iter::once(&dialed).chain(others) {
        swarm
            .behaviour_mut()
            .rendezvous
            .add_address(&gateway, addr.clone());
    }
    let now = Instant::now();
    let mut driver = Driver {
        swarm,
        sender,
        shared: Rc::downgrade(&shared),
        pending: HashMap::new(),
        first_hops: HashMap::new(),
        gateway,
        gateway_listen: Some(dialed.with(Protocol::P2pCircuit)),
        listener: Some(listener),
        relisten_at: None,
        backoff: Duration::from_secs(1),
        added: static_nodes.iter().map(|n| n.peer_id).collect(),
        static_nodes,
        below_minimum: false,
        next_tick: now + POOL_TICK,
        discovery: discover.then(|| Discovery {
            schedule: Schedule::new(now, false),
            namespace: mix_discovery::mix_namespace(cluster),
            in_flight: false,
            pages: 0,
            rounds: 0,
            last_error: None,
        }),
        ready: None,
    };
    if !discover {
        // The fixed pool is known now.
        driver.note_pool_changes(true);
        wasm_bindgen_futures::spawn_local(driver.run(commands_rx));
        return Ok(MixClient { shared });
    }
    let (ready_tx, ready_rx) = oneshot::channel();
    driver.ready = Some(Ready {
        done: ready_tx,
        give_up_at,
        timeout,
    });
    wasm_bindgen_futures::spawn_local(driver.run(commands_rx));
    // On failure `shared` is dropped here, and with it the command channel: the driver stops.
    match ready_rx.await {
        Ok(Ok(())) => Ok(MixClient { shared }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(closed()),
    }
}

/// A gateway that granted a circuit reservation.
struct Reserved {
    gateway: PeerId,
    /// The address that got it.
    dialed: Multiaddr,
    listener: ListenerId,
    identified: Option<identify::Info>,
}

/// How one gateway address ended.
enum Attempt {
    Reserved(Box<Reserved>),
    /// This address failed, and why; the gateway's next one may work.
    Failed(String),
    /// The gateway's share of the time ran out: the next gateway's turn.
    ShareUsed,
    /// `connectTimeoutMs` ran out.
    OutOfTime,
}

/// `create`'s search for a gateway: the swarm, the overall deadline, and the connections
/// opened on the way (their `connected` events go out once the client exists).
struct Search {
    swarm: Swarm<Behaviour>,
    deadline: futures::future::Fuse<Delay>,
    connections: Vec<(PeerId, Multiaddr)>,
}

impl Search {
    /// Tries the gateways in turn, and each gateway's addresses in turn (WebTransport first)
    /// until one grants a reservation. Each gateway gets `share` of the time, whichever of its
    /// addresses uses it (at least 2 s: a refused WebSocket dial is not always reported, and
    /// one dead gateway must not use up the time of the others). Returns the gateway, or what
    /// went wrong with each address tried.
    async fn reserve(
        &mut self,
        gateways: &[(PeerId, Vec<Multiaddr>)],
        share: Duration,
        pool: &[MixNode],
    ) -> Result<Reserved, Vec<String>> {
        let mut failures = Vec::new();
        'gateways: for (gateway, addrs) in gateways {
            // The SURB address needs the gateway's TCP address: from the pool or from identify.
            let in_pool = pool.iter().any(|n| n.peer_id == *gateway);
            let mut budget = Delay::new(share).fuse();
            for addr in addrs {
                match self.attempt(*gateway, addr, in_pool, &mut budget).await {
                    Attempt::Reserved(reserved) => return Ok(*reserved),
                    Attempt::Failed(why) => failures.push(format!("{addr}: {why}")),
                    Attempt::ShareUsed => {
                        failures.push(format!(
                            "{addr}: no reservation within this gateway's {share:?}"
                        ));
                        continue 'gateways;
                    }
                    Attempt::OutOfTime => {
                        failures.push(format!("{addr}: connectTimeoutMs ran out"));
                        break 'gateways;
                    }
                }
            }
        }
        Err(failures)
    }

    /// Listens on `addr`'s circuit (the relay client dials `addr` and asks for a reservation)
    /// and waits for the reservation and, unless the pool has the gateway's address, identify.
    async fn attempt(
        &mut self,
        gateway: PeerId,
        addr: &Multiaddr,
        in_pool: bool,
        budget: &mut futures::future::Fuse<Delay>,
    ) -> Attempt {
        let swarm = &mut self.swarm;
        let listener = match swarm.listen_on(addr.clone().with(Protocol::P2pCircuit)) {
            Ok(id) => id,
            Err(e) => return Attempt::Failed(error_chain(&e)),
        };
        let mut accepted = false;
        let mut identified: Option<identify::Info> = None;
        loop {
            let event = futures::select! {
                event = swarm.select_next_some() => event,
                () = &mut *budget => {
                    swarm.remove_listener(listener);
                    let _ = swarm.disconnect_peer_id(gateway);
                    return Attempt::ShareUsed;
                }
                () = &mut self.deadline => return Attempt::OutOfTime,
            };
            match event {
                SwarmEvent::Behaviour(BehaviourEvent::Relay(
                    relay::client::Event::ReservationReqAccepted { relay_peer_id, .. },
                )) if relay_peer_id == gateway => accepted = true,
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                    peer_id,
                    info,
                    ..
                })) if peer_id == gateway => identified = Some(info),
                SwarmEvent::ConnectionEstablished {
                    peer_id,
                    endpoint,
                    num_established,
                    concurrent_dial_errors,
                    ..
                } => {
                    if let Some(address) = first_connection(
                        peer_id,
                        &endpoint,
                        num_established,
                        concurrent_dial_errors.as_deref(),
                    ) {
                        self.connections.push((peer_id, address));
                    }
                }
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } => self.connections.retain(|(p, _)| *p != peer_id),
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } if listener_id == listener => {
                    return Attempt::Failed(match reason {
                        // The relay client dropped the listener: the dial failed or the
                        // connection closed.
                        Ok(()) => {
                            "no connection held until the relay answered the reservation".to_owned()
                        }
                        Err(e) => error_chain(&e),
                    });
                }
                SwarmEvent::ListenerError { listener_id, error } if listener_id == listener => {
                    swarm.remove_listener(listener);
                    return Attempt::Failed(error_chain(&error));
                }
                SwarmEvent::OutgoingConnectionError {
                    peer_id: Some(p),
                    error,
                    ..
                } if p == gateway => {
                    swarm.remove_listener(listener);
                    return Attempt::Failed(error.to_string());
                }
                _ => {}
            }
            if accepted && (in_pool || identified.is_some()) {
                return Attempt::Reserved(Box::new(Reserved {
                    gateway,
                    dialed: addr.clone(),
                    listener,
                    identified,
                }));
            }
        }
    }
}

/// `error` and its sources, `: `-separated (the relay client's errors keep the reason in
/// their source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Rendezvous lookups at the gateway (only when no fixed pool was given).
struct Discovery {
    schedule: Schedule,
    /// `rs/<cluster>/mix`.
    namespace: String,
    /// A lookup round is waiting for a page.
    in_flight: bool,
    /// Follow-up pages asked for in this round.
    pages: usize,
    /// Rounds finished.
    rounds: u32,
    /// Why the last round failed, if it did.
    last_error: Option<String>,
}

/// `create` waiting for the first usable pool.
struct Ready {
    done: oneshot::Sender<Result<(), MixError>>,
    give_up_at: Instant,
    timeout: Duration,
}

/// A reply opened by the driver.
struct Answer {
    body: Vec<u8>,
    hops: Box<Hops>,
    arrived: Instant,
    open_ms: f64,
}

struct Pending {
    reply: Reply,
    destination: PeerId,
    copies: usize,
    /// Choosing the path and building the packets, in ms.
    build_ms: f64,
    /// When the packets were handed to the first hops.
    sent: Instant,
}

struct Driver {
    swarm: Swarm<Behaviour>,
    sender: Sender<SysRng>,
    shared: std::rc::Weak<Shared>,
    pending: HashMap<RequestId, Pending>,
    /// Requests by first hop, to match `SendFailed` reports to requests.
    first_hops: HashMap<PeerId, VecDeque<RequestId>>,
    gateway: PeerId,
    gateway_listen: Option<Multiaddr>,
    listener: Option<ListenerId>,
    relisten_at: Option<Instant>,
    backoff: Duration,
    /// The `mixnodes` given (put back after a quarantine; they never lapse).
    static_nodes: Vec<MixNode>,
    /// Nodes that joined the pool since the last `pool` event.
    added: Vec<PeerId>,
    /// Whether the last `pool` event said the pool is below the minimum.
    below_minimum: bool,
    /// When lapsed pool entries are next dropped.
    next_tick: Instant,
    discovery: Option<Discovery>,
    ready: Option<Ready>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let now = Instant::now();
            let lookup_due = self
                .discovery
                .as_ref()
                .filter(|d| !d.in_flight)
                .map(|d| d.schedule.next_due());
            let wake = [
                self.sender.client().next_deadline(),
                self.relisten_at,
                Some(self.next_tick),
                lookup_due,
                self.ready.as_ref().map(|r| r.give_up_at),
            ]
            .into_iter()
            .flatten()
            .min();
            let mut timer = match wake {
                Some(at) => Delay::new(at.saturating_duration_since(now)).boxed_local(),
                None => futures::future::pending().boxed_local(),
            }
            .fuse();
            futures::select! {
                command = commands.next() => match command {
                    Some(Command::Send { destination, codec, body, options, reply }) => {
                        self.send(destination, &codec, &body, options, reply);
                    }
                    Some(Command::Close(done)) => {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.shutdown();
                        return;
                    }
                },
                event = self.swarm.select_next_some() => self.on_swarm(event),
                () = timer => self.on_timer(),
            }
            self.note_pool_changes(false);
        }
    }

    fn with_shared(&self, f: impl FnOnce(&Shared)) {
        if let Some(shared) = self.shared.upgrade() {
            f(&shared);
        }
    }

    fn shutdown(&mut self) {
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(closed()));
        }
        self.with_shared(|s| {
            s.closed.set(true);
            s.wake();
        });
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn send(
        &mut self,
        destination: Option<PeerId>,
        codec: &str,
        body: &[u8],
        options: SendOptions,
        reply: Reply,
    ) {
        let started = Instant::now();
        let built = self
            .sender
            .destination(destination)
            .and_then(|d| Ok((d, self.sender.send(started, d, codec, body, options)?)));
        let (destination, (id, outgoing)) = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let sent = Instant::now();
        let build_ms = millis(started, sent);
        self.with_shared(|s| {
            let mut stats = s.stats.borrow_mut();
            push_sample(&mut stats.build_ms, build_ms);
            stats.sent = stats.sent.saturating_add(1);
        });
        self.pending.insert(
            id,
            Pending {
                reply,
                destination,
                copies: outgoing.len(),
                build_ms,
                sent,
            },
        );
        for out in outgoing {
            self.first_hops.entry(out.peer).or_default().push_back(id);
            self.swarm
                .behaviour_mut()
                .mix
                .send_after(out.peer, out.addresses, out.frame, out.hold);
        }
    }

    /// Answers request `id`: with the reply (its hops, when it arrived and when it was
    /// opened), or with an error.
    fn finish(&mut self, id: RequestId, result: Result<Answer, MixError>) {
        for queue in self.first_hops.values_mut() {
            queue.retain(|r| *r != id);
        }
        self.first_hops.retain(|_, q| !q.is_empty());
        if let Some(pending) = self.pending.remove(&id) {
            let result = result.map(|answer| Delivery {
                destination: pending.destination,
                body: answer.body,
                trace: Trace {
                    hops: answer
                        .hops
                        .forward
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    reply_hops: answer.hops.back.iter().map(ToString::to_string).collect(),
                    build_ms: pending.build_ms,
                    mixnet_ms: millis(pending.sent, answer.arrived),
                    open_ms: answer.open_ms,
                },
            });
            let _ = pending.reply.send(result);
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        for id in self.sender.expire(now) {
            self.with_shared(|s| {
                let mut stats = s.stats.borrow_mut();
                stats.timeouts = stats.timeouts.saturating_add(1);
            });
            self.finish(id, Err(MixError::from(mix_libp2p::ClientError::Timeout)));
        }
        if self.relisten_at.is_some_and(|at| at <= now) {
            self.relisten_at = None;
            self.relisten();
        }
        if self.next_tick <= now {
            self.next_tick = now + POOL_TICK;
            let client = self.sender.client_mut();
            client.expire_nodes(now);
            for node in &self.static_nodes {
                if client.restore_node(node.clone(), now) {
                    self.added.push(node.peer_id);
                }
            }
        }
        if self
            .discovery
            .as_ref()
            .is_some_and(|d| !d.in_flight && d.schedule.discover_due(now))
        {
            self.lookup_round(now);
        }
        if self.ready.as_ref().is_some_and(|r| r.give_up_at <= now) {
            self.give_up();
        }
    }

    /// Asks the gateway for the first page of mix nodes.
    fn lookup_round(&mut self, now: Instant) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        d.in_flight = true;
        d.pages = 0;
        d.schedule.discovering(now);
        self.swarm.behaviour_mut().rendezvous.discover(
            self.gateway,
            &d.namespace,
            mix_discovery::LOOKUP_PAGE,
            None,
        );
    }

    fn on_rendezvous(&mut self, event: mix_discovery::Event) {
        let now = Instant::now();
        match event {
            mix_discovery::Event::Discovered {
                peer,
                mut records,
                rejected,
                cookie,
                full,
                ..
            } if peer == self.gateway => {
                let Some(d) = self.discovery.as_mut() else {
                    return;
                };
                if rejected > 0 {
                    tracing::debug!(
                        rejected,
                        "rendezvous records without a valid signature or mix key"
                    );
                }
                for (record, _) in &mut records {
                    transports::sort_for_dialing(&mut record.addrs);
                }
                let added = d
                    .schedule
                    .add_records(self.sender.client_mut(), peer, records, now);
                self.added.extend(added);
                if full && d.pages < mix_discovery::MAX_LOOKUP_PAGES {
                    d.pages += 1;
                    self.swarm.behaviour_mut().rendezvous.discover(
                        peer,
                        &d.namespace,
                        mix_discovery::LOOKUP_PAGE,
                        cookie,
                    );
                } else {
                    self.lookup_done(now, None);
                }
            }
            mix_discovery::Event::DiscoverFailed { peer, error, .. } if peer == self.gateway => {
                tracing::debug!(%error, "rendezvous lookup at the gateway failed");
                self.lookup_done(now, Some(error.to_string()));
            }
            _ => {}
        }
    }

    /// A lookup round ended: schedule the next, report the pool after the first, and let
    /// `create` resolve once a path can be built.
    fn lookup_done(&mut self, now: Instant, error: Option<String>) {
        let size = self.sender.client().pool_len();
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        d.in_flight = false;
        d.schedule.discovered(now, size);
        d.rounds = d.rounds.saturating_add(1);
        d.last_error = error;
        let first = d.rounds == 1;
        self.note_pool_changes(first);
        if size >= MIN_ROUTE_NODES
            && let Some(ready) = self.ready.take()
        {
            let _ = ready.done.send(Ok(()));
        }
    }

    /// `create` ran out of time before the pool could route a request.
    fn give_up(&mut self) {
        let Some(ready) = self.ready.take() else {
            return;
        };
        let size = self.sender.client().pool_len();
        let why = self
            .discovery
            .as_ref()
            .and_then(|d| d.last_error.as_deref())
            .map(|e| format!(" (the last lookup failed: {e})"))
            .unwrap_or_default();
        let namespace = self
            .discovery
            .as_ref()
            .map(|d| d.namespace.as_str())
            .unwrap_or_default();
        let _ = ready.done.send(Err(MixError::new(
            Code::NoRoute,
            format!(
                "rendezvous at the gateway {} found {size} mix node(s) in {namespace} within {:?}; \
                 a path needs {MIN_ROUTE_NODES}{why}",
                self.gateway, ready.timeout
            ),
        )));
    }

    /// Reports pool changes as a `pool` event (always when `force`), keeps `stats().poolSize`
    /// current, and warns when the pool falls below nwaku's minimum.
    fn note_pool_changes(&mut self, force: bool) {
        let removed = self.sender.client_mut().take_removed();
        if !force && removed.is_empty() && self.added.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.added);
        let size = self.sender.client().pool_len();
        let below = size < mix_libp2p::MIN_POOL_SIZE;
        if below && !self.below_minimum {
            tracing::warn!(
                pool = size,
                minimum = mix_libp2p::MIN_POOL_SIZE,
                "the mix pool is smaller than the minimum: paths are easy to guess"
            );
        }
        self.below_minimum = below;
        for (peer, why) in &removed {
            tracing::debug!(%peer, ?why, "a mix node left the pool");
        }
        self.with_shared(|s| {
            s.stats.borrow_mut().pool_size = count(size);
            s.emit(ClientEvent::Pool {
                size: count(size),
                added: added.iter().map(ToString::to_string).collect(),
                removed: removed
                    .iter()
                    .map(|(peer, why)| PoolRemoved {
                        peer_id: peer.to_string(),
                        reason: removal_name(*why),
                    })
                    .collect(),
                below_minimum: below,
            });
        });
    }

    fn relisten(&mut self) {
        let Some(addr) = self.gateway_listen.clone() else {
            return;
        };
        match self.swarm.listen_on(addr) {
            Ok(id) => self.listener = Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "re-reserving on the gateway failed");
                self.schedule_relisten();
            }
        }
    }

    fn schedule_relisten(&mut self) {
        self.relisten_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Mix(event)) => self.on_mix(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(event)) => self.on_rendezvous(event),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(
                relay::client::Event::ReservationReqAccepted {
                    relay_peer_id,
                    renewal: false,
                    ..
                },
            )) => {
                self.backoff = Duration::from_secs(1);
                self.with_shared(|s| {
                    s.emit(ClientEvent::Reservation {
                        relay: relay_peer_id.to_string(),
                        address: s.circuit.to_string(),
                    });
                });
            }
            SwarmEvent::ListenerClosed { listener_id, .. }
                if Some(listener_id) == self.listener =>
            {
                self.listener = None;
                let relay = self.gateway.to_string();
                self.with_shared(|s| s.emit(ClientEvent::ReservationLost { relay }));
                self.schedule_relisten();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                concurrent_dial_errors,
                ..
            } => {
                if let Some(address) = first_connection(
                    peer_id,
                    &endpoint,
                    num_established,
                    concurrent_dial_errors.as_deref(),
                ) {
                    let address = address.to_string();
                    self.with_shared(|s| {
                        s.emit(ClientEvent::Connected {
                            peer_id: peer_id.to_string(),
                            address,
                        });
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.with_shared(|s| {
                    s.emit(ClientEvent::Disconnected {
                        peer_id: peer_id.to_string(),
                    });
                });
            }
            _ => {}
        }
    }

    fn on_mix(&mut self, event: mix_libp2p::Event) {
        match event {
            mix_libp2p::Event::Received { mut frame, .. } => {
                let arrived = Instant::now();
                match self.sender.open(&mut frame.packet, now_ms()) {
                    Opened::Delivered {
                        request,
                        body,
                        hops,
                    } => {
                        let open_ms = millis(arrived, Instant::now());
                        self.with_shared(|s| {
                            let mut stats = s.stats.borrow_mut();
                            push_sample(&mut stats.open_ms, open_ms);
                            stats.replies = stats.replies.saturating_add(1);
                        });
                        self.finish(
                            request,
                            Ok(Answer {
                                body,
                                hops,
                                arrived,
                                open_ms,
                            }),
                        );
                    }
                    Opened::Invalid {
                        request,
                        exhausted: true,
                    } => self.finish(
                        request,
                        Err(MixError::from(mix_libp2p::ClientError::InvalidReply)),
                    ),
                    Opened::Invalid { .. } | Opened::Ignored => {
                        tracing::debug!("dropped a packet that is not an awaited reply");
                    }
                }
            }
            mix_libp2p::Event::SendFailed {
                peer,
                frames,
                reason,
            } => {
                // A first hop of ours that cannot be dialed gets a strike; three leave it out of
                // the pool for a while (a fixed one comes back after its quarantine, a
                // discovered one when a lookup lists it again).
                if reason == SendFailure::Dial {
                    self.sender
                        .client_mut()
                        .first_hop_failed(&peer, Instant::now());
                }
                let mut failed = Vec::new();
                if let Some(queue) = self.first_hops.get_mut(&peer) {
                    for _ in 0..frames {
                        let Some(id) = queue.pop_front() else { break };
                        failed.push(id);
                    }
                }
                for id in failed {
                    let Some(pending) = self.pending.get_mut(&id) else {
                        continue;
                    };
                    pending.copies = pending.copies.saturating_sub(1);
                    if pending.copies == 0 {
                        self.sender.cancel(id);
                        self.finish(
                            id,
                            Err(MixError::new(
                                Code::SendFailed,
                                format!("the first hop {peer} could not be reached: {reason:?}"),
                            )),
                        );
                    }
                }
            }
            mix_libp2p::Event::Dropped { peer, reason } => {
                tracing::debug!(%peer, ?reason, "dropped an inbound frame");
            }
        }
    }
}

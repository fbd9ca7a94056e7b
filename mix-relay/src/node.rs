//! A running relay: the libp2p swarm, the packet processor and the exit layer, driven by one
//! tokio task. [`start`] returns a [`RelayHandle`] that tests, the `testnet` command and the
//! `send` command use.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use libp2p::connection_limits;
use libp2p::gossipsub::{self, IdentTopic, TopicHash};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use mix_core::{Delay, PACKET_LEN, Surb};
use mix_discovery::Rounds;
use mix_libp2p::Instant;

use crate::mismatch::MismatchWarnings;
use mix_libp2p::{Frame, MixNode, Sender};
use rand::rngs::StdRng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::time::DelayQueue;

mod forward;
mod lookup;
mod registration;
mod sending;

use crate::limits::{DelayShares, Dials, Limits};
use crate::metrics::{self, DropReason, ExitKind, Metrics};
use crate::processor::{Decision, Processor};
use crate::replay_store::{PersistentReplayFilter, unix_now_ms};
use crate::waku::{self, LIGHTPUSH_PROTOCOL, LightPushService, ServiceConfig, WakuMessage};

mod addresses;
mod enr;
mod handle;
mod settings;
mod streams;
mod swarm;

use addresses::{announced, first_ipv4, without_p2p};
pub use enr::waku_enr;
use handle::Command;
pub(crate) use handle::lightpush_through;
pub use handle::{ExitRequest, LightpushError, NodeInfo, RelayHandle};
use registration::Discovery;
pub use settings::{DiscoverySettings, KeySource, Settings};
use streams::{serve_lightpush_stream, topic_peer_count};
pub use swarm::MixPeers;
use swarm::{Behaviour, BehaviourEvent, build_swarm};

/// Starts a relay and returns once it listens.
///
/// # Errors
/// If the keys cannot be loaded, the replay store opened, a port bound or the metrics server
/// started.
pub async fn start(settings: Settings) -> anyhow::Result<RelayHandle> {
    let keys = settings.keys.load()?;
    let peer_id = keys.peer_id();
    let mix_public = keys.mix_public();
    let replay = match &settings.replay_file {
        Some(path) => PersistentReplayFilter::open(path, settings.replay, unix_now_ms())
            .with_context(|| format!("opening the replay store {}", path.display()))?,
        None => PersistentReplayFilter::in_memory(settings.replay),
    };
    let metrics = Arc::new(Metrics::new());
    metrics.set_replay_store_size(replay.len());

    let mut webtransport = mix_webtransport::Config::new(&keys.identity);
    webtransport.rotate_every = settings.webtransport_rotate_every;
    if settings.webtransport_port.is_some() {
        webtransport
            .check()
            .context("the WebTransport certificate schedule")?;
    }
    let mix_peers = MixPeers::default();
    let mut swarm = build_swarm(
        keys.identity.clone(),
        &settings,
        webtransport,
        mix_peers.clone(),
    )
    .await?;
    let listen = swarm::listen(&mut swarm, &settings, peer_id).await?;
    // The IP a listener on 0.0.0.0 is advertised with.
    let public_ip = first_ipv4(&settings.announce);
    let announce = announced(&settings, &listen, peer_id, public_ip);
    for addr in &announce {
        swarm.add_external_address(addr.clone());
    }
    let me = MixNode::new(peer_id, announce.clone(), mix_public).context(
        "no announced address can be written into a mix packet (IPv4 TCP or QUIC needed)",
    )?;
    let mut sender = Sender::new(me, keys.mix.clone(), settings.delay)
        .with_client(|c| {
            c.with_format(settings.format)
                .with_sender_hold(settings.sender_hold)
        })
        .with_lookups(settings.discovery.lookup)
        // A relay's own frames share each peer's queue with the packets it forwards.
        .with_fail_fast(false);
    sender.set_pool_config(settings.discovery.pool);
    for entry in &settings.mixnodes {
        match MixNode::new(entry.peer_id, vec![entry.addr.clone()], entry.mix_public) {
            Ok(node) => sender.insert_node(node),
            Err(e) => tracing::warn!(peer = %entry.peer_id, error = %e, "mix node skipped"),
        }
    }
    for shard in &settings.shards {
        let topic = IdentTopic::new(waku::pubsub_topic(settings.cluster_id, *shard));
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .context("subscribing to the shard")?;
    }
    for addr in &settings.peers {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "could not dial peer");
        }
    }
    let mut control = swarm.behaviour().stream.new_control();
    let lightpush_streams = streams::accept(&mut control, settings.cluster_id, &settings.shards)?;

    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let metrics_addr = match settings.metrics_addr {
        Some(addr) => {
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (bound, _) = metrics::serve(addr, metrics.clone(), async move {
                let _ = stop_rx.await;
            })
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
            tracing::info!(%bound, "metrics at http://{bound}/metrics");
            Some((bound, stop_tx))
        }
        None => None,
    };
    let (commands_tx, commands_rx) = mpsc::channel(1024);
    let (messages_tx, _) = broadcast::channel(4096);
    let (exit_tx, exit_rx) = mpsc::channel(256);
    let info = NodeInfo {
        peer_id,
        addrs: announce,
        mix_public,
    };
    tracing::info!(%peer_id, mix_public = %hex::encode(mix_public.as_bytes()), addrs = ?info.addrs, "relay listening");
    tracing::info!(
        format = %settings.format,
        sender_hold_ms = settings.sender_hold.map_or(0, Delay::as_millis),
        "wire format (--mix-format): every node of the network must speak the same"
    );
    let enr = match waku_enr(&keys, &info.addrs, settings.cluster_id, &settings.shards) {
        Ok(enr) => {
            tracing::info!(%enr, "ENR");
            Some(enr)
        }
        Err(error) => {
            tracing::warn!(%error, "no ENR for these addresses");
            None
        }
    };
    let (addrs_tx, addrs_rx) = watch::channel(info.addrs.clone());
    let node = Node {
        swarm,
        addrs: addrs_tx,
        public_ip,
        processor: Processor::new(keys.mix.clone(), replay, settings.delay)
            .with_format(settings.format),
        sender,
        lightpush: LightPushService::new(ServiceConfig::new(
            settings.cluster_id,
            settings.shards.clone(),
        )),
        metrics: metrics.clone(),
        delays: DelayQueue::new(),
        local: VecDeque::new(),
        waiting: HashMap::new(),
        peer_id,
        control: control.clone(),
        exit_tx,
        messages: messages_tx.clone(),
        forward_timeout: settings.forward_timeout,
        #[cfg(any(debug_assertions, feature = "test-hooks"))]
        tamper_replies: settings.tamper_replies,
        sender_hold: settings.sender_hold,
        mismatch: MismatchWarnings::default(),
        discovery: Discovery {
            schedule: settings.discovery.schedule(Instant::now()),
            lookup: settings.discovery.lookup,
            rounds: Rounds::new(mix_discovery::mix_namespace(settings.cluster_id)),
            namespace: mix_discovery::mix_namespace(settings.cluster_id),
            identity: keys.identity.clone(),
            record_addrs: info.addrs.iter().map(without_p2p).collect(),
            mix_public,
            points: HashSet::new(),
            registering: 0,
            registered_any: false,
            registered_at: HashMap::new(),
        },
        protocols: HashMap::new(),
        in_flight: Arc::new(AtomicUsize::new(0)),
        forward_in_flight: Arc::new(AtomicUsize::new(0)),
        limits: settings.limits.clone(),
        dials: Dials::default(),
        delay_shares: DelayShares::default(),
        lag: LagWindow::default(),
        replay_alarm: false,
        mix_peers,
        publish_budget: mix_libp2p::RateLimiter::new(
            settings.limits.max_publish_rate,
            settings.limits.max_publish_rate.saturating_mul(2),
        ),
        rng: rand::make_rng(),
    };
    let (metrics_bound, metrics_stop) = match metrics_addr {
        Some((a, s)) => (Some(a), Some(s)),
        None => (None, None),
    };
    let task = tokio::spawn(async move {
        node.run(commands_rx, exit_rx, lightpush_streams, shutdown_rx)
            .await;
        if let Some(stop) = metrics_stop {
            let _ = stop.send(());
        }
    });
    Ok(RelayHandle {
        info,
        addrs: addrs_rx,
        enr,
        listen,
        metrics,
        metrics_addr: metrics_bound,
        commands: commands_tx,
        messages: messages_tx,
        stream_control: control,
        shutdown: Some(shutdown_tx),
        task: Some(task),
    })
}

/// A pending packet-caused dial not reported settled after this long is forgotten (the
/// swarm's dial timeout is 10 s).
const STALE_DIAL: Duration = Duration::from_secs(30);

/// The replay store's fill, percent, above which the relay warns (the metric
/// `mix_replay_store_occupancy_percent` is the alarm to watch).
const REPLAY_ALARM_PERCENT: u64 = 80;

/// A forward-mode exit's result: the response to send back through `surbs`, and the
/// destination if it could not be reached.
struct ExitResult {
    surbs: Vec<Surb>,
    response: Vec<u8>,
    unreachable: Option<Multiaddr>,
}

/// The event loop's longest lag behind its tick, over the current and the previous second.
#[derive(Default)]
struct LagWindow {
    current: Duration,
    previous: Duration,
    started: Option<tokio::time::Instant>,
}

impl LagWindow {
    /// A tick due at `due` ran at `now`; returns the lag to report.
    fn record(&mut self, due: tokio::time::Instant, now: tokio::time::Instant) -> Duration {
        let started = *self.started.get_or_insert(now);
        if now.saturating_duration_since(started) >= Duration::from_secs(1) {
            self.previous = self.current;
            self.current = Duration::ZERO;
            self.started = Some(now);
        }
        self.current = self.current.max(now.saturating_duration_since(due));
        self.current.max(self.previous)
    }
}

struct Node {
    swarm: Swarm<Behaviour>,
    /// The advertised addresses (see [`RelayHandle::current_addrs`]).
    addrs: watch::Sender<Vec<Multiaddr>>,
    /// The IP to advertise for a listener on 0.0.0.0 (the first announced one).
    public_ip: Option<Ipv4Addr>,
    processor: Processor<PersistentReplayFilter>,
    sender: Sender,
    lightpush: LightPushService,
    metrics: Arc<Metrics>,
    /// Delayed packets with their previous hop (none for our own).
    delays: DelayQueue<(Option<PeerId>, mix_core::Address, Box<[u8; PACKET_LEN]>)>,
    /// Packets addressed to this node itself, processed next.
    local: VecDeque<Box<[u8; PACKET_LEN]>>,
    waiting: HashMap<mix_libp2p::RequestId, sending::Reply>,
    peer_id: PeerId,
    control: libp2p_stream::Control,
    exit_tx: mpsc::Sender<ExitResult>,
    messages: broadcast::Sender<(String, WakuMessage)>,
    forward_timeout: Duration,
    /// [`Settings::tamper_replies`].
    #[cfg(any(debug_assertions, feature = "test-hooks"))]
    tamper_replies: bool,
    /// [`Settings::sender_hold`], for our SURB replies.
    sender_hold: Option<Delay>,
    mismatch: MismatchWarnings,
    discovery: Discovery,
    protocols: HashMap<String, mpsc::Sender<ExitRequest>>,
    /// Direct lightpush streams being served.
    in_flight: Arc<AtomicUsize>,
    /// Forward-mode exchanges in progress (a budget apart from `in_flight`).
    forward_in_flight: Arc<AtomicUsize>,
    limits: Limits,
    dials: Dials,
    delay_shares: DelayShares,
    lag: LagWindow,
    /// Whether the replay store is above [`REPLAY_ALARM_PERCENT`].
    replay_alarm: bool,
    /// The pool's peers, for the circuit relay's source policy.
    mix_peers: MixPeers,
    /// Lightpush publishes, all peers together (keyed by our own peer id).
    publish_budget: mix_libp2p::RateLimiter,
    rng: StdRng,
}

/// Counts a task in `Node::in_flight` while it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Node {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut exits: mpsc::Receiver<ExitResult>,
        mut lightpush_streams: libp2p_stream::IncomingStreams,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut flush = tokio::time::interval(Duration::from_secs(1));
        let mut discovery_tick = tokio::time::interval(Duration::from_millis(250));
        let (lp_tx, mut lp_rx) = mpsc::channel::<(Vec<u8>, oneshot::Sender<Vec<u8>>)>(256);
        loop {
            while let Some(packet) = self.local.pop_front() {
                self.on_packet(packet, None);
            }
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(expired) = self.delays.next(), if !self.delays.is_empty() => {
                    let (from, next_hop, packet) = expired.into_inner();
                    if let Some(hop) = from {
                        self.delay_shares.give_back(&hop);
                    }
                    self.send_packet(next_hop, packet);
                    self.metrics.set_delay_queue_depth(self.delays.len());
                }
                Some(command) = commands.recv() => self.on_command(command),
                Some(result) = exits.recv() => {
                    if let Some(addr) = &result.unreachable {
                        self.dials.endpoint_failed(addr, Instant::now());
                    }
                    for surb in result.surbs {
                        self.reply_through(&surb, &result.response);
                    }
                }
                Some((_peer, stream)) = lightpush_streams.next() => {
                    if self.in_flight.load(Ordering::Relaxed) >= self.limits.max_lightpush_in_flight {
                        // Dropping the stream resets it: the client sees the service busy.
                        drop(stream);
                    } else {
                        let tx = lp_tx.clone();
                        let guard = InFlight::enter(&self.in_flight);
                        tokio::spawn(async move {
                            serve_lightpush_stream(stream, tx).await;
                            drop(guard);
                        });
                    }
                }
                Some((request, reply)) = lp_rx.recv() => {
                    let _ = reply.send(self.serve_lightpush(&request).framed);
                }
                due = tick.tick() => {
                    let lag = self.lag.record(due, tokio::time::Instant::now());
                    self.metrics.set_loop_lag(lag);
                    self.on_sender_tick();
                }
                _ = flush.tick() => self.flush_replay(),
                _ = discovery_tick.tick() => self.on_discovery_tick(),
                _ = &mut shutdown => break,
            }
        }
        self.withdraw_registrations().await;
        self.flush_replay();
        tracing::info!(peer = %self.peer_id, "relay stopped");
    }

    fn flush_replay(&mut self) {
        let filter = self.processor.replay_filter();
        if let Err(error) = filter.flush() {
            tracing::error!(%error, "could not persist the replay store");
        }
        let (occupancy, overflow, cut) = (
            filter.occupancy_percent(),
            filter.overflow_len(),
            filter.take_window_cut(),
        );
        self.metrics.set_replay_store_size(filter.len());
        self.metrics.set_replay_occupancy(occupancy, overflow);
        if cut > 0 {
            self.metrics.replay_window_shortened(cut);
            tracing::warn!(
                slices = cut,
                "replay overflow filter at its memory budget: the replay window is shortened"
            );
        }
        let alarm = occupancy >= REPLAY_ALARM_PERCENT;
        if alarm && !self.replay_alarm {
            tracing::warn!(
                occupancy,
                overflow,
                "replay store above {REPLAY_ALARM_PERCENT} % of its capacity (a flood of packets?)"
            );
        }
        self.replay_alarm = alarm;
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send {
                destination,
                codec,
                body,
                options,
                reply,
            } => self.on_send(&destination, &codec, &body, options, reply),
            Command::AddMixNodes(nodes) => {
                for node in nodes {
                    self.sender.insert_node(node);
                }
                self.drain_sender();
            }
            Command::Pool(reply) => {
                let _ = reply.send(self.sender.client().nodes().cloned().collect());
            }
            Command::Dial(addr) => {
                if let Err(error) = self.swarm.dial(addr.clone()) {
                    tracing::debug!(%addr, %error, "dial failed");
                }
            }
            Command::TopicPeers { topic, reply } => {
                let n = topic_peer_count(
                    &self.swarm.behaviour().gossipsub,
                    &TopicHash::from_raw(topic),
                );
                let _ = reply.send(n);
            }
            Command::SendFrame { peer, addrs, frame } => {
                self.swarm.behaviour_mut().mix.send(peer, addrs, frame);
            }
            Command::Register { codec, handler } => {
                self.protocols.insert(codec, handler);
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Mix(event)) => self.on_mix_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(event)) => {
                self.on_rendezvous_event(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // Forward only what decodes as a WakuMessage (nwaku's relay validator).
                let decoded = waku::decode_waku_message(&message.data);
                let verdict = if decoded.is_ok() {
                    gossipsub::MessageAcceptance::Accept
                } else {
                    tracing::debug!(peer = %propagation_source, "undecodable Waku message on relay: rejected");
                    gossipsub::MessageAcceptance::Reject
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
                if let Ok(msg) = decoded {
                    self.metrics.relay_message_received();
                    let _ = self.messages.send((message.topic.into_string(), msg));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info
                    .protocols
                    .iter()
                    .any(|p| p.as_ref() == mix_discovery::PROTOCOL_NAME)
                    && self.discovery.points.insert(peer_id)
                {
                    tracing::debug!(peer = %peer_id, "rendezvous point connected");
                    // A new rendezvous point: register and look up there now.
                    self.discovery.schedule.hurry(Instant::now());
                }
                // Remember where peers listen, so forward-mode exits and streams can dial them.
                for addr in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            SwarmEvent::NewListenAddr { address, .. }
                if mix_webtransport::is_webtransport(&address) =>
            {
                self.on_webtransport_address(&address, true);
            }
            SwarmEvent::ExpiredListenAddr { address, .. }
                if mix_webtransport::is_webtransport(&address) =>
            {
                self.on_webtransport_address(&address, false);
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.dials.settled(&peer_id);
                self.metrics
                    .set_connected_peers(self.swarm.connected_peers().count());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                cause,
                num_established,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, num_established, "connection closed");
                if num_established == 0 {
                    self.discovery.points.remove(&peer_id);
                }
                self.metrics
                    .set_connected_peers(self.swarm.connected_peers().count());
            }
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                ..
            } if cause
                .downcast_ref::<connection_limits::Exceeded>()
                .is_some()
                || cause
                    .downcast_ref::<crate::ip_limits::PerIpExceeded>()
                    .is_some() =>
            {
                self.metrics.connection_denied();
            }
            _ => {}
        }
    }

    fn on_mix_event(&mut self, event: mix_libp2p::Event) {
        match event {
            mix_libp2p::Event::Received { peer, frame } => {
                self.metrics.packet_received();
                self.on_packet(frame.packet, Some(peer));
            }
            mix_libp2p::Event::Dropped { reason, .. } => self.metrics.dropped(reason.into()),
            mix_libp2p::Event::SendFailed {
                peer,
                frames,
                reason,
            } => {
                tracing::debug!(%peer, frames, %reason, "mix send failed");
                if reason == mix_libp2p::SendFailure::Dial {
                    self.dials.failed(peer, Instant::now());
                    self.metrics.set_pending_dials(self.dials.pending());
                }
                // Only a failed dial of our own first hop counts against a pool entry, as one
                // strike: the next hops of forwarded packets are dialed at addresses the
                // packets name, so anyone could fail them (F10). The sender tells.
                self.sender
                    .handle_send_failed(peer, frames, reason, Instant::now());
                self.drain_sender();
                for _ in 0..frames {
                    self.metrics
                        .dropped(if reason == mix_libp2p::SendFailure::QueueFull {
                            DropReason::QueueFull
                        } else {
                            DropReason::SendFailed
                        });
                }
            }
        }
    }

    /// Processes a packet from the previous hop `from` (`None`: one of our own).
    fn on_packet(&mut self, packet: Box<[u8; PACKET_LEN]>, from: Option<PeerId>) {
        match self.processor.process(&mut self.rng, unix_now_ms(), packet) {
            Decision::Forward {
                next_hop,
                delay,
                packet,
            } => {
                let delay = if delay > self.limits.max_delay {
                    self.metrics.delay_capped();
                    self.limits.max_delay
                } else {
                    delay
                };
                if delay.is_zero() {
                    self.send_packet(next_hop, packet);
                } else if self.delays.len() >= self.limits.max_delayed
                    || from
                        .is_some_and(|hop| !self.delay_shares.take(hop, self.limits.delay_share()))
                {
                    self.metrics.dropped(DropReason::QueueFull);
                } else {
                    self.delays.insert((from, next_hop, packet), delay);
                    self.metrics.set_delay_queue_depth(self.delays.len());
                }
            }
            Decision::ExitLocal { codec, surbs, body } => {
                self.metrics.exit_message(ExitKind::ExitIsDestination);
                if let Some(handler) = self.protocols.get(&codec) {
                    let (tx, rx) = if surbs.is_empty() {
                        (None, None)
                    } else {
                        let (tx, rx) = oneshot::channel();
                        (Some(tx), Some(rx))
                    };
                    let request = ExitRequest {
                        codec,
                        body,
                        reply: tx,
                    };
                    if handler.try_send(request).is_err() {
                        self.metrics.dropped(DropReason::QueueFull);
                        return;
                    }
                    if let Some(rx) = rx {
                        let exit_tx = self.exit_tx.clone();
                        let timeout = self.forward_timeout;
                        tokio::spawn(async move {
                            // No answer in time: reply empty, as for an unreachable destination.
                            let response = tokio::time::timeout(timeout, rx)
                                .await
                                .ok()
                                .and_then(Result::ok)
                                .unwrap_or_default();
                            let _ = exit_tx
                                .send(ExitResult {
                                    surbs,
                                    response,
                                    unreachable: None,
                                })
                                .await;
                        });
                    }
                } else if codec == LIGHTPUSH_PROTOCOL {
                    let answer = self.serve_lightpush(&body);
                    for surb in &surbs {
                        self.reply_through(surb, &answer.framed);
                    }
                } else {
                    // No local handler for this codec: Nim's switch would find none either.
                    tracing::debug!(%codec, "exit message for a protocol this node does not serve");
                    self.metrics.dropped(DropReason::Malformed);
                }
            }
            Decision::ExitForward {
                destination,
                codec,
                surbs,
                body,
            } => {
                self.metrics.exit_message(ExitKind::Forward);
                self.forward_to_destination(destination, codec, surbs, body);
            }
            Decision::Reply {
                surb_id,
                mut payload,
            } => self.on_reply(surb_id, &mut payload),
            Decision::Drop(reason) => {
                if reason == DropReason::PayloadIntegrity {
                    self.mismatch.payload_integrity(self.processor.format());
                }
                self.metrics.dropped(reason);
            }
        }
    }

    fn send_packet(&mut self, next_hop: mix_core::Address, packet: Box<[u8; PACKET_LEN]>) {
        self.send_packet_after(next_hop, packet, Duration::ZERO);
    }

    /// [`Node::send_packet`] after `hold` (upstream's sender hold, for SURB replies).
    fn send_packet_after(
        &mut self,
        next_hop: mix_core::Address,
        packet: Box<[u8; PACKET_LEN]>,
        hold: Duration,
    ) {
        let Ok(peer) = mix_libp2p::peer_id(&next_hop.peer_id) else {
            self.metrics.dropped(DropReason::Malformed);
            return;
        };
        if peer == self.peer_id {
            self.metrics.packet_forwarded();
            self.local.push_back(packet);
            return;
        }
        let addr = mix_libp2p::to_multiaddr(&next_hop);
        if !self.swarm.behaviour().mix.is_connected(&peer) {
            if let Err(why) = self.dials.admit(&self.limits, peer, &addr, Instant::now()) {
                tracing::trace!(?why, "next hop not dialed");
                self.metrics.dropped(DropReason::DialRefused);
                return;
            }
            self.metrics.set_pending_dials(self.dials.pending());
        }
        self.metrics.packet_forwarded();
        self.swarm
            .behaviour_mut()
            .mix
            .send_after(peer, vec![addr], Frame::new(packet), hold);
    }

    fn reply_through(&mut self, surb: &Surb, response: &[u8]) {
        let mut packet = Box::new([0u8; PACKET_LEN]);
        let body = if response.len() > surb.format().max_reply_len() {
            tracing::debug!(
                len = response.len(),
                "response too long for a SURB: replying empty"
            );
            &[][..]
        } else {
            response
        };
        if surb
            .build_reply(&mut self.rng, body, packet.as_mut_slice())
            .is_err()
        {
            self.metrics.dropped(DropReason::Malformed);
            return;
        }
        #[cfg(any(debug_assertions, feature = "test-hooks"))]
        if self.tamper_replies {
            // The first byte of δ: within the zero prefix the sender checks.
            packet[mix_core::HEADER_LEN] ^= 0x01;
        }
        self.metrics.reply_sent();
        let hold = self.sender_hold.map_or(Duration::ZERO, |mean| {
            mix_libp2p::sample_sender_hold(mean, &mut self.rng)
        });
        self.send_packet_after(*surb.first_hop(), packet, hold);
    }
}

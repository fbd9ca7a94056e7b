//! A native sender that is not a relay: the one sans-IO [`mix_libp2p::Sender`] driven by a
//! small tokio task with only what a sender needs (TCP with Noise and Yamux, QUIC, DNS;
//! identify, ping, the `/mix/1.0.0` behaviour and a rendezvous client), and no gossipsub, no
//! rendezvous server, no metrics, no packet processor. It listens on one address so its SURB
//! replies can reach it, and peels only its own replies.
//!
//! ```no_run
//! # async fn demo(pool: Vec<mix_libp2p::MixNode>) -> anyhow::Result<()> {
//! use mix_libp2p::{Destination, SendOptions};
//!
//! let sender = mix_relay::sender::start(mix_relay::sender::SenderSettings {
//!     pool,
//!     ..mix_relay::sender::SenderSettings::default()
//! })
//! .await?;
//! let service = sender.pool().await?[0].peer_id;
//! let reply = sender
//!     .send(
//!         Destination::ExitIsDestination(service),
//!         "/vac/waku/lightpush/3.0.0",
//!         b"request".to_vec(),
//!         SendOptions::default(),
//!     )
//!     .await?;
//! # let _ = reply;
//! sender.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, noise, ping, tcp, yamux};
use mix_core::{Delay, DelayStrategy, Format, NodeSecretKey};
use mix_discovery::{LOOKUP_PAGE, Rounds, Schedule, Step};
use mix_libp2p::{
    ClientError, Destination, Instant, MixNode, RequestId, SendOptions, Sender, SenderEvent,
};
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};

use crate::node::LightpushError;
use crate::replay_store::unix_now_ms;
use crate::waku::{LightPushResponse, WakuMessage};

/// What a native sender is given.
#[derive(Clone, Debug)]
pub struct SenderSettings {
    /// Where it listens for its SURB replies (an IPv4 TCP address a packet can carry)
    /// [default: `/ip4/127.0.0.1/tcp/0`].
    pub listen: Multiaddr,
    /// The network's wire format.
    pub format: Format,
    /// The mean sender hold before each first-hop write (`None`: none).
    pub sender_hold: Option<Delay>,
    /// The per-hop delays to encode.
    pub delay: DelayStrategy,
    /// Static pool entries.
    pub pool: Vec<MixNode>,
    /// Relays to connect to and look the pool up at (Waku rendezvous).
    pub bootstrap: Vec<Multiaddr>,
    /// The Waku cluster whose mix namespace is looked up.
    pub cluster_id: u16,
    /// How often to look up once the pool is full.
    pub lookup_every: Duration,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            listen: "/ip4/127.0.0.1/tcp/0"
                .parse()
                .unwrap_or_else(|_| Multiaddr::empty()),
            format: Format::default(),
            sender_hold: None,
            delay: DelayStrategy::NoSampling,
            pool: Vec::new(),
            bootstrap: Vec::new(),
            cluster_id: 2,
            lookup_every: Duration::from_secs(2),
        }
    }
}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mix: mix_libp2p::Behaviour,
    rendezvous: mix_discovery::Behaviour,
}

enum Command {
    Send {
        destination: Destination,
        codec: String,
        body: Vec<u8>,
        options: SendOptions,
        reply: oneshot::Sender<Result<Vec<u8>, ClientError>>,
    },
    AddNodes(Vec<MixNode>),
    Pool(oneshot::Sender<Vec<MixNode>>),
}

/// A running native sender. Dropping it (or [`SenderHandle::shutdown`]) stops it.
#[derive(Debug)]
pub struct SenderHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    address: Multiaddr,
    task: tokio::task::JoinHandle<()>,
}

impl SenderHandle {
    /// This sender's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The address its SURB replies come back to.
    pub fn address(&self) -> &Multiaddr {
        &self.address
    }

    async fn command(&self, command: Command) -> Result<(), LightpushError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| LightpushError::Stopped)
    }

    /// Sends `body` for `codec` and waits for the first reply (an empty body at once with
    /// `options.surbs` 0).
    ///
    /// # Errors
    /// A [`ClientError`] (no route, too long, timeout, first hops unreachable) or
    /// [`LightpushError::Stopped`].
    pub async fn send(
        &self,
        destination: Destination,
        codec: &str,
        body: Vec<u8>,
        options: SendOptions,
    ) -> Result<Vec<u8>, LightpushError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Send {
            destination,
            codec: codec.to_owned(),
            body,
            options,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| LightpushError::Stopped)??)
    }

    /// Publishes `message` on `pubsub_topic` with Waku lightpush v3 at `service` (exit ==
    /// destination) and returns the service's answer.
    ///
    /// # Errors
    /// As [`SenderHandle::send`], and [`LightpushError::BadReply`].
    pub async fn lightpush(
        &self,
        service: PeerId,
        pubsub_topic: &str,
        message: WakuMessage,
        options: SendOptions,
    ) -> Result<LightPushResponse, LightpushError> {
        crate::node::lightpush_through(
            |destination, codec, body, options| self.send(destination, codec, body, options),
            service,
            pubsub_topic,
            message,
            options,
        )
        .await
    }

    /// Adds static pool entries.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`].
    pub async fn add_mix_nodes(&self, nodes: Vec<MixNode>) -> Result<(), LightpushError> {
        self.command(Command::AddNodes(nodes)).await
    }

    /// The pool as it is now.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`].
    pub async fn pool(&self) -> Result<Vec<MixNode>, LightpushError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Pool(reply)).await?;
        rx.await.map_err(|_| LightpushError::Stopped)
    }

    /// Waits until the pool holds `n` nodes or `timeout` passed; returns the pool then.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`].
    pub async fn wait_for_pool(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MixNode>, LightpushError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pool = self.pool().await?;
            if pool.len() >= n || tokio::time::Instant::now() >= deadline {
                return Ok(pool);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the sender; requests still waiting fail with [`LightpushError::Stopped`].
    pub async fn shutdown(self) {
        drop(self.commands);
        let _ = self.task.await;
    }
}

/// Starts a native sender and returns once it listens.
///
/// # Errors
/// If the swarm cannot be built or cannot listen on a packet address.
pub async fn start(settings: SenderSettings) -> anyhow::Result<SenderHandle> {
    let identity = libp2p::identity::Keypair::generate_secp256k1();
    let peer_id = identity.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_dns()?
        .with_behaviour(|key| Behaviour {
            identify: identify::Behaviour::new(
                identify::Config::new("/ipfs/id/1.0.0".into(), key.public())
                    .with_agent_version(format!("mix-sender/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
            mix: mix_libp2p::Behaviour::new(mix_libp2p::Config::new()),
            rendezvous: mix_discovery::Behaviour::new(mix_discovery::Config::client()),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on(settings.listen.clone())?;
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with_p2p(peer_id).unwrap_or_else(|a| a);
        }
    };
    let secret = NodeSecretKey::generate(&mut rand::rng());
    let me = MixNode::new(peer_id, vec![address.clone()], secret.public_key())
        .context("the listen address cannot be written into a mix packet (IPv4 TCP or QUIC)")?;
    let lookups = !settings.bootstrap.is_empty();
    let mut sender = Sender::new(me, secret, settings.delay)
        .with_client(|c| {
            c.with_format(settings.format)
                .with_sender_hold(settings.sender_hold)
        })
        .with_lookups(lookups);
    for node in settings.pool {
        sender.insert_node(node);
    }
    for addr in &settings.bootstrap {
        swarm.dial(addr.clone())?;
    }
    let now = Instant::now();
    let discovery = lookups.then(|| {
        (
            Schedule::new(now, false).with_periods(
                Duration::from_secs(10),
                Duration::from_secs(60),
                settings.lookup_every,
            ),
            Rounds::new(mix_discovery::mix_namespace(settings.cluster_id)),
        )
    });
    let (commands, commands_rx) = mpsc::channel(64);
    let driver = Driver {
        swarm,
        sender,
        rng: rand::make_rng(),
        waiting: HashMap::new(),
        points: Vec::new(),
        discovery,
    };
    let task = tokio::spawn(driver.run(commands_rx));
    Ok(SenderHandle {
        commands,
        peer_id,
        address,
        task,
    })
}

struct Driver {
    swarm: Swarm<Behaviour>,
    sender: Sender,
    rng: StdRng,
    waiting: HashMap<RequestId, oneshot::Sender<Result<Vec<u8>, ClientError>>>,
    /// Connected peers that serve rendezvous.
    points: Vec<PeerId>,
    discovery: Option<(Schedule, Rounds)>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm(event),
                _ = tick.tick() => self.on_tick(),
            }
            self.drain();
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send {
                destination,
                codec,
                body,
                options,
                reply,
            } => match self.sender.send(
                &mut self.rng,
                Instant::now(),
                &destination,
                &codec,
                &body,
                options,
            ) {
                Ok(id) => {
                    self.waiting.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::AddNodes(nodes) => {
                for node in nodes {
                    self.sender.insert_node(node);
                }
            }
            Command::Pool(reply) => {
                let _ = reply.send(self.sender.client().nodes().cloned().collect());
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if self.sender.poll_timeout().is_none_or(|at| at <= now) {
            self.sender.handle_timeout(now);
        }
        if let Some((schedule, rounds)) = self.discovery.as_mut()
            && !rounds.in_flight()
            && schedule.discover_due(now)
        {
            let points = self.points.clone();
            for point in rounds.start(schedule, now, points, &mut self.sender) {
                self.swarm.behaviour_mut().rendezvous.discover(
                    point,
                    rounds.namespace(),
                    LOOKUP_PAGE,
                    None,
                );
            }
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Mix(event)) => match event {
                mix_libp2p::Event::Received { mut frame, .. } => {
                    self.sender.handle_packet(&mut frame.packet, unix_now_ms());
                }
                mix_libp2p::Event::SendFailed {
                    peer,
                    frames,
                    reason,
                } => self.sender.handle_send_failed(peer, frames, reason, now),
                mix_libp2p::Event::Dropped { peer, reason } => {
                    tracing::debug!(%peer, ?reason, "dropped an inbound frame");
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info
                .protocols
                .iter()
                .any(|p| p.as_ref() == mix_discovery::PROTOCOL_NAME)
                && !self.points.contains(&peer_id) =>
            {
                // A new rendezvous point: look up there now.
                self.points.push(peer_id);
                if let Some((schedule, _)) = self.discovery.as_mut() {
                    schedule.hurry(now);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(event)) => {
                let Some((schedule, rounds)) = self.discovery.as_mut() else {
                    return;
                };
                match event {
                    mix_discovery::Event::Discovered {
                        peer,
                        records,
                        cookie,
                        full,
                        ..
                    } => {
                        let (step, _) = rounds.on_page(
                            schedule,
                            &mut self.sender,
                            peer,
                            records,
                            full,
                            cookie,
                            now,
                        );
                        if let Step::Next(cookie) = step {
                            self.swarm.behaviour_mut().rendezvous.discover(
                                peer,
                                rounds.namespace(),
                                LOOKUP_PAGE,
                                cookie,
                            );
                        }
                    }
                    mix_discovery::Event::DiscoverFailed { peer, error, .. } => {
                        rounds.on_failed(schedule, &mut self.sender, peer, error.to_string(), now);
                    }
                    _ => {}
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.points.retain(|p| *p != peer_id),
            _ => {}
        }
    }

    /// Frames to the behaviour, outcomes to their callers.
    fn drain(&mut self) {
        while let Some(out) = self.sender.poll_transmit() {
            self.swarm
                .behaviour_mut()
                .mix
                .send_after(out.peer, out.addresses, out.frame, out.hold);
        }
        while let Some(event) = self.sender.poll_event() {
            let (request, result) = match event {
                SenderEvent::Replied { request, body, .. } => (request, Ok(body)),
                SenderEvent::Sent { request } => (request, Ok(Vec::new())),
                SenderEvent::Failed { request, error } => (request, Err(error)),
                _ => continue,
            };
            if let Some(tx) = self.waiting.remove(&request) {
                let _ = tx.send(result);
            }
        }
    }
}

//! [`RelayHandle`], the API of a running relay, and the commands it sends to the event loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use mix_core::NodePublicKey;
use mix_libp2p::{ClientError, Destination, Frame, MixNode, SendOptions};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::waku::{self, LIGHTPUSH_PROTOCOL, LightPushResponse, ReplyError, WakuMessage};

/// A node's entry in a pool file or a pool: who it is, where, and its mix key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The libp2p peer id.
    pub peer_id: PeerId,
    /// Dialable addresses, each ending in `/p2p/<peer id>`; the first is the TCP one.
    pub addrs: Vec<Multiaddr>,
    /// The X25519 mix public key.
    pub mix_public: NodePublicKey,
}

impl NodeInfo {
    /// The pool entry a sender uses.
    ///
    /// # Errors
    /// If no address can be written into a packet.
    pub fn mix_node(&self) -> Result<MixNode, mix_libp2p::AddressError> {
        MixNode::new(self.peer_id, self.addrs.clone(), self.mix_public)
    }
}

/// Why a lightpush through the mixnet failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LightpushError {
    /// The mix layer failed (no route, too long, timeout).
    #[error(transparent)]
    Mix(#[from] ClientError),
    /// The reply is not the service's answer to the request.
    #[error(transparent)]
    BadReply(#[from] ReplyError),
    /// The relay stopped.
    #[error("the relay has stopped")]
    Stopped,
}

pub(super) enum Command {
    Send {
        destination: Destination,
        codec: String,
        body: Vec<u8>,
        options: SendOptions,
        reply: oneshot::Sender<Result<Vec<u8>, ClientError>>,
    },
    AddMixNodes(Vec<MixNode>),
    Pool(oneshot::Sender<Vec<MixNode>>),
    Dial(Multiaddr),
    TopicPeers {
        topic: String,
        reply: oneshot::Sender<usize>,
    },
    SendFrame {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        frame: Frame,
    },
    Register {
        codec: String,
        handler: mpsc::Sender<ExitRequest>,
    },
}

/// A request that reached this node as the exit (exit == destination) for a protocol registered
/// with [`RelayHandle::register_protocol`].
#[derive(Debug)]
pub struct ExitRequest {
    /// The origin protocol.
    pub codec: String,
    /// The request bytes, exactly as the sender's protocol wrote them.
    pub body: Vec<u8>,
    pub(super) reply: Option<oneshot::Sender<Vec<u8>>>,
}

impl ExitRequest {
    /// Whether the sender attached SURBs (a response will travel back).
    pub fn expects_reply(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers the request through every SURB it carried (at most [`mix_core::MAX_REPLY_LEN`]
    /// bytes; longer responses are replaced by an empty one).
    pub fn respond(self, response: Vec<u8>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(response);
        }
    }
}

/// A running relay. Dropping it does not stop the relay; call [`RelayHandle::shutdown`].
pub struct RelayHandle {
    pub(super) info: NodeInfo,
    pub(super) addrs: watch::Receiver<Vec<Multiaddr>>,
    pub(super) enr: Option<String>,
    pub(super) listen: Vec<Multiaddr>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) metrics_addr: Option<SocketAddr>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) messages: broadcast::Sender<(String, WakuMessage)>,
    pub(super) stream_control: libp2p_stream::Control,
    pub(super) shutdown: Option<oneshot::Sender<()>>,
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
}

impl RelayHandle {
    /// Who and where this relay is.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// Its Waku ENR (`waku2` with the mix bit, `rs`, `multiaddrs`, `mix-key`), if its
    /// addresses fit in one.
    pub fn enr(&self) -> Option<&str> {
        self.enr.as_deref()
    }

    /// The peer id.
    pub fn peer_id(&self) -> PeerId {
        self.info.peer_id
    }

    /// Its advertised addresses now: [`NodeInfo::addrs`] at start, with the WebTransport
    /// ones replaced as its certificates rotate.
    pub fn current_addrs(&self) -> Vec<Multiaddr> {
        self.addrs.borrow().clone()
    }

    /// Changes of [`Self::current_addrs`].
    pub fn watch_addrs(&self) -> watch::Receiver<Vec<Multiaddr>> {
        self.addrs.clone()
    }

    /// Every address it listens on, with `/p2p/<peer id>`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen
    }

    /// Its counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Its counters, to read from another task.
    pub fn shared_metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Where its metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Waku messages this relay receives on its shards (from gossipsub).
    pub fn subscribe_messages(&self) -> broadcast::Receiver<(String, WakuMessage)> {
        self.messages.subscribe()
    }

    /// Raw streams from this node, for tests and tools that write their own bytes.
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.stream_control.clone()
    }

    async fn command(&self, command: Command) -> Result<(), LightpushError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| LightpushError::Stopped)
    }

    /// Adds nodes to this relay's sender pool.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn add_mix_nodes(&self, nodes: Vec<MixNode>) -> Result<(), LightpushError> {
        self.command(Command::AddMixNodes(nodes)).await
    }

    /// The sender pool as it is now: static entries and discovered ones.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn pool(&self) -> Result<Vec<MixNode>, LightpushError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Pool(tx)).await?;
        rx.await.map_err(|_| LightpushError::Stopped)
    }

    /// Waits until the sender pool holds at least `n` nodes, or `timeout` passes; returns the
    /// pool either way.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
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

    /// Dials a peer (e.g. to join the Waku relay mesh).
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), LightpushError> {
        self.command(Command::Dial(addr)).await
    }

    /// How many gossipsub peers are subscribed to `topic`.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn topic_peers(&self, topic: &str) -> Result<usize, LightpushError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::TopicPeers {
            topic: topic.to_owned(),
            reply,
        })
        .await?;
        rx.await.map_err(|_| LightpushError::Stopped)
    }

    /// Sends `body` for `codec` through the mixnet and waits for the first reply (or returns
    /// at once with an empty body when `options.surbs` is 0).
    ///
    /// # Errors
    /// A [`ClientError`] (no route, too long, timeout) or [`LightpushError::Stopped`].
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

    /// Publishes `message` on `pubsub_topic` with Waku lightpush v3 at `service` (which must be
    /// in the pool), through 3 hops with exit == destination, and returns the service's answer.
    ///
    /// # Errors
    /// As [`RelayHandle::send`], and [`LightpushError::BadReply`] (including a response that
    /// answers another request id).
    pub async fn lightpush(
        &self,
        service: PeerId,
        pubsub_topic: &str,
        message: WakuMessage,
        options: SendOptions,
    ) -> Result<LightPushResponse, LightpushError> {
        lightpush_through(
            |destination, codec, body, options| self.send(destination, codec, body, options),
            service,
            pubsub_topic,
            message,
            options,
        )
        .await
    }

    /// Sends a raw frame to `peer` on `/mix/1.0.0` (tools, tests and benchmarks that build
    /// their own packets).
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn send_frame(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        frame: Frame,
    ) -> Result<(), LightpushError> {
        self.command(Command::SendFrame { peer, addrs, frame })
            .await
    }

    /// Handles the exit == destination requests for `codec` in the caller: each arrives as an
    /// [`ExitRequest`] to answer (Nim runs the switch's handler for the codec). Lightpush v3 is
    /// built in; registering it again replaces the built-in service.
    ///
    /// # Errors
    /// [`LightpushError::Stopped`] if the relay has stopped.
    pub async fn register_protocol(
        &self,
        codec: &str,
    ) -> Result<mpsc::Receiver<ExitRequest>, LightpushError> {
        let (handler, rx) = mpsc::channel(1024);
        self.command(Command::Register {
            codec: codec.to_owned(),
            handler,
        })
        .await?;
        Ok(rx)
    }

    /// Stops the relay: closes its listeners, flushes the replay store, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A lightpush v3 request through any sender's `send` (a relay's or the native sender's): one
/// request id, exit == destination at `service`, and the response checked against the id.
pub(crate) async fn lightpush_through<F, Fut>(
    send: F,
    service: PeerId,
    pubsub_topic: &str,
    message: WakuMessage,
    options: SendOptions,
) -> Result<LightPushResponse, LightpushError>
where
    F: FnOnce(Destination, &'static str, Vec<u8>, SendOptions) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, LightpushError>>,
{
    let request_id = waku::request_id(&mut rand::rng());
    let request = waku::encode_request(request_id.clone(), pubsub_topic, message);
    let reply = send(
        Destination::ExitIsDestination(service),
        LIGHTPUSH_PROTOCOL,
        request,
        options,
    )
    .await?;
    Ok(waku::decode_response(&reply, &request_id)?)
}

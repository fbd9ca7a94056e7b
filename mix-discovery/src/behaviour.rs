//! The Waku rendezvous protocol as a libp2p behaviour: one request and one answer per stream
//! (`request_response`), a rendezvous point answering from a [`Registry`] when it serves, and
//! `register`/`discover` calls for the client side. When to call them is the caller's
//! ([`crate::Schedule`]).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use prost::Message as _;
use web_time::Instant;

use crate::proto::{
    Discover, DiscoverResponse, Message, MessageType, Register, RegisterResponse, ResponseStatus,
    Unregister,
};
use crate::record::MixRecord;
use crate::registry::{MAX_TTL, Refusal, Registry, RegistryConfig};

/// The Waku rendezvous protocol id (nwaku's `WakuRendezVousCodec`).
pub const PROTOCOL_NAME: &str = "/vac/waku/rendezvous/1.0.0";
/// The longest request a rendezvous point reads (nim-libp2p's `readLp(4096)`).
pub const MAX_REQUEST_LEN: usize = 4096;
/// The longest answer a client reads (nim-libp2p's `MaximumMessageLen`, 4 MiB).
pub const MAX_RESPONSE_LEN: usize = 4 << 20;

/// The Waku mix namespace of cluster `cluster` (WAKU.md §5.3).
pub fn mix_namespace(cluster: u16) -> String {
    format!("rs/{cluster}/mix")
}

/// Settings of the behaviour.
#[derive(Clone, Debug)]
pub struct Config {
    /// Serve as a rendezvous point with these limits; `None` for a client only (a browser).
    pub server: Option<RegistryConfig>,
    /// How long a request may take.
    pub request_timeout: Duration,
}

impl Config {
    /// A client that does not serve.
    pub fn client() -> Self {
        Self {
            server: None,
            request_timeout: Duration::from_secs(10),
        }
    }

    /// A rendezvous point with nwaku's limits that is also a client.
    pub fn server() -> Self {
        Self {
            server: Some(RegistryConfig::default()),
            ..Self::client()
        }
    }
}

/// Why a client request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The rendezvous point refused it.
    #[error("refused: {status:?} {text:?}")]
    Refused {
        /// Its status.
        status: ResponseStatus,
        /// Its text.
        text: String,
    },
    /// The answer was not the kind asked for.
    #[error("the answer does not match the request")]
    BadResponse,
    /// The peer could not be reached, does not speak the protocol, or did not answer in time.
    #[error("{0}")]
    Network(String),
}

/// What a rendezvous point did for a peer (for metrics; the peer's answer says the same).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Served {
    /// A registration accepted.
    Registered {
        /// Its namespace.
        namespace: String,
    },
    /// A discovery page sent.
    Discovered {
        /// How many registrations it carried.
        registrations: usize,
    },
    /// A registration withdrawn.
    Unregistered,
    /// A request refused with this status.
    Refused(ResponseStatus),
    /// A message that was none of the requests (dropped without an answer).
    Malformed,
}

/// What the behaviour reports.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// Our registration at `peer` was accepted for `ttl`.
    Registered {
        /// The rendezvous point.
        peer: PeerId,
        /// The namespace.
        namespace: String,
        /// The TTL granted.
        ttl: Duration,
    },
    /// Our registration at `peer` failed.
    RegisterFailed {
        /// The rendezvous point.
        peer: PeerId,
        /// The namespace.
        namespace: String,
        /// Why.
        error: Error,
    },
    /// A page of mix nodes from `peer`.
    Discovered {
        /// The rendezvous point.
        peer: PeerId,
        /// The namespace.
        namespace: String,
        /// The records that verified and carry a mix key, with their remaining TTL.
        records: Vec<(MixRecord, Duration)>,
        /// Registrations that did not verify or name no mix key (skipped).
        rejected: usize,
        /// Where the next page starts.
        cookie: Option<Vec<u8>>,
        /// Whether the page was full (another page may follow).
        full: bool,
    },
    /// Our discovery request to `peer` failed.
    DiscoverFailed {
        /// The rendezvous point.
        peer: PeerId,
        /// The namespace.
        namespace: String,
        /// Why.
        error: Error,
    },
    /// Our unregistration at `peer` ended. The rendezvous protocol sends no answer to an
    /// unregistration: the point reads it and closes the stream.
    Unregistered {
        /// The rendezvous point.
        peer: PeerId,
        /// The namespace.
        namespace: String,
        /// Whether the request was written: the stream was open and the point closed it after
        /// reading (or answered anyway). `false`: the point could not be reached.
        delivered: bool,
    },
    /// As a rendezvous point, we answered `peer`.
    Served {
        /// Who asked.
        peer: PeerId,
        /// What we did.
        what: Served,
    },
}

/// Reads and writes uvarint-length-prefixed rendezvous messages (nim-libp2p's
/// `writeLp`/`readLp`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Codec;

async fn read_message<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Message> {
    let len = unsigned_varint::aio::read_usize(&mut *io)
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "rendezvous message too long",
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Message::decode(buf.as_slice()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_message<T: AsyncWrite + Unpin + Send>(io: &mut T, msg: Message) -> io::Result<()> {
    let body = msg.encode_to_vec();
    let mut prefix = unsigned_varint::encode::usize_buffer();
    io.write_all(unsigned_varint::encode::usize(body.len(), &mut prefix))
        .await?;
    io.write_all(&body).await?;
    io.flush().await
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Message;
    type Response = Message;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Message> {
        read_message(io, MAX_REQUEST_LEN).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Message> {
        read_message(io, MAX_RESPONSE_LEN).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Message,
    ) -> io::Result<()> {
        write_message(io, req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Message,
    ) -> io::Result<()> {
        write_message(io, res).await
    }
}

enum Pending {
    Register(String),
    Discover(String, u64),
    Unregister(String),
}

/// The behaviour. See the module docs.
pub struct Behaviour {
    inner: request_response::Behaviour<Codec>,
    registry: Option<Registry>,
    pending: HashMap<OutboundRequestId, (PeerId, Pending)>,
    events: VecDeque<Event>,
    /// The remote IP address of each connection, for the registry's per-address limit.
    remote_ips: HashMap<ConnectionId, IpAddr>,
}

/// The first IP address in `addr` (a relayed connection counts as its relay's address).
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour")
            .field("registry", &self.registry)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn message_type(t: MessageType) -> Option<i32> {
    Some(t as i32)
}

impl Behaviour {
    /// A behaviour with `config`.
    pub fn new(config: Config) -> Self {
        let support = if config.server.is_some() {
            ProtocolSupport::Full
        } else {
            ProtocolSupport::Outbound
        };
        let inner = request_response::Behaviour::with_codec(
            Codec,
            [(StreamProtocol::new(PROTOCOL_NAME), support)],
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );
        Self {
            inner,
            registry: config.server.map(Registry::new),
            pending: HashMap::new(),
            events: VecDeque::new(),
            remote_ips: HashMap::new(),
        }
    }

    /// The rendezvous point's registrations, if we serve.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// Registers our own signed record in our own registry (a rendezvous point lists itself).
    ///
    /// # Errors
    /// As a remote registration would be refused.
    pub fn register_locally(
        &mut self,
        me: PeerId,
        namespace: &str,
        envelope: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), Refusal> {
        let Some(registry) = self.registry.as_mut() else {
            return Ok(());
        };
        registry
            .register(
                me,
                &Register {
                    ns: Some(namespace.to_owned()),
                    signed_peer_record: Some(envelope),
                    ttl: Some(ttl.as_secs()),
                },
                Instant::now(),
            )
            .map(|_| ())
    }

    /// The mix records in our own registry (a rendezvous point is its own first source), with
    /// their remaining TTLs; empty if we do not serve.
    pub fn discover_locally(&mut self, namespace: &str) -> Vec<(MixRecord, Duration)> {
        let Some(registry) = self.registry.as_mut() else {
            return Vec::new();
        };
        let Ok(page) = registry.discover(Some(namespace), Some(u64::MAX), None, Instant::now())
        else {
            return Vec::new();
        };
        page.registrations
            .iter()
            .filter_map(|r| {
                let record = MixRecord::open(r.signed_peer_record.as_deref()?).ok()?;
                Some((record, wire_ttl(r.ttl)))
            })
            .collect()
    }

    /// Tells the behaviour where `peer` can be dialed.
    pub fn add_address(&mut self, peer: &PeerId, address: Multiaddr) {
        #[allow(
            deprecated,
            reason = "the swarm-level address book is not shared with us"
        )]
        self.inner.add_address(peer, address);
    }

    /// Registers the signed record `envelope` in `namespace` at `peer` for `ttl`. The answer
    /// comes as [`Event::Registered`] or [`Event::RegisterFailed`].
    pub fn register(
        &mut self,
        peer: PeerId,
        namespace: &str,
        envelope: Vec<u8>,
        ttl: Duration,
    ) -> OutboundRequestId {
        let request = Message {
            r#type: message_type(MessageType::Register),
            register: Some(Register {
                ns: Some(namespace.to_owned()),
                signed_peer_record: Some(envelope),
                ttl: Some(ttl.as_secs()),
            }),
            ..Message::default()
        };
        let id = self.inner.send_request(&peer, request);
        self.pending
            .insert(id, (peer, Pending::Register(namespace.to_owned())));
        id
    }

    /// Withdraws our registration in `namespace` at `peer` (a node that stops, so that lookups
    /// no longer hand out its record for the rest of its TTL). The end comes as
    /// [`Event::Unregistered`].
    pub fn unregister(&mut self, peer: PeerId, namespace: &str) -> OutboundRequestId {
        let request = Message {
            r#type: message_type(MessageType::Unregister),
            unregister: Some(Unregister {
                ns: Some(namespace.to_owned()),
                id: None,
            }),
            ..Message::default()
        };
        let id = self.inner.send_request(&peer, request);
        self.pending
            .insert(id, (peer, Pending::Unregister(namespace.to_owned())));
        id
    }

    /// Asks `peer` for up to `limit` registrations in `namespace`, after `cookie`. The answer
    /// comes as [`Event::Discovered`] or [`Event::DiscoverFailed`].
    pub fn discover(
        &mut self,
        peer: PeerId,
        namespace: &str,
        limit: u64,
        cookie: Option<Vec<u8>>,
    ) -> OutboundRequestId {
        let request = Message {
            r#type: message_type(MessageType::Discover),
            discover: Some(Discover {
                ns: Some(namespace.to_owned()),
                limit: Some(limit),
                cookie,
            }),
            ..Message::default()
        };
        let id = self.inner.send_request(&peer, request);
        self.pending
            .insert(id, (peer, Pending::Discover(namespace.to_owned(), limit)));
        id
    }

    fn serve(
        &mut self,
        peer: PeerId,
        ip: Option<IpAddr>,
        request: Message,
    ) -> (Option<Message>, Served) {
        let Some(registry) = self.registry.as_mut() else {
            return (None, Served::Malformed);
        };
        let now = Instant::now();
        let refused = |r: &Refusal| Served::Refused(r.status);
        match MessageType::try_from(request.r#type.unwrap_or(-1)) {
            Ok(MessageType::Register) => {
                let body = request.register.unwrap_or_default();
                let namespace = body.ns.clone().unwrap_or_default();
                let (answer, what) = match registry.register_from(peer, ip, &body, now) {
                    Ok(ttl) => (
                        RegisterResponse {
                            status: Some(ResponseStatus::Ok as i32),
                            status_text: None,
                            ttl: Some(ttl),
                        },
                        Served::Registered { namespace },
                    ),
                    Err(r) => (
                        RegisterResponse {
                            status: Some(r.status as i32),
                            status_text: Some(r.text.to_owned()),
                            ttl: None,
                        },
                        refused(&r),
                    ),
                };
                let message = Message {
                    r#type: message_type(MessageType::RegisterResponse),
                    register_response: Some(answer),
                    ..Message::default()
                };
                (Some(message), what)
            }
            Ok(MessageType::Discover) => {
                let body = request.discover.unwrap_or_default();
                let (answer, what) = match registry.discover(
                    body.ns.as_deref(),
                    body.limit,
                    body.cookie.as_deref(),
                    now,
                ) {
                    Ok(page) => {
                        let n = page.registrations.len();
                        (
                            DiscoverResponse {
                                registrations: page.registrations,
                                cookie: Some(page.cookie),
                                status: Some(ResponseStatus::Ok as i32),
                                status_text: None,
                            },
                            Served::Discovered { registrations: n },
                        )
                    }
                    Err(r) => (
                        DiscoverResponse {
                            registrations: Vec::new(),
                            cookie: None,
                            status: Some(r.status as i32),
                            status_text: Some(r.text.to_owned()),
                        },
                        refused(&r),
                    ),
                };
                let message = Message {
                    r#type: message_type(MessageType::DiscoverResponse),
                    discover_response: Some(answer),
                    ..Message::default()
                };
                (Some(message), what)
            }
            Ok(MessageType::Unregister) => {
                let namespace = request.unregister.and_then(|u| u.ns).unwrap_or_default();
                registry.unregister(peer, &namespace);
                (None, Served::Unregistered)
            }
            _ => (None, Served::Malformed),
        }
    }

    fn on_inbound(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        request: Message,
        channel: request_response::ResponseChannel<Message>,
    ) {
        let ip = self.remote_ips.get(&connection).copied();
        let (answer, what) = self.serve(peer, ip, request);
        if let Some(answer) = answer {
            // A peer that went away cannot be answered; nothing else to do.
            let _ = self.inner.send_response(channel, answer);
        }
        self.events.push_back(Event::Served { peer, what });
    }

    fn on_response(&mut self, id: OutboundRequestId, response: Message) {
        let Some((peer, pending)) = self.pending.remove(&id) else {
            return;
        };
        let event = match pending {
            Pending::Register(namespace) => match response.register_response {
                Some(r) if r.status.unwrap_or(0) == ResponseStatus::Ok as i32 => {
                    Event::Registered {
                        peer,
                        namespace,
                        ttl: wire_ttl(r.ttl),
                    }
                }
                Some(r) => Event::RegisterFailed {
                    peer,
                    namespace,
                    error: refusal(r.status, r.status_text),
                },
                None => Event::RegisterFailed {
                    peer,
                    namespace,
                    error: Error::BadResponse,
                },
            },
            Pending::Discover(namespace, limit) => match response.discover_response {
                Some(r) if r.status.unwrap_or(0) == ResponseStatus::Ok as i32 => {
                    let page = DiscoveredPage::read(r, limit);
                    Event::Discovered {
                        peer,
                        namespace,
                        records: page.records,
                        rejected: page.rejected,
                        cookie: page.cookie,
                        full: page.full,
                    }
                }
                Some(r) => Event::DiscoverFailed {
                    peer,
                    namespace,
                    error: refusal(r.status, r.status_text),
                },
                None => Event::DiscoverFailed {
                    peer,
                    namespace,
                    error: Error::BadResponse,
                },
            },
            Pending::Unregister(namespace) => Event::Unregistered {
                peer,
                namespace,
                delivered: true,
            },
        };
        self.events.push_back(event);
    }

    fn on_failure(&mut self, id: OutboundRequestId, error: &OutboundFailure) {
        let Some((peer, pending)) = self.pending.remove(&id) else {
            return;
        };
        // No answer comes to an unregistration: the point closing the stream after reading
        // it (an I/O error on our side) is how it ends.
        let delivered = matches!(error, OutboundFailure::Io(_));
        let error = Error::Network(error.to_string());
        self.events.push_back(match pending {
            Pending::Unregister(namespace) => Event::Unregistered {
                peer,
                namespace,
                delivered,
            },
            Pending::Register(namespace) => Event::RegisterFailed {
                peer,
                namespace,
                error,
            },
            Pending::Discover(namespace, _) => Event::DiscoverFailed {
                peer,
                namespace,
                error,
            },
        });
    }
}

fn refusal(status: Option<i32>, text: Option<String>) -> Error {
    Error::Refused {
        status: status
            .and_then(|s| ResponseStatus::try_from(s).ok())
            .unwrap_or(ResponseStatus::EInternalError),
        text: text.unwrap_or_default(),
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler =
        <request_response::Behaviour<Codec> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = ip_of(remote_addr) {
            self.remote_ips.insert(connection_id, ip);
        }
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = ip_of(addr) {
            self.remote_ips.insert(connection_id, ip);
        }
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(closed) = &event {
            self.remote_ips.remove(&closed.connection_id);
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer, connection_id, event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ToSwarm::GenerateEvent(event));
            }
            match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::GenerateEvent(event)) => match event {
                    request_response::Event::Message {
                        peer,
                        connection_id,
                        message,
                    } => match message {
                        request_response::Message::Request {
                            request, channel, ..
                        } => self.on_inbound(peer, connection_id, request, channel),
                        request_response::Message::Response {
                            request_id,
                            response,
                        } => self.on_response(request_id, response),
                    },
                    request_response::Event::OutboundFailure {
                        request_id, error, ..
                    } => self.on_failure(request_id, &error),
                    request_response::Event::InboundFailure { .. }
                    | request_response::Event::ResponseSent { .. } => {}
                },
                Poll::Ready(other) => {
                    return Poll::Ready(
                        other.map_out(|_| unreachable!("every GenerateEvent is matched above")),
                    );
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// What a lookup answer gives a discovering client, read as [`Behaviour`] reads it for
/// [`Event::Discovered`]: the client side's whole handling of a response page, sans-IO.
#[derive(Clone, Debug)]
pub struct DiscoveredPage {
    /// The records that verified and carry a mix key, with their TTLs (at most [`MAX_TTL`]).
    pub records: Vec<(MixRecord, Duration)>,
    /// Registrations that did not verify or name no mix key (skipped).
    pub rejected: usize,
    /// Where the next page starts.
    pub cookie: Option<Vec<u8>>,
    /// Whether the page was full (another page may follow).
    pub full: bool,
}

impl DiscoveredPage {
    /// Reads the registrations of an OK answer to a lookup that asked for `limit`.
    ///
    /// A point may answer with more than was asked (a 4 MiB page holds ~15k records, each a
    /// signature to check): what lies past `limit` is dropped unread, so a page costs at most
    /// `limit` verifications. TTLs are clamped to [`MAX_TTL`].
    pub fn read(mut response: DiscoverResponse, limit: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let full = response.registrations.len() >= limit;
        response.registrations.truncate(limit);
        let mut records = Vec::with_capacity(response.registrations.len());
        let mut rejected = 0usize;
        for registration in response.registrations {
            match registration
                .signed_peer_record
                .as_deref()
                .map(MixRecord::open)
            {
                Some(Ok(record)) => records.push((record, wire_ttl(registration.ttl))),
                _ => rejected = rejected.saturating_add(1),
            }
        }
        Self {
            records,
            rejected,
            cookie: response.cookie,
            full,
        }
    }
}

/// A TTL from the wire, in seconds, as a duration no longer than [`MAX_TTL`] (nwaku's
/// maximum): a peer can name any `u64`, and a lifetime past the maximum is never honoured.
pub(crate) fn wire_ttl(secs: Option<u64>) -> Duration {
    Duration::from_secs(secs.unwrap_or(0)).min(MAX_TTL)
}

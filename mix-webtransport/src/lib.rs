//! A libp2p WebTransport transport that listens as well as dials (libp2p/specs
//! `webtransport/README.md`), for relays that browsers reach by IP address without a CA
//! certificate.
//!
//! * Addresses: `/ip4|ip6/<ip>/udp/<port>/quic-v1/webtransport/certhash/<current>/certhash/<next>`.
//!   Listen on `/ip4/<ip>/udp/<port>/quic-v1/webtransport`; the transport reports the full
//!   address (with both hashes) as its listen address.
//! * Certificates: self-signed ECDSA P-256 certificates valid for at most 14 days (what
//!   browsers accept when a certificate is pinned by hash), made in memory. Every
//!   [`Config::rotate_every`] the next certificate becomes the presented one and a new next one
//!   is made; the listener then reports the old address expired and the new one. An address
//!   handed out before the rotation still works: it carries the hash of the certificate now
//!   presented, and the Noise handshake vouches for the previous certificate's hash until it
//!   expires.
//! * Session: HTTP/3 `CONNECT` to `/.well-known/libp2p-webtransport?type=noise`; the client
//!   opens the first bidirectional stream and runs the Noise XX handshake on it as initiator;
//!   the server's handshake payload carries the certhashes in the `webtransport_certhashes`
//!   Noise extension and the client checks that those it dialed are among them. The first
//!   stream then closes, and every further bidirectional stream is a libp2p stream.
//!
//! Tokio only (`wtransport` drives QUIC with quinn on tokio): listen and dial from within a
//! tokio runtime.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let swarm = libp2p::SwarmBuilder::with_new_identity()
//!     .with_tokio()
//!     .with_other_transport(|key| mix_webtransport::Transport::new(mix_webtransport::Config::new(key)))?
//!     .with_behaviour(|_| libp2p::ping::Behaviour::default())?
//!     .build();
//! # Ok(()) }
//! ```

mod addr;
mod certs;
mod connection;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::stream::SelectAll;
use futures::{FutureExt as _, StreamExt as _};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade as _, OutboundConnectionUpgrade as _};
use libp2p::identity::Keypair;
use libp2p::multihash::Multihash;
use libp2p::{Multiaddr, PeerId, noise};
use wtransport::endpoint::{IncomingSession, endpoint_side};
use wtransport::tls::Sha256Digest;
use wtransport::{ClientConfig, Endpoint, ServerConfig};

pub use addr::{SHA2_256, is_webtransport, without_certhashes};
pub use certs::{CLOCK_SKEW, MAX_VALIDITY};
pub use connection::{Connection, Stream};

use addr::{WebTransportAddr, listen_multiaddr};
use certs::CertSet;

/// [`Config::rotate_every`] by default: 5 days.
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(5 * 24 * 3600);

/// The HTTP path of a libp2p WebTransport endpoint.
pub const WEBTRANSPORT_PATH: &str = "/.well-known/libp2p-webtransport";
/// The query that selects the Noise handshake.
pub const WEBTRANSPORT_QUERY: &str = "type=noise";

/// Why a listener, dial or session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding or reconfiguring the UDP socket.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// A certificate could not be made.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// The QUIC/HTTP3 session failed or ended.
    #[error("session: {0}")]
    Connection(#[from] wtransport::error::ConnectionError),
    /// Connecting to the server failed (its certificate matched no certhash, no answer, …).
    #[error("connecting: {0}")]
    Connecting(#[from] wtransport::error::ConnectingError),
    /// A stream could not be opened.
    #[error("opening a stream: {0}")]
    StreamOpening(#[from] wtransport::error::StreamOpeningError),
    /// The Noise handshake failed (including certhashes the server did not vouch for).
    #[error("noise: {0}")]
    Noise(#[from] noise::Error),
    /// The session and handshake took too long.
    #[error("the handshake did not finish within {0:?}")]
    Timeout(Duration),
    /// The server is not the peer the address names.
    #[error("dialed {}, reached {}", .0[0], .0[1])]
    PeerIdMismatch(
        /// The peer id in the address, then the one Noise authenticated.
        Box<[PeerId; 2]>,
    ),
    /// A session request for another path (answered 404).
    #[error("a session request for {0:?}, not the libp2p endpoint")]
    WrongPath(String),
    /// A dial address without a SHA-256 certhash: there is no other way to check the server.
    #[error("the address has no SHA-256 certhash")]
    NoCerthash,
}

/// Settings of the transport.
#[derive(Clone)]
pub struct Config {
    keypair: Keypair,
    /// How long each certificate is valid, [`CLOCK_SKEW`] before it was made included; at most
    /// [`MAX_VALIDITY`] (14 days). Default 12 days.
    pub cert_validity: Duration,
    /// How often the presented certificate is replaced by the next one. At most half of
    /// `cert_validity` minus [`CLOCK_SKEW`], so that a certificate advertised as the next one
    /// is still valid for its whole turn. Default 5 days.
    pub rotate_every: Duration,
    /// The session set-up and Noise handshake must finish within this. Default 10 s.
    pub handshake_timeout: Duration,
    /// QUIC idle timeout. Default 30 s.
    pub idle_timeout: Duration,
    /// QUIC keep-alive interval. Default 10 s.
    pub keep_alive: Duration,
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("cert_validity", &self.cert_validity)
            .field("rotate_every", &self.rotate_every)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for the node with identity `keypair`.
    pub fn new(keypair: &Keypair) -> Self {
        Self {
            keypair: keypair.clone(),
            cert_validity: Duration::from_secs(12 * 24 * 3600),
            rotate_every: DEFAULT_ROTATE_EVERY,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
        }
    }

    /// Checks the certificate schedule.
    ///
    /// # Errors
    /// [`Error::Config`] if the validity exceeds 14 days or a certificate would not outlive its
    /// turn as next and current certificate.
    pub fn check(&self) -> Result<(), Error> {
        if self.cert_validity > MAX_VALIDITY {
            return Err(Error::Config(
                "cert_validity exceeds the 14 days browsers accept",
            ));
        }
        if self.rotate_every.is_zero()
            || self.rotate_every.saturating_mul(2) + CLOCK_SKEW > self.cert_validity
        {
            return Err(Error::Config(
                "rotate_every must be positive and at most (cert_validity - 1 h) / 2",
            ));
        }
        Ok(())
    }
}

/// The libp2p WebTransport transport: listens (with certificates it makes and rotates) and
/// dials (checking the server's certificate against the certhashes of the address).
pub struct Transport {
    config: Config,
    listeners: SelectAll<Listener>,
}

impl core::fmt::Debug for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.config)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl Transport {
    /// A transport with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            listeners: SelectAll::new(),
        }
    }
}

/// A pending inbound or outbound connection.
pub type Upgrade = BoxFuture<'static, Result<(PeerId, Connection), Error>>;

impl libp2p::core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = Error;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let parsed = match WebTransportAddr::parse(&addr) {
            Some(p) if p.certhashes.is_empty() && p.peer.is_none() => p,
            _ => return Err(TransportError::MultiaddrNotSupported(addr)),
        };
        self.config.check().map_err(TransportError::Other)?;
        let listener =
            Listener::new(id, parsed.socket, self.config.clone()).map_err(TransportError::Other)?;
        self.listeners.push(listener);
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        match self.listeners.iter_mut().find(|l| l.id == id) {
            Some(listener) => {
                listener.close();
                true
            }
            None => false,
        }
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(parsed) = WebTransportAddr::parse(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        if parsed.socket.ip().is_unspecified() || parsed.socket.port() == 0 {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let digests = parsed.sha256_digests();
        if digests.is_empty() {
            return Err(TransportError::Other(Error::NoCerthash));
        }
        let config = self.config.clone();
        let timeout = config.handshake_timeout;
        Ok(async move {
            tokio::time::timeout(timeout, dial(parsed, digests, config))
                .await
                .map_err(|_| Error::Timeout(timeout))?
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        match self.listeners.poll_next_unpin(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(event),
            _ => Poll::Pending,
        }
    }
}

async fn dial(
    addr: WebTransportAddr,
    digests: Vec<[u8; 32]>,
    config: Config,
) -> Result<(PeerId, Connection), Error> {
    let bind: SocketAddr = if addr.socket.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let client = ClientConfig::builder()
        .with_bind_address(bind)
        .with_server_certificate_hashes(digests.iter().copied().map(Sha256Digest::new))
        .max_idle_timeout(Some(config.idle_timeout))
        .map_err(|_| Error::Config("idle_timeout out of range"))?
        .keep_alive_interval(Some(config.keep_alive))
        .build();
    let endpoint = Endpoint::client(client)?;
    let host = match addr.socket {
        SocketAddr::V4(s) => s.ip().to_string(),
        SocketAddr::V6(s) => format!("[{}]", s.ip()),
    };
    let url = format!(
        "https://{host}:{}{WEBTRANSPORT_PATH}?{WEBTRANSPORT_QUERY}",
        addr.socket.port()
    );
    let session = endpoint.connect(url).await?;
    let first = session.open_bi().await?.await?;
    let certhashes: HashSet<Multihash<64>> = addr.certhashes.iter().copied().collect();
    let noise = noise::Config::new(&config.keypair)?.with_webtransport_certhashes(certhashes);
    let (peer, handshake) = noise.upgrade_outbound(Stream::new(first), "/noise").await?;
    // The handshake stream is used for nothing else.
    drop(handshake);
    if let Some(expected) = addr.peer
        && expected != peer
    {
        session.close(wtransport::VarInt::from_u32(0), b"");
        return Err(Error::PeerIdMismatch(Box::new([expected, peer])));
    }
    Ok((peer, Connection::new(session, Some(endpoint))))
}

/// One listening endpoint: accepts sessions and rotates its certificates.
struct Listener {
    id: ListenerId,
    endpoint: Arc<Endpoint<endpoint_side::Server>>,
    socket: SocketAddr,
    certs: CertSet,
    config: Config,
    accept: BoxFuture<'static, IncomingSession>,
    rotation: Pin<Box<tokio::time::Sleep>>,
    pending: VecDeque<TransportEvent<Upgrade, Error>>,
    closing: bool,
    done: bool,
}

fn server_config(
    socket: SocketAddr,
    certs: &CertSet,
    config: &Config,
) -> Result<ServerConfig, Error> {
    Ok(ServerConfig::builder()
        .with_bind_address(socket)
        .with_identity(certs.current().identity.clone_identity())
        .max_idle_timeout(Some(config.idle_timeout))
        .map_err(|_| Error::Config("idle_timeout out of range"))?
        .keep_alive_interval(Some(config.keep_alive))
        .build())
}

fn accept_next(
    endpoint: &Arc<Endpoint<endpoint_side::Server>>,
) -> BoxFuture<'static, IncomingSession> {
    let endpoint = endpoint.clone();
    async move { endpoint.accept().await }.boxed()
}

impl Listener {
    fn new(id: ListenerId, socket: SocketAddr, config: Config) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config("WebTransport needs a tokio runtime"));
        }
        let certs = CertSet::new(SystemTime::now(), config.cert_validity)?;
        let endpoint = Arc::new(Endpoint::server(server_config(socket, &certs, &config)?)?);
        let socket = endpoint.local_addr()?;
        let address = listen_multiaddr(socket, &certs.advertised());
        tracing::debug!(%address, "WebTransport listener up");
        let pending = VecDeque::from([TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: address,
        }]);
        Ok(Self {
            id,
            accept: accept_next(&endpoint),
            endpoint,
            socket,
            rotation: Box::pin(tokio::time::sleep(config.rotate_every)),
            certs,
            config,
            pending,
            closing: false,
            done: false,
        })
    }

    fn close(&mut self) {
        self.closing = true;
    }

    /// The address now: the socket and the advertised certhashes.
    fn address(&self) -> Multiaddr {
        listen_multiaddr(self.socket, &self.certs.advertised())
    }

    fn rotate(&mut self) -> Result<(), Error> {
        let old = self.address();
        self.certs.rotate(SystemTime::now())?;
        self.endpoint.reload_config(
            server_config(self.socket, &self.certs, &self.config)?,
            false,
        )?;
        let address = self.address();
        tracing::info!(%address, "WebTransport certificate rotated");
        self.pending.push_back(TransportEvent::AddressExpired {
            listener_id: self.id,
            listen_addr: old,
        });
        self.pending.push_back(TransportEvent::NewAddress {
            listener_id: self.id,
            listen_addr: address,
        });
        Ok(())
    }

    fn incoming(&self, session: IncomingSession) -> TransportEvent<Upgrade, Error> {
        let remote = session.remote_address();
        let keypair = self.config.keypair.clone();
        let certhashes = self.certs.noise_hashes(SystemTime::now());
        let timeout = self.config.handshake_timeout;
        let upgrade = async move {
            tokio::time::timeout(timeout, accept(session, keypair, certhashes))
                .await
                .map_err(|_| Error::Timeout(timeout))?
        }
        .boxed();
        TransportEvent::Incoming {
            listener_id: self.id,
            upgrade,
            local_addr: self.address(),
            send_back_addr: listen_multiaddr(remote, &[]),
        }
    }
}

async fn accept(
    session: IncomingSession,
    keypair: Keypair,
    certhashes: HashSet<Multihash<64>>,
) -> Result<(PeerId, Connection), Error> {
    let request = session.await?;
    if !is_libp2p_path(request.path()) {
        let path = request.path().to_owned();
        request.not_found().await;
        return Err(Error::WrongPath(path));
    }
    let session = request.accept().await?;
    let first = session.accept_bi().await?;
    let noise = noise::Config::new(&keypair)?.with_webtransport_certhashes(certhashes);
    let (peer, handshake) = noise.upgrade_inbound(Stream::new(first), "/noise").await?;
    drop(handshake);
    Ok((peer, Connection::new(session, None)))
}

/// `/.well-known/libp2p-webtransport?type=noise` (other query parameters allowed).
fn is_libp2p_path(path: &str) -> bool {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    path == WEBTRANSPORT_PATH && query.split('&').any(|q| q == WEBTRANSPORT_QUERY)
}

/// A WebTransport address as [`parse_for_fuzzing`] reports it: its socket, its SHA-256
/// certhash digests (deduplicated), its peer.
#[doc(hidden)]
pub type ParsedForFuzzing = (SocketAddr, Vec<[u8; 32]>, Option<PeerId>);

/// What the transport reads from untrusted input, for the fuzz target
/// (`fuzz/fuzz_targets/webtransport_addr.rs`): whether `path` is the libp2p session path, and
/// `addr` parsed as a WebTransport address.
///
/// Only for the fuzz targets: not part of the API.
#[doc(hidden)]
pub fn parse_for_fuzzing(path: &str, addr: &Multiaddr) -> (bool, Option<ParsedForFuzzing>) {
    let parsed = WebTransportAddr::parse(addr).map(|a| (a.socket, a.sha256_digests(), a.peer));
    (is_libp2p_path(path), parsed)
}

impl futures::Stream for Listener {
    type Item = TransportEvent<Upgrade, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(event) = self.pending.pop_front() {
            return Poll::Ready(Some(event));
        }
        if self.closing {
            self.done = true;
            self.endpoint.close(wtransport::VarInt::from_u32(0), b"");
            return Poll::Ready(Some(TransportEvent::ListenerClosed {
                listener_id: self.id,
                reason: Ok(()),
            }));
        }
        if self.rotation.as_mut().poll(cx).is_ready() {
            let next = tokio::time::Instant::now() + self.config.rotate_every;
            self.rotation.as_mut().reset(next);
            if let Err(error) = self.rotate() {
                // The old certificates stay in use; the next period tries again.
                tracing::warn!(%error, "WebTransport certificate rotation failed");
                return Poll::Ready(Some(TransportEvent::ListenerError {
                    listener_id: self.id,
                    error,
                }));
            }
            // The expired and the new address, which the rotation queued.
            return Poll::Ready(self.pending.pop_front());
        }
        if let Poll::Ready(session) = self.accept.poll_unpin(cx) {
            self.accept = accept_next(&self.endpoint);
            let event = self.incoming(session);
            return Poll::Ready(Some(event));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_noise_endpoint_is_served() {
        assert!(is_libp2p_path(
            "/.well-known/libp2p-webtransport?type=noise"
        ));
        assert!(is_libp2p_path(
            "/.well-known/libp2p-webtransport?x=1&type=noise"
        ));
        assert!(!is_libp2p_path("/.well-known/libp2p-webtransport"));
        assert!(!is_libp2p_path("/.well-known/libp2p-webtransport?type=tls"));
        assert!(!is_libp2p_path("/?type=noise"));
    }

    #[test]
    fn the_schedule_is_checked() {
        let key = Keypair::generate_ed25519();
        let mut config = Config::new(&key);
        assert!(config.check().is_ok());
        config.cert_validity = MAX_VALIDITY + Duration::from_secs(1);
        assert!(config.check().is_err());
        config.cert_validity = Duration::from_secs(12 * 24 * 3600);
        config.rotate_every = Duration::from_secs(6 * 24 * 3600);
        assert!(
            config.check().is_err(),
            "a next certificate would expire in its turn"
        );
        config.rotate_every = Duration::ZERO;
        assert!(config.check().is_err());
        config.rotate_every = Duration::from_secs(2);
        assert!(config.check().is_ok());
    }

    #[tokio::test]
    async fn listen_addresses_carry_two_certhashes_and_rotate() {
        use libp2p::core::Transport as _;
        let key = Keypair::generate_ed25519();
        let mut config = Config::new(&key);
        config.rotate_every = Duration::from_millis(300);
        let mut transport = Transport::new(config);
        let id = ListenerId::next();
        transport
            .listen_on(
                id,
                "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"
                    .parse()
                    .expect("addr"),
            )
            .expect("listens");
        assert!(matches!(
            transport.listen_on(
                ListenerId::next(),
                "/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("addr")
            ),
            Err(TransportError::MultiaddrNotSupported(_))
        ));
        let mut transport = Box::pin(transport);
        async fn next(t: &mut Pin<Box<Transport>>) -> TransportEvent<Upgrade, Error> {
            futures::future::poll_fn(|cx| t.as_mut().poll(cx)).await
        }
        let TransportEvent::NewAddress {
            listen_addr: first, ..
        } = next(&mut transport).await
        else {
            panic!("a new address first");
        };
        let parsed = WebTransportAddr::parse(&first).expect("a WebTransport address");
        assert_ne!(parsed.socket.port(), 0);
        assert_eq!(parsed.sha256_digests().len(), 2);
        let TransportEvent::AddressExpired {
            listen_addr: expired,
            ..
        } = next(&mut transport).await
        else {
            panic!("the rotation expires the address");
        };
        assert_eq!(expired, first);
        let TransportEvent::NewAddress {
            listen_addr: second,
            ..
        } = next(&mut transport).await
        else {
            panic!("and reports the new one");
        };
        let second = WebTransportAddr::parse(&second).expect("parses");
        assert_eq!(second.socket, parsed.socket);
        assert_eq!(
            second.certhashes[0], parsed.certhashes[1],
            "next became current"
        );
        assert_ne!(second.certhashes[1], parsed.certhashes[0]);
    }
}

//! The rendezvous point's state, sans-IO: registrations by namespace with their TTLs, and
//! discovery in pages with cookies. The caller passes the time.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use libp2p::PeerId;
use prost::Message as _;
use web_time::Instant;

use crate::proto::{Cookie, Register, ResponseStatus};
use crate::record::{self, RecordError};

/// The longest registration lifetime honoured, wherever a TTL comes from the wire: nwaku's
/// maximum (72 h, WAKU.md §5.3).
pub const MAX_TTL: Duration = Duration::from_secs(72 * 3600);

/// The rendezvous point's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The shortest TTL accepted.
    pub min_ttl: Duration,
    /// The longest TTL accepted (a longer one is refused as invalid).
    pub max_ttl: Duration,
    /// The longest TTL granted: an accepted TTL above it is cut to it, and the answer says so
    /// (a registration that lapses is renewed by its node every few seconds; a long one would
    /// let whoever fills the registry hold it for that long).
    pub max_granted_ttl: Duration,
    /// The TTL of a registration that names none.
    pub default_ttl: Duration,
    /// The most registrations one peer may hold (over all namespaces).
    pub max_per_peer: usize,
    /// The most registrations held for peers connected from one IP address (an IPv6 /64
    /// counts as one address); registrations without a known address are not counted.
    pub max_per_ip: usize,
    /// The most registrations held in all; more are refused as unavailable.
    pub max_total: usize,
    /// The most registrations one discover answer carries.
    pub max_discover: u64,
}

impl Default for RegistryConfig {
    /// nwaku's accepted TTLs (WAKU.md §5.3): 60 s to 72 h, 60 s when unnamed, but at most
    /// 5 min granted; at most 16 registrations per peer, 32 per IP address, 1000 per answer
    /// (nim-libp2p) and 50,000 held.
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(60),
            max_ttl: MAX_TTL,
            max_granted_ttl: Duration::from_secs(300),
            default_ttl: Duration::from_secs(60),
            max_per_peer: 16,
            max_per_ip: 32,
            max_total: 50_000,
            max_discover: 1000,
        }
    }
}

/// The longest namespace accepted (nim-libp2p's `MaximumNamespaceLen`).
pub const MAX_NAMESPACE_LEN: usize = 255;

/// Why a request was refused: the status and its text, as sent back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub status: ResponseStatus,
    /// The text sent with it.
    pub text: &'static str,
}

impl Refusal {
    const fn new(status: ResponseStatus, text: &'static str) -> Self {
        Self { status, text }
    }
}

/// The unit [`RegistryConfig::max_per_ip`] counts: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct IpKey(u128);

impl IpKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(u128::from(u32::from(v4))),
                // The /64 prefix, its low bit set to keep it apart from IPv4 addresses.
                None => Self((u128::from(v6) & !u128::from(u64::MAX)) | 1),
            },
        }
    }
}

struct Entry {
    namespace: String,
    peer: PeerId,
    ip: Option<IpKey>,
    /// The signed envelope as it came.
    record: Vec<u8>,
    expires: Instant,
}

/// Registrations, in the order they were made: a cookie is the offset to continue from.
#[derive(Default)]
pub struct Registry {
    config: RegistryConfig,
    log: BTreeMap<u64, Entry>,
    by_key: HashMap<(String, PeerId), u64>,
    per_peer: HashMap<PeerId, usize>,
    per_ip: HashMap<IpKey, usize>,
    next: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("registrations", &self.log.len())
            .finish_non_exhaustive()
    }
}

/// One page of a discovery answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The registrations, each with its remaining TTL in seconds.
    pub registrations: Vec<Register>,
    /// Where the next page starts.
    pub cookie: Vec<u8>,
}

fn check_namespace(namespace: &str) -> Result<(), Refusal> {
    if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_LEN {
        return Err(Refusal::new(
            ResponseStatus::EInvalidNamespace,
            "invalid namespace",
        ));
    }
    Ok(())
}

impl Registry {
    /// An empty registry with `config`.
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// How many registrations are held (expired ones included until the next pass).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// How many registrations are held for peers connected from `ip` (its /64 for IPv6).
    pub fn from_ip(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&IpKey::of(ip)).copied().unwrap_or(0)
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Drops the registrations expired at `now`.
    pub fn expire(&mut self, now: Instant) {
        let gone: Vec<u64> = self
            .log
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(o, _)| *o)
            .collect();
        for offset in gone {
            self.remove(offset);
        }
    }

    fn remove(&mut self, offset: u64) {
        if let Some(entry) = self.log.remove(&offset) {
            self.by_key.remove(&(entry.namespace, entry.peer));
            if let Some(n) = self.per_peer.get_mut(&entry.peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_peer.remove(&entry.peer);
                }
            }
            if let Some(ip) = entry.ip
                && let Some(n) = self.per_ip.get_mut(&ip)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }

    /// `peer` registers `request` at `now`, from no known address (our own record). See
    /// [`Registry::register_from`].
    ///
    /// # Errors
    /// The refusal to send back.
    pub fn register(
        &mut self,
        peer: PeerId,
        request: &Register,
        now: Instant,
    ) -> Result<u64, Refusal> {
        self.register_from(peer, None, request, now)
    }

    /// `peer`, connected from `ip`, registers `request` at `now`. The record must be a Waku
    /// peer record signed by `peer` itself. Returns the TTL granted, in seconds: the one asked
    /// for, cut to [`RegistryConfig::max_granted_ttl`].
    ///
    /// # Errors
    /// The refusal to send back.
    pub fn register_from(
        &mut self,
        peer: PeerId,
        ip: Option<IpAddr>,
        request: &Register,
        now: Instant,
    ) -> Result<u64, Refusal> {
        let namespace = request.ns.as_deref().unwrap_or_default();
        check_namespace(namespace)?;
        let ttl = request
            .ttl
            .map_or(self.config.default_ttl, Duration::from_secs);
        if ttl < self.config.min_ttl || ttl > self.config.max_ttl {
            return Err(Refusal::new(ResponseStatus::EInvalidTtl, "invalid ttl"));
        }
        let ttl = ttl.min(self.config.max_granted_ttl.max(self.config.min_ttl));
        let Some(expires) = now.checked_add(ttl) else {
            return Err(Refusal::new(ResponseStatus::EInvalidTtl, "invalid ttl"));
        };
        let ip = ip.map(IpKey::of);
        let envelope = request.signed_peer_record.as_deref().unwrap_or_default();
        match record::open_envelope(envelope) {
            Ok((signer, _)) if signer == peer => {}
            Ok(_) | Err(RecordError::WrongSigner) => {
                return Err(Refusal::new(
                    ResponseStatus::ENotAuthorized,
                    "the record is not the peer's own",
                ));
            }
            Err(_) => {
                return Err(Refusal::new(
                    ResponseStatus::EInvalidSignedPeerRecord,
                    "invalid signed peer record",
                ));
            }
        }
        self.expire(now);
        let key = (namespace.to_owned(), peer);
        let replaced = self.by_key.get(&key).copied();
        let same_ip = replaced
            .and_then(|offset| self.log.get(&offset))
            .is_some_and(|entry| entry.ip == ip);
        if let Some(ip) = ip
            && !same_ip
            && self.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.max_per_ip
        {
            return Err(Refusal::new(
                ResponseStatus::ENotAuthorized,
                "too many registrations from this address",
            ));
        }
        if replaced.is_none() {
            if self.per_peer.get(&peer).copied().unwrap_or(0) >= self.config.max_per_peer {
                return Err(Refusal::new(
                    ResponseStatus::ENotAuthorized,
                    "too many registrations",
                ));
            }
            if self.log.len() >= self.config.max_total {
                return Err(Refusal::new(ResponseStatus::EUnavailable, "registry full"));
            }
        }
        if let Some(offset) = replaced {
            self.remove(offset);
        }
        let offset = self.next;
        self.next = self.next.saturating_add(1);
        self.log.insert(
            offset,
            Entry {
                namespace: key.0.clone(),
                peer,
                ip,
                record: envelope.to_vec(),
                expires,
            },
        );
        self.by_key.insert(key, offset);
        let count = self.per_peer.entry(peer).or_default();
        *count = count.saturating_add(1);
        if let Some(ip) = ip {
            let count = self.per_ip.entry(ip).or_default();
            *count = count.saturating_add(1);
        }
        Ok(ttl.as_secs())
    }

    /// `peer` withdraws its registration in `namespace`.
    pub fn unregister(&mut self, peer: PeerId, namespace: &str) {
        if let Some(offset) = self.by_key.get(&(namespace.to_owned(), peer)).copied() {
            self.remove(offset);
        }
    }

    /// Up to `limit` live registrations in `namespace` (all namespaces if `None`), from where
    /// `cookie` left off.
    ///
    /// # Errors
    /// A bad namespace, or a cookie that does not decode.
    pub fn discover(
        &mut self,
        namespace: Option<&str>,
        limit: Option<u64>,
        cookie: Option<&[u8]>,
        now: Instant,
    ) -> Result<Page, Refusal> {
        if let Some(ns) = namespace {
            check_namespace(ns)?;
        }
        // As nim-libp2p: an undecodable cookie is an error; one for another namespace or past
        // the end starts over.
        let start = match cookie {
            None => 0,
            Some(bytes) => {
                let cookie = Cookie::decode(bytes)
                    .map_err(|_| Refusal::new(ResponseStatus::EInvalidCookie, "invalid cookie"))?;
                if cookie.ns.as_deref() != namespace || cookie.offset > self.next {
                    0
                } else {
                    cookie.offset
                }
            }
        };
        self.expire(now);
        let limit = limit
            .unwrap_or(self.config.max_discover)
            .clamp(1, self.config.max_discover);
        let mut registrations = Vec::new();
        let mut end = start;
        for (offset, entry) in self.log.range(start..) {
            if namespace.is_some_and(|ns| ns != entry.namespace) {
                continue;
            }
            if registrations.len() as u64 >= limit {
                break;
            }
            end = offset.saturating_add(1);
            registrations.push(Register {
                ns: Some(entry.namespace.clone()),
                signed_peer_record: Some(entry.record.clone()),
                ttl: Some(entry.expires.saturating_duration_since(now).as_secs()),
            });
        }
        if registrations.is_empty() {
            end = end.max(start);
        }
        let cookie = Cookie {
            offset: end,
            ns: namespace.map(str::to_owned),
        };
        Ok(Page {
            registrations,
            cookie: cookie.encode_to_vec(),
        })
    }
}

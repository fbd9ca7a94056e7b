//! The rendezvous protobuf (libp2p rendezvous spec, as nim-libp2p's `rendezvous.nim` encodes
//! it; nwaku runs it under `/vac/waku/rendezvous/1.0.0`) and the `WakuPeerRecord` payload.
//!
//! Field numbers and enum values are the published `rendezvous.proto`; every field is optional
//! on the wire, as in proto2, so a message with a field left out decodes and is then checked by
//! the code that uses it.

/// The message kinds (`Message.MessageType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MessageType {
    /// A registration request.
    Register = 0,
    /// The answer to a registration.
    RegisterResponse = 1,
    /// Removing a registration (no answer).
    Unregister = 2,
    /// A discovery request.
    Discover = 3,
    /// The answer to a discovery request.
    DiscoverResponse = 4,
}

/// Status codes (`Message.ResponseStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseStatus {
    /// Success.
    Ok = 0,
    /// The namespace is empty or too long.
    EInvalidNamespace = 100,
    /// The signed peer record does not verify or does not parse.
    EInvalidSignedPeerRecord = 101,
    /// The TTL is outside the server's bounds.
    EInvalidTtl = 102,
    /// The cookie is not one the server issued for this namespace.
    EInvalidCookie = 103,
    /// The record is not the registering peer's own.
    ENotAuthorized = 200,
    /// The server failed.
    EInternalError = 300,
    /// The server does not serve the request now (e.g. too many registrations).
    EUnavailable = 400,
}

/// `Message.Register`: a namespace, a signed record and a TTL in seconds.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Register {
    /// `optional string ns = 1`.
    #[prost(string, optional, tag = "1")]
    pub ns: Option<String>,
    /// `optional bytes signedPeerRecord = 2`: a signed envelope.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signed_peer_record: Option<Vec<u8>>,
    /// `optional uint64 ttl = 3`, seconds.
    #[prost(uint64, optional, tag = "3")]
    pub ttl: Option<u64>,
}

/// `Message.RegisterResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RegisterResponse {
    /// `optional ResponseStatus status = 1`.
    #[prost(enumeration = "ResponseStatus", optional, tag = "1")]
    pub status: Option<i32>,
    /// `optional string statusText = 2`.
    #[prost(string, optional, tag = "2")]
    pub status_text: Option<String>,
    /// `optional uint64 ttl = 3`: the TTL granted.
    #[prost(uint64, optional, tag = "3")]
    pub ttl: Option<u64>,
}

/// `Message.Unregister`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Unregister {
    /// `optional string ns = 1`.
    #[prost(string, optional, tag = "1")]
    pub ns: Option<String>,
    /// `optional bytes id = 2` (unused by nim-libp2p).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub id: Option<Vec<u8>>,
}

/// `Message.Discover`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Discover {
    /// `optional string ns = 1`.
    #[prost(string, optional, tag = "1")]
    pub ns: Option<String>,
    /// `optional uint64 limit = 2`.
    #[prost(uint64, optional, tag = "2")]
    pub limit: Option<u64>,
    /// `optional bytes cookie = 3`: where the previous page ended.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub cookie: Option<Vec<u8>>,
}

/// `Message.DiscoverResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DiscoverResponse {
    /// `repeated Register registrations = 1`.
    #[prost(message, repeated, tag = "1")]
    pub registrations: Vec<Register>,
    /// `optional bytes cookie = 2`.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub cookie: Option<Vec<u8>>,
    /// `optional ResponseStatus status = 3`.
    #[prost(enumeration = "ResponseStatus", optional, tag = "3")]
    pub status: Option<i32>,
    /// `optional string statusText = 4`.
    #[prost(string, optional, tag = "4")]
    pub status_text: Option<String>,
}

/// `Message`: the type and the one body that goes with it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Message {
    /// `optional MessageType type = 1`.
    #[prost(enumeration = "MessageType", optional, tag = "1")]
    pub r#type: Option<i32>,
    /// `optional Register register = 2`.
    #[prost(message, optional, tag = "2")]
    pub register: Option<Register>,
    /// `optional RegisterResponse registerResponse = 3`.
    #[prost(message, optional, tag = "3")]
    pub register_response: Option<RegisterResponse>,
    /// `optional Unregister unregister = 4`.
    #[prost(message, optional, tag = "4")]
    pub unregister: Option<Unregister>,
    /// `optional Discover discover = 5`.
    #[prost(message, optional, tag = "5")]
    pub discover: Option<Discover>,
    /// `optional DiscoverResponse discoverResponse = 6`.
    #[prost(message, optional, tag = "6")]
    pub discover_response: Option<DiscoverResponse>,
}

/// nim-libp2p's discovery cookie: the offset into the server's registration log and the
/// namespace it belongs to. Opaque to clients.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Cookie {
    /// `offset = 1`.
    #[prost(uint64, tag = "1")]
    pub offset: u64,
    /// `ns = 2`.
    #[prost(string, optional, tag = "2")]
    pub ns: Option<String>,
}

/// The payload of a Waku rendezvous record, as nwaku writes it (WAKU.md §5.3): the spec's
/// `WakuPeerRecord` with field 4, the mix key, as the ASCII string `"0x" + 64 hex`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WakuPeerRecord {
    /// `peer_id = 1`: the peer id's bytes (its multihash).
    #[prost(bytes = "vec", tag = "1")]
    pub peer_id: Vec<u8>,
    /// `seqNo = 2`: Unix seconds when the record was made; a newer record replaces an older one.
    #[prost(uint64, tag = "2")]
    pub seq_no: u64,
    /// `multiaddrs = 3`: binary multiaddrs.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub multiaddrs: Vec<Vec<u8>>,
    /// `mix key = 4`: `"0x"` and the 64 hex characters of the X25519 public key.
    #[prost(string, optional, tag = "4")]
    pub mix_key: Option<String>,
}

//! 66/WAKU2-METADATA (`/vac/waku/metadata/1.0.0`): a peer asks which cluster and shards a node
//! serves, sending its own. js-waku and nwaku run it right after identify; nwaku drops peers of
//! another cluster. One length-prefixed request and response per stream.

/// The protocol id.
pub const METADATA_PROTOCOL: &str = "/vac/waku/metadata/1.0.0";

/// The most bytes a metadata message may take (nwaku's `RpcResponseMaxBytes`).
pub const MAX_METADATA_LEN: usize = 1024;

/// `WakuMetadataRequest { optional uint32 cluster_id = 1; repeated uint32 shards = 2; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WakuMetadataRequest {
    /// The asking peer's cluster.
    #[prost(uint32, optional, tag = "1")]
    pub cluster_id: Option<u32>,
    /// Its shards.
    #[prost(uint32, repeated, packed = "false", tag = "2")]
    pub shards: Vec<u32>,
}

/// `WakuMetadataResponse`, the same fields for the answering node.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WakuMetadataResponse {
    /// This node's cluster.
    #[prost(uint32, optional, tag = "1")]
    pub cluster_id: Option<u32>,
    /// The shards it serves.
    #[prost(uint32, repeated, packed = "false", tag = "2")]
    pub shards: Vec<u32>,
}

/// The framed response a node serving `cluster_id` and `shards` gives to every request.
pub fn response(cluster_id: u16, shards: &[u16]) -> Vec<u8> {
    super::encode_length_prefixed(&WakuMetadataResponse {
        cluster_id: Some(u32::from(cluster_id)),
        shards: shards.iter().map(|s| u32::from(*s)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn the_response_is_the_published_schema() {
        let bytes = response(2, &[0, 7]);
        // uvarint 6 ‖ 08 02 (cluster 2) ‖ 10 00 ‖ 10 07 (shards 0 and 7, unpacked as nwaku writes)
        assert_eq!(bytes, [6, 0x08, 0x02, 0x10, 0x00, 0x10, 0x07]);
        let decoded = WakuMetadataResponse::decode(&bytes[1..]).unwrap();
        assert_eq!((decoded.cluster_id, decoded.shards), (Some(2), vec![0, 7]));
    }

    #[test]
    fn packed_requests_decode_too() {
        // js-waku (protons) may pack repeated scalars: 12 02 00 07.
        let request =
            WakuMetadataRequest::decode(&[0x08, 0x02, 0x12, 0x02, 0x00, 0x07][..]).unwrap();
        assert_eq!((request.cluster_id, request.shards), (Some(2), vec![0, 7]));
    }
}

//! The pool file `mix-relay testnet` writes and `mix-relay send` reads: for each node its peer
//! id, multiaddrs and X25519 public key (hex), plus nwaku's `--mixnode` form of the entry.

use std::path::Path;

use anyhow::Context as _;
use libp2p::{Multiaddr, PeerId};
use mix_core::Format;
use serde::{Deserialize, Serialize};

use crate::keys::{self, MixNodeEntry};
use crate::node::NodeInfo;

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFile {
    /// The wire format the nodes speak (`lip183` or `v039`); absent in files written before
    /// there were two, which are read as the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The mean per-hop delay in ms the nodes sample (0: Nim's 0–2 ms), so that a sender
    /// encodes what the network's own senders do; absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_delay_ms: Option<u16>,
    /// The Waku cluster the nodes serve.
    pub cluster_id: u16,
    /// The shards they serve.
    pub shards: Vec<u16>,
    /// The nodes.
    pub nodes: Vec<PoolNode>,
}

/// One node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolNode {
    /// The libp2p peer id (base58).
    pub peer_id: String,
    /// Its multiaddrs, each ending in `/p2p/<peer id>`; the first is the TCP one.
    pub multiaddrs: Vec<String>,
    /// The X25519 mix public key, 64 hex characters.
    pub mix_public_key: String,
    /// The same entry as nwaku's `--mixnode=<multiaddr>:<key>` takes it.
    pub mixnode: String,
    /// The node's Waku ENR (also accepted by `--mixnode`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enr: Option<String>,
}

impl PoolNode {
    /// The entry for a running node, with its ENR and its addresses as they are now (a
    /// WebTransport address changes when its certificates rotate).
    pub fn from_relay(relay: &crate::RelayHandle) -> Self {
        let info = NodeInfo {
            addrs: relay.current_addrs(),
            ..relay.info().clone()
        };
        Self {
            enr: relay.enr().map(str::to_owned),
            ..Self::from_info(&info)
        }
    }

    /// The entry for a node known by its info.
    pub fn from_info(info: &NodeInfo) -> Self {
        let key = hex::encode(info.mix_public.as_bytes());
        let first = info
            .addrs
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        Self {
            peer_id: info.peer_id.to_string(),
            multiaddrs: info.addrs.iter().map(ToString::to_string).collect(),
            mix_public_key: key.clone(),
            mixnode: format!("{first}:{key}"),
            enr: None,
        }
    }

    /// Parses the entry back.
    ///
    /// # Errors
    /// If the peer id, a multiaddr or the key does not parse.
    pub fn to_info(&self) -> anyhow::Result<NodeInfo> {
        let peer_id: PeerId = self
            .peer_id
            .parse()
            .with_context(|| format!("bad peer id {:?}", self.peer_id))?;
        let addrs = self
            .multiaddrs
            .iter()
            .map(|a| {
                a.parse::<Multiaddr>()
                    .with_context(|| format!("bad multiaddr {a:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mix_public = keys::parse_mix_public(&self.mix_public_key)?;
        Ok(NodeInfo {
            peer_id,
            addrs,
            mix_public,
        })
    }

    /// The entry as nwaku's `--mixnode` would give it.
    ///
    /// # Errors
    /// If the `mixnode` string does not parse.
    pub fn to_mixnode(&self) -> anyhow::Result<MixNodeEntry> {
        Ok(keys::parse_mixnode(&self.mixnode)?)
    }
}

impl PoolFile {
    /// Reads and checks a pool file.
    ///
    /// # Errors
    /// If it cannot be read or any entry does not parse.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the pool file {}", path.display()))?;
        let pool: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a pool file", path.display()))?;
        for node in &pool.nodes {
            node.to_info()?;
        }
        pool.wire_format()
            .with_context(|| format!("in the pool file {}", path.display()))?;
        Ok(pool)
    }

    /// The wire format the file names, if it names one.
    ///
    /// # Errors
    /// If it names neither `lip183` nor `v039`.
    pub fn wire_format(&self) -> anyhow::Result<Option<Format>> {
        self.format
            .as_deref()
            .map(|f| {
                f.parse::<Format>()
                    .map_err(|e| anyhow::anyhow!("format {f:?}: {e}"))
            })
            .transpose()
    }

    /// Writes the file atomically (a reader never sees half of it).
    ///
    /// # Errors
    /// If it cannot be written.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Every node, parsed.
    ///
    /// # Errors
    /// If an entry does not parse.
    pub fn infos(&self) -> anyhow::Result<Vec<NodeInfo>> {
        self.nodes.iter().map(PoolNode::to_info).collect()
    }
}

//! A native sender that is not a relay: publishes one Waku message through the mixnet a pool
//! file describes, and prints the service's answer.
//!
//! ```text
//! mix-relay testnet --nodes 5 --base-port 0 --pool-file /tmp/pool.json &
//! cargo run -p mix-relay --example native_sender -- /tmp/pool.json
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use mix_libp2p::SendOptions;
use mix_relay::pool_file::PoolFile;
use mix_relay::sender::{SenderSettings, start};
use mix_relay::waku::WakuMessage;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: native_sender <pool file>")?
        .into();
    let infos = PoolFile::read(&path)?.infos()?;
    let pool = infos
        .iter()
        .map(mix_relay::NodeInfo::mix_node)
        .collect::<Result<Vec<_>, _>>()?;
    let service = infos.first().context("an empty pool")?.peer_id;
    let sender = start(SenderSettings {
        pool,
        ..SenderSettings::default()
    })
    .await?;
    let message = WakuMessage {
        payload: b"hello from a native sender".to_vec(),
        content_topic: "/example/1/native/proto".into(),
        ..WakuMessage::default()
    };
    let response = sender
        .lightpush(service, "/waku/2/rs/2/0", message, SendOptions::default())
        .await?;
    println!(
        "status {} from {service} (relayed to {:?} peers)",
        response.status_code, response.relay_peer_count
    );
    sender.shutdown().await;
    Ok(())
}

//! The Waku request/response protocols a relay serves on plain libp2p streams (metadata and
//! direct lightpush), and the one lightpush entry that mix packets and direct streams share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use libp2p::gossipsub::{self, TopicHash};
use mix_libp2p::Instant;
use prost::Message as _;

use super::Node;
use crate::replay_store::unix_now_ms;
use crate::waku::{self, Answer, LIGHTPUSH_PROTOCOL};

/// Reads one `uvarint(len) ‖ bytes` frame of at most `max` bytes and returns the bytes.
pub(super) async fn read_length_prefixed(
    stream: &mut libp2p::Stream,
    max: usize,
) -> anyhow::Result<Vec<u8>> {
    let len = unsigned_varint::aio::read_usize(&mut *stream).await?;
    anyhow::ensure!(
        len <= max,
        "a frame of {len} bytes exceeds the limit of {max}"
    );
    let mut bytes = vec![0u8; len];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Runs one request/response exchange on an inbound stream for at most 10 s, logging (at debug
/// level) why it failed; the peer learns nothing but the closed stream.
async fn serve_exchange(what: &str, exchange: impl Future<Output = anyhow::Result<()>>) {
    if let Ok(Err(error)) | Err(error) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(anyhow::Error::from)
    {
        tracing::debug!(%error, "{what} stream failed");
    }
}

/// Serves Waku metadata on `control` from now on (a task that ends when the relay stops), and
/// accepts direct lightpush streams, which the event loop answers: it returns them.
///
/// # Errors
/// If either protocol is already registered on `control`.
pub(super) fn accept(
    control: &mut libp2p_stream::Control,
    cluster_id: u16,
    shards: &[u16],
) -> anyhow::Result<libp2p_stream::IncomingStreams> {
    let metadata_streams = control
        .accept(StreamProtocol::new(waku::metadata::METADATA_PROTOCOL))
        .context("registering the Waku metadata protocol")?;
    tokio::spawn(serve_metadata(
        metadata_streams,
        waku::metadata::response(cluster_id, shards),
    ));
    control
        .accept(StreamProtocol::new(LIGHTPUSH_PROTOCOL))
        .context("registering the lightpush protocol")
}

/// Metadata exchanges served at once, at most; more streams are dropped (reset).
const METADATA_SLOTS: usize = 256;
/// Metadata exchanges one peer may have in progress; more of its streams are dropped.
const METADATA_PER_PEER: usize = 4;
/// A metadata request (at most 1 KiB) must arrive within this long.
const METADATA_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers every Waku metadata request with this node's cluster and shards (audit F15: at
/// most [`METADATA_SLOTS`] at once and [`METADATA_PER_PEER`] per peer, each request read within
/// [`METADATA_READ_TIMEOUT`], so one slow peer cannot hold every slot; the task ends when the
/// relay stops).
async fn serve_metadata(mut streams: libp2p_stream::IncomingStreams, response: Vec<u8>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(METADATA_SLOTS));
    let per_peer: Arc<std::sync::Mutex<HashMap<PeerId, usize>>> = Arc::default();
    while let Some((peer, mut stream)) = streams.next().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let admitted = per_peer.lock().is_ok_and(|mut held| {
            let n = held.entry(peer).or_insert(0);
            if *n >= METADATA_PER_PEER {
                false
            } else {
                *n += 1;
                true
            }
        });
        if !admitted {
            continue;
        }
        let response = response.clone();
        let per_peer = per_peer.clone();
        tokio::spawn(async move {
            serve_exchange("metadata", async {
                tokio::time::timeout(
                    METADATA_READ_TIMEOUT,
                    read_length_prefixed(&mut stream, waku::metadata::MAX_METADATA_LEN),
                )
                .await??;
                stream.write_all(&response).await?;
                stream.close().await?;
                Ok(())
            })
            .await;
            if let Ok(mut held) = per_peer.lock()
                && let Some(n) = held.get_mut(&peer)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    held.remove(&peer);
                }
            }
            drop(slot);
        });
    }
}

/// One direct (non-mix) lightpush request on a stream: read it, answer, close. The node gets
/// the request framed, as from a mix packet.
pub(super) async fn serve_lightpush_stream(
    mut stream: libp2p::Stream,
    node: mpsc::Sender<(Vec<u8>, oneshot::Sender<Vec<u8>>)>,
) {
    serve_exchange("lightpush", async {
        let body = read_length_prefixed(&mut stream, waku::MAX_FRAME_LEN).await?;
        let request = waku::encode_frame(&body);
        let (tx, rx) = oneshot::channel();
        node.send((request, tx))
            .await
            .map_err(|_| anyhow::anyhow!("relay stopped"))?;
        let response = rx.await?;
        stream.write_all(&response).await?;
        stream.close().await?;
        Ok(())
    })
    .await;
}

impl Node {
    /// Answers one framed lightpush request (`uvarint(len) || LightPushRequest`), from a direct
    /// stream or a mix packet alike, through the service's one entry point.
    pub(super) fn serve_lightpush(&mut self, request: &[u8]) -> Answer {
        // One budget for every publish from this relay's identity, direct or through the
        // mixnet (audit F13); beyond it, nwaku's 429.
        if !self
            .publish_budget
            .try_acquire(self.peer_id, Instant::now())
        {
            let answer = Answer::refused(waku::StatusCode::TooManyRequests, "publish rate limit");
            self.metrics.lightpush_result(answer.response.status_code);
            return answer;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        let answer = self
            .lightpush
            .handle_length_prefixed(request, |topic, message| {
                let hash = TopicHash::from_raw(topic);
                let peers = topic_peer_count(gossipsub, &hash);
                let mut message = message.clone();
                if message.timestamp.unwrap_or(0) == 0 {
                    let now_ns = i64::try_from(unix_now_ms())
                        .unwrap_or(i64::MAX)
                        .saturating_mul(1_000_000);
                    message.timestamp = Some(now_ns);
                }
                let result = gossipsub.publish(hash, message.encode_to_vec());
                waku::publish_outcome(&result, u32::try_from(peers).unwrap_or(u32::MAX))
            });
        self.metrics.lightpush_result(answer.response.status_code);
        answer
    }
}

/// How many gossipsub peers are subscribed to `topic` (the lightpush `relay_peer_count`).
pub(super) fn topic_peer_count(gossipsub: &gossipsub::Behaviour, topic: &TopicHash) -> usize {
    gossipsub
        .all_peers()
        .filter(|(_, topics)| topics.contains(&topic))
        .count()
}

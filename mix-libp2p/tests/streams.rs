//! Inbound `/mix/1.0.0` streams as nim-libp2p opens them: a fresh stream per concurrent send,
//! one frame each, then left open and unused. The receiver must take them all, and reclaim
//! idle ones (not refuse new ones) at its limit (libp2p-swarm-test, memory transport, yamux).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::time::Duration;

use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use libp2p::{PeerId, Stream, Swarm};
use libp2p_swarm_test::SwarmExt;
use mix_core::PACKET_LEN;
use mix_libp2p::{Behaviour, Config, DropReason, Event, PROTOCOL_NAME};

/// One frame on the wire: `uvarint(4608) ‖ packet`, the packet filled with `fill`.
fn wire_frame(fill: u8) -> Vec<u8> {
    let mut bytes = vec![0x80, 0x24];
    bytes.extend_from_slice(&[fill; PACKET_LEN]);
    bytes
}

/// Opens a `/mix/1.0.0` stream to `peer` and writes one frame on it, leaving it open.
async fn open_with_frame(control: &mut libp2p_stream::Control, peer: PeerId, fill: u8) -> Stream {
    let mut stream = control.open_stream(peer, PROTOCOL_NAME).await.unwrap();
    stream.write_all(&wire_frame(fill)).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Whether the receiver closed `stream` (our read sees its FIN) within a short wait.
async fn closed_by_peer(stream: &mut Stream) -> bool {
    let mut buf = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// An opener (`a`, raw streams) connected to a mix receiver (`b`) with `config`.
async fn pair(config: Config) -> (Swarm<libp2p_stream::Behaviour>, Swarm<Behaviour>) {
    let mut a = Swarm::new_ephemeral_tokio(|_| libp2p_stream::Behaviour::new());
    let mut b = Swarm::new_ephemeral_tokio(|_| Behaviour::new(config));
    b.listen().with_memory_addr_external().await;
    a.connect(&mut b).await;
    (a, b)
}

#[tokio::test]
async fn a_nim_burst_of_64_streams_on_one_connection_loses_nothing() {
    let (a, mut b) = pair(Config::new()).await;
    let (a_peer, b_peer) = (*a.local_peer_id(), *b.local_peer_id());
    let control = a.behaviour().new_control();
    tokio::spawn(a.loop_on_next());
    // 64 concurrent sends, each on a fresh stream that stays open afterwards.
    let burst = tokio::spawn(async move {
        let opens = (0..64u8).map(|fill| {
            let mut control = control.clone();
            async move { open_with_frame(&mut control, b_peer, fill).await }
        });
        futures::future::join_all(opens).await
    });
    let mut fills = Vec::new();
    while fills.len() < 64 {
        match tokio::time::timeout(Duration::from_secs(10), b.next_behaviour_event())
            .await
            .expect("all 64 frames within 10 s")
        {
            Event::Received { peer, frame } => {
                assert_eq!(peer, a_peer);
                fills.push(frame.packet[0]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    fills.sort_unstable();
    assert_eq!(fills, (0..64u8).collect::<Vec<_>>());
    let mut held = burst.await.unwrap();
    assert_eq!(held.len(), 64);
    // The connection is up, and none of the 64 streams was closed.
    assert!(b.is_connected(&a_peer));
    assert!(b.behaviour().is_connected(&a_peer));
    tokio::spawn(b.loop_on_next());
    let closed = futures::future::join_all(held.iter_mut().map(closed_by_peer)).await;
    assert_eq!(closed.iter().filter(|c| **c).count(), 0);
}

#[tokio::test]
async fn at_the_limit_the_stream_idle_longest_is_reclaimed_not_the_new_one() {
    const LIMIT: usize = 8;
    const STREAMS: usize = 11;
    let (a, mut b) = pair(Config::new().with_max_inbound_streams(LIMIT)).await;
    let (a_peer, b_peer) = (*a.local_peer_id(), *b.local_peer_id());
    let mut control = a.behaviour().new_control();
    tokio::spawn(a.loop_on_next());
    // One stream at a time, each after the receiver took the previous one's frame, so the
    // streams go idle in the order they were opened.
    let (go, mut next) = tokio::sync::mpsc::unbounded_channel::<()>();
    let opener = tokio::spawn(async move {
        let mut held = Vec::new();
        for fill in 0..STREAMS as u8 {
            held.push(open_with_frame(&mut control, b_peer, fill).await);
            next.recv().await.unwrap();
        }
        held
    });
    let mut fills = Vec::new();
    let mut reclaimed = 0;
    while fills.len() < STREAMS || reclaimed < STREAMS - LIMIT {
        match tokio::time::timeout(Duration::from_secs(10), b.next_behaviour_event())
            .await
            .expect("every frame and reclaim within 10 s")
        {
            Event::Received { frame, .. } => {
                fills.push(frame.packet[0]);
                go.send(()).unwrap();
            }
            Event::Dropped {
                reason: DropReason::StreamIdle,
                ..
            } => reclaimed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Every frame arrived, in order, including the new streams' beyond the limit.
    assert_eq!(fills, (0..STREAMS as u8).collect::<Vec<_>>());
    assert_eq!(reclaimed, STREAMS - LIMIT);
    assert!(b.is_connected(&a_peer));
    tokio::spawn(b.loop_on_next());
    let mut held = opener.await.unwrap();
    let closed: Vec<usize> = futures::future::join_all(held.iter_mut().map(closed_by_peer))
        .await
        .into_iter()
        .enumerate()
        .filter_map(|(i, closed)| closed.then_some(i))
        .collect();
    // The three idle longest, the first three opened, were closed; the newest stayed open.
    assert_eq!(closed, vec![0, 1, 2]);
}

#[tokio::test]
async fn a_stream_idle_past_the_timeout_is_reclaimed() {
    let config = Config::new().with_stream_idle_timeout(Duration::from_millis(300));
    let (a, mut b) = pair(config).await;
    let (a_peer, b_peer) = (*a.local_peer_id(), *b.local_peer_id());
    let mut control = a.behaviour().new_control();
    tokio::spawn(a.loop_on_next());
    let opener = tokio::spawn(async move {
        let mut held = Vec::new();
        for fill in 0..3u8 {
            held.push(open_with_frame(&mut control, b_peer, fill).await);
        }
        held
    });
    let (mut received, mut reclaimed) = (0, 0);
    while received < 3 || reclaimed < 3 {
        match tokio::time::timeout(Duration::from_secs(10), b.next_behaviour_event())
            .await
            .expect("every frame and reclaim within 10 s")
        {
            Event::Received { .. } => received += 1,
            Event::Dropped {
                reason: DropReason::StreamIdle,
                ..
            } => reclaimed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(b.is_connected(&a_peer));
    tokio::spawn(b.loop_on_next());
    let mut held = opener.await.unwrap();
    let closed = futures::future::join_all(held.iter_mut().map(closed_by_peer)).await;
    assert_eq!(closed, vec![true; 3]);
}

/// Found by the browser suite: a testnet left idle for longer than the stream idle timeout
/// delivered nothing. The receiver reclaims the sender's pooled outbound stream (a FIN); the
/// sender must notice and open a fresh stream, not keep writing into the closed one.
#[tokio::test]
async fn a_pooled_stream_the_receiver_reclaimed_is_replaced_not_written_into() {
    let receiver = Config::new().with_stream_idle_timeout(Duration::from_millis(300));
    let mut a = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new()));
    let mut b = Swarm::new_ephemeral_tokio(|_| Behaviour::new(receiver));
    let (b_addr, _) = b.listen().with_memory_addr_external().await;
    let b_peer = *b.local_peer_id();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u8>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                fill = rx.recv() => match fill {
                    Some(fill) => a.behaviour_mut().send(
                        b_peer,
                        vec![b_addr.clone()],
                        mix_libp2p::Frame::new(Box::new([fill; PACKET_LEN])),
                    ),
                    None => break,
                },
                _ = a.select_next_some() => {}
            }
        }
    });
    let next_frame = async |b: &mut Swarm<Behaviour>| loop {
        match tokio::time::timeout(Duration::from_secs(5), b.next_behaviour_event())
            .await
            .expect("the frame within 5 s")
        {
            Event::Received { frame, .. } => return frame.packet[0],
            Event::Dropped {
                reason: DropReason::StreamIdle,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    for round in 1..=3u8 {
        tx.send(round).unwrap();
        assert_eq!(next_frame(&mut b).await, round);
        // Idle for longer than the receiver's timeout: it reclaims the stream.
        let idle = tokio::time::sleep(Duration::from_millis(800));
        tokio::pin!(idle);
        loop {
            tokio::select! {
                () = &mut idle => break,
                _ = b.select_next_some() => {}
            }
        }
    }
}

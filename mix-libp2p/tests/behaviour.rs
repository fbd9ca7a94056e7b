//! The `/mix/1.0.0` behaviour between real swarms (libp2p-swarm-test, memory transport).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

use libp2p::Swarm;
use libp2p::swarm::dummy;
use libp2p_swarm_test::SwarmExt;
use mix_core::PACKET_LEN;
use mix_libp2p::{Behaviour, Config, Event, Frame, SendFailure};

fn frame(fill: u8) -> Frame {
    Frame::new(Box::new([fill; PACKET_LEN]))
}

#[tokio::test]
async fn frames_arrive_in_order_after_a_dial() {
    let mut a = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new()));
    let mut b = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new()));
    let (b_addr, _) = b.listen().with_memory_addr_external().await;
    let b_peer = *b.local_peer_id();
    // Not connected yet: the behaviour dials and queues.
    for fill in 1..=20u8 {
        a.behaviour_mut()
            .send(b_peer, vec![b_addr.clone()], frame(fill));
    }
    tokio::spawn(a.loop_on_next());
    for fill in 1..=20u8 {
        match b.next_behaviour_event().await {
            Event::Received { frame: f, .. } => assert_eq!(f, frame(fill)),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_peer_is_a_dial_failure() {
    let mut a = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new()));
    let peer = libp2p::PeerId::random();
    a.behaviour_mut()
        .send(peer, vec!["/memory/4242424242".parse().unwrap()], frame(1));
    a.behaviour_mut()
        .send(peer, vec!["/memory/4242424242".parse().unwrap()], frame(2));
    match a.next_behaviour_event().await {
        Event::SendFailed {
            peer: p,
            frames,
            reason,
        } => {
            assert_eq!((p, frames, reason), (peer, 2, SendFailure::Dial));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_without_mix_is_reported_unsupported() {
    let mut a = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new()));
    let mut b = Swarm::new_ephemeral_tokio(|_| dummy::Behaviour);
    let (b_addr, _) = b.listen().with_memory_addr_external().await;
    let b_peer = *b.local_peer_id();
    tokio::spawn(b.loop_on_next());
    a.behaviour_mut().send(b_peer, vec![b_addr], frame(1));
    match a.next_behaviour_event().await {
        Event::SendFailed { reason, .. } => assert_eq!(reason, SendFailure::Unsupported),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_over_its_rate_is_dropped_without_a_word() {
    let mut a = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new()));
    let mut b = Swarm::new_ephemeral_tokio(|_| Behaviour::new(Config::new().with_rate_limit(1, 3)));
    let (b_addr, _) = b.listen().with_memory_addr_external().await;
    let b_peer = *b.local_peer_id();
    for fill in 0..6u8 {
        a.behaviour_mut()
            .send(b_peer, vec![b_addr.clone()], frame(fill));
    }
    tokio::spawn(a.loop_on_next());
    let mut received = 0;
    let mut limited = 0;
    while received + limited < 6 {
        match b.next_behaviour_event().await {
            Event::Received { .. } => received += 1,
            Event::Dropped {
                reason: mix_libp2p::DropReason::RateLimited,
                ..
            } => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((received, limited), (3, 3));
}

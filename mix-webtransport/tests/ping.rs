//! Two rust-libp2p swarms over mix-webtransport on loopback: one listens, one dials and pings;
//! dials after certificate rotations; dials that must fail.

use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, ping};
use mix_webtransport::{Config, Transport};

const WAIT: Duration = Duration::from_secs(20);

fn swarm(config: impl FnOnce(&mut Config)) -> anyhow::Result<Swarm<ping::Behaviour>> {
    Ok(
        SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
            .with_tokio()
            .with_other_transport(|key| {
                let mut c = Config::new(key);
                config(&mut c);
                Transport::new(c)
            })?
            .with_behaviour(|_| {
                ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(200)))
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build(),
    )
}

/// Starts a listener swarm on 127.0.0.1 and drives it in the background; returns its peer id,
/// first address, and a channel of its later addresses.
async fn listener(
    config: impl FnOnce(&mut Config),
) -> anyhow::Result<(
    PeerId,
    Multiaddr,
    tokio::sync::mpsc::UnboundedReceiver<Multiaddr>,
)> {
    let mut server = swarm(config)?;
    server.listen_on("/ip4/127.0.0.1/udp/0/quic-v1/webtransport".parse()?)?;
    let first = tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
                return address;
            }
        }
    })
    .await?;
    let peer = *server.local_peer_id();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
                let _ = tx.send(address);
            }
        }
    });
    Ok((peer, first.with(Protocol::P2p(peer)), rx))
}

/// Dials `addr` from a fresh swarm and waits for a successful ping.
async fn dial_and_ping(addr: &Multiaddr) -> anyhow::Result<Duration> {
    let mut client = swarm(|_| {})?;
    client.dial(addr.clone())?;
    tokio::time::timeout(WAIT, async {
        loop {
            match client.select_next_some().await {
                SwarmEvent::Behaviour(ping::Event {
                    result: Ok(rtt), ..
                }) => return Ok(rtt),
                SwarmEvent::Behaviour(ping::Event { result: Err(e), .. }) => {
                    bail!("ping failed: {e}")
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial failed: {error}"),
                _ => {}
            }
        }
    })
    .await
    .context("no ping within 20 s")?
}

#[tokio::test]
async fn a_client_dials_the_listener_and_pings() -> anyhow::Result<()> {
    let (_peer, addr, _) = listener(|_| {}).await?;
    let certhashes = addr
        .iter()
        .filter(|p| matches!(p, Protocol::Certhash(_)))
        .count();
    assert_eq!(certhashes, 2, "current and next certificate: {addr}");
    let rtt = dial_and_ping(&addr).await?;
    assert!(rtt < WAIT);
    // Without the peer id the dial works too (Noise tells who answered).
    let mut bare = addr.clone();
    bare.pop();
    dial_and_ping(&bare).await?;
    Ok(())
}

#[tokio::test]
async fn addresses_from_before_a_rotation_still_dial() -> anyhow::Result<()> {
    let (_peer, first, mut later) = listener(|c| c.rotate_every = Duration::from_secs(2)).await?;
    let second = tokio::time::timeout(WAIT, later.recv())
        .await?
        .context("the listener stopped")?;
    assert_ne!(
        mix_webtransport::without_certhashes(&second),
        second,
        "the new address carries certhashes"
    );
    // The address from before the rotation: its second hash is the certificate now presented,
    // and the server still vouches for its first one in Noise.
    dial_and_ping(&first).await.context("the old address")?;
    Ok(())
}

#[tokio::test]
async fn two_rotations_retire_an_address() -> anyhow::Result<()> {
    let (peer, first, mut later) = listener(|c| c.rotate_every = Duration::from_secs(1)).await?;
    let mut latest = first.clone();
    for _ in 0..2 {
        latest = tokio::time::timeout(WAIT, later.recv())
            .await?
            .context("the listener stopped")?;
    }
    // Neither hash of the first address is presented any more: the TLS check fails.
    assert!(
        dial_and_ping(&first).await.is_err(),
        "a stale address must not dial"
    );
    dial_and_ping(&latest.with(Protocol::P2p(peer)))
        .await
        .context("the current address")?;
    Ok(())
}

#[tokio::test]
async fn wrong_certhash_or_peer_id_fail() -> anyhow::Result<()> {
    let (peer, addr, _) = listener(|_| {}).await?;
    let (_, other, _) = listener(|_| {}).await?;
    // The port of the first listener with the hashes of the second.
    let mut forged = Multiaddr::empty();
    for p in addr.iter() {
        if !matches!(p, Protocol::Certhash(_) | Protocol::P2p(_)) {
            forged.push(p);
        }
    }
    for p in other.iter() {
        if matches!(p, Protocol::Certhash(_)) {
            forged.push(p);
        }
    }
    let err = dial_and_ping(&forged.with(Protocol::P2p(peer)))
        .await
        .expect_err("another server's certhashes");
    assert!(err.to_string().contains("dial failed"), "{err:#}");

    let mut wrong_peer = addr.clone();
    wrong_peer.pop();
    let stranger = Keypair::generate_ed25519().public().to_peer_id();
    let err = dial_and_ping(&wrong_peer.with(Protocol::P2p(stranger)))
        .await
        .expect_err("another peer id");
    assert!(err.to_string().contains("dial failed"), "{err:#}");

    // No certhash: nothing to check the server against.
    let mut bare = Multiaddr::empty();
    for p in addr.iter() {
        if !matches!(p, Protocol::Certhash(_)) {
            bare.push(p);
        }
    }
    let mut client = swarm(|_| {})?;
    let dialed = client.dial(DialOpts::unknown_peer_id().address(bare).build());
    let failed = match dialed {
        Err(_) => true,
        Ok(()) => tokio::time::timeout(WAIT, async {
            loop {
                if let SwarmEvent::OutgoingConnectionError { .. } = client.select_next_some().await
                {
                    return true;
                }
            }
        })
        .await
        .unwrap_or(false),
    };
    assert!(failed, "an address without certhash must not dial");
    Ok(())
}

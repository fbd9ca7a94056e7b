//! Denial-of-service cases of the audit (docs/RELIABILITY.md, "Cheap denial of service"):
//! attackers that know the target's public mix key build packets the target accepts, and ask
//! it for work: replay-store slots (F2), dials (F3), long delays (F5) and forward-mode exits
//! (F6). Each runs with honest load beside it and reports honest delivery, the target's RSS
//! and the longest stall of its event loop (`mix_event_loop_lag_max_ms`, sampled every 200 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::AsyncWriteExt as _;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use mix_core::{Delay, Hop, NodeSecretKey, PACKET_LEN, PacketBuilder, Route, hazmat};
use mix_libp2p::{Frame, MixNode, SendOptions};
use mix_relay::RelayHandle;
use mix_relay::waku::LIGHTPUSH_PROTOCOL;

use crate::hostile::{Case, Plan, finish};
use crate::load::{self, Offered, Summary};
use crate::net::{Metrics, Testnet};
use crate::packets;

/// Flags of the target (relay 0) that make the cases short: a small exact replay store, a
/// small delay queue (250 per previous hop) and few pending dials.
pub(crate) const TARGET_ARGS: [&str; 10] = [
    "--replay-capacity",
    "1000",
    "--max-delayed",
    "2000",
    "--max-pending-dials",
    "64",
    "--max-connections-per-ip",
    "24",
    "--max-publish-rate",
    "50",
];
const PER_IP: f64 = 24.0;
const REPLAY_CAPACITY: f64 = 1000.0;
const DELAY_SHARE: f64 = 250.0;
const PENDING_DIALS: f64 = 64.0;

const MIX: StreamProtocol = StreamProtocol::new("/mix/1.0.0");

/// A node that does not exist: a fresh secp256k1 peer id and mix key at `addr`.
fn phantom(addr: &Multiaddr) -> anyhow::Result<MixNode> {
    let peer = libp2p::identity::Keypair::generate_secp256k1()
        .public()
        .to_peer_id();
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    let key = NodeSecretKey::generate(&mut rng).public_key();
    Ok(MixNode::new(
        peer,
        vec![addr.clone().with(Protocol::P2p(peer))],
        key,
    )?)
}

fn hop(node: &MixNode) -> Hop {
    Hop {
        address: node.address,
        public_key: node.public_key,
    }
}

/// A valid packet along `nodes` with the given per-intermediate delays, carrying a small
/// lightpush-coded body; in forward mode to `destination` with `codec` if given.
fn packet(
    nodes: [&MixNode; 3],
    delays: [Delay; 2],
    destination: Option<(&MixNode, &str)>,
) -> anyhow::Result<Frame> {
    let route = Route {
        hops: nodes.map(hop),
        delays,
    };
    let mut packet = Box::new([0u8; PACKET_LEN]);
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    let (builder, codec) = match destination {
        Some((d, codec)) => (PacketBuilder::new(&route).destination(&d.address), codec),
        None => (PacketBuilder::new(&route), LIGHTPUSH_PROTOCOL),
    };
    builder
        .build(&mut rng, codec, b"\x00", packet.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("building a packet: {e}"))?;
    Ok(Frame::new(packet))
}

/// A packet whose MAC is valid for `target` but whose β is random: it passes the MAC check,
/// takes a replay-filter slot, and is dropped as malformed (audit F2's attack). Costs two
/// scalar multiplications and one HMAC.
fn mac_valid_garbage(target: &MixNode) -> Frame {
    let mut x = [0u8; 32];
    rand::fill(&mut x);
    let mut base = [0u8; 32];
    base[0] = 9;
    let alpha = hazmat::x25519(&x, &base);
    let shared = hazmat::x25519(&x, target.public_key.as_bytes());
    let keys = mix_core::HopKeys::derive(&mix_core::SharedSecret::from_bytes(shared));
    let mut packet = Box::new([0u8; PACKET_LEN]);
    rand::fill(&mut packet[..]);
    packet[..32].copy_from_slice(&alpha);
    let beta_end = 32 + mix_core::params::BETA_LEN;
    let gamma = hazmat::mac16(keys.mac_key(), &packet[32..beta_end]);
    packet[beta_end..beta_end + 16].copy_from_slice(&gamma);
    Frame::new(packet)
}

/// Writes `frames` to `peer` on a fresh `/mix/1.0.0` stream (dialing `addr` first), in
/// batches of 50, and closes it.
async fn send_raw(
    attacker: &RelayHandle,
    peer: PeerId,
    addr: &Multiaddr,
    frames: Vec<Frame>,
) -> anyhow::Result<()> {
    attacker.dial(addr.clone()).await?;
    let mut control = attacker.stream_control();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match control.open_stream(peer, MIX).await {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => anyhow::bail!("opening a stream: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    for batch in frames.chunks(50) {
        let mut bytes = Vec::new();
        for frame in batch {
            bytes.extend(packets::raw_frame(&frame.packet[..]));
        }
        stream.write_all(&bytes).await?;
    }
    stream.flush().await?;
    stream.close().await?;
    Ok(())
}

/// Polls the target's event-loop lag and delay-queue depth every 200 ms for `secs`; returns
/// the largest of each (ms, packets).
async fn watch(net: &Testnet, t: usize, secs: f64) -> (f64, f64) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let (mut lag, mut depth): (f64, f64) = (0.0, 0.0);
    while Instant::now() < until {
        if let Ok(m) = net.relays[t].metrics().await {
            lag = lag.max(m.get("mix_event_loop_lag_max_ms"));
            depth = depth.max(m.get("mix_delay_queue_depth"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (lag, depth)
}

/// A TCP listener that accepts and never answers (a blackhole with a SYN-ACK): every dial to
/// it hangs until the dialer's timeout. Counts what it accepted.
async fn tarpit() -> anyhow::Result<(Multiaddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            held.push(socket);
        }
    });
    let addr = Multiaddr::empty()
        .with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
        .with(Protocol::Tcp(port));
    Ok((addr, accepted, task))
}

/// A port on 127.0.0.1 nothing listens on (dials fail at once).
fn closed_port() -> anyhow::Result<Multiaddr> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(Multiaddr::empty()
        .with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
        .with(Protocol::Tcp(port)))
}

/// Honest load over every service for `secs`, beside an attack.
fn honest_load(
    honest: &Arc<RelayHandle>,
    pool: &[MixNode],
    plan: &Plan,
    secs: u64,
    label: &'static str,
) -> tokio::task::JoinHandle<Vec<load::Record>> {
    tokio::spawn(load::run(
        honest.clone(),
        Offered {
            rate: plan.honest_rate,
            duration: Duration::from_secs(secs),
            services: pool.iter().map(|n| n.peer_id).collect(),
            options: SendOptions::default(),
            label,
        },
    ))
}

/// Honest requests with the target as the service, after a case.
async fn served_after(honest: &RelayHandle, target: PeerId, n: usize) -> (usize, usize) {
    let mut ok = 0;
    for i in 0..n {
        let (_, outcome) = load::lightpush(
            honest,
            target,
            SendOptions::default(),
            format!("honest after a DoS case {i}"),
        )
        .await;
        ok += usize::from(matches!(outcome, load::Outcome::Delivered(_)));
    }
    (ok, n)
}

fn delta(before: &Metrics, after: &Metrics, series: &str) -> f64 {
    after.get(series) - before.get(series)
}

fn dropped(before: &Metrics, after: &Metrics, reason: &str) -> f64 {
    after.dropped(reason) - before.dropped(reason)
}

/// Connects to `addr` as a fresh identity and holds the connection until dropped; `true` if
/// it was established.
async fn sybil(addr: Multiaddr, hold: tokio::sync::oneshot::Receiver<()>) -> bool {
    use futures::StreamExt as _;
    use libp2p::swarm::SwarmEvent;
    let Ok(builder) = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
    else {
        return false;
    };
    let Ok(builder) = builder.with_behaviour(|_| libp2p::swarm::dummy::Behaviour);
    let mut swarm = builder
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    if swarm.dial(addr).is_err() {
        return false;
    }
    let established = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => return true,
                SwarmEvent::OutgoingConnectionError { .. } => return false,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    // Keep driving the swarm (and so the connection) until told to stop.
    let drive = async { while swarm.next().await.is_some() {} };
    tokio::select! {
        _ = hold => {}
        () = drive => {}
    }
    established
}

/// The cases against relay 0.
pub(crate) async fn run(
    net: &mut Testnet,
    pool: &[MixNode],
    plan: &Plan,
    honest: &Arc<RelayHandle>,
    attacker: &RelayHandle,
) -> anyhow::Result<Vec<Case>> {
    let (t, a, b) = (0usize, 1usize, 2usize);
    let target = net.relays[t].peer_id;
    let (nt, na, nb) = (&pool[t], &pool[a], &pool[b]);
    let secs = plan.flood_secs;
    let mut cases = Vec::new();

    // F2. MAC-valid garbage at 80 % of the rate limit: each takes a replay slot. The exact
    // store (3000 on the target) fills; the rest go to the overflow filter, none is refused
    // as `replay_store_full`, and honest packets keep passing.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let load = honest_load(
            honest,
            pool,
            plan,
            secs,
            "honest during a replay-store flood",
        );
        let mut control = attacker.stream_control();
        let per_tick = (plan.rate_limit as usize * 8) / 1000;
        let flood = async {
            let mut s = control.open_stream(target, MIX).await?;
            let mut sent = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let until = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < until {
                tick.tick().await;
                let mut bytes = Vec::new();
                for _ in 0..per_tick {
                    bytes.extend(packets::raw_frame(&mac_valid_garbage(nt).packet[..]));
                }
                if s.write_all(&bytes).await.is_err() {
                    break;
                }
                sent += per_tick;
            }
            let _ = s.flush().await;
            anyhow::Ok((sent, s))
        };
        let (flooded, (stall, _)) = tokio::join!(flood, watch(net, t, secs as f64 + 1.0));
        let (sent, _stream) = flooded?;
        let honest_during = Summary::of(&load.await.unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = net.relays[t].metrics().await?;
        let malformed = dropped(&before, &after, "malformed");
        let full = dropped(&before, &after, "replay_store_full");
        let overflow = after.get("mix_replay_overflow_entries");
        let occupancy = after.get("mix_replay_store_occupancy_percent");
        let mut case = finish(
            net,
            t,
            "MAC-valid garbage fills the replay store (F2)",
            format!(
                "{sent} packets with a valid MAC for the target and a random β ({:.0}/s, 80 % of the rate limit); exact store capacity {REPLAY_CAPACITY:.0}",
                sent as f64 / secs as f64
            ),
            "each `malformed` after taking a slot; the exact store fills (occupancy 100 %), the rest go to the overflow filter; 0 × `replay_store_full`; honest delivery ≥ 95 %".into(),
            &before,
            &after,
            &[],
            (honest_during.delivered, honest_during.sent),
            started,
        )
        .await;
        let later = served_after(honest, target, 2).await;
        case.stall_ms = stall;
        case.observed = format!(
            "{malformed:.0} `malformed`, {full:.0} `replay_store_full`; occupancy {occupancy:.0} %, overflow {overflow:.0} tags; honest {}/{} during, {}/{} after; {}",
            honest_during.delivered, honest_during.sent, later.0, later.1, case.observed
        );
        case.served = (
            honest_during.delivered + later.0,
            honest_during.sent + later.1,
        );
        case.pass &= full == 0.0
            && malformed >= 0.95 * sent as f64
            && occupancy >= 100.0
            && overflow > 0.0
            && honest_during.ratio() >= 0.95
            && later.0 == later.1;
        cases.push(case);
    }

    // F3. Packets whose next hop is a fresh peer id at a tarpit (accepts, never answers):
    // each would hold a dial for the 10 s timeout. At most 64 are pending; the rest are
    // `dial_refused`.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let (pit, accepted, pit_task) = tarpit().await?;
        let n = 600usize;
        let load = honest_load(honest, pool, plan, secs, "honest during a dial flood");
        let target_addr = net.relays[t].addr.clone();
        let attack = async {
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                let (next, after) = (phantom(&pit)?, phantom(&pit)?);
                frames.push(packet([nt, &next, &after], [Delay::ZERO; 2], None)?);
            }
            send_raw(attacker, target, &target_addr, frames).await
        };
        let (sent, (stall, _)) = tokio::join!(attack, watch(net, t, secs as f64));
        sent?;
        let honest_during = Summary::of(&load.await.unwrap_or_default());
        let after = net.relays[t].metrics().await?;
        let refused = dropped(&before, &after, "dial_refused");
        let dials = accepted.load(Ordering::Relaxed);
        let mut case = finish(
            net,
            t,
            "packets that dial a tarpit (F3)",
            format!(
                "{n} valid packets, each with a fresh next-hop peer id at one tarpit address (TCP accepted, never answered)"
            ),
            format!(
                "at most {PENDING_DIALS:.0} dials pending, the rest `dial_refused`; honest delivery ≥ 95 %"
            ),
            &before,
            &after,
            &[],
            (honest_during.delivered, honest_during.sent),
            started,
        )
        .await;
        pit_task.abort();
        let later = served_after(honest, target, 2).await;
        case.stall_ms = stall;
        case.observed = format!(
            "{refused:.0} `dial_refused`, the tarpit accepted {dials} connections; honest {}/{} during, {}/{} after; {}",
            honest_during.delivered, honest_during.sent, later.0, later.1, case.observed
        );
        case.served = (
            honest_during.delivered + later.0,
            honest_during.sent + later.1,
        );
        case.pass &= refused >= n as f64 - PENDING_DIALS
            && dials as f64 <= PENDING_DIALS
            && honest_during.ratio() >= 0.95
            && later.0 == later.1;
        cases.push(case);
    }

    // F5. Packets asking for the longest delay (65.5 s): cut to 2 s, and one previous hop
    // holds at most its share (250) of the queue.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let closed = closed_port()?;
        let n = 1200usize;
        let load = honest_load(honest, pool, plan, secs, "honest during a delay flood");
        let target_addr = net.relays[t].addr.clone();
        let longest = Delay::from_millis(u16::MAX);
        let attack = async {
            let (next, after) = (phantom(&closed)?, phantom(&closed)?);
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                frames.push(packet([nt, &next, &after], [longest, longest], None)?);
            }
            send_raw(attacker, target, &target_addr, frames).await
        };
        let (sent, (stall, deepest)) = tokio::join!(attack, watch(net, t, secs as f64));
        sent?;
        let honest_during = Summary::of(&load.await.unwrap_or_default());
        // The queue drains within the 2 s cap of the last packet's arrival (the attack's
        // packets may still be arriving when the watch ends on a busy machine).
        let drain = Instant::now() + Duration::from_secs(4);
        let after = loop {
            let now = net.relays[t].metrics().await?;
            if now.get("mix_delay_queue_depth") <= 5.0 || Instant::now() > drain {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let capped = delta(&before, &after, "mix_delays_capped_total");
        let full = dropped(&before, &after, "queue_full");
        let depth = after.get("mix_delay_queue_depth");
        let mut case = finish(
            net,
            t,
            "65 s delays (F5)",
            format!(
                "{n} valid packets from one previous hop, each encoding a 65,535 ms delay at the target"
            ),
            format!(
                "delays (exponential around the encoded 65.5 s mean) cut to 2 s (`mix_delays_capped_total`, ≥ 90 %); the queue never above the hop's share of {DELAY_SHARE:.0} plus honest packets, the rest `queue_full`; empty within 4 s of the attack's end; honest delivery ≥ 95 %"
            ),
            &before,
            &after,
            &[],
            (honest_during.delivered, honest_during.sent),
            started,
        )
        .await;
        let later = served_after(honest, target, 2).await;
        case.stall_ms = stall;
        case.observed = format!(
            "{capped:.0} capped, {full:.0} `queue_full`, queue depth at most {deepest:.0}, {depth:.0} at the end; honest {}/{} during, {}/{} after; {}",
            honest_during.delivered, honest_during.sent, later.0, later.1, case.observed
        );
        case.served = (
            honest_during.delivered + later.0,
            honest_during.sent + later.1,
        );
        case.pass &= capped >= 0.9 * n as f64
            && full > 0.0
            && deepest <= DELAY_SHARE + 50.0
            && depth <= 5.0
            && honest_during.ratio() >= 0.95
            && later.0 == later.1;
        cases.push(case);
    }

    // F6. Forward-mode exits through two honest relays to the target, for identify at a
    // tarpit: not a served codec, refused before any dial.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let (pit, accepted, pit_task) = tarpit().await?;
        let n = 50usize;
        let first = (net.relays[a].peer_id, net.relays[a].addr.clone());
        let attack = async {
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                let destination = phantom(&pit)?;
                frames.push(packet(
                    [na, nb, nt],
                    [Delay::ZERO; 2],
                    Some((&destination, "/ipfs/id/1.0.0")),
                )?);
            }
            send_raw(attacker, first.0, &first.1, frames).await
        };
        let (sent, (stall, _)) = tokio::join!(attack, watch(net, t, 3.0));
        sent?;
        let after = net.relays[t].metrics().await?;
        let refused = dropped(&before, &after, "exit_refused");
        let dials = accepted.load(Ordering::Relaxed);
        let served = served_after(honest, target, 2).await;
        let mut case = finish(
            net,
            t,
            "forward mode to any codec (F6)",
            format!(
                "{n} valid forward-mode packets exiting at the target, codec `/ipfs/id/1.0.0`, destination a tarpit"
            ),
            "each `exit_refused` (only lightpush is forwarded); no connection to the tarpit".into(),
            &before,
            &after,
            &[],
            served,
            started,
        )
        .await;
        pit_task.abort();
        case.stall_ms = stall;
        case.observed = format!(
            "{refused:.0} `exit_refused`, the tarpit accepted {dials}; {}",
            case.observed
        );
        case.pass &= refused == n as f64 && dials == 0;
        cases.push(case);
    }
    // F12. Many fresh identities from one IP, one connection each: beyond the per-IP cap
    // (24 on the target, counting the connections of the relays and senders on 127.0.0.1)
    // they are refused before the handshake; the honest peers' connections keep serving.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let k = 40usize;
        let addr = net.relays[t].addr.clone();
        let mut stops = Vec::new();
        let mut sybils = Vec::new();
        for _ in 0..k {
            let (stop, hold) = tokio::sync::oneshot::channel();
            stops.push(stop);
            sybils.push(tokio::spawn(sybil(addr.clone(), hold)));
        }
        let (_, (stall, _)) = tokio::join!(
            tokio::time::sleep(Duration::from_secs(3)),
            watch(net, t, 3.0)
        );
        let during = served_after(honest, target, 3).await;
        let after = net.relays[t].metrics().await?;
        drop(stops);
        let mut held = 0usize;
        for s in sybils {
            held += usize::from(s.await.unwrap_or(false));
        }
        let denied = delta(&before, &after, "mix_connections_denied_total");
        let mut case = finish(
            net,
            t,
            "one host, many identities (F12)",
            format!("{k} fresh peer ids from 127.0.0.1, one connection each, held"),
            format!(
                "at most {PER_IP:.0} connections from the IP in all, the rest refused (`mix_connections_denied_total`); the honest sender's existing connection serves"
            ),
            &before,
            &after,
            &[],
            during,
            started,
        )
        .await;
        case.stall_ms = stall;
        case.observed = format!(
            "{held} held, {denied:.0} refused; honest {}/{}; {}",
            during.0, during.1, case.observed
        );
        case.pass &= held as f64 <= PER_IP && denied >= (k - held) as f64 && denied > 0.0;
        cases.push(case);
    }
    // F13. Lightpush requests exiting at the target, as fast as two honest relays carry them:
    // beyond its publish budget (50/s, burst 100 on the target) each is answered 429 and not
    // published.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let n = 300usize;
        let load = honest_load(honest, pool, plan, 3, "honest during a publish flood");
        let first = (net.relays[a].peer_id, net.relays[a].addr.clone());
        let attack = async {
            let mut frames = Vec::with_capacity(n);
            for i in 0..n {
                frames.push(packets::forward([na, nb, nt], &format!("spam {i}"))?);
            }
            send_raw(attacker, first.0, &first.1, frames).await
        };
        let (sent, (stall, _)) = tokio::join!(attack, watch(net, t, 3.0));
        sent?;
        let honest_during = Summary::of(&load.await.unwrap_or_default());
        let after = net.relays[t].metrics().await?;
        let limited = delta(
            &before,
            &after,
            "waku_lightpush_requests_total{status=\"429\"}",
        );
        let published = delta(
            &before,
            &after,
            "waku_lightpush_requests_total{status=\"200\"}",
        );
        // What the budget allows over the case so far: the burst and 50 a second.
        let allowed = 100.0 + 50.0 * started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let later = served_after(honest, target, 2).await;
        let mut case = finish(
            net,
            t,
            "publish flood through the exit (F13)",
            format!("{n} valid lightpush packets exiting at the target, sent in one burst"),
            "at most the publish budget (burst 100, then 50/s) published, the rest answered 429; honest requests served once the burst is over".into(),
            &before,
            &after,
            &[],
            later,
            started,
        )
        .await;
        case.stall_ms = stall;
        case.observed = format!(
            "{limited:.0} × 429, {published:.0} × 200 (budget {allowed:.0} over the case); honest {}/{} during (the budget is the exit's, shared by every sender), {}/{} after; {}",
            honest_during.delivered, honest_during.sent, later.0, later.1, case.observed
        );
        case.served = (
            honest_during.delivered + later.0,
            honest_during.sent + later.1,
        );
        case.pass = case.pass
            && limited > 0.0
            && published <= allowed
            && limited + published >= n as f64
            && later.0 == later.1;
        cases.push(case);
    }
    // F15. Slow-loris on the Waku metadata protocol: 64 streams from one peer that never send
    // their request. One peer holds at most 4 exchanges (each read within 2 s); an honest
    // peer's request is answered at once meanwhile.
    {
        use futures::AsyncReadExt as _;
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let metadata = StreamProtocol::new(mix_relay::waku::metadata::METADATA_PROTOCOL);
        let mut control = attacker.stream_control();
        let mut held = Vec::new();
        for _ in 0..64 {
            if let Ok(Ok(s)) = tokio::time::timeout(
                Duration::from_secs(2),
                control.open_stream(target, metadata.clone()),
            )
            .await
            {
                held.push(s);
            }
        }
        let asked = Instant::now();
        let mut honest_control = honest.stream_control();
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            let mut s = honest_control.open_stream(target, metadata.clone()).await?;
            s.write_all(&packets::raw_frame(&[0u8; 8])).await?;
            s.flush().await?;
            let mut response = Vec::new();
            s.read_to_end(&mut response).await?;
            anyhow::Ok(response)
        })
        .await;
        let took = asked.elapsed().as_secs_f64();
        let answered = matches!(&answer, Ok(Ok(r)) if !r.is_empty());
        let after = net.relays[t].metrics().await?;
        let served = (usize::from(answered), 1);
        let mut case = finish(
            net,
            t,
            "metadata slow-loris (F15)",
            format!(
                "{} Waku metadata streams opened by one peer, held without a request",
                held.len()
            ),
            "at most 4 held per peer, the rest dropped; an honest metadata request answered within 1 s".into(),
            &before,
            &after,
            &[],
            served,
            started,
        )
        .await;
        drop(held);
        case.observed = format!(
            "honest metadata request answered: {answered}, in {:.0} ms; {}",
            took * 1000.0,
            case.observed
        );
        case.pass &= answered && took < 1.0;
        cases.push(case);
    }
    Ok(cases)
}

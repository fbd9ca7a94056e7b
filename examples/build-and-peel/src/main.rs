#![doc = include_str!("../README.md")]

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mix_core::{
    Action, Address, Delay, DelayStrategy, ExitMessage, Hop, MemoryReplayFilter, NodeSecretKey,
    PACKET_LEN, PacketBuilder, PeelError, PeerIdBytes, ReplayConfig, Route, Surb, Transport, peel,
};
use rand::RngExt;

const CODEC: &str = "/vac/waku/lightpush/3.0.0";
const NODES: usize = 5;

/// One in-memory mix node: a key, an address and a replay filter.
struct Node {
    name: String,
    key: NodeSecretKey,
    address: Address,
    replay: MemoryReplayFilter,
}

fn node(rng: &mut impl rand::CryptoRng, i: usize, name: String) -> Node {
    let mut compressed = [0u8; 33];
    rng.fill_bytes(&mut compressed);
    compressed[0] = 0x02;
    let peer_id = PeerIdBytes::from_secp256k1_public_key(&compressed)
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| unreachable!("a 02-prefixed key has the peer id shape: {e}"));
    Node {
        name,
        key: NodeSecretKey::generate(rng),
        address: Address::direct(
            Ipv4Addr::LOCALHOST,
            Transport::Tcp,
            60_000 + u16::try_from(i).unwrap_or(0),
            peer_id,
        ),
        replay: MemoryReplayFilter::new(ReplayConfig::default()),
    }
}

fn hop(n: &Node) -> Hop {
    Hop {
        address: n.address,
        public_key: n.key.public_key(),
    }
}

fn index_of(nodes: &[Node], address: &Address) -> Option<usize> {
    nodes.iter().position(|n| n.address == *address)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn run() -> Result<(), String> {
    let mut rng = rand::rng();
    let strategy = DelayStrategy::exponential(Delay::from_millis(50));
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| node(&mut rng, i, format!("node-{i}")))
        .collect();
    let mut sender = node(&mut rng, NODES, "sender".into());

    // A uniformly random path of three distinct nodes; the SURB's return path is two other
    // nodes (not the exit) and then the sender itself.
    let mut order: Vec<usize> = (0..NODES).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let [a, b, c, d, e] = [order[0], order[1], order[2], order[3], order[4]];
    let route = Route {
        hops: [hop(&nodes[a]), hop(&nodes[b]), hop(&nodes[c])],
        delays: [strategy.for_entry(&mut rng), strategy.for_entry(&mut rng)],
    };
    let back = Route {
        hops: [hop(&nodes[d]), hop(&nodes[e]), hop(&sender)],
        delays: [strategy.for_entry(&mut rng), strategy.for_entry(&mut rng)],
    };
    println!("mix-core in-memory mixnet: {NODES} nodes + the sender, 4608-byte packets");
    println!(
        "route: {} → {} → {} (the exit is the destination), return path: {} → {} → sender",
        nodes[a].name, nodes[b].name, nodes[c].name, nodes[d].name, nodes[e].name
    );

    let request = b"\x2a{\"pubsubTopic\":\"/waku/2/rs/66/0\",\"message\":\"hello, mixnet\"}";
    let started = Instant::now();
    let (surb, surb_keys) = Surb::create(&mut rng, &back).map_err(|e| e.to_string())?;
    let surbs = [surb];
    let builder = PacketBuilder::new(&route).surbs(&surbs);
    let mut packet = [0u8; PACKET_LEN];
    builder
        .build(&mut rng, CODEC, request, &mut packet)
        .map_err(|e| e.to_string())?;
    println!(
        "sender: built a {}-byte request with 1 SURB in {} (room for {} bytes with this codec and SURB count)",
        request.len(),
        ms(started.elapsed()),
        builder.max_message_len(CODEC).map_err(|e| e.to_string())?
    );
    let first_packet = packet;

    let mut virtual_clock = Duration::ZERO;
    let mut at = a;
    let mut reply = [0u8; PACKET_LEN];
    loop {
        let t = Instant::now();
        let n = &mut nodes[at];
        let action =
            peel(&n.key, &mut n.replay, 0, &mut packet).map_err(|e| format!("{}: {e}", n.name))?;
        let cost = t.elapsed();
        match action {
            Action::Forward {
                next_hop, delay, ..
            } => {
                let wait = strategy.for_hop(delay, &mut rng).to_duration();
                virtual_clock += wait;
                let next = index_of(&nodes, &next_hop).ok_or("unknown next hop")?;
                println!(
                    "  {}: peeled in {}, knows only its neighbours; waits {} then forwards to {}",
                    nodes[at].name,
                    ms(cost),
                    ms(wait),
                    nodes[next].name
                );
                at = next;
            }
            Action::Exit {
                destination: None,
                message: ExitMessage::Request { codec, surbs, body },
            } => {
                println!(
                    "  {}: exit, delivers {} bytes to its own {codec} handler; {} SURB(s) to answer through",
                    nodes[at].name,
                    body.len(),
                    surbs.len()
                );
                for surb in surbs.iter() {
                    surb.build_reply(&mut rng, b"lightpush status 200 OK", &mut reply)
                        .map_err(|e| e.to_string())?;
                    at = index_of(&nodes, surb.first_hop()).ok_or("unknown SURB hop")?;
                }
                break;
            }
            other => return Err(format!("unexpected action {other:?}")),
        }
    }

    // The reply travels the return path; the sender is its last hop.
    let mut holder = Some(at);
    loop {
        let t = Instant::now();
        let n = match holder {
            Some(i) => &mut nodes[i],
            None => &mut sender,
        };
        let name = n.name.clone();
        match peel(&n.key, &mut n.replay, 0, &mut reply).map_err(|e| format!("{name}: {e}"))? {
            Action::Forward {
                next_hop, delay, ..
            } => {
                let wait = strategy.for_hop(delay, &mut rng).to_duration();
                virtual_clock += wait;
                holder = index_of(&nodes, &next_hop);
                let next = holder.map_or("sender", |i| nodes[i].name.as_str());
                println!(
                    "  {name}: reply hop, peeled in {}, waits {} then forwards to {next}",
                    ms(t.elapsed()),
                    ms(wait)
                );
            }
            Action::Reply { surb_id, payload } if surb_id == surb_keys.id() => {
                let body = surb_keys.open_reply(payload).map_err(|e| e.to_string())?;
                println!(
                    "sender: reply opened in {}: {:?}",
                    ms(t.elapsed()),
                    String::from_utf8_lossy(body)
                );
                break;
            }
            other => return Err(format!("unexpected action {other:?}")),
        }
    }
    println!(
        "round trip: {} of cryptography, {} of mixing delay (virtual)",
        ms(started.elapsed()),
        ms(virtual_clock)
    );

    // A replay of the first packet is refused by its first hop.
    let mut replayed = first_packet;
    let first = &mut nodes[a];
    match peel(&first.key, &mut first.replay, 1, &mut replayed) {
        Err(PeelError::Replay(_)) => println!("replay: {} dropped the replayed packet", first.name),
        other => return Err(format!("the replay was not refused: {other:?}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

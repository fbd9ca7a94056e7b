//! `create`'s search for a gateway (each bootstrap relay in turn, each of its addresses in
//! turn, WebTransport first) until one grants a circuit reservation, and the start of the
//! client on it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt as _, StreamExt as _};
use futures_timer::Delay;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity, relay};
use mix_libp2p::{Instant, MixNode};

use super::driver::{Discovery, Driver, Ready};
use super::swarm::{Behaviour, BehaviourEvent, build_swarm, first_connection};
use super::{ClientEvent, MixClient, Shared, Stats, closed, count, init_logging};
use crate::error::{Code, MixError};
use crate::options::{ClientOptions, DEFAULT_CLUSTER_ID, MixNodeOptions};
use crate::{sender, transports};

/// The least time `create` gives one gateway (all its addresses) before it moves on.
const MIN_GATEWAY_SHARE: Duration = Duration::from_secs(2);

/// The gateway's address a packet can carry (IPv4 TCP or QUIC), from the pool or, failing
/// that, from what the gateway told identify.
fn packet_address(
    gateway: PeerId,
    pool: &[MixNode],
    identified: &[Multiaddr],
) -> Option<Multiaddr> {
    let from_pool = pool
        .iter()
        .find(|n| n.peer_id == gateway)
        .map(|n| mix_libp2p::to_multiaddr(&n.address));
    from_pool.or_else(|| {
        identified.iter().find_map(|a| {
            let a = a.clone().with_p2p(gateway).ok()?;
            let parsed = mix_libp2p::from_multiaddr(&a, Some(gateway)).ok()?;
            (parsed.relay.is_none()).then(|| mix_libp2p::to_multiaddr(&parsed))
        })
    })
}

pub(super) async fn connect(options: ClientOptions) -> Result<MixClient, MixError> {
    init_logging(options.log_level.as_deref())?;
    let network = options.network()?;
    tracing::info!(
        format = %network.format,
        sender_hold_ms = network.hold.map_or(0, mix_core::Delay::as_millis),
        "wire format"
    );
    let pool = MixNodeOptions::pool(options.mixnodes.as_deref().unwrap_or_default())?;
    // No fixed pool: look it up through rendezvous at the gateway.
    let discover = pool.is_empty();
    let cluster = options.cluster_id.unwrap_or(DEFAULT_CLUSTER_ID);
    let bootstrap = options
        .bootstrap
        .iter()
        .map(|a| {
            let addr: Multiaddr = a
                .parse()
                .map_err(|e| MixError::invalid(format!("bootstrap {a:?}: {e}")))?;
            match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Ok((peer, addr)),
                _ => Err(MixError::invalid(format!(
                    "bootstrap {a:?} must end in /p2p/<peer id>"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if bootstrap.is_empty() {
        return Err(MixError::invalid("bootstrap must name at least one relay"));
    }
    let timeout = Duration::from_millis(u64::from(options.connect_timeout_ms.unwrap_or(10_000)));
    let give_up_at = Instant::now() + timeout;
    let key = identity::Keypair::generate_secp256k1();
    let me = key.public().to_peer_id();

    // Entries naming the same relay are one gateway's alternatives (WebTransport first); each
    // gateway gets its share of the timeout, whichever of its addresses uses it.
    let gateways = transports::gateway_order(bootstrap);
    let share = (timeout / count(gateways.len())).max(MIN_GATEWAY_SHARE);
    let mut search = Search {
        swarm: build_swarm(key)?,
        deadline: Delay::new(timeout).fuse(),
        connections: Vec::new(),
    };
    let reserved = search.reserve(&gateways, share, &pool).await;
    let Search {
        mut swarm,
        connections,
        ..
    } = search;
    let Reserved {
        gateway,
        dialed,
        listener,
        identified,
    } = reserved.map_err(|failures| {
        let why = if failures.is_empty() {
            "no gateway answered".to_owned()
        } else {
            failures.join("; ")
        };
        MixError::new(
            Code::NotConnected,
            format!("no gateway relay granted a reservation within {timeout:?}: {why}"),
        )
    })?;
    let listen_addrs = identified
        .as_ref()
        .map_or(&[][..], |i| i.listen_addrs.as_slice());
    let Some(gateway_addr) = packet_address(gateway, &pool, listen_addrs) else {
        return Err(MixError::new(
            Code::NotConnected,
            format!("the gateway {gateway} has no IPv4 TCP or QUIC address to put in SURBs"),
        ));
    };
    let serves_rendezvous = identified.as_ref().is_some_and(|i| {
        i.protocols
            .iter()
            .any(|p| p.as_ref() == mix_discovery::PROTOCOL_NAME)
    });
    if discover && !serves_rendezvous {
        return Err(MixError::new(
            Code::NoRoute,
            format!(
                "no mixnodes were given and the gateway {gateway} does not serve Waku rendezvous \
                 ({}): pass mixnodes, or bootstrap from a relay that serves it",
                mix_discovery::PROTOCOL_NAME
            ),
        ));
    }
    let circuit = gateway_addr
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(me));
    let mut rng = sender::rng()?;
    let mut sender =
        sender::new_sender(&mut rng, me, circuit.clone(), pool, network)?.with_lookups(discover);
    // The gateway knows our IP and relays every reply to us: never on our paths, never the
    // exit (F9), even when it is in the pool or lists itself.
    sender.exclude(gateway);
    let (commands, commands_rx) = mpsc::unbounded();
    let shared = Rc::new(Shared {
        commands,
        events: RefCell::new(VecDeque::new()),
        event_waiters: RefCell::new(Vec::new()),
        closed: Cell::new(false),
        stats: RefCell::new(Stats {
            pool_size: count(sender.client().pool_len()),
            ..Stats::default()
        }),
        rng: RefCell::new(sender::rng()?),
        peer_id: me,
        circuit: circuit.clone(),
        format: network.format,
    });
    for (peer, address) in &connections {
        shared.emit(ClientEvent::Connected {
            peer_id: peer.to_string(),
            address: address.to_string(),
        });
    }
    shared.emit(ClientEvent::Reservation {
        relay: gateway.to_string(),
        address: circuit.to_string(),
    });
    // Lookups may have to dial the gateway again after a lost connection: the address that
    // worked first, then its others.
    let others = gateways
        .iter()
        .filter(|(peer, _)| *peer == gateway)
        .flat_map(|(_, addrs)| addrs)
        .filter(|a| **a != dialed);
    for addr in std::iter::once(&dialed).chain(others) {
        swarm
            .behaviour_mut()
            .rendezvous
            .add_address(&gateway, addr.clone());
    }
    let now = Instant::now();
    let mut driver = Driver::new(
        swarm,
        sender,
        rng,
        Rc::downgrade(&shared),
        gateway,
        (dialed.with(Protocol::P2pCircuit), listener),
        discover.then(|| Discovery::new(now, cluster)),
    );
    if !discover {
        // The fixed pool is known now: its `pool` event goes out at once.
        driver.drain(None);
        wasm_bindgen_futures::spawn_local(driver.run(commands_rx));
        return Ok(MixClient { shared });
    }
    let (ready_tx, ready_rx) = oneshot::channel();
    driver.ready = Some(Ready {
        done: ready_tx,
        give_up_at,
        timeout,
    });
    wasm_bindgen_futures::spawn_local(driver.run(commands_rx));
    // On failure `shared` is dropped here, and with it the command channel: the driver stops.
    match ready_rx.await {
        Ok(Ok(())) => Ok(MixClient { shared }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(closed()),
    }
}

/// A gateway that granted a circuit reservation.
struct Reserved {
    gateway: PeerId,
    /// The address that got it.
    dialed: Multiaddr,
    listener: ListenerId,
    identified: Option<identify::Info>,
}

/// How one gateway address ended.
enum Attempt {
    Reserved(Box<Reserved>),
    /// This address failed, and why; the gateway's next one may work.
    Failed(String),
    /// The gateway's share of the time ran out: the next gateway's turn.
    ShareUsed,
    /// `connectTimeoutMs` ran out.
    OutOfTime,
}

/// `create`'s search for a gateway: the swarm, the overall deadline, and the connections
/// opened on the way (their `connected` events go out once the client exists).
struct Search {
    swarm: Swarm<Behaviour>,
    deadline: futures::future::Fuse<Delay>,
    connections: Vec<(PeerId, Multiaddr)>,
}

impl Search {
    /// Tries the gateways in turn, and each gateway's addresses in turn (WebTransport first)
    /// until one grants a reservation. Each gateway gets `share` of the time, whichever of its
    /// addresses uses it (at least 2 s: a refused WebSocket dial is not always reported, and
    /// one dead gateway must not use up the time of the others). Returns the gateway, or what
    /// went wrong with each address tried.
    async fn reserve(
        &mut self,
        gateways: &[(PeerId, Vec<Multiaddr>)],
        share: Duration,
        pool: &[MixNode],
    ) -> Result<Reserved, Vec<String>> {
        let mut failures = Vec::new();
        'gateways: for (gateway, addrs) in gateways {
            // The SURB address needs the gateway's TCP address: from the pool or from identify.
            let in_pool = pool.iter().any(|n| n.peer_id == *gateway);
            let mut budget = Delay::new(share).fuse();
            for addr in addrs {
                match self.attempt(*gateway, addr, in_pool, &mut budget).await {
                    Attempt::Reserved(reserved) => return Ok(*reserved),
                    Attempt::Failed(why) => failures.push(format!("{addr}: {why}")),
                    Attempt::ShareUsed => {
                        failures.push(format!(
                            "{addr}: no reservation within this gateway's {share:?}"
                        ));
                        continue 'gateways;
                    }
                    Attempt::OutOfTime => {
                        failures.push(format!("{addr}: connectTimeoutMs ran out"));
                        break 'gateways;
                    }
                }
            }
        }
        Err(failures)
    }

    /// Listens on `addr`'s circuit (the relay client dials `addr` and asks for a reservation)
    /// and waits for the reservation and, unless the pool has the gateway's address, identify.
    async fn attempt(
        &mut self,
        gateway: PeerId,
        addr: &Multiaddr,
        in_pool: bool,
        budget: &mut futures::future::Fuse<Delay>,
    ) -> Attempt {
        let swarm = &mut self.swarm;
        let listener = match swarm.listen_on(addr.clone().with(Protocol::P2pCircuit)) {
            Ok(id) => id,
            Err(e) => return Attempt::Failed(error_chain(&e)),
        };
        let mut accepted = false;
        let mut identified: Option<identify::Info> = None;
        loop {
            let event = futures::select! {
                event = swarm.select_next_some() => event,
                () = &mut *budget => {
                    swarm.remove_listener(listener);
                    let _ = swarm.disconnect_peer_id(gateway);
                    return Attempt::ShareUsed;
                }
                () = &mut self.deadline => return Attempt::OutOfTime,
            };
            match event {
                SwarmEvent::Behaviour(BehaviourEvent::Relay(
                    relay::client::Event::ReservationReqAccepted { relay_peer_id, .. },
                )) if relay_peer_id == gateway => accepted = true,
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                    peer_id,
                    info,
                    ..
                })) if peer_id == gateway => identified = Some(info),
                SwarmEvent::ConnectionEstablished {
                    peer_id,
                    endpoint,
                    num_established,
                    concurrent_dial_errors,
                    ..
                } => {
                    if let Some(address) = first_connection(
                        peer_id,
                        &endpoint,
                        num_established,
                        concurrent_dial_errors.as_deref(),
                    ) {
                        self.connections.push((peer_id, address));
                    }
                }
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } => self.connections.retain(|(p, _)| *p != peer_id),
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } if listener_id == listener => {
                    return Attempt::Failed(match reason {
                        // The relay client dropped the listener: the dial failed or the
                        // connection closed.
                        Ok(()) => {
                            "no connection held until the relay answered the reservation".to_owned()
                        }
                        Err(e) => error_chain(&e),
                    });
                }
                SwarmEvent::ListenerError { listener_id, error } if listener_id == listener => {
                    swarm.remove_listener(listener);
                    return Attempt::Failed(error_chain(&error));
                }
                SwarmEvent::OutgoingConnectionError {
                    peer_id: Some(p),
                    error,
                    ..
                } if p == gateway => {
                    swarm.remove_listener(listener);
                    return Attempt::Failed(error.to_string());
                }
                _ => {}
            }
            if accepted && (in_pool || identified.is_some()) {
                return Attempt::Reserved(Box::new(Reserved {
                    gateway,
                    dialed: addr.clone(),
                    listener,
                    identified,
                }));
            }
        }
    }
}

/// `error` and its sources, `: `-separated (the relay client's errors keep the reason in
/// their source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

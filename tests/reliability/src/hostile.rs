//! Hostile input against one relay (the target): each case sends what an attacker would and
//! checks the target's metrics count it under the expected reason, that the target is still
//! running and still serves honest requests, and how its memory moved.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use libp2p::{Stream, StreamProtocol};
use mix_core::{HEADER_LEN, PACKET_LEN};
use mix_libp2p::{MixNode, SendOptions};

use crate::load::{self, Offered, Summary};
use crate::net::{Metrics, Testnet};
use crate::packets;
use Count::{AtLeast, Exactly};

const MIX: StreamProtocol = StreamProtocol::new("/mix/1.0.0");

/// `mix-relay`'s default `--max-connections-per-peer`.
const MAX_CONNECTIONS_PER_PEER: usize = 8;

/// `mix-relay`'s default `--max-streams-per-connection`.
const MAX_STREAMS_PER_CONNECTION: usize = mix_libp2p::DEFAULT_MAX_INBOUND_STREAMS;

/// The drop reasons inbound bytes and packets can cause.
const INPUT_REASONS: [&str; 13] = [
    "length",
    "oversize",
    "bad_prefix",
    "truncated",
    "stalled",
    "stream_limit",
    "stream_idle_closed",
    "rate_limited",
    "rejected",
    "payload_integrity",
    "replay",
    "malformed",
    "unknown_surb",
];

/// The metric the connection limits count refusals in.
const DENIED: &str = "mix_connections_denied_total";

/// One case's result.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    /// What was sent.
    pub(crate) input: String,
    /// The expected outcome, as the report states it.
    pub(crate) expected: String,
    /// What the metrics showed.
    pub(crate) observed: String,
    /// Honest lightpush requests to the target right after the case: delivered / sent.
    pub(crate) served: (usize, usize),
    /// The target's resident memory after the case, bytes.
    pub(crate) rss_after: u64,
    /// The longest event-loop stall of the target seen during the case, ms
    /// (`mix_event_loop_lag_max_ms`: sampled while the attack ran, or at its end).
    pub(crate) stall_ms: f64,
    pub(crate) pass: bool,
    pub(crate) seconds: f64,
}

/// How hard to push.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Streams opened by one peer in the "many streams" case.
    pub(crate) streams: usize,
    /// Seconds of flooding.
    pub(crate) flood_secs: u64,
    /// The relays' per-peer rate limit (packets/s, burst the same).
    pub(crate) rate_limit: u32,
    /// The relays' frame timeout.
    pub(crate) frame_timeout: Duration,
    /// Honest requests per second during the flood.
    pub(crate) honest_rate: f64,
    /// Connections the attacker opens at once.
    pub(crate) connections: usize,
}

/// Everything hostile: returns the cases and the target's RSS before them.
pub(crate) async fn run(
    net: &mut Testnet,
    pool: &[MixNode],
    plan: &Plan,
) -> anyhow::Result<(Vec<Case>, u64)> {
    // Relay 0 is the target; 1 and 2 complete the routes.
    let (t, a, b) = (0usize, 1usize, 2usize);
    let target = net.relays[t].peer_id;
    let target_addr = net.relays[t].addr.clone();
    let honest = Arc::new(load::sender(pool.to_vec(), 0).await?);
    // The attacker lifts its own connection limit, so only the target's applies.
    let attacker =
        load::sender_with(pool.to_vec(), 0, |s| s.max_connections_per_peer = 10_000).await?;
    attacker.dial(target_addr.clone()).await?;
    let rss_before = net.relays[t].usage().map_or(0, |u| u.rss);
    let mut cases = Vec::new();

    // A raw /mix/1.0.0 stream from the attacker to the target.
    let open = || {
        let mut control = attacker.stream_control();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match control.open_stream(target, MIX).await {
                    Ok(s) => return anyhow::Ok(s),
                    Err(e) if Instant::now() > deadline => {
                        anyhow::bail!("opening a /mix/1.0.0 stream to the target: {e}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    };
    let served = |n: usize| {
        let honest = honest.clone();
        async move {
            let mut ok = 0;
            for i in 0..n {
                let (_, outcome) = load::lightpush(
                    &honest,
                    target,
                    SendOptions::default(),
                    format!("honest after a hostile case {i}"),
                )
                .await;
                if matches!(outcome, load::Outcome::Delivered(_)) {
                    ok += 1;
                }
            }
            (ok, n)
        }
    };
    let nodes: Vec<MixNode> = pool.to_vec();
    let (nt, na, nb) = (&nodes[t], &nodes[a], &nodes[b]);

    // 1. A frame of the wrong length: read and dropped, the stream goes on.
    let expect = Expect::new(
        t,
        "wrong frame length",
        "2 × `length`; the stream stays open",
    )
    .input("frames of 100 and 4000 bytes on one stream")
    .counts(&[("length", Exactly(2.0))]);
    let attack = async {
        let mut s = open().await?;
        let mut bytes = packets::raw_frame(&[0u8; 100]);
        bytes.extend(packets::raw_frame(&[1u8; 4000]));
        write(&mut s, &bytes).await;
        Ok(Some(s))
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 2. Bad varints: a non-minimal prefix, and one that overflows.
    let expect = Expect::new(t, "bad varint", "2 × `bad_prefix`; both streams closed")
        .input("prefix `80 00` (not minimal) on one stream, eleven `ff` bytes on another")
        .counts(&[("bad_prefix", Exactly(2.0))]);
    let attack = async {
        let mut s1 = open().await?;
        write(&mut s1, &[0x80, 0x00, 0xff, 0xff]).await;
        let mut s2 = open().await?;
        write(&mut s2, &[0xff; 11]).await;
        Ok(None)
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 3. A 100,000-byte frame: the prefix alone closes the stream; the body is never read.
    let expect = Expect::new(t, "100k-byte frame", "1 × `oversize`; stream closed unread")
        .input("prefix 100000 and 100,000 bytes")
        .counts(&[("oversize", Exactly(1.0))]);
    let attack = async {
        let mut s = open().await?;
        write(&mut s, &packets::raw_frame(&vec![7u8; 100_000])).await;
        Ok(None)
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 4. A bad MAC: one bit of β flipped in a valid packet.
    let expect = Expect::new(
        t,
        "bad MAC",
        "1 × `rejected` at the first hop; nothing forwarded",
    )
    .input("a valid packet with one bit of β flipped")
    .counts(&[("rejected", Exactly(1.0))]);
    let attack = async {
        let mut frame = packets::forward([nt, na, nb], "bad mac")?;
        frame.packet[40] ^= 0x01;
        attacker
            .send_frame(target, vec![target_addr.clone()], frame)
            .await?;
        Ok(None)
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 5. A replay: the same valid packet twice.
    let expect = Expect::new(t, "replay", "the first forwarded, 1 × `replay`")
        .input("one valid packet sent twice")
        .counts(&[("replay", Exactly(1.0))]);
    let attack = async {
        let frame = packets::forward([nt, na, nb], "replayed")?;
        for _ in 0..2 {
            attacker
                .send_frame(target, vec![target_addr.clone()], frame.clone())
                .await?;
        }
        Ok(None)
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 6. Tampered δ: the first byte of the payload flipped. δ carries no per-hop MAC
    // (MIX-LIONESS.md §2): the hops forward it, LIONESS garbles the whole payload, and the
    // exit's zero-prefix check rejects it.
    let expect = Expect::new(
        b,
        "tampered δ",
        "forwarded by both intermediates, 1 × `payload_integrity` at the exit",
    )
    .input("a valid packet with δ's first byte flipped")
    .counts(&[("payload_integrity", Exactly(1.0))]);
    let attack = async {
        let mut frame = packets::forward([nt, na, nb], "tampered delta")?;
        frame.packet[HEADER_LEN] ^= 0x80;
        attacker
            .send_frame(target, vec![target_addr.clone()], frame)
            .await?;
        Ok(None)
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 7. A reply for a SURB id the target never made.
    let expect = Expect::new(t, "unknown SURB id", "1 × `unknown_surb` at the target")
        .input("a reply on a SURB built for the target by someone else, via two hops")
        .counts(&[("unknown_surb", Exactly(1.0))]);
    let (first, first_addr) = (net.relays[a].peer_id, net.relays[a].addr.clone());
    let attack = async {
        let frame = packets::unsolicited_reply([na, nb, nt])?;
        attacker.send_frame(first, vec![first_addr], frame).await?;
        Ok(None)
    };
    cases.push(simple(net, expect, attack, served(2)).await?);

    // 8. Slow loris: streams that start a frame and never finish it.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let mut held = Vec::new();
        for _ in 0..6 {
            let mut s = open().await?;
            let mut bytes = vec![0x80, 0x24];
            bytes.extend_from_slice(&[0u8; 1000]);
            write(&mut s, &bytes).await;
            held.push(s);
        }
        // Honest traffic is served while the streams hang.
        let during = served(2).await;
        let after = wait_for(net, t, &before, &[("stalled", Exactly(6.0))]).await?;
        let mut case = finish(
            net,
            t,
            "slow-loris streams",
            format!(
                "6 streams each sending 1,002 of a frame's 4,610 bytes, then nothing (frame timeout {} s)",
                plan.frame_timeout.as_secs()
            ),
            "6 × `stalled` after the frame timeout; served meanwhile".into(),
            &before,
            &after,
            &[("stalled", Exactly(6.0))],
            during,
            started,
        )
        .await;
        let later = served(1).await;
        case.served = (case.served.0 + later.0, case.served.1 + later.1);
        case.pass &= case.served.0 == case.served.1;
        cases.push(case);
        drop(held);
    }

    // 9. Thousands of streams from one peer, all held open. The target holds up to its
    // per-connection limit and reclaims the idle longest for each new one; it refuses none
    // (nim-libp2p drops a whole connection when one of its streams is refused).
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let mut opened = 0usize;
        let mut errors = 0usize;
        let mut control = attacker.stream_control();
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..plan.streams {
            match tokio::time::timeout(Duration::from_secs(5), control.open_stream(target, MIX))
                .await
            {
                Ok(Ok(s)) => {
                    opened += 1;
                    // Hold it until the target closes it (the ones it keeps stay open).
                    readers.spawn(hold(s));
                }
                _ => errors += 1,
            }
        }
        // Honest traffic while the attacker's streams are held.
        let during = served(2).await;
        let want = opened.saturating_sub(MAX_STREAMS_PER_CONNECTION) as f64;
        let want = [
            ("stream_idle_closed", AtLeast(want)),
            ("stream_limit", Exactly(0.0)),
        ];
        let after = wait_for(net, t, &before, &want).await?;
        // The attacker's side: the streams the target closed (their `hold` returned).
        let mut closed = 0usize;
        while let Some(done) = readers.try_join_next() {
            closed += usize::from(done.is_ok());
        }
        let mut case = finish(
            net,
            t,
            "thousands of streams",
            format!(
                "{} /mix/1.0.0 streams opened by one peer and held ({opened} opened, {errors} refused by the muxer; the attacker saw {closed} closed)",
                plan.streams
            ),
            format!(
                "none refused; beyond {MAX_STREAMS_PER_CONNECTION} held per connection, the idle longest reclaimed for each new one, each a `stream_idle_closed`; served meanwhile"
            ),
            &before,
            &after,
            &want,
            during,
            started,
        )
        .await;
        let later = served(2).await;
        case.served = (case.served.0 + later.0, case.served.1 + later.1);
        case.pass &= case.served.0 == case.served.1;
        case.pass &= opened + errors == plan.streams && opened >= plan.streams / 2;
        cases.push(case);
        readers.abort_all();
    }

    // 10. A flood from one peer at five times its rate limit, with honest load beside it.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let services: Vec<_> = pool.iter().map(|n| n.peer_id).collect();
        let honest_load = tokio::spawn(load::run(
            honest.clone(),
            Offered {
                rate: plan.honest_rate,
                duration: Duration::from_secs(plan.flood_secs),
                services,
                options: SendOptions::default(),
                label: "honest during a flood",
            },
        ));
        let mut s = open().await?;
        let per_tick = (plan.rate_limit as usize * 5) / 100;
        let mut sent = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let flood_until = Instant::now() + Duration::from_secs(plan.flood_secs);
        let mut junk = vec![0u8; PACKET_LEN];
        while Instant::now() < flood_until {
            tick.tick().await;
            let mut bytes = Vec::with_capacity(per_tick * (PACKET_LEN + 2));
            for _ in 0..per_tick {
                rand::fill(&mut junk[..]);
                bytes.extend(packets::raw_frame(&junk));
            }
            if s.write_all(&bytes).await.is_err() {
                break;
            }
            sent += per_tick;
        }
        let _ = s.flush().await;
        let flood_secs = started.elapsed().as_secs_f64();
        let records = honest_load.await.unwrap_or_default();
        let honest = Summary::of(&records);
        // Every flooded frame is counted: within the limit it is peeled and fails its MAC
        // (`rejected`), beyond it `rate_limited`.
        let after =
            wait_for_sum(net, t, &before, &["rejected", "rate_limited"], sent as f64).await?;
        let rejected = after.dropped("rejected") - before.dropped("rejected");
        let limited = after.dropped("rate_limited") - before.dropped("rate_limited");
        let allowed = f64::from(plan.rate_limit) * (flood_secs + 1.0) + f64::from(plan.rate_limit);
        let mut case = finish(
            net,
            t,
            "flood from one peer",
            format!(
                "{sent} random 4608-byte frames in {flood_secs:.1} s ({:.0}/s, the limit is {}/s), honest load {}/s beside it",
                sent as f64 / flood_secs,
                plan.rate_limit,
                plan.honest_rate
            ),
            format!(
                "at most {allowed:.0} peeled (`rejected`), the rest `rate_limited`; honest delivery ≥ 95 %"
            ),
            &before,
            &after,
            &[],
            (honest.delivered, honest.sent),
            started,
        )
        .await;
        case.observed = format!(
            "{rejected:.0} `rejected`, {limited:.0} `rate_limited` of {sent}; honest {}/{} delivered, p50 {:.0} ms{}",
            honest.delivered,
            honest.sent,
            honest.p50,
            case.observed
                .split_once(';')
                .map(|(_, rest)| format!(";{rest}"))
                .unwrap_or_default()
        );
        case.pass &= limited > 0.0
            && rejected <= allowed
            && (rejected + limited - sent as f64).abs() < 0.5
            && honest.ratio() >= 0.95;
        cases.push(case);
    }

    // 11. Many connections from one peer: beyond the per-peer limit they are refused.
    {
        let started = Instant::now();
        let before = net.relays[t].metrics().await?;
        let dials = plan.connections;
        for _ in 0..dials {
            attacker.dial(target_addr.clone()).await?;
        }
        let want = dials.saturating_sub(MAX_CONNECTIONS_PER_PEER) as f64;
        let deadline = Instant::now() + Duration::from_secs(20);
        let after = loop {
            let now = net.relays[t].metrics().await?;
            let denied = now.get(DENIED) - before.get(DENIED);
            if denied >= want || Instant::now() > deadline {
                tokio::time::sleep(Duration::from_millis(300)).await;
                break net.relays[t].metrics().await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let denied = after.get(DENIED) - before.get(DENIED);
        let mut case = finish(
            net,
            t,
            "connections from one peer",
            format!("{dials} more TCP connections from the attacker, which already has one"),
            format!(
                "at most {MAX_CONNECTIONS_PER_PEER} kept, at least {want:.0} refused (`mix_connections_denied_total`)"
            ),
            &before,
            &after,
            &[],
            served(2).await,
            started,
        )
        .await;
        case.observed = format!("{denied:.0} refused; {}", case.observed);
        case.pass &= denied >= want && denied <= dials as f64;
        cases.push(case);
    }

    // 12–18. The audit's cheap denial-of-service attacks (F2, F3, F5, F6, F12, F13, F15).
    eprintln!("[hostile] seven denial-of-service attacks (F2, F3, F5, F6, F12, F13, F15)");
    cases.extend(crate::dos::run(net, pool, plan, &honest, &attacker).await?);

    if let Ok(h) = Arc::try_unwrap(honest) {
        h.shutdown().await;
    }
    attacker.shutdown().await;
    Ok((cases, rss_before))
}

/// How much a drop counter must grow in a case.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Exactly(f64),
    AtLeast(f64),
}

impl Count {
    /// The growth to wait for.
    fn least(self) -> f64 {
        match self {
            Exactly(n) | AtLeast(n) => n,
        }
    }

    fn holds(self, delta: f64) -> bool {
        match self {
            Exactly(n) => (delta - n).abs() < 0.5,
            AtLeast(n) => delta >= n,
        }
    }
}

/// What a simple case must show on one relay's metrics.
struct Expect {
    at: usize,
    name: &'static str,
    input: String,
    expected: String,
    want: Vec<(&'static str, Count)>,
}

impl Expect {
    fn new(at: usize, name: &'static str, expected: &str) -> Self {
        Self {
            at,
            name,
            input: String::new(),
            expected: expected.to_owned(),
            want: Vec::new(),
        }
    }

    fn input(mut self, input: &str) -> Self {
        self.input = input.to_owned();
        self
    }

    fn counts(mut self, want: &[(&'static str, Count)]) -> Self {
        self.want = want.to_vec();
        self
    }
}

/// Runs `attack` (which may hand back a stream to keep open until the check is done), waits
/// for the expected counts, then for `served`.
async fn simple(
    net: &mut Testnet,
    expect: Expect,
    attack: impl Future<Output = anyhow::Result<Option<Stream>>>,
    served: impl Future<Output = (usize, usize)>,
) -> anyhow::Result<Case> {
    let started = Instant::now();
    let before = net.relays[expect.at].metrics().await?;
    let held = attack.await?;
    let after = wait_for(net, expect.at, &before, &expect.want).await?;
    let served = served.await;
    drop(held);
    Ok(finish(
        net,
        expect.at,
        expect.name,
        expect.input,
        expect.expected,
        &before,
        &after,
        &expect.want,
        served,
        started,
    )
    .await)
}

/// Writes and flushes, ignoring errors (the target may close the stream at any point).
async fn write(stream: &mut Stream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

/// Reads until the other side closes the stream.
async fn hold(mut stream: Stream) {
    let mut buf = [0u8; 64];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Polls relay `i`'s metrics until every `(reason, n)` has grown by at least `n` since
/// `before` (at most 30 s).
async fn wait_for(
    net: &Testnet,
    i: usize,
    before: &Metrics,
    want: &[(&str, Count)],
) -> anyhow::Result<Metrics> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = net.relays[i].metrics().await?;
        let done = want
            .iter()
            .all(|(reason, n)| now.dropped(reason) - before.dropped(reason) >= n.least());
        if done || Instant::now() > deadline {
            // One more beat, so a count that overshoots shows.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return net.relays[i].metrics().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// As [`wait_for`], for the sum of several reasons.
async fn wait_for_sum(
    net: &Testnet,
    i: usize,
    before: &Metrics,
    reasons: &[&str],
    n: f64,
) -> anyhow::Result<Metrics> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = net.relays[i].metrics().await?;
        let sum: f64 = reasons
            .iter()
            .map(|r| now.dropped(r) - before.dropped(r))
            .sum();
        if sum >= n || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return net.relays[i].metrics().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The case's verdict: each expected reason grew by exactly its count (`≥` for a lower bound
/// of 0), no other drop reason moved, the relay runs, and the honest requests got through.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    net: &mut Testnet,
    i: usize,
    name: &'static str,
    input: String,
    expected: String,
    before: &Metrics,
    after: &Metrics,
    want: &[(&str, Count)],
    served: (usize, usize),
    started: Instant,
) -> Case {
    let mut moved = Vec::new();
    let mut exact = true;
    // Only what inbound input can cause: a relay's failed sends to a peer that went away
    // (`send_failed`) are about earlier traffic, not about the case.
    let reasons: Vec<String> = after
        .drops()
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| INPUT_REASONS.contains(&r.as_str()))
        .collect();
    for reason in &reasons {
        let delta = after.dropped(reason) - before.dropped(reason);
        let wanted = want.iter().find(|(r, _)| r == reason).map(|(_, n)| *n);
        if delta > 0.0 || wanted.is_some() {
            moved.push(format!("{delta:.0} × `{reason}`"));
        }
        match wanted {
            Some(n) => exact &= n.holds(delta),
            None if !want.is_empty() => exact &= delta == 0.0,
            None => {}
        }
    }
    for (reason, n) in want {
        if !reasons.iter().any(|r| r == reason) {
            moved.push(format!("0 × `{reason}`"));
            exact &= n.holds(0.0);
        }
    }
    let running = net.relays[i].is_running();
    let stall_ms = after.get("mix_event_loop_lag_max_ms");
    let rss = net.relays[i].usage().map_or(0, |u| u.rss);
    let observed = format!(
        "{}; {} running, {:.1} MiB",
        if moved.is_empty() {
            "nothing counted".to_owned()
        } else {
            moved.join(", ")
        },
        if running { "still" } else { "NOT" },
        rss as f64 / (1024.0 * 1024.0)
    );
    let pass = exact && running && served.0 == served.1;
    eprintln!(
        "[hostile] {name}: {observed}; honest {}/{}",
        served.0, served.1
    );
    Case {
        name,
        input,
        expected,
        observed,
        served,
        rss_after: rss,
        stall_ms,
        pass,
        seconds: started.elapsed().as_secs_f64(),
    }
}

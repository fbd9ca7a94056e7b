#![doc = include_str!("../README.md")]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a demo talks to the person who started it"
)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use mix_relay::cli::{TestnetArgs, start_testnet};
use mix_relay::metrics::{ExitKind, Metrics};
use mix_relay::waku::WakuMessage;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};

const INDEX_HTML: &str = include_str!("../web/index.html");
const DEMO_JS: &str = include_str!("../web/demo.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// The port the page is served on when `--port` is not given (any free port if it is taken).
const DEFAULT_PORT: u16 = 8080;
/// Waku messages the page can look up (the newest).
const KEEP_MESSAGES: usize = 64;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Starts a local mixnet of relays on 127.0.0.1 and serves a page that sends Waku lightpush
/// messages through it from the browser. `scripts/demo.sh` builds everything and runs this.
#[derive(Debug, Parser)]
#[command(name = "mix-demo", version)]
struct Args {
    /// Port of the page on 127.0.0.1 [default: 8080, or any free port if 8080 is taken; 0:
    /// any free port].
    #[arg(long)]
    port: Option<u16>,
    /// How many relays (at least 4: three hops plus the reply path).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Mean per-hop mixing delay in ms (exponential); 0 for the Nim default of 0–2 ms.
    #[arg(long, default_value_t = 0)]
    mean_delay_ms: u16,
    /// The npm package directory, with the built `dist/` and `wasm/` (scripts/demo.sh builds
    /// them).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../js"))]
    js_dir: PathBuf,
}

/// A relay as the page sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct RelayView {
    index: usize,
    peer_id: String,
    websocket: Option<String>,
    received: u64,
    forwarded: u64,
    exits: u64,
    replies_sent: u64,
}

/// A Waku message the relays received on their shard (gossipsub), and which relays did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeenMessage {
    seq: u64,
    pubsub_topic: String,
    content_topic: String,
    /// The payload, as text (lossy).
    #[serde(rename = "text", serialize_with = "lossy_text")]
    payload: Vec<u8>,
    /// Unix nanoseconds, as a string (JSON numbers lose precision past 2^53).
    #[serde(rename = "timestampNs", serialize_with = "decimal")]
    timestamp: Option<i64>,
    seen_by: Vec<usize>,
}

fn lossy_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

fn decimal<S: serde::Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

struct State {
    js_dir: PathBuf,
    pool_json: String,
    relays: Vec<(RelayView, Arc<Metrics>)>,
    seen: Mutex<VecDeque<SeenMessage>>,
}

impl State {
    fn relays(&self) -> Vec<RelayView> {
        self.relays
            .iter()
            .map(|(view, m)| RelayView {
                received: m.received_count(),
                forwarded: m.forwarded_count(),
                exits: ExitKind::ALL.iter().map(|k| m.exit_count(*k)).sum(),
                replies_sent: m.replies_sent_count(),
                ..view.clone()
            })
            .collect()
    }

    /// Records that relay `index` received `message` on `topic`; true the first time any relay
    /// did.
    fn saw(&self, index: usize, topic: &str, message: &WakuMessage) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = seen.iter_mut().find(|e| {
            e.pubsub_topic == topic
                && e.content_topic == message.content_topic
                && e.timestamp == message.timestamp
                && e.payload == message.payload
        }) {
            if !entry.seen_by.contains(&index) {
                entry.seen_by.push(index);
                entry.seen_by.sort_unstable();
            }
            return false;
        }
        // Sequence numbers continue from the newest entry (the queue never empties).
        let seq = seen.back().map_or(1, |last| last.seq + 1);
        if seen.len() == KEEP_MESSAGES {
            seen.pop_front();
        }
        seen.push_back(SeenMessage {
            seq,
            pubsub_topic: topic.to_owned(),
            content_topic: message.content_topic.clone(),
            payload: message.payload.clone(),
            timestamp: message.timestamp,
            seen_by: vec![index],
        });
        true
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[demo] error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let js_dir = check_package(&args.js_dir)?;
    let listener = bind(args.port).await?;
    let url = format!("http://{}/", listener.local_addr()?);

    println!(
        "[demo] starting {} relays on 127.0.0.1 (Waku cluster 2, shard 0)…",
        args.nodes
    );
    let mut testnet = TestnetArgs::local(args.nodes);
    testnet.mean_delay_ms = args.mean_delay_ms;
    let (relays, pool) = start_testnet(&testnet).await?;
    let pool_json = serde_json::to_string_pretty(&pool)?;
    let views: Vec<(RelayView, Arc<Metrics>)> = relays
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let websocket = r
                .info()
                .addrs
                .iter()
                .map(ToString::to_string)
                .find(|a| a.contains("/ws/"));
            let view = RelayView {
                index,
                peer_id: r.peer_id().to_string(),
                websocket,
                received: 0,
                forwarded: 0,
                exits: 0,
                replies_sent: 0,
            };
            (view, r.shared_metrics())
        })
        .collect();
    println!(
        "[demo] {} relays up in {:.1} s, meshed as a Waku relay network:",
        relays.len(),
        started.elapsed().as_secs_f64()
    );
    for (view, _) in &views {
        println!(
            "  relay {}  {}  {}{}",
            view.index,
            short(&view.peer_id),
            view.websocket.as_deref().unwrap_or("(no WebSocket)"),
            if view.index == 0 {
                "  (the page's gateway)"
            } else {
                ""
            }
        );
    }

    let state = Arc::new(State {
        js_dir,
        pool_json,
        relays: views,
        seen: Mutex::new(VecDeque::new()),
    });
    for (index, relay) in relays.iter().enumerate() {
        tokio::spawn(watch(index, relay.subscribe_messages(), Arc::clone(&state)));
    }
    let server = tokio::spawn(serve(listener, Arc::clone(&state)));

    println!(
        "\n==> The demo is ready ({:.1} s). Open this URL in a browser:\n\n      {url}\n\n    \
         Type a message and press Send: it crosses three relays as a Sphinx packet, the third \
         publishes it with Waku lightpush, and the answer comes back through the mixnet.\n    \
         Ctrl-C stops the relays.\n",
        started.elapsed().as_secs_f64()
    );

    stopped().await;
    println!("\n[demo] stopping…");
    server.abort();
    for relay in relays {
        relay.shutdown().await;
    }
    Ok(())
}

/// The package's files the page loads, or an error that says how to build them.
fn check_package(dir: &Path) -> anyhow::Result<PathBuf> {
    for file in ["dist/index.js", "wasm/mix_wasm.js", "wasm/mix_wasm_bg.wasm"] {
        anyhow::ensure!(
            dir.join(file).is_file(),
            "{} is missing: scripts/demo.sh builds the browser package first \
             (mix-wasm/build.sh full, then `npm ci && npm run build` in js/)",
            dir.join(file).display()
        );
    }
    dir.canonicalize()
        .with_context(|| format!("reading {}", dir.display()))
}

async fn bind(port: Option<u16>) -> anyhow::Result<TcpListener> {
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match port {
        Some(port) => TcpListener::bind(at(port)).await.with_context(|| {
            format!("cannot serve the page on 127.0.0.1:{port} (--port 0 picks a free port)")
        }),
        None => match TcpListener::bind(at(DEFAULT_PORT)).await {
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                println!("[demo] port {DEFAULT_PORT} is taken: serving on a free port instead");
                Ok(TcpListener::bind(at(0)).await?)
            }
            other => {
                other.with_context(|| format!("cannot serve the page on {}", at(DEFAULT_PORT)))
            }
        },
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints each Waku message the first time a relay receives it, and records who did.
async fn watch(
    index: usize,
    mut messages: broadcast::Receiver<(String, WakuMessage)>,
    state: Arc<State>,
) {
    loop {
        match messages.recv().await {
            Ok((topic, message)) => {
                if state.saw(index, &topic, &message) {
                    let text: String = String::from_utf8_lossy(&message.payload)
                        .chars()
                        .take(60)
                        .collect();
                    println!(
                        "[demo] Waku: {text:?} published on {topic} ({}), received by relay \
                         {index}",
                        message.content_topic
                    );
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&req, &state).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    let path = req.uri().path();
    match path {
        "/" | "/index.html" => ok("text/html; charset=utf-8", INDEX_HTML),
        "/demo.js" => ok("text/javascript; charset=utf-8", DEMO_JS),
        "/style.css" => ok("text/css; charset=utf-8", STYLE_CSS),
        "/favicon.ico" => text(StatusCode::NO_CONTENT, ""),
        "/pool.json" => ok("application/json", state.pool_json.clone()),
        "/api/relays" => json(&state.relays()),
        "/api/messages" => {
            let seen: Vec<SeenMessage> = state
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned()
                .collect();
            json(&seen)
        }
        _ => {
            let file = path
                .strip_prefix("/pkg/dist/")
                .map(|f| ("dist", f))
                .or_else(|| path.strip_prefix("/pkg/wasm/").map(|f| ("wasm", f)));
            match file.and_then(|(dir, f)| package_file(&state.js_dir, dir, f)) {
                Some(file) => match tokio::fs::read(&file).await {
                    Ok(body) => ok(content_type(&file), body),
                    Err(_) => text(StatusCode::NOT_FOUND, "not found\n"),
                },
                None => text(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    }
}

/// `js_dir/dir/name`, if `name` is a plain relative path (no `..`, no root).
fn package_file(js_dir: &Path, dir: &str, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    let plain = !name.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| js_dir.join(dir).join(rel))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("map" | "json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn ok(kind: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut res = ok("text/plain; charset=utf-8", body);
    *res.status_mut() = status;
    res
}

fn json<T: Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => ok("application/json", body),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
}

/// `16Uiu2H…a1b2c3`: enough of a peer id to tell the relays apart.
fn short(peer_id: &str) -> String {
    let chars: Vec<char> = peer_id.chars().collect();
    if chars.len() <= 14 {
        return peer_id.to_owned();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_files_stay_inside_the_package() {
        let root = Path::new("/pkg");
        assert_eq!(
            package_file(root, "dist", "index.js"),
            Some(PathBuf::from("/pkg/dist/index.js"))
        );
        for bad in ["", "../secret", "a/../../b", "/etc/passwd", "./x"] {
            assert_eq!(package_file(root, "dist", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn seen_messages_are_counted_once_and_serialised_for_the_page() {
        let state = State {
            js_dir: PathBuf::new(),
            pool_json: String::new(),
            relays: Vec::new(),
            seen: Mutex::new(VecDeque::new()),
        };
        let message = |text: &str| WakuMessage {
            payload: text.as_bytes().to_vec(),
            content_topic: "/a/1/b/proto".into(),
            timestamp: Some(1_795_297_204_352_000_001),
            ..WakuMessage::default()
        };
        assert!(state.saw(2, "/waku/2/rs/2/0", &message("hi")));
        assert!(!state.saw(0, "/waku/2/rs/2/0", &message("hi")));
        assert!(state.saw(1, "/waku/2/rs/2/0", &message("again")));
        let json = serde_json::to_value(&*state.seen.lock().unwrap()).unwrap();
        assert_eq!(json[0]["seq"], 1);
        assert_eq!(json[0]["text"], "hi");
        assert_eq!(json[0]["timestampNs"], "1795297204352000001");
        assert_eq!(json[0]["seenBy"], serde_json::json!([0, 2]));
        assert_eq!(json[1]["seq"], 2);
        for i in 0..KEEP_MESSAGES {
            assert!(state.saw(0, "/t", &message(&format!("m{i}"))));
        }
        let seen = state.seen.lock().unwrap();
        assert_eq!(seen.len(), KEEP_MESSAGES);
        assert_eq!(seen.back().unwrap().seq, 2 + KEEP_MESSAGES as u64);
    }

    #[test]
    fn short_ids_keep_both_ends() {
        assert_eq!(
            short("16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"),
            "16Uiu2…o97bUZ"
        );
        assert_eq!(short("abc"), "abc");
    }
}

//! The command line as users and tools run it: `mix-relay testnet`, `mix-relay send --json`,
//! `mix-relay run --config` with persisted keys, `--mixkey`, metrics and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mix-relay");

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_file(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("exited early ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn send(pool: &Path, extra: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let out = Command::new(BIN)
        .args(["send", "--pool-file"])
        .arg(pool)
        .args([
            "--pubsub-topic",
            "/waku/2/rs/2/0",
            "--content-topic",
            "/cli-test/1/chat/proto",
        ])
        .args(["--message", "hello from the CLI", "--json"])
        .args(extra)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn testnet_then_send_json_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool.json");
    let mut testnet = Command::new(BIN)
        .args(["testnet", "--nodes", "5", "--base-port", "0", "--pool-file"])
        .arg(&pool)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&pool, &mut testnet);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pool).unwrap()).unwrap();
    let nodes = file["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    for n in nodes {
        assert_eq!(n["mix_public_key"].as_str().unwrap().len(), 64);
        assert!(
            n["multiaddrs"][0]
                .as_str()
                .unwrap()
                .starts_with("/ip4/127.0.0.1/tcp/")
        );
        assert!(
            n["mixnode"]
                .as_str()
                .unwrap()
                .ends_with(n["mix_public_key"].as_str().unwrap())
        );
    }

    let (ok, lines, stderr) = send(&pool, &["--count", "12", "--surbs", "2"]);
    assert!(ok, "send failed: {stderr}");
    assert_eq!(lines.len(), 12);
    for line in &lines {
        assert_eq!(line["status"], 200, "{line}");
        assert!(line["latency_ms"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["relay_peer_count"].as_u64().unwrap() >= 1, "{line}");
    }

    // Bad input: a clear error and a failing exit code, nothing sent.
    let (ok, lines, stderr) = send(&pool, &["--count", "1"]).clone();
    assert!(ok && lines.len() == 1, "{stderr}");
    let out = Command::new(BIN)
        .args(["send", "--pool-file"])
        .arg(&pool)
        .args([
            "--pubsub-topic",
            "not-a-topic",
            "--content-topic",
            "/a/1/b/proto",
            "--message",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/waku/2/rs/<cluster>/<shard>"));

    let status = terminate(&mut testnet);
    assert!(status.success(), "testnet exit: {status}");

    // The mixnet is gone: each request fails, reported per line, and the exit code fails. A
    // first hop that refuses the dial fails the request at once; one that does not answer
    // at all, at its timeout.
    let (ok, lines, _) = send(&pool, &["--count", "2", "--timeout-ms", "800"]);
    assert!(!ok);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert!(line["status"].is_null(), "{line}");
        let error = line["error"].as_str().unwrap();
        assert!(
            error.contains("could not be reached") || error.contains("no reply"),
            "{line}"
        );
    }
}

/// Starts `mix-relay run` and returns it with its "ready" log line.
fn run_relay(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("run")
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "relay exited before it was ready"
        );
        if line.contains("ready; pool entry") {
            break;
        }
    }
    // Keep draining the log so the relay never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (child, line)
}

fn mixnode_of(line: &str) -> String {
    let start = line.find("mixnode=").unwrap() + "mixnode=".len();
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn run_from_a_config_file_keeps_its_keys_and_serves_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tcp, metrics) = (free_port(), free_port());
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = {data:?}\nlisten-ip = \"127.0.0.1\"\ntcp-port = {tcp}\nmetrics = \"127.0.0.1:{metrics}\"\ncluster-id = 2\nshard = [0]\n"
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let (mut relay, ready) = run_relay(&["--config", config_arg]);
    let first = mixnode_of(&ready);
    assert!(
        first.starts_with(&format!("/ip4/127.0.0.1/tcp/{tcp}/p2p/16U")),
        "{first}"
    );
    for file in ["identity.key", "mix.key"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(data.join(file)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let page = http_get(&format!("127.0.0.1:{metrics}"), "/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("mix_packets_dropped_total"), "{page}");
    assert!(terminate(&mut relay).success());

    // Same keys after a restart; a flag overrides the file (another port).
    let other = free_port();
    let (mut relay, ready) = run_relay(&["--config", config_arg, "--tcp-port", &other.to_string()]);
    let second = mixnode_of(&ready);
    assert_eq!(
        second.rsplit_once(':').unwrap().1,
        first.rsplit_once(':').unwrap().1,
        "same mix key"
    );
    let peer = |m: &str| {
        m.split("/p2p/")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(peer(&second), peer(&first), "same identity");
    assert!(second.contains(&format!("/tcp/{other}/")), "{second}");
    assert!(terminate(&mut relay).success());

    // nwaku's --mixkey: the real pair from nwaku's simulation (MIX.md §9).
    let (mut relay, ready) = run_relay(&[
        "--config",
        config_arg,
        "--mixkey",
        "c86029e02c05a7e25182974b519d0d52fcbafeca6fe191fbb64857fb05be1a53",
    ]);
    assert!(
        mixnode_of(&ready)
            .ends_with(":9231e86da6432502900a84f867004ce78632ab52cd8e30b1ec322cd795710c2a"),
        "{ready}"
    );
    assert!(terminate(&mut relay).success());
}

#[test]
fn bad_settings_fail_with_a_clear_message() {
    let out = Command::new(BIN)
        .args(["run", "--listen-ip", "0.0.0.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--announce"));
    let out = Command::new(BIN)
        .args([
            "run",
            "--listen-ip",
            "127.0.0.1",
            "--mixnode",
            "/ip4/127.0.0.1/tcp/1:zz",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mixnode"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "tcp-prot = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tcp-prot"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A config file that holds the mix key must be private, and the key can come from the
/// environment instead of the command line (where the process list shows it).
#[cfg(unix)]
#[test]
fn a_world_readable_config_with_the_mix_key_is_refused_and_the_key_may_come_from_the_environment() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, format!("mixkey = \"{}\"\n", "11".repeat(32))).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args(["enr", "--listen-ip", "127.0.0.1", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");

    let out = Command::new(BIN)
        .args(["enr", "--listen-ip", "127.0.0.1", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("MIX_RELAY_MIXKEY", "11".repeat(32))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("enr:"));
    // The variable is read: a bad key there is refused.
    let out = Command::new(BIN)
        .args(["enr", "--listen-ip", "127.0.0.1", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("MIX_RELAY_MIXKEY", "abc")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad MIX_RELAY_MIXKEY is refused");
}

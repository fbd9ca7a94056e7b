//! The demo server's refusals: what a newcomer sees when something is missing or taken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mix-demo"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run mix-demo")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A package directory with the files the page loads (empty: nothing here reads them).
fn fake_package(dir: &Path) {
    for file in ["dist/index.js", "wasm/mix_wasm.js", "wasm/mix_wasm_bg.wasm"] {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
}

#[test]
fn an_unbuilt_package_is_refused_with_the_command_that_builds_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(&["--port", "0", "--js-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("dist/index.js is missing"), "{err}");
    assert!(
        err.contains("scripts/demo.sh builds the browser package"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no relay started: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_taken_port_is_refused_and_names_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    fake_package(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = demo(&["--port", &port, "--js-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot serve the page on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("--port 0 picks a free port"), "{err}");
}

#[test]
fn too_few_relays_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fake_package(dir.path());
    let out = demo(&[
        "--port",
        "0",
        "--nodes",
        "3",
        "--js-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("a testnet needs at least 4 nodes"), "{err}");
}

//! The README's main command runs and shows what it promises.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[test]
fn the_demo_sends_three_messages_through_the_mixnet() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_local-mixnet"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches(": status 200 (4 relay peers)").count(),
        3,
        "{stdout}"
    );
    for i in 0..3 {
        assert!(
            stdout.contains(&format!(
                "relay 0 received on /waku/2/rs/2/0: \"hello mixnet #{i}\""
            )),
            "{stdout}"
        );
    }
    assert!(stdout.contains("sender: 3 replies opened"), "{stdout}");
}

//! `js/src/generated.ts`: the error codes and defaults the npm package shares with this crate,
//! rendered from the Rust definitions so that JS never restates them. The test here fails when the
//! checked-in file is stale; `MIX_BLESS=1 cargo test -p mix-wasm --lib js_constants` rewrites it.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::Code;
use crate::options::{DEFAULT_CLUSTER_ID, DEFAULT_SHARD};

/// Where the generated file lives, from this crate's directory.
fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../js/src/generated.ts")
}

/// The file's text.
fn render() -> String {
    let mut out = String::from(
        "// Generated from the Rust sources of mix-wasm and mix-waku by\n\
         // `MIX_BLESS=1 cargo test -p mix-wasm --lib js_constants`. Do not edit: the test\n\
         // `js_constants::generated_ts_is_current` fails when this file and the Rust code disagree.\n\
         \n\
         /**\n \
         * The error codes the wasm module throws (`WasmMixError.code`), in a stable order.\n \
         *\n \
         * | code | meaning |\n \
         * | --- | --- |\n",
    );
    for code in Code::ALL {
        let _ = writeln!(
            out,
            " * | `{}` | {} |",
            code.as_str(),
            code.meaning().trim()
        );
    }
    out.push_str(" */\nexport const WASM_ERROR_CODES = Object.freeze([\n");
    for (i, code) in Code::ALL.iter().enumerate() {
        let comma = if i + 1 < Code::ALL.len() { "," } else { "" };
        let _ = writeln!(out, "  '{}'{comma}", code.as_str());
    }
    out.push_str("] as const)\n\n/** One of {@link WASM_ERROR_CODES}. */\n");
    out.push_str("export type WasmErrorCode = typeof WASM_ERROR_CODES[number]\n\n");
    let _ = writeln!(
        out,
        "/** The Waku cluster id a client uses when none is given. */\n\
         export const DEFAULT_CLUSTER_ID = {DEFAULT_CLUSTER_ID}\n\n\
         /** The shard of the pubsub topic lightpush uses when none is given. */\n\
         export const DEFAULT_SHARD = {DEFAULT_SHARD}\n\n\
         /** The prefix of a static-sharding pubsub topic, `{}<cluster>/<shard>`. */\n\
         export const STATIC_SHARDING_PREFIX = '{}'\n\n\
         /** The lightpush v3 protocol id: the codec of lightpush requests through the mixnet. */\n\
         export const LIGHTPUSH_CODEC = '{}'",
        mix_waku::STATIC_SHARDING_PREFIX,
        mix_waku::STATIC_SHARDING_PREFIX,
        mix_waku::LIGHTPUSH_PROTOCOL,
    );
    out
}

#[test]
fn generated_ts_is_current() {
    let want = render();
    if std::env::var_os("MIX_BLESS").is_some() {
        std::fs::write(path(), &want).unwrap();
    }
    let have = std::fs::read_to_string(path()).unwrap_or_default();
    assert!(
        have == want,
        "js/src/generated.ts is stale: run `MIX_BLESS=1 cargo test -p mix-wasm --lib js_constants`"
    );
}

#[test]
fn the_default_topic_is_mix_wakus() {
    assert_eq!(
        format!(
            "{}{DEFAULT_CLUSTER_ID}/{DEFAULT_SHARD}",
            mix_waku::STATIC_SHARDING_PREFIX
        ),
        mix_waku::pubsub_topic(DEFAULT_CLUSTER_ID, DEFAULT_SHARD)
    );
}

//! The command line: `mix-relay run`, `mix-relay testnet`, `mix-relay send` (clap), and the
//! TOML config file `run` reads (flags override the file).

use clap::{Parser, Subcommand};

mod run;
mod send;
mod testnet;

pub use run::{RunArgs, enr, run};
pub use send::{SendArgs, SendReport, read_pool, send, send_requests};
pub use testnet::{TestnetArgs, start_testnet, testnet};

/// A libp2p mix (Sphinx) relay and exit node serving Waku lightpush v3.
#[derive(Debug, Parser)]
#[command(name = "mix-relay", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one relay.
    Run(RunArgs),
    /// Run N relays on 127.0.0.1 and write a pool file once they are ready.
    Testnet(TestnetArgs),
    /// Send lightpush requests through a mixnet described by a pool file or found from a
    /// bootstrap relay.
    Send(SendArgs),
    /// Print this relay's Waku ENR (the same flags as `run`; the keys come from --data-dir).
    Enr(RunArgs),
    /// Tell which wire format (lip183 or v039) a set of mix nodes speaks: a request with no
    /// message through them in each format (answered 400, never published), and which comes
    /// back.
    ProbeFormat(crate::probe::ProbeArgs),
}

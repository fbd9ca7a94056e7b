//! `mix-relay`: see `mix-relay --help`.

use clap::Parser;
use mix_relay::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Send(_) | Command::Enr(_) | Command::ProbeFormat(_) => "warn",
        _ => "info,libp2p_swarm=warn,libp2p_gossipsub=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    exit_on_panic();
    let result = match cli.command {
        Command::Run(args) => mix_relay::cli::run(args).await,
        Command::Testnet(args) => mix_relay::cli::testnet(args).await,
        Command::Send(args) => mix_relay::cli::send(args).await,
        Command::Enr(args) => mix_relay::cli::enr(args),
        Command::ProbeFormat(args) => mix_relay::probe::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A panic anywhere (the event loop, a stream task) ends the process with status 101 after
/// the usual report, instead of leaving a process that is up but no longer relays: tokio would
/// otherwise catch the panic in the task and the rest would idle on. A supervisor (systemd,
/// Docker, the testnet harness) then sees the failure and can restart it.
fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!("a relay task panicked: {info}; exiting");
        std::process::exit(101);
    }));
}

//! `mix-relay`: see `mix-relay --help`.

use clap::Parser;
use mix_relay::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Send(_) | Command::Enr(_) => "warn",
        _ => "info,libp2p_swarm=warn,libp2p_gossipsub=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(args) => mix_relay::cli::run(args).await,
        Command::Testnet(args) => mix_relay::cli::testnet(args).await,
        Command::Send(args) => mix_relay::cli::send(args).await,
        Command::Enr(args) => mix_relay::cli::enr(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

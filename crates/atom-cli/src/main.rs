//! The `atom` command. Argument parsing, configuration and output only; the
//! logic lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod key;

/// Exit codes (documented in README.md).
pub(crate) mod exit {
    /// A failure: bad configuration, unreadable input, an operation refused.
    pub(crate) const FAILURE: u8 = 1;
}

#[derive(Parser)]
#[command(
    name = "atom",
    version,
    about = "Atom data protection: keys, secrets file, credentials, audit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate and check encryption keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Key(cmd) => key::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

//! The `atom` command. Argument parsing, configuration and output only; the
//! logic lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod confirm;
mod credentials;
mod db;
mod doctor;
mod keys;
mod secrets;
mod session;
mod status;

/// Exit codes (documented in README.md and `atom --help`).
pub(crate) mod exit {
    /// A failure: bad configuration, unreadable input, a refused operation.
    pub(crate) const FAILURE: u8 = 1;
    /// A check ran and found problems: values that do not open, a damaged
    /// audit log.
    pub(crate) const PROBLEMS_FOUND: u8 = 3;

    /// The exit code of an error: 3 when stored values do not open (or are
    /// plaintext where a key is configured), 1 otherwise.
    pub(crate) fn code_of(err: &anyhow::Error) -> u8 {
        use atom_credentials::CredentialError as C;
        use atom_secrets_file::Error as S;
        let causes = atom_app::hints::causes(err.as_ref());
        let values = causes.iter().any(|e| {
            matches!(
                e.downcast_ref::<S>(),
                Some(S::DoNotOpen { .. } | S::PlaintextNotSealed { .. })
            ) || matches!(
                e.downcast_ref::<C>(),
                Some(C::DecryptionFailed { .. } | C::PlaintextRefused { .. })
            )
        });
        if values {
            return PROBLEMS_FOUND;
        }
        // Rotation and key-file errors carry their documented code (2 for
        // usage).
        causes
            .iter()
            .find_map(|e| {
                e.downcast_ref::<atom_rotation::Error>()
                    .map(atom_rotation::Error::exit_code)
            })
            .unwrap_or(FAILURE)
    }
}

#[derive(Parser)]
#[command(
    name = "atom",
    version,
    about = "Atom data protection: keys, secrets file, credentials, audit",
    after_help = "Exit codes: 0 done, 1 failure, 2 usage error, 3 a check found problems (values that do not open, a damaged audit log)."
)]
struct Cli {
    #[command(flatten)]
    global: session::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keys: generate, check, list, rotate, retire, restore, destroy.
    #[command(subcommand, visible_alias = "key")]
    Keys(keys::KeysCommand),
    /// The credential database's schema: migrate it, or show its state.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The secrets file: secrets.json -> secrets.enc and back.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Per-user encrypted tokens in the credential database.
    #[command(subcommand)]
    Credentials(credentials::CredentialsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The seed's security configuration document for this configuration.
    Status,
    /// The seed's production checklist and Troubleshooting, run: each line
    /// pass, warn or fail with the next step. Reads only. Exit 0 all pass,
    /// 1 a warning, 2 a failure.
    Doctor,
}

/// The allocator of every Atom binary: glibc's malloc made the two cores'
/// sealing threads queue on one arena lock (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    atom_app::init_tracing("warn");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => block_on(keys::run(cmd, &cli.global)).and_then(|done| done),
        Command::Db(cmd) => block_on(db::run(cmd, &cli.global)).and_then(|done| done),
        Command::Audit(cmd) => audit::run(cmd, &cli.global),
        Command::Secrets(cmd) => block_on(secrets::run(cmd, &cli.global)).and_then(|done| done),
        Command::Credentials(cmd) => {
            block_on(credentials::run(cmd, &cli.global)).and_then(|done| done)
        }
        Command::Status => block_on(status::run(&cli.global)).and_then(|done| done),
        Command::Doctor => block_on(doctor::run(&cli.global)).and_then(|done| done),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(hint) = atom_app::hints::hint(err.as_ref()) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(exit::code_of(&err))
        }
    }
}

/// Runs `work` on a runtime of its own: the one way the commands start
/// one (the file-only audit commands need none).
pub(crate) fn block_on<T>(work: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    Ok(tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
        .block_on(work))
}

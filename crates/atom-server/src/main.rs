//! The `atom-server` binary: configuration, start-up and shutdown. Routes
//! and rules live in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use atom_audit::Actor;
use atom_crypto::protection_from_env;
use atom_secrets_file::{AuditedSecrets, SecretsDir};
use atom_server::{
    AppState, DEFAULT_AUDIT_LOG, ENV_AUDIT_LOG, JwtKeys, development_allowed, open_auditor,
    open_store, router, serve,
};
use clap::{Parser, Subcommand};

/// Where the development JWT secret lives when none is configured.
const DEFAULT_JWT_SECRET_FILE: &str = "atom-jwt.secret";

#[derive(Parser)]
#[command(
    name = "atom-server",
    version,
    about = "Atom data protection over HTTP: the security status endpoint and per-user credentials"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "ATOM_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Database URL (SQLite, PostgreSQL or MariaDB/MySQL).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://atom.db"
    )]
    database_url: String,
    /// Folder of secrets.json / secrets.enc.
    #[arg(long, env = "ATOM_SECRETS_DIR", default_value = ".")]
    secrets_dir: PathBuf,
    /// The hash-chained audit log.
    #[arg(long, env = ENV_AUDIT_LOG, default_value = DEFAULT_AUDIT_LOG)]
    audit_log: PathBuf,
    /// Refuse to start without an encryption key.
    #[arg(long)]
    require_encryption: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a bearer token (JWT) signed with the server's secret, for
    /// development and scripts.
    Token {
        /// The user id the token speaks for (`sub`).
        #[arg(long)]
        user: String,
        /// Give the token the admin claim.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

/// The allocator of every Atom binary: glibc's malloc made the two cores'
/// sealing threads queue on one arena lock (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    atom_server::init_tracing("info");
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let development = development_allowed(cli.require_encryption)?;
    let jwt = JwtKeys::from_env_or_file(std::path::Path::new(DEFAULT_JWT_SECRET_FILE), development)
        .map_err(anyhow::Error::msg)?;
    if let Some(Command::Token { user, admin, ttl }) = cli.command {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        println!(
            "{}",
            jwt.issue(&user, admin, now, ttl)
                .map_err(anyhow::Error::msg)?
        );
        return Ok(());
    }

    let protection = protection_from_env(cli.require_encryption)?;
    let (auditor, fingerprints) =
        open_auditor(&cli.audit_log, Actor::new("atom-server"), development)
            .await
            .with_context(|| format!("cannot open the audit log {}", cli.audit_log.display()))?;
    let secrets = SecretsDir::new(&cli.secrets_dir);
    let migration = AuditedSecrets::new(secrets.clone(), auditor.clone(), fingerprints)
        .auto_migrate(&protection)
        .await?;
    tracing::info!("secrets file at start-up: {migration}");
    let (store, report) =
        open_store(Some(&cli.database_url), protection.clone(), auditor.clone()).await?;
    tracing::info!(database = %atom_credentials::redact_url(&cli.database_url), migrations = %report, "credential store ready");

    let state = AppState::new(store, protection, secrets, jwt, auditor.clone());
    let listener = tokio::net::TcpListener::bind(cli.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server running there? Use --bind",
                cli.bind
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, "atom-server listening");
    serve(listener, router(state), shutdown_signal()).await?;
    auditor.flush().await?;
    tracing::info!("atom-server stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

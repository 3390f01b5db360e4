//! The `atom-server` binary: configuration, start-up and shutdown. Routes
//! and rules live in the library.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use atom_app::{ENV_BIND, Settings};
use atom_audit::Actor;
use atom_secrets_file::AuditedSecrets;
use atom_server::{
    AppState, Authenticator, DenialLimits, JwksSource, JwtKeys, ProviderConfig, ProviderVerifier,
    ServerLimits, Tls, router, serve_with,
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "atom-server",
    version,
    about = "Atom data protection over HTTP: the security status endpoint and per-user credentials"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = ENV_BIND, default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// PEM certificate chain (leaf first): serve HTTPS instead of HTTP.
    /// Needs --tls-key. Both files are read again on SIGHUP; connections
    /// already open keep their certificate.
    #[arg(long, env = "ATOM_TLS_CERT", requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ATOM_TLS_KEY", requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Limits on connections and refused requests.
#[derive(clap::Args)]
struct LimitArgs {
    /// Seconds a client has to send a request's headers (also how long an
    /// idle keep-alive connection stays open).
    #[arg(
        long,
        env = "ATOM_HEADER_TIMEOUT_SECS",
        default_value = "10",
        value_name = "SECS"
    )]
    header_timeout: NonZeroU64,
    /// Seconds a connection may go without sending anything while the
    /// server waits for it (e.g. in the middle of a body) before it is closed.
    #[arg(
        long,
        env = "ATOM_IDLE_TIMEOUT_SECS",
        default_value = "60",
        value_name = "SECS"
    )]
    idle_timeout: NonZeroU64,
    /// Connections served at once; more are answered 503 and closed.
    #[arg(
        long,
        env = "ATOM_MAX_CONNECTIONS",
        default_value = "512",
        value_name = "N"
    )]
    max_connections: NonZeroUsize,
    /// Refused requests (401, 403) counted per source address in windows of
    /// this many seconds: the first of a window is audited on its own, the
    /// rest as one event with their count.
    #[arg(
        long,
        env = "ATOM_DENIAL_WINDOW_SECS",
        default_value = "10",
        value_name = "SECS"
    )]
    denial_window: NonZeroU64,
    /// Refused requests of one source in one window before it gets 429.
    #[arg(
        long,
        env = "ATOM_DENIAL_LIMIT",
        default_value = "20",
        value_name = "N"
    )]
    denial_limit: NonZeroU32,
}

impl LimitArgs {
    fn server(&self) -> ServerLimits {
        let mut limits = ServerLimits::default();
        limits.header_timeout = Duration::from_secs(self.header_timeout.get());
        limits.idle_timeout = Duration::from_secs(self.idle_timeout.get());
        limits.max_connections = self.max_connections;
        limits
    }

    fn denials(&self) -> DenialLimits {
        let mut limits = DenialLimits::default();
        limits.window = Duration::from_secs(self.denial_window.get());
        limits.limit = self.denial_limit;
        limits
    }
}

/// Tokens from an identity provider, instead of HS256 tokens signed with
/// the server's shared secret.
#[derive(clap::Args)]
struct IdentityArgs {
    /// URL of the identity provider's JWKS (https; http only to a loopback
    /// address): accept its RS256, ES256 and EdDSA tokens, and no HS256
    /// token. Needs --jwt-issuer and --jwt-audience.
    #[arg(long, env = atom_server::ENV_JWKS_URL, value_name = "URL", conflicts_with = "jwks_file")]
    jwks_url: Option<String>,
    /// A file holding the identity provider's JWKS, instead of --jwks-url.
    #[arg(long, env = atom_server::ENV_JWKS_FILE, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// The issuer (`iss`) every token must carry.
    #[arg(long, env = "ATOM_JWT_ISSUER", value_name = "ISSUER")]
    jwt_issuer: Option<String>,
    /// A value the token's audience (`aud`) must hold.
    #[arg(long, env = "ATOM_JWT_AUDIENCE", value_name = "AUDIENCE")]
    jwt_audience: Option<String>,
    /// The claim that names the user.
    #[arg(
        long,
        env = "ATOM_JWT_USER_CLAIM",
        default_value = "sub",
        value_name = "CLAIM"
    )]
    jwt_user_claim: String,
    /// The claim that makes an administrator: `true`, or, with
    /// --jwt-admin-value, a string, space-separated list or array holding
    /// that value (e.g. --jwt-admin-claim scope --jwt-admin-value atom:admin).
    #[arg(
        long,
        env = "ATOM_JWT_ADMIN_CLAIM",
        default_value = "admin",
        value_name = "CLAIM"
    )]
    jwt_admin_claim: String,
    /// The value of --jwt-admin-claim that makes an administrator.
    #[arg(long, env = "ATOM_JWT_ADMIN_VALUE", value_name = "VALUE")]
    jwt_admin_value: Option<String>,
    /// Seconds after which the provider's keys are fetched again (in the
    /// background; tokens keep being checked meanwhile).
    #[arg(
        long,
        env = "ATOM_JWKS_REFRESH_SECS",
        default_value = "300",
        value_name = "SECS"
    )]
    jwks_refresh: NonZeroU64,
    /// Least seconds between two fetches caused by tokens naming a key the
    /// server does not hold (a rotation at the provider is picked up at
    /// once; invented key ids cannot make the server hammer the provider).
    #[arg(
        long,
        env = "ATOM_JWKS_MIN_REFETCH_SECS",
        default_value = "10",
        value_name = "SECS"
    )]
    jwks_min_refetch: u64,
}

impl IdentityArgs {
    /// The provider configuration, `None` when no JWKS is configured.
    fn provider(&self) -> anyhow::Result<Option<ProviderConfig>> {
        let jwks = match (&self.jwks_url, &self.jwks_file) {
            (Some(url), _) => JwksSource::url(url)?,
            (None, Some(file)) => JwksSource::File(file.clone()),
            (None, None) => {
                if self.jwt_issuer.is_some() || self.jwt_audience.is_some() {
                    anyhow::bail!(
                        "ATOM_JWT_ISSUER or ATOM_JWT_AUDIENCE is set, but no identity provider keys are: set ATOM_JWKS_URL (or ATOM_JWKS_FILE) too, or unset them to use the HS256 shared secret"
                    );
                }
                return Ok(None);
            }
        };
        let required = |value: &Option<String>, name: &str, flag: &str, what: &str| {
            value.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "{jwks_name} is set but {name} (--{flag}) is not: tokens from the identity provider are only accepted with {what} checked",
                    jwks_name = if self.jwks_url.is_some() { atom_server::ENV_JWKS_URL } else { atom_server::ENV_JWKS_FILE },
                )
            })
        };
        let issuer = required(
            &self.jwt_issuer,
            "ATOM_JWT_ISSUER",
            "jwt-issuer",
            "their issuer",
        )?;
        let audience = required(
            &self.jwt_audience,
            "ATOM_JWT_AUDIENCE",
            "jwt-audience",
            "their audience",
        )?;
        let mut config = ProviderConfig::new(jwks, &issuer, &audience);
        config.user_claim.clone_from(&self.jwt_user_claim);
        config.admin_claim.clone_from(&self.jwt_admin_claim);
        config.admin_value.clone_from(&self.jwt_admin_value);
        config.refresh = Duration::from_secs(self.jwks_refresh.get());
        config.min_refetch = Duration::from_secs(self.jwks_min_refetch);
        Ok(Some(config))
    }
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
    atom_app::init_tracing("info");
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
            if let Some(hint) = atom_app::hints::hint(err.as_ref()) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    // The keys are checked before anything is created on disk.
    let protection = settings.protection()?;
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
        _ => None,
    };
    let auth = match cli.identity.provider()? {
        Some(config) => {
            if matches!(cli.command, Some(Command::Token { .. })) {
                anyhow::bail!(
                    "tokens come from the identity provider ({}); `atom-server token` only signs development tokens with the HS256 shared secret, which this configuration does not accept",
                    config.jwks
                );
            }
            if std::env::var_os(atom_server::ENV_JWT_SECRET).is_some()
                || std::env::var_os(atom_server::ENV_JWT_SECRET_FILE).is_some()
            {
                tracing::warn!(
                    "{} is ignored: tokens come from the identity provider, and no HS256 token is accepted",
                    atom_server::ENV_JWT_SECRET
                );
            }
            let verifier = ProviderVerifier::load(config).await?;
            let config = verifier.config();
            tracing::info!(
                jwks = %config.jwks,
                issuer = %config.issuer,
                audience = %config.audience,
                keys = %verifier.key_ids().join(","),
                "authentication: identity provider tokens ({}), users from `{}`",
                "RS256, ES256, EdDSA",
                config.user_claim
            );
            Authenticator::from(verifier)
        }
        None => {
            let jwt = shared_secret(&settings)?;
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
            tracing::info!("authentication: HS256 tokens signed with the shared secret");
            Authenticator::from(jwt)
        }
    };

    announce_protection(&protection);
    let (auditor, fingerprints) = settings
        .auditor(Actor::new("atom-server"))
        .await
        .with_context(|| {
            format!(
                "cannot open the audit log {}",
                settings.audit_log().display()
            )
        })?;
    let secrets = settings.secrets();
    let migration = AuditedSecrets::new(secrets.clone(), auditor.clone(), fingerprints)
        .auto_migrate(&protection)
        .await?;
    tracing::info!("secrets file at start-up: {migration}");
    let (store, report) = settings.store(protection.clone(), auditor.clone()).await?;
    tracing::info!(database = %atom_credentials::redact_url(&settings.database_url()), migrations = %report, envelope = store.envelope(), "credential store ready");
    if let Some(notice) = store.envelope_notice() {
        tracing::warn!("{notice}; rewrap with: atom credentials rewrap");
    }

    let protection_for_metrics = protection.clone();
    let mut state = AppState::new(store, protection, secrets, auth, auditor.clone())
        .with_denial_limits(cli.limits.denials());
    // Rotation runs in `atom keys rotate` and keeps its state next to the
    // primary key file; /metrics exports its progress.
    let key_dir = std::env::var_os(atom_crypto::ENV_KEY_FILE)
        .map(|key_file| atom_io::parent_dir(std::path::Path::new(&key_file)));
    if let Some(dir) = &key_dir {
        state = state.with_rotation_state(&atom_rotation::RotationState::path_in(dir));
    }
    if let Some(ring) = protection_for_metrics.keyring() {
        let ages = key_dir.as_deref().map(atom_rotation::KeyAges::path_in);
        state = state.with_key_policy(
            ring.primary_id(),
            ages.as_deref(),
            settings.key_max_age_days,
        );
    }
    let sweeper = tokio::spawn(state.clone().record_denials_every_window());
    let listener = tokio::net::TcpListener::bind(cli.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server running there? Use --bind",
                cli.bind
            )
        })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %listener.local_addr()?, %scheme, "atom-server listening");
    if let Some(tls) = &tls {
        reload_on_sighup(tls.clone());
    }
    serve_with(
        listener,
        router(state.clone()),
        cli.limits.server(),
        tls,
        shutdown_signal(),
    )
    .await?;
    sweeper.abort();
    state.record_denials(true).await?;
    auditor.flush().await?;
    tracing::info!("atom-server stopped");
    Ok(())
}

/// The HS256 keys: from ATOM_JWT_SECRET(_FILE), or in development from
/// (or into) the development folder's `jwt.secret`.
fn shared_secret(settings: &Settings) -> anyhow::Result<JwtKeys> {
    let development = settings.development()?;
    let jwt_file = settings.data_dir.join("jwt.secret");
    let jwt_configured = std::env::var_os(atom_server::ENV_JWT_SECRET).is_some()
        || std::env::var_os(atom_server::ENV_JWT_SECRET_FILE).is_some();
    if development && !jwt_configured && !jwt_file.exists() {
        settings.prepare_parent(&jwt_file)?;
    }
    JwtKeys::from_env_or_file(&jwt_file, development).map_err(anyhow::Error::msg)
}

/// Says, unmistakably, whether values are encrypted and under which key.
fn announce_protection(protection: &atom_crypto::Protection) {
    match protection.keyring() {
        Some(ring) => {
            let older: Vec<String> = ring
                .key_ids()
                .skip(1)
                .map(|(id, _)| id.to_string())
                .collect();
            tracing::info!(
                primary_key = %ring.primary_id(),
                decrypt_only = %if older.is_empty() { "none".to_owned() } else { older.join(",") },
                "ENCRYPTION ON: new values are sealed under key {}",
                ring.primary_id()
            );
        }
        None => {
            eprintln!(
                "\n  !!! PLAINTEXT MODE: no ENCRYPTION_KEY is set. Secrets and credentials are stored UNENCRYPTED.\n  !!! For anything but a local trial, stop the server, set ENCRYPTION_KEY to a key from `atom key generate`, and start it again.\n"
            );
        }
    }
}

/// Reads the certificate and key again on every SIGHUP. A file that does
/// not load leaves the certificate in use.
fn reload_on_sighup(tls: Tls) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: the certificate will not be reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!("SIGHUP: TLS certificate reloaded; new connections use it")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS certificate NOT reloaded; still serving the previous one")
                }
            }
        }
    });
    #[cfg(not(unix))]
    drop(tls);
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

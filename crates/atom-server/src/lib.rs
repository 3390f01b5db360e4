//! `atom-server`: HTTP access to the seed's security status and to
//! per-user credentials. The logic lives in the library crates; this crate
//! maps HTTP to them, and holds the assembly shared with the `atom` CLI.

mod app;
mod auth;
mod configuration;
mod documents;
mod error;
mod setup;

pub use app::{AppState, MAX_BODY_BYTES, router};
pub use auth::{
    AuthError, Claims, ENV_JWT_SECRET, ENV_JWT_SECRET_FILE, JwtKeys, MIN_SECRET_LEN, Principal,
};
pub use configuration::{
    CredentialCounts, KeyEntry, SecurityConfiguration, security_configuration,
};
pub use documents::{credential_list, init_tracing};
pub use error::ApiError;
pub use setup::{
    DEFAULT_AUDIT_LOG, ENV_AUDIT_LOG, development_allowed, development_key_path, open_auditor,
    open_existing_store, open_store,
};

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

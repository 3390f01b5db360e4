//! `atom-server`: HTTP access to the seed's security status and to
//! per-user credentials. The logic lives in the library crates and the
//! assembly in atom-app; this crate maps HTTP to them.

mod app;
mod auth;
mod error;

pub use app::{AppState, MAX_BODY_BYTES, router};
pub use auth::{
    AuthError, Claims, ENV_JWT_SECRET, ENV_JWT_SECRET_FILE, JwtKeys, MIN_SECRET_LEN, Principal,
};
pub use error::ApiError;

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

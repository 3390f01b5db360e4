//! `atom-server`: HTTP access to the seed's security status and to
//! per-user credentials. The logic lives in the library crates and the
//! assembly in atom-app; this crate maps HTTP to them.

mod app;
mod auth;
mod denials;
mod error;
mod identity;
mod metrics;
mod serve;
mod tls;

pub use app::{AppState, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, router};
pub use auth::{
    AuthError, Authenticator, Claims, ENV_JWT_SECRET, ENV_JWT_SECRET_FILE, JwtKeys, LEEWAY_SECS,
    MIN_SECRET_LEN, Principal,
};
pub use error::ApiError;
pub use identity::{
    ENV_JWKS_FILE, ENV_JWKS_URL, IdentityError, JwksSource, MAX_JWKS_BYTES, ProviderConfig,
    ProviderVerifier,
};

pub use denials::DenialLimits;
pub use serve::{ServerLimits, serve, serve_with};
pub use tls::{Tls, TlsError};

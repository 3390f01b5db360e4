//! JSON documents both binaries print or serve, so `atom --json` and the
//! HTTP API answer in the same shapes.

use atom_credentials::{CredentialInfo, UserId};
use serde_json::{Value, json};

/// A user's credentials without their tokens:
/// `{"user", "credentials": [{"provider", "key_id", "created_at", "updated_at"}]}`.
pub fn credential_list(user: &UserId, items: &[CredentialInfo]) -> Value {
    let credentials: Vec<Value> = items
        .iter()
        .map(|c| {
            json!({
                "provider": c.provider.as_str(),
                "key_id": c.key_id.map(|k| k.to_string()),
                "created_at": c.created_at.to_rfc3339(),
                "updated_at": c.updated_at.to_rfc3339(),
            })
        })
        .collect();
    json!({ "user": user.as_str(), "credentials": credentials })
}

/// Logs to stderr, filtered by `RUST_LOG` (else `default_filter`), with
/// colours only on a terminal.
pub fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The migration library's two lines per migration stay
                // out: the store's own line lists what was applied.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(format!(
                        "{default_filter},sea_orm_migration=warn"
                    ))
                }),
        )
        .init();
}

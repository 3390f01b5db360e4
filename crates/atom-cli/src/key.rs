//! `atom key generate | check`.

use std::process::ExitCode;

use anyhow::Result;
use atom_crypto::Key;

use crate::session::GlobalArgs;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Print a new random key (32 bytes, url-safe base64) and its id.
    Generate {
        /// Print only the key, for `atom key generate --quiet > key.file`.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate the configured keys (ENCRYPTION_KEY / ENCRYPTION_KEY_FILE and
    /// ENCRYPTION_PREVIOUS_KEYS / ENCRYPTION_PREVIOUS_KEYS_FILE) and print
    /// their ids and roles, never the keys.
    Check,
}

pub(crate) fn run(cmd: KeyCommand, args: &GlobalArgs) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Generate { quiet } => {
            let key = Key::generate()?;
            if quiet {
                println!("{}", key.expose_base64().as_str());
            } else {
                println!("ENCRYPTION_KEY={}", key.expose_base64().as_str());
                eprintln!(
                    "key id {}: keep the key secret (a secrets manager or a 0600 file for ENCRYPTION_KEY_FILE)",
                    key.id()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Check => {
            let protection = args.protection()?;
            let keys: Vec<(String, String)> = protection
                .keyring()
                .map(|ring| {
                    ring.key_ids()
                        .map(|(id, role)| (id.to_string(), role.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            if args.json {
                let keys: Vec<_> = keys
                    .iter()
                    .map(|(id, role)| serde_json::json!({ "id": id, "role": role }))
                    .collect();
                let doc = serde_json::json!({
                    "encryption_enabled": protection.keyring().is_some(),
                    "keys": keys,
                });
                println!("{doc}");
            } else if keys.is_empty() {
                println!("no key configured: plaintext development mode");
            } else {
                for (id, role) in &keys {
                    println!("{id}  {role}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

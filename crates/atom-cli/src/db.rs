//! `atom db migrate | status`: the credential database's schema, changed
//! only when asked.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::session::{GlobalArgs, print_json};

#[derive(Subcommand)]
pub(crate) enum DbCommand {
    /// Create the credential tables, or bring them up to date (adopting a
    /// table written by the Python original without losing a row).
    Migrate,
    /// Which migrations are applied and which are pending; changes nothing.
    Status,
}

pub(crate) async fn run(cmd: DbCommand, args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Migrate => {
            let protection = args.protection()?;
            args.settings.store_config()?;
            let (auditor, _) = args.auditor(atom_app::DatabaseAccess::Migrate).await?;
            let (store, report) = args.settings.store(protection, auditor).await?;
            store.auditor().flush().await?;
            store.close().await?;
            if args.json {
                print_json(&json!({
                    "database": atom_credentials::redact_url(&args.settings.database_url()),
                    "applied": report.applied,
                    "adopted_existing_table": report.adopted_existing_table,
                    "rows_kept": report.rows_kept,
                    "duplicates_archived": report.duplicates_archived,
                    "incomplete_archived": report.incomplete_archived,
                }))?;
            } else {
                println!(
                    "{}: {report}",
                    atom_credentials::redact_url(&args.settings.database_url())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Status => {
            let state = atom_credentials::schema_state(&args.settings.store_config()?).await?;
            if args.json {
                print_json(&json!({
                    "database": state.database,
                    "exists": state.exists,
                    "applied": state.applied,
                    "pending": state.pending,
                }))?;
            } else if !state.exists {
                println!(
                    "{}: does not exist; create it with: atom db migrate",
                    state.database
                );
            } else if state.pending.is_empty() {
                println!(
                    "{}: up to date ({} migrations applied)",
                    state.database,
                    state.applied.len()
                );
            } else {
                println!(
                    "{}: {} migration(s) pending ({}); apply them with: atom db migrate",
                    state.database,
                    state.pending.len(),
                    state.pending.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

//! `atom credentials ...`: per-user tokens in the credential database.

use std::io::IsTerminal as _;
use std::num::NonZeroU32;
use std::process::ExitCode;

use atom_credentials::{Provider, RewrapOptions, UserId};
use atom_crypto::ExposeSecret as _;
use clap::Subcommand;
use serde_json::json;

use crate::confirm::{confirm, read_secret};
use crate::exit;
use crate::session::{GlobalArgs, print_json};

#[derive(Subcommand)]
pub(crate) enum CredentialsCommand {
    /// Store USER's token for PROVIDER, read from standard input (on a
    /// terminal, a prompt that does not echo).
    Put {
        /// The user id.
        user: String,
        /// The provider, e.g. slack.
        provider: String,
    },
    /// Print USER's token for PROVIDER.
    Get {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
    },
    /// USER's providers with timestamps and key ids (never tokens).
    List {
        /// The user id.
        user: String,
    },
    /// Delete USER's token for PROVIDER.
    Delete {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
    },
    /// Erase every credential of USER (right to erasure). Asks for
    /// confirmation on a terminal unless --yes.
    EraseUser {
        /// The user id.
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Re-seal every row not under the primary key (legacy rows upgraded),
    /// in batches, resumable. Plaintext rows are sealed only with
    /// --seal-plaintext (they are listed first). Exit 3 if any row does not
    /// open.
    Rewrap {
        /// Rows per batch (one transaction each).
        #[arg(long, default_value_t = atom_credentials::DEFAULT_BATCH_SIZE)]
        batch_size: NonZeroU32,
        /// Also seal plaintext rows from the no-key development mode, after
        /// listing them (check that they are the tokens, not damaged
        /// ciphertext).
        #[arg(long)]
        seal_plaintext: bool,
        /// PostgreSQL: share the rows with other rewrap processes (on this
        /// or other hosts) through SELECT ... FOR UPDATE SKIP LOCKED.
        #[arg(long)]
        skip_locked: bool,
        /// Report what would change without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Row counts: total, per key id, legacy, plaintext, enveloped; and the
    /// users' data keys per master key.
    Status,
    /// Replace USER's data key (envelope encryption), e.g. after a
    /// suspected compromise of it: a new key is made, USER's credentials
    /// are re-sealed under it and the old key is destroyed. Other users
    /// are not touched.
    RotateUserKey {
        /// The user id.
        user: String,
    },
}

pub(crate) async fn run(cmd: CredentialsCommand, args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let protection = args.protection()?;
    let store = match cmd {
        // Reads change no schema; status and dry runs change nothing at
        // all (an SQLite file is opened read-only).
        CredentialsCommand::Get { .. } | CredentialsCommand::List { .. } => {
            args.existing_store(protection).await?
        }
        CredentialsCommand::Status | CredentialsCommand::Rewrap { dry_run: true, .. } => {
            args.read_only_store(protection).await?
        }
        _ => args.store(protection).await?,
    };
    let code = match cmd {
        CredentialsCommand::Put { user, provider } => {
            let (user, provider) = ids(&user, &provider)?;
            let token = read_secret(&format!("token for {user} / {provider}"))?;
            store.put(&user, &provider, &token).await?;
            if args.json {
                print_json(
                    &json!({ "user": user.as_str(), "provider": provider.as_str(), "stored": true }),
                )?;
            } else {
                println!("stored {provider} for {user}");
            }
            ExitCode::SUCCESS
        }
        CredentialsCommand::Get { user, provider } => {
            let (user, provider) = ids(&user, &provider)?;
            let token = store.get(&user, &provider).await?;
            if args.json {
                // The shape of the HTTP API's answer.
                print_json(&json!({
                    "user": user.as_str(),
                    "provider": provider.as_str(),
                    "token": token.expose_secret(),
                }))?;
            } else {
                println!("{}", token.expose_secret());
            }
            ExitCode::SUCCESS
        }
        CredentialsCommand::List { user } => {
            let user = UserId::parse(&user)?;
            let items = store.list(&user).await?;
            if args.json {
                print_json(&atom_app::credential_list(&user, &items))?;
            } else {
                for c in &items {
                    let key = c.key_id.map_or_else(|| "-".to_owned(), |k| k.to_string());
                    println!(
                        "{}  key {key}  updated {}",
                        c.provider,
                        c.updated_at.to_rfc3339()
                    );
                }
            }
            ExitCode::SUCCESS
        }
        CredentialsCommand::Delete { user, provider } => {
            let (user, provider) = ids(&user, &provider)?;
            if store.delete(&user, &provider).await? {
                if args.json {
                    print_json(
                        &json!({ "user": user.as_str(), "provider": provider.as_str(), "deleted": true }),
                    )?;
                } else {
                    println!("deleted {provider} for {user}");
                }
                ExitCode::SUCCESS
            } else {
                eprintln!("error: no credential is stored for user {user} and provider {provider}");
                ExitCode::from(exit::FAILURE)
            }
        }
        CredentialsCommand::EraseUser { user, yes } => {
            let user = UserId::parse(&user)?;
            let prompt = format!(
                "Erase every credential of {user}, archived ones included? This cannot be undone. Type the user id to confirm:"
            );
            if !confirm(&prompt, user.as_str(), yes)? {
                anyhow::bail!("not confirmed; nothing was erased");
            }
            let report = store.erase_user(&user).await?;
            let providers: Vec<&str> = report.removed.iter().map(|c| c.provider.as_str()).collect();
            if args.json {
                print_json(&json!({
                    "user": user.as_str(),
                    "removed": providers,
                    "archived_removed": report.archived_removed,
                    "data_keys_destroyed": report.data_keys_destroyed,
                }))?;
            } else {
                println!(
                    "erased {} credentials of {user} ({}), {} archived rows, {} data key(s) destroyed",
                    providers.len(),
                    providers.join(", "),
                    report.archived_removed,
                    report.data_keys_destroyed
                );
            }
            ExitCode::SUCCESS
        }
        CredentialsCommand::Rewrap {
            batch_size,
            seal_plaintext,
            skip_locked,
            dry_run,
        } => {
            if seal_plaintext {
                let status = store.status().await?;
                if status.plaintext > 0 {
                    eprintln!(
                        "{} {} plaintext row(s) (listed by id; check that each is a token, not damaged ciphertext):",
                        if dry_run { "would seal" } else { "sealing" },
                        status.plaintext
                    );
                    for row in &status.plaintext_rows {
                        eprintln!("  row {} ({} / {})", row.id, row.user, row.provider);
                    }
                    if status.plaintext > status.plaintext_rows.len() as u64 {
                        eprintln!(
                            "  ... and {} more",
                            status.plaintext - status.plaintext_rows.len() as u64
                        );
                    }
                }
            }
            let options = RewrapOptions::new()
                .batch_size(batch_size)
                .seal_plaintext(seal_plaintext)
                .skip_locked(skip_locked)
                .dry_run(dry_run);
            let bar = progress_bar();
            let progress = store
                .rewrap(&options, |p| {
                    if let Some(bar) = &bar {
                        bar.set_message(format!("{} rewrapped, {} failed", p.done, p.failed));
                        bar.tick();
                    }
                })
                .await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if args.json {
                let failures: Vec<_> = progress
                    .failures
                    .iter()
                    .map(|f| json!({ "id": f.id, "user": f.user, "provider": f.provider, "reason": f.reason.as_str() }))
                    .collect();
                print_json(&json!({
                    "done": progress.done,
                    "skipped": progress.skipped,
                    "failed": progress.failed,
                    "failures": failures,
                    "last_id": progress.last_id,
                    "dry_run": dry_run,
                }))?;
            } else {
                for f in &progress.failures {
                    println!(
                        "FAILED  row {} ({} / {}): {}",
                        f.id,
                        f.user,
                        f.provider,
                        f.reason.as_str()
                    );
                }
                println!(
                    "{} {} rows, {} skipped (changed concurrently or already current), {} failed",
                    if dry_run { "would rewrap" } else { "rewrapped" },
                    progress.done,
                    progress.skipped,
                    progress.failed
                );
            }
            let plaintext_refused = progress
                .failures
                .iter()
                .any(|f| f.reason == atom_crypto::OpenFailure::NotSealed);
            if plaintext_refused && !seal_plaintext {
                eprintln!(
                    "plaintext rows are sealed only on request: check them, then run: atom credentials rewrap --seal-plaintext"
                );
            }
            if progress.failed > 0 {
                ExitCode::from(exit::PROBLEMS_FOUND)
            } else {
                ExitCode::SUCCESS
            }
        }
        CredentialsCommand::Status => {
            let status = store.status().await?;
            let doc = json!({
                "total": status.total,
                "by_key": status.by_key,
                "legacy": status.legacy,
                "plaintext": status.plaintext,
                "malformed": status.malformed,
                "enveloped": status.enveloped,
                "needs_rewrap": status.needs_rewrap,
                "envelope_encryption": store.envelope(),
                "data_keys": {
                    "place": store.keystore_place(),
                    "total": status.data_keys.total,
                    "by_key": status.data_keys.by_kek,
                    "malformed": status.data_keys.malformed,
                    "need_rewrap": status.data_keys_need_rewrap,
                },
            });
            if args.json {
                print_json(&doc)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            ExitCode::SUCCESS
        }
        CredentialsCommand::RotateUserKey { user } => {
            let user = UserId::parse(&user)?;
            let rotation = store.rotate_user_key(&user).await?;
            if args.json {
                print_json(&json!({
                    "user": user.as_str(),
                    "data_key": rotation.key_id.to_string(),
                    "resealed": rotation.resealed,
                    "destroyed": rotation.destroyed,
                }))?;
            } else {
                println!(
                    "{user}: new data key {}; {} credential(s) re-sealed under it, {} old data key(s) destroyed",
                    rotation.key_id, rotation.resealed, rotation.destroyed
                );
            }
            ExitCode::SUCCESS
        }
    };
    store.auditor().flush().await?;
    // Closing the pool lets SQLite fold its WAL back and remove its
    // `-wal` and `-shm` files: the next read-only command (status, doctor)
    // then finds the database file alone and changes nothing.
    store.close().await?;
    Ok(code)
}

fn ids(user: &str, provider: &str) -> anyhow::Result<(UserId, Provider)> {
    Ok((UserId::parse(user)?, Provider::parse(provider)?))
}

/// A spinner with counts on stderr, only when stderr is a terminal.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("rewrapping");
        bar
    })
}

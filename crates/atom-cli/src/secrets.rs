//! `atom secrets ...`: the secrets file lifecycle.

use std::process::{Command, ExitCode};

use anyhow::Context as _;
use atom_crypto::ExposeSecret as _;
use atom_secrets_file::{SecretValue, ShredOptions};
use clap::Subcommand;

use crate::confirm::{confirm, read_secret};
use crate::exit;
use crate::session::{GlobalArgs, print_json};

#[derive(Subcommand)]
pub(crate) enum SecretsCommand {
    /// Seal secrets.json into secrets.enc, keeping secrets.json.backup.
    /// Idempotent; refuses to overwrite values that exist only in secrets.enc.
    Migrate {
        /// After a successful verify, remove secrets.json and the backup.
        #[arg(long)]
        shred_plaintext: bool,
    },
    /// Back to plaintext: decrypt secrets.enc into secrets.json (files it
    /// replaces are kept as <name>.kept.<n>).
    Rollback,
    /// Open every value; report per name, never the values. Exit 3 if any fails.
    Verify,
    /// The seed's figures plus counts per key id.
    Status,
    /// The names in the secrets file (never values).
    List,
    /// Print one value.
    Get {
        /// The entry's name.
        name: String,
    },
    /// Set a value read from standard input (never from the command line;
    /// on a terminal, a prompt that does not echo). One trailing line break
    /// is removed.
    Set {
        /// The entry's name.
        name: String,
    },
    /// Remove an entry.
    Unset {
        /// The entry's name.
        name: String,
    },
    /// Re-seal every value under the primary key (legacy values upgraded).
    /// Plaintext values are refused by name (exit 3) unless --seal-plaintext.
    Rewrap {
        /// Also seal plaintext values (they are listed): check first that
        /// each is the secret itself, not a damaged ciphertext.
        #[arg(long)]
        seal_plaintext: bool,
    },
    /// Run a command with the secrets in its environment only (names
    /// upper-cased, other characters as `_`); nothing is written to disk.
    Exec {
        /// The command and its arguments, after `--`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// After a successful verify, remove secrets.json and secrets.json.backup
    /// (the production checklist). Asks for confirmation on a terminal
    /// unless --yes.
    ShredPlaintext {
        /// Also remove a backup that differs from secrets.enc's values.
        #[arg(long)]
        drop_stale_backup: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub(crate) async fn run(cmd: SecretsCommand, args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    // Verify and status only read: with the audit trail in the database,
    // they write nothing to it.
    let access = match cmd {
        SecretsCommand::Verify | SecretsCommand::Status => atom_app::DatabaseAccess::ReadOnly,
        _ => atom_app::DatabaseAccess::Existing,
    };
    let secrets = args.secrets(access).await?;
    let code = match cmd {
        SecretsCommand::Migrate { shred_plaintext } => {
            let ring = args.keyring("migrate")?;
            let report = secrets.migrate(&ring).await?;
            if args.json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: {} sealed, {} already sealed, {} other values kept (key {})",
                    report.encrypted_file.display(),
                    report.sealed_names.len(),
                    report.already_sealed,
                    report.not_secret,
                    ring.primary_id()
                );
                if report.wrote_backup {
                    println!("backup: {}", report.backup_file.display());
                }
            }
            if shred_plaintext {
                let shred = secrets
                    .shred_plaintext(&ring, ShredOptions::default())
                    .await?;
                for path in &shred.removed {
                    println!("removed {}", path.display());
                }
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Rollback => {
            let ring = args.keyring("rollback")?;
            let report = secrets.rollback(&ring).await?;
            if args.json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: {} values restored in plaintext; the encrypted file is kept as {}",
                    report.plaintext_file.display(),
                    report.total,
                    report.kept_encrypted.display()
                );
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Verify => {
            let ring = args.keyring("verify")?;
            let report = secrets.verify(&ring).await?;
            if args.json {
                print_json(&report)?;
            } else {
                for (name, class) in report.failures() {
                    println!("FAILED  {name}: {}", class.as_str());
                }
                let failed = report.failures().count();
                println!(
                    "{}: {} secrets open, {failed} do not, {} other values (not encrypted by design)",
                    report.file.display(),
                    report.ok_count(),
                    report.entries.len() - report.ok_count() - failed
                );
            }
            if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(exit::PROBLEMS_FOUND)
            }
        }
        SecretsCommand::Status => {
            let protection = args.protection()?;
            let status = secrets.dir().status(protection.keyring())?;
            if args.json {
                print_json(&status)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&status)?);
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::List => {
            let names = secrets.dir().list()?;
            if args.json {
                print_json(&names)?;
            } else {
                for name in names {
                    println!("{name}");
                }
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Get { name } => {
            let ring = args.keyring("get")?;
            let value = match secrets.get(&ring, &name).await? {
                SecretValue::Secret(value) => {
                    serde_json::Value::String(value.expose_secret().to_owned())
                }
                SecretValue::Plain(value) => value,
                SecretValue::Structured(value) => serde_json::from_str(value.expose_secret())?,
                _ => anyhow::bail!("{name} holds a value this version cannot print"),
            };
            match (&value, args.json) {
                (_, true) => print_json(&serde_json::json!({ "name": name, "value": value }))?,
                (serde_json::Value::String(text), false) => println!("{text}"),
                (other, false) => println!("{other}"),
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Set { name } => {
            let ring = args.keyring("set")?;
            let value = read_secret(&format!("value of {name}"))?;
            let report = secrets.set(&ring, &name, &value).await?;
            if args.json {
                print_json(&report)?;
            } else {
                println!("{name}: {:?} in {}", report.action, report.file.display());
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Unset { name } => {
            let report = secrets.unset(&name).await?;
            if args.json {
                print_json(&report)?;
            } else {
                println!("{name}: {:?} in {}", report.action, report.file.display());
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Rewrap { seal_plaintext } => {
            let ring = args.keyring("rewrap")?;
            let report = secrets.rewrap(&ring, seal_plaintext).await?;
            if args.json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: {} rewrapped under {} ({} legacy, {} plaintext upgraded), {} already current",
                    report.file.display(),
                    report.rewrapped_names.len(),
                    report.primary_key_id,
                    report.from_legacy,
                    report.from_plaintext,
                    report.already_current
                );
                if !report.sealed_plaintext_names.is_empty() {
                    println!(
                        "sealed from plaintext: {}",
                        report.sealed_plaintext_names.join(", ")
                    );
                }
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Exec { command } => {
            let ring = args.keyring("exec")?;
            let (program, rest) = command
                .split_first()
                .context("give the command to run after --")?;
            let mut child = Command::new(program);
            child.args(rest);
            let status = secrets.exec(&ring, &mut child).await?;
            exit_code_of(status)
        }
        SecretsCommand::ShredPlaintext {
            drop_stale_backup,
            yes,
        } => {
            let ring = args.keyring("shred-plaintext")?;
            if !confirm(
                "Overwrite and remove secrets.json and secrets.json.backup (secrets.enc is verified first)? Type yes to confirm:",
                "yes",
                yes,
            )? {
                anyhow::bail!("not confirmed; nothing was removed");
            }
            let report = secrets
                .shred_plaintext(
                    &ring,
                    ShredOptions::default().drop_stale_backup(drop_stale_backup),
                )
                .await?;
            if args.json {
                print_json(&report)?;
            } else {
                for path in &report.removed {
                    println!("removed {}", path.display());
                }
                for path in &report.other_plaintext_copies {
                    println!("note: {} also holds plaintext secrets", path.display());
                }
            }
            ExitCode::SUCCESS
        }
    };
    secrets.flush().await?;
    Ok(code)
}

fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILURE)),
        None => ExitCode::from(exit::FAILURE),
    }
}

//! `atom keys ...` (also `atom key ...`): generate and check keys, rotate,
//! and the key files' retired keys (list, retire, restore, destroy).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Result;
use atom_app::{KeyFileArgs, RotateArgs};
use atom_audit::Actor;
use atom_crypto::Key;
use atom_rotation::{KeyChange, KeyStanding};
use clap::Subcommand;
use serde_json::json;

use crate::confirm::confirm;
use crate::session::{GlobalArgs, print_json};

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new random key (32 bytes, url-safe base64) and its id; with
    /// --kms-key-id, a key made by KMS, of which only its ciphertext blob
    /// is printed or kept.
    Generate {
        /// Print only the key (or the blob), for `atom key generate --quiet > key.file`.
        #[arg(long, short)]
        quiet: bool,
        /// Make the key with KMS GenerateDataKey under this KMS key (id,
        /// ARN or alias), with the encryption context of ATOM_KMS_CONTEXT;
        /// the key itself is never shown.
        #[arg(long, value_name = "KMS_KEY")]
        kms_key_id: Option<String>,
        /// With --kms-key-id: add the blob to this keys file
        /// (ATOM_KMS_KEYS_FILE) as its first line, the new primary key;
        /// the keys already there keep opening older values.
        #[arg(long, value_name = "FILE", requires = "kms_key_id")]
        add_to: Option<std::path::PathBuf>,
    },
    /// Validate the configured keys (ENCRYPTION_KEY / ENCRYPTION_KEY_FILE and
    /// ENCRYPTION_PREVIOUS_KEYS / ENCRYPTION_PREVIOUS_KEYS_FILE) and print
    /// their ids and roles, never the keys.
    Check,
    /// The keys of the key files by id: primary, decrypt-only and retired.
    List {
        #[command(flatten)]
        files: KeyFileArgs,
    },
    /// Rotate the encryption key online: plan, introduce, promote, rewrap
    /// the secrets file and the credential table, verify, retire. See
    /// docs/ROTATION.md.
    #[command(after_long_help = ROTATE_HELP)]
    Rotate(RotateArgs),
    /// Move a decrypt-only key to the retired-keys file, which no app loads
    /// (it is kept, and can be restored).
    Retire {
        /// The key id (12 hex digits, as `atom keys list` shows).
        key_id: String,
        #[command(flatten)]
        files: KeyFileArgs,
    },
    /// Move a retired key back to the previous-keys file (decrypt-only), so
    /// that apps open values under it again once they reload their keys.
    Restore {
        /// The key id.
        key_id: String,
        #[command(flatten)]
        files: KeyFileArgs,
    },
    /// Destroy a retired key for good. Refused while the secrets file (or a
    /// copy kept aside), a credential row or an archived row is still under
    /// it. Asks for confirmation on a terminal unless --yes.
    Destroy {
        /// The key id.
        key_id: String,
        #[command(flatten)]
        files: KeyFileArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

const ROTATE_HELP: &str = "\
Phases (each recorded in .atom-rotation.json next to the key file, so a run
that stopped or crashed is continued by running the same command again):
  1. plan      open every value with the current keys; count them per key id,
               legacy and plaintext; any value that does not open, and any
               plaintext value without --seal-plaintext, stops the rotation
               before anything changes (exit 3). --dry-run stops here (it
               also works with keys in ENCRYPTION_KEY).
  2. introduce append a new key (generated, or --new-key-file) to the
               previous-keys file as decrypt-only. Then roll the key files out
               to every app instance (reload/restart) and run the command
               again (exit 4), unless --yes.
  3. promote   the new key becomes primary; the old primary becomes
               decrypt-only.
  4. rewrap    secrets.enc and every credential row are sealed again under the
               new key (legacy Fernet upgraded; plaintext only with
               --seal-plaintext), in batches, by --workers in parallel,
               online: an app's concurrent write is never overwritten.
  5. verify    every value opens under the new key alone, none is left under
               another key. Then roll out again so that no instance still
               seals with the old key, and run the command again (exit 4),
               unless --yes.
  6. retire    the old key moves to the retired-keys file (never deleted; see
               atom keys restore / destroy).

The secrets folder and the database are the same as for every atom command
(--secrets-dir, DATABASE_URL / --database-url and their defaults); a folder
without a secrets file or an SQLite database that does not exist is skipped,
and the report says so.

Exit codes: 0 done (or dry run clean), 1 failure, 2 usage or configuration,
3 values that do not open or plaintext to seal / verification problems,
4 waiting for the operator to roll out the key files (run the printed next
command afterwards).";

pub(crate) async fn run(cmd: KeysCommand, args: &GlobalArgs) -> Result<ExitCode> {
    match cmd {
        KeysCommand::Generate {
            quiet,
            kms_key_id: Some(kms_key_id),
            add_to,
        } => generate_with_kms(&kms_key_id, add_to.as_deref(), quiet, args),
        KeysCommand::Generate { quiet, .. } => generate(quiet, args),
        KeysCommand::Check => check(args),
        KeysCommand::List { files } => list(&files, args),
        KeysCommand::Rotate(rotate) => rotate_keys(&rotate, args).await,
        KeysCommand::Retire { key_id, files } => {
            let id = atom_rotation::parse_key_id(&key_id)?;
            let change = atom_rotation::retire_key(&files.require_key_files()?, id)?;
            report_change(args, "retired", &change)
        }
        KeysCommand::Restore { key_id, files } => {
            let id = atom_rotation::parse_key_id(&key_id)?;
            let change = atom_rotation::restore_key(&files.require_key_files()?, id)?;
            let code = report_change(args, "restored", &change)?;
            if change.changed && !args.json {
                println!(
                    "apps open values under {} again once they reload their keys (restart them)",
                    change.key_id
                );
            }
            Ok(code)
        }
        KeysCommand::Destroy { key_id, files, yes } => destroy(&key_id, &files, yes, args).await,
    }
}

fn generate(quiet: bool, args: &GlobalArgs) -> Result<ExitCode> {
    let key = Key::generate()?;
    if args.json {
        print_json(
            &json!({ "key": key.expose_base64().as_str(), "key_id": key.id().to_string() }),
        )?;
    } else if quiet {
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

/// A key made by KMS: its blob printed, or added to a keys file as the new
/// primary. The key's bytes stay in this process.
fn generate_with_kms(
    kms_key_id: &str,
    add_to: Option<&std::path::Path>,
    quiet: bool,
    args: &GlobalArgs,
) -> Result<ExitCode> {
    let kms = atom_kms::Kms::from_env()?;
    let (key, blob) = atom_kms::block_on(kms.generate(kms_key_id))??;
    let line = atom_kms::keys_file_line(&blob);
    if let Some(file) = add_to {
        let existing = match atom_io::read_bounded(file, atom_io::MAX_SECRET_FILE_BYTES) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!(
                    "the keys file {} is not text; it holds one KMS blob (base64) a line",
                    file.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("cannot read the keys file {}: {e}", file.display()),
        };
        atom_io::write_atomically(file, format!("{line}\n{existing}").as_bytes())?;
        if args.json {
            print_json(
                &json!({ "key_id": key.id().to_string(), "keys_file": file.display().to_string() }),
            )?;
        } else {
            println!(
                "key {} (made by KMS under {kms_key_id}, context {}) is now the primary of {}",
                key.id(),
                kms.context(),
                file.display()
            );
            println!(
                "next: restart the apps, then `atom secrets rewrap` and `atom credentials rewrap`; once nothing is left under the old key, remove its line"
            );
        }
    } else if args.json {
        print_json(&json!({ "key_id": key.id().to_string(), "kms_blob": line }))?;
    } else if quiet {
        println!("{line}");
    } else {
        println!("{line}");
        eprintln!(
            "key id {}: the line above is its KMS ciphertext blob, not the key; put it first in the file ATOM_KMS_KEYS_FILE names (or use --add-to)",
            key.id()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(args: &GlobalArgs) -> Result<ExitCode> {
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
            .map(|(id, role)| json!({ "id": id, "role": role }))
            .collect();
        print_json(&json!({
            "encryption_enabled": protection.keyring().is_some(),
            "keys": keys,
        }))?;
    } else if keys.is_empty() {
        println!("no key configured: plaintext development mode");
    } else {
        for (id, role) in &keys {
            println!("{id}  {role}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(files: &KeyFileArgs, args: &GlobalArgs) -> Result<ExitCode> {
    let entries: Vec<(String, &'static str, String)> = match files.key_files()? {
        Some(files) => atom_rotation::list_keys(&files)?
            .into_iter()
            .map(|e| {
                (
                    e.key_id.to_string(),
                    e.standing.as_str(),
                    e.file.display().to_string(),
                )
            })
            .collect(),
        // Keys in environment variables: no retired-keys file.
        None => match args.protection()?.keyring() {
            Some(ring) => ring
                .key_ids()
                .enumerate()
                .map(|(i, (id, _))| {
                    let (standing, var) = if i == 0 {
                        (KeyStanding::Primary, "ENCRYPTION_KEY")
                    } else {
                        (KeyStanding::DecryptOnly, "ENCRYPTION_PREVIOUS_KEYS")
                    };
                    (id.to_string(), standing.as_str(), var.to_owned())
                })
                .collect(),
            None => Vec::new(),
        },
    };
    if args.json {
        let keys: Vec<_> = entries
            .iter()
            .map(|(id, standing, from)| json!({ "key_id": id, "standing": standing, "from": from }))
            .collect();
        print_json(&json!({ "keys": keys }))?;
    } else if entries.is_empty() {
        println!("no key configured: plaintext development mode");
    } else {
        for (id, standing, from) in &entries {
            println!("{id}  {standing:<12}  {from}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_change(args: &GlobalArgs, verb: &str, change: &KeyChange) -> Result<ExitCode> {
    if args.json {
        print_json(change)?;
    } else if !change.changed {
        println!(
            "key {}: nothing to do, it is already in {}",
            change.key_id,
            change.from.display()
        );
    } else {
        match &change.to {
            Some(to) => println!(
                "{verb} key {}: moved from {} to {}",
                change.key_id,
                change.from.display(),
                to.display()
            ),
            None => println!(
                "{verb} key {}: removed from {}",
                change.key_id,
                change.from.display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn destroy(
    key_id: &str,
    files: &KeyFileArgs,
    yes: bool,
    args: &GlobalArgs,
) -> Result<ExitCode> {
    let id = atom_rotation::parse_key_id(key_id)?;
    let files = files.require_key_files()?;
    // What may still need it: the secrets folder and the database of every
    // other command (a database that does not exist holds nothing).
    let secrets = args.settings.secrets();
    let database = args.settings.store_config()?;
    let store = if database.database_url.sqlite_file_missing() {
        None
    } else {
        Some(args.read_only_store(args.protection()?).await?)
    };
    let confirmed = |id: atom_crypto::KeyId| {
        confirm(
            &format!(
                "Nothing here is sealed under key {id} any more, but backups made before it was retired may be. Destroy it for good? Type the key id to confirm:"
            ),
            &id.to_string(),
            yes,
        )
    };
    let change =
        atom_rotation::destroy_key(&files, id, Some(&secrets), store.as_ref(), confirmed).await?;
    match change {
        Some((change, _)) => report_change(args, "destroyed", &change),
        None => anyhow::bail!("not confirmed; key {id} is unchanged"),
    }
}

async fn rotate_keys(rotate: &RotateArgs, args: &GlobalArgs) -> Result<ExitCode> {
    if std::env::var_os(atom_kms::ENV_KMS_KEYS_FILE).is_some_and(|f| !f.is_empty()) {
        anyhow::bail!(
            "{} is set: `atom keys rotate` manages key files that hold keys in clear, and KMS-held keys never are. Rotate with `atom key generate --kms-key-id <KMS key> --add-to <keys file>`, restart the apps, run `atom secrets rewrap` and `atom credentials rewrap`, then remove the old key's line (docs/ROTATION.md)",
            atom_kms::ENV_KMS_KEYS_FILE
        );
    }
    let options = rotate.options(
        &args.settings,
        !args.json && std::io::stderr().is_terminal(),
        rerun_command(),
    )?;
    let access = if rotate.dry_run {
        atom_app::DatabaseAccess::ReadOnly
    } else {
        atom_app::DatabaseAccess::Migrate
    };
    let (auditor, _) = args
        .settings
        .auditor_for(Actor::new("operator:rotate-keys"), access)
        .await?;
    let report = atom_rotation::rotate_keys(&options, &auditor).await;
    auditor.flush().await?;
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = atom_app::hints::hint(&e) {
                eprintln!("hint: {hint}");
            }
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::from(report.exit_code))
}

/// The command that continues this rotation: this run's command line less
/// `--dry-run`, as `atom ...`, or as `cargo xtask rotate-keys ...` when
/// xtask started it (it says so in `ATOM_ROTATE_COMMAND`).
fn rerun_command() -> String {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--dry-run")
        .collect();
    let program = match std::env::var("ATOM_ROTATE_COMMAND") {
        Ok(program) => {
            for word in ["keys", "rotate"] {
                if let Some(i) = args.iter().position(|a| a == word) {
                    args.remove(i);
                }
            }
            program
        }
        Err(_) => "atom".to_owned(),
    };
    let mut cmd = program;
    for a in args {
        cmd.push(' ');
        cmd.push_str(&shell_quote(&a));
    }
    cmd
}

fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c))
    {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

//! `atom audit verify | tail`: the hash-chained audit log.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use atom_app::AuditSinkKind;
use atom_audit::{AuditError, AuditEvent};
use clap::Subcommand;
use serde_json::Value;

use crate::{block_on, exit};

/// The longest line `atom audit tail` reads (a record is far shorter).
const MAX_LINE_BYTES: u64 = 64 * 1024;
use crate::session::{GlobalArgs, print_json};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the chain: reports the first record modified, inserted,
    /// removed or reordered, and a tail cut after the last checkpoint.
    /// With --audit-sink database, checks the `audit_events` table of the
    /// database at --database-url instead, up to its stored head.
    /// Exit 3 if the trail is not intact.
    Verify {
        /// The log (default: --audit-log).
        path: Option<PathBuf>,
    },
    /// Print the last events of the log (with --audit-sink database, of
    /// the table in --database-url).
    Tail {
        /// The log (default: --audit-log).
        path: Option<PathBuf>,
        /// How many records.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        /// Also print the chain's checkpoint records.
        #[arg(long)]
        checkpoints: bool,
    },
}

pub(crate) fn run(cmd: AuditCommand, args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { path: None }
            if args.settings.audit_sink == AuditSinkKind::Database =>
        {
            verify_table(args)
        }
        AuditCommand::Verify { path } => {
            let log = path.unwrap_or_else(|| args.settings.audit_log());
            let shown = log.display().to_string();
            let not_intact = |why: String| not_intact(args, ("log", &shown), &shown, &why);
            let key = match audit_key(args) {
                Ok(key) => key,
                Err(why) => return not_intact(why),
            };
            let anchor = args.settings.audit_anchor();
            let report = match atom_audit::verify_anchored(&log, &key, Some(&anchor)) {
                Ok(report) => report,
                Err(AuditError::Read { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return not_intact(format!(
                        "{} does not exist (no checkpoint of it was found either; if it never existed, check the path and --audit-log, or --audit-sink database when the trail is kept in the database)",
                        path.display()
                    ));
                }
                Err(e) => return not_intact(e.to_string()),
            };
            if args.json {
                print_json(&serde_json::json!({
                    "log": log.display().to_string(),
                    "intact": report.is_intact(),
                    "records": report.records,
                    "events": report.events,
                    "checkpoints": report.checkpoints,
                    "problem": report.problem.as_ref().map(ToString::to_string),
                }))?;
            } else {
                println!("{}: {report}", log.display());
            }
            Ok(if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(exit::PROBLEMS_FOUND)
            })
        }
        AuditCommand::Tail {
            path: None,
            lines,
            checkpoints: _,
        } if args.settings.audit_sink == AuditSinkKind::Database => {
            let config = args.settings.store_config()?;
            let records = block_on(atom_credentials::audit_table_tail(&config, lines as u64))?
                .with_context(|| {
                    format!(
                        "cannot read the audit trail in {}",
                        atom_credentials::redact_url(&args.settings.database_url())
                    )
                })?;
            print_records(args, records);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Tail {
            path,
            lines,
            checkpoints,
        } => {
            let log = path.unwrap_or_else(|| args.settings.audit_log());
            let file = std::fs::File::open(&log).with_context(|| {
                format!(
                    "cannot open the audit log {}; pass its path or --audit-log",
                    log.display()
                )
            })?;
            let mut last: VecDeque<String> = VecDeque::with_capacity(lines);
            let mut reader = std::io::BufReader::new(file);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                // A record is short; a longer line (a damaged log, or a
                // path naming a device) is not read whole.
                let read = atom_io::read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES)
                    .with_context(|| {
                        format!(
                            "cannot read {}; check it with: atom audit verify",
                            log.display()
                        )
                    })?;
                if read == 0 {
                    break;
                }
                let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
                let line = String::from_utf8_lossy(text).into_owned();
                if !checkpoints && is_checkpoint(&line) {
                    continue;
                }
                if last.len() == lines {
                    last.pop_front();
                }
                last.push_back(line);
            }
            print_records(args, last);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints records: as they are with `--json`, else one line for people each.
fn print_records(args: &GlobalArgs, records: impl IntoIterator<Item = String>) {
    for line in records {
        if args.json {
            println!("{line}");
        } else {
            println!("{}", describe(&line));
        }
    }
}

/// Reports a trail that cannot be shown intact: exit 3, since a trail
/// that cannot be read or checked is not provably intact. `what` names it
/// in JSON (`log` or `database`), `shown` in text.
fn not_intact(
    args: &GlobalArgs,
    what: (&str, &str),
    shown: &str,
    why: &str,
) -> anyhow::Result<ExitCode> {
    if args.json {
        let mut document = serde_json::json!({"intact": false, "problem": why});
        document[what.0] = Value::from(what.1);
        print_json(&document)?;
    } else {
        println!("{shown}: NOT intact: {why}");
    }
    Ok(ExitCode::from(exit::PROBLEMS_FOUND))
}

/// The audit key to check a trail with, or why there is none.
fn audit_key(args: &GlobalArgs) -> Result<atom_crypto::Key, String> {
    args.settings
        .audit_key_for_reading()
        .map_err(|e| format!("the audit key cannot be read ({e}), so the chain cannot be checked"))
}

/// `atom audit verify` of the trail in the credential database.
fn verify_table(args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let database = atom_credentials::redact_url(&args.settings.database_url());
    let shown = format!("audit trail in {database}");
    let not_intact = |why: String| not_intact(args, ("database", &database), &shown, &why);
    let key = match audit_key(args) {
        Ok(key) => key,
        Err(why) => return not_intact(why),
    };
    let config = args.settings.store_config()?;
    let checked = block_on(atom_credentials::verify_audit_table(&config, &key))?;
    let report = match checked {
        Ok(report) => report,
        Err(e) => return not_intact(e.to_string()),
    };
    if args.json {
        print_json(&serde_json::json!({
            "database": database,
            "intact": report.is_intact(),
            "records": report.chain.records,
            "events": report.chain.events,
            "pending": report.pending,
            "head": {"next_seq": report.head.next_seq(), "last_mac": report.head.last_mac_hex()},
            "problem": report.chain.problem.as_ref().map(ToString::to_string).or_else(|| {
                report.forged_pending.map(|id| format!("pending event {id} does not authenticate under the audit key"))
            }),
        }))?;
    } else {
        println!("audit trail in {database}: {report}");
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::PROBLEMS_FOUND)
    })
}

/// Whether a log line is a checkpoint record (not an event).
fn is_checkpoint(line: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|record| record["type"] == "checkpoint")
}

/// One record as a line for people: sequence, time, outcome and the seed's text.
fn describe(line: &str) -> String {
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        return format!("(unreadable record) {line}");
    };
    let seq = record["seq"]
        .as_u64()
        .map_or_else(|| "?".to_owned(), |s| s.to_string());
    match record
        .get("event")
        .cloned()
        .map(serde_json::from_value::<AuditEvent>)
    {
        Some(Ok(event)) => format!(
            "{seq:>6}  {}  {:<8} {}{}",
            event.at.to_rfc3339(),
            event.outcome,
            event.action,
            event
                .actor
                .map(|a| format!(" - by={}", a.as_str()))
                .unwrap_or_default()
        ),
        _ => format!(
            "{seq:>6}  {} record",
            record["type"].as_str().unwrap_or("unknown")
        ),
    }
}

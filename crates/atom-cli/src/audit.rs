//! `atom audit verify | tail`: the hash-chained audit log.

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use atom_audit::{AuditError, AuditEvent};
use clap::Subcommand;
use serde_json::Value;

use crate::exit;
use crate::session::{GlobalArgs, print_json};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the chain: reports the first record modified, inserted,
    /// removed or reordered, and a tail cut after the last checkpoint.
    /// Exit 3 if the log is not intact.
    Verify {
        /// The log (default: --audit-log).
        path: Option<PathBuf>,
    },
    /// Print the last events of the log.
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
        AuditCommand::Verify { path } => {
            let log = path.unwrap_or_else(|| args.settings.audit_log());
            // Anything short of a verified chain is exit 3: a log that
            // cannot be read or checked is not provably intact.
            let not_intact = |why: String| -> anyhow::Result<ExitCode> {
                if args.json {
                    print_json(&serde_json::json!({
                        "log": log.display().to_string(),
                        "intact": false,
                        "problem": why,
                    }))?;
                } else {
                    println!("{}: NOT intact: {why}", log.display());
                }
                Ok(ExitCode::from(exit::PROBLEMS_FOUND))
            };
            let key = match args.settings.audit_key_for_reading() {
                Ok(key) => key,
                Err(e) => {
                    return not_intact(format!(
                        "the audit key cannot be read ({e}), so the chain cannot be checked"
                    ));
                }
            };
            let anchor = args.settings.audit_anchor();
            let report = match atom_audit::verify_anchored(&log, &key, Some(&anchor)) {
                Ok(report) => report,
                Err(AuditError::Read { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return not_intact(format!(
                        "{} does not exist (no checkpoint of it was found either; if it never existed, check the path and --audit-log)",
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
            for line in std::io::BufReader::new(file).lines() {
                let line = line.with_context(|| format!("cannot read {}", log.display()))?;
                if !checkpoints && is_checkpoint(&line) {
                    continue;
                }
                if last.len() == lines {
                    last.pop_front();
                }
                last.push_back(line);
            }
            for line in last {
                if args.json {
                    println!("{line}");
                } else {
                    println!("{}", describe(&line));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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

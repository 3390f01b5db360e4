//! `atom doctor`: the seed's production checklist and Troubleshooting
//! diagnoses (atom-app's `doctor`), with the next step of every finding as
//! a command. Reads only. Exit 0 when every line passes, 1 on a warning, 2
//! on a failure.

use std::process::ExitCode;

use atom_app::{Cause, CheckId, DoctorReport, Verdict};
use serde_json::json;

use crate::session::{GlobalArgs, print_json};

pub(crate) async fn run(args: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let report = atom_app::doctor(&args.settings).await;
    let code = match report.worst() {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        _ => 2,
    };
    if args.json {
        print_json(&as_json(&report, code))?;
    } else {
        print!("{}", as_text(&report, code));
    }
    Ok(ExitCode::from(code))
}

/// The next step of a checklist line, as a command.
fn next_step(id: CheckId, verdict: Verdict, detail: &str) -> Option<String> {
    if verdict == Verdict::Pass {
        return None;
    }
    Some(match id {
        CheckId::Key if detail.contains("group or others") => {
            "chmod 600 \"$ENCRYPTION_KEY_FILE\"".to_owned()
        }
        CheckId::Key if verdict == Verdict::Warn => {
            "atom keys generate --quiet > keys/encryption.key && chmod 600 keys/encryption.key, then set ENCRYPTION_KEY_FILE to it (docs/ROTATION.md, \"Keys are files\")".to_owned()
        }
        CheckId::Key => {
            "atom keys generate --quiet > keys/encryption.key && chmod 600 keys/encryption.key && export ENCRYPTION_KEY_FILE=$PWD/keys/encryption.key".to_owned()
        }
        CheckId::SecretsMigrated => "atom secrets migrate".to_owned(),
        CheckId::PlaintextCopies => "atom secrets verify && atom secrets shred-plaintext".to_owned(),
        CheckId::ValuesSealed if verdict == Verdict::Warn => "atom keys rotate (or: atom secrets rewrap && atom credentials rewrap)".to_owned(),
        CheckId::ValuesSealed => "atom secrets verify; atom credentials rewrap --dry-run (the diagnoses below name each value)".to_owned(),
        CheckId::Rotation if detail.contains("stopped at phase") => "atom keys rotate (continues it)".to_owned(),
        CheckId::Rotation if detail.contains("not in key files") => "move the keys to files (docs/ROTATION.md, \"Keys are files\"), then: atom keys rotate --if-due".to_owned(),
        CheckId::Rotation if verdict == Verdict::Fail => "atom keys generate".to_owned(),
        CheckId::Rotation => "atom keys rotate --if-due (daily, from cron: docs/ROTATION.md)".to_owned(),
        CheckId::AuditKeyApart => "atom keys generate --quiet > /etc/atom/audit.key && chmod 600 /etc/atom/audit.key && export ATOM_AUDIT_KEY_FILE=/etc/atom/audit.key (a folder apart from the log)".to_owned(),
        CheckId::AuditTrail if detail.contains("does not exist yet") => "nothing yet: the first audited operation creates it".to_owned(),
        CheckId::AuditTrail => "atom audit verify (names the first record that fails; docs/OPERATIONS.md)".to_owned(),
        CheckId::DatabaseMigrated => "atom db migrate".to_owned(),
        CheckId::Envelope => "set ATOM_ENVELOPE_ENCRYPTION=1 on every instance, then: atom credentials rewrap".to_owned(),
        CheckId::ServerTls => "set ATOM_TLS_CERT and ATOM_TLS_KEY (PEM files) for atom-server".to_owned(),
        CheckId::IdentityProvider => "set ATOM_JWKS_URL (or ATOM_JWKS_FILE), ATOM_JWT_ISSUER and ATOM_JWT_AUDIENCE for atom-server".to_owned(),
        _ => return None,
    })
}

/// The next step of a diagnosis, as a command.
fn remedy(cause: &Cause) -> String {
    match cause {
        Cause::NoKey => "set ENCRYPTION_KEY_FILE (or ENCRYPTION_KEY) to a key from: atom keys generate".to_owned(),
        Cause::PlaintextValues => "check that they are the secrets, then: atom secrets rewrap --seal-plaintext (atom credentials rewrap --seal-plaintext for rows)".to_owned(),
        Cause::RetiredKey { key_id } => format!("atom keys restore {key_id}, then: atom keys rotate"),
        Cause::UnknownKey { .. } => "add the key that made it to ENCRYPTION_PREVIOUS_KEYS_FILE (another deployment's ENCRYPTION_KEY), or restore the value from a backup".to_owned(),
        Cause::NotAuthentic | Cause::Damaged => "restore the value from a backup, or store it again: atom secrets set NAME / atom credentials put USER PROVIDER".to_owned(),
        Cause::UnreadablePlaintext => "fix secrets.json (the message names line and column), then: atom secrets migrate".to_owned(),
        Cause::ReadOnlyFolder => "make the folder writable by this user (chmod u+w), then: atom secrets migrate".to_owned(),
        Cause::WouldSucceed => "atom secrets migrate".to_owned(),
        _ => "atom secrets verify; atom credentials rewrap --dry-run".to_owned(),
    }
}

fn as_text(report: &DoctorReport, code: u8) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "atom doctor: the production checklist (exit {code}: 0 all pass, 1 a warning, 2 a failure)"
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "  {:<4}  {}: {}",
            check.verdict.as_str().to_uppercase(),
            check.id.title(),
            check.detail
        );
        if let Some(next) = next_step(check.id, check.verdict, &check.detail) {
            let _ = writeln!(out, "        next: {next}");
        }
    }
    if !report.diagnoses.is_empty() {
        let _ = writeln!(out, "troubleshooting:");
        for d in &report.diagnoses {
            let _ = writeln!(out, "  {}: {}: {}", d.symptom.title(), d.subject, d.detail);
            let _ = writeln!(out, "        next: {}", remedy(&d.cause));
        }
    }
    out
}

fn as_json(report: &DoctorReport, code: u8) -> serde_json::Value {
    let checks: Vec<_> = report
        .checks
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "title": c.id.title(),
                "verdict": c.verdict,
                "detail": c.detail,
                "next": next_step(c.id, c.verdict, &c.detail),
            })
        })
        .collect();
    let diagnoses: Vec<_> = report
        .diagnoses
        .iter()
        .map(|d| {
            let mut value = serde_json::to_value(d).unwrap_or_default();
            value["next"] = json!(remedy(&d.cause));
            value
        })
        .collect();
    json!({ "exit_code": code, "checks": checks, "diagnoses": diagnoses })
}

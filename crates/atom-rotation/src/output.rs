//! The operator's view of a [`RotationReport`]: what changed, what
//! remains, the exact next command.

use std::fmt::Write as _;

use crate::inventory::Inventory;
use crate::report::{Outcome, RotationReport};

/// How many bad values are listed by name in the text report.
const SHOWN: usize = 20;

impl RotationReport {
    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let headline = match self.outcome {
            Outcome::Finished => "rotation finished",
            Outcome::NothingToDo => "nothing to do",
            Outcome::NotDue => "not due: the primary key is younger than the rotation policy",
            Outcome::DryRun => "dry run: nothing was changed",
            Outcome::ValuesDoNotOpen => "STOPPED: values do not open",
            Outcome::VerificationFailed => {
                "STOPPED: verification found values not under the new key"
            }
            Outcome::WaitingForRollout => "waiting for the rollout of the key files",
        };
        let _ = writeln!(out, "rotate-keys: {headline} (exit {})", self.exit_code);
        if let Some(old) = &self.old_key_id {
            let _ = write!(out, "  keys: {old}");
            if let Some(new) = &self.new_key_id {
                let _ = write!(out, " -> {new}");
            }
            out.push('\n');
        }
        if let Some(phase) = self.phase {
            let _ = writeln!(
                out,
                "  phase: {} (state in {})",
                phase.as_str(),
                self.state_file.display()
            );
        }
        if let Some(before) = &self.before {
            out.push_str("  before:\n");
            inventory(&mut out, before);
        }
        if let Some(after) = &self.after {
            out.push_str("  after:\n");
            inventory(&mut out, after);
        }
        if self.values_opened > 0 {
            let _ = writeln!(out, "  values opened: {}", self.values_opened);
        }
        if self.bad_values_total > 0 {
            let _ = writeln!(out, "  values that do not open: {}", self.bad_values_total);
            for bad in self.bad_values.iter().take(SHOWN) {
                let _ = writeln!(out, "    - {bad}");
            }
            if self.bad_values.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "    ... and {} more (--json lists up to 1000 per store)",
                    self.bad_values.len() - SHOWN
                );
            }
        }
        if self.changed.is_empty() {
            out.push_str("  changed: nothing\n");
        } else {
            out.push_str("  changed:\n");
            for c in &self.changed {
                let _ = writeln!(out, "    - {c}");
            }
        }
        if !self.remaining.is_empty() {
            out.push_str("  remaining:\n");
            for r in &self.remaining {
                let _ = writeln!(out, "    - {r}");
            }
        }
        if let Some(next) = &self.next_command {
            let _ = writeln!(out, "  next: {next}");
        }
        out
    }
}

fn inventory(out: &mut String, inv: &Inventory) {
    if let Some(s) = &inv.secrets {
        let _ = writeln!(
            out,
            "    {}: {} entries; by key {}; legacy {}; plaintext {}; malformed {}; not secret {}",
            s.file.display(),
            s.total,
            by_key(&s.by_key),
            s.legacy,
            s.plaintext,
            s.malformed,
            s.not_secret
        );
    }
    if let Some(c) = &inv.credentials {
        let _ = writeln!(
            out,
            "    {}: {} rows; by key {}; legacy {}; plaintext {}; malformed {}; enveloped {}",
            c.database,
            c.total,
            by_key(&c.by_key),
            c.legacy,
            c.plaintext,
            c.malformed,
            c.enveloped
        );
        if c.data_keys > 0 {
            let _ = writeln!(
                out,
                "    data keys: {}; wrapped by key {}",
                c.data_keys,
                by_key(&c.data_keys_by_key)
            );
        }
    }
}

fn by_key(counts: &[atom_crypto::KeyCount]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .map(|k| format!("{}={}", k.key_id, k.count))
        .collect();
    if parts.is_empty() {
        "(none)".to_owned()
    } else {
        parts.join(", ")
    }
}

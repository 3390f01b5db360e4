//! What a rotation did and what remains: the report, its outcome and exit
//! code. Key ids only, never keys or values.

use std::path::PathBuf;

use atom_crypto::KeyId;
use serde::Serialize;

use crate::exit;
use crate::inventory::{BadValue, Inventory, Planned};
use crate::state::Phase;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The rotation finished: every value is under the new key, the old
    /// key is retired.
    Finished,
    /// No rotation in progress and the requested key is already primary.
    NothingToDo,
    /// `--if-due`: the primary key is younger than the rotation policy;
    /// nothing was done.
    NotDue,
    /// `--dry-run`: the plan, nothing changed.
    DryRun,
    /// Values do not open; nothing was changed (at plan) or nothing is
    /// retired (later).
    ValuesDoNotOpen,
    /// Values remain outside the new key after rewrap.
    VerificationFailed,
    /// Waiting for the operator to roll the key files out.
    WaitingForRollout,
}

impl Outcome {
    /// The documented exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Finished | Outcome::NothingToDo | Outcome::NotDue | Outcome::DryRun => {
                exit::DONE
            }
            Outcome::ValuesDoNotOpen | Outcome::VerificationFailed => exit::VALUES_DO_NOT_OPEN,
            Outcome::WaitingForRollout => exit::WAITING_FOR_ROLLOUT,
        }
    }
}

/// What a run did and what remains. Key ids only, never keys or values.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RotationReport {
    /// How the run ended.
    pub outcome: Outcome,
    /// The exit code for it.
    pub exit_code: u8,
    /// The phase recorded in the state file at the end.
    pub phase: Option<Phase>,
    /// The key rotated away from.
    pub old_key_id: Option<KeyId>,
    /// The key rotated to.
    pub new_key_id: Option<KeyId>,
    /// Counts before this run changed anything.
    pub before: Option<Inventory>,
    /// Counts at the end.
    pub after: Option<Inventory>,
    /// Values that do not open (the first 1000 per store).
    pub bad_values: Vec<BadValue>,
    /// Plaintext values (from the no-key development mode), by name or row
    /// id: sealed by this rotation with `seal_plaintext`, else they stop it.
    pub plaintext_values: Vec<BadValue>,
    /// How many values do not open in all.
    pub bad_values_total: u64,
    /// Values that open (plan and verify).
    pub values_opened: u64,
    /// Secrets-file values rewrapped by this run.
    pub secrets_rewrapped: usize,
    /// Credential rows rewrapped by this run.
    pub rows_rewrapped: u64,
    /// Users' data keys rewrapped by this run.
    pub data_keys_rewrapped: u64,
    /// Rows an app changed during rewrap (left as the app wrote them).
    pub rows_skipped: u64,
    /// What this run changed, in order.
    pub changed: Vec<String>,
    /// What remains to be done.
    pub remaining: Vec<String>,
    /// What was not rotated and why (a secrets folder without a file, an
    /// SQLite database that does not exist).
    pub notes: Vec<String>,
    /// The command to run next, if any.
    pub next_command: Option<String>,
    /// The state file.
    pub state_file: PathBuf,
}

impl RotationReport {
    pub(crate) fn new(state_file: PathBuf) -> RotationReport {
        RotationReport {
            outcome: Outcome::Finished,
            exit_code: exit::DONE,
            phase: None,
            old_key_id: None,
            new_key_id: None,
            before: None,
            after: None,
            bad_values: Vec::new(),
            plaintext_values: Vec::new(),
            bad_values_total: 0,
            values_opened: 0,
            secrets_rewrapped: 0,
            rows_rewrapped: 0,
            data_keys_rewrapped: 0,
            rows_skipped: 0,
            changed: Vec::new(),
            remaining: Vec::new(),
            notes: Vec::new(),
            next_command: None,
            state_file,
        }
    }

    /// Takes in what the plan found; `true` when it stops the rotation
    /// (values that do not open, or plaintext without `seal_plaintext`),
    /// with the remaining steps and the next command set.
    pub(crate) fn absorb_plan(&mut self, planned: Planned, rerun: &str) -> bool {
        self.values_opened = planned.opened;
        self.bad_values_total = planned.bad_total;
        self.plaintext_values = planned.plaintext;
        if planned.bad_total == 0 {
            return false;
        }
        self.bad_values = planned.bad;
        let plaintext_refused = self
            .bad_values
            .iter()
            .filter(|b| self.plaintext_values.contains(b))
            .count();
        if plaintext_refused > 0 {
            self.remaining.push(format!(
                "{plaintext_refused} value(s) are plaintext; a rotation seals plaintext only when asked to (seal plaintext): check that each listed value is the secret itself and not a damaged ciphertext, then run again asking for it"
            ));
        }
        if planned.bad_total as usize > plaintext_refused {
            self.remaining.push(
                "restore or remove the values that do not open (or add the key they were sealed under to the previous-keys file), then run the same command again".to_owned(),
            );
        }
        self.remaining.push("nothing was changed".to_owned());
        self.next_command = Some(rerun.to_owned());
        true
    }

    pub(crate) fn end(mut self, outcome: Outcome) -> RotationReport {
        self.outcome = outcome;
        self.exit_code = outcome.exit_code();
        self
    }
}

//! `rotate_keys`: the rollout of a new key as resumable phases
//! (plan -> introduce -> promote -> rewrap -> verify -> retire), recorded
//! in the state file after each step. See docs/ROTATION.md.

use std::path::PathBuf;

use atom_audit::{Action, Auditor, Outcome as AuditOutcome};
use atom_crypto::{
    ENV_KEY, ENV_KEY_FILE, ENV_PREVIOUS_KEYS, ENV_PREVIOUS_KEYS_FILE, Key, KeyId, Keyring,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ages::KeyAges;
use crate::engine::{self, EngineConfig};
use crate::error::Error;
use crate::inventory::{BadValue, Inventory, Sources};
use crate::keyfiles::{KeyFiles, KeyLines};
use crate::options::{Keys, RotateOptions};
use crate::report::{Outcome, RotationReport};
use crate::state::{Phase, RotationLock, RotationState};

/// What rotation events call the whole rotation.
const SCOPE: &str = "rotation";

/// Runs the rotation from wherever the state file says it is. Stops with
/// a report at the first point that needs the operator (exit codes 3, 4);
/// errors are for failures (1) and unusable configuration (2).
pub async fn rotate_keys(
    options: &RotateOptions,
    auditor: &Auditor,
) -> Result<RotationReport, Error> {
    if options.secrets_dir.is_none() && options.database_url.is_none() {
        return Err(Error::Usage(
            "nothing to rotate: name the folder of secrets.enc and/or the credential database"
                .to_owned(),
        ));
    }
    let files = match &options.keys {
        Keys::Files(files) => files,
        Keys::Environment(keyring) if options.dry_run => {
            return plan_only(options, auditor, keyring).await;
        }
        Keys::Environment(_) => {
            return Err(Error::Usage(format!(
                "the keys are in environment variables, which a running app cannot have edited, so rotation keeps them in files. Move them to files in ./keys (this shell; then give every app instance the same {ENV_KEY_FILE} and {ENV_PREVIOUS_KEYS_FILE} instead of {ENV_KEY} and {ENV_PREVIOUS_KEYS}, and restart it): {}",
                KeyFiles::move_to_files_instructions()
            )));
        }
    };
    let run = Run::new(options, files, auditor);
    let _lock = RotationLock::acquire(&files.dir())?;
    let state = RotationState::load(&run.state_path)?.filter(|s| s.phase != Phase::Finished);
    match state {
        None => {
            if let Some(days) = options.only_if_older_than_days
                && let Some(report) = run.not_due(days)?
            {
                return Ok(report);
            }
            run.start().await
        }
        Some(state) => run.resume(state).await,
    }
}

/// The plan alone, with keys from the environment: nothing is written.
async fn plan_only(
    options: &RotateOptions,
    auditor: &Auditor,
    keyring: &Keyring,
) -> Result<RotationReport, Error> {
    let engine = EngineConfig::of(options);
    let mut report = RotationReport::new(PathBuf::new());
    report.old_key_id = Some(keyring.primary_id());
    let sources = Sources::open(options, &engine, keyring, auditor, &mut report).await?;
    let before = sources.inventory().await?;
    let bar = progress_bar(options, count_values(&before), "plan: opening every value");
    let planned = sources
        .check_open(keyring, options.seal_plaintext, &engine, &bar)
        .await?;
    bar.finish_and_clear();
    report.before = Some(before);
    if report.absorb_plan(planned, &options.rerun_command) {
        return Ok(report.end(Outcome::ValuesDoNotOpen));
    }
    report.remaining.push(format!(
        "to rotate, move the keys to files first (the phases after the plan change key files): {}",
        KeyFiles::move_to_files_instructions()
    ));
    report.next_command = Some(options.rerun_command.clone());
    Ok(report.end(Outcome::DryRun))
}

struct Run<'a> {
    options: &'a RotateOptions,
    files: &'a KeyFiles,
    auditor: &'a Auditor,
    state_path: PathBuf,
    engine: EngineConfig,
}

impl EngineConfig {
    fn of(options: &RotateOptions) -> EngineConfig {
        EngineConfig {
            workers: options.workers,
            batch_size: options.batch_size,
            skip_locked: options.skip_locked,
            seal_plaintext: options.seal_plaintext,
        }
    }
}

fn progress_bar(options: &RotateOptions, len: u64, what: &str) -> ProgressBar {
    if !options.show_progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} rows, {per_sec}, ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

impl<'a> Run<'a> {
    fn new(options: &'a RotateOptions, files: &'a KeyFiles, auditor: &'a Auditor) -> Run<'a> {
        Run {
            options,
            files,
            auditor,
            state_path: RotationState::path_in(&files.dir()),
            engine: EngineConfig::of(options),
        }
    }

    fn files(&self) -> &KeyFiles {
        self.files
    }

    /// The keyring the key files configure now.
    fn keyring_from_files(&self) -> Result<(Key, KeyLines, Keyring), Error> {
        let primary = self.files().read_primary()?;
        let previous = self.files().read_previous()?;
        let keyring = Keyring::new(primary.clone(), previous.keys().cloned()).map_err(|e| {
            Error::Usage(format!(
                "the key files {} and {} do not form a keyring: {e}",
                self.files().primary.display(),
                self.files().previous.display()
            ))
        })?;
        Ok((primary, previous, keyring))
    }

    async fn sources(
        &self,
        keyring: &Keyring,
        report: &mut RotationReport,
    ) -> Result<Sources, Error> {
        Sources::open(self.options, &self.engine, keyring, self.auditor, report).await
    }

    fn bar(&self, len: u64, what: &str) -> ProgressBar {
        progress_bar(self.options, len, what)
    }

    fn rerun(&self) -> String {
        self.options.rerun_command.clone()
    }

    async fn audit(&self, action: Action, outcome: AuditOutcome) -> Result<(), Error> {
        let event = self.auditor.event(action).with_outcome(outcome);
        self.auditor.record_event(event).await?;
        Ok(())
    }

    /// `--if-due`: a report saying the primary key is not due, or `None`
    /// when it is (older than `days`, or of unknown age).
    fn not_due(&self, days: u32) -> Result<Option<RotationReport>, Error> {
        let primary = self.files().read_primary()?;
        let ages = KeyAges::load(&KeyAges::path_in(&self.files().dir()))?;
        let age = ages.age(primary.id(), chrono::Utc::now());
        if crate::ages::is_due(age, days) {
            return Ok(None);
        }
        let mut report = RotationReport::new(self.state_path.clone());
        report.old_key_id = Some(primary.id());
        report.remaining.push(format!(
            "nothing: key {} was introduced {} days ago, within the policy of {days} days (ATOM_KEY_MAX_AGE_DAYS)",
            primary.id(),
            age.map_or(0, |a| a.num_days())
        ));
        Ok(Some(report.end(Outcome::NotDue)))
    }

    /// No rotation in progress: plan, then introduce.
    async fn start(&self) -> Result<RotationReport, Error> {
        let mut report = RotationReport::new(self.state_path.clone());
        let (primary, mut previous, keyring) = self.keyring_from_files()?;
        let requested = match &self.options.new_key_file {
            Some(path) => Some(KeyFiles::new(path, path).read_primary()?),
            None => None,
        };
        report.old_key_id = Some(primary.id());
        if let Some(new) = &requested
            && new.id() == primary.id()
        {
            report.new_key_id = Some(new.id());
            report.remaining.push(format!(
                "nothing: key {} is already the primary key and no rotation is in progress",
                new.id()
            ));
            return Ok(report.end(Outcome::NothingToDo));
        }

        // Plan: open everything with the current keyring.
        let sources = self.sources(&keyring, &mut report).await?;
        let before = sources.inventory().await?;
        let bar = self.bar(count_values(&before), "plan: opening every value");
        let planned = sources
            .check_open(&keyring, self.options.seal_plaintext, &self.engine, &bar)
            .await?;
        bar.finish_and_clear();
        report.before = Some(before.clone());
        if report.absorb_plan(planned, &self.rerun()) {
            return Ok(report.end(Outcome::ValuesDoNotOpen));
        }
        if self.options.dry_run {
            report.remaining.push(
                "introduce a new key, promote it, rewrap every value, verify, retire the old key"
                    .to_owned(),
            );
            report.next_command = Some(self.rerun());
            return Ok(report.end(Outcome::DryRun));
        }

        // Introduce: the new key, decrypt-only.
        let new = match requested {
            Some(k) => k,
            None => Key::generate()?,
        };
        if keyring.contains(new.id()) && new.id() != primary.id() {
            report.changed.push(format!(
                "key {} was already in the previous-keys file",
                new.id()
            ));
        }
        self.audit(
            Action::KeyRotationStarted {
                scope: SCOPE.to_owned(),
                to: new.id(),
                total: Some(before.not_under(new.id())),
            },
            AuditOutcome::Success,
        )
        .await?;
        let mut state = RotationState::new(primary.id(), new.id());
        // Its age starts now (a record of a key that a crash then never
        // introduced is never looked up).
        KeyAges::record(
            &KeyAges::path_in(&self.files().dir()),
            new.id(),
            chrono::Utc::now(),
        )?;
        // The state names the new key before the key is written, so a crash
        // in between resumes (the key is then found in the file) or, if
        // the write never happened, reports the missing key.
        previous.add(&new, "decrypt-only, introduced");
        self.files().write_previous(&previous)?;
        state.save(&self.state_path)?;
        report.new_key_id = Some(new.id());
        report.changed.push(format!(
            "added the new key {} to {} as decrypt-only",
            new.id(),
            self.files().previous.display()
        ));
        report.phase = Some(Phase::Introduced);
        if !self.options.yes {
            report.remaining.push(format!(
                "roll out: every app instance must reload its keys (restart, or however it reads {} and {}) so that it can open values sealed under {}; then run the next command to promote, rewrap, verify",
                self.files().primary.display(),
                self.files().previous.display(),
                new.id()
            ));
            report.next_command = Some(self.rerun());
            return Ok(report.end(Outcome::WaitingForRollout));
        }
        self.continue_from(state, report, true).await
    }

    async fn resume(&self, state: RotationState) -> Result<RotationReport, Error> {
        let mut report = RotationReport::new(self.state_path.clone());
        report.old_key_id = Some(state.old_key_id);
        report.new_key_id = Some(state.new_key_id);
        report.phase = Some(state.phase);
        if self.options.dry_run {
            report.remaining.push(format!(
                "a rotation from {} to {} is in progress (phase {}); run the command without --dry-run to continue it",
                state.old_key_id,
                state.new_key_id,
                state.phase.as_str()
            ));
            report.next_command = Some(self.rerun());
            return Ok(report.end(Outcome::DryRun));
        }
        // Coming back after a stop for a rollout is the operator's word
        // that the rollout is done.
        let rolled_out = self.options.yes || state.phase == Phase::Verified;
        self.continue_from(state, report, rolled_out).await
    }

    /// Whether either key file holds the key `id`.
    fn files_hold(&self, id: KeyId) -> Result<bool, Error> {
        let primary = self.files().read_primary()?;
        let previous = self.files().read_previous()?;
        Ok(primary.id() == id || previous.contains(id))
    }

    /// The keys named by the state, found in either key file.
    fn keys_of(&self, state: &RotationState) -> Result<(Key, Key, KeyLines), Error> {
        let primary = self.files().read_primary()?;
        let previous = self.files().read_previous()?;
        let retired = self.files().read_retired()?;
        let find = |id: KeyId| {
            if let Some(k) = retired.find(id)
                && !std::iter::once(&primary)
                    .chain(previous.keys())
                    .any(|p| p.id() == k.id())
            {
                return Err(Error::Failed(format!(
                    "key {id} of the rotation in progress ({}) was retired meanwhile; put it back with the key restore command (it is in {}), then run again",
                    self.state_path.display(),
                    self.files().retired.display()
                )));
            }
            std::iter::once(&primary)
                .chain(previous.keys())
                .find(|k| k.id() == id)
                .cloned()
                .ok_or_else(|| {
                    Error::Failed(format!(
                        "key {id} of the rotation in progress ({}) is in neither {} nor {}; restore the key files from a backup (the state file never holds keys)",
                        self.state_path.display(),
                        self.files().primary.display(),
                        self.files().previous.display()
                    ))
                })
        };
        let old = find(state.old_key_id)?;
        let new = find(state.new_key_id)?;
        Ok((old, new, previous))
    }

    async fn continue_from(
        &self,
        mut state: RotationState,
        mut report: RotationReport,
        rolled_out: bool,
    ) -> Result<RotationReport, Error> {
        if state.phase == Phase::Verified && !self.files_hold(state.old_key_id)? {
            // A run was stopped after retiring the old key and before
            // recording it: the retire is done.
            state.phase = Phase::Finished;
            state.save(&self.state_path)?;
            report.phase = Some(Phase::Finished);
            report.changed.push(format!(
                "recorded that {} was already retired",
                state.old_key_id
            ));
            return Ok(report.end(Outcome::Finished));
        }
        let (old, new, previous) = self.keys_of(&state)?;

        // Promote. Every intermediate file state holds both keys.
        if state.phase <= Phase::Promoting {
            state.phase = Phase::Promoting;
            state.save(&self.state_path)?;
            self.promote(&old, &new, previous)?;
            state.phase = Phase::Promoted;
            state.save(&self.state_path)?;
            report.changed.push(format!(
                "promoted {} to primary in {}; the old primary {} is decrypt-only in {}",
                new.id(),
                self.files().primary.display(),
                old.id(),
                self.files().previous.display()
            ));
            self.audit(
                Action::KeyRotationProgressed {
                    scope: SCOPE.to_owned(),
                    to: new.id(),
                    done: 0,
                    total: None,
                },
                AuditOutcome::Success,
            )
            .await?;
        }
        let (_, _, keyring) = self.keyring_from_files()?;
        if keyring.primary_id() != new.id() {
            return Err(Error::Failed(format!(
                "{} holds key {}, not the promoted key {}; the key files were changed during the rotation: put {} back as primary, then run the command again",
                self.files().primary.display(),
                keyring.primary_id(),
                new.id(),
                new.id()
            )));
        }
        let sources = self.sources(&keyring, &mut report).await?;
        if report.before.is_none() {
            report.before = Some(sources.inventory().await?);
        }

        // Rewrap.
        if state.phase == Phase::Promoted {
            let ok = self.rewrap(&sources, &mut state, &mut report).await?;
            if !ok {
                report.phase = Some(state.phase);
                report.remaining.push(
                    "restore or remove the values that do not open, then run the same command again to continue the rewrap".to_owned(),
                );
                report.next_command = Some(self.rerun());
                return Ok(report.end(Outcome::ValuesDoNotOpen));
            }
            state.phase = Phase::Rewrapped;
            state.save(&self.state_path)?;
            self.audit(
                Action::KeyRotationProgressed {
                    scope: SCOPE.to_owned(),
                    to: new.id(),
                    done: state.rows_rewrapped,
                    total: None,
                },
                AuditOutcome::Success,
            )
            .await?;
        }

        // Verify (after a sweep for values written under an old key since).
        let outcome = self
            .verify(&sources, new.id(), &mut state, &mut report)
            .await?;
        report.phase = Some(state.phase);
        if let Some(outcome) = outcome {
            report.next_command = Some(self.rerun());
            return Ok(report.end(outcome));
        }
        if state.phase < Phase::Verified {
            state.phase = Phase::Verified;
            state.save(&self.state_path)?;
        }
        if !rolled_out {
            report.phase = Some(state.phase);
            report.remaining.push(format!(
                "roll out: every app instance must reload its keys, so that none still seals with the old key {} (an instance that has not would write values that no longer open once it is retired); then run the next command to verify again and retire {}",
                old.id(),
                old.id()
            ));
            report.next_command = Some(self.rerun());
            return Ok(report.end(Outcome::WaitingForRollout));
        }

        // Retire: the old key moves to the retired-keys file, never lost.
        self.files()
            .retire(&old, "retired after the rotation to its successor")?;
        let previous = self.files().read_previous()?;
        state.phase = Phase::Finished;
        state.save(&self.state_path)?;
        report.phase = Some(Phase::Finished);
        report.changed.push(format!(
            "retired the old key {}: moved from {} to {} (no app loads it; it can be restored, and destroyed once nothing needs it)",
            old.id(),
            self.files().previous.display(),
            self.files().retired.display()
        ));
        self.audit(
            Action::KeyRotationFinished {
                scope: SCOPE.to_owned(),
                to: new.id(),
                rewrapped: state.rows_rewrapped,
                failed: 0,
            },
            AuditOutcome::Success,
        )
        .await?;
        self.auditor.flush().await?;
        let others: Vec<String> = previous.keys().map(|k| k.id().to_string()).collect();
        if !others.is_empty() {
            report.remaining.push(format!(
                "optional: no value is sealed under the older keys {} any more; retire them when no backup you may restore needs them",
                others.join(", ")
            ));
        }
        report.remaining.push(format!(
            "optional: app instances may reload their keys to drop {} from memory",
            old.id()
        ));
        Ok(report.end(Outcome::Finished))
    }

    /// Switches the key files so that `new` is primary and `old` is
    /// decrypt-only. Idempotent: a run killed half-way finishes it.
    fn promote(&self, old: &Key, new: &Key, mut previous: KeyLines) -> Result<(), Error> {
        let primary = self.files().read_primary()?;
        if primary.id() != new.id() {
            // 1. Keep the old key in the previous-keys file before it leaves
            //    the primary file, so that no state of the files lacks it.
            previous.add(old, "decrypt-only, the primary before");
            self.files().write_previous(&previous)?;
            // 2. The new key seals.
            self.files().write_primary(new)?;
        }
        // 3. The new key is no longer listed as decrypt-only.
        previous.add(old, "decrypt-only, the primary before");
        previous.remove(new.id());
        self.files().write_previous(&previous)
    }

    /// Rewraps the secrets file and the credential table; `false` when
    /// values do not open.
    async fn rewrap(
        &self,
        sources: &Sources,
        state: &mut RotationState,
        report: &mut RotationReport,
    ) -> Result<bool, Error> {
        let to = self.keyring_from_files()?.2.primary_id().to_string();
        if let Some(dir) = &sources.secrets
            && !state.secrets_rewrapped
        {
            let keyring = self.keyring_from_files()?.2;
            match dir.rewrap(&keyring, self.options.seal_plaintext) {
                Ok(r) => {
                    report.secrets_rewrapped += r.rewrapped_names.len();
                    if r.wrote {
                        report.changed.push(format!(
                            "rewrapped {} value(s) of {} under {to} ({} from older keys, {} legacy, {} plaintext)",
                            r.rewrapped_names.len(),
                            r.file.display(),
                            r.from_key_id.values().sum::<usize>(),
                            r.from_legacy,
                            r.from_plaintext
                        ));
                    }
                    self.audit(
                        Action::KeyRotationFinished {
                            scope: format!("secrets file {}", r.file.display()),
                            to: keyring.primary_id(),
                            rewrapped: r.rewrapped_names.len() as u64,
                            failed: 0,
                        },
                        AuditOutcome::Success,
                    )
                    .await?;
                }
                Err(atom_secrets_file::Error::DoNotOpen { failures, .. }) => {
                    report.bad_values_total += failures.len() as u64;
                    report
                        .bad_values
                        .extend(failures.into_iter().map(|(name, class)| BadValue {
                            place: "secrets_file",
                            name: Some(name),
                            id: None,
                            user: None,
                            provider: None,
                            reason: class.to_string(),
                        }));
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            state.secrets_rewrapped = true;
            state.save(&self.state_path)?;
        }
        if let Some(store) = &sources.store {
            // The data keys first: O(users), and what every enveloped
            // credential needs. Keys already under the new key are skipped,
            // so a resumed run picks up where it stopped.
            let keys = store
                .rewrap_data_keys(self.engine.batch_size, self.engine.workers, false)
                .await?;
            report.data_keys_rewrapped += keys.done;
            if keys.done > 0 {
                report.changed.push(format!(
                    "rewrapped {} user data key(s) under {to}; the credentials they seal were not touched",
                    keys.done
                ));
            }
            if keys.failed > 0 {
                report.bad_values_total += keys.failed;
                report
                    .bad_values
                    .extend(keys.failures.into_iter().map(BadValue::from));
                return Ok(false);
            }
            let pending = store.status().await?.needs_rewrap;
            let bar = self.bar(pending, "rewrap");
            let cursors = engine::plan_ranges(store, &self.engine, &state.cursors).await?;
            state.cursors = cursors.clone();
            state.save(&self.state_path)?;
            let path = self.state_path.clone();
            let mut saved = state.clone();
            let base = state.rows_rewrapped;
            let checkpoint: engine::Checkpoint = Box::new(move |cursors, done| {
                saved.cursors = cursors.to_vec();
                saved.rows_rewrapped = base + done;
                saved.save(&path)
            });
            let (totals, cursors) =
                engine::run(store, &self.engine, cursors, false, &bar, Some(checkpoint)).await?;
            bar.finish_and_clear();
            // The checkpoint wrote the file; keep this copy in step.
            state.cursors = cursors;
            state.rows_rewrapped += totals.done;
            state.save(&self.state_path)?;
            report.rows_rewrapped += totals.done;
            report.rows_skipped += totals.skipped;
            if totals.done > 0 {
                report.changed.push(format!(
                    "rewrapped {} credential row(s) under {to}{}",
                    totals.done,
                    if totals.skipped > 0 {
                        format!(
                            "; {} row(s) were written by an app meanwhile and left as it wrote them",
                            totals.skipped
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            if totals.failed > 0 {
                report.bad_values_total += totals.failed;
                report
                    .bad_values
                    .extend(totals.failures.into_iter().map(|f| BadValue {
                        place: "credentials",
                        name: None,
                        id: Some(f.id),
                        user: Some(f.user),
                        provider: Some(f.provider),
                        reason: f.message,
                    }));
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sweeps values written under an old key since the rewrap, then checks
    /// that every value opens under the new key alone and that none is
    /// under another key. `Some(outcome)` stops the run.
    async fn verify(
        &self,
        sources: &Sources,
        new: KeyId,
        state: &mut RotationState,
        report: &mut RotationReport,
    ) -> Result<Option<Outcome>, Error> {
        // A sweep: cheap when nothing is pending (an indexed query and one
        // read of secrets.enc).
        let keyring = self.keyring_from_files()?.2;
        if let Some(dir) = &sources.secrets {
            let status = dir.status(Some(&keyring))?;
            if status.needs_rewrap.unwrap_or(0) > 0 {
                state.secrets_rewrapped = false;
            }
        }
        let pending_rows = match &sources.store {
            Some(store) => {
                let status = store.status().await?;
                status.needs_rewrap + status.data_keys_need_rewrap
            }
            None => 0,
        };
        if !state.secrets_rewrapped || pending_rows > 0 {
            state.cursors.clear();
            if !self.rewrap(sources, state, report).await? {
                return Ok(Some(Outcome::ValuesDoNotOpen));
            }
        }

        if self.files().read_primary()?.id() != new {
            return Err(Error::Failed(format!(
                "the primary key in {} changed during the rotation; put {new} back as primary, then run the same command again",
                self.files().primary.display()
            )));
        }
        // Every value must open, and none may be left outside the new key.
        // Opening uses the keyring of the files (the old key still there,
        // decrypt-only), so a value an app wrote under the old key while
        // this runs is counted below as not yet under the new key (run
        // again), not as a value that does not open; the inventory is taken
        // after the check so that it sees such writes.
        let bar = self.bar(
            count_values(&sources.inventory().await?),
            "verify: opening every value",
        );
        let planned = sources
            .with_keyring(&keyring)
            .check_open(&keyring, false, &self.engine, &bar)
            .await?;
        bar.finish_and_clear();
        let after = sources.inventory().await?;
        report.values_opened = planned.opened;
        let left = after.not_under(new);
        report.after = Some(after);
        if planned.bad_total > 0 {
            report.bad_values_total += planned.bad_total;
            report.bad_values.extend(planned.bad);
            report.remaining.push(
                "values do not open; nothing was retired. Fix them, then run the same command again"
                    .to_owned(),
            );
            return Ok(Some(Outcome::ValuesDoNotOpen));
        }
        if left > 0 {
            report.remaining.push(format!(
                "{left} value(s) are still not sealed under {new} (an app instance still sealing with an old key?); make sure every instance has reloaded its keys, then run the same command again"
            ));
            state.phase = Phase::Promoted;
            state.save(&self.state_path)?;
            return Ok(Some(Outcome::VerificationFailed));
        }
        Ok(None)
    }
}

fn count_values(inventory: &Inventory) -> u64 {
    inventory.credentials.as_ref().map_or(0, |c| c.total)
}

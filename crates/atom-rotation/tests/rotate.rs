//! End to end: secrets file + credentials with current, older-key, legacy
//! and plaintext values -> rotate -> every value equal, all under the new
//! key, old key retired, the rotation audited.

use atom_audit::{Action, Auditor, MemorySink};
use atom_crypto::Key;
use atom_rotation::{KeyFiles, Outcome, Phase, exit, rotate_keys};

use crate::common::{Fixture, Kind, write_key};

async fn end_to_end(kind: Kind) {
    let Some(fx) = Fixture::new(kind, "end_to_end", 40).await else {
        return;
    };
    let new = Key::generate().unwrap();
    let new_file = fx.dir.path().join("new.key");
    write_key(&new_file, &new);
    let mut options = fx.options();
    options.new_key_file = Some(new_file);
    let sink = MemorySink::new();
    let report = rotate_keys(&options, &Auditor::new(sink.clone()))
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Finished, "{}", report.to_text());
    assert_eq!(report.exit_code, exit::DONE);
    assert_eq!(report.phase, Some(Phase::Finished));
    assert_eq!(report.new_key_id, Some(new.id()));
    assert_eq!(report.rows_rewrapped, fx.credentials.len() as u64);
    assert_eq!(report.secrets_rewrapped, fx.secrets.len());
    let before = report
        .before
        .as_ref()
        .unwrap()
        .credentials
        .as_ref()
        .unwrap();
    assert_eq!((before.legacy, before.plaintext), (5, 5));
    assert_eq!(atom_crypto::KeyCount::of(&before.by_key, fx.old.id()), 40);
    assert_eq!(atom_crypto::KeyCount::of(&before.by_key, fx.older.id()), 5);
    fx.assert_all_under(&new).await;
    fx.assert_retired(&new);

    // The whole rotation is in the audit trail.
    let names: Vec<(String, String)> = sink
        .events()
        .iter()
        .filter_map(|e| match &e.action {
            Action::KeyRotationStarted { scope, .. }
            | Action::KeyRotationProgressed { scope, .. }
            | Action::KeyRotationFinished { scope, .. } => {
                Some((e.name().to_owned(), scope.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        names.first().unwrap(),
        &("key_rotation_started".to_owned(), "rotation".to_owned())
    );
    assert_eq!(
        names.last().unwrap(),
        &("key_rotation_finished".to_owned(), "rotation".to_owned())
    );
    assert!(names.iter().any(|(_, s)| s.starts_with("credentials")));
    assert!(names.iter().any(|(_, s)| s.starts_with("secrets file")));

    // Running it again with the same key changes nothing.
    let tokens = fx.raw_tokens().await;
    let again = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::NothingToDo, "{}", again.to_text());
    assert_eq!(fx.raw_tokens().await, tokens);
}
per_backend!(end_to_end);

/// Without --yes the run stops twice for rollouts (exit 4), and each
/// rerun continues; the dry run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_for_both_rollouts_and_resumes() {
    let fx = Fixture::new(Kind::Sqlite, "rollouts", 10).await.unwrap();
    let mut options = fx.options();
    options.yes = false;
    options.dry_run = true;
    let primary_before = std::fs::read(&fx.files.primary).unwrap();
    let previous_before = std::fs::read(&fx.files.previous).unwrap();
    let tokens = fx.raw_tokens().await;
    let secrets_before = std::fs::read(fx.secrets_dir.join("secrets.enc")).unwrap();
    let dry = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(dry.outcome, Outcome::DryRun, "{}", dry.to_text());
    assert_eq!(dry.exit_code, exit::DONE);
    assert_eq!(dry.values_opened, 4 + fx.credentials.len() as u64);
    assert_eq!(std::fs::read(&fx.files.primary).unwrap(), primary_before);
    assert_eq!(std::fs::read(&fx.files.previous).unwrap(), previous_before);
    assert_eq!(
        std::fs::read(fx.secrets_dir.join("secrets.enc")).unwrap(),
        secrets_before
    );
    assert_eq!(fx.raw_tokens().await, tokens);
    assert!(!fx.state_path().exists());

    options.dry_run = false;
    let first = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(
        first.outcome,
        Outcome::WaitingForRollout,
        "{}",
        first.to_text()
    );
    assert_eq!(first.exit_code, exit::WAITING_FOR_ROLLOUT);
    assert_eq!(first.phase, Some(Phase::Introduced));
    assert!(first.next_command.is_some());
    // Introduced: the old key still seals, the new one only opens.
    let ring = fx.keyring_from_files();
    assert_eq!(ring.primary_id(), fx.old.id());
    let new_id = first.new_key_id.unwrap();
    assert!(ring.key_ids().any(|(id, _)| id == new_id));
    assert_eq!(fx.raw_tokens().await, tokens, "introduce rewrapped rows");

    let second = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(
        second.outcome,
        Outcome::WaitingForRollout,
        "{}",
        second.to_text()
    );
    assert_eq!(second.phase, Some(Phase::Verified));
    let ring = fx.keyring_from_files();
    assert_eq!(ring.primary_id(), new_id);
    assert!(
        ring.contains(fx.old.id()),
        "retired before the second rollout"
    );

    let third = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(third.outcome, Outcome::Finished, "{}", third.to_text());
    let new = KeyFiles::new(&fx.files.primary, &fx.files.primary);
    let new_key = Key::parse(std::fs::read_to_string(&new.primary).unwrap().trim()).unwrap();
    fx.assert_all_under(&new_key).await;
    fx.assert_retired(&new_key);
}

#[test]
fn key_files_resolve_from_flags_and_variables() {
    // Keys only in the environment: no key files (rotation then plans
    // only, see the test below).
    let env = |name: &str| match name {
        "ENCRYPTION_KEY" => Some("x".repeat(43)),
        _ => None,
    };
    assert_eq!(KeyFiles::resolve(None, None, None, env).unwrap(), None);

    let env = |name: &str| match name {
        "ENCRYPTION_KEY_FILE" => Some("/k/encryption.key".to_owned()),
        "ENCRYPTION_PREVIOUS_KEYS" => Some("a,b".to_owned()),
        _ => None,
    };
    let err = KeyFiles::resolve(None, None, None, env).unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(
        err.to_string().contains("ENCRYPTION_PREVIOUS_KEYS_FILE"),
        "{err}"
    );

    let env = |name: &str| match name {
        "ENCRYPTION_KEY_FILE" => Some("/k/encryption.key".to_owned()),
        "ENCRYPTION_PREVIOUS_KEYS_FILE" => Some("/k/previous.keys".to_owned()),
        _ => None,
    };
    let files = KeyFiles::resolve(None, None, None, env).unwrap().unwrap();
    assert_eq!(
        files,
        KeyFiles::new("/k/encryption.key", "/k/previous.keys")
    );
    assert_eq!(files.retired, std::path::Path::new("/k/retired.keys"));
    let env = |name: &str| match name {
        "ENCRYPTION_KEY_FILE" => Some("/k/encryption.key".to_owned()),
        "ENCRYPTION_PREVIOUS_KEYS_FILE" => Some("/k/previous.keys".to_owned()),
        "ENCRYPTION_RETIRED_KEYS_FILE" => Some("/vault/retired.keys".to_owned()),
        _ => None,
    };
    let files = KeyFiles::resolve(None, None, None, env).unwrap().unwrap();
    assert_eq!(files.retired, std::path::Path::new("/vault/retired.keys"));
}

/// With keys in environment variables a dry run plans (and changes
/// nothing); any other run refuses with the commands that move the keys
/// to files, and those commands run as printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_the_environment_plan_and_say_how_to_move_to_files() {
    let fx = Fixture::new(Kind::Sqlite, "environment_keys", 4)
        .await
        .unwrap();
    let keyring = fx.keyring_from_files();
    let mut options = fx.options();
    options.keys = atom_rotation::Keys::Environment(keyring);
    options.dry_run = true;
    let before = fx.raw_tokens().await;
    let report = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::DryRun, "{}", report.to_text());
    assert!(report.values_opened > 0);
    assert_eq!(fx.raw_tokens().await, before);
    assert!(!fx.state_path().exists());

    options.dry_run = false;
    let err = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    let text = err.to_string();
    let commands = KeyFiles::move_to_files_instructions();
    assert!(text.contains(&commands), "{text}");
    assert_eq!(fx.raw_tokens().await, before);

    // The printed commands, run by a shell in a fresh folder with the keys
    // in its environment, make the files and point at them.
    let work = tempfile::tempdir().unwrap();
    let old = fx.old.expose_base64().to_string();
    let older = fx.older.expose_base64().to_string();
    let script = format!(
        "{commands} && echo \"$ENCRYPTION_KEY_FILE|$ENCRYPTION_PREVIOUS_KEYS_FILE|${{ENCRYPTION_KEY:-unset}}\""
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("ENCRYPTION_KEY", &old)
        .env("ENCRYPTION_PREVIOUS_KEYS", &older)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.trim_end().ends_with("|unset"), "{printed}");
    let keys = work.path().join("keys");
    let files = KeyFiles::new(keys.join("encryption.key"), keys.join("previous.keys"));
    let ring = crate::common::keyring_from_files(&files).unwrap();
    assert_eq!(ring.primary_id(), fx.old.id());
    assert!(ring.contains(fx.older.id()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = std::fs::metadata(&files.primary)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

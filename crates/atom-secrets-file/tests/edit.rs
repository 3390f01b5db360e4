//! get/set/unset/list, status, exec, shred-plaintext, auto-migration and
//! concurrent writers.

use std::process::Command;
use std::sync::Arc;

use atom_crypto::Protection;
use atom_crypto::{ExposeSecret as _, SecretString};
use atom_secrets_file::{
    AutoMigration, ENV_AUTO_MIGRATE, EditAction, Error, SecretValue, SecretsDir, ShredOptions,
    env_var_name,
};
use serde_json::json;

use crate::common::{keyring, snapshot, temp, write};

#[test]
fn get_set_unset_list() {
    let tmp = temp();
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    let report = dir
        .set(&ring, "TOKEN", &SecretString::from("t0p"))
        .expect("set");
    assert_eq!(report.action, EditAction::Added);
    assert_eq!(report.key_id, Some(ring.primary_id()));
    let report = dir
        .set(&ring, "TOKEN", &SecretString::from("t1p"))
        .expect("set");
    assert_eq!(report.action, EditAction::Replaced);
    let SecretValue::Secret(value) = dir.get(&ring, "TOKEN").expect("get") else {
        panic!("a string value");
    };
    assert_eq!(value.expose_secret(), "t1p");
    assert!(!format!("{:?}", dir.get(&ring, "TOKEN").expect("get")).contains("t1p"));
    assert!(matches!(
        dir.get(&ring, "NOPE"),
        Err(Error::NoSuchName { .. })
    ));
    assert!(matches!(dir.unset("NOPE"), Err(Error::NoSuchName { .. })));
    dir.unset("TOKEN").expect("unset");
    assert!(dir.list().expect("list").is_empty());
    assert!(matches!(
        dir.set(&ring, "", &SecretString::from("x")),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn edits_before_migration_are_refused() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1"}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    let err = dir
        .set(&ring, "b", &SecretString::from("2"))
        .expect_err("not migrated");
    assert!(matches!(err, Error::NotMigrated { .. }), "{err}");
    assert_eq!(dir.list().expect("list of secrets.json"), ["a"]);
}

#[test]
fn status_counts_by_kind_and_key() {
    let tmp = temp();
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    assert_eq!(dir.status(None).expect("status").secrets_file, None);
    write(
        tmp.path(),
        "secrets.json",
        r#"{"a": "1", "b": "2", "n": 3}"#,
    );
    let status = dir.status(None).expect("status");
    assert_eq!(status.secrets_file, Some(dir.plaintext_path()));
    assert_eq!((status.total_secrets, status.plaintext_secrets), (3, 2));

    dir.migrate(&ring).expect("migrate");
    let status = dir.status(Some(&ring)).expect("status");
    assert_eq!(status.secrets_file, Some(dir.encrypted_path()));
    assert_eq!(status.total_secrets, 3);
    assert_eq!(status.encrypted_secrets, 2);
    assert_eq!(status.plaintext_secrets, 0);
    assert_eq!(status.other_values, 1);
    assert_eq!(
        atom_crypto::KeyCount::of(&status.by_key, ring.primary_id()),
        2
    );
    let json = serde_json::to_value(&status).expect("serialize");
    for field in [
        "secrets_file",
        "total_secrets",
        "encrypted_secrets",
        "plaintext_secrets",
        "by_key",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
}

#[test]
fn env_names_follow_the_documented_rule() {
    assert_eq!(
        env_var_name("openai_api_key").expect("name"),
        "OPENAI_API_KEY"
    );
    assert_eq!(env_var_name("db.url-main").expect("name"), "DB_URL_MAIN");
    assert_eq!(env_var_name("2fa secret").expect("name"), "_2FA_SECRET");
    assert_eq!(env_var_name("clé").expect("name"), "CL_");
    assert!(env_var_name("").is_err());
}

#[cfg(unix)]
#[test]
fn exec_passes_secrets_in_the_environment_only() {
    let tmp = temp();
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.set(&ring, "api-key", &SecretString::from("s3cr3t value"))
        .expect("set");
    dir.set_value(&ring, "port", json!(8080)).expect("set");
    let before = snapshot(tmp.path());
    let env = dir.exec_env(&ring).expect("env");
    assert_eq!(env.variables().collect::<Vec<_>>(), ["API_KEY", "PORT"]);
    assert!(!format!("{env:?}").contains("s3cr3t"));
    let status = dir
        .exec(
            &ring,
            Command::new("sh").args([
                "-c",
                r#"test "$API_KEY" = "s3cr3t value" && test "$PORT" = 8080"#,
            ]),
        )
        .expect("run");
    assert!(status.success());
    assert_eq!(before, snapshot(tmp.path()), "nothing written");
}

#[test]
fn exec_refuses_colliding_names() {
    let tmp = temp();
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.set(&ring, "db-url", &SecretString::from("a"))
        .expect("set");
    dir.set(&ring, "DB_URL", &SecretString::from("b"))
        .expect("set");
    let err = dir.exec_env(&ring).expect_err("collision");
    assert!(matches!(err, Error::EnvCollision { .. }), "{err}");
    assert!(err.to_string().contains("DB_URL"));
}

#[test]
fn shred_removes_plaintext_only_when_covered() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1", "n": 2}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");

    // A name only in secrets.json blocks it.
    write(
        tmp.path(),
        "secrets.json",
        r#"{"a": "1", "n": 2, "new": "x"}"#,
    );
    let before = snapshot(tmp.path());
    let err = dir
        .shred_plaintext(&ring, ShredOptions::default())
        .expect_err("not covered");
    assert!(
        matches!(err, Error::PlaintextNotCovered { backup: false, .. }),
        "{err}"
    );
    assert_eq!(before, snapshot(tmp.path()));
    dir.migrate(&ring).expect("migrate the new name");

    // The backup of the first migration lacks nothing: removable.
    let report = dir
        .shred_plaintext(&ring, ShredOptions::default())
        .expect("shred");
    assert_eq!(report.removed.len(), 2);
    assert!(!dir.plaintext_path().exists() && !dir.backup_path().exists());
    assert!(
        report.other_plaintext_copies.len() == 1,
        "the kept older backup is reported"
    );
    assert!(dir.verify(&ring).expect("verify").is_ok());
}

#[test]
fn shred_with_a_stale_backup_needs_the_option() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1", "gone": "g"}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    dir.unset("gone").expect("unset");
    std::fs::remove_file(dir.plaintext_path()).expect("rm");
    let err = dir
        .shred_plaintext(&ring, ShredOptions::default())
        .expect_err("stale backup");
    assert!(
        matches!(err, Error::PlaintextNotCovered { backup: true, .. }),
        "{err}"
    );
    dir.shred_plaintext(&ring, ShredOptions::default().drop_stale_backup(true))
        .expect("shred");
    assert!(!dir.backup_path().exists());
}

#[test]
fn auto_migration_runs_once_and_can_be_turned_off() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1"}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    let on = Protection::Encrypted(ring.clone());
    let off = |name: &str| (name == ENV_AUTO_MIGRATE).then(|| "0".to_owned());
    assert!(matches!(
        dir.auto_migrate_with(&on, off).expect("off"),
        AutoMigration::Disabled
    ));
    assert!(!dir.encrypted_path().exists());
    let bad = |name: &str| (name == ENV_AUTO_MIGRATE).then(|| "maybe".to_owned());
    assert!(matches!(
        dir.auto_migrate_with(&on, bad),
        Err(Error::BadSetting { .. })
    ));
    assert!(matches!(
        dir.auto_migrate_with(&Protection::Plaintext, |_| None)
            .expect("no key"),
        AutoMigration::NoKey
    ));
    assert!(matches!(
        dir.auto_migrate_with(&on, |_| None).expect("migrate"),
        AutoMigration::Migrated(_)
    ));
    assert!(matches!(
        dir.auto_migrate_with(&on, |_| None).expect("again"),
        AutoMigration::AlreadyMigrated
    ));
}

#[test]
fn concurrent_writers_lose_nothing() {
    let tmp = temp();
    let ring = keyring();
    let dir = Arc::new(SecretsDir::new(tmp.path()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = Arc::clone(&dir);
            let ring = ring.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    dir.set(
                        &ring,
                        &format!("t{t}_{i}"),
                        &SecretString::from(format!("{t}/{i}")),
                    )
                    .expect("set");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    assert_eq!(dir.list().expect("list").len(), 100);
    assert!(dir.verify(&ring).expect("verify").is_ok());
}

#[cfg(unix)]
#[test]
fn shred_never_zeroes_through_a_link() {
    let tmp = temp();
    let elsewhere = temp();
    let target = elsewhere.path().join("real-secrets.json");
    std::fs::write(&target, r#"{"a": "1"}"#).expect("write");
    std::os::unix::fs::symlink(&target, tmp.path().join("secrets.json")).expect("symlink");
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    // A second name for the backup (as a kept copy would be).
    std::fs::hard_link(dir.backup_path(), tmp.path().join("backup-copy")).expect("link");

    let report = dir
        .shred_plaintext(&ring, ShredOptions::default())
        .expect("shred");
    assert_eq!(report.removed.len(), 2);
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        r#"{"a": "1"}"#,
        "the file behind the link is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("backup-copy")).expect("copy"),
        r#"{"a": "1"}"#,
        "the other name of the backup still reads"
    );
}

//! Read-only commands (status, verify, dry runs) leave the database byte
//! for byte as they found it, whatever the audit sink: no migration, no
//! adoption of the Python original's table, no switch to WAL, no audit
//! record written into it (issue #20).

use std::path::Path;

use sea_orm::{ConnectionTrait as _, Database};

use crate::common::{atom, atom_with_stdin, ok, text};

/// The database file and its WAL, as bytes (a missing WAL is empty).
fn snapshot(db: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (
        std::fs::read(db).unwrap(),
        std::fs::read(&wal).unwrap_or_default(),
    )
}

/// The read-only commands, as an operator types them.
const READ_ONLY: &[&[&str]] = &[
    &["credentials", "status"],
    &["credentials", "status", "--json"],
    &["credentials", "rewrap", "--dry-run"],
    &["status"],
    &["db", "status"],
    &["keys", "rotate", "--dry-run"],
    &["keys", "list"],
    &["audit", "verify"],
    &["audit", "tail"],
    &["secrets", "status"],
    &["secrets", "verify"],
];

fn env<'a>(d: &'a str, key: &'a str, sink: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ENCRYPTION_KEY", key),
        ("ATOM_AUDIT_SINK", sink),
        ("ATOM_DATA_DIR", d),
        (
            "ATOM_AUDIT_KEY",
            "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM=",
        ),
    ]
}

#[test]
fn read_only_commands_leave_a_migrated_database_unchanged_with_each_sink() {
    for sink in ["file", "database"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let data = d.join(".atom");
        let data = data.to_str().unwrap();
        let key = ok(&atom(d, &["key", "generate", "--quiet"], &[]));
        let key = key.trim();
        let env = env(data, key, sink);
        ok(&atom(d, &["db", "migrate"], &env));
        ok(&atom_with_stdin(
            d,
            &["credentials", "put", "alice", "slack"],
            &env,
            b"xoxb-read-only",
        ));
        let db = d.join(".atom").join("atom.db");
        let before = snapshot(&db);
        for args in READ_ONLY {
            let out = atom(d, args, &env);
            assert!(
                out.status.code().is_some_and(|c| c <= 3),
                "{sink}: atom {args:?}: {}",
                text(&out.stderr)
            );
            assert!(
                snapshot(&db) == before,
                "{sink}: atom {args:?} changed the database\n{}",
                text(&out.stderr)
            );
        }
        // And the database still works for a writer afterwards.
        ok(&atom(d, &["credentials", "get", "alice", "slack"], &env));
    }
}

/// The Python original's database: its `user_credentials` table, a
/// duplicate row, SQLite's default rollback journal.
fn legacy_database(path: &Path) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = Database::connect(url.as_str()).await.unwrap();
        for sql in [
            "CREATE TABLE user_credentials (id INTEGER PRIMARY KEY, user_id VARCHAR(255), provider VARCHAR(50), encrypted_token TEXT, created_at TIMESTAMP, updated_at TIMESTAMP)",
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, created_at, updated_at) VALUES ('u1', 'slack', 'gAAAAA-not-checked', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, created_at, updated_at) VALUES ('u1', 'slack', 'gAAAAA-duplicate', '2026-01-02 00:00:00', '2026-01-02 00:00:00')",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        db.close().await.unwrap();
    });
}

#[test]
fn a_status_command_on_the_python_originals_database_changes_nothing() {
    for sink in ["file", "database"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let db = d.join("legacy.db");
        legacy_database(&db);
        let before = std::fs::read(&db).unwrap();
        let data = d.join(".atom");
        let data = data.to_str().unwrap();
        let key = ok(&atom(d, &["key", "generate", "--quiet"], &[]));
        let url = format!("sqlite://{}", db.display());
        let mut env = env(data, key.trim(), sink);
        env.push(("DATABASE_URL", &url));
        for args in [
            &["credentials", "status"][..],
            &["credentials", "rewrap", "--dry-run"],
            &["status"],
            &["db", "status"],
            &["keys", "rotate", "--dry-run"],
        ] {
            let out = atom(d, args, &env);
            let err = text(&out.stderr);
            if args[0] != "db" {
                assert_eq!(out.status.code(), Some(1), "{sink}: atom {args:?}: {err}");
                assert!(
                    err.contains("atom db migrate"),
                    "{sink}: atom {args:?}: {err}"
                );
            }
            assert!(
                std::fs::read(&db).unwrap() == before,
                "{sink}: atom {args:?} changed the Python original's database"
            );
            let mut wal = db.as_os_str().to_owned();
            wal.push("-wal");
            assert!(
                !Path::new(&wal).exists(),
                "{sink}: atom {args:?} switched it to WAL"
            );
        }
    }
}

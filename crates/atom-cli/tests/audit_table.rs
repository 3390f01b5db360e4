//! `ATOM_AUDIT_SINK=database` through the `atom` binary on the SQLite
//! default: commands chain their events in the database's `audit_events`
//! table (no audit log file is written), `atom audit verify` checks the
//! table up to its stored head, and a removed or altered record is exit 3
//! naming the record.

use std::path::Path;

use crate::common::{atom, atom_with_stdin, ok, text};

#[test]
fn the_audit_trail_in_the_database_verifies_and_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = ok(&atom(d, &["key", "generate", "--quiet"], &[]));
    let audit_key = ok(&atom(d, &["key", "generate", "--quiet"], &[]));
    let env = [
        ("ENCRYPTION_KEY", key.trim()),
        ("ATOM_AUDIT_KEY", audit_key.trim()),
        ("ATOM_AUDIT_SINK", "database"),
        // Master-key sealing, so that the trail holds one event per
        // command (envelope mode adds data-key events).
        ("ATOM_ENVELOPE_ENCRYPTION", "0"),
    ];
    for (user, token) in [("alice", "tok-a"), ("bob", "tok-b")] {
        ok(&atom_with_stdin(
            d,
            &["credentials", "put", user, "github"],
            &env,
            token.as_bytes(),
        ));
    }
    assert_eq!(
        ok(&atom(d, &["credentials", "get", "alice", "github"], &env)),
        "tok-a\n"
    );
    ok(&atom(d, &["credentials", "delete", "bob", "github"], &env));
    assert!(
        !d.join(".atom/audit.jsonl").exists(),
        "no audit log file with the database sink"
    );

    let tail = ok(&atom(d, &["audit", "tail", "-n", "2"], &env));
    let tail: Vec<&str> = tail.lines().collect();
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert!(tail[0].contains("credential_accessed"), "{tail:?}");
    assert!(tail[1].contains("credential_deleted"), "{tail:?}");

    let verify = |env: &[(&str, &str)]| atom(d, &["audit", "verify", "--json"], env);
    let report: serde_json::Value = serde_json::from_str(&ok(&verify(&env))).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["events"], 4, "{report}");
    assert_eq!(report["head"]["next_seq"], 4, "{report}");

    // The record of the read is altered, then removed.
    let db = d.join(".atom/atom.db");
    sql(
        &db,
        "UPDATE audit_events SET record = replace(record, 'alice', 'mallory') WHERE seq = 2",
    );
    let out = atom(d, &["audit", "verify"], &env);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("at record 2") && text(&out.stdout).contains("modified"),
        "{}",
        text(&out.stdout)
    );
    sql(&db, "DELETE FROM audit_events WHERE seq = 2");
    let out = atom(d, &["audit", "verify"], &env);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("missing"),
        "{}",
        text(&out.stdout)
    );

    // Without the audit key the trail cannot be vouched for: exit 3 too.
    let out = atom(d, &["audit", "verify"], &[("ATOM_AUDIT_SINK", "database")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

/// Runs `sql` on the SQLite file `db` (as someone with write access to
/// the database would).
fn sql(db: &Path, sql: &str) {
    use sea_orm::ConnectionTrait as _;
    let url = format!("sqlite://{}?mode=rw", db.display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let conn = sea_orm::Database::connect(&url).await.unwrap();
        conn.execute_unprepared(sql).await.unwrap();
        conn.close().await.unwrap();
    });
}

// Adopting a table in the Python original's shape on this backend: no
// unique index, no key_id, nullable columns, duplicate rows. Included once
// per backend (the SQLite file written by Python itself is in
// python_legacy.rs).

use super::KIND;
use atom_credentials::{CredentialStore, RewrapOptions};
use atom_crypto::Key;

use crate::common::RawAccess as _;
use crate::common::{self, encrypted, provider, reveal, secret, user};

db_test!(adopts_a_legacy_table_without_losing_a_row, |db| {
    let key = Key::generate().unwrap();
    let ring = common::keyring(&key, &[]);
    let raw = db.raw().await;
    // SQLAlchemy's DDL for the seed's model on each backend.
    let timestamp = match db.kind {
        common::Kind::Postgres => "TIMESTAMP WITHOUT TIME ZONE",
        _ => "DATETIME",
    };
    let id = match db.kind {
        common::Kind::Postgres => "SERIAL NOT NULL",
        common::Kind::MySql => "INTEGER NOT NULL AUTO_INCREMENT",
        _ => "INTEGER NOT NULL",
    };
    raw.exec(
        &format!(
            "CREATE TABLE user_credentials (id {id}, user_id VARCHAR(255), provider VARCHAR(50), \
             encrypted_token TEXT, created_at {timestamp}, updated_at {timestamp}, PRIMARY KEY (id))"
        ),
        vec![],
    )
    .await
    .unwrap();
    let at = |m: u32| {
        chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_micro_opt(12, m, 0, 123_456)
            .unwrap()
    };
    let rows: Vec<(Option<&str>, &str, String, u32)> = vec![
        (Some("alice"), "github", "a-old".into(), 1),
        (Some("alice"), "github", "a-new".into(), 9),
        (Some("alice"), "github", "a-mid".into(), 5),
        (Some("bob"), "slack", "b-only".into(), 2),
        (None, "github", "orphan".into(), 3),
    ];
    for (u, p, t, m) in &rows {
        raw.exec(
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            vec![
                u.map(str::to_owned).into(),
                (*p).into(),
                ring.seal_legacy(t).as_str().into(),
                at(*m).into(),
                at(*m).into(),
            ],
        )
        .await
        .unwrap();
    }
    // Created with NULL timestamps, as rows inserted outside SQLAlchemy can be.
    raw.exec(
        "INSERT INTO user_credentials (user_id, provider, encrypted_token) VALUES ('carol', 'gitlab', ?)",
        vec![ring.seal_legacy("c-only").as_str().into()],
    )
    .await
    .unwrap();

    let sink = common::Sink::default();
    let (store, report) = CredentialStore::open(
        &db.config(),
        encrypted(&key, &[]),
        atom_audit::Auditor::new(sink.clone()),
    )
    .await
    .unwrap();
    assert!(report.adopted_existing_table, "{report}");
    assert_eq!(
        (
            report.rows_kept,
            report.duplicates_archived,
            report.incomplete_archived,
            report.timestamps_filled
        ),
        (3, 2, 1, 2),
        "{report}"
    );
    // What the adoption moved aside is on the audit record.
    assert_eq!(
        sink.actions(),
        [atom_audit::Action::CredentialTableAdopted {
            rows_kept: 3,
            duplicates_archived: 2,
            incomplete_archived: 1,
        }]
    );
    for (u, p, want) in [
        ("alice", "github", "a-new"),
        ("bob", "slack", "b-only"),
        ("carol", "gitlab", "c-only"),
    ] {
        assert_eq!(
            reveal(&store.get(&user(u), &provider(p)).await.unwrap()),
            want
        );
    }
    // (Compared to the second: the legacy MariaDB DATETIME kept no fraction.)
    let list = store.list(&user("alice")).await.unwrap();
    assert_eq!(list[0].created_at.timestamp(), at(9).and_utc().timestamp());
    // None lost: the archive holds the rest, and they still decrypt.
    let archived = raw
        .strings(
            "SELECT encrypted_token FROM user_credentials_archive ORDER BY original_id",
            vec![],
        )
        .await;
    let archived: Vec<String> = archived
        .iter()
        .map(|t| {
            reveal(
                &ring
                    .open(&atom_crypto::Context::credential("", ""), t)
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(archived, ["a-old", "a-mid", "orphan"]);
    // The index now holds, and the store works on the adopted table.
    store
        .put(&user("alice"), &provider("github"), &secret("a-newest"))
        .await
        .unwrap();
    let list = store.list(&user("alice")).await.unwrap();
    assert_eq!(list[0].created_at.timestamp(), at(9).and_utc().timestamp());
    let rot = store.rewrap(&RewrapOptions::new(), |_| {}).await.unwrap();
    assert_eq!(rot.done, 2);
    // Erasure reaches the archive too.
    let erased = store.erase_user(&user("alice")).await.unwrap();
    assert_eq!((erased.removed.len(), erased.archived_removed), (1, 2));
    // A second start finds nothing to do.
    store.close().await.unwrap();
    let (_, again) = CredentialStore::open(
        &db.config(),
        encrypted(&key, &[]),
        atom_audit::Auditor::new(sink.clone()),
    )
    .await
    .unwrap();
    assert!(again.applied.is_empty(), "{again}");
});

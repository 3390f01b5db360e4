//! Adoption of a SQLite database written by the Python original itself
//! (tests/data/python_legacy.db, made by make_python_legacy_db.py).

use std::path::Path;

use atom_credentials::{CredentialError, CredentialStore, DatabaseUrl, StoreConfig};
use atom_crypto::{Context, Key, Protection};

use crate::common::{self, provider, reveal, user};

fn fixture() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/python_legacy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_database_written_by_the_python_original_is_adopted() {
    let expected = fixture();
    let key = Key::parse(expected["key"].as_str().unwrap()).unwrap();
    let rows = expected["rows"].as_array().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("atom.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/python_legacy.db"),
        &db,
    )
    .unwrap();
    let url = format!("sqlite://{}", db.display());
    // The deployment has one plaintext row from its no-key days: read it
    // through the transition setting.
    let config =
        StoreConfig::new(DatabaseUrl::parse(&url).unwrap()).with_plaintext_transition(true);
    let sink = common::Sink::default();
    let protection = Protection::Encrypted(common::keyring(&key, &[]));
    let (store, report) = CredentialStore::open(
        &config,
        protection.clone(),
        atom_audit::Auditor::new(sink.clone()),
    )
    .await
    .unwrap();

    let fate = |f: &str| rows.iter().filter(|r| r["fate"] == f).count() as u64;
    assert!(report.adopted_existing_table, "{report}");
    assert_eq!(report.rows_kept, fate("kept"), "{report}");
    assert_eq!(report.duplicates_archived, fate("duplicate"), "{report}");
    assert_eq!(report.incomplete_archived, fate("incomplete"), "{report}");

    // Every kept token reads back through the store.
    for row in rows.iter().filter(|r| r["fate"] == "kept") {
        let (u, p) = (
            row["user_id"].as_str().unwrap(),
            row["provider"].as_str().unwrap(),
        );
        let token = store.get(&user(u), &provider(p)).await.unwrap();
        assert_eq!(reveal(&token), row["token"].as_str().unwrap(), "{u}/{p}");
    }
    // Every other token is in the archive, still decryptable: none lost.
    let raw = sea_orm::Database::connect(format!("{url}?mode=rw"))
        .await
        .unwrap();
    let raw = common::Raw(raw);
    let ring = common::keyring(&key, &[]);
    let mut archived: Vec<String> = raw
        .strings(
            "SELECT encrypted_token FROM user_credentials_archive",
            vec![],
        )
        .await
        .iter()
        .map(|t| reveal(&ring.open(&Context::credential("", ""), t).unwrap()))
        .collect();
    archived.sort();
    let mut want: Vec<String> = rows
        .iter()
        .filter(|r| r["fate"] != "kept")
        .map(|r| r["token"].as_str().unwrap().to_owned())
        .collect();
    want.sort();
    assert_eq!(archived, want);
    // Timestamps written by SQLAlchemy read back.
    let carol = store.list(&user("carol")).await.unwrap();
    assert_eq!(
        carol[0].updated_at.to_rfc3339(),
        "2024-03-01T13:00:00.123456+00:00"
    );

    // Without the transition setting the plaintext row is refused, naming
    // the command that fixes it; rewrap seals it.
    let (strict, _) = CredentialStore::open(
        &StoreConfig::new(DatabaseUrl::parse(&url).unwrap()),
        protection,
        atom_audit::Auditor::new(sink.clone()),
    )
    .await
    .unwrap();
    let err = strict
        .get(&user("dave"), &provider("gitlab"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CredentialError::PlaintextRefused { .. }),
        "{err}"
    );
    let progress = strict
        .rewrap(
            &atom_credentials::RewrapOptions::new().seal_plaintext(true),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((progress.done, progress.failed), (fate("kept"), 0));
    let status = strict.status().await.unwrap();
    assert_eq!(
        (status.needs_rewrap, status.legacy, status.plaintext),
        (0, 0, 0)
    );
    assert_eq!(
        reveal(
            &strict
                .get(&user("dave"), &provider("gitlab"))
                .await
                .unwrap()
        ),
        "glpat-dave-plain"
    );
}

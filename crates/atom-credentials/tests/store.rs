// Store behaviour, included once per backend (see tests.rs): put, get,
// list, delete, erase_user, isolation, the unique index, fail-closed audit,
// plaintext rows.

use super::KIND;

use std::sync::Arc;

use atom_audit::{Action, Outcome, Subject};
use atom_credentials::{CredentialError, CredentialStore};
use atom_crypto::OpenFailure;
use atom_crypto::{FixedClock, Key, Protection};

use crate::common::RawAccess as _;
use crate::common::{self, encrypted, open, provider, reveal, secret, user};

db_test!(put_then_get_round_trips_and_is_audited, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open(&db, encrypted(&key, &[])).await;
    store
        .put(&user("alice"), &provider("github"), &secret("gho_123"))
        .await
        .unwrap();
    let token = store
        .get(&user("alice"), &provider("github"))
        .await
        .unwrap();
    assert_eq!(reveal(&token), "gho_123");
    let stored = db.raw().await.token("alice", "github").await;
    assert!(
        stored.starts_with("atom:v1:"),
        "stored sealed: {}",
        &stored[..10]
    );
    assert!(!stored.contains("gho_123"));
    let actions = sink.actions();
    assert_eq!(
        actions,
        vec![
            Action::CredentialStored {
                user: "alice".into(),
                provider: "github".into(),
                key_id: Some(key.id()),
            },
            Action::CredentialAccessed {
                user: "alice".into(),
                provider: "github".into(),
                key_id: Some(key.id()),
            },
        ]
    );
});

db_test!(put_upserts_and_keeps_created_at, |db| {
    let key = Key::generate().unwrap();
    let clock = Arc::new(FixedClock::at(1_700_000_000));
    let (store, _sink) = open(&db, encrypted(&key, &[])).await;
    let store = store.with_clock(clock.clone());
    let (alice, github) = (user("alice"), provider("github"));
    store.put(&alice, &github, &secret("first")).await.unwrap();
    clock.advance(3600);
    store.put(&alice, &github, &secret("second")).await.unwrap();
    assert_eq!(reveal(&store.get(&alice, &github).await.unwrap()), "second");
    let list = store.list(&alice).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].created_at.timestamp(), 1_700_000_000);
    assert_eq!(list[0].updated_at.timestamp(), 1_700_003_600);
    let raw = db.raw().await;
    assert_eq!(
        raw.count(
            "SELECT COUNT(*) FROM user_credentials WHERE user_id = ?",
            vec!["alice".into()]
        )
        .await,
        1
    );
});

db_test!(
    another_users_ciphertext_does_not_open_and_is_audited,
    |db| {
        let key = Key::generate().unwrap();
        let (store, sink) = open(&db, encrypted(&key, &[])).await;
        store
            .put(&user("alice"), &provider("github"), &secret("alice-secret"))
            .await
            .unwrap();
        store
            .put(&user("bob"), &provider("github"), &secret("bob-secret"))
            .await
            .unwrap();
        store
            .put(&user("alice"), &provider("slack"), &secret("alice-slack"))
            .await
            .unwrap();
        let raw = db.raw().await;
        let alices = raw.token("alice", "github").await;
        // Copy alice's ciphertext into bob's row, then into alice's own row of
        // another provider: neither opens.
        for (u, p) in [("bob", "github"), ("alice", "slack")] {
            raw.exec(
            "UPDATE user_credentials SET encrypted_token = ? WHERE user_id = ? AND provider = ?",
            vec![alices.clone().into(), u.into(), p.into()],
        )
        .await
        .unwrap();
            let err = store.get(&user(u), &provider(p)).await.unwrap_err();
            assert!(
                matches!(err, CredentialError::DecryptionFailed { .. }),
                "{err}"
            );
            assert!(!err.to_string().contains("alice-secret"));
            let last = sink.events().pop().unwrap();
            assert_eq!(last.outcome, Outcome::Failure);
            assert_eq!(
                last.action,
                Action::DecryptionFailed {
                    subject: Subject::Credential {
                        user: u.into(),
                        provider: p.into(),
                    },
                    key_id: Some(key.id()),
                    reason: OpenFailure::NotAuthentic,
                }
            );
        }
        // The owner still reads it.
        let token = store
            .get(&user("alice"), &provider("github"))
            .await
            .unwrap();
        assert_eq!(reveal(&token), "alice-secret");
    }
);

db_test!(list_gives_metadata_never_tokens, |db| {
    let key = Key::generate().unwrap();
    let (store, _sink) = open(&db, encrypted(&key, &[])).await;
    let alice = user("alice");
    for (p, t) in [("slack", "xoxb-SECRET-1"), ("github", "gho_SECRET-2")] {
        store.put(&alice, &provider(p), &secret(t)).await.unwrap();
    }
    store
        .put(&user("bob"), &provider("gitlab"), &secret("glpat-SECRET-3"))
        .await
        .unwrap();
    let list = store.list(&alice).await.unwrap();
    let providers: Vec<&str> = list.iter().map(|i| i.provider.as_str()).collect();
    assert_eq!(providers, ["github", "slack"]);
    assert!(list.iter().all(|i| i.key_id == Some(key.id())));
    let shown = format!("{list:?} {store:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(!shown.contains("atom:v1:"), "{shown}");
    assert!(store.list(&user("nobody")).await.unwrap().is_empty());
});

db_test!(list_and_status_are_audited_and_fail_closed, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open(&db, encrypted(&key, &[])).await;
    let alice = user("alice");
    store
        .put(&alice, &provider("slack"), &secret("xoxb-1"))
        .await
        .unwrap();
    store
        .put(&alice, &provider("github"), &secret("gho-2"))
        .await
        .unwrap();
    let before = sink.events().len();
    assert_eq!(store.list(&alice).await.unwrap().len(), 2);
    let status = store.status().await.unwrap();
    assert_eq!((status.total, status.needs_rewrap), (2, 0));
    assert_eq!(
        sink.actions()[before..],
        [
            atom_audit::Action::CredentialsListed {
                user: "alice".into(),
                count: 2,
            },
            atom_audit::Action::CredentialStatusRead {
                total: 2,
                needs_rewrap: 0,
            },
        ]
    );
    // No record, no answer.
    sink.fail(true);
    assert!(matches!(
        store.list(&alice).await,
        Err(CredentialError::AuditFailed(_))
    ));
    assert!(matches!(
        store.status().await,
        Err(CredentialError::AuditFailed(_))
    ));
});

db_test!(open_existing_changes_nothing, |db| {
    let key = Key::generate().unwrap();
    let sink = common::Sink::default();
    let config = db.config();
    let open_existing = || {
        CredentialStore::open_existing(
            &config,
            encrypted(&key, &[]),
            atom_audit::Auditor::new(sink.clone()),
        )
    };
    if db.kind == common::Kind::Sqlite {
        // No database file: refused, and the file is not created.
        let path = db.url.trim_start_matches("sqlite://").to_owned();
        let err = open_existing().await.unwrap_err();
        assert!(
            matches!(err, CredentialError::DatabaseUnavailable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!std::path::Path::new(&path).exists());
        // An empty file is an empty SQLite database.
        std::fs::write(&path, b"").unwrap();
    }
    // Not migrated yet: refused, and no table is created (not even the
    // migrations' own).
    let err = open_existing().await.unwrap_err();
    assert!(matches!(err, CredentialError::NotMigrated { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    let raw = db.raw().await;
    let tables = raw
        .count(
            match db.kind {
                common::Kind::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%credential%'",
                common::Kind::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE '%credential%' AND table_schema = current_schema()",
                _ => "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE '%credential%' AND table_schema = DATABASE()",
            },
            vec![],
        )
        .await;
    assert_eq!(tables, 0);
    // Once migrated, it opens and reads.
    let (store, _) = open(&db, encrypted(&key, &[])).await;
    store
        .put(&user("alice"), &provider("slack"), &secret("xoxb-1"))
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = open_existing().await.unwrap();
    assert_eq!(
        reveal(&store.get(&user("alice"), &provider("slack")).await.unwrap()),
        "xoxb-1"
    );
});

db_test!(delete_removes_one_credential, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open(&db, encrypted(&key, &[])).await;
    let (alice, github, slack) = (user("alice"), provider("github"), provider("slack"));
    store.put(&alice, &github, &secret("a")).await.unwrap();
    store.put(&alice, &slack, &secret("b")).await.unwrap();
    assert!(store.delete(&alice, &github).await.unwrap());
    assert!(!store.delete(&alice, &github).await.unwrap());
    let err = store.get(&alice, &github).await.unwrap_err();
    assert!(matches!(err, CredentialError::NotFound { .. }), "{err}");
    assert_eq!(reveal(&store.get(&alice, &slack).await.unwrap()), "b");
    let events = sink.events();
    let deletes: Vec<Outcome> = events
        .iter()
        .filter(|e| e.name() == "credential_deleted")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(deletes, [Outcome::Success, Outcome::Failure]);
    // The failed read of the deleted credential is on record too.
    assert!(
        events
            .iter()
            .any(|e| e.name() == "credential_accessed" && e.outcome == Outcome::Failure)
    );
});

db_test!(erase_user_removes_everything_of_one_user, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open(&db, encrypted(&key, &[])).await;
    let alice = user("alice");
    for p in ["github", "slack", "gitlab"] {
        store.put(&alice, &provider(p), &secret(p)).await.unwrap();
    }
    store
        .put(&user("bob"), &provider("github"), &secret("bobs"))
        .await
        .unwrap();
    let report = store.erase_user(&alice).await.unwrap();
    let removed: Vec<&str> = report.removed.iter().map(|i| i.provider.as_str()).collect();
    assert_eq!(removed, ["github", "gitlab", "slack"]);
    assert_eq!(report.user, alice);
    assert!(store.list(&alice).await.unwrap().is_empty());
    assert_eq!(
        reveal(&store.get(&user("bob"), &provider("github")).await.unwrap()),
        "bobs"
    );
    assert!(sink.actions().contains(&Action::UserCredentialsErased {
        user: "alice".into(),
        count: 3
    }));
    let again = store.erase_user(&alice).await.unwrap();
    assert!(again.removed.is_empty());
});

db_test!(unique_index_refuses_a_second_row, |db| {
    let key = Key::generate().unwrap();
    let (store, _sink) = open(&db, encrypted(&key, &[])).await;
    store
        .put(&user("alice"), &provider("github"), &secret("a"))
        .await
        .unwrap();
    let raw = db.raw().await;
    let err = raw
        .exec(
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?)",
            vec![
                "alice".into(),
                "github".into(),
                "x".into(),
                chrono::Utc::now().naive_utc().into(),
                chrono::Utc::now().naive_utc().into(),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ),
        "{err}"
    );
    // Identifiers are compared byte for byte (MariaDB's default collation
    // would make these one user).
    store
        .put(&user("Alice"), &provider("github"), &secret("b"))
        .await
        .unwrap();
    assert_eq!(
        reveal(
            &store
                .get(&user("alice"), &provider("github"))
                .await
                .unwrap()
        ),
        "a"
    );
    assert_eq!(
        reveal(
            &store
                .get(&user("Alice"), &provider("github"))
                .await
                .unwrap()
        ),
        "b"
    );
});

db_test!(a_failing_audit_sink_refuses_the_operation, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open(&db, encrypted(&key, &[])).await;
    let (alice, github) = (user("alice"), provider("github"));
    store.put(&alice, &github, &secret("kept")).await.unwrap();
    sink.fail(true);
    let err = store
        .put(&alice, &github, &secret("not-written"))
        .await
        .unwrap_err();
    assert!(matches!(err, CredentialError::AuditFailed(_)), "{err}");
    let err = store.get(&alice, &github).await.unwrap_err();
    assert!(matches!(err, CredentialError::AuditFailed(_)), "{err}");
    assert!(matches!(
        store.delete(&alice, &github).await.unwrap_err(),
        CredentialError::AuditFailed(_)
    ));
    assert!(matches!(
        store.erase_user(&alice).await.unwrap_err(),
        CredentialError::AuditFailed(_)
    ));
    sink.fail(false);
    // Nothing was written, deleted or erased while the sink failed.
    assert_eq!(reveal(&store.get(&alice, &github).await.unwrap()), "kept");
});

db_test!(plaintext_rows_need_the_transition_setting, |db| {
    let (plain_store, _) = open(&db, Protection::Plaintext).await;
    let (dave, gitlab) = (user("dave"), provider("gitlab"));
    plain_store
        .put(&dave, &gitlab, &secret("glpat-plain"))
        .await
        .unwrap();
    assert_eq!(db.raw().await.token("dave", "gitlab").await, "glpat-plain");
    assert_eq!(
        reveal(&plain_store.get(&dave, &gitlab).await.unwrap()),
        "glpat-plain"
    );
    // Plaintext mode refuses a token it could not tell from ciphertext.
    let looks_sealed = Key::generate().unwrap();
    let fernet = common::keyring(&looks_sealed, &[]).seal_legacy("x");
    assert!(matches!(
        plain_store
            .put(&dave, &provider("other"), &secret(fernet.as_str()))
            .await
            .unwrap_err(),
        CredentialError::InvalidInput(_)
    ));

    let key = Key::generate().unwrap();
    let (store, sink) = open(&db, encrypted(&key, &[])).await;
    let err = store.get(&dave, &gitlab).await.unwrap_err();
    assert!(
        matches!(err, CredentialError::PlaintextRefused { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("asked to seal plaintext"), "{err}");
    assert!(matches!(
        sink.actions().pop(),
        Some(Action::DecryptionFailed {
            reason: OpenFailure::NotSealed,
            ..
        })
    ));
    let config = db.config().with_plaintext_transition(true);
    let (transition, _) = CredentialStore::open(
        &config,
        encrypted(&key, &[]),
        atom_audit::Auditor::new(sink.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        reveal(&transition.get(&dave, &gitlab).await.unwrap()),
        "glpat-plain"
    );
    // A key-less store cannot read sealed rows.
    store
        .put(&dave, &gitlab, &secret("sealed-now"))
        .await
        .unwrap();
    assert!(matches!(
        plain_store.get(&dave, &gitlab).await.unwrap_err(),
        CredentialError::KeyRequired { .. }
    ));
});

db_test!(migrations_are_idempotent, |db| {
    let key = Key::generate().unwrap();
    let sink = common::Sink::default();
    let auditor = || atom_audit::Auditor::new(sink.clone());
    let (store, first) = CredentialStore::open(&db.config(), encrypted(&key, &[]), auditor())
        .await
        .unwrap();
    assert_eq!(first.applied.len(), 7, "{first}");
    assert!(!first.adopted_existing_table);
    store
        .put(&user("alice"), &provider("github"), &secret("t"))
        .await
        .unwrap();
    store.close().await.unwrap();
    let (store, second) = CredentialStore::open(&db.config(), encrypted(&key, &[]), auditor())
        .await
        .unwrap();
    assert!(second.applied.is_empty(), "{second}");
    assert_eq!(
        reveal(
            &store
                .get(&user("alice"), &provider("github"))
                .await
                .unwrap()
        ),
        "t"
    );
});

db_test!(concurrent_first_starts_all_open, |db| {
    // Several processes starting at once on a new database: each runs the
    // migrations; all must open, and the schema must come out whole.
    let key = Key::generate().unwrap();
    let opens = (0..4).map(|_| {
        let config = db.config();
        let protection = encrypted(&key, &[]);
        tokio::spawn(async move {
            CredentialStore::open(
                &config,
                protection,
                atom_audit::Auditor::new(common::Sink::default()),
            )
            .await
        })
    });
    let mut stores = Vec::new();
    for open in opens.collect::<Vec<_>>() {
        let (store, _) = open.await.unwrap().unwrap();
        stores.push(store);
    }
    let alice = user("alice");
    stores[0]
        .put(&alice, &provider("slack"), &secret("xoxb-1"))
        .await
        .unwrap();
    assert_eq!(
        reveal(&stores[3].get(&alice, &provider("slack")).await.unwrap()),
        "xoxb-1"
    );
    // The unique index exists: an upsert from another store replaces.
    stores[1]
        .put(&alice, &provider("slack"), &secret("xoxb-2"))
        .await
        .unwrap();
    assert_eq!(stores[2].list(&alice).await.unwrap().len(), 1);
});

// Envelope encryption (issue #13), included once per backend (see
// tests.rs): per-user data keys, context binding of enveloped rows, master
// rotation in O(users), one user's key rotation, crypto-shredding of a
// restored backup with the key store in another database, fail-closed
// auditing of data keys.

use super::KIND;

use atom_audit::{Action, Auditor};
use atom_credentials::{CredentialError, CredentialStore, RewrapOptions, StoreConfig};
use atom_crypto::{Key, OpenFailure, Protection};

use crate::common::RawAccess as _;
use crate::common::{Kind, Sink, TestDb, encrypted, provider, reveal, secret, user};

/// Opens a store with envelope encryption on `config`.
async fn open_with(config: StoreConfig, protection: Protection) -> (CredentialStore, Sink) {
    let sink = Sink::default();
    let (store, _) = CredentialStore::open(
        &config.with_envelope(true),
        protection,
        Auditor::new(sink.clone()),
    )
    .await
    .unwrap();
    (store, sink)
}

/// Stores `token(user, provider)` for every user and provider.
async fn put_each(
    store: &CredentialStore,
    users: &[&str],
    providers: &[&str],
    token: impl Fn(&str, &str) -> String,
) {
    for u in users {
        for p in providers {
            store
                .put(&user(u), &provider(p), &secret(&token(u, p)))
                .await
                .unwrap();
        }
    }
}

/// The data key id a v2 token names.
fn data_key_of(token: &str) -> String {
    assert!(token.starts_with("atom:v2:"), "enveloped: {}", &token[..8]);
    token["atom:v2:".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_owned()
}

db_test!(
    enveloped_values_round_trip_bound_to_their_user_and_provider,
    |db| {
        let key = Key::generate().unwrap();
        let (store, sink) = open_with(db.config(), encrypted(&key, &[])).await;
        let (alice, bob, github) = (user("alice"), user("bob"), provider("github"));
        store
            .put(&alice, &github, &secret("gho_alice"))
            .await
            .unwrap();
        store
            .put(&alice, &provider("google"), &secret("ya29_alice"))
            .await
            .unwrap();
        store.put(&bob, &github, &secret("gho_bob")).await.unwrap();

        let raw = db.raw().await;
        let alice_token = raw.token("alice", "github").await;
        let bob_token = raw.token("bob", "github").await;
        assert!(!alice_token.contains("gho_alice"));
        // One data key per user, shared by the user's providers.
        assert_eq!(
            data_key_of(&alice_token),
            data_key_of(&raw.token("alice", "google").await)
        );
        assert_ne!(data_key_of(&alice_token), data_key_of(&bob_token));
        assert_eq!(
        raw.count("SELECT COUNT(*) FROM user_credentials WHERE key_id IS NULL AND data_key_id IS NOT NULL", vec![]).await,
        3
    );
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM atom_user_keys", vec![])
                .await,
            2
        );
        let created = sink
            .actions()
            .into_iter()
            .filter(|a| matches!(a, Action::DataKeyCreated { kek_id, .. } if *kek_id == key.id()))
            .count();
        assert_eq!(created, 2, "{:?}", sink.names());

        assert_eq!(
            reveal(&store.get(&alice, &github).await.unwrap()),
            "gho_alice"
        );
        assert_eq!(reveal(&store.get(&bob, &github).await.unwrap()), "gho_bob");

        // Swapped between users: bob's row names bob's data key, which alice's
        // value was not sealed under, and the reverse.
        raw.exec(
            "UPDATE user_credentials SET encrypted_token = ? WHERE user_id = 'bob'",
            vec![alice_token.clone().into()],
        )
        .await
        .unwrap();
        let err = store.get(&bob, &github).await.unwrap_err();
        assert!(
            matches!(
                err,
                CredentialError::DataKey {
                    reason: OpenFailure::UnknownKey,
                    ..
                }
            ),
            "{err}"
        );
        // Swapped between providers of one user (same data key): the context
        // still differs, so it does not authenticate.
        raw.exec(
        "UPDATE user_credentials SET encrypted_token = ? WHERE user_id = 'alice' AND provider = 'google'",
        vec![alice_token.into()],
    )
    .await
    .unwrap();
        let err = store.get(&alice, &provider("google")).await.unwrap_err();
        assert!(
            matches!(err, CredentialError::DecryptionFailed { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("gho_alice"));
        let refused = sink
            .names()
            .iter()
            .filter(|n| **n == "decryption_failed")
            .count();
        assert_eq!(refused, 2);
    }
);

db_test!(the_first_unwrap_in_a_process_is_audited_once, |db| {
    let key = Key::generate().unwrap();
    let (writer, _) = open_with(db.config(), encrypted(&key, &[])).await;
    writer
        .put(&user("alice"), &provider("github"), &secret("t"))
        .await
        .unwrap();
    // Another process: its cache is empty.
    let (reader, sink) = open_with(db.config(), encrypted(&key, &[])).await;
    for _ in 0..3 {
        reader
            .get(&user("alice"), &provider("github"))
            .await
            .unwrap();
    }
    let names = sink.names();
    assert_eq!(
        names.iter().filter(|n| **n == "data_key_unwrapped").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "credential_accessed")
            .count(),
        3
    );
});

db_test!(
    master_rotation_rewraps_data_keys_and_leaves_rows_alone,
    |db| {
        let old = Key::generate().unwrap();
        let new = Key::generate().unwrap();
        let (store, _) = open_with(db.config(), encrypted(&old, &[])).await;
        put_each(
            &store,
            &["u1", "u2", "u3"],
            &["github", "google"],
            |u, p| format!("{u}-{p}"),
        )
        .await;
        let raw = db.raw().await;
        let before = raw
            .strings(
                "SELECT encrypted_token FROM user_credentials ORDER BY id",
                vec![],
            )
            .await;

        let store = store.with_protection(encrypted(&new, &[&old]));
        let status = store.status().await.unwrap();
        assert_eq!((status.enveloped, status.needs_rewrap), (6, 0));
        assert_eq!(status.data_keys_need_rewrap, 3);
        // What `atom keys destroy` asks before destroying a key: the old key
        // still wraps every data key, though no row names it.
        let usage = store.rows_under_key(&old).await.unwrap();
        assert_eq!((usage.rows, usage.data_keys, usage.total()), (0, 3, 3));
        let progress = store
            .rewrap_data_keys(
                std::num::NonZeroU32::new(2).unwrap(),
                std::num::NonZeroU32::new(2).unwrap(),
                false,
            )
            .await
            .unwrap();
        assert_eq!((progress.done, progress.failed), (3, 0));
        let after = raw
            .strings(
                "SELECT encrypted_token FROM user_credentials ORDER BY id",
                vec![],
            )
            .await;
        assert_eq!(before, after, "credentials are not touched");
        assert_eq!(
            raw.strings("SELECT DISTINCT kek_id FROM atom_user_keys", vec![])
                .await,
            vec![new.id().to_string()]
        );
        // The old master key is no longer needed: a process with the new key
        // alone opens everything.
        let (fresh, _) = open_with(db.config(), encrypted(&new, &[])).await;
        assert_eq!(
            reveal(&fresh.get(&user("u2"), &provider("google")).await.unwrap()),
            "u2-google"
        );
        let usage = fresh.rows_under_key(&old).await.unwrap();
        assert_eq!(usage.total(), 0);
        assert_eq!(fresh.rows_under_key(&new).await.unwrap().data_keys, 3);
        // A second run has nothing to do.
        let again = store
            .rewrap_data_keys(
                std::num::NonZeroU32::new(2).unwrap(),
                std::num::NonZeroU32::new(2).unwrap(),
                false,
            )
            .await
            .unwrap();
        assert_eq!(again.done, 0);
    }
);

db_test!(rewrap_upgrades_sealed_rows_to_the_enveloped_form, |db| {
    let key = Key::generate().unwrap();
    let sink = Sink::default();
    let (plain_v1, _) = CredentialStore::open(
        &db.config(),
        encrypted(&key, &[]),
        Auditor::new(sink.clone()),
    )
    .await
    .unwrap();
    put_each(
        &plain_v1,
        &["u1", "u2"],
        &["github", "google", "slack"],
        |u, p| format!("{u}/{p}"),
    )
    .await;
    let raw = db.raw().await;
    assert!(raw.token("u1", "github").await.starts_with("atom:v1:"));

    let (store, _) = open_with(db.config(), encrypted(&key, &[])).await;
    assert_eq!(store.status().await.unwrap().needs_rewrap, 6);
    let progress = store.rewrap(&RewrapOptions::new(), |_| {}).await.unwrap();
    assert_eq!((progress.done, progress.failed), (6, 0));
    let status = store.status().await.unwrap();
    assert_eq!((status.enveloped, status.needs_rewrap), (6, 0));
    assert_eq!(status.data_keys.total, 2);
    for u in ["u1", "u2"] {
        for p in ["github", "google", "slack"] {
            assert!(raw.token(u, p).await.starts_with("atom:v2:"));
            assert_eq!(
                reveal(&store.get(&user(u), &provider(p)).await.unwrap()),
                format!("{u}/{p}")
            );
        }
    }
    // A store with envelope encryption off still reads them.
    assert_eq!(
        reveal(&plain_v1.get(&user("u1"), &provider("slack")).await.unwrap()),
        "u1/slack"
    );
});

db_test!(rotating_one_users_data_key_reseals_only_that_user, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open_with(db.config(), encrypted(&key, &[])).await;
    for (u, p) in [("alice", "github"), ("alice", "google"), ("bob", "github")] {
        store
            .put(&user(u), &provider(p), &secret(&format!("{u}:{p}")))
            .await
            .unwrap();
    }
    let raw = db.raw().await;
    let alice_before = raw.token("alice", "github").await;
    let bob_before = raw.token("bob", "github").await;

    let rotation = store.rotate_user_key(&user("alice")).await.unwrap();
    assert_eq!((rotation.resealed, rotation.destroyed), (2, 1));
    let alice_after = raw.token("alice", "github").await;
    assert_ne!(data_key_of(&alice_before), data_key_of(&alice_after));
    assert_eq!(data_key_of(&alice_after), rotation.key_id.to_string());
    assert_eq!(raw.token("bob", "github").await, bob_before);
    assert_eq!(
        raw.count(
            "SELECT COUNT(*) FROM atom_user_keys WHERE user_id = 'alice'",
            vec![]
        )
        .await,
        1
    );
    for (u, p) in [("alice", "github"), ("alice", "google"), ("bob", "github")] {
        assert_eq!(
            reveal(&store.get(&user(u), &provider(p)).await.unwrap()),
            format!("{u}:{p}")
        );
    }
    // The old key is gone: a copy of the old row no longer opens.
    raw.exec(
        "UPDATE user_credentials SET encrypted_token = ? WHERE user_id = 'alice' AND provider = 'github'",
        vec![alice_before.into()],
    )
    .await
    .unwrap();
    assert!(
        store
            .get(&user("alice"), &provider("github"))
            .await
            .is_err()
    );
    let names = sink.names();
    for name in ["data_key_created", "data_key_rotated", "data_key_destroyed"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // New writes seal under the new key.
    store
        .put(&user("alice"), &provider("slack"), &secret("x"))
        .await
        .unwrap();
    assert_eq!(
        data_key_of(&raw.token("alice", "slack").await),
        rotation.key_id.to_string()
    );
});

db_test!(erasure_destroys_the_data_key_in_the_same_operation, |db| {
    let key = Key::generate().unwrap();
    let (store, sink) = open_with(db.config(), encrypted(&key, &[])).await;
    store
        .put(&user("alice"), &provider("github"), &secret("a"))
        .await
        .unwrap();
    store
        .put(&user("bob"), &provider("github"), &secret("b"))
        .await
        .unwrap();
    let report = store.erase_user(&user("alice")).await.unwrap();
    assert_eq!((report.removed.len(), report.data_keys_destroyed), (1, 1));
    let raw = db.raw().await;
    assert_eq!(
        raw.count(
            "SELECT COUNT(*) FROM atom_user_keys WHERE user_id = 'alice'",
            vec![]
        )
        .await,
        0
    );
    let names = sink.names();
    let destroyed = names
        .iter()
        .position(|n| *n == "data_key_destroyed")
        .unwrap();
    let erased = names
        .iter()
        .position(|n| *n == "user_credentials_erased")
        .unwrap();
    assert!(destroyed < erased, "{names:?}");
    assert_eq!(
        reveal(&store.get(&user("bob"), &provider("github")).await.unwrap()),
        "b"
    );
});

db_test!(
    a_data_key_is_not_made_when_its_creation_cannot_be_audited,
    |db| {
        let key = Key::generate().unwrap();
        let (store, sink) = open_with(db.config(), encrypted(&key, &[])).await;
        sink.fail(true);
        store
            .put(&user("alice"), &provider("github"), &secret("a"))
            .await
            .unwrap_err();
        sink.fail(false);
        let raw = db.raw().await;
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM atom_user_keys", vec![])
                .await,
            0
        );
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM user_credentials", vec![])
                .await,
            0
        );
    }
);

db_test!(
    erasing_a_user_shreds_their_rows_in_a_restored_backup,
    |db| {
        // The key store in a database of its own; the "backup" is a copy of
        // the credential table taken before the erasure and put back after it.
        let Some(keys) = TestDb::new(KIND, "shred_keys").await else {
            return;
        };
        let key = Key::generate().unwrap();
        let config = db.config().with_keystore(keys.config().database_url);
        let (store, sink) = open_with(config.clone(), encrypted(&key, &[])).await;
        put_each(
            &store,
            &["alice", "bob", "carol"],
            &["github", "google"],
            |u, p| format!("{u}.{p}"),
        )
        .await;
        let raw = db.raw().await;
        // No key material in the credentials database.
        assert!(
            raw.count(
                "SELECT COUNT(*) FROM user_credentials WHERE data_key_id IS NOT NULL",
                vec![]
            )
            .await
                == 6
        );
        let has_keys_table = raw
            .exec("SELECT 1 FROM atom_user_keys", vec![])
            .await
            .is_ok();
        assert!(!has_keys_table, "the key store is the other database");
        // SQLite: a copy of the database file (VACUUM INTO, consistent under
        // WAL). Servers: a copy of the table in the same database.
        let file = db.config().database_url.sqlite_file();
        let backup = file.as_ref().map(|f| f.with_extension("backup"));
        match &backup {
            Some(backup) => {
                raw.exec(&format!("VACUUM INTO '{}'", backup.display()), vec![])
                    .await
                    .unwrap();
            }
            None => {
                raw.exec(
                    "CREATE TABLE backup_credentials AS SELECT * FROM user_credentials",
                    vec![],
                )
                .await
                .unwrap();
            }
        }

        let report = store.erase_user(&user("alice")).await.unwrap();
        assert_eq!(report.data_keys_destroyed, 1);
        assert!(sink.names().contains(&"data_key_destroyed"));

        // Restore the backup.
        store.close().await.unwrap();
        match (&file, &backup) {
            (Some(file), Some(backup)) => {
                raw.0.clone().close().await.unwrap();
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
                std::fs::copy(backup, file).unwrap();
            }
            _ => {
                raw.exec("DELETE FROM user_credentials", vec![])
                    .await
                    .unwrap();
                raw.exec(
                    "INSERT INTO user_credentials SELECT * FROM backup_credentials",
                    vec![],
                )
                .await
                .unwrap();
            }
        }
        assert_eq!(KIND == Kind::Sqlite, backup.is_some());

        // A process started on the restored data with the configured keys.
        let (restored, _) = open_with(config, encrypted(&key, &[])).await;
        for p in ["github", "google"] {
            let err = restored
                .get(&user("alice"), &provider(p))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    CredentialError::DataKey {
                        reason: OpenFailure::UnknownKey,
                        ..
                    }
                ),
                "{err}"
            );
            assert!(!err.to_string().contains("alice."), "{err}");
            for u in ["bob", "carol"] {
                assert_eq!(
                    reveal(&restored.get(&user(u), &provider(p)).await.unwrap()),
                    format!("{u}.{p}")
                );
            }
        }
        // Not even the master key with the wrapped key store rows of before
        // would help now: the key store holds nothing of alice.
        let keys_raw = keys.raw().await;
        assert_eq!(
            keys_raw
                .count(
                    "SELECT COUNT(*) FROM atom_user_keys WHERE user_id = 'alice'",
                    vec![]
                )
                .await,
            0
        );
    }
);

db_test!(concurrent_first_writes_of_one_user_all_open, |db| {
    // Two processes (stores with pools and caches of their own) write the
    // first credentials of one user at once: one data key is made, and
    // every value opens.
    let key = Key::generate().unwrap();
    let (a, _) = open_with(db.config(), encrypted(&key, &[])).await;
    let (b, _) = open_with(db.config(), encrypted(&key, &[])).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .put(
                    &user("dora"),
                    &provider(&format!("p{i}")),
                    &secret(&format!("t{i}")),
                )
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let raw = db.raw().await;
    let keys = raw
        .count(
            "SELECT COUNT(*) FROM atom_user_keys WHERE user_id = 'dora'",
            vec![],
        )
        .await;
    assert_eq!(keys, 1, "one data key for one user");
    let (reader, _) = open_with(db.config(), encrypted(&key, &[])).await;
    for i in 0..16 {
        assert_eq!(
            reveal(
                &reader
                    .get(&user("dora"), &provider(&format!("p{i}")))
                    .await
                    .unwrap()
            ),
            format!("t{i}")
        );
    }
});

/// Records until `left` events were recorded, then fails every record
/// (an audit disk that fills up in the middle of a run).
#[derive(Clone)]
struct FailAfter {
    left: std::sync::Arc<std::sync::atomic::AtomicI64>,
    memory: atom_audit::MemorySink,
}

#[async_trait::async_trait]
impl atom_audit::AuditSink for FailAfter {
    async fn record(&self, event: &atom_audit::AuditEvent) -> Result<(), atom_audit::AuditError> {
        if self.left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) <= 0 {
            return Err(atom_audit::AuditError::Sink {
                sink: "test".into(),
                message: "disk full (simulated)".into(),
            });
        }
        self.memory.record(event).await
    }
}

db_test!(
    a_master_rotation_stopped_half_way_resumes_and_loses_nothing,
    |db| {
        let old = Key::generate().unwrap();
        let new = Key::generate().unwrap();
        let (store, _) = open_with(db.config(), encrypted(&old, &[])).await;
        for i in 0..20 {
            store
                .put(
                    &user(&format!("u{i:02}")),
                    &provider("github"),
                    &secret(&format!("t{i}")),
                )
                .await
                .unwrap();
        }
        // The audit sink fails after the start event and three batches: the
        // fourth batch rolls back and the run stops.
        let sink = FailAfter {
            left: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(4)),
            memory: atom_audit::MemorySink::default(),
        };
        let rotating = store
            .clone()
            .with_protection(encrypted(&new, &[&old]))
            .with_auditor(Auditor::new(sink));
        let one = std::num::NonZeroU32::MIN;
        let three = std::num::NonZeroU32::new(3).unwrap();
        let err = rotating
            .rewrap_data_keys(three, one, false)
            .await
            .unwrap_err();
        assert!(matches!(err, CredentialError::AuditFailed(_)), "{err}");
        let raw = db.raw().await;
        let moved = raw
            .count(
                "SELECT COUNT(*) FROM atom_user_keys WHERE kek_id = ?",
                vec![new.id().to_string().into()],
            )
            .await;
        assert_eq!(
            moved, 9,
            "three batches of three committed, the fourth rolled back"
        );
        // Half-way, everything opens with both master keys.
        let both = store.clone().with_protection(encrypted(&new, &[&old]));
        for i in 0..20 {
            assert_eq!(
                reveal(
                    &both
                        .get(&user(&format!("u{i:02}")), &provider("github"))
                        .await
                        .unwrap()
                ),
                format!("t{i}")
            );
        }
        // Run again: only the rest is rewrapped, then the new key alone opens
        // everything.
        let resumed = both.rewrap_data_keys(three, one, false).await.unwrap();
        assert_eq!((resumed.done, resumed.failed), (11, 0));
        let (fresh, _) = open_with(db.config(), encrypted(&new, &[])).await;
        for i in 0..20 {
            assert_eq!(
                reveal(
                    &fresh
                        .get(&user(&format!("u{i:02}")), &provider("github"))
                        .await
                        .unwrap()
                ),
                format!("t{i}")
            );
        }
    }
);

/// A store opened with the binaries' setting (`ATOM_ENVELOPE_ENCRYPTION`
/// as `setting`; `Auto` when unset).
async fn open_as(
    db: &TestDb,
    setting: atom_credentials::EnvelopeSetting,
    key: &Key,
) -> Result<CredentialStore, CredentialError> {
    CredentialStore::open(
        &db.config().with_envelope_setting(setting),
        encrypted(key, &[]),
        Auditor::new(Sink::default()),
    )
    .await
    .map(|(store, _)| store)
}

db_test!(a_new_store_starts_in_envelope_mode_and_records_it, |db| {
    use atom_credentials::EnvelopeSetting as S;
    let key = Key::generate().unwrap();
    let store = open_as(&db, S::Auto, &key).await.unwrap();
    assert!(
        store.envelope(),
        "a store without credentials starts enveloped"
    );
    assert_eq!(store.envelope_notice(), None);
    store
        .put(&user("alice"), &provider("slack"), &secret("xoxb-1"))
        .await
        .unwrap();
    assert!(
        db.raw()
            .await
            .token("alice", "slack")
            .await
            .starts_with("atom:v2:")
    );
    store.close().await.unwrap();
    // The mode is the database's: an unset process follows it, one set
    // against it is refused at start-up, naming the setting.
    assert!(open_as(&db, S::Auto, &key).await.unwrap().envelope());
    let err = open_as(&db, S::Off, &key).await.unwrap_err();
    assert!(
        err.to_string().contains("ATOM_ENVELOPE_ENCRYPTION"),
        "{err}"
    );
    let read_only = CredentialStore::open_read_only(
        &db.config().with_envelope_setting(S::Off),
        encrypted(&key, &[]),
        Auditor::new(Sink::default()),
    )
    .await;
    assert!(
        read_only.is_err(),
        "a read-only command disagrees just as loudly"
    );
});

db_test!(
    a_store_holding_v1_rows_keeps_v1_until_envelopes_are_turned_on,
    |db| {
        use atom_credentials::EnvelopeSetting as S;
        let key = Key::generate().unwrap();
        // Rows written before the mode was recorded (an earlier release).
        let (old, _) = CredentialStore::open(
            &db.config(),
            encrypted(&key, &[]),
            Auditor::new(Sink::default()),
        )
        .await
        .unwrap();
        old.put(&user("alice"), &provider("slack"), &secret("xoxb-v1"))
            .await
            .unwrap();
        old.close().await.unwrap();
        let store = open_as(&db, S::Auto, &key).await.unwrap();
        assert!(!store.envelope(), "a store holding v1 rows keeps v1");
        let notice = store.envelope_notice().unwrap().to_owned();
        assert!(notice.contains("ATOM_ENVELOPE_ENCRYPTION=1"), "{notice}");
        store
            .put(&user("bob"), &provider("slack"), &secret("xoxb-v1-too"))
            .await
            .unwrap();
        assert!(
            db.raw()
                .await
                .token("bob", "slack")
                .await
                .starts_with("atom:v1:")
        );
        store.close().await.unwrap();
        // The operator turns envelopes on: recorded, and followed by
        // processes left unset.
        let on = open_as(&db, S::On, &key).await.unwrap();
        assert!(on.envelope());
        on.close().await.unwrap();
        let follows = open_as(&db, S::Auto, &key).await.unwrap();
        assert!(follows.envelope());
        follows
            .put(&user("carol"), &provider("slack"), &secret("xoxb-v2"))
            .await
            .unwrap();
        assert!(
            db.raw()
                .await
                .token("carol", "slack")
                .await
                .starts_with("atom:v2:")
        );
        assert_eq!(
            reveal(
                &follows
                    .get(&user("alice"), &provider("slack"))
                    .await
                    .unwrap()
            ),
            "xoxb-v1"
        );
    }
);

db_test!(
    a_key_store_recorded_under_its_undated_migration_name_keeps_working,
    |db| {
        let key = Key::generate().unwrap();
        let (store, _) = open_with(db.config(), encrypted(&key, &[])).await;
        store
            .put(&user("alice"), &provider("github"), &secret("gho_alice"))
            .await
            .unwrap();
        store.close().await.unwrap();
        // As versions before the dated name recorded it (named after its
        // file by sea-orm).
        let raw = db.raw().await;
        let versions = "SELECT version FROM atom_keystore_migrations";
        let renamed = raw
            .exec(
                "UPDATE atom_keystore_migrations SET version = 'migration'",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(renamed, 1);

        // A read-only open counts it as applied and renames nothing.
        let read_only = CredentialStore::open_read_only(
            &db.config().with_envelope(true),
            encrypted(&key, &[]),
            Auditor::new(Sink::default()),
        )
        .await
        .unwrap();
        let got = read_only
            .get(&user("alice"), &provider("github"))
            .await
            .unwrap();
        assert_eq!(reveal(&got), "gho_alice");
        read_only.close().await.unwrap();
        assert_eq!(raw.strings(versions, vec![]).await, ["migration"]);

        // A migrating open renames the record and applies nothing again.
        let (store, _) = open_with(db.config(), encrypted(&key, &[])).await;
        let got = store
            .get(&user("alice"), &provider("github"))
            .await
            .unwrap();
        assert_eq!(reveal(&got), "gho_alice");
        store.close().await.unwrap();
        assert_eq!(
            raw.strings(versions, vec![]).await,
            ["m20261201_000001_create_user_keys"]
        );
    }
);

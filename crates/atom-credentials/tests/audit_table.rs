// The audit trail in the credentials database, included once per backend:
// events chained in `audit_events`, a write's event in the write's own
// transaction, two stores (two pools, as two server instances) on one
// database keeping one intact chain, and tampering reported by verify.

use super::KIND;

use std::collections::BTreeMap;
use std::sync::Arc;

use atom_audit::{Auditor, FanOut, ProblemKind};
use atom_credentials::{CredentialError, CredentialStore, DatabaseAuditSink, verify_audit_table};
use atom_crypto::Key;
use serde_json::Value;

use crate::common::RawAccess as _;
use crate::common::{Kind, Sink, TestDb, encrypted, provider, reveal, secret, user};

/// A store on `db` auditing into the database's table (under `audit_key`)
/// and into a memory sink beside it.
async fn open_audited(db: &TestDb, enc: &Key, audit_key: &Key) -> (CredentialStore, Sink) {
    let table = DatabaseAuditSink::open(&db.config(), audit_key)
        .await
        .unwrap();
    let memory = Sink::default();
    let auditor = Auditor::new(FanOut::new().with(memory.clone()).with(table));
    let (store, _) = CredentialStore::open(&db.config(), encrypted(enc, &[]), auditor)
        .await
        .unwrap();
    (store, memory)
}

/// The events in the table, oldest first: (name, user, provider, outcome).
async fn recorded(db: &TestDb) -> Vec<(String, String, String, String)> {
    let raw = db.raw().await;
    raw.strings("SELECT record FROM audit_events ORDER BY seq", vec![])
        .await
        .iter()
        .map(|record| {
            let record: Value = serde_json::from_str(record).unwrap();
            let event = &record["event"];
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&event["action"]["event"]),
                text(&event["action"]["user"]),
                text(&event["action"]["provider"]),
                text(&event["outcome"]),
            )
        })
        .collect()
}

db_test!(every_operation_is_chained_in_the_database, |db| {
    let (enc, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, memory) = open_audited(&db, &enc, &audit_key).await;
    store
        .put(&user("alice"), &provider("github"), &secret("t1"))
        .await
        .unwrap();
    store
        .put(&user("bob"), &provider("slack"), &secret("t2"))
        .await
        .unwrap();
    let token = store
        .get(&user("alice"), &provider("github"))
        .await
        .unwrap();
    assert_eq!(reveal(&token), "t1");
    store.list(&user("alice")).await.unwrap();
    assert!(
        store
            .delete(&user("bob"), &provider("slack"))
            .await
            .unwrap()
    );
    store.erase_user(&user("alice")).await.unwrap();
    store.auditor().flush().await.unwrap();

    let names: Vec<String> = recorded(&db).await.into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        [
            "credential_stored",
            "credential_stored",
            "credential_accessed",
            "credentials_listed",
            "credential_deleted",
            "user_credentials_erased",
        ]
    );
    // The sinks beside the table saw the same events, once each.
    assert_eq!(memory.names(), names);
    let report = verify_audit_table(&db.config(), &audit_key).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        (report.chain.events, report.head.next_seq(), report.pending),
        (6, 6, 0)
    );
    // Another audit key cannot vouch for the trail.
    let report = verify_audit_table(&db.config(), &Key::generate().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        report.chain.problem.unwrap().kind,
        ProblemKind::WrongKey { .. }
    ));
});

db_test!(a_write_and_its_event_commit_together_or_not_at_all, |db| {
    let (enc, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, memory) = open_audited(&db, &enc, &audit_key).await;
    store
        .put(&user("alice"), &provider("github"), &secret("kept"))
        .await
        .unwrap();

    // A sink beside the table fails: the write is refused, and the event
    // already appended in its transaction goes with it.
    memory.fail(true);
    let refused = store
        .put(&user("alice"), &provider("github"), &secret("lost"))
        .await;
    assert!(matches!(refused, Err(CredentialError::AuditFailed(_))));
    memory.fail(false);
    store.auditor().flush().await.unwrap();
    assert_eq!(recorded(&db).await.len(), 1);
    let token = store
        .get(&user("alice"), &provider("github"))
        .await
        .unwrap();
    assert_eq!(reveal(&token), "kept");

    // The trail cannot record (SQLite: the head row is gone; elsewhere, the
    // table of pending events): the write is refused and changes nothing,
    // and so is a read.
    let raw = db.raw().await;
    let breaking = match KIND {
        Kind::Sqlite => "DELETE FROM audit_chain_head",
        _ => "DROP TABLE audit_pending",
    };
    raw.exec(breaking, vec![]).await.unwrap();
    let refused = store
        .put(&user("alice"), &provider("github"), &secret("lost"))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let refused = store.get(&user("alice"), &provider("github")).await;
    assert!(
        matches!(refused, Err(CredentialError::AuditFailed(_))),
        "{refused:?}"
    );
    assert_eq!(
        raw.count(
            "SELECT COUNT(*) FROM user_credentials WHERE user_id = 'alice'",
            vec![]
        )
        .await,
        1
    );
    let stored = raw.token("alice", "github").await;
    let reopened = atom_crypto::Keyring::new(enc.clone(), [])
        .unwrap()
        .open(
            &atom_crypto::Context::credential("alice", "github"),
            &stored,
        )
        .unwrap();
    assert_eq!(reveal(&reopened), "kept");
});

db_test!(two_stores_on_one_database_append_one_chain, |db| {
    let (enc, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
    // Two pools and two group-commit tasks, as two server instances.
    let (a, _) = open_audited(&db, &enc, &audit_key).await;
    let (b, _) = open_audited(&db, &enc, &audit_key).await;
    let stores = Arc::new([a, b]);
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let stores = Arc::clone(&stores);
        tasks.push(tokio::spawn(async move {
            let mut done: Vec<(&'static str, String, String)> = Vec::new();
            for i in 0..15u32 {
                let store = &stores[((t + i) % 2) as usize];
                let (u, p) = (format!("user_{t}"), format!("p{}", i % 3));
                store
                    .put(&user(&u), &provider(&p), &secret(&format!("{t}-{i}")))
                    .await
                    .unwrap();
                done.push(("credential_stored", u.clone(), p.clone()));
                let other = &stores[((t + i + 1) % 2) as usize];
                let token = other.get(&user(&u), &provider(&p)).await.unwrap();
                assert_eq!(reveal(&token), format!("{t}-{i}"));
                done.push(("credential_accessed", u.clone(), p.clone()));
                if i % 5 == 4 {
                    assert!(store.delete(&user(&u), &provider(&p)).await.unwrap());
                    done.push(("credential_deleted", u, p));
                }
            }
            done
        }));
    }
    let mut acknowledged: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for task in tasks {
        for (name, u, p) in task.await.unwrap() {
            *acknowledged.entry((name.to_owned(), u, p)).or_default() += 1;
        }
    }
    // Events written in their changes' transactions are chained by the
    // next group commit: a flush of each store is one.
    for store in stores.iter() {
        store.auditor().flush().await.unwrap();
    }
    let mut chained: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for (name, u, p, outcome) in recorded(&db).await {
        assert_eq!(outcome, "success", "{name} {u} {p}");
        *chained.entry((name, u, p)).or_default() += 1;
    }
    // Every acknowledged operation has its record, and nothing else is
    // there.
    assert_eq!(chained, acknowledged);
    let report = verify_audit_table(&db.config(), &audit_key).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.chain.events, 8 * (15 * 2 + 3));
    assert_eq!(report.head.next_seq(), report.chain.records);
    assert_eq!(report.pending, 0);
});

db_test!(tampering_with_the_table_is_reported, |db| {
    let (enc, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, _) = open_audited(&db, &enc, &audit_key).await;
    for i in 0..6 {
        store
            .put(&user("alice"), &provider(&format!("p{i}")), &secret("t"))
            .await
            .unwrap();
    }
    store.auditor().flush().await.unwrap();
    let raw = db.raw().await;
    let verify = || async {
        let report = verify_audit_table(&db.config(), &audit_key).await.unwrap();
        report.chain.problem.map(|p| p.kind)
    };
    assert_eq!(verify().await, None);

    let third = raw
        .strings("SELECT record FROM audit_events WHERE seq = 2", vec![])
        .await
        .pop()
        .unwrap();
    raw.exec(
        "UPDATE audit_events SET record = ? WHERE seq = 2",
        vec![third.replace("\"p2\"", "\"p9\"").into()],
    )
    .await
    .unwrap();
    assert_eq!(verify().await, Some(ProblemKind::NotAuthentic));

    raw.exec("DELETE FROM audit_events WHERE seq = 2", vec![])
        .await
        .unwrap();
    assert_eq!(
        verify().await,
        Some(ProblemKind::Removed {
            expected: 2,
            found: 3
        })
    );
    raw.exec(
        "INSERT INTO audit_events (seq, record) VALUES (2, ?)",
        vec![third.into()],
    )
    .await
    .unwrap();
    assert_eq!(verify().await, None);

    raw.exec("DELETE FROM audit_events WHERE seq = 5", vec![])
        .await
        .unwrap();
    assert_eq!(
        verify().await,
        Some(ProblemKind::HeadCut {
            head: 5,
            records: 5
        })
    );

    // A pending event forged without the audit key is reported, and never
    // chained.
    let forged = r#"{"at":"2026-12-01T00:00:00Z","action":{"event":"credential_deleted","user":"alice","provider":"p0"},"outcome":"success"}"#;
    raw.exec(
        "INSERT INTO audit_pending (event, mac) VALUES (?, ?)",
        vec![forged.into(), "0".repeat(64).into()],
    )
    .await
    .unwrap();
    store.auditor().flush().await.unwrap();
    let report = verify_audit_table(&db.config(), &audit_key).await.unwrap();
    assert!(report.forged_pending.is_some(), "{report}");
    assert!(!report.is_intact());
    assert!(report.to_string().contains("forged"), "{report}");
    // The forged row stays for verify to report, and does not hold back
    // the events after it.
    let chained = || async { raw.count("SELECT COUNT(*) FROM audit_events", vec![]).await };
    let before = chained().await;
    store
        .put(&user("alice"), &provider("p9"), &secret("t"))
        .await
        .unwrap();
    store.auditor().flush().await.unwrap();
    assert_eq!(chained().await, before + 1);
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM audit_pending", vec![])
            .await,
        1
    );
});

db_test!(envelope_operations_record_in_their_transactions, |db| {
    // Every path that records while it writes (a data key made or
    // unwrapped inside a write, rows upgraded to v2, a user's key rotated,
    // a master rotation of data keys, an erasure) goes through the table
    // without waiting on itself; a stall fails the test.
    let (v1_key, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
    let table = DatabaseAuditSink::open(&db.config(), &audit_key)
        .await
        .unwrap();
    let auditor = Auditor::new(FanOut::new().with(table));
    let work = async {
        let (plain, _) =
            CredentialStore::open(&db.config(), encrypted(&v1_key, &[]), auditor.clone())
                .await
                .unwrap();
        for u in ["u1", "u2"] {
            plain
                .put(&user(u), &provider("github"), &secret(u))
                .await
                .unwrap();
        }
        let (store, _) = CredentialStore::open(
            &db.config().with_envelope(true),
            encrypted(&v1_key, &[]),
            auditor.clone(),
        )
        .await
        .unwrap();
        let progress = store
            .rewrap(&atom_credentials::RewrapOptions::new(), |_| {})
            .await
            .unwrap();
        assert_eq!(progress.done, 2);
        store
            .put(&user("u3"), &provider("slack"), &secret("u3"))
            .await
            .unwrap();
        store.rotate_user_key(&user("u1")).await.unwrap();
        let master = Key::generate().unwrap();
        let store = store.with_protection(encrypted(&master, &[&v1_key]));
        let one = std::num::NonZeroU32::new(1).unwrap();
        let rotated = store.rewrap_data_keys(one, one, false).await.unwrap();
        assert_eq!(rotated.done, 3);
        let token = store.get(&user("u1"), &provider("github")).await.unwrap();
        assert_eq!(reveal(&token), "u1");
        store.erase_user(&user("u2")).await.unwrap();
        store.auditor().flush().await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), work)
        .await
        .expect("an operation waited on its own audit record");
    let names: Vec<String> = recorded(&db).await.into_iter().map(|e| e.0).collect();
    for name in [
        "data_key_created",
        "data_key_rotated",
        "data_key_destroyed",
        "key_rotation_finished",
        "user_credentials_erased",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let report = verify_audit_table(&db.config(), &audit_key).await.unwrap();
    assert!(report.is_intact(), "{report}");
});

db_test!(
    events_left_pending_by_a_stopped_process_are_chained_by_another,
    |db| {
        // A process whose write committed its pending event and which stopped
        // before chaining it (killed): the next group commit of any process
        // chains it, and nothing is lost.
        let (enc, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
        let (store, _) = open_audited(&db, &enc, &audit_key).await;
        store
            .put(&user("alice"), &provider("github"), &secret("t"))
            .await
            .unwrap();
        store.auditor().flush().await.unwrap();
        let left = atom_audit::ChainKey::new(&audit_key).pending(&atom_audit::AuditEvent::new(
            chrono::Utc::now(),
            atom_audit::Action::CredentialDeleted {
                user: "bob".into(),
                provider: "slack".into(),
            },
        ));
        let raw = db.raw().await;
        raw.exec(
            "INSERT INTO audit_pending (event, mac) VALUES (?, ?)",
            vec![left.json.into(), left.mac.into()],
        )
        .await
        .unwrap();
        let before = verify_audit_table(&db.config(), &audit_key).await.unwrap();
        assert!(before.is_intact(), "{before}");
        assert_eq!((before.chain.events, before.pending), (1, 1));

        let (other, _) = open_audited(&db, &enc, &audit_key).await;
        other.auditor().flush().await.unwrap();
        let after = verify_audit_table(&db.config(), &audit_key).await.unwrap();
        assert!(after.is_intact(), "{after}");
        assert_eq!((after.chain.events, after.pending), (2, 0));
        let names: Vec<String> = recorded(&db).await.into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["credential_stored", "credential_deleted"]);
    }
);

/// A sink that, while armed, refuses `credential_stored` events only: the
/// write's data key is unwrapped and recorded, then the write rolls back.
#[derive(Clone, Default)]
struct RefusingStored(Arc<std::sync::atomic::AtomicBool>);

#[async_trait::async_trait]
impl atom_audit::AuditSink for RefusingStored {
    async fn record(&self, event: &atom_audit::AuditEvent) -> Result<(), atom_audit::AuditError> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst)
            && matches!(event.action, atom_audit::Action::CredentialStored { .. })
        {
            return Err(atom_audit::AuditError::Sink {
                sink: "test".into(),
                message: "refused (simulated)".into(),
            });
        }
        Ok(())
    }
}

db_test!(
    an_unwrap_recorded_in_a_rolled_back_write_is_recorded_again,
    |db| {
        // A data key unwrapped inside a write whose transaction then rolls
        // back (a sink beside the table refuses the write's own event) took
        // its record with it: the next write that uses the key records the
        // unwrap again instead of being served from the cache unrecorded.
        let (enc, audit_key) = (Key::generate().unwrap(), Key::generate().unwrap());
        let table = DatabaseAuditSink::open(&db.config(), &audit_key)
            .await
            .unwrap();
        let refusing = RefusingStored::default();
        let auditor = Auditor::new(FanOut::new().with(refusing.clone()).with(table));
        let config = db.config().with_envelope(true);
        let (first, _) = CredentialStore::open(&config, encrypted(&enc, &[]), auditor.clone())
            .await
            .unwrap();
        first
            .put(&user("alice"), &provider("github"), &secret("t1"))
            .await
            .unwrap();
        // Another process: nothing cached.
        let (second, _) = CredentialStore::open(&config, encrypted(&enc, &[]), auditor)
            .await
            .unwrap();
        refusing.0.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            second
                .put(&user("alice"), &provider("github"), &secret("t2"))
                .await
                .is_err()
        );
        refusing.0.store(false, std::sync::atomic::Ordering::SeqCst);
        second
            .put(&user("alice"), &provider("github"), &secret("t3"))
            .await
            .unwrap();
        second.auditor().flush().await.unwrap();
        let unwraps = recorded(&db)
            .await
            .into_iter()
            .filter(|(name, user, _, _)| name == "data_key_unwrapped" && user == "alice")
            .count();
        assert!(
            unwraps >= 1,
            "the unwrap in the committed write is recorded"
        );
        let token = second
            .get(&user("alice"), &provider("github"))
            .await
            .unwrap();
        assert_eq!(reveal(&token), "t3");
    }
);

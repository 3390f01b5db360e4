// A write that failed to commit is never acknowledged later: included once
// per backend (see tests.rs). SQLite is filled up for real
// (`PRAGMA max_page_count`: SQLITE_FULL, which rolls the transaction back
// behind the driver's back); on PostgreSQL and MariaDB the writing
// connection is killed between the statement and the COMMIT.

use super::KIND;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use atom_audit::{Action, AuditError, AuditEvent, AuditSink, Auditor, MemorySink, Outcome};
use atom_credentials::{CredentialError, CredentialStore};
use atom_crypto::Key;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use crate::common::RawAccess as _;
use crate::common::{Kind, encrypted, provider, reveal, secret, user};

/// Records in memory; while armed, kills the database sessions that wait
/// inside a transaction each time a credential write is recorded (the
/// store records just before its COMMIT), so that COMMIT fails.
#[derive(Clone)]
struct KillingSink {
    memory: MemorySink,
    armed: Arc<AtomicBool>,
    admin: Option<DatabaseConnection>,
}

#[async_trait]
impl AuditSink for KillingSink {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        if self.armed.load(Ordering::SeqCst)
            && matches!(event.action, Action::CredentialStored { .. })
            && let Some(admin) = &self.admin
        {
            kill_waiting_sessions(admin).await;
        }
        self.memory.record(event).await
    }
}

async fn kill_waiting_sessions(admin: &DatabaseConnection) {
    match KIND {
        Kind::Postgres => {
            admin
                .execute_unprepared(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                     AND state LIKE 'idle in transaction%'",
                )
                .await
                .unwrap();
        }
        Kind::MySql => {
            let rows = admin
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::MySql,
                    "SELECT id FROM information_schema.processlist \
                     WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command = 'Sleep'",
                ))
                .await
                .unwrap();
            for row in rows {
                let id: i64 = row.try_get_by_index(0).unwrap();
                // The session may have gone meanwhile.
                let _ = admin.execute_unprepared(&format!("KILL {id}")).await;
            }
        }
        // SQLite has no sessions to kill: its failed commit is a full disk.
        _ => {}
    }
}

/// The outcome of the last `credential_stored` event of each user: the
/// audit trail's word on what was stored.
fn stored_per_audit(events: &[AuditEvent]) -> BTreeSet<String> {
    let mut last = BTreeMap::new();
    for e in events {
        if let Action::CredentialStored { user, .. } = &e.action {
            last.insert(user.clone(), e.outcome == Outcome::Success);
        }
    }
    last.into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(u, _)| u)
        .collect()
}

db_test!(a_failed_commit_never_acknowledges_a_later_write, |db| {
    let key = Key::generate().unwrap();
    let limit = Arc::new(AtomicU32::new(u32::MAX));
    let admin = match KIND {
        Kind::Sqlite => None,
        _ => Some(Database::connect(db.url.as_str()).await.unwrap()),
    };
    let sink = KillingSink {
        memory: MemorySink::default(),
        armed: Arc::default(),
        admin,
    };
    let mut config = db
        .config()
        .with_max_connections(NonZeroU32::new(2).unwrap());
    if KIND == Kind::Sqlite {
        config = config.with_sqlite_page_limit(Arc::clone(&limit));
    }
    let (store, _) =
        CredentialStore::open(&config, encrypted(&key, &[]), Auditor::new(sink.clone()))
            .await
            .unwrap();
    // Each value fills pages of its own, so a full database refuses it.
    let value = |i: usize| format!("tok-{i}-{}", "x".repeat(3000));
    let mut acknowledged = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut i = 0;
    for phase in ["before", "during", "after"] {
        match phase {
            "during" if KIND == Kind::Sqlite => {
                let pages = db
                    .raw()
                    .await
                    .count("SELECT page_count FROM pragma_page_count()", vec![])
                    .await;
                limit.store(u32::try_from(pages).unwrap(), Ordering::SeqCst);
            }
            "during" => sink.armed.store(true, Ordering::SeqCst),
            "after" => {
                limit.store(u32::MAX, Ordering::SeqCst);
                sink.armed.store(false, Ordering::SeqCst);
            }
            _ => {}
        }
        for _ in 0..12 {
            let name = format!("u{i}");
            match store
                .put(&user(&name), &provider("p"), &secret(&value(i)))
                .await
            {
                Ok(()) => {
                    acknowledged.insert((name, i));
                }
                Err(e) => {
                    assert!(
                        matches!(
                            e,
                            CredentialError::Database { .. }
                                | CredentialError::DatabaseUnavailable { .. }
                        ),
                        "{phase}: {e}"
                    );
                    assert_eq!(phase, "during", "{phase} write {i} failed: {e}");
                    refused.insert(name);
                }
            }
            i += 1;
        }
    }
    assert!(!refused.is_empty(), "the fault refused no write");
    assert_eq!(acknowledged.len() + refused.len(), 36);
    store.close().await.unwrap();

    // A fresh process's view.
    let (reopened, _) = CredentialStore::open(
        &db.config(),
        encrypted(&key, &[]),
        Auditor::new(MemorySink::default()),
    )
    .await
    .unwrap();
    for (name, i) in &acknowledged {
        let got = reopened.get(&user(name), &provider("p")).await;
        let got = got.unwrap_or_else(|e| panic!("acknowledged write {name} is lost: {e}"));
        assert_eq!(reveal(&got), value(*i), "{name}");
    }
    for name in &refused {
        let got = reopened.get(&user(name), &provider("p")).await;
        assert!(
            matches!(got, Err(CredentialError::NotFound { .. })),
            "refused write {name} was stored"
        );
    }
    let in_database: BTreeSet<String> = db
        .raw()
        .await
        .strings("SELECT user_id FROM user_credentials", vec![])
        .await
        .into_iter()
        .collect();
    let names: BTreeSet<String> = acknowledged.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(in_database, names);
    assert_eq!(stored_per_audit(&sink.memory.events()), in_database);
});

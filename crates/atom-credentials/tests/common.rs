//! The test harness: a fresh database per test on each backend
//! (`atom_credentials::test_util::TestDb`: SQLite always, PostgreSQL and
//! MariaDB when `.ci/run`'s variables name their servers, otherwise a
//! printed SKIPPED notice), keys, audit sinks, and raw SQL access for
//! tampering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use atom_audit::{Action, AuditError, AuditEvent, AuditSink, Auditor, MemorySink};
use atom_credentials::{CredentialStore, Provider, UserId};
use atom_crypto::{Key, Keyring, Protection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

pub(crate) use atom_credentials::Backend as Kind;
pub(crate) use atom_credentials::test_util::TestDb;

/// Raw SQL access to a test database.
pub(crate) trait RawAccess {
    /// A connection of the test's own, for raw SQL.
    async fn raw(&self) -> Raw;
}

impl RawAccess for TestDb {
    async fn raw(&self) -> Raw {
        Raw(self.connect().await)
    }
}

/// Raw SQL on the test database, with `?` placeholders on every backend.
pub(crate) struct Raw(pub(crate) DatabaseConnection);

impl Raw {
    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        let backend = self.0.get_database_backend();
        let sql = if backend == DbBackend::Postgres {
            let mut out = String::new();
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            sql.to_owned()
        };
        Statement::from_sql_and_values(backend, sql, values)
    }

    pub(crate) async fn exec(&self, sql: &str, values: Vec<Value>) -> Result<u64, sea_orm::DbErr> {
        Ok(self
            .0
            .execute_raw(self.stmt(sql, values))
            .await?
            .rows_affected())
    }

    pub(crate) async fn strings(&self, sql: &str, values: Vec<Value>) -> Vec<String> {
        self.0
            .query_all_raw(self.stmt(sql, values))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    pub(crate) async fn count(&self, sql: &str, values: Vec<Value>) -> i64 {
        let row = self
            .0
            .query_one_raw(self.stmt(sql, values))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// The stored token of a credential.
    pub(crate) async fn token(&self, user: &str, provider: &str) -> String {
        self.strings(
            "SELECT encrypted_token FROM user_credentials WHERE user_id = ? AND provider = ?",
            vec![user.into(), provider.into()],
        )
        .await
        .pop()
        .unwrap()
    }
}

pub(crate) fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub(crate) fn provider(s: &str) -> Provider {
    Provider::parse(s).unwrap()
}

pub(crate) fn secret(s: &str) -> atom_crypto::SecretString {
    atom_crypto::SecretString::from(s.to_owned())
}

pub(crate) fn reveal(s: &atom_crypto::SecretString) -> String {
    use atom_crypto::ExposeSecret as _;
    s.expose_secret().to_owned()
}

pub(crate) fn keyring(primary: &Key, previous: &[&Key]) -> Keyring {
    Keyring::new(primary.clone(), previous.iter().map(|k| (*k).clone())).unwrap()
}

pub(crate) fn encrypted(primary: &Key, previous: &[&Key]) -> Protection {
    Protection::Encrypted(keyring(primary, previous))
}

/// A sink that records in memory and can be told to fail.
#[derive(Clone, Default)]
pub(crate) struct Sink {
    pub(crate) memory: MemorySink,
    failing: Arc<AtomicBool>,
}

impl Sink {
    pub(crate) fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    pub(crate) fn events(&self) -> Vec<AuditEvent> {
        self.memory.events()
    }

    pub(crate) fn actions(&self) -> Vec<Action> {
        self.events().into_iter().map(|e| e.action).collect()
    }

    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.events().iter().map(|e| e.name()).collect()
    }
}

#[async_trait]
impl AuditSink for Sink {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError::Sink {
                sink: "test".into(),
                message: "disk full (simulated)".into(),
            });
        }
        self.memory.record(event).await
    }
}

/// Opens a store on `db` with `protection`, auditing into a new sink.
pub(crate) async fn open(db: &TestDb, protection: Protection) -> (CredentialStore, Sink) {
    let sink = Sink::default();
    let (store, _report) =
        CredentialStore::open(&db.config(), protection, Auditor::new(sink.clone()))
            .await
            .unwrap();
    (store, sink)
}

/// Declares the test `$name` for this backend: it gets a fresh database or
/// is skipped, then runs `$body` with it.
macro_rules! db_test {
    ($name:ident, |$db:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some($db) = $crate::common::TestDb::new(KIND, stringify!($name)).await else {
                return;
            };
            $body
        }
    };
}

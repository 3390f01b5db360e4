//! The test harness: a fresh database per test on each backend, keys,
//! audit sinks, and raw SQL access for tampering.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL and
//! MariaDB run when `ATOM_TEST_POSTGRES_URL` / `ATOM_TEST_MYSQL_URL` name an
//! admin URL (`.ci/run` sets both): each test creates its own database
//! `atom_t_<random>` there, connects to it, and drops it at the end, so
//! parallel tests never see each other's rows. Unset, the test prints a
//! SKIPPED notice to stderr and passes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use atom_audit::{Action, AuditError, AuditEvent, AuditSink, Auditor, MemorySink};
use atom_credentials::{CredentialStore, DatabaseUrl, Provider, StoreConfig, UserId};
use atom_crypto::{Key, Keyring, Protection};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};

/// Which database a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

pub(crate) const ENV_POSTGRES: &str = "ATOM_TEST_POSTGRES_URL";
pub(crate) const ENV_MYSQL: &str = "ATOM_TEST_MYSQL_URL";

/// A database of one test. Dropped (on the server) when the value drops.
pub(crate) struct TestDb {
    pub(crate) kind: Kind,
    /// The URL with its password, for the test's own raw connection.
    pub(crate) url: String,
    server: Option<(String, String)>, // (admin url, database name)
    _dir: Option<tempfile::TempDir>,
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("atom_t_{:016x}", h.finish())
}

/// `admin` with its database name replaced by `name`.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

impl TestDb {
    /// A fresh database, or `None` (with a notice) when the backend's
    /// server is not configured.
    pub(crate) async fn new(kind: Kind, test: &str) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/atom.db", dir.path().display());
                Some(TestDb {
                    kind,
                    url,
                    server: None,
                    _dir: Some(dir),
                })
            }
            Kind::Postgres | Kind::MySql => {
                let var = if kind == Kind::Postgres {
                    ENV_POSTGRES
                } else {
                    ENV_MYSQL
                };
                let Some(admin) = std::env::var(var).ok().filter(|v| !v.is_empty()) else {
                    // Straight to stderr: the test harness captures eprintln!.
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED {test} on {kind:?} (set {var}, e.g. as .ci/run does, to run it)"
                    );
                    return None;
                };
                let name = unique_name();
                let conn = Database::connect(admin.as_str()).await.unwrap();
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                Some(TestDb {
                    kind,
                    url: with_database(&admin, &name),
                    server: Some((admin, name)),
                    _dir: None,
                })
            }
        }
    }

    pub(crate) fn config(&self) -> StoreConfig {
        StoreConfig::new(DatabaseUrl::parse(&self.url).unwrap())
    }

    /// A connection of the test's own, for raw SQL.
    pub(crate) async fn raw(&self) -> Raw {
        let url = match self.kind {
            Kind::Sqlite => format!("{}?mode=rwc", self.url),
            _ => self.url.clone(),
        };
        let conn = Database::connect(url).await.unwrap();
        Raw(conn)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.server.take() else {
            return;
        };
        let force = if self.kind == Kind::Postgres {
            " WITH (FORCE)"
        } else {
            ""
        };
        // Drop runs inside the test's runtime; use a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(conn) = Database::connect(admin.as_str()).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}{force}"))
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
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

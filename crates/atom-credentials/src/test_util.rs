//! Test databases (feature `test-util`): a fresh database per test on each
//! backend, for this crate's tests and every crate above it.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL and
//! MariaDB run when [`ENV_POSTGRES`] / [`ENV_MYSQL`] name an admin URL
//! (`.ci/run` sets both): each test creates its own database `atom_t_<random>`
//! there and drops it when the [`TestDb`] drops, so parallel tests never
//! see each other's rows. Unset, [`TestDb::new`] prints a SKIPPED notice to
//! stderr and returns `None`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection};

use crate::config::StoreConfig;
use crate::url::{Backend, DatabaseUrl};

/// The admin URL of the PostgreSQL server tests may create databases on.
pub const ENV_POSTGRES: &str = "ATOM_TEST_POSTGRES_URL";
/// The admin URL of the MariaDB server tests may create databases on.
pub const ENV_MYSQL: &str = "ATOM_TEST_MYSQL_URL";

/// A database of one test, dropped on its server when the value drops.
pub struct TestDb {
    /// Which backend.
    pub kind: Backend,
    /// The URL, password included (test servers only).
    pub url: String,
    /// (admin URL, database name) on a server.
    server: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// A random number (tests need variety, not secrecy).
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// The admin URL configured for `kind`'s server; `None` for SQLite or when
/// the variable is unset, after printing a SKIPPED notice naming `test`.
pub fn admin_url(kind: Backend, test: &str) -> Option<String> {
    let var = match kind {
        Backend::Postgres => ENV_POSTGRES,
        Backend::MySql => ENV_MYSQL,
        _ => return None,
    };
    let url = std::env::var(var).ok().filter(|v| !v.is_empty());
    if url.is_none() {
        // Straight to stderr: the test harness captures eprintln!.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test} on {kind} (set {var}, e.g. as .ci/run does, to run it)"
        );
    }
    url
}

/// `admin` with its database (the URL's path) replaced by `name`; user,
/// host, port and query stay.
///
/// # Panics
/// When `admin` is not a URL (a test set-up error).
pub fn with_database(admin: &str, name: &str) -> String {
    let mut url = ::url::Url::parse(admin)
        .unwrap_or_else(|e| panic!("{ENV_POSTGRES}/{ENV_MYSQL}: not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    url.into()
}

impl TestDb {
    /// A fresh database, or `None` (with a notice) when the backend's
    /// server is not configured.
    ///
    /// # Panics
    /// When the server is configured but does not answer or refuses to
    /// create the database: a broken test set-up is a failure, not a skip.
    pub async fn new(kind: Backend, test: &str) -> Option<TestDb> {
        if kind == Backend::Sqlite {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}/atom.db", dir.path().display());
            return Some(TestDb {
                kind,
                url,
                server: None,
                _dir: Some(dir),
            });
        }
        let admin = admin_url(kind, test)?;
        let name = format!("atom_t_{:016x}", random_u64());
        let conn = Database::connect(admin.as_str())
            .await
            .unwrap_or_else(|e| panic!("{kind} test server: {e}"));
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("{kind} test server: creating {name}: {e}"));
        let _ = conn.close().await;
        Some(TestDb {
            kind,
            url: with_database(&admin, &name),
            server: Some((admin, name)),
            _dir: None,
        })
    }

    /// The admin URL and database name on a server; `None` for SQLite.
    pub fn server(&self) -> Option<(&str, &str)> {
        self.server
            .as_ref()
            .map(|(admin, name)| (admin.as_str(), name.as_str()))
    }

    /// The store configuration for this database.
    ///
    /// # Panics
    /// Never for a URL made by [`TestDb::new`].
    pub fn config(&self) -> StoreConfig {
        StoreConfig::new(DatabaseUrl::parse(&self.url).expect("a test database URL"))
    }

    /// A connection of the test's own, for raw SQL (an SQLite file is
    /// created if missing).
    ///
    /// # Panics
    /// When the database does not answer.
    pub async fn connect(&self) -> DatabaseConnection {
        let url = match self.kind {
            Backend::Sqlite => format!("{}?mode=rwc", self.url),
            _ => self.url.clone(),
        };
        Database::connect(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("{} test database: {e}", self.kind))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.server.take() else {
            return;
        };
        let force = if self.kind == Backend::Postgres {
            " WITH (FORCE)"
        } else {
            ""
        };
        // Drop may run inside a test's runtime: use a runtime of its own on
        // a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
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

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "atom_t_1"),
            "postgres://postgres@127.0.0.1:5432/atom_t_1"
        );
        assert_eq!(
            with_database("mysql://root:p%40ss@db:3306/test?ssl-mode=disabled", "x"),
            "mysql://root:p%40ss@db:3306/x?ssl-mode=disabled"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}

//! Opening the connection pool for a [`DatabaseUrl`].

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::StoreConfig;
use crate::error::CredentialError;
use crate::url::{Backend, redact_urls_in};

/// Rows an SQLite connection's worker thread may queue ahead of the reader:
/// one default rewrap batch.
const SQLITE_ROW_BUFFER: usize = crate::rewrap::DEFAULT_BATCH_SIZE.get() as usize;

/// Connects with the pool settings of `config`. Errors name the URL with
/// its password redacted.
pub(crate) async fn connect(config: &StoreConfig) -> Result<DatabaseConnection, CredentialError> {
    let url = &config.database_url;
    let memory = url.expose().contains(":memory:");
    let max = match (url.backend(), config.max_connections) {
        // Every connection to `sqlite::memory:` is a database of its own.
        (Backend::Sqlite, _) if memory => 1,
        (_, Some(n)) => n,
        (Backend::Sqlite, None) => 4,
        (_, None) => 10,
    };
    let mut opt = ConnectOptions::new(url.expose().to_owned());
    opt.max_connections(max)
        .min_connections(0)
        // A database that refuses or does not answer fails a request
        // within the acquire timeout (connecting included), not after
        // sqlx's default of 30 s: health probes wait 1-5 s.
        .connect_timeout(config.acquire_timeout)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        // sqlx logs every statement at info level; ours hold no secrets
        // (values are bound, never inlined), but they are noise.
        .sqlx_logging(false);
    // A connection returns to the pool only in a known state: see `settled`.
    opt.map_sqlx_sqlite_pool_opts(|o| o.after_release(|c, _| Box::pin(settled(c))));
    opt.map_sqlx_postgres_pool_opts(|o| o.after_release(|c, _| Box::pin(settled(c))));
    opt.map_sqlx_mysql_pool_opts(|o| o.after_release(|c, _| Box::pin(settled(c))));
    if url.backend() == Backend::Sqlite {
        let read_only = url.is_read_only();
        // A read-only connection to a WAL database creates its `-shm` file
        // (and leaves it) when no other process has the database open. With
        // neither `-wal` nor `-shm` there, nobody writes it now, and it is
        // read as an immutable file: nothing at all is created or changed.
        let immutable = read_only
            && url
                .sqlite_file()
                .is_some_and(|file| !wal_files_exist(&file));
        // WAL lets readers proceed while one writer commits; writers wait
        // for each other up to the busy timeout instead of failing. The
        // synchronous level stays FULL: a commit that was audited survives
        // a power loss. A read-only connection leaves the journal mode as
        // it is: switching it would write the file.
        opt.map_sqlx_sqlite_opts(move |o| {
            let o = if read_only {
                o.read_only(true).immutable(immutable)
            } else {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            };
            o.busy_timeout(Duration::from_secs(30))
                // Rows come from the connection's worker thread through a
                // channel; sqlx's default of 50 makes a 1000-row rewrap
                // batch ping-pong between threads 20 times. A batch's worth
                // is bounded by the caller's LIMIT, and `all()` collects
                // every row anyway.
                .row_buffer_size(SQLITE_ROW_BUFFER)
        });
        #[cfg(feature = "test-util")]
        if let Some(limit) = config.sqlite_page_limit.clone() {
            test_util::apply_page_limit(&mut opt, limit);
        }
    }
    create_private_sqlite_file(url)?;
    reachable(url).await?;
    let mut attempt = 0;
    loop {
        match Database::connect(opt.clone()).await {
            Ok(db) => return Ok(db),
            // Connecting switches a new SQLite file to WAL, which needs the
            // file to itself; SQLite answers a second process doing the
            // same at that moment with "database is locked" at once rather
            // than waiting in its busy handler. Take turns instead.
            Err(e)
                if url.backend() == Backend::Sqlite
                    && attempt < SQLITE_CONNECT_RETRIES
                    && is_sqlite_busy(&e) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10)))).await;
            }
            Err(e) => {
                let message = redact_urls_in(&e.to_string());
                return Err(CredentialError::DatabaseUnavailable {
                    message: format!("cannot connect to {url}: {message}"),
                });
            }
        }
    }
}

/// Whether `err` is SQLite's `SQLITE_BUSY` ("database is locked"), by its
/// result code (the primary code is the extended code's low byte).
fn is_sqlite_busy(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    const SQLITE_BUSY: i64 = 5;
    let (DbErr::Conn(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = &**e else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// Whether an SQLite database's `-wal` or `-shm` file exists (a process has
/// it open, or one that did stopped without cleaning up).
fn wal_files_exist(file: &std::path::Path) -> bool {
    ["-wal", "-shm"].iter().any(|suffix| {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        std::path::Path::new(&name).exists()
    })
}

/// How long the first contact with a database server may take.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fails fast, with the host and port, when a database server cannot be
/// reached at all: the pool would retry a refused connection until its
/// acquire timeout (30 s) before saying anything.
async fn reachable(url: &crate::url::DatabaseUrl) -> Result<(), CredentialError> {
    use std::str::FromStr as _;
    let (host, port) = match url.backend() {
        Backend::Postgres => {
            match sea_orm::sqlx::postgres::PgConnectOptions::from_str(url.expose()) {
                Ok(o) => (o.get_host().to_owned(), o.get_port()),
                Err(_) => return Ok(()),
            }
        }
        Backend::MySql => match sea_orm::sqlx::mysql::MySqlConnectOptions::from_str(url.expose()) {
            Ok(o) => (o.get_host().to_owned(), o.get_port()),
            Err(_) => return Ok(()),
        },
        _ => return Ok(()),
    };
    // A Unix socket (PostgreSQL's host may be a folder) is left to the driver.
    if host.starts_with('/') {
        return Ok(());
    }
    let target = format!(
        "{}:{port}",
        host.trim_start_matches('[').trim_end_matches(']')
    );
    let failed = |why: String| CredentialError::DatabaseUnavailable {
        message: format!("cannot reach the database server of {url} at {target}: {why}"),
    };
    match tokio::time::timeout(REACH_TIMEOUT, tokio::net::lookup_host(target.clone())).await {
        Ok(Ok(mut addrs)) => {
            let Some(addr) = addrs.next() else {
                return Err(failed("the host name has no address".to_owned()));
            };
            match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(failed(e.to_string())),
                Err(_) => Err(failed(format!(
                    "no answer within {} s",
                    REACH_TIMEOUT.as_secs()
                ))),
            }
        }
        Ok(Err(e)) => Err(failed(format!("the host name does not resolve ({e})"))),
        Err(_) => Err(failed("the host name does not resolve in time".to_owned())),
    }
}

/// Creates a new SQLite database file as an empty file of mode 0600
/// before SQLite opens it (SQLite would create it 0644, readable by every
/// user of the machine); its `-wal` and `-shm` files take the same mode.
/// An existing file is left as it is, and so is a URL that may not create
/// the file.
fn create_private_sqlite_file(url: &crate::url::DatabaseUrl) -> Result<(), CredentialError> {
    let Some(file) = url.sqlite_file() else {
        return Ok(());
    };
    if !url.expose().contains("mode=rwc") || file.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(&file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CredentialError::DatabaseUnavailable {
            message: format!(
                "cannot create the SQLite database {}: {e}; check that its folder exists and is writable",
                file.display()
            ),
        }),
    }
}

/// Whether a connection being released may go back to the pool: only when
/// no transaction is open on it, as far as the driver knows, after any
/// rollback queued by a dropped transaction has run (the ping waits for
/// it). A COMMIT or ROLLBACK that failed leaves the driver's transaction
/// depth above zero while the database may have rolled back by itself
/// (SQLite does on SQLITE_FULL) or kept the transaction open: reused, such
/// a connection would turn every later `BEGIN` into a SAVEPOINT of a
/// transaction that never commits, acknowledging writes that are never
/// stored and holding SQLite's write lock. Closing it rolls back whatever
/// the database still holds.
async fn settled<C: sea_orm::sqlx::Connection>(conn: &mut C) -> Result<bool, sea_orm::sqlx::Error> {
    if conn.is_in_transaction() {
        conn.ping().await?;
    }
    if conn.is_in_transaction() {
        tracing::warn!(
            "a database connection was released with a transaction in an unknown state (a failed COMMIT or ROLLBACK); it is closed, not reused"
        );
        return Ok(false);
    }
    Ok(true)
}

#[cfg(feature = "test-util")]
mod test_util {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use sea_orm::ConnectOptions;
    use sea_orm::sqlx::{Executor as _, SqliteConnection};

    async fn set_limit(
        conn: &mut SqliteConnection,
        limit: &AtomicU32,
    ) -> Result<(), sea_orm::sqlx::Error> {
        let pages = limit.load(Ordering::SeqCst);
        conn.execute(sea_orm::sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {pages}"
        )))
        .await?;
        Ok(())
    }

    /// Every SQLite connection of the pool gets `PRAGMA max_page_count` from
    /// `limit` when it opens and each time it is handed out, so a test can
    /// fill the database (SQLITE_FULL) and free it again on a live pool.
    pub(super) fn apply_page_limit(opt: &mut ConnectOptions, limit: Arc<AtomicU32>) {
        opt.map_sqlx_sqlite_pool_opts(move |o| {
            let on_connect = Arc::clone(&limit);
            let on_acquire = Arc::clone(&limit);
            o.after_release(|c, _| Box::pin(super::settled(c)))
                .after_connect(move |c, _| {
                    let limit = Arc::clone(&on_connect);
                    Box::pin(async move { set_limit(c, &limit).await })
                })
                .before_acquire(move |c, _| {
                    let limit = Arc::clone(&on_acquire);
                    Box::pin(async move { set_limit(c, &limit).await.map(|()| true) })
                })
        });
    }
}

/// How often an SQLite connection is retried while another process holds
/// the file for switching it to WAL: about 30 s in all, like the busy
/// timeout.
const SQLITE_CONNECT_RETRIES: u32 = 300;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sea_orm::sqlx::{ConnectOptions as _, Executor as _};
    use sea_orm::{DbErr, RuntimeErr};

    use super::is_sqlite_busy;

    fn as_db_err(e: sea_orm::sqlx::Error) -> DbErr {
        DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)))
    }

    /// A real "database is locked" from SQLite is recognised by its code;
    /// another SQLite error is not.
    #[tokio::test]
    async fn sqlite_busy_is_told_by_its_result_code() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("busy.db"))
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::ZERO);
        let mut holder: SqliteConnection = options.connect().await.unwrap();
        holder.execute("CREATE TABLE t (x)").await.unwrap();
        holder.execute("BEGIN EXCLUSIVE").await.unwrap();
        let mut other: SqliteConnection = options.connect().await.unwrap();
        let busy = other.execute("SELECT * FROM t").await.unwrap_err();
        assert!(is_sqlite_busy(&as_db_err(busy)));
        holder.execute("COMMIT").await.unwrap();
        let syntax = other.execute("SELEKT 1").await.unwrap_err();
        assert!(!is_sqlite_busy(&as_db_err(syntax)));
    }
}

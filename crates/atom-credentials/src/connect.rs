//! Opening the connection pool for a [`DatabaseUrl`].

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::StoreConfig;
use crate::error::CredentialError;
use crate::url::{Backend, redact_urls_in};

/// Rows an SQLite connection's worker thread may queue ahead of the reader:
/// one default rewrap batch.
const SQLITE_ROW_BUFFER: usize = crate::rewrap::DEFAULT_BATCH_SIZE as usize;

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
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(300))
        // sqlx logs every statement at info level; ours hold no secrets
        // (values are bound, never inlined), but they are noise.
        .sqlx_logging(false);
    if url.backend() == Backend::Sqlite {
        // WAL lets readers proceed while one writer commits; writers wait
        // for each other up to the busy timeout instead of failing. The
        // synchronous level stays FULL: a commit that was audited survives
        // a power loss.
        opt.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
                // Rows come from the connection's worker thread through a
                // channel; sqlx's default of 50 makes a 1000-row rewrap
                // batch ping-pong between threads 20 times. A batch's worth
                // is bounded by the caller's LIMIT, and `all()` collects
                // every row anyway.
                .row_buffer_size(SQLITE_ROW_BUFFER)
        });
    }
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
                    && e.to_string().contains("database is locked") =>
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

/// How often an SQLite connection is retried while another process holds
/// the file for switching it to WAL: about 30 s in all, like the busy
/// timeout.
const SQLITE_CONNECT_RETRIES: u32 = 300;

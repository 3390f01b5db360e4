//! Put/get throughput and rewrap rows/s of the credential store.
//!
//! ```text
//! cargo run --release -p atom-credentials --example throughput -- [ROWS] [WORKERS] [BATCH]
//! ```
//!
//! Runs on SQLite (a temporary file) and, when `ATOM_TEST_POSTGRES_URL` /
//! `ATOM_TEST_MYSQL_URL` name an admin URL, on a fresh database there
//! (dropped afterwards). ROWS (default 100000) rows are seeded under an old
//! key with multi-row INSERTs, the key is rotated, and `rewrap` moves them
//! to the new key with WORKERS (default: CPU count) workers on disjoint id
//! ranges. Audit events go to a counting sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use atom_audit::{AuditError, AuditEvent, AuditSink, Auditor};
use atom_credentials::test_util::TestDb;
use atom_credentials::{
    Backend, CredentialStore, DatabaseUrl, Provider, RewrapOptions, StoreConfig, UserId,
};
use atom_crypto::{Context, Key, Keyring, Protection, SecretString};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait, Value};

/// As in the shipped binaries (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Default)]
struct Counting(AtomicU64);

#[async_trait]
impl AuditSink for Counting {
    async fn record(&self, _event: &AuditEvent) -> Result<(), AuditError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(100_000, |a| a.parse().unwrap());
    let workers: std::num::NonZeroU32 = args.next().map_or_else(
        || {
            std::thread::available_parallelism()
                .ok()
                .and_then(|n| u32::try_from(n.get()).ok())
                .and_then(std::num::NonZeroU32::new)
                .unwrap_or(std::num::NonZeroU32::MIN)
        },
        |a| a.parse().unwrap(),
    );
    let batch: std::num::NonZeroU32 = args
        .next()
        .map_or(atom_credentials::DEFAULT_BATCH_SIZE, |a| a.parse().unwrap());
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        // A fresh database, dropped at the end; a server backend whose
        // variable is unset prints SKIPPED.
        if let Some(db) = TestDb::new(backend, "throughput").await {
            run(&backend.to_string(), &db.url, rows, workers, batch).await;
        }
    }
}

async fn run(
    name: &str,
    url: &str,
    rows: usize,
    workers: std::num::NonZeroU32,
    batch: std::num::NonZeroU32,
) {
    let old = Key::generate().unwrap();
    let new = Key::generate().unwrap();
    let sink = Arc::new(Counting::default());
    let config = StoreConfig::new(DatabaseUrl::parse(url).unwrap());
    let old_ring = Keyring::new(old.clone(), []).unwrap();
    let (store, _) = CredentialStore::open(
        &config,
        Protection::Encrypted(old_ring.clone()),
        Auditor::new(sink.clone()),
    )
    .await
    .unwrap();

    // put / get: one credential per call, each audited, each put committed.
    let n_put = 2_000;
    let github = Provider::parse("github").unwrap();
    let t = Instant::now();
    for i in 0..n_put {
        let user = UserId::parse(&format!("put_{i}")).unwrap();
        let token = SecretString::from(format!("gho_{i:040}"));
        store.put(&user, &github, &token).await.unwrap();
    }
    let put_rate = n_put as f64 / t.elapsed().as_secs_f64();
    let n_get = 10_000;
    let t = Instant::now();
    for i in 0..n_get {
        let user = UserId::parse(&format!("put_{}", i % n_put)).unwrap();
        store.get(&user, &github).await.unwrap();
    }
    let get_rate = n_get as f64 / t.elapsed().as_secs_f64();
    println!(
        "{name}: put {put_rate:>8.0} /s (sequential, one commit each), get {get_rate:>8.0} /s (sequential)"
    );

    // Seed `rows` credentials under the old key, 500 rows per INSERT.
    let t = Instant::now();
    seed(url, &old_ring, rows).await;
    let seeded = t.elapsed();

    let store = store.with_protection(Protection::Encrypted(old_ring.promote(new).unwrap()));
    let pending = store.status().await.unwrap().needs_rewrap;
    let t = Instant::now();
    let ranges = store.split_ids(workers).await.unwrap();
    let mut tasks = Vec::new();
    for range in ranges {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rewrap(&RewrapOptions::new().batch_size(batch).range(range), |_| {})
                .await
                .unwrap()
        }));
    }
    let mut done = 0;
    for task in tasks {
        let p = task.await.unwrap();
        assert_eq!(p.failed, 0);
        done += p.done;
    }
    let dt = t.elapsed().as_secs_f64();
    let status = store.status().await.unwrap();
    assert_eq!(status.needs_rewrap, 0);
    println!(
        "{name}: rewrap {done} of {pending} rows in {dt:.2}s = {:>8.0} rows/s ({workers} workers, batches of {}; seeded in {:.1}s; {} audit events)",
        done as f64 / dt,
        batch,
        seeded.as_secs_f64(),
        sink.0.load(Ordering::Relaxed),
    );
    store.close().await.unwrap();
}

async fn seed(url: &str, ring: &Keyring, rows: usize) {
    let url = if url.starts_with("sqlite") {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    let db = Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let now = chrono::Utc::now().naive_utc();
    let txn = db.begin().await.unwrap();
    for start in (0..rows).step_by(500) {
        let end = (start + 500).min(rows);
        let mut sql = String::from(
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, key_id, created_at, updated_at) VALUES ",
        );
        let mut values: Vec<Value> = Vec::new();
        let mut n = 0;
        for i in start..end {
            let user = format!("user_{i}");
            let sealed = ring.seal(
                &Context::credential(&user, "slack"),
                &format!("xoxb-{i:080}"),
            );
            if i > start {
                sql.push_str(", ");
            }
            let mut mark = || {
                n += 1;
                if backend == DbBackend::Postgres {
                    format!("${n}")
                } else {
                    "?".to_owned()
                }
            };
            sql.push_str(&format!(
                "({}, 'slack', {}, {}, {}, {})",
                mark(),
                mark(),
                mark(),
                mark(),
                mark()
            ));
            values.extend([
                user.into(),
                sealed.as_str().into(),
                sealed.key_id().map(|k| k.to_string()).into(),
                now.into(),
                now.into(),
            ]);
        }
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    db.close().await.unwrap();
}

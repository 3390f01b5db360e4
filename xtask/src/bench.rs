//! `bench-rotate`: seed N credentials fast (sealed in parallel, multi-row
//! INSERTs in one transaction), time a full parallel rewrap to a new key,
//! and run the Python anchor on the same backend for comparison.
//!
//! The database is scratch: its credential tables are dropped first.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use atom_audit::{Auditor, TracingSink};
use atom_credentials::{CredentialStore, DatabaseUrl, StoreConfig};
use atom_crypto::{Context, Key, Keyring, Protection};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value,
};
use serde::Serialize;

use crate::sysinfo::{CpuSample, peak_rss_kib};
use anyhow::{Error, anyhow};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Credentials to seed and rewrap.
    pub rows: u64,
    /// A scratch database (its credential tables are dropped).
    pub database_url: String,
    /// Parallel rewrap workers.
    pub workers: NonZeroU32,
    /// Rows per rewrap batch.
    pub batch_size: NonZeroU32,
}

/// The figures of one Rust run.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BenchReport {
    /// Rows seeded and rewrapped.
    pub rows: u64,
    /// Seconds to seed.
    pub seed_secs: f64,
    /// Seconds of the rewrap (split, parallel pass and sweep).
    pub rewrap_secs: f64,
    /// Rows rewrapped.
    pub rewrapped: u64,
    /// Rewrapped rows per second.
    pub rows_per_sec: f64,
    /// CPU time of this process during the rewrap / wall time (cores).
    pub process_cores: f64,
    /// Busy CPU of the whole machine during the rewrap (cores; includes a
    /// local database server).
    pub machine_cores: f64,
    /// Cores of the machine.
    pub cores: usize,
}

/// The Python anchor's figure.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PythonFigure {
    /// Rows it rotated.
    pub rows: u64,
    /// Seconds.
    pub secs: f64,
    /// Rows per second.
    pub rows_per_sec: f64,
}

/// Rows sealed per chunk while seeding (memory stays bounded).
const SEED_CHUNK: usize = 20_000;
/// Rows per INSERT statement (6 parameters each, below every backend's limit).
const ROWS_PER_INSERT: usize = 500;

/// Seeds `options.rows` credentials under one key and times their rewrap
/// to another.
pub async fn bench_rotate(options: &BenchOptions) -> Result<BenchReport, Error> {
    let old = Key::generate()?;
    let new = Key::generate()?;
    let keyring = Keyring::new(old.clone(), [])?;
    let raw = connect_raw(&options.database_url).await?;
    drop_tables(&raw).await?;
    let auditor = Auditor::new(TracingSink::new());
    let config = StoreConfig::new(DatabaseUrl::parse(&options.database_url)?)
        .with_max_connections(options.workers.saturating_add(2));
    let (store, _) =
        CredentialStore::open(&config, Protection::Encrypted(keyring.clone()), auditor).await?;

    let started = Instant::now();
    seed(&raw, &keyring, options.rows).await?;
    let seed_secs = started.elapsed().as_secs_f64();

    let store = store.with_protection(Protection::Encrypted(keyring.promote(new)?));
    let cpu = CpuSample::now();
    let started = Instant::now();
    let totals =
        atom_rotation::rewrap_credentials(&store, options.workers, options.batch_size).await?;
    let rewrap_secs = started.elapsed().as_secs_f64();
    let (process_cores, machine_cores) = cpu.cores_busy_since();
    let status = store.status().await?;
    if totals.failed > 0 || status.needs_rewrap > 0 || totals.done != options.rows {
        return Err(anyhow!(
            "the rewrap did not cover every row: {} rewrapped, {} failed, {} still pending of {}",
            totals.done,
            totals.failed,
            status.needs_rewrap,
            options.rows
        ));
    }
    store.close().await?;
    raw.close().await?;
    Ok(BenchReport {
        rows: options.rows,
        seed_secs,
        rewrap_secs,
        rewrapped: totals.done,
        rows_per_sec: totals.done as f64 / rewrap_secs.max(1e-9),
        process_cores,
        machine_cores,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Runs `bench_rotate.py N URL` of the Python anchor in `anchor_dir` on the
/// same backend: a sibling SQLite file, or the same server database after
/// dropping the credential tables (so it starts from its own schema).
pub async fn run_python_anchor(
    anchor_dir: &Path,
    rows: u64,
    database_url: &str,
) -> Result<PythonFigure, Error> {
    let script = anchor_dir.join("bench_rotate.py");
    if !script.exists() {
        return Err(anyhow!(
            "the Python anchor {} is missing; pass --anchor-dir pointing at shared/anchors/atom_py",
            script.display()
        ));
    }
    let url = python_url(database_url)?;
    if let Some(path) = url.strip_prefix("sqlite:///") {
        let _ = std::fs::remove_file(path);
    } else {
        let raw = connect_raw(database_url).await?;
        drop_tables(&raw).await?;
        raw.close().await?;
    }
    let output = Command::new("python3")
        .arg(&script)
        .arg(rows.to_string())
        .arg(&url)
        .env("PYTHONPATH", anchor_dir)
        .output()
        .map_err(|e| anyhow!("cannot start python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(anyhow!(
            "the Python anchor failed ({}): {}{}; it needs pip packages cryptography and sqlalchemy (and psycopg2-binary for PostgreSQL)",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_python(&stdout)
        .ok_or_else(|| anyhow!("unexpected output of the Python anchor: {}", stdout.trim()))
}

/// The anchor's SQLAlchemy URL for our URL.
fn python_url(url: &str) -> Result<String, Error> {
    let (scheme, rest) = url.split_once("://").unwrap_or((url, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let path = rest.split('?').next().unwrap_or(rest);
            Ok(format!("sqlite:///{path}.python.db"))
        }
        "postgres" | "postgresql" => Ok(format!("postgresql+psycopg2://{rest}")),
        "mysql" | "mariadb" => Ok(format!("mysql+pymysql://{rest}")),
        _ => Err(anyhow!(
            "the Python anchor cannot use {}",
            atom_credentials::redact_url(url)
        )),
    }
}

/// `python-sqlalchemy rotate: {k} rows in {dt:.2f}s = {rate} rows/s`.
fn parse_python(stdout: &str) -> Option<PythonFigure> {
    let line = stdout.lines().find(|l| l.contains("rows/s"))?;
    let after = line.split_once("rotate:")?.1.trim();
    let rows: u64 = after.split_whitespace().next()?.parse().ok()?;
    let secs: f64 = after
        .split_once(" in ")?
        .1
        .split('s')
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some(PythonFigure {
        rows,
        secs,
        rows_per_sec: rows as f64 / secs.max(1e-9),
    })
}

pub(crate) async fn connect_raw(url: &str) -> Result<DatabaseConnection, Error> {
    let mut url = url.trim().to_owned();
    if url.starts_with("mariadb://") {
        url = format!("mysql://{}", &url["mariadb://".len()..]);
    }
    if url.starts_with("sqlite:") && !url.contains(":memory:") && !url.contains("mode=") {
        url.push_str(if url.contains('?') {
            "&mode=rwc"
        } else {
            "?mode=rwc"
        });
    }
    Database::connect(url.as_str()).await.map_err(|e| {
        anyhow!(
            "cannot connect to {}: {}",
            atom_credentials::redact_url(&url),
            atom_credentials::redact_url(&e.to_string())
        )
    })
}

pub(crate) async fn drop_tables(db: &DatabaseConnection) -> Result<(), Error> {
    for table in [
        "user_credentials",
        "user_credentials_archive",
        "atom_credentials_migrations",
    ] {
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
            .await?;
    }
    Ok(())
}

/// Seals `rows` tokens in parallel, chunk by chunk, and inserts them with
/// multi-row INSERTs in one transaction.
async fn seed(db: &DatabaseConnection, keyring: &Keyring, rows: u64) -> Result<(), Error> {
    let backend = db.get_database_backend();
    let key_id = keyring.primary_id().to_string();
    let now = chrono::Utc::now().naive_utc();
    let txn = db.begin().await?;
    let mut next = 0u64;
    let mut rng = seed_rng();
    while next < rows {
        let n = (rows - next).min(SEED_CHUNK as u64);
        let chunk: Vec<(String, String)> = (next..next + n)
            .map(|i| {
                let token = format!(
                    "xoxb-{:016x}{:016x}{:016x}{:016x}{:016x}",
                    rng.next(),
                    rng.next(),
                    rng.next(),
                    rng.next(),
                    rng.next()
                );
                (format!("user_{i}"), token)
            })
            .collect();
        let sealed = seal_all(keyring, chunk);
        for part in sealed.chunks(ROWS_PER_INSERT) {
            txn.execute_raw(insert_statement(backend, part, &key_id, now))
                .await?;
        }
        next += n;
    }
    txn.commit().await?;
    Ok(())
}

fn seal_all(keyring: &Keyring, chunk: Vec<(String, String)>) -> Vec<(String, String)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = chunk.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(user, token)| {
                            let sealed = keyring.seal(&Context::credential(user, "slack"), token);
                            (user.clone(), sealed.into_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn insert_statement(
    backend: DbBackend,
    rows: &[(String, String)],
    key_id: &str,
    now: chrono::NaiveDateTime,
) -> Statement {
    let mut sql = String::from(
        "INSERT INTO user_credentials (user_id, provider, encrypted_token, key_id, created_at, updated_at) VALUES ",
    );
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 6);
    let mut n = 0;
    for (i, (user, token)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 0..6 {
            if j > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if backend == DbBackend::Postgres {
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
        values.push(user.as_str().into());
        values.push("slack".into());
        values.push(token.as_str().into());
        values.push(key_id.into());
        values.push(now.into());
        values.push(now.into());
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// splitmix64: token contents only need to differ, not to be secret.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn seed_rng() -> SplitMix {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    SplitMix(h.finish())
}

/// The default folder of the Python anchor, relative to the workspace root.
pub fn default_anchor_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join("../shared/anchors/atom_py")
}

/// Peak resident memory of this process (VmHWM), in KiB.
pub fn peak_memory_kib() -> Option<u64> {
    peak_rss_kib()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn python_urls() {
        assert_eq!(
            python_url("sqlite:///tmp/b.db?mode=rwc").unwrap(),
            "sqlite:////tmp/b.db.python.db"
        );
        assert_eq!(
            python_url("postgres://postgres@127.0.0.1:5432/test").unwrap(),
            "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
        );
    }

    #[test]
    fn python_output() {
        let f =
            parse_python("python-sqlalchemy rotate: 1000 rows in 2.00s = 500 rows/s\n").unwrap();
        assert_eq!(f.rows, 1000);
        assert!((f.rows_per_sec - 500.0).abs() < 1e-6);
    }
}

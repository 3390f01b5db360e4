//! `bench-envelope`: the cost of a master key rotation with envelope
//! encryption (rewrap one data key per user) against today's rotation
//! without it (rewrap every credential row), on the same data in one run.
//!
//! The data: `credentials` tokens over `users` users (user `i % users`,
//! provider `p{i / users}`). Phase A seeds them enveloped (one data key per
//! user under the old master key) and times `rewrap_data_keys` to a new
//! master key. Phase B seeds the same tokens sealed directly under the old
//! master key (v1) and times the parallel row rewrap `rotate-keys` runs.
//! The database is scratch: its credential and key store tables are
//! dropped before each phase.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Instant;

use anyhow::{Error, anyhow};
use atom_audit::{Auditor, TracingSink};
use atom_credentials::{CredentialStore, DatabaseUrl, StoreConfig};
use atom_crypto::{Context, DataKey, Key, Keyring, Protection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use serde::Serialize;

use crate::bench::{connect_raw, drop_tables};
use crate::sysinfo::{CpuSample, current_rss_kib};

/// What to measure.
#[derive(Debug, Clone)]
pub struct EnvelopeOptions {
    /// Credentials.
    pub credentials: u64,
    /// Users they belong to.
    pub users: u64,
    /// A scratch database.
    pub database_url: String,
    /// Workers of the row rewrap (phase B).
    pub workers: NonZeroU32,
    /// Rows (or keys) per batch.
    pub batch_size: NonZeroU32,
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PhaseFigure {
    /// Seconds to seed.
    pub seed_secs: f64,
    /// Seconds of the rotation.
    pub secs: f64,
    /// What was rewrapped (data keys in A, rows in B).
    pub rewrapped: u64,
    /// This process's resident memory before the rotation (KiB).
    pub rss_before_kib: u64,
    /// The highest resident memory sampled during the rotation (KiB).
    pub rss_peak_kib: u64,
    /// CPU of this process during the rotation (cores).
    pub process_cores: f64,
}

/// Both phases.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EnvelopeReport {
    /// Phase A: master rotation with envelope encryption.
    pub envelope: PhaseFigure,
    /// Phase B: rewrap of every row.
    pub rows: PhaseFigure,
}

/// Runs both phases.
pub async fn bench_envelope(options: &EnvelopeOptions) -> Result<EnvelopeReport, Error> {
    if options.users == 0 || options.credentials < options.users {
        return Err(anyhow!(
            "--users must be at least 1 and at most --credentials"
        ));
    }
    let old = Key::generate()?;
    let new = Key::generate()?;
    let keyring = Keyring::new(old, [])?;
    let raw = connect_raw(&options.database_url).await?;
    let config = StoreConfig::new(DatabaseUrl::parse(&options.database_url)?)
        .with_max_connections(options.workers.saturating_add(2));

    // Phase A.
    reset(&raw).await?;
    let (store, _) = CredentialStore::open(
        &config.clone().with_envelope(true),
        Protection::Encrypted(keyring.clone()),
        Auditor::new(TracingSink::new()),
    )
    .await?;
    let started = Instant::now();
    seed(&raw, &keyring, options, true).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let store = store.with_protection(Protection::Encrypted(keyring.promote(new.clone())?));
    let envelope = measure(seed_secs, async {
        let progress = store
            .rewrap_data_keys(options.batch_size, options.workers, false)
            .await?;
        let status = store.status().await?;
        if progress.failed > 0 || status.data_keys_need_rewrap > 0 || progress.done != options.users
        {
            return Err(anyhow!(
                "the data key rewrap did not cover every key: {} rewrapped, {} failed, {} pending of {}",
                progress.done,
                progress.failed,
                status.data_keys_need_rewrap,
                options.users
            ));
        }
        Ok(progress.done)
    })
    .await?;
    store.close().await?;

    // Phase B.
    reset(&raw).await?;
    let (store, _) = CredentialStore::open(
        &config,
        Protection::Encrypted(keyring.clone()),
        Auditor::new(TracingSink::new()),
    )
    .await?;
    let started = Instant::now();
    seed(&raw, &keyring, options, false).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let store = store.with_protection(Protection::Encrypted(keyring.promote(new)?));
    let rows = measure(seed_secs, async {
        let totals =
            atom_rotation::rewrap_credentials(&store, options.workers, options.batch_size).await?;
        if totals.failed > 0 || totals.done != options.credentials {
            return Err(anyhow!(
                "the row rewrap did not cover every row: {} rewrapped, {} failed of {}",
                totals.done,
                totals.failed,
                options.credentials
            ));
        }
        Ok(totals.done)
    })
    .await?;
    store.close().await?;
    reset(&raw).await?;
    raw.close().await?;
    Ok(EnvelopeReport { envelope, rows })
}

/// Times `work`, sampling this process's resident memory meanwhile.
async fn measure(
    seed_secs: f64,
    work: impl std::future::Future<Output = Result<u64, Error>>,
) -> Result<PhaseFigure, Error> {
    let rss_before_kib = current_rss_kib().unwrap_or(0);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_before_kib));
    let sampling = {
        let peak = std::sync::Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                if let Some(kib) = current_rss_kib() {
                    peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let cpu = CpuSample::now();
    let started = Instant::now();
    let result = work.await;
    let secs = started.elapsed().as_secs_f64();
    let (process_cores, _) = cpu.cores_busy_since();
    sampling.abort();
    Ok(PhaseFigure {
        seed_secs,
        secs,
        rewrapped: result?,
        rss_before_kib,
        rss_peak_kib: peak.load(std::sync::atomic::Ordering::Relaxed),
        process_cores,
    })
}

async fn reset(db: &DatabaseConnection) -> Result<(), Error> {
    drop_tables(db).await?;
    for table in ["atom_user_keys", "atom_keystore_migrations"] {
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
            .await?;
    }
    Ok(())
}

/// Users per seeding chunk (their credentials are sealed together).
const USERS_PER_CHUNK: u64 = 2_000;
/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 400;

/// Seeds the credentials (and, enveloped, the data keys) in one
/// transaction, sealing in parallel chunk by chunk.
async fn seed(
    db: &DatabaseConnection,
    keyring: &Keyring,
    options: &EnvelopeOptions,
    enveloped: bool,
) -> Result<(), Error> {
    let backend = db.get_database_backend();
    let now = chrono::Utc::now().naive_utc();
    let per_user = options.credentials.div_ceil(options.users);
    let txn = db.begin().await?;
    let mut first = 0;
    while first < options.users {
        let last = (first + USERS_PER_CHUNK).min(options.users);
        let users: Vec<u64> = (first..last).collect();
        let (keys, rows) = seal_chunk(keyring, &users, options, per_user, enveloped)?;
        for part in keys.chunks(ROWS_PER_INSERT) {
            txn.execute_raw(insert(backend, KEYS_INSERT, part, now, 1))
                .await?;
        }
        for part in rows.chunks(ROWS_PER_INSERT) {
            txn.execute_raw(insert(backend, ROWS_INSERT, part, now, 2))
                .await?;
        }
        first = last;
    }
    txn.commit().await?;
    // The seed is one large transaction: on SQLite it sits in the WAL until
    // a checkpoint copies it into the database, which the first commit of
    // the measured rotation would otherwise pay for.
    if backend == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await?;
    }
    Ok(())
}

const KEYS_INSERT: &str =
    "INSERT INTO atom_user_keys (user_id, key_id, seq, kek_id, wrapped_key, created_at) VALUES ";
const ROWS_INSERT: &str = "INSERT INTO user_credentials (user_id, provider, encrypted_token, key_id, data_key_id, created_at, updated_at) VALUES ";

type Rows = Vec<Vec<Value>>;

/// The data key rows and credential rows of `users`, sealed on every core.
/// Credential `i` belongs to user `i % users` with provider `p{i / users}`.
fn seal_chunk(
    keyring: &Keyring,
    users: &[u64],
    options: &EnvelopeOptions,
    per_user: u64,
    enveloped: bool,
) -> Result<(Rows, Rows), Error> {
    let (total_users, credentials) = (options.users, options.credentials);
    use rayon::prelude::*;
    let data_keys: HashMap<u64, DataKey> = if enveloped {
        users
            .par_iter()
            .map(|u| Ok((*u, DataKey::generate()?)))
            .collect::<Result<_, atom_crypto::CryptoError>>()?
    } else {
        HashMap::new()
    };
    let kek = keyring.primary_id().to_string();
    let key_rows: Rows = data_keys
        .par_iter()
        .map(|(u, key)| {
            let user = format!("user_{u}");
            let wrapped = keyring.wrap_data_key(&user, key).into_string();
            vec![
                user.into(),
                key.id().to_string().into(),
                0i64.into(),
                kek.clone().into(),
                wrapped.into(),
            ]
        })
        .collect();
    let rows: Rows = users
        .par_iter()
        .flat_map_iter(|u| {
            (0..per_user)
                .filter(move |p| p * total_users + u < credentials)
                .map(move |p| (*u, p))
        })
        .map(|(u, p)| {
            let user = format!("user_{u}");
            let provider = format!("p{p}");
            let token = format!("xoxb-{u:016x}-{p:04x}-0123456789abcdef0123456789abcdef");
            let context = Context::credential(&user, &provider);
            let (sealed, key_id, data_key_id) = match data_keys.get(&u) {
                Some(key) => (
                    keyring.seal_enveloped(key, &context, &token),
                    None,
                    Some(key.id().to_string()),
                ),
                None => (
                    keyring.seal(&context, &token).into_string(),
                    Some(kek.clone()),
                    None,
                ),
            };
            vec![
                user.into(),
                provider.into(),
                sealed.into(),
                key_id.into(),
                data_key_id.into(),
            ]
        })
        .collect();
    Ok((key_rows, rows))
}

/// A multi-row INSERT of `rows`, each followed by `nows` times `now`.
fn insert(
    backend: DbBackend,
    head: &str,
    rows: &[Vec<Value>],
    now: chrono::NaiveDateTime,
    nows: usize,
) -> Statement {
    let mut sql = String::from(head);
    let mut values = Vec::new();
    let mut n = 0;
    for (i, row) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        let times = std::iter::repeat_n(Value::from(now), nows);
        for (j, value) in row.iter().cloned().chain(times).enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if backend == DbBackend::Postgres {
                sql.push_str(&format!("${n}"));
            } else {
                sql.push('?');
            }
            values.push(value);
        }
        sql.push(')');
    }
    Statement::from_sql_and_values(backend, sql, values)
}

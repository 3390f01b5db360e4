//! Benchmarks of atom-audit.
//!
//! - `file_sink/append/*`: events per second appended to the chained log,
//!   at the default durability (fsync every record) and the cheaper ones.
//! - `credential_read/*`: one credential read (`Keyring::open` of an
//!   85-byte token) alone and with an audit event recorded first.
//!
//! Run: `cargo bench -p atom-audit -- --warm-up-time 1 --measurement-time 3`.
//! Logs are written under the target directory (a real disk, not tmpfs),
//! so fsync costs what it costs on this machine.
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::Path;
use std::time::{Duration, Instant};

use atom_audit::{Action, AuditSink, Auditor, Durability, FileSink, FileSinkOptions};
use atom_crypto::{Context, Key, Keyring};
use chrono::DateTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// As in the shipped binaries (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str =
    "gho_16C7e42F292c6912E7710c838347Ae178B4a0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHI";

fn runtime() -> tokio::runtime::Runtime {
    // Invariant: a current-thread runtime builds on any host that runs benches.
    #[allow(clippy::expect_used)]
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn durabilities() -> [(&'static str, Durability); 3] {
    [
        ("every_record (default)", Durability::EveryRecord),
        (
            "every_100",
            Durability::EveryN(NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN)),
        ),
        ("never", Durability::Never),
    ]
}

#[allow(clippy::unwrap_used)]
fn open_sink(rt: &tokio::runtime::Runtime, dir: &Path, durability: Durability) -> FileSink {
    let options = FileSinkOptions::default()
        .durability(durability)
        .checkpoint_every(NonZeroU64::new(100).unwrap());
    rt.block_on(FileSink::open_with(
        dir.join("audit.jsonl"),
        &Key::from_bytes([0x11; 32]),
        options,
    ))
    .unwrap()
}

#[allow(clippy::unwrap_used)]
fn file_sink(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("file_sink");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in durabilities() {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let sink = open_sink(&rt, dir.path(), durability);
        let event = atom_audit::AuditEvent::new(
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            Action::CredentialAccessed {
                user: "user-12345".into(),
                provider: "github".into(),
                key_id: Some(Key::from_bytes([5; 32]).id()),
            },
        );
        group.bench_function(format!("append/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        sink.record(black_box(&event)).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }

    // Eight tasks appending at once at the default durability: their
    // fsyncs run outside the lock and overlap.
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sink = std::sync::Arc::new(open_sink(&multi, dir.path(), Durability::EveryRecord));
    group.bench_function("append/every_record, 8 tasks", |b| {
        b.iter_custom(|iters| {
            multi.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..8u64)
                    .map(|t| {
                        let sink = std::sync::Arc::clone(&sink);
                        let n = iters / 8 + u64::from(t < iters % 8);
                        tokio::spawn(async move {
                            let event = atom_audit::AuditEvent::new(
                                DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                                Action::SecretRead {
                                    name: format!("task-{t}"),
                                    key_id: None,
                                },
                            );
                            for _ in 0..n {
                                sink.record(&event).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

#[allow(clippy::unwrap_used)]
fn credential_read(c: &mut Criterion) {
    assert_eq!(TOKEN.len(), 85);
    let rt = runtime();
    let keyring = Keyring::new(Key::from_bytes([5; 32]), []).unwrap();
    let context = Context::credential("user-12345", "github");
    let stored = keyring.seal(&context, TOKEN).into_string();
    let mut group = c.benchmark_group("credential_read");

    group.bench_function("open", |b| {
        b.iter(|| {
            keyring
                .open(black_box(&context), black_box(&stored))
                .unwrap()
        })
    });

    for (name, durability) in durabilities() {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let auditor = Auditor::new(open_sink(&rt, dir.path(), durability));
        group.bench_function(format!("open+audit/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        auditor
                            .record(Action::CredentialAccessed {
                                user: "user-12345".into(),
                                provider: "github".into(),
                                key_id: Some(keyring.primary_id()),
                            })
                            .await
                            .unwrap();
                        black_box(keyring.open(&context, &stored).unwrap());
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = file_sink, credential_read
}
criterion_main!(benches);

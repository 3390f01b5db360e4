//! A crash at any instant of the audit log's own steps (appending a
//! record, syncing, writing the checkpoint copies: temp file, fsync,
//! rename) leaves a trail that verifies, and the next writer continues it
//! and removes the temp files the crash left. A child process (this test
//! binary again) appends with a checkpoint after every record, so most of
//! its time is spent inside those steps, and is killed with SIGKILL at
//! random instants; issue #20 saw a false tamper alarm in 3 of 100 kills.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use atom_audit::{AuditSink, FileSink, FileSinkOptions, checkpoint_path, verify_anchored};

use crate::support::{audit_key, event, every};

/// Set in the child: the log to append to until killed.
const CHILD_LOG: &str = "ATOM_AUDIT_CRASH_CHILD_LOG";

fn options(anchor: &Path) -> FileSinkOptions {
    FileSinkOptions::default()
        .anchor(anchor.to_path_buf())
        .checkpoint_every(every(1))
}

/// The child's work (a no-op in a normal run): append events for ever.
#[test]
fn crash_child_appends_until_killed() {
    let Some(log) = std::env::var_os(CHILD_LOG) else {
        return;
    };
    let log = std::path::PathBuf::from(log);
    let anchor = log.with_extension("anchor");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let sink = FileSink::open_with(&log, &audit_key(), options(&anchor))
            .await
            .unwrap();
        for i in 0.. {
            sink.record(&event(i)).await.unwrap();
        }
    });
}

fn temps_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[cfg(unix)]
#[test]
fn a_kill_at_any_instant_leaves_a_trail_that_verifies() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let (mut kills, mut temps_seen, mut new_logs) = (0, 0, 0);
    let mut dir = tempfile::tempdir().unwrap();
    for round in 0..100 {
        // Every fourth round a new log, so the creation of a log (its
        // first checkpoint and first copies) is killed too.
        if round % 4 == 0 {
            dir = tempfile::tempdir().unwrap();
            new_logs += 1;
        }
        let log = dir.path().join("audit.jsonl");
        let anchor = log.with_extension("anchor");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child_appends_until_killed",
                "--nocapture",
            ])
            .env(CHILD_LOG, &log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(2_000 + random(25_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        temps_seen += temps_in(dir.path()).len();

        // What the crash left verifies as it is (no writer has run since).
        if log.exists() || checkpoint_path(&log).exists() {
            let report = verify_anchored(&log, &audit_key(), Some(&anchor)).unwrap();
            assert!(report.is_intact(), "round {round}: {report}");
        }
        // The next writer continues it, and the crash's temp files go.
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let sink = FileSink::open_with(&log, &audit_key(), options(&anchor))
                .await
                .unwrap();
            sink.record(&event(1_000_000)).await.unwrap();
            sink.flush().await.unwrap();
        });
        assert_eq!(temps_in(dir.path()), Vec::<String>::new(), "round {round}");
        let report = verify_anchored(&log, &audit_key(), Some(&anchor)).unwrap();
        assert!(report.is_intact(), "round {round}: {report}");
        assert_eq!(report.unanchored, 0, "round {round}: {report}");
    }
    println!(
        "audit log kills: {kills} ({new_logs} new logs), temp files left by kills: {temps_seen}"
    );
}

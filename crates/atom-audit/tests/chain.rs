//! `verify` catches every kind of tampering the chain is meant to expose.

use std::path::Path;

use atom_audit::{FileSinkOptions, ProblemKind, VerifyReport, checkpoint_path, verify};
use sha2::{Digest as _, Sha256};

use crate::support::{audit_key, every, lines, other_key, write_lines, write_log};

fn check(path: &Path) -> VerifyReport {
    verify(path, &audit_key()).unwrap()
}

fn problem(report: &VerifyReport) -> (Option<u64>, ProblemKind) {
    let p = report
        .problem
        .clone()
        .unwrap_or_else(|| panic!("expected a problem, got: {report}"));
    (p.line, p.kind)
}

#[tokio::test]
async fn an_untouched_log_is_intact_and_fully_anchored_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 10, FileSinkOptions::default(), true).await;
    let report = check(&path);
    assert!(report.is_intact(), "{report}");
    // The creation checkpoint (record 0), 10 events, the flush's checkpoint.
    assert_eq!(report.records, 12);
    assert_eq!(report.events, 10);
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.anchored, Some(11));
    assert_eq!(report.unanchored, 0);
}

#[tokio::test]
async fn one_byte_changed_anywhere_in_any_record_is_caught_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileSinkOptions::default().checkpoint_every(every(3));
    let path = write_log(dir.path(), 7, options, true).await;
    let original = lines(&path);
    assert!(original.len() >= 9, "events and checkpoints");
    let mut checked = 0;
    for (i, line) in original.iter().enumerate() {
        for j in 0..line.len() - 1 {
            let mut tampered = original.clone();
            tampered[i][j] ^= 0x01;
            write_lines(&path, &tampered);
            let report = check(&path);
            let (at, kind) = problem(&report);
            assert_eq!(
                at,
                Some(i as u64 + 1),
                "byte {j} of record {i} changed: {kind}"
            );
            assert_eq!(report.records, i as u64);
            checked += 1;
        }
    }
    assert!(checked > 1000);
    write_lines(&path, &original);
    assert!(check(&path).is_intact());
}

#[tokio::test]
async fn a_deleted_record_is_reported_as_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 6, FileSinkOptions::default(), true).await;
    let mut records = lines(&path);
    records.remove(2);
    write_lines(&path, &records);
    let (line, kind) = problem(&check(&path));
    assert_eq!(line, Some(3));
    assert_eq!(
        kind,
        ProblemKind::Removed {
            expected: 2,
            found: 3
        }
    );
}

#[tokio::test]
async fn two_swapped_records_are_reported_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 6, FileSinkOptions::default(), true).await;
    let mut records = lines(&path);
    records.swap(2, 3);
    write_lines(&path, &records);
    let (line, kind) = problem(&check(&path));
    assert_eq!(line, Some(3));
    assert_eq!(
        kind,
        ProblemKind::Reordered {
            expected: 2,
            found: 3
        }
    );
}

#[tokio::test]
async fn a_copied_record_inserted_later_is_reported_as_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 6, FileSinkOptions::default(), true).await;
    let mut records = lines(&path);
    let copy = records[1].clone();
    records.insert(4, copy);
    write_lines(&path, &records);
    let (line, kind) = problem(&check(&path));
    assert_eq!(line, Some(5));
    assert_eq!(
        kind,
        ProblemKind::Replayed {
            expected: 4,
            found: 1
        }
    );
}

/// What a forger without the audit key can do: copy the shape of a
/// record, chain it to the last one, and put a plain SHA-256 (or a MAC
/// under a key of their own) where the MAC goes.
fn forge(last: &[u8], seq: u64, mac_of: impl Fn(&[u8]) -> String) -> Vec<u8> {
    let text = std::str::from_utf8(last).unwrap().trim_end();
    let prev = &text[text.len() - 66..text.len() - 2];
    let key = &text[text.find("\"key\":\"").unwrap() + 7..][..12];
    let signed = format!(
        r#"{{"v":1,"seq":{seq},"prev":"{prev}","key":"{key}","type":"event","event":{{"at":"2023-11-14T22:13:20Z","action":{{"event":"credential_deleted","user":"victim","provider":"github"}},"outcome":"success"}}"#
    );
    let mac = mac_of(signed.as_bytes());
    format!("{signed},\"mac\":\"{mac}\"}}\n").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_forged_record_appended_with_a_recomputed_plain_hash_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5, FileSinkOptions::default(), true).await;
    let mut records = lines(&path);
    let n = records.len() as u64;
    let forged = forge(records.last().unwrap(), n, |signed| {
        hex(&Sha256::digest(signed))
    });
    records.push(forged);
    write_lines(&path, &records);
    let (line, kind) = problem(&check(&path));
    assert_eq!(line, Some(n + 1));
    assert_eq!(kind, ProblemKind::NotAuthentic);
}

#[tokio::test]
async fn a_forged_record_with_a_mac_under_another_key_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5, FileSinkOptions::default(), true).await;
    let mut records = lines(&path);
    let n = records.len() as u64;
    let forger = atom_crypto::MacKey::derive(&other_key(), "audit-chain");
    let forged = forge(records.last().unwrap(), n, |signed| {
        hex(&forger.tag(&[b"atom-audit/v1/record", signed]))
    });
    records.push(forged);
    write_lines(&path, &records);
    let (line, kind) = problem(&check(&path));
    assert_eq!(line, Some(n + 1));
    assert_eq!(kind, ProblemKind::NotAuthentic);
}

#[tokio::test]
async fn a_tail_cut_before_the_last_checkpoint_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileSinkOptions::default().checkpoint_every(every(100));
    // 250 events: checkpoints are records 0 (the log's creation), 101
    // and 202; 50 events follow.
    let path = write_log(dir.path(), 250, options, false).await;
    let report = check(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.anchored, Some(202));
    assert_eq!(report.unanchored, 50);

    let records = lines(&path);
    write_lines(&path, &records[..150]);
    let (line, kind) = problem(&check(&path));
    assert_eq!(line, None);
    assert_eq!(
        kind,
        ProblemKind::TailCut {
            anchored: 202,
            records: 150
        }
    );
}

#[tokio::test]
async fn after_a_flush_cutting_even_the_last_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 10, FileSinkOptions::default(), true).await;
    let records = lines(&path);
    write_lines(&path, &records[..records.len() - 1]);
    let (_, kind) = problem(&check(&path));
    assert_eq!(
        kind,
        ProblemKind::TailCut {
            anchored: 11,
            records: 11
        }
    );

    std::fs::write(&path, b"").unwrap();
    let (_, kind) = problem(&check(&path));
    assert!(matches!(kind, ProblemKind::TailCut { records: 0, .. }));

    std::fs::remove_file(&path).unwrap();
    let (_, kind) = problem(&check(&path));
    assert!(matches!(kind, ProblemKind::TailCut { records: 0, .. }));
}

#[tokio::test]
async fn a_cut_inside_the_last_record_is_reported_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4, FileSinkOptions::default(), false).await;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let (line, kind) = problem(&check(&path));
    assert_eq!(kind, ProblemKind::Incomplete);
    assert_eq!(line, Some(5));
}

#[tokio::test]
async fn a_deleted_checkpoint_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4, FileSinkOptions::default(), true).await;
    std::fs::remove_file(checkpoint_path(&path)).unwrap();
    let (_, kind) = problem(&check(&path));
    assert_eq!(kind, ProblemKind::AnchorMissing);
}

#[tokio::test]
async fn a_checkpoint_file_from_another_log_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // a: checkpoint 0, events 1-4, checkpoint 5. b: checkpoint 0, events
    // 1-6, checkpoint 7.
    let log_a = write_log(&a, 4, FileSinkOptions::default(), true).await;
    let log_b = write_log(&b, 6, FileSinkOptions::default(), true).await;
    let anchor_a = std::fs::read(checkpoint_path(&log_a)).unwrap();
    let anchor_b = std::fs::read(checkpoint_path(&log_b)).unwrap();

    std::fs::write(checkpoint_path(&log_b), &anchor_a).unwrap();
    let (line, kind) = problem(&check(&log_b));
    assert_eq!(kind, ProblemKind::AnchorMismatch { seq: 5 });
    assert_eq!(line, Some(6));

    std::fs::write(checkpoint_path(&log_a), &anchor_b).unwrap();
    let (_, kind) = problem(&check(&log_a));
    assert_eq!(
        kind,
        ProblemKind::TailCut {
            anchored: 7,
            records: 6
        }
    );
}

#[tokio::test]
async fn a_log_verified_with_another_key_names_the_key_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 2, FileSinkOptions::default(), false).await;
    let report = verify(&path, &other_key()).unwrap();
    let problem = report.problem.unwrap();
    assert_eq!(
        problem.kind,
        ProblemKind::WrongKey {
            needed: audit_key().id(),
            given: other_key().id()
        }
    );
    assert!(problem.to_string().contains(&audit_key().id().to_string()));
}

/// A log emptied, or deleted, together with its sidecar: the copy of the
/// last checkpoint kept away from the log (the anchor) still says what was
/// written, so verify reports a cut log, never an intact empty one, and the
/// sink refuses to continue it.
#[tokio::test]
async fn a_log_emptied_with_its_sidecar_is_found_out_by_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let away = tempfile::tempdir().unwrap();
    let anchor = away.path().join("audit.anchor");
    let options = FileSinkOptions::default().anchor(&anchor);
    let path = write_log(dir.path(), 5, options.clone(), true).await;
    assert!(anchor.exists());
    let intact = atom_audit::verify_anchored(&path, &audit_key(), Some(&anchor)).unwrap();
    assert!(intact.is_intact(), "{intact}");

    for damage in ["emptied", "deleted"] {
        let saved = std::fs::read(&path).unwrap();
        let sidecar = std::fs::read(checkpoint_path(&path)).unwrap();
        std::fs::remove_file(checkpoint_path(&path)).unwrap();
        match damage {
            "emptied" => std::fs::write(&path, b"").unwrap(),
            _ => std::fs::remove_file(&path).unwrap(),
        }
        // Without the anchor it would pass as a new, empty log.
        if damage == "emptied" {
            assert!(check(&path).is_intact(), "the sidecar alone cannot tell");
        }
        let report = atom_audit::verify_anchored(&path, &audit_key(), Some(&anchor)).unwrap();
        assert!(!report.is_intact(), "{damage}: {report}");
        assert!(
            matches!(problem(&report).1, ProblemKind::TailCut { records: 0, .. }),
            "{damage}: {report}"
        );
        // The sink refuses to start a new chain over it.
        let err = atom_audit::FileSink::open_with(&path, &audit_key(), options.clone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the log emptied"), "{err}");
        std::fs::write(&path, saved).unwrap();
        std::fs::write(checkpoint_path(&path), sidecar).unwrap();
    }
}

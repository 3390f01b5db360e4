//! Opening, continuing and refusing logs; durability settings.

use std::num::NonZeroU32;

use atom_audit::{
    AuditError, AuditSink, Durability, FileSink, FileSinkOptions, checkpoint_path, verify,
};

use crate::support::{audit_key, event, every, lines, other_key, write_lines, write_log};

#[tokio::test]
async fn a_reopened_log_continues_the_chain_and_anchors_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    // No flush: the first run "crashes" with 3 unanchored events.
    let path = write_log(dir.path(), 3, FileSinkOptions::default(), false).await;
    assert_eq!(verify(&path, &audit_key()).unwrap().unanchored, 3);

    let sink = FileSink::open(&path, &audit_key()).await.unwrap();
    // Opening anchored the 3 events with a checkpoint at once.
    let report = verify(&path, &audit_key()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.anchored, report.unanchored), (Some(4), 0));

    for i in 3..6 {
        sink.record(&event(i)).await.unwrap();
    }
    sink.flush().await.unwrap();
    let report = verify(&path, &audit_key()).unwrap();
    assert!(report.is_intact(), "{report}");
    // The creation checkpoint, the one of the reopening, the flush's.
    assert_eq!((report.events, report.checkpoints), (6, 3));
}

#[tokio::test]
async fn a_log_whose_tail_was_cut_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5, FileSinkOptions::default(), true).await;
    let records = lines(&path);
    write_lines(&path, &records[..3]);
    let error = FileSink::open(&path, &audit_key()).await.unwrap_err();
    assert!(matches!(error, AuditError::Damaged { .. }), "{error}");
    assert!(error.to_string().contains("the tail was cut"), "{error}");
}

#[tokio::test]
async fn a_log_with_a_torn_or_forged_last_line_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 2, FileSinkOptions::default(), false).await;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let error = FileSink::open(&path, &audit_key()).await.unwrap_err();
    assert!(error.to_string().contains("no line break"), "{error}");

    let mut records = lines(&path);
    records.truncate(1);
    let mut last = records[0].clone();
    let n = last.len();
    last[n - 10] = if last[n - 10] == b'0' { b'1' } else { b'0' };
    records[0] = last;
    write_lines(&path, &records);
    let error = FileSink::open(&path, &audit_key()).await.unwrap_err();
    assert!(
        error.to_string().contains("does not authenticate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_log_under_another_audit_key_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 1, FileSinkOptions::default(), false).await;
    let error = FileSink::open(&path, &other_key()).await.unwrap_err();
    match &error {
        AuditError::WrongKey {
            needed, configured, ..
        } => {
            assert_eq!(*needed, audit_key().id());
            assert_eq!(*configured, other_key().id());
        }
        other => panic!("expected WrongKey, got {other}"),
    }
    assert!(error.to_string().contains("ATOM_AUDIT_KEY"));
}

#[tokio::test]
async fn every_durability_setting_writes_the_same_valid_chain() {
    for durability in [
        Durability::EveryRecord,
        Durability::EveryN(NonZeroU32::new(10).unwrap()),
        Durability::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = FileSinkOptions::default()
            .durability(durability)
            .checkpoint_every(every(7));
        let path = write_log(dir.path(), 30, options, true).await;
        let report = verify(&path, &audit_key()).unwrap();
        assert!(report.is_intact(), "{durability:?}: {report}");
        assert_eq!(report.events, 30);
        assert_eq!(report.unanchored, 0);
    }
    assert_eq!(
        FileSinkOptions::default().durability,
        Durability::EveryRecord
    );
    assert_eq!(FileSinkOptions::default().checkpoint_every.get(), 100);
}

#[tokio::test]
async fn the_log_is_json_lines_naming_the_audit_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 2, FileSinkOptions::default(), true).await;
    let key_id = audit_key().id().to_string();
    for (seq, line) in lines(&path).iter().enumerate() {
        let record: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(record["seq"], seq as u64);
        assert_eq!(record["key"], key_id.as_str());
        assert_eq!(record["mac"].as_str().unwrap().len(), 64);
    }
    let anchor = std::fs::read_to_string(checkpoint_path(&path)).unwrap();
    assert_eq!(anchor.as_bytes(), lines(&path).last().unwrap().as_slice());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        checkpoint_path(std::path::Path::new("/var/log/atom/audit.jsonl")),
        std::path::Path::new("/var/log/atom/audit.jsonl.checkpoint")
    );
}

#[tokio::test]
async fn debug_output_of_a_sink_shows_the_key_id_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = audit_key();
    let sink = FileSink::open(dir.path().join("a.jsonl"), &key)
        .await
        .unwrap();
    let debug = format!("{sink:?}");
    assert!(debug.contains(&key.id().to_string()));
    assert!(!debug.contains(key.expose_base64().trim_end_matches('=')));
    sink.flush().await.unwrap();
}

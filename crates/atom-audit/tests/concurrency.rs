//! Many tasks appending at once leave one valid chain.

use std::collections::HashSet;
use std::sync::Arc;

use atom_audit::{Action, FileSink, verify};

use crate::support::{audit_key, auditor, lines};

const TASKS: u64 = 8;
const EVENTS_PER_TASK: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_of_a_thousand_events_leave_one_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // Default options: fsync after every record, checkpoint every 100.
    let sink = Arc::new(FileSink::open(&path, &audit_key()).await.unwrap());
    let auditor = auditor(Arc::clone(&sink));

    let mut handles = Vec::new();
    for task in 0..TASKS {
        let auditor = auditor.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..EVENTS_PER_TASK {
                auditor
                    .record(Action::SecretRead {
                        name: format!("t{task}-{i}"),
                        key_id: None,
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    auditor.flush().await.unwrap();

    let report = verify(&path, &audit_key()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events, TASKS * EVENTS_PER_TASK);
    assert_eq!(report.unanchored, 0);

    // Every event is there once, and each task's events in its own order.
    let mut seen = HashSet::new();
    let mut last_of_task = vec![None::<u64>; TASKS as usize];
    for line in lines(&path) {
        let record: serde_json::Value = serde_json::from_slice(&line).unwrap();
        if record["type"] != "event" {
            continue;
        }
        let name = record["event"]["action"]["name"].as_str().unwrap();
        assert!(seen.insert(name.to_owned()), "{name} recorded twice");
        let (task, i) = name[1..].split_once('-').unwrap();
        let (task, i): (usize, u64) = (task.parse().unwrap(), i.parse().unwrap());
        assert!(last_of_task[task].is_none_or(|last| last < i));
        last_of_task[task] = Some(i);
    }
    assert_eq!(seen.len() as u64, TASKS * EVENTS_PER_TASK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_give_up_waiting_do_not_fork_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = Arc::new(FileSink::open(&path, &audit_key()).await.unwrap());
    let auditor = auditor(Arc::clone(&sink));
    let mut handles = Vec::new();
    for task in 0..4u64 {
        let auditor = auditor.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..50u64 {
                // Abandon every other append as soon as it has started.
                let record = auditor.record(Action::SecretRead {
                    name: format!("t{task}-{i}"),
                    key_id: None,
                });
                if i % 2 == 0 {
                    let _ = tokio::time::timeout(std::time::Duration::ZERO, record).await;
                } else {
                    record.await.unwrap();
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    auditor.flush().await.unwrap();
    let report = verify(&path, &audit_key()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(report.events >= 100);
}

/// Two sinks on one log stand for two processes (the server and an
/// operator's `atom` command): each open holds its own lock and chain
/// state, and each append continues from whatever the other wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_of_one_log_extend_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let first = auditor(Arc::new(FileSink::open(&path, &audit_key()).await.unwrap()));
    let second = auditor(Arc::new(FileSink::open(&path, &audit_key()).await.unwrap()));
    let mut handles = Vec::new();
    for (w, writer) in [first.clone(), second.clone()].into_iter().enumerate() {
        handles.push(tokio::spawn(async move {
            for i in 0..300 {
                writer
                    .record(Action::SecretRead {
                        name: format!("w{w}-{i}"),
                        key_id: None,
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    first.flush().await.unwrap();
    second.flush().await.unwrap();
    let report = verify(&path, &audit_key()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events, 600);
}

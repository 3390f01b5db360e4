//! A chain kept outside a file (a database table): `ChainKey` seals
//! records after a stored head, `verify_records` checks them up to it.

use atom_audit::{ChainHead, ChainKey, ProblemKind, VerifyReport, verify_records, verify_stream};

use crate::support::{audit_key, event, other_key};

/// `n` records sealed one after another, and the head after them.
fn chain(n: u64) -> (Vec<String>, ChainHead) {
    let key = ChainKey::new(&audit_key());
    let mut head = ChainHead::GENESIS;
    let mut records = Vec::new();
    for i in 0..n {
        let (record, next) = key.append(&head, &event(i));
        records.push(record);
        head = next;
    }
    (records, head)
}

fn check(records: &[String], head: ChainHead) -> VerifyReport {
    let mut verifier = verify_records(&audit_key(), head);
    for record in records {
        if !verifier.push(record.as_bytes()) {
            break;
        }
    }
    verifier.finish()
}

fn problem(report: &VerifyReport) -> ProblemKind {
    report
        .problem
        .clone()
        .unwrap_or_else(|| panic!("expected a problem, got: {report}"))
        .kind
}

#[test]
fn sealed_records_verify_up_to_their_head() {
    let (records, head) = chain(20);
    assert_eq!(head.next_seq(), 20);
    let report = check(&records, head);
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.records, report.events), (20, 20));
    let empty = check(&[], ChainHead::GENESIS);
    assert!(empty.is_intact(), "{empty}");
}

#[test]
fn the_records_are_the_file_logs_lines() {
    let (records, _) = chain(5);
    let file = records.join("\n") + "\n";
    let report = verify_stream(file.as_bytes(), None, &audit_key()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events, 5);
}

#[test]
fn a_removed_record_is_named() {
    let (mut records, head) = chain(10);
    records.remove(4);
    let report = check(&records, head);
    assert_eq!(
        problem(&report),
        ProblemKind::Removed {
            expected: 4,
            found: 5
        }
    );
    assert!(report.to_string().contains("at record 4"), "{report}");
}

#[test]
fn a_modified_record_does_not_authenticate() {
    let (mut records, head) = chain(10);
    records[3] = records[3].replace("user-3", "user-9");
    assert_eq!(problem(&check(&records, head)), ProblemKind::NotAuthentic);
}

#[test]
fn a_cut_end_is_caught_by_the_head() {
    let (mut records, head) = chain(10);
    records.truncate(7);
    assert_eq!(
        problem(&check(&records, head)),
        ProblemKind::HeadCut {
            head: 9,
            records: 7
        }
    );
    // Every record cut, head kept.
    assert_eq!(
        problem(&check(&[], head)),
        ProblemKind::HeadCut {
            head: 9,
            records: 0
        }
    );
}

#[test]
fn records_past_the_head_are_a_problem() {
    let (records, head) = chain(10);
    let (_, early_head) = chain(6);
    assert_eq!(
        problem(&check(&records, early_head)),
        ProblemKind::PastHead {
            head: Some(5),
            records: 10
        }
    );
    assert_eq!(
        problem(&check(&records, ChainHead::GENESIS)),
        ProblemKind::PastHead {
            head: None,
            records: 10
        }
    );
    assert!(check(&records, head).is_intact());
}

#[test]
fn a_head_of_another_chain_does_not_match() {
    let (records, _) = chain(10);
    let key = ChainKey::new(&audit_key());
    let (_, head) = key.append(
        &ChainHead::from_parts(9, &"ab".repeat(32)).unwrap(),
        &event(99),
    );
    assert_eq!(
        problem(&check(&records, head)),
        ProblemKind::AnchorMismatch { seq: 9 }
    );
}

#[test]
fn a_record_of_another_audit_key_is_named() {
    let (mut records, head) = chain(3);
    let (foreign, _) = ChainKey::new(&other_key()).append(&ChainHead::GENESIS, &event(0));
    records[0] = foreign;
    assert!(matches!(
        problem(&check(&records, head)),
        ProblemKind::WrongKey { .. }
    ));
}

#[test]
fn a_head_must_be_well_formed() {
    assert!(ChainHead::from_parts(0, &"0".repeat(64)).is_some());
    // A chain of no record names no MAC.
    assert!(ChainHead::from_parts(0, &"ab".repeat(32)).is_none());
    assert!(ChainHead::from_parts(3, "abc").is_none());
    assert!(ChainHead::from_parts(3, &"AB".repeat(32)).is_none());
    let (_, head) = chain(4);
    let stored = ChainHead::from_parts(head.next_seq(), &head.last_mac_hex()).unwrap();
    assert_eq!(stored, head);
}

#[test]
fn a_pending_event_opens_only_as_sealed_and_under_its_key() {
    let key = ChainKey::new(&audit_key());
    let pending = key.pending(&event(7));
    assert_eq!(key.open_pending(&pending), Some(event(7)));
    let altered = atom_audit::PendingEvent {
        json: pending.json.replace("user-7", "user-8"),
        mac: pending.mac.clone(),
    };
    assert_eq!(key.open_pending(&altered), None);
    assert_eq!(ChainKey::new(&other_key()).open_pending(&pending), None);
    let forged = atom_audit::PendingEvent {
        json: pending.json.clone(),
        mac: "0".repeat(64),
    };
    assert_eq!(key.open_pending(&forged), None);
}

//! Checking a log: `atom audit verify`.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use atom_crypto::{Key, KeyId, MacKey};

use crate::chain::ChainHead;
use crate::error::AuditError;
use crate::file_sink::checkpoint_path;
use crate::record::{self, GENESIS, Kind, Tag};

/// The result of [`verify`]: what was checked and the first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records that were read and found in order, authentic and chained
    /// (up to the first problem).
    pub records: u64,
    /// Of those, event records.
    pub events: u64,
    /// Of those, checkpoint records.
    pub checkpoints: u64,
    /// The sequence number of the checkpoint that the checkpoint file
    /// anchors, if there is one.
    pub anchored: Option<u64>,
    /// Records after the anchored checkpoint: these could have been cut
    /// from the end without detection (none after a clean shutdown).
    pub unanchored: u64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "intact: {} records ({} events, {} checkpoints)",
                self.records, self.events, self.checkpoints
            )?,
            Some(problem) => write!(
                f,
                "NOT intact: {problem} ({} records before it are in order)",
                self.records
            )?,
        }
        if self.problem.is_none() {
            match self.anchored {
                Some(seq) if self.unanchored == 0 => {
                    write!(f, "; the end is anchored by checkpoint {seq}")?
                }
                Some(seq) => write!(
                    f,
                    "; anchored up to checkpoint {seq}, the last {} records are not yet anchored",
                    self.unanchored
                )?,
                None => write!(f, "; no checkpoint yet, so a cut tail cannot be ruled out")?,
            }
        }
        Ok(())
    }
}

/// The first problem in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The 1-based line of the log where it shows, if it is at a line (for
    /// a table, the 1-based position in sequence order).
    pub line: Option<u64>,
    /// What it is.
    pub kind: ProblemKind,
    /// Whether the log is a table of records rather than a file of lines.
    pub in_table: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.in_table) {
            (Some(line), false) => write!(f, "line {line}: {}", self.kind),
            (Some(position), true) => write!(
                f,
                "at record {} (row {position} in sequence order): {}",
                position - 1,
                self.kind
            ),
            (None, _) => write!(f, "{}", self.kind),
        }
    }
}

/// What is wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The line is not a record at all.
    Malformed {
        /// Why.
        reason: String,
    },
    /// The record names another audit key than the one given.
    WrongKey {
        /// The key id the record names.
        needed: KeyId,
        /// The key id of the key given.
        given: KeyId,
    },
    /// The record's MAC is wrong: it was modified, or it was inserted or
    /// forged by someone without the audit key.
    NotAuthentic,
    /// Records are missing: the one expected next is absent and a later one
    /// follows.
    Removed {
        /// The first missing sequence number.
        expected: u64,
        /// The sequence number found in its place.
        found: u64,
    },
    /// Records are out of order: a later record comes before the one
    /// expected next, which appears further on.
    Reordered {
        /// The sequence number expected here.
        expected: u64,
        /// The sequence number found here.
        found: u64,
    },
    /// A record that already came appears again (a copy was inserted), or
    /// records are out of order.
    Replayed {
        /// The sequence number expected here.
        expected: u64,
        /// The earlier sequence number found here.
        found: u64,
    },
    /// The record is authentic and in its place but does not chain to the
    /// record before it (spliced in from another log under the same key).
    BrokenLink {
        /// Its sequence number.
        seq: u64,
    },
    /// The last line has no line break: the file was cut inside a record
    /// (or a write was interrupted by a crash).
    Incomplete,
    /// The log ends before the checkpoint its checkpoint file anchors: the
    /// tail was cut.
    TailCut {
        /// The anchored checkpoint's sequence number.
        anchored: u64,
        /// How many records the log has.
        records: u64,
    },
    /// The log's record at the anchored position is not the anchored
    /// checkpoint.
    AnchorMismatch {
        /// The anchored sequence number.
        seq: u64,
    },
    /// The checkpoint file is not a valid checkpoint under the key given.
    AnchorInvalid {
        /// Why.
        reason: String,
    },
    /// The log has checkpoints but the checkpoint file is missing: it was
    /// deleted (a crash never leaves this: a new log's events are written
    /// only once the copy of its creation checkpoint exists).
    AnchorMissing,
    /// The records stop before the one the stored head names: the end of
    /// the trail was removed.
    HeadCut {
        /// The sequence number of the record the head names.
        head: u64,
        /// How many records the log has.
        records: u64,
    },
    /// Records follow the last one the stored head names: they were added
    /// without moving the head, which every append does in its transaction.
    PastHead {
        /// The sequence number of the record the head names (`None`: the
        /// head says the log is empty).
        head: Option<u64>,
        /// How many records the log has.
        records: u64,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Malformed { reason } => write!(f, "not a log record: {reason}"),
            ProblemKind::WrongKey { needed, given } => write!(
                f,
                "the record names audit key {needed}, not the given key {given}: verify with key {needed}, or the record was altered"
            ),
            ProblemKind::NotAuthentic => f.write_str(
                "the record does not authenticate under the audit key: it was modified, or inserted by someone without the key",
            ),
            ProblemKind::Removed { expected, found } => write!(
                f,
                "records {expected} to {} are missing (record {found} follows record {})",
                found - 1,
                expected.saturating_sub(1)
            ),
            ProblemKind::Reordered { expected, found } => write!(
                f,
                "records are out of order: record {found} stands where record {expected} should"
            ),
            ProblemKind::Replayed { expected, found } => write!(
                f,
                "record {found} appears again where record {expected} should be (an inserted copy, or records out of order)"
            ),
            ProblemKind::BrokenLink { seq } => write!(
                f,
                "record {seq} does not chain to the record before it (spliced from another log)"
            ),
            ProblemKind::Incomplete => f.write_str(
                "the last line is incomplete: the file was cut inside a record, or a write was interrupted",
            ),
            ProblemKind::TailCut { anchored, records } => write!(
                f,
                "the tail was cut: the checkpoint file anchors record {anchored}, but the log has only {records} records"
            ),
            ProblemKind::AnchorMismatch { seq } => write!(
                f,
                "record {seq} is not the checkpoint the checkpoint file anchors (the log was rewritten, or the checkpoint file belongs to another log)"
            ),
            ProblemKind::AnchorInvalid { reason } => {
                write!(f, "the checkpoint file is not valid: {reason}")
            }
            ProblemKind::AnchorMissing => f.write_str(
                "the log has checkpoints but its checkpoint file is missing, so a cut tail cannot be ruled out",
            ),
            ProblemKind::HeadCut { head, records } => write!(
                f,
                "the end was removed: the stored head names record {head}, but the trail has only {records} records"
            ),
            ProblemKind::PastHead { head, records } => match head {
                Some(seq) => write!(
                    f,
                    "the log has {records} records but its stored head names record {seq}: records were added outside an append"
                ),
                None => write!(
                    f,
                    "the log has {records} records but its stored head says it is empty: records were added outside an append"
                ),
            },
        }
    }
}

/// Checks the log at `log` and its checkpoint file
/// ([`checkpoint_path`]) under the audit key `key`: every record must be
/// authentic, numbered in order and chained to the one before, and the log
/// must reach the anchored checkpoint. Reports the first problem; an `Err`
/// only when a file cannot be read. Reads the log as a stream.
pub fn verify(log: &Path, key: &Key) -> Result<VerifyReport, AuditError> {
    verify_anchored(log, key, None)
}

/// [`verify`], with a second copy of the last checkpoint kept away from
/// the log ([`crate::FileSinkOptions::anchor`]): the newest of the two
/// copies is checked, so a log removed or emptied together with its
/// sidecar is reported (as cut), never as an intact empty log.
pub fn verify_anchored(
    log: &Path,
    key: &Key,
    anchor: Option<&Path>,
) -> Result<VerifyReport, AuditError> {
    let mut copies = Vec::new();
    for path in std::iter::once(checkpoint_path(log)).chain(anchor.map(Path::to_path_buf)) {
        match atom_io::read_bounded(&path, record::MAX_RECORD_BYTES + 1) {
            Ok(bytes) => copies.push(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(AuditError::Read { path, source }),
        }
    }
    let anchor = newest_copy(copies, key);
    let read_error = |source| AuditError::Read {
        path: log.to_path_buf(),
        source,
    };
    match File::open(log) {
        Ok(file) => verify_stream(BufReader::new(file), anchor.as_deref(), key).map_err(read_error),
        // A missing log with a checkpoint copy is a log cut to nothing.
        Err(e) if e.kind() == io::ErrorKind::NotFound && anchor.is_some() => {
            verify_stream(io::empty(), anchor.as_deref(), key).map_err(read_error)
        }
        Err(e) => Err(read_error(e)),
    }
}

/// Of the checkpoint copies, the one to check the log against: one that
/// does not parse or authenticate (so that it is reported), else the one
/// of the highest sequence number.
fn newest_copy(copies: Vec<Vec<u8>>, key: &Key) -> Option<Vec<u8>> {
    let mac = MacKey::derive(key, record::CHAIN_PURPOSE);
    let mut best: Option<(u64, Vec<u8>)> = None;
    for bytes in copies {
        match parse_anchor(&bytes, &mac) {
            Err(_) => return Some(bytes),
            Ok(anchor) if best.as_ref().is_none_or(|(seq, _)| anchor.seq > *seq) => {
                best = Some((anchor.seq, bytes));
            }
            Ok(_) => {}
        }
    }
    best.map(|(_, bytes)| bytes)
}

/// The anchored checkpoint, once checked.
#[derive(Debug)]
struct Anchor {
    seq: u64,
    tag: Tag,
}

/// [`verify`] of a log read from `log`, with `anchor` the bytes of its
/// newest checkpoint copy (if any): for logs that are not files, and for
/// fuzzing. An `Err` only when `log` cannot be read.
pub fn verify_stream(
    mut log: impl BufRead,
    anchor: Option<&[u8]>,
    key: &Key,
) -> io::Result<VerifyReport> {
    let mac = MacKey::derive(key, record::CHAIN_PURPOSE);
    let anchor = match anchor.map(|bytes| parse_anchor(bytes, &mac)).transpose() {
        Ok(anchor) => anchor,
        Err(kind) => {
            let mut report = RecordVerifier::empty_report();
            report.problem = Some(Problem {
                line: None,
                kind,
                in_table: false,
            });
            return Ok(report);
        }
    };
    let mut verifier = RecordVerifier::with_anchor(mac, anchor, false);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match atom_io::read_line_bounded(&mut log, &mut buf, record::MAX_RECORD_BYTES) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                verifier.position += 1;
                verifier.fail_next(ProblemKind::Malformed {
                    reason: format!(
                        "the line is longer than {} bytes, which no record is",
                        record::MAX_RECORD_BYTES
                    ),
                });
                return Ok(verifier.finish());
            }
            Err(e) => return Err(e),
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            verifier.position += 1;
            verifier.fail_next(ProblemKind::Incomplete);
            return Ok(verifier.finish());
        };
        if let Err(Misplaced { expected, found }) = verifier.check(line) {
            let kind = if found < expected {
                ProblemKind::Replayed { expected, found }
            } else if appears_later(&mut log, expected)? {
                ProblemKind::Reordered { expected, found }
            } else {
                ProblemKind::Removed { expected, found }
            };
            verifier.fail_next(kind);
            return Ok(verifier.finish());
        }
        if verifier.problem_found() {
            return Ok(verifier.finish());
        }
    }
    Ok(verifier.finish())
}

/// Checks records handed over one at a time, oldest first, against the
/// head a keeper of the log stored beside them (a database table): every
/// record authentic, numbered in order and chained to the one before, and
/// the last one the head. Records past the head, or a chain that stops
/// before it, are problems. Build it with [`verify_records`].
#[derive(Debug)]
pub struct RecordVerifier {
    mac: MacKey,
    anchor: Option<Anchor>,
    /// Records past the anchor are a problem (a head stored with every
    /// append), not merely unanchored (a checkpoint written now and then).
    strict_end: bool,
    head: Tag,
    position: u64,
    report: VerifyReport,
    /// Record 0 is a checkpoint: the log was created by a writer that
    /// anchors a new log before its first event.
    starts_with_checkpoint: bool,
}

/// A record numbered other than the one expected next.
struct Misplaced {
    expected: u64,
    found: u64,
}

/// A verifier of records under `key` that must end at `head` (see
/// [`RecordVerifier`]).
pub fn verify_records(key: &Key, head: ChainHead) -> RecordVerifier {
    let mac = MacKey::derive(key, record::CHAIN_PURPOSE);
    let anchor = head.last_record().map(|(seq, tag)| Anchor { seq, tag });
    RecordVerifier::with_anchor(mac, anchor, true)
}

impl RecordVerifier {
    fn empty_report() -> VerifyReport {
        VerifyReport {
            records: 0,
            events: 0,
            checkpoints: 0,
            anchored: None,
            unanchored: 0,
            problem: None,
        }
    }

    fn with_anchor(mac: MacKey, anchor: Option<Anchor>, strict_end: bool) -> RecordVerifier {
        let mut report = RecordVerifier::empty_report();
        report.anchored = anchor.as_ref().map(|a| a.seq);
        RecordVerifier {
            mac,
            anchor,
            strict_end,
            head: GENESIS,
            position: 0,
            report,
            starts_with_checkpoint: false,
        }
    }

    /// Whether a problem was found (later records are then ignored).
    pub fn problem_found(&self) -> bool {
        self.report.problem.is_some()
    }

    /// Checks the next record (its text, without a line break). Returns
    /// whether to go on: `false` once a problem is found.
    pub fn push(&mut self, record: &[u8]) -> bool {
        if let Err(Misplaced { expected, found }) = self.check(record) {
            let kind = if found < expected {
                ProblemKind::Replayed { expected, found }
            } else {
                ProblemKind::Removed { expected, found }
            };
            self.fail_next(kind);
        }
        !self.problem_found()
    }

    /// Records `kind` at the record being read.
    fn fail_next(&mut self, kind: ProblemKind) {
        self.report.problem = Some(Problem {
            line: Some(self.position),
            kind,
            in_table: self.strict_end,
        });
    }

    /// Checks one record; a misnumbered one is left to the caller to name
    /// (a stream can look ahead, a table cannot).
    fn check(&mut self, line: &[u8]) -> Result<(), Misplaced> {
        if self.problem_found() {
            return Ok(());
        }
        self.position += 1;
        let expected = self.report.records;
        let parsed = match record::parse(line) {
            Ok(parsed) => parsed,
            Err(m) => {
                self.fail_next(ProblemKind::Malformed {
                    reason: m.to_string(),
                });
                return Ok(());
            }
        };
        if parsed.key != self.mac.key_id() {
            self.fail_next(ProblemKind::WrongKey {
                needed: parsed.key,
                given: self.mac.key_id(),
            });
            return Ok(());
        }
        if !parsed.authentic(&self.mac) {
            self.fail_next(ProblemKind::NotAuthentic);
            return Ok(());
        }
        if parsed.seq != expected {
            return Err(Misplaced {
                expected,
                found: parsed.seq,
            });
        }
        if parsed.prev != self.head {
            self.fail_next(ProblemKind::BrokenLink { seq: parsed.seq });
            return Ok(());
        }
        if let Some(anchor) = &self.anchor
            && anchor.seq == parsed.seq
            && anchor.tag != parsed.tag
        {
            self.fail_next(ProblemKind::AnchorMismatch { seq: anchor.seq });
            return Ok(());
        }
        self.head = parsed.tag;
        if parsed.seq == 0 && parsed.kind == Kind::Checkpoint {
            self.starts_with_checkpoint = true;
        }
        self.report.records += 1;
        match parsed.kind {
            Kind::Event => self.report.events += 1,
            Kind::Checkpoint => self.report.checkpoints += 1,
        }
        Ok(())
    }

    /// Whether the records read say checkpoint copies must exist.
    fn copies_expected(&self) -> bool {
        if self.starts_with_checkpoint {
            self.report.events > 0
        } else {
            self.report.checkpoints > 0
        }
    }

    /// The report, once every record was pushed.
    pub fn finish(mut self) -> VerifyReport {
        if self.report.problem.is_some() {
            return self.report;
        }
        let records = self.report.records;
        let problem = match &self.anchor {
            Some(anchor) if anchor.seq >= records && self.strict_end => {
                Some(ProblemKind::HeadCut {
                    head: anchor.seq,
                    records,
                })
            }
            Some(anchor) if anchor.seq >= records => Some(ProblemKind::TailCut {
                anchored: anchor.seq,
                records,
            }),
            Some(anchor) => {
                self.report.unanchored = records - anchor.seq - 1;
                (self.strict_end && self.report.unanchored > 0).then_some(ProblemKind::PastHead {
                    head: Some(anchor.seq),
                    records,
                })
            }
            None if self.strict_end && records > 0 => Some(ProblemKind::PastHead {
                head: None,
                records,
            }),
            // A log that starts with a checkpoint was made by a writer that
            // writes no event before the copies exist: without copies and
            // without events, only its creation (and a repair of it) was
            // interrupted by a crash, and nothing could have been cut.
            None if self.copies_expected() => {
                self.report.unanchored = records;
                Some(ProblemKind::AnchorMissing)
            }
            None => {
                self.report.unanchored = records;
                None
            }
        };
        self.report.problem = problem.map(|kind| Problem {
            line: None,
            kind,
            in_table: self.strict_end,
        });
        self.report
    }
}

fn parse_anchor(bytes: &[u8], mac: &MacKey) -> Result<Anchor, ProblemKind> {
    let invalid = |reason: String| ProblemKind::AnchorInvalid { reason };
    let line = bytes
        .strip_suffix(b"\n")
        .ok_or_else(|| invalid("it has no line break at its end".into()))?;
    let parsed = record::parse(line).map_err(|m| invalid(m.to_string()))?;
    if parsed.key != mac.key_id() {
        return Err(ProblemKind::WrongKey {
            needed: parsed.key,
            given: mac.key_id(),
        });
    }
    if !parsed.authentic(mac) {
        return Err(invalid(
            "it does not authenticate under the audit key".into(),
        ));
    }
    if parsed.kind != Kind::Checkpoint {
        return Err(invalid("it is not a checkpoint record".into()));
    }
    Ok(Anchor {
        seq: parsed.seq,
        tag: parsed.tag,
    })
}

/// Whether a record numbered `seq` comes later in `log`. Only used to
/// name a problem already found, so unreadable lines are skipped rather
/// than reported.
fn appears_later(log: &mut impl BufRead, seq: u64) -> io::Result<bool> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if log.read_until(b'\n', &mut buf)? == 0 {
            return Ok(false);
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if record::parse(line).is_ok_and(|p| p.seq == seq) {
            return Ok(true);
        }
    }
}

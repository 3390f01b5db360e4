//! The chain without the file: sealing records for a log kept elsewhere
//! (a database table), in the file log's record format.
//!
//! A keeper of such a log stores the [`ChainHead`] beside the records and
//! appends under a lock on it: read the head, [`ChainKey::append`] each
//! event, store the records and the new head in one transaction. The
//! records are the file log's lines, so [`crate::verify_records`] checks
//! them as [`crate::verify`] checks a file.

use std::any::Any;

use atom_crypto::{Key, KeyId, MacKey, TAG_LEN};

use crate::event::AuditEvent;
use crate::record::{self, CHAIN_PURPOSE, GENESIS, Tag};

/// Domain label of a pending event's MAC.
const PENDING_LABEL: &[u8] = b"atom-audit/v1/pending";

/// The key records are chained under: derived from the audit key for the
/// chain, as the file log's.
#[derive(Clone)]
pub struct ChainKey {
    mac: MacKey,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKey")
            .field("key_id", &self.mac.key_id())
            .finish_non_exhaustive()
    }
}

impl ChainKey {
    /// The chain key of `audit_key`.
    pub fn new(audit_key: &Key) -> ChainKey {
        ChainKey {
            mac: MacKey::derive(audit_key, CHAIN_PURPOSE),
        }
    }

    /// The id of the audit key, written in every record.
    pub fn key_id(&self) -> KeyId {
        self.mac.key_id()
    }

    /// Seals `event` as the record after `head`: returns the record (one
    /// line of JSON without its line break) and the head after it.
    pub fn append(&self, head: &ChainHead, event: &AuditEvent) -> (String, ChainHead) {
        let (mut line, tag) = record::encode_event(&self.mac, head.next_seq, &head.last, event);
        line.pop();
        // Invariant: encode writes JSON text, which is UTF-8.
        let text = String::from_utf8(line).unwrap_or_default();
        (
            text,
            ChainHead {
                next_seq: head.next_seq + 1,
                last: tag,
            },
        )
    }
}

/// An event stored before it is chained (e.g. in the transaction of the
/// change it records, without waiting for the chain's lock): its JSON and
/// a MAC over it under the chain key, so that a pending event cannot be
/// forged or altered by someone without the audit key while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// The event as JSON.
    pub json: String,
    /// Lower-case hex of its MAC.
    pub mac: String,
}

impl ChainKey {
    /// Seals `event` for storage until it is chained.
    pub fn pending(&self, event: &AuditEvent) -> PendingEvent {
        // Invariant: events serialize to JSON (see record::encode).
        let json = serde_json::to_string(event).unwrap_or_default();
        let mac = record::hex(&self.mac.tag(&[PENDING_LABEL, json.as_bytes()]));
        PendingEvent { json, mac }
    }

    /// The event of a stored pending event; `None` when it does not
    /// authenticate under this key (forged or altered) or is not an event.
    pub fn open_pending(&self, pending: &PendingEvent) -> Option<AuditEvent> {
        let tag = record::unhex(pending.mac.as_bytes())?;
        if !self
            .mac
            .verify(&[PENDING_LABEL, pending.json.as_bytes()], &tag)
        {
            return None;
        }
        serde_json::from_str(&pending.json).ok()
    }
}

/// Where a chain ends: the sequence number the next record takes and the
/// MAC of the last record (64 zeros before the first). Not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    next_seq: u64,
    last: Tag,
}

impl ChainHead {
    /// The head of an empty chain.
    pub const GENESIS: ChainHead = ChainHead {
        next_seq: 0,
        last: GENESIS,
    };

    /// A head as stored: `next_seq` and the last MAC in lower-case hex.
    /// `None` when the text is not 64 lower-case hex digits, or a chain of
    /// no record names a MAC other than zeros.
    pub fn from_parts(next_seq: u64, last_mac_hex: &str) -> Option<ChainHead> {
        let last = record::unhex(last_mac_hex.as_bytes())?;
        (next_seq > 0 || last == GENESIS).then_some(ChainHead { next_seq, last })
    }

    /// The sequence number of the next record (the number of records).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last record's MAC in lower-case hex.
    pub fn last_mac_hex(&self) -> String {
        record::hex(&self.last)
    }

    /// The last record's sequence number and MAC, if there is one.
    pub(crate) fn last_record(&self) -> Option<(u64, [u8; TAG_LEN])> {
        self.next_seq.checked_sub(1).map(|seq| (seq, self.last))
    }
}

impl std::fmt::Display for ChainHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last_record() {
            Some((seq, _)) => write!(f, "record {seq}, mac {}", self.last_mac_hex()),
            None => f.write_str("no record yet"),
        }
    }
}

/// A sink that records into a database which the audited operations also
/// write to. Such a store writes its own events inside its transactions
/// (so an event and its change commit together) and hands the rest of the
/// sinks the event with [`crate::Auditor::record_event_beside_ledger`].
/// [`crate::AuditSink::ledger`] finds it behind a fan-out.
pub trait Ledger: Send + Sync + 'static {
    /// The concrete sink, for the store to recognize its own database.
    fn as_any(&self) -> &dyn Any;
}

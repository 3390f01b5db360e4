//! The line format of the chained log, shared by the file sink (which
//! writes it) and `verify` (which reads it).
//!
//! Each record is one line of JSON:
//!
//! ```text
//! {"v":1,"seq":7,"prev":"<64 hex>","key":"<audit key id>","type":"event","event":{...},"mac":"<64 hex>"}
//! ```
//!
//! `mac` is HMAC-SHA256, under a key derived from the audit key for the
//! purpose `audit-chain`, over the exact bytes of the line before
//! `,"mac":"` (label `atom-audit/v1/record`). Those bytes hold `seq` and
//! `prev`, the previous record's `mac` (64 zeros for the first), so each
//! record authenticates its position and everything before it. Nothing
//! outside the MAC is free text: the suffix is exactly
//! `,"mac":"<64 lower-case hex>"}`. A checkpoint record has
//! `"type":"checkpoint"` and no event.

use atom_crypto::{KeyId, MacKey, TAG_LEN};
use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;

/// HKDF purpose of the chain MAC.
pub(crate) const CHAIN_PURPOSE: &str = "audit-chain";

/// The longest line read as a record, in bytes. An event's fields are ids
/// and key ids of bounded length, so a record is far shorter; a longer
/// line is not a record and is never read whole.
pub(crate) const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// Domain label of a record's MAC input.
const RECORD_LABEL: &[u8] = b"atom-audit/v1/record";
/// The format version written in `v`.
const VERSION: u8 = 1;
/// `,"mac":"`.
const MAC_OPEN: &[u8] = b",\"mac\":\"";
/// `"}`.
const MAC_CLOSE: &[u8] = b"\"}";
/// Length of the fixed suffix after the signed bytes.
const SUFFIX_LEN: usize = MAC_OPEN.len() + 2 * TAG_LEN + MAC_CLOSE.len();

/// A record's MAC, which is also the next record's `prev`.
pub(crate) type Tag = [u8; TAG_LEN];

/// The `prev` of the first record.
pub(crate) const GENESIS: Tag = [0u8; TAG_LEN];

#[derive(Serialize)]
struct Out<'a> {
    v: u8,
    seq: u64,
    prev: &'a str,
    key: String,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Body<'a> {
    Event { event: &'a AuditEvent },
    Checkpoint,
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Event,
    Checkpoint,
}

/// The fields of a record that the chain is made of.
#[derive(Debug, Deserialize)]
struct Head {
    v: u8,
    seq: u64,
    prev: String,
    key: String,
    #[serde(rename = "type")]
    kind: Kind,
}

/// A record line taken apart (not yet authenticated).
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// The bytes the MAC covers.
    signed: &'a [u8],
    /// The record's MAC.
    pub(crate) tag: Tag,
    pub(crate) seq: u64,
    pub(crate) prev: Tag,
    pub(crate) key: KeyId,
    pub(crate) kind: Kind,
}

impl Parsed<'_> {
    /// Whether the MAC is right under `mac` (constant time).
    pub(crate) fn authentic(&self, mac: &MacKey) -> bool {
        mac.verify(&[RECORD_LABEL, self.signed], &self.tag)
    }
}

/// Encodes an event record; returns the line (with its `\n`) and its MAC.
pub(crate) fn encode_event(
    mac: &MacKey,
    seq: u64,
    prev: &Tag,
    event: &AuditEvent,
) -> (Vec<u8>, Tag) {
    encode(mac, seq, prev, Body::Event { event })
}

/// Encodes a checkpoint record.
pub(crate) fn encode_checkpoint(mac: &MacKey, seq: u64, prev: &Tag) -> (Vec<u8>, Tag) {
    encode(mac, seq, prev, Body::Checkpoint)
}

fn encode(mac: &MacKey, seq: u64, prev: &Tag, body: Body<'_>) -> (Vec<u8>, Tag) {
    let prev = hex(prev);
    let out = Out {
        v: VERSION,
        seq,
        prev: &prev,
        key: mac.key_id().to_string(),
        body,
    };
    // Invariant: these types serialize to JSON without error (structs,
    // string-keyed maps, strings and integers; no fallible Serialize impl).
    #[allow(clippy::expect_used)]
    let mut line = serde_json::to_vec(&out).expect("audit records always serialize to JSON");
    // The object ends in '}'; the MAC covers everything before it.
    line.pop();
    let tag = mac.tag(&[RECORD_LABEL, &line]);
    line.reserve(SUFFIX_LEN + 1);
    line.extend_from_slice(MAC_OPEN);
    line.extend_from_slice(hex(&tag).as_bytes());
    line.extend_from_slice(MAC_CLOSE);
    line.push(b'\n');
    (line, tag)
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The line does not end in `,"mac":"<64 hex>"}`.
    NoMac,
    /// The line is not the JSON of a record.
    NotJson(String),
    /// `v` is not a version this build reads.
    Version(u8),
    /// `prev` or `key` are not hex of the right length.
    BadField(&'static str),
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::NoMac => f.write_str("it does not end in a record MAC"),
            Malformed::NotJson(e) => write!(f, "it is not a JSON record ({e})"),
            Malformed::Version(v) => write!(
                f,
                "it is format version {v}; this build reads version {VERSION}"
            ),
            Malformed::BadField(name) => write!(f, "its `{name}` field is not well formed"),
        }
    }
}

/// Takes a line (without its `\n`) apart.
pub(crate) fn parse(line: &[u8]) -> Result<Parsed<'_>, Malformed> {
    if line.len() < SUFFIX_LEN + 1 || !line.ends_with(MAC_CLOSE) {
        return Err(Malformed::NoMac);
    }
    let split = line.len() - SUFFIX_LEN;
    let (signed, suffix) = line.split_at(split);
    if !suffix.starts_with(MAC_OPEN) {
        return Err(Malformed::NoMac);
    }
    let hex_tag = &suffix[MAC_OPEN.len()..MAC_OPEN.len() + 2 * TAG_LEN];
    let tag = unhex(hex_tag).ok_or(Malformed::NoMac)?;
    // Everything but the fixed suffix is under the MAC, so parsing the whole
    // line reads only authenticated fields (once the MAC is checked).
    let head: Head = serde_json::from_slice(line).map_err(|e| Malformed::NotJson(e.to_string()))?;
    if head.v != VERSION {
        return Err(Malformed::Version(head.v));
    }
    let prev = unhex(head.prev.as_bytes()).ok_or(Malformed::BadField("prev"))?;
    let key = head
        .key
        .parse::<KeyId>()
        .map_err(|_| Malformed::BadField("key"))?;
    Ok(Parsed {
        signed,
        tag,
        seq: head.seq,
        prev,
        key,
        kind: head.kind,
    })
}

/// Lower-case hex of a tag.
pub(crate) fn hex(bytes: &Tag) -> String {
    atom_io::hex(bytes)
}

/// Parses exactly 64 lower-case hex digits.
pub(crate) fn unhex(text: &[u8]) -> Option<Tag> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 2 * TAG_LEN {
        return None;
    }
    let mut tag = [0u8; TAG_LEN];
    for (out, pair) in tag.iter_mut().zip(text.chunks_exact(2)) {
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(tag)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use atom_crypto::Key;

    fn mac() -> MacKey {
        MacKey::derive(&Key::from_bytes([7; 32]), CHAIN_PURPOSE)
    }

    #[test]
    fn a_checkpoint_round_trips_and_authenticates() {
        let mac = mac();
        let (line, tag) = encode_checkpoint(&mac, 3, &GENESIS);
        assert_eq!(line.last(), Some(&b'\n'));
        let parsed = parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(parsed.seq, 3);
        assert_eq!(parsed.prev, GENESIS);
        assert_eq!(parsed.tag, tag);
        assert_eq!(parsed.kind, Kind::Checkpoint);
        assert_eq!(parsed.key, mac.key_id());
        assert!(parsed.authentic(&mac));
        let other = MacKey::derive(&Key::from_bytes([8; 32]), CHAIN_PURPOSE);
        assert!(!parsed.authentic(&other));
    }

    #[test]
    fn hex_round_trips_and_rejects_upper_case() {
        let tag: Tag = core::array::from_fn(|i| i as u8 * 7);
        assert_eq!(unhex(hex(&tag).as_bytes()), Some(tag));
        assert_eq!(unhex(hex(&tag).to_uppercase().as_bytes()), None);
        assert_eq!(unhex(b"00"), None);
    }

    #[test]
    fn a_line_without_the_mac_suffix_is_malformed() {
        assert_eq!(parse(b"{}").unwrap_err(), Malformed::NoMac);
        let mac = mac();
        let (line, _) = encode_checkpoint(&mac, 0, &GENESIS);
        let mut line = line[..line.len() - 1].to_vec();
        line.push(b' ');
        assert_eq!(parse(&line).unwrap_err(), Malformed::NoMac);
    }
}

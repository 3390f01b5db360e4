//! Structure-aware: a real audit log (written by `FileSink`, 40 events with
//! a checkpoint every 8) with bytes flipped, a line removed or two lines
//! swapped as the input says. Any such change before the last checkpoint,
//! and any byte flipped anywhere, must make verify report the log damaged.
#![no_main]

use std::num::NonZeroU64;
use std::sync::OnceLock;

use atom_audit::{
    Action, AuditEvent, AuditSink as _, FileSink, FileSinkOptions, checkpoint_path, verify_stream,
};
use atom_crypto::Key;
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [11; 32];

/// The log and its checkpoint copy, written once per process.
fn log() -> &'static (Vec<u8>, Vec<u8>) {
    static LOG: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let options = FileSinkOptions::default().checkpoint_every(NonZeroU64::new(8).unwrap());
            let sink = FileSink::open_with(&path, &Key::from_bytes(KEY), options)
                .await
                .unwrap();
            for i in 0..40 {
                let action = Action::CredentialAccessed {
                    user: format!("user-{i}"),
                    provider: "github".into(),
                    key_id: None,
                };
                sink.record(&AuditEvent::new(chrono::Utc::now(), action))
                    .await
                    .unwrap();
            }
        });
        (
            std::fs::read(&path).unwrap(),
            std::fs::read(checkpoint_path(&path)).unwrap(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (original, anchor) = log();
    let key = Key::from_bytes(KEY);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut lines: Vec<Vec<u8>> = original
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    // The last line that is a checkpoint: changes up to it are all caught.
    let anchored = lines
        .iter()
        .rposition(|l| l.windows(12).any(|w| w == b"\"checkpoint\""))
        .unwrap();
    let pick = |b: u8, n: usize| usize::from(b) % n;
    match mode % 3 {
        // Flip bytes anywhere: every record is authenticated byte for byte.
        0 => {
            let mut bytes = original.clone();
            for pair in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
                bytes[at] ^= pair[2].max(1);
            }
            if bytes == *original {
                return;
            }
            let report = verify_stream(&bytes[..], Some(anchor), &key).unwrap();
            assert!(!report.is_intact(), "flipped bytes verified: {report}");
        }
        // Remove a line at or before the last checkpoint.
        1 => {
            let Some(&b) = rest.first() else { return };
            lines.remove(pick(b, anchored + 1));
            let bytes = lines.concat();
            let report = verify_stream(&bytes[..], Some(anchor), &key).unwrap();
            assert!(
                !report.is_intact(),
                "a removed record went unnoticed: {report}"
            );
        }
        // Swap two different lines, the first at or before the checkpoint.
        _ => {
            let [a, b, ..] = rest else { return };
            let (i, j) = (pick(*a, anchored + 1), pick(*b, lines.len()));
            if lines[i] == lines[j] {
                return;
            }
            lines.swap(i, j);
            let bytes = lines.concat();
            let report = verify_stream(&bytes[..], Some(anchor), &key).unwrap();
            assert!(
                !report.is_intact(),
                "swapped records went unnoticed: {report}"
            );
        }
    }
});

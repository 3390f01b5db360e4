//! The documented exit codes of `cargo xtask rotate-keys`.

/// The rotation finished, or the dry run found nothing wrong.
pub const DONE: u8 = 0;
/// An error: database, file, audit, a missing key.
pub const FAILURE: u8 = 1;
/// Wrong flags or unusable key configuration (also clap's code).
pub const USAGE: u8 = 2;
/// Values that do not open, or verification found values not (only) under
/// the new key. Nothing is retired.
pub const VALUES_DO_NOT_OPEN: u8 = 3;
/// Waiting for the operator to roll the key files out to every app
/// instance; run the printed next command afterwards.
pub const WAITING_FOR_ROLLOUT: u8 = 4;

//! Project automation behind `cargo xtask`: the logic of
//! `rotate-keys` (online, resumable, parallel key rotation of the secrets
//! file and the credential table) and `bench-rotate`. `main.rs` is only
//! argument parsing and output; the rotation is documented in
//! docs/ROTATION.md.
//!
//! - [`rotate_keys`] runs the phases plan -> introduce -> promote ->
//!   rewrap -> verify -> retire from wherever the [`RotationState`] file
//!   says, and returns a [`RotationReport`] with its exit code.
//! - [`KeyFiles`] are the key files the apps read; every change to them is
//!   atomic (temp file, fsync, rename, fsync of the directory, mode 0600).
//! - [`auditor_from_env`] builds the auditor that records the rotation.
//! - [`bench_rotate`] and [`run_python_anchor`] measure a full rewrap
//!   beside the Python original.

mod audit;
mod bench;
mod engine;
mod error;
pub mod exit;
mod inventory;
mod keyfiles;
mod output;
mod rotate;
mod state;
mod sysinfo;

pub use audit::auditor_from_env;
pub use bench::{
    BenchOptions, BenchReport, PythonFigure, bench_rotate, default_anchor_dir, peak_memory_kib,
    run_python_anchor,
};
pub use engine::default_workers;
pub use error::Error;
pub use inventory::{BadValue, CredentialCounts, Inventory, SecretsCounts};
pub use keyfiles::KeyFiles;
pub use rotate::{Outcome, RotateOptions, RotationReport, rotate_keys};
pub use state::{LOCK_FILE, Phase, RangeCursor, RotationState, STATE_FILE};

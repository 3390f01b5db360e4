//! Project automation behind `cargo xtask`: the benchmarks beside the
//! Python original (`bench-rotate`, `bench-tokens`). Key rotation itself is
//! the atom-rotation crate, run by `atom keys rotate` (and by
//! `cargo xtask rotate-keys`, which builds and runs that command in
//! release mode).

mod bench;
mod envelope_bench;
pub mod http;
mod sysinfo;

pub use bench::{
    BenchOptions, BenchReport, PythonFigure, bench_rotate, default_anchor_dir, peak_memory_kib,
    run_python_anchor,
};
pub use envelope_bench::{EnvelopeOptions, EnvelopeReport, PhaseFigure, bench_envelope};

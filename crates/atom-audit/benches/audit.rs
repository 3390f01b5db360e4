//! Benchmarks of atom-audit (filled in below).
fn main() {}

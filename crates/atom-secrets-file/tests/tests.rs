//! Integration tests of atom-secrets-file: one test target, one module per
//! concern (ripgrep's layout, so the crate links once).

// A failed expectation is a failed test: panicking is the point here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod audited;
mod bad_input;
mod common;
mod crash;
mod edit;
mod migrate;
mod python;
mod rollback;
mod roundtrip;
mod tamper;

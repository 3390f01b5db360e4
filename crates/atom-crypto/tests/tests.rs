//! Integration tests of atom-crypto, one test target.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod config;
mod envelope;
mod interop;
mod keys;
mod properties;
mod sealing;
mod vectors;

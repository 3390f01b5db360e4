//! End-to-end tests of the `atom` binary, one test target.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod key;
mod walkthrough;

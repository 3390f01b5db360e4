//! End-to-end tests of the `atom` binary, one test target.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
/// The rotation tests' fixture (key files, a secrets file, a credential
/// table with values of every kind), shared with atom-rotation's tests.
#[path = "../../atom-rotation/tests/common.rs"]
#[macro_use]
mod rotation_common;
mod audit_table;
mod bad_input;
mod doctor;
mod envelope;
mod key;
mod kms;
mod no_loss;
mod read_only;
mod readme;
mod rotate_kill;
mod several_hosts;
mod walkthrough;
